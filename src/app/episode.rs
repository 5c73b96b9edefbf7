//! The episode a room became, as the overlay shows it once the room has ended: waiting while it
//! is rendered, then "Episode ready" with its page and feed links and the host's changes
//! (rename, unlist or publish, delete; one at a time). [`EpisodePanel`] is the state and the
//! actions; [`EpisodeClient`] is the thread that talks to the server's episode API
//! (`GET`/`PATCH`/`DELETE /api/episodes/{id}`), asking every [`POLL_EVERY`] until rendering has
//! settled, so the window never waits on the network.
//!
//! Never here: drawing (no GUI types), or a request made on the window's thread.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::episodes::Status;
use crate::room::protocol::{EpisodeRef, ErrorBody};
use crate::server::episodes::{EpisodeChange, EpisodeView};

/// How often the server is asked while the episode is being recorded or rendered.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// A change the host asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EpisodeRequest {
    /// A new title.
    Rename(String),
    /// Into the feed (`Published`) or out of it (`Unlisted`).
    SetStatus(Status),
    /// Delete the episode and its files.
    Delete,
}

/// What the server answered.
#[derive(Clone, Debug)]
pub enum EpisodeAnswer {
    /// The episode as it is now.
    Seen(Box<EpisodeView>),
    /// The episode is deleted (or no longer exists).
    Deleted,
    /// A change was refused; the server's reason.
    Refused(String),
    /// The server could not be reached; why.
    Unreachable(String),
}

/// Where the episode stands, as the panel shows it.
#[derive(Clone, Copy, Debug)]
pub enum EpisodeStage<'a> {
    /// Being recorded or rendered (`None`: nothing heard yet).
    Waiting(Option<Status>),
    /// Rendered: published or unlisted.
    Ready(&'a EpisodeView),
    /// Rendering failed; why.
    Failed(&'a str),
    /// Deleted.
    Deleted,
}

/// Whether rendering is over for an episode in `status` (nothing more to wait for).
#[must_use]
pub fn settled(status: Status) -> bool {
    matches!(
        status,
        Status::Published | Status::Unlisted | Status::Failed
    )
}

/// The episode panel's state.
#[derive(Debug)]
pub struct EpisodePanel {
    /// The episode's number.
    pub id: i64,
    latest: Option<EpisodeView>,
    /// The title field.
    pub title: String,
    /// Delete was clicked once: the next click deletes.
    pub confirm_delete: bool,
    /// The change on its way to the server (the others wait for its answer).
    pub asked: Option<EpisodeRequest>,
    /// The last change refused, or the server unreachable.
    pub problem: Option<String>,
    deleted: bool,
    client: Option<EpisodeClient>,
}

impl EpisodePanel {
    /// A panel fed by hand with [`EpisodePanel::take`] (its requests go nowhere).
    #[must_use]
    pub fn unwatched(id: i64) -> Self {
        Self {
            id,
            latest: None,
            title: String::new(),
            confirm_delete: false,
            asked: None,
            problem: None,
            deleted: false,
            client: None,
        }
    }

    /// A panel for `episode` on the server at `server`, changed with the host's `token`; its
    /// client thread calls `wake` when an answer arrives.
    #[must_use]
    pub fn watch(
        server: &str,
        token: &str,
        episode: &EpisodeRef,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        let mut panel = Self::unwatched(episode.id);
        match EpisodeClient::start(server, token, episode.id, wake) {
            Ok(client) => panel.client = Some(client),
            Err(e) => panel.problem = Some(format!("cannot ask the server about the episode: {e}")),
        }
        panel
    }

    /// The episode as last heard.
    #[must_use]
    pub fn latest(&self) -> Option<&EpisodeView> {
        self.latest.as_ref()
    }

    /// Where the episode stands.
    #[must_use]
    pub fn stage(&self) -> EpisodeStage<'_> {
        if self.deleted {
            return EpisodeStage::Deleted;
        }
        match &self.latest {
            None => EpisodeStage::Waiting(None),
            Some(v) => match v.episode.status {
                Status::Published | Status::Unlisted => EpisodeStage::Ready(v),
                Status::Failed => EpisodeStage::Failed(
                    v.episode
                        .error
                        .as_deref()
                        .unwrap_or("rendering failed, for no reason given"),
                ),
                s => EpisodeStage::Waiting(Some(s)),
            },
        }
    }

    /// Takes in the client's answers. Call once per frame.
    pub fn poll(&mut self) {
        let mut answers = Vec::new();
        if let Some(client) = &self.client {
            while let Some(a) = client.try_answer() {
                answers.push(a);
            }
        }
        for a in answers {
            self.take(a);
        }
    }

    /// Takes in one answer from the server.
    pub fn take(&mut self, answer: EpisodeAnswer) {
        match answer {
            EpisodeAnswer::Seen(view) => {
                // The field follows the title until the host edits it.
                let untouched = self
                    .latest
                    .as_ref()
                    .is_none_or(|old| old.episode.title == self.title);
                if untouched || matches!(self.asked, Some(EpisodeRequest::Rename(_))) {
                    self.title.clone_from(&view.episode.title);
                }
                self.latest = Some(*view);
                self.problem = None;
                self.asked = None;
            }
            EpisodeAnswer::Deleted => {
                self.deleted = true;
                self.asked = None;
            }
            EpisodeAnswer::Refused(why) => {
                self.problem = Some(why);
                self.asked = None;
            }
            EpisodeAnswer::Unreachable(why) => {
                self.problem = Some(format!("cannot reach the room server: {why}"));
                self.asked = None;
            }
        }
    }

    /// Renames the episode to the title field (trimmed), when it says something new.
    pub fn rename(&mut self) {
        let title = self.title.trim().to_owned();
        if title.is_empty() {
            self.problem = Some("an episode needs a title".to_owned());
            return;
        }
        if self.latest().is_some_and(|v| v.episode.title != title) {
            self.ask(EpisodeRequest::Rename(title));
        }
    }

    /// Puts the episode in the feed (`true`) or takes it out (`false`).
    pub fn set_listed(&mut self, listed: bool) {
        self.ask(EpisodeRequest::SetStatus(if listed {
            Status::Published
        } else {
            Status::Unlisted
        }));
    }

    /// Deletes the episode on the second call in a row (the first asks to confirm).
    pub fn delete(&mut self) {
        if self.confirm_delete {
            self.confirm_delete = false;
            self.ask(EpisodeRequest::Delete);
        } else {
            self.confirm_delete = true;
        }
    }

    /// Keeps the episode after all (the first Delete click is forgotten).
    pub fn keep(&mut self) {
        self.confirm_delete = false;
    }

    /// Changes need a rendered episode, and wait for the one on its way.
    #[must_use]
    pub fn can_change(&self) -> bool {
        self.asked.is_none() && matches!(self.stage(), EpisodeStage::Ready(_))
    }

    fn ask(&mut self, request: EpisodeRequest) {
        if !self.can_change() {
            return;
        }
        if let Some(client) = &self.client
            && !client.send(request.clone())
        {
            self.problem = Some("the episode's connection to the server has stopped".to_owned());
            return;
        }
        self.asked = Some(request);
    }
}

