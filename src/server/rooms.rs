//! Who may open a room, and how many stay open: the creation key (`--room-key`), a token
//! bucket per client address (`room_creations_burst`, `room_creations_per_hour`), the
//! server-wide cap (`max_rooms`), and the removal of rooms whose task has finished.
//!
//! Never keeps unbounded state per client (the buckets are pruned and capped), never logs or
//! echoes the room key, and never compares it in time that depends on its content.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use super::AppState;
use super::error::ApiError;
use super::limits::Limits;
use super::room_task::RoomHandle;

/// Addresses whose buckets are kept at once. Full buckets are dropped first (they say nothing
/// a fresh bucket would not); past that, the fullest goes, so an attacker with many addresses
/// costs at most this many entries and frees nobody else's.
pub const TRACKED_ADDRESSES: usize = 10_000;

/// Why a room was not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CreationRefused {
    /// The server has a room key and the request carried none.
    #[error(
        "this server creates rooms only for its owner: send the room key as \
         `Authorization: Bearer KEY` (booth host --room-key KEY)"
    )]
    KeyRequired,
    /// The request carried a key that is not the server's.
    #[error("the room key is wrong: check --room-key / BOOTH_ROOM_KEY")]
    BadKey,
    /// This address created its share of rooms lately.
    #[error(
        "too many rooms created from this address: try again in {} s",
        retry_after.as_secs()
    )]
    RateLimited {
        /// When one more creation is allowed.
        retry_after: Duration,
    },
    /// The server holds as many rooms as it may.
    #[error(
        "the server is full ({max} rooms open): try again when a room has ended, or use \
         another server"
    )]
    TooManyRooms {
        /// The cap (`max_rooms`).
        max: usize,
    },
}

impl CreationRefused {
    /// The HTTP status and the protocol's code.
    #[must_use]
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::KeyRequired => (StatusCode::UNAUTHORIZED, "room_key_required"),
            Self::BadKey => (StatusCode::FORBIDDEN, "bad_room_key"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::TooManyRooms { .. } => (StatusCode::SERVICE_UNAVAILABLE, "too_many_rooms"),
        }
    }
}

impl From<CreationRefused> for ApiError {
    fn from(refused: CreationRefused) -> Self {
        let (status, code) = refused.status_and_code();
        Self::new(status, code, refused.to_string())
    }
}

impl IntoResponse for CreationRefused {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            Self::RateLimited { retry_after } => Some(retry_after.as_secs().max(1)),
            Self::TooManyRooms { .. } => Some(60),
            _ => None,
        };
        let mut response = ApiError::from(self).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Checks the request's `Authorization: Bearer KEY` against the server's room key, if it has
/// one.
///
/// # Errors
/// A key is required and missing, or wrong.
pub fn check_room_key(limits: &Limits, headers: &HeaderMap) -> Result<(), CreationRefused> {
    let Some(key) = limits.room_key.as_deref().filter(|k| !k.is_empty()) else {
        return Ok(());
    };
    let given = super::api::bearer(headers).ok_or(CreationRefused::KeyRequired)?;
    // `ct_eq` on slices of different lengths answers at once: only the key's length can leak,
    // never how much of it matched.
    if bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
        Ok(())
    } else {
        Err(CreationRefused::BadKey)
    }
}

/// One address's allowance.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The token buckets of room creation, one per client address (an IPv6 client by its /64, the
/// block one subscriber usually holds).
#[derive(Debug, Default)]
pub struct RoomCreations {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RoomCreations {
    /// Takes one creation from `client`'s bucket.
    ///
    /// # Errors
    /// The bucket is empty: [`CreationRefused::RateLimited`] says when it has one again.
    pub fn take(
        &self,
        client: IpAddr,
        limits: &Limits,
        now: Instant,
    ) -> Result<(), CreationRefused> {
        let rate = Rate::of(limits);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let key = address_key(client);
        if !buckets.contains_key(&key) && buckets.len() >= TRACKED_ADDRESSES {
            make_room(&mut buckets, rate, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        let tokens = rate.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(CreationRefused::RateLimited {
                retry_after: rate.until_one(tokens),
            })
        }
    }

    /// Addresses tracked now (for tests and `/metrics`).
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A bucket's size and refill speed.
#[derive(Debug, Clone, Copy)]
struct Rate {
    /// At least one: a bucket that can never hold a creation would lock everyone out for good
    /// (a private server is what `room_key` is for).
    burst: f64,
    per_sec: f64,
}

impl Rate {
    fn of(limits: &Limits) -> Self {
        Self {
            burst: f64::from(limits.room_creations_burst.max(1)),
            per_sec: f64::from(limits.room_creations_per_hour) / 3600.0,
        }
    }

    fn refilled(self, bucket: Bucket, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + secs * self.per_sec).min(self.burst)
    }

    fn until_one(self, tokens: f64) -> Duration {
        if self.per_sec <= 0.0 {
            return Duration::from_secs(3600);
        }
        Duration::from_secs_f64(((1.0 - tokens) / self.per_sec).clamp(1.0, 86_400.0).ceil())
    }
}

/// Frees at least one entry: drops every full bucket, else the fullest one.
fn make_room(buckets: &mut HashMap<IpAddr, Bucket>, rate: Rate, now: Instant) {
    buckets.retain(|_, b| rate.refilled(*b, now) < rate.burst);
    if buckets.len() < TRACKED_ADDRESSES {
        return;
    }
    let fullest = buckets
        .iter()
        .max_by(|a, b| {
            rate.refilled(*a.1, now)
                .total_cmp(&rate.refilled(*b.1, now))
        })
        .map(|(ip, _)| *ip);
    if let Some(ip) = fullest {
        buckets.remove(&ip);
    }
}

/// What a client is counted as: an IPv4 address, or an IPv6 /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::from(segments)
            }
        },
    }
}

