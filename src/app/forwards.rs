//! The room's WHIP forwards as the overlay shows them while live: the host adds one (an
//! endpoint URL and its optional token), sees each one's state (connecting, live, retrying and
//! why), and removes it. [`ForwardPanel`] is the state and the actions; [`ForwardClient`] is the
//! thread that talks to the server's forwards API (`GET`/`POST /api/rooms/{id}/forwards`,
//! `DELETE .../{fid}`) and asks every [`POLL_EVERY`] for the states, so the window never waits
//! on the network.
//!
//! Never here: drawing (no GUI types), or a request made on the window's thread. The endpoint's
//! token leaves the field once sent and is never shown again.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use crate::room::protocol::ErrorBody;
use crate::rtc::signal::check_endpoint_url;
use crate::server::live::forward::{ForwardInfo, NewForward};

/// How often the forwards' states are asked for.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// A change the host asks for.
#[derive(Clone, PartialEq, Eq)]
pub enum ForwardRequest {
    /// Forward the program to an endpoint.
    Add {
        /// The endpoint.
        url: String,
        /// Its bearer token.
        token: Option<String>,
    },
    /// Stop forward `id`.
    Remove(String),
}

impl std::fmt::Debug for ForwardRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Add { url, .. } => write!(f, "Add({})", crate::rtc::signal::redact_url(url)),
            Self::Remove(id) => write!(f, "Remove({id})"),
        }
    }
}

/// What the server answered.
#[derive(Clone, Debug)]
pub enum ForwardAnswer {
    /// The forwards as they are now.
    Listed(Vec<ForwardInfo>),
    /// A change was refused; the server's reason.
    Refused(String),
    /// The server could not be reached; why.
    Unreachable(String),
}

/// The forwards section's state.
#[derive(Debug, Default)]
pub struct ForwardPanel {
    /// The URL field.
    pub url: String,
    /// The token field (emptied once sent).
    pub token: String,
    /// The forwards as last heard.
    pub forwards: Vec<ForwardInfo>,
    /// A change on its way to the server (the others wait for its answer).
    pub asked: bool,
    /// The last change refused, a bad URL, or the server unreachable.
    pub problem: Option<String>,
    client: Option<ForwardClient>,
}

impl ForwardPanel {
    /// A panel for room `room` on the server at `server`, changed with the host's `token`; its
    /// client thread calls `wake` when an answer arrives.
    #[must_use]
    pub fn watch(server: &str, token: &str, room: &str, wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        let mut panel = Self::default();
        match ForwardClient::start(server, token, room, wake) {
            Ok(client) => panel.client = Some(client),
            Err(e) => panel.problem = Some(format!("cannot ask the server about forwards: {e}")),
        }
        panel
    }

    /// Takes in the client's answers. Call once per frame.
    pub fn poll(&mut self) {
        let mut answers = Vec::new();
        if let Some(client) = &self.client {
            while let Ok(a) = client.answers.try_recv() {
                answers.push(a);
            }
        }
        for a in answers {
            self.take(a);
        }
    }

    /// Takes in one answer from the server.
    pub fn take(&mut self, answer: ForwardAnswer) {
        match answer {
            ForwardAnswer::Listed(list) => {
                self.forwards = list;
                if self.asked {
                    self.problem = None;
                }
                self.asked = false;
            }
            ForwardAnswer::Refused(why) => {
                self.problem = Some(why);
                self.asked = false;
            }
            ForwardAnswer::Unreachable(why) => {
                self.problem = Some(format!("cannot reach the room server: {why}"));
                self.asked = false;
            }
        }
    }

    /// Forwards the program to the URL field's endpoint (with the token field's token).
    pub fn add(&mut self) {
        let url = self.url.trim().to_owned();
        if let Err(why) = check_endpoint_url(&url) {
            self.problem = Some(format!(
                "that is not a WHIP endpoint: {why} (give an http:// or https:// URL)"
            ));
            return;
        }
        let token = std::mem::take(&mut self.token).trim().to_owned();
        let token = (!token.is_empty()).then_some(token);
        if self.ask(ForwardRequest::Add { url, token }) {
            self.url.clear();
        }
    }

    /// Stops forward `id`.
    pub fn remove(&mut self, id: &str) {
        self.ask(ForwardRequest::Remove(id.to_owned()));
    }

    fn ask(&mut self, request: ForwardRequest) -> bool {
        if self.asked {
            return false;
        }
        if let Some(client) = &self.client
            && client.requests.send(request).is_err()
        {
            self.problem = Some("the forwards' connection to the server has stopped".to_owned());
            return false;
        }
        self.asked = true;
        true
    }
}

