//! WHIP (RFC 9725) and WHEP signalling for Booth's clients: POST an SDP offer with a bearer
//! token, read the answer and the session's Location; DELETE it to hang up.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};

use super::RtcError;

/// Checks that `url` can be a WHIP/WHEP endpoint: an http(s) URL with a host.
///
/// # Errors
/// What is wrong with it, as a person reads it (`the scheme is 'rtmp'`).
pub fn check_endpoint_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("the scheme is '{}'", parsed.scheme()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".to_owned());
    }
    Ok(())
}

/// `url` as it may be shown or logged: without a password (`https://user:secret@host/` ->
/// `https://user:***@host/`). Text that is not a URL is returned as it is.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// An accepted offer.
#[derive(Debug, Clone)]
pub struct Negotiated {
    /// The session resource (absolute URL), for DELETE and PATCH.
    pub location: String,
    /// The SDP answer.
    pub answer: String,
}

/// An HTTP client with the timeouts Booth's signalling uses.
#[must_use]
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// POSTs `offer` to a WHIP or WHEP endpoint.
///
/// # Errors
/// The server cannot be reached, or answers anything but 201 with an SDP body.
pub async fn post_offer(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    offer: &str,
) -> Result<Negotiated, RtcError> {
    let mut request = client
        .post(url)
        .header(CONTENT_TYPE, "application/sdp")
        .body(offer.to_owned());
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = request.send().await.map_err(|e| RtcError::Unreachable {
        url: url.to_owned(),
        message: e.to_string(),
    })?;
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    if status.as_u16() != 201 {
        return Err(RtcError::Refused {
            url: url.to_owned(),
            status: status.as_u16(),
            message: error_message(&body),
        });
    }
    let location = location.ok_or_else(|| RtcError::Refused {
        url: url.to_owned(),
        status: status.as_u16(),
        message: "no Location header in the answer".into(),
    })?;
    let location = reqwest::Url::parse(url)
        .and_then(|base| base.join(&location))
        .map(String::from)
        .unwrap_or(location);
    Ok(Negotiated {
        location,
        answer: body,
    })
}

/// DELETEs a WHIP/WHEP session. Errors are ignored: the session times out on the server anyway.
pub async fn hang_up(client: &reqwest::Client, location: &str, token: Option<&str>) {
    let mut request = client.delete(location);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let _ = request.send().await;
}

/// The `message` of a Booth JSON error body, or the body itself.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.trim().chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_endpoints() {
        assert!(check_endpoint_url("http://127.0.0.1:8080/whip").is_ok());
        assert!(check_endpoint_url("https://sfu.example/whip/endpoint?key=1").is_ok());
        for bad in [
            "rtmp://live.example/app",
            "ftp://x/y",
            "not a url",
            "http://",
        ] {
            assert!(check_endpoint_url(bad).is_err(), "{bad} passed");
        }
        assert_eq!(
            check_endpoint_url("rtmp://x/y").unwrap_err(),
            "the scheme is 'rtmp'"
        );
    }

    #[test]
    fn passwords_in_urls_are_never_shown() {
        assert_eq!(
            redact_url("https://user:hunter2@sfu.example/whip"),
            "https://user:***@sfu.example/whip"
        );
        assert_eq!(redact_url("http://sfu/whip"), "http://sfu/whip");
    }
}