/// Opens a room made by `open` unless the server already holds `max_rooms` (checked and
/// inserted under one lock, so concurrent creations cannot pass the cap together).
///
/// # Errors
/// [`CreationRefused::TooManyRooms`]; inside, what `open` failed with.
pub fn register<E>(
    rooms: &RwLock<HashMap<String, RoomHandle>>,
    limits: &Limits,
    open: impl FnOnce() -> Result<RoomHandle, E>,
) -> Result<Result<RoomHandle, E>, CreationRefused> {
    let mut rooms = rooms.write().unwrap_or_else(PoisonError::into_inner);
    if rooms.len() >= limits.max_rooms {
        return Err(CreationRefused::TooManyRooms {
            max: limits.max_rooms,
        });
    }
    Ok(open().inspect(|handle| {
        rooms.insert(handle.id.clone(), handle.clone());
    }))
}

/// Whether the server is full already (a cheap look before a creation is counted against the
/// client's bucket).
///
/// # Errors
/// [`CreationRefused::TooManyRooms`].
pub fn check_capacity(state: &AppState) -> Result<(), CreationRefused> {
    let open = state
        .rooms
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .len();
    if open >= state.shared.limits.max_rooms {
        return Err(CreationRefused::TooManyRooms {
            max: state.shared.limits.max_rooms,
        });
    }
    Ok(())
}

/// Takes rooms out of the registry as their tasks finish (each task sends its id on the way
/// out). Ends with the server.
pub async fn remove_ended(state: Weak<AppState>, mut ended: mpsc::UnboundedReceiver<String>) {
    while let Some(id) = ended.recv().await {
        let Some(state) = state.upgrade() else { break };
        let removed = state
            .rooms
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if removed.is_some() {
            tracing::info!(room = %id, "room closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(burst: u32, per_hour: u32) -> Limits {
        Limits {
            room_creations_burst: burst,
            room_creations_per_hour: per_hour,
            ..Limits::default()
        }
    }

    #[test]
    fn a_bucket_lets_the_burst_through_then_refills_at_its_rate() {
        let creations = RoomCreations::default();
        let l = limits(3, 3600);
        let ip = IpAddr::from([203, 0, 113, 1]);
        let t0 = Instant::now();
        for _ in 0..3 {
            creations.take(ip, &l, t0).unwrap();
        }
        let Err(CreationRefused::RateLimited { retry_after }) = creations.take(ip, &l, t0) else {
            panic!("the fourth creation at once should be refused");
        };
        assert_eq!(retry_after, Duration::from_secs(1));
        creations.take(ip, &l, t0 + Duration::from_secs(1)).unwrap();
        creations
            .take(IpAddr::from([203, 0, 113, 2]), &l, t0)
            .unwrap();
    }

    #[test]
    fn the_buckets_stay_bounded_under_many_addresses() {
        let creations = RoomCreations::default();
        let l = limits(2, 1);
        let t0 = Instant::now();
        for n in 0..(TRACKED_ADDRESSES as u32 + 500) {
            let ip = IpAddr::from(n.to_be_bytes());
            creations.take(ip, &l, t0).unwrap();
        }
        assert!(creations.tracked() <= TRACKED_ADDRESSES);
    }

    #[test]
    fn one_ipv6_subscriber_is_one_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), IpAddr::from([192, 0, 2, 7]));
    }

    #[test]
    fn the_room_key_is_needed_and_checked_when_set() {
        let mut l = Limits::default();
        let mut headers = HeaderMap::new();
        assert_eq!(check_room_key(&l, &headers), Ok(()));
        l.room_key = Some("s3cret".into());
        assert_eq!(
            check_room_key(&l, &headers),
            Err(CreationRefused::KeyRequired)
        );
        headers.insert(header::AUTHORIZATION, "Bearer s3cre".parse().unwrap());
        assert_eq!(check_room_key(&l, &headers), Err(CreationRefused::BadKey));
        headers.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert_eq!(check_room_key(&l, &headers), Ok(()));
    }
}
