//! The HTTP edge: what every request passes before it reaches a route, and every response
//! before it leaves. Security headers on every response; the JSON API (`/api/*`) only for
//! the server's own pages and for programs (no browser on another site may drive it, even
//! the server `booth host` runs on 127.0.0.1); CORS only where players on other sites need it
//! (WHIP/WHEP, the live streams); a deadline on ordinary requests; `/metrics` kept private.
//!
//! It must never read a request's body, nor believe an `Origin` it cannot match to this
//! server.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, middleware};
use tower_http::cors::{Any, CorsLayer};

use super::AppState;
use super::client::{ClientAddr, client_ip};
use super::error::ApiError;
use super::limits::Limits;
use super::live::conn::Peer;

/// What the edge knows of the server it guards.
#[derive(Debug, Clone, Default)]
pub struct EdgePolicy {
    /// Origins (`scheme://host[:port]`) that are this server besides the `Host` a request
    /// names: its base URL and its podcast's public URL.
    own_origins: Vec<String>,
    /// `/metrics` is served on its own listener (`--metrics-bind`), not on the main one.
    pub metrics_apart: bool,
    /// The server's limits: the request deadline, and the proxies whose `X-Forwarded-For`
    /// names the client a refusal is logged for.
    limits: Arc<Limits>,
}

impl EdgePolicy {
    /// The policy of a server reached at `base_url` (and whose episodes may be linked under
    /// `public_url`).
    #[must_use]
    pub fn new(base_url: &str, public_url: Option<&str>, limits: Arc<Limits>) -> Self {
        let own_origins = std::iter::once(base_url)
            .chain(public_url)
            .filter_map(origin_of)
            .collect();
        Self {
            own_origins,
            metrics_apart: false,
            limits,
        }
    }

    /// Whether a browser's `Origin` is this server: the authority the request was sent to
    /// (its `Host`; a `Host` without a port, as reverse proxies often pass it, matches that
    /// host on any port), or one of the server's own URLs.
    fn is_own(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        if self.own_origins.contains(&origin) {
            return true;
        }
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let (Some(authority), Some(host)) = (authority, host.map(str::trim)) else {
            return false;
        };
        if authority.eq_ignore_ascii_case(host) {
            return true;
        }
        let has_port = |a: &str| a.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']'));
        !has_port(host)
            && authority
                .rsplit_once(':')
                .is_some_and(|(name, _)| has_port(authority) && name.eq_ignore_ascii_case(host))
    }

    /// The Content-Security-Policy of a page served for `host`: exactly what Booth's pages
    /// use (their own scripts and styles, audio from the server and from MediaSource blobs,
    /// the room's WebSocket), no inline script, and no framing.
    fn content_security_policy(&self, host: Option<&str>) -> String {
        let others = self.own_origins.join(" ");
        let sockets = host
            .filter(|h| is_plain_authority(h))
            .map(|h| format!(" ws://{h} wss://{h}"))
            .unwrap_or_default();
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; \
             img-src 'self' data: {others}; media-src 'self' blob: {others}; \
             connect-src 'self'{sockets}; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'"
        )
    }
}

/// `scheme://authority` of a URL, lower-cased, or none when it is not http(s).
fn origin_of(url: &str) -> Option<String> {
    let url = url.trim().to_ascii_lowercase();
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty() && is_plain_authority(authority))
        .then(|| format!("{scheme}://{authority}"))
}

/// A `Host` that can go into a header as it is: no spaces, quotes or `;` that would let a
/// client write its own policy directives.
fn is_plain_authority(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
}

/// Wraps `app` in the edge: the outermost layer adds the security headers (errors included).
pub fn guard(app: Router<Arc<AppState>>, policy: Arc<EdgePolicy>) -> Router<Arc<AppState>> {
    app.layer(middleware::from_fn_with_state(
        Arc::clone(&policy),
        request_deadline,
    ))
    .layer(middleware::from_fn_with_state(
        Arc::clone(&policy),
        api_only_for_own_pages,
    ))
    .layer(middleware::from_fn_with_state(policy, security_headers))
}

/// CORS for WHIP/WHEP: any site's player may publish or listen (the token, not the origin,
/// is what authorises), and read the session's `Location`, `Link` and `ETag`.
pub fn media_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
        ])
        .expose_headers([header::LOCATION, header::LINK, header::ETAG])
}

/// CORS for the public read-only streams: a web player on another site may fetch the HLS
/// playlist and segments, and the MP3/Ogg streams.
pub fn stream_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok())
}

