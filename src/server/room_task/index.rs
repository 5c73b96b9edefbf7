//! Where a room's sessions are found: by session id (HTTP), by ICE username fragment (STUN) and
//! by the remote address a session's peer proved (everything else on the wire). Each maps to the
//! session's slot in the room's session list and is kept in step with every add, remove and
//! address change, so no packet or request walks the whole list.
//!
//! Only slots: it never owns a session or learns an address by itself.

use std::collections::HashMap;
use std::net::SocketAddr;

/// See the module doc.
#[derive(Debug, Default)]
pub(super) struct SessionIndex {
    by_id: HashMap<String, usize>,
    by_ufrag: HashMap<String, usize>,
    by_addr: HashMap<SocketAddr, usize>,
}

/// What the index needs to know of a session.
pub(super) struct Keys<'a> {
    pub id: &'a str,
    pub ufrag: Option<&'a str>,
    pub remote: Option<SocketAddr>,
}

impl SessionIndex {
    /// The slot of the session with this id.
    pub fn by_id(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The slot of the WebRTC session that answered with this ICE username fragment.
    pub fn by_ufrag(&self, ufrag: &str) -> Option<usize> {
        self.by_ufrag.get(ufrag).copied()
    }

    /// The slot of the WebRTC session whose peer proved this address.
    pub fn by_addr(&self, addr: SocketAddr) -> Option<usize> {
        self.by_addr.get(&addr).copied()
    }

    /// Records a session at `slot`.
    pub fn insert(&mut self, slot: usize, keys: &Keys<'_>) {
        self.by_id.insert(keys.id.to_owned(), slot);
        if let Some(u) = keys.ufrag {
            self.by_ufrag.insert(u.to_owned(), slot);
        }
        if let Some(a) = keys.remote {
            self.by_addr.insert(a, slot);
        }
    }

    /// Forgets the session that was at `slot`; `moved` is the session now at `slot` (the last
    /// one, swapped in), which was at `from`.
    pub fn remove(&mut self, slot: usize, gone: &Keys<'_>, moved: Option<(&Keys<'_>, usize)>) {
        self.by_id.remove(gone.id);
        if let Some(u) = gone.ufrag {
            self.by_ufrag.remove(u);
        }
        if let Some(a) = gone.remote
            && self.by_addr.get(&a) == Some(&slot)
        {
            self.by_addr.remove(&a);
        }
        if let Some((keys, from)) = moved {
            self.repoint(keys, from, slot);
        }
    }

    fn repoint(&mut self, keys: &Keys<'_>, from: usize, to: usize) {
        if let Some(s) = self.by_id.get_mut(keys.id) {
            *s = to;
        }
        if let Some(u) = keys.ufrag
            && let Some(s) = self.by_ufrag.get_mut(u)
        {
            *s = to;
        }
        if let Some(a) = keys.remote
            && let Some(s) = self.by_addr.get_mut(&a)
            && *s == from
        {
            *s = to;
        }
    }

    /// The session at `slot` moved from `old` to `new`.
    pub fn readdress(&mut self, slot: usize, old: Option<SocketAddr>, new: SocketAddr) {
        if let Some(a) = old
            && self.by_addr.get(&a) == Some(&slot)
        {
            self.by_addr.remove(&a);
        }
        self.by_addr.insert(new, slot);
    }

    /// Entries held (for tests: the index shrinks with the room).
    #[cfg(test)]
    pub fn len(&self) -> (usize, usize, usize) {
        (self.by_id.len(), self.by_ufrag.len(), self.by_addr.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<'a>(id: &'a str, ufrag: &'a str, port: u16) -> Keys<'a> {
        Keys {
            id,
            ufrag: Some(ufrag),
            remote: Some(SocketAddr::from(([127, 0, 0, 1], port))),
        }
    }

    #[test]
    fn a_removed_slot_takes_the_last_session_and_every_key_follows_it() {
        let mut index = SessionIndex::default();
        let (a, b, c) = (keys("a", "ua", 1), keys("b", "ub", 2), keys("c", "uc", 3));
        index.insert(0, &a);
        index.insert(1, &b);
        index.insert(2, &c);
        // Vec::swap_remove(0): c moves from 2 to 0.
        index.remove(0, &a, Some((&c, 2)));
        assert_eq!(index.by_id("a"), None);
        assert_eq!(index.by_ufrag("ua"), None);
        assert_eq!(index.by_id("c"), Some(0));
        assert_eq!(index.by_ufrag("uc"), Some(0));
        assert_eq!(
            index.by_addr(SocketAddr::from(([127, 0, 0, 1], 3))),
            Some(0)
        );
        assert_eq!(index.by_id("b"), Some(1));
        let moved = SocketAddr::from(([127, 0, 0, 1], 9));
        index.readdress(1, b.remote, moved);
        assert_eq!(index.by_addr(moved), Some(1));
        assert_eq!(index.by_addr(SocketAddr::from(([127, 0, 0, 1], 2))), None);
        let b = Keys {
            remote: Some(moved),
            ..b
        };
        index.remove(1, &b, None);
        index.remove(0, &c, None);
        assert_eq!(index.len(), (0, 0, 0));
    }
}
