//! The bytes of Icecast's source protocol: the `PUT` that opens a mount, the admin call that
//! titles an MP3 mount, and reading Icecast's answers. No sockets are opened here; the request
//! bytes are tested as they go out.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::timeout;

use super::target::{IcecastTarget, MountKind, percent_encode};

/// The largest answer head read from Icecast.
const MAX_HEAD: usize = 8 * 1024;
/// The most of Icecast's error message kept for logs and the status.
const MAX_MESSAGE: usize = 200;

/// A header value as sent: control characters (a CR or LF would end the header) become spaces.
fn header_value(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The source request that opens a mount: headers only; the stream follows Icecast's
/// `100 Continue`. `mp3_kbps` is the MP3 stream's bitrate (Icecast's directory shows it).
#[must_use]
pub fn source_request(
    target: &IcecastTarget,
    mount: &str,
    kind: MountKind,
    title: &str,
    mp3_kbps: u32,
) -> String {
    format!(
        "PUT {mount} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Authorization: {auth}\r\n\
         User-Agent: Booth/{version}\r\n\
         Content-Type: {content_type}\r\n\
         Expect: 100-continue\r\n\
         ice-name: {name}\r\n\
         ice-description: {description}\r\n\
         ice-public: 0\r\n\
         ice-audio-info: {info}\r\n\
         \r\n",
        host = target.authority(),
        auth = target.basic_auth(),
        version = env!("CARGO_PKG_VERSION"),
        content_type = kind.content_type(),
        name = header_value(title),
        description = "A live room on Booth",
        info = kind.audio_info(mp3_kbps),
    )
}

/// The admin request that sets an MP3 mount's title (Ogg carries it in its OpusTags).
#[must_use]
pub fn metadata_request(target: &IcecastTarget, mount: &str, title: &str) -> String {
    format!(
        "GET /admin/metadata?mount={}&mode=updinfo&song={} HTTP/1.0\r\n\
         Host: {}\r\n\
         Authorization: {}\r\n\
         User-Agent: Booth/{}\r\n\
         \r\n",
        percent_encode(mount),
        percent_encode(title),
        target.authority(),
        target.basic_auth(),
        env!("CARGO_PKG_VERSION"),
    )
}

/// An HTTP answer's status and what followed its head (Icecast's message, when it refuses).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) message: String,
}

/// Reads an answer's head and, for an error, the start of its body.
pub(super) async fn read_answer(
    stream: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<Option<Answer>> {
    let mut buf = Vec::with_capacity(512);
    let mut byte = [0u8; 256];
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut byte).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let Some(status) = parse_status(&head) else {
        return Ok(None);
    };
    let mut body = buf[head_end + 4..].to_vec();
    if status >= 300 {
        // Icecast closes after an error; a second is plenty for its short message.
        let _ = timeout(Duration::from_secs(1), async {
            while body.len() < 4096 {
                match stream.read(&mut byte).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body.extend_from_slice(&byte[..n]),
                }
            }
        })
        .await;
    }
    let reason = head.lines().next().unwrap_or("").splitn(3, ' ').nth(2);
    let text = plain_text(&String::from_utf8_lossy(&body));
    let message = if text.is_empty() {
        reason.unwrap_or("no reason given").to_owned()
    } else {
        text
    };
    Ok(Some(Answer { status, message }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The status code of `HTTP/1.x NNN reason` (Icecast 2.4 also answers `ICE/1.0`-style lines
/// with the same shape).
fn parse_status(head: &str) -> Option<u16> {
    let line = head.lines().next()?;
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !(version.starts_with("HTTP/") || version.starts_with("ICE/")) {
        return None;
    }
    parts.next()?.parse().ok()
}

/// An HTML or text error page as one short line: tags dropped, whitespace collapsed.
fn plain_text(body: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(if c.is_control() { ' ' } else { c }),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    words.join(" ").chars().take(MAX_MESSAGE).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> IcecastTarget {
        IcecastTarget::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn the_source_request_is_a_put_with_basic_auth_and_expect() {
        let t = target("http://source:hackme@127.0.0.1:8000/");
        let r = source_request(&t, "/abc.ogg", MountKind::Ogg, "Launch\r\nnight", 128);
        let head = r.strip_suffix("\r\n\r\n").unwrap_or_default();
        let lines: Vec<&str> = head.split("\r\n").collect();
        assert_eq!(lines[0], "PUT /abc.ogg HTTP/1.1");
        // `printf source:hackme | base64` (coreutils).
        assert!(lines.contains(&"Authorization: Basic c291cmNlOmhhY2ttZQ=="));
        assert!(lines.contains(&"Content-Type: audio/ogg"));
        assert!(lines.contains(&"Expect: 100-continue"));
        assert!(lines.contains(&"ice-name: Launch  night"));
        assert!(lines.contains(&"ice-public: 0"));
        assert!(lines.contains(&"Host: 127.0.0.1:8000"));
        assert!(!r.to_ascii_lowercase().contains("transfer-encoding"));
        let mp3 = source_request(&t, "/abc.mp3", MountKind::Mp3, "T", 128);
        assert!(mp3.contains("Content-Type: audio/mpeg\r\n"));
        assert!(
            mp3.contains("ice-audio-info: ice-samplerate=48000;ice-bitrate=128;ice-channels=2\r\n")
        );
        let meta = metadata_request(&t, "/abc.mp3", "Raid & chill");
        assert!(meta.starts_with(
            "GET /admin/metadata?mount=%2Fabc.mp3&mode=updinfo&song=Raid%20%26%20chill HTTP/1.0\r\n"
        ));
    }

    #[tokio::test]
    async fn answers_give_the_status_and_icecast_s_message() -> std::io::Result<()> {
        let mut ok: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(read_answer(&mut ok).await?.map(|a| a.status), Some(100));
        let mut refused: &[u8] = b"HTTP/1.0 403 Forbidden\r\nContent-Type: text/html\r\n\r\n\
            <html><body><b>Mountpoint in use</b></body></html>";
        let answer = read_answer(&mut refused).await?;
        assert_eq!(
            answer,
            Some(Answer {
                status: 403,
                message: "Mountpoint in use".to_owned()
            })
        );
        let mut garbage: &[u8] = b"SSH-2.0-OpenSSH\r\n\r\n";
        assert_eq!(read_answer(&mut garbage).await?, None);
        Ok(())
    }
}
