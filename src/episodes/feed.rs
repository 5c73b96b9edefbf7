//! The podcast feed (`/podcast.xml`): RSS 2.0 with the iTunes and Podcasting 2.0 namespaces,
//! made from the show, its published episodes and the rooms recording right now, and the URLs
//! every part of Booth builds its links with, so that the feed, the pages and the routes agree.
//!
//! Pure: text in, text out. It must never read files, clocks or the database, and never put a
//! byte of the model into the XML unescaped.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha1::{Digest, Sha1};

use super::{Episode, Person, Show, Status};

/// The Podcasting 2.0 namespace.
pub const PODCAST_NS: &str = "https://podcastindex.org/namespace/1.0";
/// Apple's iTunes namespace.
pub const ITUNES_NS: &str = "http://www.itunes.com/dtds/podcast-1.0.dtd";
/// The namespace `podcast:guid` is a UUIDv5 in (Podcasting 2.0 spec, `<podcast:guid>`).
const PODCAST_GUID_NAMESPACE: [u8; 16] = [
    0xea, 0xd4, 0xc2, 0x36, 0xbf, 0x58, 0x58, 0xc6, 0xa2, 0xc6, 0xa6, 0xb2, 0x8d, 0x12, 0x8c, 0xb6,
];

/// The feed: `{base}/podcast.xml`. `base` has no trailing slash.
#[must_use]
pub fn feed_url(base: &str) -> String {
    format!("{base}/podcast.xml")
}

/// The list of published episodes: `{base}/episodes` (the channel's link).
#[must_use]
pub fn episodes_url(base: &str) -> String {
    format!("{base}/episodes")
}

/// An episode's page: `{base}/episodes/{id}`.
#[must_use]
pub fn episode_page_url(base: &str, id: i64) -> String {
    format!("{base}/episodes/{id}")
}

/// One of an episode's files (see [`super::Files`]): `{base}/media/episodes/{id}/{file}`.
#[must_use]
pub fn media_url(base: &str, id: i64, file: &str) -> String {
    format!("{base}/media/episodes/{id}/{file}")
}

/// The show's cover: `{base}/media/cover.{ext}` (`png` for the one Booth draws).
#[must_use]
pub fn cover_url(base: &str, ext: &str) -> String {
    format!("{base}/media/cover.{ext}")
}

/// A room's page, where a browser listens live: `{base}/r/{room}`.
#[must_use]
pub fn room_page_url(base: &str, room: &str) -> String {
    format!("{base}/r/{room}")
}

/// A room that records right now, carried by the feed as a `podcast:liveItem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveItem {
    /// The room's id (its page is [`room_page_url`]).
    pub room: String,
    /// The room's title.
    pub title: String,
    /// When it went live, ms since the Unix epoch.
    pub started_ms: i64,
    /// The guid its episode will keep once published.
    pub guid: String,
    /// Who is on stage.
    pub people: Vec<Person>,
    /// The room's live MP3 stream, when the server offers one (the item's enclosure).
    pub stream: Option<String>,
}

/// The show's `podcast:guid`: a UUIDv5 of the feed URL with its scheme and trailing slashes
/// removed, in the Podcasting 2.0 namespace, so any directory computes the same one.
#[must_use]
pub fn podcast_guid(feed_url: &str) -> String {
    let rest = feed_url
        .split_once("://")
        .map_or(feed_url, |(_, rest)| rest)
        .trim_end_matches('/');
    let mut sha = Sha1::new();
    sha.update(PODCAST_GUID_NAMESPACE);
    sha.update(rest.as_bytes());
    let digest = sha.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    super::uuid_text(&b)
}

/// `s` made safe for XML text and attribute values: the five special characters as entities,
/// and the control characters XML 1.0 forbids (a paste from a chat can carry them) dropped.
#[must_use]
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A time as RFC 2822 wants it in `pubDate` (`Sun, 06 Nov 1994 08:49:37 GMT`).
#[must_use]
pub fn rfc2822(ms: i64) -> String {
    httpdate::fmt_http_date(system_time(ms))
}

pub use super::iso8601;

fn system_time(ms: i64) -> SystemTime {
    let abs = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + abs
    } else {
        UNIX_EPOCH.checked_sub(abs).unwrap_or(UNIX_EPOCH)
    }
}

/// The episodes the feed carries: published, with an MP3 of known length, newest first.
#[must_use]
pub fn feed_episodes(episodes: &[Episode]) -> Vec<&Episode> {
    let mut out: Vec<&Episode> = episodes
        .iter()
        .filter(|e| {
            e.status == Status::Published && e.files.mp3.is_some() && e.files.mp3_bytes.is_some()
        })
        .collect();
    out.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then(b.id.cmp(&a.id)));
    out
}