/// The thread that asks the server about one episode and sends it the host's changes.
/// Dropping it stops the thread (after the request on its way, if any).
#[derive(Debug)]
pub struct EpisodeClient {
    requests: Option<Sender<EpisodeRequest>>,
    answers: Receiver<EpisodeAnswer>,
    thread: Option<JoinHandle<()>>,
}

impl EpisodeClient {
    /// Starts asking `server` about episode `id`; `token` is the host token of the room that
    /// recorded it. `wake` is called after every answer.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(
        server: &str,
        token: &str,
        id: i64,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Self, std::io::Error> {
        let (req_tx, req_rx) = mpsc::channel();
        let (ans_tx, ans_rx) = mpsc::channel();
        let url = format!("{}/api/episodes/{id}", server.trim_end_matches('/'));
        let token = token.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("booth-episode-{id}"))
            .spawn(move || {
                let tell = |a: EpisodeAnswer| {
                    let _ = ans_tx.send(a);
                    wake();
                };
                ask_about(&url, &token, &req_rx, &tell);
            })?;
        Ok(Self {
            requests: Some(req_tx),
            answers: ans_rx,
            thread: Some(thread),
        })
    }

    /// Sends a change; false if the thread has stopped.
    #[must_use]
    pub fn send(&self, request: EpisodeRequest) -> bool {
        self.requests
            .as_ref()
            .is_some_and(|r| r.send(request).is_ok())
    }

    /// The next answer, if any.
    #[must_use]
    pub fn try_answer(&self) -> Option<EpisodeAnswer> {
        self.answers.try_recv().ok()
    }
}

impl Drop for EpisodeClient {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The client thread: polls until the episode has settled, and sends each change asked for.
fn ask_about(
    url: &str,
    token: &str,
    requests: &Receiver<EpisodeRequest>,
    tell: &dyn Fn(EpisodeAnswer),
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tell(EpisodeAnswer::Unreachable(format!(
                "cannot start the network runtime: {e}"
            )));
            return;
        }
    };
    let client = crate::rtc::signal::http_client();
    let mut waiting = true;
    loop {
        if waiting {
            let answer = rt.block_on(send(client.get(url)));
            waiting = match &answer {
                EpisodeAnswer::Seen(v) => !settled(v.episode.status),
                EpisodeAnswer::Deleted | EpisodeAnswer::Refused(_) => false,
                EpisodeAnswer::Unreachable(_) => true,
            };
            tell(answer);
        }
        let request = if waiting {
            match requests.recv_timeout(POLL_EVERY) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match requests.recv() {
                Ok(r) => r,
                Err(_) => return,
            }
        };
        let builder = match request {
            EpisodeRequest::Rename(title) => client.patch(url).json(&EpisodeChange {
                title: Some(title),
                status: None,
            }),
            EpisodeRequest::SetStatus(status) => client.patch(url).json(&EpisodeChange {
                title: None,
                status: Some(status),
            }),
            EpisodeRequest::Delete => client.delete(url),
        };
        tell(rt.block_on(send(builder.bearer_auth(token))));
    }
}

