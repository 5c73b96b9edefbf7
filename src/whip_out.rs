//! `booth host --whip URL`: the program published straight into any WHIP endpoint (RFC 9725),
//! an SFU cluster or a streaming service, instead of a Booth room. No room server is started and
//! no room channel is opened: the endpoint gets the engine's Opus frames over one WebRTC session
//! (the same client peer `booth host` publishes into a Booth room with), and that is all.
//!
//! It never touches samples and never logs or prints the bearer token or a password in the URL:
//! errors and status lines name the endpoint by [`crate::rtc::signal::redact_url`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::engine::FrameSink;
use crate::rtc::RtcError;
use crate::rtc::peer::{ClientPeer, Mode};
use crate::rtc::signal::{check_endpoint_url, redact_url as redacted};

/// How long the media connection may take to come up (ICE and DTLS) after the endpoint answered.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A WHIP endpoint to publish the program into.
#[derive(Clone, PartialEq, Eq)]
pub struct WhipTarget {
    /// The endpoint's URL (http or https).
    pub url: String,
    /// Its bearer token, if it wants one.
    pub token: Option<String>,
}

impl std::fmt::Debug for WhipTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhipTarget")
            .field("url", &redacted(&self.url))
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

/// Why publishing into a WHIP endpoint failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WhipOutError {
    /// The URL is not an http(s) URL.
    #[error("'{url}' is not a WHIP endpoint URL: {why} (give an http:// or https:// URL)")]
    BadUrl {
        /// The URL, without any password.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The network runtime could not start.
    #[error("cannot start the network runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The endpoint answered the offer with an error.
    #[error("the WHIP endpoint {url} refused the program ({status}): {message}")]
    Refused {
        /// The endpoint, without any password.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What it said.
        message: String,
    },
    /// The endpoint could not be reached.
    #[error("cannot reach the WHIP endpoint {url}: {message} (is the URL right, and is it up?)")]
    Unreachable {
        /// The endpoint, without any password.
        url: String,
        /// Why.
        message: String,
    },
    /// The endpoint answered, but the media never connected.
    #[error(
        "the WHIP endpoint {url} answered, but the media did not connect within {seconds} s \
         (a firewall in the way of UDP, or an endpoint that cannot reach this machine)"
    )]
    NeverConnected {
        /// The endpoint, without any password.
        url: String,
        /// How long it was given.
        seconds: u64,
    },
    /// Anything else the WebRTC session refused (an answer without Opus, a bad SDP).
    #[error("publishing to the WHIP endpoint {url}: {source}")]
    Session {
        /// The endpoint, without any password.
        url: String,
        /// What went wrong.
        source: RtcError,
    },
}

impl WhipOutError {
    /// The error of a session with `url` that could not start.
    #[must_use]
    pub fn from_rtc(raw: &str, error: RtcError) -> Self {
        let url = redacted(raw);
        match error {
            RtcError::Refused {
                status, message, ..
            } => Self::Refused {
                url,
                status,
                message,
            },
            RtcError::Unreachable { message, .. } => Self::Unreachable {
                message: message.replace(raw, &url),
                url,
            },
            RtcError::ConnectTimeout(seconds) => Self::NeverConnected { url, seconds },
            source => Self::Session { url, source },
        }
    }
}

/// Checks that `url` is an http(s) URL with a host.
///
/// # Errors
/// Anything else, saying what is wrong.
pub fn check_url(url: &str) -> Result<(), WhipOutError> {
    check_endpoint_url(url).map_err(|why| WhipOutError::BadUrl {
        url: redacted(url),
        why,
    })
}

/// The program publishing into a WHIP endpoint. Stop it to hang up (the endpoint is sent a
/// DELETE for the session).
#[derive(Debug)]
pub struct WhipOut {
    rt: tokio::runtime::Runtime,
    peer: Option<ClientPeer>,
    url: String,
    reported: AtomicBool,
}

impl WhipOut {
    /// Opens the session and waits until media flows; adds the publisher to the engine's
    /// `consumers`.
    ///
    /// # Errors
    /// A URL that is not http(s), an endpoint that cannot be reached or refuses (its status and
    /// message), media that does not connect within 10 s.
    pub fn start(
        target: &WhipTarget,
        consumers: &mut Vec<FrameSink>,
    ) -> Result<Self, WhipOutError> {
        check_url(&target.url)?;
        // One worker drives the one session: 50 packets a second.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("booth-whip")
            .enable_all()
            .build()
            .map_err(WhipOutError::Runtime)?;
        let peer = rt
            .block_on(ClientPeer::connect(
                &target.url,
                target.token.as_deref(),
                Mode::Publish,
                CONNECT_TIMEOUT,
            ))
            .map_err(|e| WhipOutError::from_rtc(&target.url, e))?;
        consumers.push(FrameSink::Publisher(peer.frames.clone()));
        Ok(Self {
            rt,
            peer: Some(peer),
            url: redacted(&target.url),
            reported: AtomicBool::new(false),
        })
    }

    /// The endpoint, as it may be shown.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Why the session ended, the first time it is asked after it did.
    #[must_use]
    pub fn lost(&self) -> Option<String> {
        let why = self.peer.as_ref()?.ended()?;
        (!self.reported.swap(true, Ordering::Relaxed)).then_some(why)
    }

    /// Hangs up.
    pub fn stop(mut self) {
        if let Some(mut peer) = self.peer.take() {
            self.rt.block_on(peer.close());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_whip_endpoints() {
        assert!(check_url("http://127.0.0.1:8080/whip").is_ok());
        assert!(check_url("https://sfu.example/whip/endpoint?key=1").is_ok());
        for bad in [
            "rtmp://live.example/app",
            "ftp://x/y",
            "not a url",
            "http://",
        ] {
            assert!(
                matches!(check_url(bad), Err(WhipOutError::BadUrl { .. })),
                "{bad} passed"
            );
        }
    }

    #[test]
    fn passwords_in_urls_are_never_shown() {
        let url = "https://user:hunter2@sfu.example/whip";
        let err = WhipOutError::from_rtc(
            url,
            RtcError::Refused {
                url: url.into(),
                status: 401,
                message: "bad token".into(),
            },
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("(401): bad token"), "{err}");
        let target = WhipTarget {
            url: url.into(),
            token: Some("s3cret".into()),
        };
        let shown = format!("{target:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn a_session_that_never_connects_says_so() {
        let err = WhipOutError::from_rtc("http://sfu/whip", RtcError::ConnectTimeout(10));
        assert!(matches!(
            err,
            WhipOutError::NeverConnected { seconds: 10, .. }
        ));
    }
}