/// The feed, `/podcast.xml`: the show, its published episodes (newest first; see
/// [`feed_episodes`]) and the rooms recording now as `podcast:liveItem`s. `base` is the public
/// base URL without a trailing slash; `cover_ext` the extension the cover is served under
/// ([`cover_url`]).
#[must_use]
pub fn podcast_xml(
    show: &Show,
    base: &str,
    cover_ext: &str,
    episodes: &[Episode],
    live: &[LiveItem],
) -> String {
    let mut x = String::with_capacity(4096);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<rss version=\"2.0\" xmlns:itunes=\"{ITUNES_NS}\" xmlns:podcast=\"{PODCAST_NS}\" \
         xmlns:atom=\"http://www.w3.org/2005/Atom\">\n<channel>"
    );
    channel_head(&mut x, show, base, cover_ext);
    for item in live {
        live_item(&mut x, show, base, item);
    }
    for episode in feed_episodes(episodes) {
        episode_item(&mut x, show, base, episode);
    }
    x.push_str("</channel>\n</rss>\n");
    x
}

/// Appends `<tag>text</tag>` with `text` escaped.
fn element(x: &mut String, indent: &str, tag: &str, text: &str) {
    let _ = writeln!(x, "{indent}<{tag}>{}</{tag}>", escape_xml(text));
}

fn channel_head(x: &mut String, show: &Show, base: &str, cover_ext: &str) {
    let e = escape_xml;
    let feed = feed_url(base);
    let cover = cover_url(base, cover_ext);
    let link = episodes_url(base);
    element(x, "  ", "title", &show.title);
    element(x, "  ", "link", &link);
    element(x, "  ", "description", &show.description);
    element(x, "  ", "language", &show.language);
    element(x, "  ", "generator", "Booth");
    let _ = writeln!(
        x,
        "  <atom:link href=\"{}\" rel=\"self\" type=\"application/rss+xml\"/>",
        e(&feed)
    );
    let _ = writeln!(x, "  <itunes:image href=\"{}\"/>", e(&cover));
    let _ = writeln!(
        x,
        "  <image>\n    <url>{}</url>\n    <title>{}</title>\n    <link>{}</link>\n  </image>",
        e(&cover),
        e(&show.title),
        e(&link)
    );
    match show.category.split_once('/') {
        Some((top, sub)) => {
            let _ = writeln!(
                x,
                "  <itunes:category text=\"{}\">\n    <itunes:category text=\"{}\"/>\n  \
                 </itunes:category>",
                e(top.trim()),
                e(sub.trim())
            );
        }
        None => {
            let _ = writeln!(
                x,
                "  <itunes:category text=\"{}\"/>",
                e(show.category.trim())
            );
        }
    }
    element(x, "  ", "itunes:explicit", explicit(show));
    element(x, "  ", "itunes:author", &show.author);
    // Apple asks for the owner's email to verify the feed; an empty one is left out, not sent
    // blank (`booth serve --show-email` sets it).
    let _ = writeln!(
        x,
        "  <itunes:owner>\n    <itunes:name>{}</itunes:name>",
        e(&show.author)
    );
    if !show.email.is_empty() {
        element(x, "    ", "itunes:email", &show.email);
    }
    x.push_str("  </itunes:owner>\n");
    element(x, "  ", "itunes:type", "episodic");
    element(x, "  ", "podcast:guid", &podcast_guid(&feed));
    // The owner is who may move the feed; with no email configured there is no one to name.
    if show.email.is_empty() {
        x.push_str("  <podcast:locked>no</podcast:locked>\n");
    } else {
        let _ = writeln!(
            x,
            "  <podcast:locked owner=\"{}\">no</podcast:locked>",
            e(&show.email)
        );
    }
}

fn explicit(show: &Show) -> &'static str {
    if show.explicit { "true" } else { "false" }
}

/// `podcast:person` for each, `host` for the host and co-hosts, `guest` for speakers.
fn people(x: &mut String, people: &[Person]) {
    for p in people {
        let role = match p.role.as_str() {
            "host" | "co_host" => "host",
            _ => "guest",
        };
        let _ = writeln!(
            x,
            "    <podcast:person role=\"{role}\">{}</podcast:person>",
            escape_xml(&p.name)
        );
    }
}