/// Sends one request and reads the server's answer.
async fn send(request: reqwest::RequestBuilder) -> EpisodeAnswer {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return EpisodeAnswer::Unreachable(e.to_string()),
    };
    let status = response.status();
    if status == reqwest::StatusCode::NO_CONTENT || status == reqwest::StatusCode::NOT_FOUND {
        return EpisodeAnswer::Deleted;
    }
    if status.is_success() {
        return match response.json::<EpisodeView>().await {
            Ok(view) => EpisodeAnswer::Seen(Box::new(view)),
            Err(_) => EpisodeAnswer::Refused(
                "the server's answer was not an episode: is it a Booth server?".to_owned(),
            ),
        };
    }
    EpisodeAnswer::Refused(match response.json::<ErrorBody>().await {
        Ok(body) => body.message,
        Err(_) => format!("the server refused ({status})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episodes::{Episode, Files};

    /// An episode as `GET /api/episodes/7` gives it.
    fn view(status: Status, title: &str) -> EpisodeView {
        EpisodeView {
            episode: Episode {
                id: 7,
                guid: "g".into(),
                room: "r".into(),
                title: title.into(),
                description: String::new(),
                game: None,
                started_ms: 0,
                duration_ms: 60_000,
                status,
                cut_short: false,
                files: Files::default(),
                chapters: Vec::new(),
                people: Vec::new(),
                loudness_lufs: None,
                error: (status == Status::Failed).then(|| "ffmpeg is missing".into()),
            },
            page: "http://h/episodes/7".into(),
            audio: None,
            alternate: "http://h/media/episodes/7/program.opus".into(),
            chapters_url: None,
            feed: "http://h/podcast.xml".into(),
        }
    }

    fn seen(status: Status, title: &str) -> EpisodeAnswer {
        EpisodeAnswer::Seen(Box::new(view(status, title)))
    }

    #[test]
    fn it_waits_while_rendering_then_is_ready_with_its_title_in_the_field() {
        let mut p = EpisodePanel::unwatched(7);
        assert!(matches!(p.stage(), EpisodeStage::Waiting(None)));
        p.take(seen(Status::Rendering, "Live review"));
        assert!(matches!(
            p.stage(),
            EpisodeStage::Waiting(Some(Status::Rendering))
        ));
        assert!(!p.can_change());
        p.delete();
        p.delete();
        assert_eq!(
            p.asked, None,
            "nothing can be changed before rendering ends"
        );
        p.take(seen(Status::Published, "Live review"));
        assert!(matches!(p.stage(), EpisodeStage::Ready(_)));
        assert_eq!(p.title, "Live review");
    }

    #[test]
    fn a_failed_render_says_why() {
        let mut p = EpisodePanel::unwatched(7);
        p.take(seen(Status::Failed, "x"));
        assert!(matches!(
            p.stage(),
            EpisodeStage::Failed("ffmpeg is missing")
        ));
    }

    #[test]
    fn delete_asks_twice_and_one_change_goes_at_a_time() {
        let mut p = EpisodePanel::unwatched(7);
        p.take(seen(Status::Published, "Live review"));
        p.delete();
        assert!(p.confirm_delete);
        assert_eq!(p.asked, None);
        p.keep();
        p.delete();
        p.delete();
        assert_eq!(p.asked, Some(EpisodeRequest::Delete));
        p.set_listed(false);
        assert_eq!(
            p.asked,
            Some(EpisodeRequest::Delete),
            "one change at a time"
        );
        p.take(EpisodeAnswer::Deleted);
        assert!(matches!(p.stage(), EpisodeStage::Deleted));
    }

    #[test]
    fn rename_sends_the_trimmed_title_and_the_answer_fills_the_field() {
        let mut p = EpisodePanel::unwatched(7);
        p.take(seen(Status::Published, "Live review"));
        p.title = "  ".into();
        p.rename();
        assert_eq!(p.asked, None);
        assert!(p.problem.is_some());
        p.title = " Boss fight night ".into();
        p.rename();
        assert_eq!(
            p.asked,
            Some(EpisodeRequest::Rename("Boss fight night".into()))
        );
        p.take(seen(Status::Published, "Boss fight night"));
        assert_eq!(p.title, "Boss fight night");
        assert_eq!(p.problem, None);
        // A refusal is said, and the next change can go.
        p.set_listed(false);
        p.take(EpisodeAnswer::Refused("no".into()));
        assert_eq!(p.problem.as_deref(), Some("no"));
        assert!(p.can_change());
    }
}