async fn security_headers(
    State(policy): State<Arc<EdgePolicy>>,
    req: Request,
    next: Next,
) -> Response {
    let csp = policy.content_security_policy(host(req.headers()));
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Links may carry a token in their fragment or path: never tell another site where from.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// `/api/*` refuses a browser on another site (its `Origin` is not this server's), and a body
/// that is not JSON: a form or `text/plain` POST is what another site can send without asking.
async fn api_only_for_own_pages(
    State(policy): State<Arc<EdgePolicy>>,
    req: Request,
    next: Next,
) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let headers = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = origin
            .to_str()
            .is_ok_and(|o| policy.is_own(o, host(headers)));
        if !own {
            tracing::info!(
                "refused {} {} from {} for a page of {:?}",
                req.method(),
                req.uri().path(),
                client_of(&req, &policy.limits),
                origin
            );
            return ApiError::forbidden(
                "foreign_origin",
                "the API answers this server's own pages and programs, not pages of other sites",
            )
            .into_response();
        }
    }
    if has_body(req.method(), headers) && !is_json(headers) {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "json_required",
            "send the body as JSON, with Content-Type: application/json",
        )
        .into_response();
    }
    next.run(req).await
}

/// The client behind a request, as the per-address limits count it.
fn client_of(req: &Request, limits: &Limits) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|ConnectInfo(p)| p.addr.ip());
    client_ip(peer, req.headers(), limits)
}

fn has_body(method: &Method, headers: &HeaderMap) -> bool {
    let writes = [Method::POST, Method::PUT, Method::PATCH].contains(method);
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    writes && (length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// An ordinary request is answered within the deadline or gets 408. Endless streams and
/// WebSockets are not ordinary (their handler answers at once anyway; the deadline would only
/// be wrong if one ever waited).
async fn request_deadline(
    State(policy): State<Arc<EdgePolicy>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let endless = path.starts_with("/live/")
        || path.starts_with("/hls/")
        || req.headers().contains_key(header::UPGRADE);
    if endless {
        return next.run(req).await;
    }
    match tokio::time::timeout(policy.limits.request_timeout(), next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took too long: send it whole, at once",
        )
        .into_response(),
    }
}

/// `/metrics` on the main listener: with a metrics token, only with it; without one, only to
/// clients on this machine (a public server's metrics need `--metrics-token` or
/// `--metrics-bind`).
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Response {
    if state.shared.limits.metrics_token.is_none() && !client.is_loopback() {
        return ApiError::forbidden(
            "metrics_private",
            "/metrics answers only this machine: give the server --metrics-token or \
             --metrics-bind",
        )
        .into_response();
    }
    private_metrics(State(state), headers).await
}

/// `/metrics` as served on `--metrics-bind`: the token still applies when set.
async fn private_metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.shared.limits.metrics_token {
        let given = super::api::bearer(&headers).unwrap_or_default();
        let matches =
            aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), token.as_bytes())
                .is_ok();
        if !matches {
            return ApiError::unauthorized(
                "/metrics needs Authorization: Bearer with the server's metrics token",
            )
            .into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.shared.metrics.render(),
    )
        .into_response()
}

/// The routes of the `--metrics-bind` listener: `/metrics` and `/healthz`.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(private_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

/// Serves [`metrics_router`] on `bind` until `stop` resolves.
///
/// # Errors
/// The address cannot be bound.
pub async fn bind_metrics(
    bind: SocketAddr,
    state: Arc<AppState>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let app = metrics_router(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!("the metrics listener stopped: {e}");
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_own_when_it_names_the_host_or_a_url_of_the_server() {
        let p = EdgePolicy::new(
            "http://127.0.0.1:8080",
            Some("https://pod.example/x"),
            Arc::default(),
        );
        assert!(p.is_own("http://127.0.0.1:8080", None));
        assert!(p.is_own("https://pod.example", None));
        assert!(p.is_own("https://booth.example:8443", Some("booth.example:8443")));
        assert!(!p.is_own("https://evil.example", Some("booth.example:8443")));
        assert!(!p.is_own("null", Some("booth.example")));
        assert!(!p.is_own("http://127.0.0.1:9999", Some("127.0.0.1:8080")));
        assert!(p.is_own("https://booth.example:8443", Some("booth.example")));
        assert!(!p.is_own("https://evil.booth.example", Some("booth.example")));
    }

    #[test]
    fn a_host_cannot_write_its_own_policy() {
        let p = EdgePolicy::new("http://h:1", None, Arc::default());
        let csp = p.content_security_policy(Some("x; script-src *"));
        assert!(!csp.contains("script-src *"), "{csp}");
        assert!(p.content_security_policy(Some("h:1")).contains("wss://h:1"));
    }
}