fn episode_item(x: &mut String, show: &Show, base: &str, ep: &Episode) {
    let e = escape_xml;
    let (Some(mp3), Some(mp3_bytes)) = (&ep.files.mp3, ep.files.mp3_bytes) else {
        return;
    };
    x.push_str("  <item>\n");
    element(x, "    ", "title", &ep.title);
    element(x, "    ", "description", &ep.description);
    element(x, "    ", "link", &episode_page_url(base, ep.id));
    let _ = writeln!(x, "    <guid isPermaLink=\"false\">{}</guid>", e(&ep.guid));
    element(x, "    ", "pubDate", &rfc2822(ep.started_ms));
    let _ = writeln!(
        x,
        "    <enclosure url=\"{}\" length=\"{mp3_bytes}\" type=\"audio/mpeg\"/>",
        e(&media_url(base, ep.id, mp3))
    );
    element(
        x,
        "    ",
        "itunes:duration",
        &(ep.duration_ms / 1000).to_string(),
    );
    element(x, "    ", "itunes:episodeType", "full");
    element(x, "    ", "itunes:explicit", explicit(show));
    if let Some(chapters) = &ep.files.chapters {
        let _ = writeln!(
            x,
            "    <podcast:chapters url=\"{}\" type=\"application/json+chapters\"/>",
            e(&media_url(base, ep.id, chapters))
        );
    }
    if !ep.files.program.is_empty() {
        let length = ep
            .files
            .program_bytes
            .map(|n| format!(" length=\"{n}\""))
            .unwrap_or_default();
        let _ = writeln!(
            x,
            "    <podcast:alternateEnclosure type=\"audio/opus\"{length} title=\"Opus\">\n      \
             <podcast:source uri=\"{}\" contentType=\"audio/ogg; codecs=opus\"/>\n    \
             </podcast:alternateEnclosure>",
            e(&media_url(base, ep.id, &ep.files.program))
        );
    }
    people(x, &ep.people);
    x.push_str("  </item>\n");
}

