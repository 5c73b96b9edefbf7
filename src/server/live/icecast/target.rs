//! Where an Icecast push goes: the source URL (credentials, host, mount prefix) and the two
//! mounts a room gets. Parsing only, no IO; the password is never shown ([`redact`], and the
//! target's `Display` and `Debug`).

use std::fmt;
use std::str::FromStr;

use super::IcecastError;
use crate::server::live::Format;

/// Where pushes go: an Icecast server, its source credentials and a mount prefix, from a URL
/// like `http://source:PASSWORD@host:8000/prefix`.
#[derive(Clone, PartialEq, Eq)]
pub struct IcecastTarget {
    user: String,
    password: String,
    host: String,
    port: u16,
    /// Empty, or `/a/b` (no trailing slash).
    prefix: String,
}

/// One of a room's two mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// MP3 (`{room}.mp3`), for every radio player.
    Mp3,
    /// Ogg Opus (`{room}.ogg`).
    Ogg,
}

impl MountKind {
    /// Both, in the order they are listed.
    pub const ALL: [Self; 2] = [Self::Mp3, Self::Ogg];

    /// The mount's file extension.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::Ogg => "ogg",
        }
    }

    pub(super) fn content_type(self) -> &'static str {
        match self {
            Self::Mp3 => "audio/mpeg",
            Self::Ogg => "audio/ogg",
        }
    }

    pub(super) fn format(self) -> Format {
        match self {
            Self::Mp3 => Format::Mp3,
            Self::Ogg => Format::Ogg,
        }
    }

    /// What `ice-audio-info` says of the mount; `mp3_kbps` is the hub's MP3 bitrate.
    pub(super) fn audio_info(self, mp3_kbps: u32) -> String {
        match self {
            Self::Mp3 => format!("ice-samplerate=48000;ice-bitrate={mp3_kbps};ice-channels=2"),
            Self::Ogg => "ice-samplerate=48000;ice-channels=2".to_owned(),
        }
    }
}

impl IcecastTarget {
    /// Parses `http://[USER:]PASSWORD@HOST[:PORT][/PREFIX]` (user `source`, port 8000 when
    /// left out; `source:PASSWORD` is the usual form, and a password alone is taken as such).
    ///
    /// # Errors
    /// Not `http://`, no password, no host, a bad port, or a query in the URL.
    pub fn parse(url: &str) -> Result<Self, IcecastError> {
        let bad = |why| IcecastError::BadUrl {
            url: redact(url),
            why,
        };
        let url = url.trim();
        let rest = url.strip_prefix("http://").ok_or(bad(
            "only http:// works (Icecast's source port speaks plain HTTP)",
        ))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if path.contains(['?', '#']) {
            return Err(bad("a mount prefix cannot hold '?' or '#'"));
        }
        let (userinfo, host_port) = authority
            .rsplit_once('@')
            .ok_or(bad("it needs the source password"))?;
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (percent_decode(user), percent_decode(password)),
            None => ("source".to_owned(), percent_decode(userinfo)),
        };
        let user = if user.is_empty() {
            "source".to_owned()
        } else {
            user
        };
        if password.is_empty() {
            return Err(bad("it needs the source password"));
        }
        let (host, port) =
            split_host_port(host_port).ok_or(bad("the host or port is not valid"))?;
        let prefix = path.trim_matches('/');
        Ok(Self {
            user,
            password,
            host,
            port,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("/{prefix}")
            },
        })
    }

    /// The mount a room's stream goes to: `{prefix}/{room}.{mp3|ogg}`.
    #[must_use]
    pub fn mount(&self, room: &str, kind: MountKind) -> String {
        format!("{}/{room}.{}", self.prefix, kind.extension())
    }

    /// Where listeners hear that mount (no credentials in it).
    #[must_use]
    pub fn listen_url(&self, room: &str, kind: MountKind) -> String {
        format!("http://{}{}", self.authority(), self.mount(room, kind))
    }

    pub(super) fn host(&self) -> &str {
        &self.host
    }

    pub(super) fn port(&self) -> u16 {
        self.port
    }

    pub(super) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub(super) fn basic_auth(&self) -> String {
        format!(
            "Basic {}",
            base64(format!("{}:{}", self.user, self.password).as_bytes())
        )
    }
}

impl FromStr for IcecastTarget {
    type Err = IcecastError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for IcecastTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "http://{}:***@{}{}/",
            self.user,
            self.authority(),
            self.prefix
        )
    }
}

impl fmt::Debug for IcecastTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IcecastTarget({self})")
    }
}

/// `HOST[:PORT]` or `[V6][:PORT]`; port 8000 when left out.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok().filter(|&p| p != 0)?,
        None => 8000,
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    (!host.is_empty() && host.chars().all(valid)).then(|| (host.to_owned(), port))
}

/// A URL as it may be shown: anything between `//` and `@` past the first `:` is hidden.
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("//") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}//{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.extend(u8::try_from(hi * 16 + lo));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648), for the Basic credentials.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for group in input.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> shift & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> IcecastTarget {
        IcecastTarget::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn a_source_url_gives_credentials_host_and_mounts() {
        let t = target("http://source:hackme@radio.example:8100/booth/");
        assert_eq!((t.user.as_str(), t.password.as_str()), ("source", "hackme"));
        assert_eq!((t.host.as_str(), t.port), ("radio.example", 8100));
        assert_eq!(t.mount("abc", MountKind::Mp3), "/booth/abc.mp3");
        assert_eq!(
            t.listen_url("abc", MountKind::Ogg),
            "http://radio.example:8100/booth/abc.ogg"
        );
        let bare = target("http://p%40ss@127.0.0.1");
        assert_eq!(
            (bare.user.as_str(), bare.password.as_str()),
            ("source", "p@ss")
        );
        assert_eq!(bare.port, 8000);
        assert_eq!(bare.mount("r", MountKind::Ogg), "/r.ogg");
        let v6 = target("http://source:pw@[::1]:8001");
        assert_eq!(
            v6.listen_url("r", MountKind::Mp3),
            "http://[::1]:8001/r.mp3"
        );
    }

    #[test]
    fn the_password_is_never_shown() {
        let t = target("http://source:s3cret-pw@127.0.0.1:8000/live");
        for shown in [t.to_string(), format!("{t:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(
                shown.contains("http://source:***@127.0.0.1:8000/live"),
                "{shown}"
            );
        }
        let refused = IcecastTarget::parse("https://source:s3cret-pw@host/")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("only http://"), "{refused}");
        assert!(!refused.contains("s3cret"), "{refused}");
        assert_eq!(redact("http://a:b@c/d@e"), "http://a:***@c/d@e");
        // RFC 7617's own example.
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, why) in [
            ("http://127.0.0.1:8000/", "password"),
            ("http://source:@127.0.0.1/", "password"),
            ("http://source:pw@127.0.0.1:99999/", "host or port"),
            ("http://source:pw@/", "host or port"),
            ("http://source:pw@h/x?y=1", "'?'"),
            ("icecast.example", "http://"),
        ] {
            let e = IcecastTarget::parse(url).err().map(|e| e.to_string());
            assert!(e.as_deref().unwrap_or("").contains(why), "{url}: {e:?}");
        }
    }
}
