//! The podcast feed as podcast apps read it: a feed Booth writes, with two episodes (one with a
//! title full of XML's special characters and an emoji) and a live room, parsed by two
//! independent parsers from PyPI, feedparser and podcastparser (gPodder's), and by Python's
//! `xml.etree` (well-formed), in the Python that `tests/run` prepares; and the default cover as
//! ffprobe reads it.

use std::path::{Path, PathBuf};
use std::process::Command;

use booth::episodes::feed::{LiveItem, media_url, podcast_xml};
use booth::episodes::{Chapter, Episode, Files, Person, Show, Status};
use serde_json::Value;

use crate::support::{run, tempdir};

/// The Python with feedparser and podcastparser that `tests/run` prepares; `None` (skip) when
/// absent, unless `BOOTH_REQUIRE_TOOLS` is set.
pub fn feed_parsers_python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("BOOTH_PEERS_PYTHON").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/peers-venv/bin/python")),
    ];
    let found = candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", "import feedparser, podcastparser"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var("BOOTH_REQUIRE_TOOLS").is_err(),
            "feedparser and podcastparser are required (BOOTH_REQUIRE_TOOLS is set): tests/run \
             installs them"
        );
        eprintln!("skipping: no Python with feedparser and podcastparser (tests/run installs one)");
    }
    found
}

const TRICKY_TITLE: &str = "Boss & <Co> \"live\" 🎮";
const BASE: &str = "https://booth.example";

fn episode(id: i64, title: &str, mp3_bytes: u64, duration_ms: u64) -> Episode {
    Episode {
        id,
        guid: format!("booth:show:episode-{id}"),
        room: format!("room-{id}"),
        title: title.into(),
        description: format!("Room {id}, with 'quotes' & <tags>."),
        game: Some("Hollow Knight".into()),
        started_ms: 1_790_000_000_000 + id * 3_600_000,
        duration_ms,
        status: Status::Published,
        cut_short: false,
        files: Files {
            program: "program.opus".into(),
            program_bytes: Some(mp3_bytes / 2),
            mp3: Some("episode.mp3".into()),
            mp3_bytes: Some(mp3_bytes),
            chapters: Some("chapters.json".into()),
            tracks: Vec::new(),
        },
        chapters: vec![Chapter {
            start_ms: 0,
            title: "Start".into(),
        }],
        people: vec![Person {
            name: "Ana 🎧".into(),
            role: "host".into(),
        }],
        loudness_lufs: Some(-16.0),
        error: None,
    }
}

/// What `tests/peers/feed_check.py` reports of the feed at `path`.
pub fn parsed(python: &Path, path: &Path) -> Value {
    let out = run(Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/feed_check.py"))
        .arg(path));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn two_independent_parsers_read_the_feed_as_written() {
    let Some(python) = feed_parsers_python() else {
        return;
    };
    let show = Show {
        title: "Booth & Friends 🎮".into(),
        email: "host@booth.example".into(),
        ..Show::default()
    };
    let episodes = [
        episode(1, "First room", 12_345_678, 1_801_400),
        episode(2, TRICKY_TITLE, 61_000_123, 3_723_000),
    ];
    let live = [LiveItem {
        room: "live-room".into(),
        title: "On air <now>".into(),
        started_ms: 1_790_000_100_000,
        guid: "booth:show:episode-3".into(),
        people: vec![Person {
            name: "Ana 🎧".into(),
            role: "host".into(),
        }],
        stream: None,
    }];
    let dir = tempdir();
    let path = dir.path().join("podcast.xml");
    std::fs::write(&path, podcast_xml(&show, BASE, "png", &episodes, &live)).unwrap();
    let seen = parsed(&python, &path);

    for parser in ["feedparser", "podcastparser"] {
        let p = &seen[parser];
        assert_eq!(p["title"], show.title.as_str(), "{parser}: {p:#}");
        let eps = p["episodes"].as_array().unwrap();
        assert_eq!(eps.len(), 2, "{parser} sees the two episodes: {p:#}");
        // Newest first: the tricky one.
        for (seen_ep, ep) in eps.iter().zip([&episodes[1], &episodes[0]]) {
            assert_eq!(seen_ep["title"], ep.title.as_str(), "{parser}: {seen_ep:#}");
            assert_eq!(seen_ep["guid"], ep.guid.as_str(), "{parser}: {seen_ep:#}");
            let enclosure = &seen_ep["enclosures"][0];
            assert_eq!(
                enclosure["url"],
                media_url(BASE, ep.id, "episode.mp3").as_str(),
                "{parser}: {seen_ep:#}"
            );
            assert_eq!(
                enclosure["length"].as_u64(),
                ep.files.mp3_bytes,
                "{parser}: {seen_ep:#}"
            );
            assert_eq!(enclosure["type"], "audio/mpeg", "{parser}: {seen_ep:#}");
            let seconds = ep.duration_ms / 1000;
            let duration = &seen_ep["duration"];
            assert!(
                duration.as_u64() == Some(seconds)
                    || duration.as_str() == Some(&seconds.to_string()),
                "{parser} reads the duration {seconds} s as {duration}"
            );
        }
    }
    assert_eq!(
        seen["feedparser"]["bozo"], false,
        "feedparser finds the feed well-formed: {}",
        seen["feedparser"]["bozo_exception"]
    );
}

#[test]
fn ffprobe_reads_the_default_cover_as_a_1400_px_square_png() {
    if !crate::support::have_tool("ffprobe") {
        return;
    }
    let dir = tempdir();
    let path = dir.path().join("cover.png");
    let png = booth::episodes::cover::default_cover(TRICKY_TITLE).unwrap();
    std::fs::write(&path, png).unwrap();
    let out = run(Command::new("ffprobe").args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "csv=p=0",
        path.to_str().unwrap(),
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "png,1400,1400");
}