fn live_item(x: &mut String, show: &Show, base: &str, item: &LiveItem) {
    let e = escape_xml;
    let page = room_page_url(base, &item.room);
    let _ = writeln!(
        x,
        "  <podcast:liveItem status=\"live\" start=\"{}\">",
        iso8601(item.started_ms)
    );
    element(x, "    ", "title", &item.title);
    element(x, "    ", "link", &page);
    let _ = writeln!(
        x,
        "    <guid isPermaLink=\"false\">{}</guid>",
        e(&item.guid)
    );
    element(x, "    ", "itunes:explicit", explicit(show));
    if let Some(stream) = &item.stream {
        let _ = writeln!(
            x,
            "    <enclosure url=\"{}\" length=\"0\" type=\"audio/mpeg\"/>",
            e(stream)
        );
    }
    let _ = writeln!(
        x,
        "    <podcast:contentLink href=\"{}\">Listen live in the room</podcast:contentLink>",
        e(&page)
    );
    people(x, &item.people);
    x.push_str("  </podcast:liveItem>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episodes::{Chapter, Files};

    fn episode(id: i64, title: &str, status: Status) -> Episode {
        Episode {
            id,
            guid: format!("booth-episode-{id}"),
            room: format!("room{id}"),
            title: title.into(),
            description: "A room.".into(),
            game: None,
            started_ms: 1_700_000_000_000 + id * 86_400_000,
            duration_ms: 3_723_900,
            status,
            cut_short: false,
            files: Files {
                program: "program.opus".into(),
                program_bytes: Some(1234),
                mp3: Some("episode.mp3".into()),
                mp3_bytes: Some(98_765),
                chapters: Some("chapters.json".into()),
                tracks: Vec::new(),
            },
            chapters: vec![Chapter {
                start_ms: 0,
                title: "Start".into(),
            }],
            people: vec![
                Person {
                    name: "Ana".into(),
                    role: "host".into(),
                },
                Person {
                    name: "Bo <b>".into(),
                    role: "speaker".into(),
                },
            ],
            loudness_lufs: None,
            error: None,
        }
    }

    #[test]
    fn the_owner_email_is_named_only_when_configured() {
        let xml = podcast_xml(&Show::default(), "http://h", "png", &[], &[]);
        assert!(!xml.contains("itunes:email"), "{xml}");
        assert!(
            xml.contains("<itunes:owner>\n    <itunes:name>Booth</itunes:name>\n  </itunes:owner>")
        );
        let show = Show {
            email: "host@booth.example".into(),
            ..Show::default()
        };
        let xml = podcast_xml(&show, "http://h", "png", &[], &[]);
        assert!(
            xml.contains("<itunes:email>host@booth.example</itunes:email>"),
            "{xml}"
        );
    }

    #[test]
    fn podcast_guid_matches_the_spec_example() {
        // The Podcasting 2.0 spec's example: podcastindex.org/namespace/1.0#guid.
        assert_eq!(
            podcast_guid("https://mp3s.nashownotes.com/pc20rss.xml"),
            "917393e3-1b1e-5cef-ace4-edaa54e1f810"
        );
        assert_eq!(
            podcast_guid("http://mp3s.nashownotes.com/pc20rss.xml/"),
            "917393e3-1b1e-5cef-ace4-edaa54e1f810"
        );
    }

    #[test]
    fn dates_are_rfc2822_and_iso8601() {
        assert_eq!(rfc2822(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(iso8601(784_111_777_123), "1994-11-06T08:49:37.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn escaping_covers_text_and_attributes_and_drops_control_characters() {
        assert_eq!(
            escape_xml("a & <b> \"c\" 'd' \u{1} 🎮"),
            "a &amp; &lt;b&gt; &quot;c&quot; &apos;d&apos;  🎮"
        );
    }

    #[test]
    fn only_published_episodes_with_an_mp3_are_items_newest_first() {
        let mut no_mp3 = episode(4, "no mp3", Status::Published);
        no_mp3.files.mp3 = None;
        let eps = [
            episode(1, "first", Status::Published),
            episode(2, "unlisted", Status::Unlisted),
            episode(3, "second", Status::Published),
            no_mp3,
            episode(5, "rendering", Status::Rendering),
        ];
        let xml = podcast_xml(&Show::default(), "https://b.example", "png", &eps, &[]);
        assert_eq!(xml.matches("<item>").count(), 2);
        let second = xml.find("<title>second</title>").unwrap();
        let first = xml.find("<title>first</title>").unwrap();
        assert!(second < first, "newest first:\n{xml}");
        assert!(!xml.contains("unlisted") && !xml.contains("rendering"));
        assert!(
            xml.contains("<podcast:locked>no</podcast:locked>"),
            "no owner without an email"
        );
    }

    #[test]
    fn an_item_carries_what_podcast_apps_need() {
        let show = Show {
            email: "me@example.com".into(),
            ..Show::default()
        };
        let eps = [episode(7, "Boss & <Co>", Status::Published)];
        let xml = podcast_xml(&show, "https://b.example", "png", &eps, &[]);
        for want in [
            "<title>Boss &amp; &lt;Co&gt;</title>",
            "<enclosure url=\"https://b.example/media/episodes/7/episode.mp3\" length=\"98765\" \
             type=\"audio/mpeg\"/>",
            "<itunes:duration>3723</itunes:duration>",
            "<guid isPermaLink=\"false\">booth-episode-7</guid>",
            "<podcast:chapters url=\"https://b.example/media/episodes/7/chapters.json\" \
             type=\"application/json+chapters\"/>",
            "<podcast:alternateEnclosure type=\"audio/opus\" length=\"1234\"",
            "<podcast:source uri=\"https://b.example/media/episodes/7/program.opus\"",
            "<podcast:person role=\"host\">Ana</podcast:person>",
            "<podcast:person role=\"guest\">Bo &lt;b&gt;</podcast:person>",
            "<itunes:category text=\"Leisure\">",
            "<itunes:category text=\"Video Games\"/>",
            "<itunes:image href=\"https://b.example/media/cover.png\"/>",
            "<podcast:locked owner=\"me@example.com\">no</podcast:locked>",
            "<itunes:explicit>false</itunes:explicit>",
            "<atom:link href=\"https://b.example/podcast.xml\" rel=\"self\"",
            "<link>https://b.example/episodes/7</link>",
        ] {
            assert!(xml.contains(want), "no {want} in\n{xml}");
        }
    }

    #[test]
    fn a_live_room_is_a_live_item_with_its_stream_only_when_there_is_one() {
        let mut live = LiveItem {
            room: "abc".into(),
            title: "Live now".into(),
            started_ms: 784_111_777_000,
            guid: "g-live".into(),
            people: Vec::new(),
            stream: None,
        };
        let xml = podcast_xml(
            &Show::default(),
            "http://h",
            "png",
            &[],
            std::slice::from_ref(&live),
        );
        assert!(
            xml.contains("<podcast:liveItem status=\"live\" start=\"1994-11-06T08:49:37.000Z\">")
        );
        assert!(xml.contains("<podcast:contentLink href=\"http://h/r/abc\">"));
        assert!(!xml.contains("<enclosure"));
        live.stream = Some("http://h/live/abc.mp3".into());
        let xml = podcast_xml(&Show::default(), "http://h", "png", &[], &[live]);
        assert!(xml.contains("<enclosure url=\"http://h/live/abc.mp3\""));
    }
}