/// The thread that asks the server about a room's forwards and sends it the host's changes.
/// Dropping it stops the thread once its current request, if any, is answered; it is not
/// waited for, so a slow server never holds up the window.
#[derive(Debug)]
pub struct ForwardClient {
    requests: Sender<ForwardRequest>,
    answers: Receiver<ForwardAnswer>,
}

impl ForwardClient {
    /// Starts asking `server` about room `room`'s forwards with the host's `token`; `wake` is
    /// called after every answer.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(
        server: &str,
        token: &str,
        room: &str,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Self, std::io::Error> {
        let (req_tx, req_rx) = mpsc::channel();
        let (ans_tx, ans_rx) = mpsc::channel();
        let url = format!("{}/api/rooms/{room}/forwards", server.trim_end_matches('/'));
        let token = token.to_owned();
        std::thread::Builder::new()
            .name("booth-forwards".to_owned())
            .spawn(move || {
                let tell = |a: ForwardAnswer| {
                    let _ = ans_tx.send(a);
                    wake();
                };
                ask_about(&url, &token, &req_rx, &tell);
            })?;
        Ok(Self {
            requests: req_tx,
            answers: ans_rx,
        })
    }
}

/// The client thread: lists the forwards every [`POLL_EVERY`], and after each change.
fn ask_about(
    url: &str,
    token: &str,
    requests: &Receiver<ForwardRequest>,
    tell: &dyn Fn(ForwardAnswer),
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tell(ForwardAnswer::Unreachable(format!(
                "cannot start the network runtime: {e}"
            )));
            return;
        }
    };
    let client = crate::rtc::signal::http_client();
    loop {
        let request = match requests.recv_timeout(POLL_EVERY) {
            Ok(r) => Some(r),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if let Some(request) = request {
            let builder = match request {
                ForwardRequest::Add { url: target, token } => {
                    client.post(url).json(&NewForward { url: target, token })
                }
                ForwardRequest::Remove(id) => client.delete(format!("{url}/{id}")),
            };
            if let Some(refused) = rt.block_on(refusal(builder.bearer_auth(token))) {
                tell(refused);
            }
        }
        tell(rt.block_on(list(client.get(url).bearer_auth(token))));
    }
}

/// Sends a change; the server's refusal, if it refused.
async fn refusal(request: reqwest::RequestBuilder) -> Option<ForwardAnswer> {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Some(ForwardAnswer::Unreachable(e.to_string())),
    };
    let status = response.status();
    if status.is_success() {
        return None;
    }
    Some(ForwardAnswer::Refused(
        match response.json::<ErrorBody>().await {
            Ok(body) => body.message,
            Err(_) => format!("the server refused ({status})"),
        },
    ))
}

/// Asks for the forwards.
async fn list(request: reqwest::RequestBuilder) -> ForwardAnswer {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return ForwardAnswer::Unreachable(e.to_string()),
    };
    let status = response.status();
    if !status.is_success() {
        return ForwardAnswer::Refused(match response.json::<ErrorBody>().await {
            Ok(body) => body.message,
            Err(_) => format!("the server refused ({status})"),
        });
    }
    match response.json::<Vec<ForwardInfo>>().await {
        Ok(list) => ForwardAnswer::Listed(list),
        Err(_) => ForwardAnswer::Refused(
            "the server's answer was not a list of forwards: is it a Booth server?".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::live::forward::ForwardState;

    #[test]
    fn a_url_that_is_not_http_is_refused_before_it_is_sent() {
        let mut p = ForwardPanel {
            url: "rtmp://live.example/app".into(),
            ..ForwardPanel::default()
        };
        p.add();
        assert!(!p.asked);
        assert!(p.problem.as_deref().is_some_and(|w| w.contains("rtmp")));
    }

    #[test]
    fn the_token_leaves_the_field_once_sent_and_the_list_follows_the_server() {
        let mut p = ForwardPanel {
            url: "https://sfu.example/whip".into(),
            token: "secret".into(),
            ..ForwardPanel::default()
        };
        p.add();
        assert!(p.asked && p.url.is_empty() && p.token.is_empty());
        p.take(ForwardAnswer::Listed(vec![ForwardInfo {
            id: "f1".into(),
            url: "https://sfu.example/whip".into(),
            state: ForwardState::Retrying,
            error: Some("cannot reach the endpoint".into()),
        }]));
        assert!(!p.asked);
        assert_eq!(p.forwards[0].state, ForwardState::Retrying);
        p.take(ForwardAnswer::Refused("only the host or a co-host".into()));
        assert_eq!(p.problem.as_deref(), Some("only the host or a co-host"));
    }
}
