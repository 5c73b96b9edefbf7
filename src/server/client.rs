//! Who is asking: the client address every per-address limit counts by. The TCP peer, unless
//! that peer is a reverse proxy the operator trusts (`trusted_proxies`), whose
//! `X-Forwarded-For` then names the client. Never trusts a header from anyone else.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::extract::connect_info::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;
use super::limits::Limits;
use super::live::conn::Peer;

/// The client's address, as an extractor: `ClientAddr(ip)` in a handler's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<Arc<AppState>> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map(|ConnectInfo(p)| p.addr.ip());
        Ok(Self(client_ip(peer, &parts.headers, &state.shared.limits)))
    }
}

/// The client behind `peer` (the TCP peer's address; none for a request made in-process,
/// which counts as the local machine).
#[must_use]
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, limits: &Limits) -> IpAddr {
    let Some(peer) = peer else {
        return IpAddr::V4(Ipv4Addr::LOCALHOST);
    };
    if !limits.trusted_proxies.contains(&peer) {
        return peer;
    }
    // The right-most address a trusted proxy did not add is the client: anything left of it
    // the client wrote itself.
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .iter()
        .rev()
        .find(|a| !limits.trusted_proxies.contains(a))
        .or(forwarded.first())
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy = IpAddr::from([127, 0, 0, 1]);
        let mut limits = Limits::default();
        let h = headers("6.6.6.6, 203.0.113.9");
        assert_eq!(client_ip(Some(proxy), &h, &limits), proxy);
        limits.trusted_proxies = vec![proxy];
        assert_eq!(
            client_ip(Some(proxy), &h, &limits),
            IpAddr::from([203, 0, 113, 9])
        );
        let other = IpAddr::from([198, 51, 100, 7]);
        assert_eq!(client_ip(Some(other), &h, &limits), other);
        assert_eq!(client_ip(Some(proxy), &HeaderMap::new(), &limits), proxy);
    }
}
