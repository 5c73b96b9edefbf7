//! Who is in a room and how they prove it: each member's capability token (checked in
//! constant time), the invitations not yet used, and the room-channel connections a member has
//! open. Joining (`hello`) and leaving the channel go through here.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tokio::sync::mpsc;

use super::messages::{Invitation, Welcome, WsOut};
use super::{Refusal, RoomTask};
use crate::room::protocol::You;
use crate::room::{ParticipantId, Permissions, Role};
use crate::server::tokens::{self, Secret, TokenRef};

/// A participant's identity and open channels. Kept as long as the token works (a listener
/// may come back); what a person who left leaves here is their secret and their grant.
pub(super) struct Member {
    pub secret: Secret,
    /// The role their token grants on joining: first the invitation's, then whatever the room
    /// last made them (it follows every change, so a reconnect never undoes a moderator).
    pub grant: Role,
    /// Their name in the room, cleaned (empty once they left the audience).
    pub name: String,
    pub conns: Vec<(u64, mpsc::Sender<WsOut>)>,
}

/// An invitation not yet used.
pub(super) struct InviteEntry {
    pub secret: Secret,
    pub role: Role,
    /// It works until then.
    pub expires: Instant,
}

impl RoomTask {
    /// The participant a token names, checked in constant time.
    pub(super) fn identify(&self, token: Option<&str>) -> Result<ParticipantId, Refusal> {
        let token = token.ok_or(Refusal::NoToken)?;
        let Some((TokenRef::Participant(n), secret)) = tokens::parse(token) else {
            return Err(Refusal::BadToken);
        };
        let id = ParticipantId(n);
        match self.members.get(&id) {
            Some(m) if m.secret.matches(secret) => {
                if self.room.is_removed(id) {
                    Err(Refusal::Removed)
                } else {
                    Ok(id)
                }
            }
            _ => Err(Refusal::BadToken),
        }
    }

    pub(super) fn new_member(
        &mut self,
        grant: Role,
        name: &str,
    ) -> Result<(ParticipantId, String), Refusal> {
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        let secret = Secret::generate().map_err(Refusal::internal)?;
        let token = tokens::format(TokenRef::Participant(id.0), &secret);
        self.members.insert(
            id,
            Member {
                secret,
                grant,
                name: name.to_owned(),
                conns: Vec::new(),
            },
        );
        Ok((id, token))
    }

    pub(super) fn hello(
        &mut self,
        token: Option<&str>,
        name: String,
        out: mpsc::Sender<WsOut>,
    ) -> Result<Welcome, Refusal> {
        let now = Instant::now();
        let (id, token) = match token.map(|t| (t, tokens::parse(t))) {
            None => self.new_member(Role::Listener, &name)?,
            Some((t, Some((TokenRef::Participant(_), _)))) => {
                (self.identify(Some(t))?, t.to_owned())
            }
            Some((_, Some((TokenRef::Invite(n), secret)))) => {
                let role = match self.invites.get(&n) {
                    Some(inv) if inv.secret.matches(secret) && inv.expires > now => inv.role,
                    _ => return Err(Refusal::BadInvitation),
                };
                self.invites.remove(&n);
                self.new_member(role, &name)?
            }
            Some((_, None)) => {
                return Err(Refusal::BadToken);
            }
        };
        let grant = self.members.get(&id).map_or(Role::Listener, |m| m.grant);
        let present = self.room.role(id).is_some() && !self.away.contains(&id);
        if !present {
            // The room's role store decides for someone it knows; the grant for the rest.
            let role = grant;
            let joined = self.room.handle(
                crate::room::Input::Join {
                    id,
                    name: name.clone(),
                    role,
                },
                now,
            );
            if let Err(e) = joined {
                // A new member who could not join leaves no trace.
                if self.members.get(&id).is_some_and(|m| m.conns.is_empty()) && grant != Role::Host
                {
                    self.members.remove(&id);
                }
                return Err(e.into());
            }
            self.away.remove(&id);
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        let name = self.room.name(id).unwrap_or_default().to_owned();
        if let Some(m) = self.members.get_mut(&id) {
            m.conns.push((conn, out));
            m.name.clone_from(&name);
        }
        self.shared.metrics.websockets.fetch_add(1, Relaxed);
        self.pump();
        let role = self.room.role(id).unwrap_or(Role::Listener);
        let mut room = self.info();
        if matches!(role, Role::Host | Role::CoHost) {
            room.room.hand_queue = Some(self.room.hand_entries());
        }
        let you = You {
            id,
            role,
            name,
            token,
            actions: Permissions::for_role(role),
        };
        Ok(Welcome { you, room, conn })
    }

    pub(super) fn closed(&mut self, who: ParticipantId, conn: u64) {
        let Some(m) = self.members.get_mut(&who) else {
            return;
        };
        let before = m.conns.len();
        m.conns.retain(|(c, _)| *c != conn);
        if m.conns.len() < before {
            self.shared.metrics.websockets.fetch_sub(1, Relaxed);
        }
        if m.conns.is_empty() && self.room.role(who).is_some() && !self.room.is_ended() {
            let _ = self
                .room
                .handle(crate::room::Input::Disconnected { id: who }, Instant::now());
            // Only someone the room keeps while away (the host) is remembered as away; what
            // is left of anyone else is their token.
            if self.room.role(who).is_some() {
                self.away.insert(who);
            } else if let Some(m) = self.members.get_mut(&who) {
                m.name = String::new();
            }
            self.pump();
        }
    }

    pub(super) fn invite(
        &mut self,
        token: Option<&str>,
        role: Role,
    ) -> Result<Invitation, Refusal> {
        let who = self.identify(token)?;
        let by = self.room.role(who);
        let allowed = match role {
            Role::CoHost => by == Some(Role::Host),
            Role::Speaker => matches!(by, Some(Role::Host | Role::CoHost)),
            _ => false,
        };
        if !allowed {
            return Err(Refusal::MayNotInvite);
        }
        let now = Instant::now();
        self.invites.retain(|_, inv| inv.expires > now);
        let n = self.next_id;
        self.next_id += 1;
        let secret = Secret::generate().map_err(Refusal::internal)?;
        let token = tokens::format(TokenRef::Invite(n), &secret);
        let ttl = self.shared.limits.invite_ttl();
        self.invites.insert(
            n,
            InviteEntry {
                secret,
                role,
                expires: now + ttl,
            },
        );
        Ok(Invitation {
            id: n,
            token,
            role,
            expires_in_secs: ttl.as_secs(),
        })
    }

    /// A moderator takes back an invitation not yet used (by its id, or its whole token).
    pub(super) fn revoke_invite(
        &mut self,
        token: Option<&str>,
        invite: &str,
    ) -> Result<(), Refusal> {
        let who = self.identify(token)?;
        if !matches!(self.room.role(who), Some(Role::Host | Role::CoHost)) {
            return Err(Refusal::MayNotInvite);
        }
        let n = match tokens::parse(invite) {
            Some((TokenRef::Invite(n), _)) => Some(n),
            _ => invite.parse::<u64>().ok(),
        };
        let now = Instant::now();
        match n.and_then(|n| self.invites.remove(&n)) {
            Some(inv) if inv.expires > now => Ok(()),
            _ => Err(Refusal::NoSuchInvitation),
        }
    }
}
