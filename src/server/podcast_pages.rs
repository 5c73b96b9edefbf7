//! The podcast's web pages: `/episodes` (the published episodes, newest first, and the feed)
//! and `/episodes/{id}` (a player, chapters that seek it, who spoke). Plain HTML in the room
//! page's look (`/assets/room.css`, `/assets/episode.css`), a small script
//! (`/assets/episode.js`) for the chapters.
//!
//! Pure: the model in, a page out. It must never put a byte of the model into the page
//! unescaped (titles and names come from whoever ran the room), and never list an episode the
//! feed does not carry.

use std::fmt::Write as _;

use crate::episodes::feed::{
    episode_page_url, escape_xml as esc, feed_episodes, feed_url, iso8601, media_url,
};
use crate::episodes::{Episode, Show, Status};

/// `h:mm:ss`, or `m:ss` under an hour.
#[must_use]
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The top of every podcast page, down to `<main>` and its header.
fn head(x: &mut String, show: &Show, base: &str, title: &str) {
    let _ = write!(
        x,
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"dark\">\n<title>{title}</title>\n\
         <link rel=\"stylesheet\" href=\"/assets/room.css\">\n\
         <link rel=\"stylesheet\" href=\"/assets/episode.css\">\n\
         <link rel=\"alternate\" type=\"application/rss+xml\" title=\"{show}\" href=\"{feed}\">\n\
         </head>\n<body>\n<main>\n<header class=\"top\">\
         <a class=\"brand\" href=\"{episodes}\">{show}</a>\
         <a class=\"feed\" href=\"{feed}\">Podcast feed</a></header>\n",
        lang = esc(&show.language),
        title = esc(title),
        show = esc(&show.title),
        feed = esc(&feed_url(base)),
        episodes = esc(&crate::episodes::feed::episodes_url(base)),
    );
}

fn date_and_length(ep: &Episode) -> String {
    let iso = iso8601(ep.started_ms);
    let day = iso.get(..10).unwrap_or(&iso);
    format!(
        "<time datetime=\"{iso}\">{day}</time> · {}",
        clock(ep.duration_ms)
    )
}

/// `/episodes`: the show and its published episodes, newest first, each linking to its page,
/// and the feed.
#[must_use]
pub fn episodes_page(show: &Show, base: &str, episodes: &[Episode]) -> String {
    let mut x = String::with_capacity(4096);
    head(&mut x, show, base, &show.title);
    let _ = writeln!(
        x,
        "<section class=\"hero\"><h1>{}</h1><p class=\"description\">{}</p></section>",
        esc(&show.title),
        esc(&show.description)
    );
    let published = feed_episodes(episodes);
    if published.is_empty() {
        x.push_str(
            "<p class=\"muted\">No episodes yet: rooms that record become episodes here.</p>\n",
        );
    } else {
        x.push_str("<ul class=\"episodes\" id=\"episodes\">\n");
        for ep in published {
            let _ = writeln!(
                x,
                "<li><a href=\"{}\">{}</a><p class=\"meta\">{}</p></li>",
                esc(&episode_page_url(base, ep.id)),
                esc(&ep.title),
                date_and_length(ep)
            );
        }
        x.push_str("</ul>\n");
    }
    let _ = writeln!(
        x,
        "<p class=\"links\"><a href=\"{}\">Subscribe: the podcast feed</a></p>",
        esc(&feed_url(base))
    );
    x.push_str("</main>\n</body>\n</html>\n");
    x
}

/// `/episodes/{id}`: the episode's title, date, length and description, a player (`#player`:
/// the MP3, the Opus program as a second source), its chapters as buttons
/// (`.chapter[data-start]`, seconds) that seek the player, who spoke, and links to the feed and
/// the chapters file.
#[must_use]
pub fn episode_page(show: &Show, base: &str, episode: &Episode) -> String {
    let ep = episode;
    let mut x = String::with_capacity(4096);
    head(&mut x, show, base, &ep.title);
    let _ = write!(
        x,
        "<section class=\"hero\"><h1 id=\"title\">{}</h1><p class=\"meta\">{}</p>",
        esc(&ep.title),
        date_and_length(ep)
    );
    if let Some(game) = &ep.game {
        let _ = write!(x, "<p class=\"game\">{}</p>", esc(game));
    }
    x.push_str("</section>\n");
    player(&mut x, base, ep);
    if !ep.description.is_empty() {
        let _ = writeln!(x, "<p class=\"description\">{}</p>", esc(&ep.description));
    }
    chapters(&mut x, ep);
    people(&mut x, ep);
    let _ = write!(
        x,
        "<p class=\"links\"><a href=\"{}\">The podcast feed</a>",
        esc(&feed_url(base))
    );
    if let Some(file) = &ep.files.chapters {
        let _ = write!(
            x,
            "<a href=\"{}\">Chapters (JSON)</a>",
            esc(&media_url(base, ep.id, file))
        );
    }
    x.push_str("</p>\n</main>\n<script src=\"/assets/episode.js\" defer></script>\n");
    x.push_str("</body>\n</html>\n");
    x
}

fn player(x: &mut String, base: &str, ep: &Episode) {
    let Some(mp3) = &ep.files.mp3 else {
        let why = match ep.status {
            Status::Recording => "This room is still live and recording.",
            Status::Rendering => "This episode is being prepared: come back in a minute.",
            Status::Failed => "This episode could not be prepared.",
            Status::Published | Status::Unlisted => "This episode has no audio.",
        };
        let _ = writeln!(x, "<section class=\"player\"><p>{why}</p></section>");
        return;
    };
    let _ = write!(
        x,
        "<section class=\"player\"><audio id=\"player\" controls preload=\"metadata\">\
         <source src=\"{}\" type=\"audio/mpeg\">",
        esc(&media_url(base, ep.id, mp3))
    );
    if !ep.files.program.is_empty() {
        let _ = write!(
            x,
            "<source src=\"{}\" type=\"audio/ogg; codecs=opus\">",
            esc(&media_url(base, ep.id, &ep.files.program))
        );
    }
    x.push_str("</audio></section>\n");
}

fn chapters(x: &mut String, ep: &Episode) {
    if ep.chapters.is_empty() {
        return;
    }
    x.push_str(
        "<section class=\"player\"><h2>Chapters</h2><ol class=\"chapters\" id=\"chapters\">\n",
    );
    for c in &ep.chapters {
        let seconds = c.start_ms / 1000;
        let millis = c.start_ms % 1000;
        let start = if millis == 0 {
            seconds.to_string()
        } else {
            format!("{seconds}.{millis:03}")
        };
        let _ = writeln!(
            x,
            "<li><button type=\"button\" class=\"chapter\" data-start=\"{start}\">\
             <span class=\"at\">{}</span><span>{}</span></button></li>",
            clock(c.start_ms),
            esc(&c.title)
        );
    }
    x.push_str("</ol></section>\n");
}

fn people(x: &mut String, ep: &Episode) {
    if ep.people.is_empty() {
        return;
    }
    x.push_str("<section class=\"player\"><h2>Who spoke</h2><ul class=\"people\" id=\"people\">\n");
    for p in &ep.people {
        let role = match p.role.as_str() {
            "host" => "host",
            "co_host" => "co-host",
            _ => "speaker",
        };
        let _ = writeln!(
            x,
            "<li><span class=\"name\">{}</span><span class=\"role\">{role}</span></li>",
            esc(&p.name)
        );
    }
    x.push_str("</ul></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episodes::{Chapter, Files, Person};

    fn episode(id: i64, title: &str, status: Status) -> Episode {
        Episode {
            id,
            guid: format!("g{id}"),
            room: "r".into(),
            title: title.into(),
            description: "About <this>.".into(),
            game: Some("Celeste & co".into()),
            started_ms: 1_790_000_000_000 + id,
            duration_ms: 3_725_000,
            status,
            cut_short: false,
            files: Files {
                program: "program.opus".into(),
                program_bytes: Some(10),
                mp3: Some("episode.mp3".into()),
                mp3_bytes: Some(20),
                chapters: Some("chapters.json".into()),
                tracks: Vec::new(),
            },
            chapters: vec![
                Chapter {
                    start_ms: 0,
                    title: "Hello".into(),
                },
                Chapter {
                    start_ms: 754_250,
                    title: "The <boss>".into(),
                },
            ],
            people: vec![
                Person {
                    name: "Ana \"A\"".into(),
                    role: "host".into(),
                },
                Person {
                    name: "Bo".into(),
                    role: "co_host".into(),
                },
            ],
            loudness_lufs: None,
            error: None,
        }
    }

    #[test]
    fn the_list_has_published_episodes_newest_first_and_the_feed() {
        let eps = [
            episode(1, "Old & gold", Status::Published),
            episode(2, "Hidden", Status::Unlisted),
            episode(3, "New <one>", Status::Published),
        ];
        let html = episodes_page(&Show::default(), "http://h", &eps);
        let new = html.find("New &lt;one&gt;").unwrap();
        let old = html.find("Old &amp; gold").unwrap();
        assert!(new < old, "{html}");
        assert!(!html.contains("Hidden"));
        assert!(html.contains("href=\"http://h/episodes/3\""));
        assert!(html.contains("href=\"http://h/podcast.xml\""));
    }

    #[test]
    fn an_episode_page_has_the_player_chapters_that_seek_and_who_spoke() {
        let html = episode_page(
            &Show::default(),
            "http://h",
            &episode(5, "A & B", Status::Published),
        );
        for want in [
            "<h1 id=\"title\">A &amp; B</h1>",
            "<audio id=\"player\" controls preload=\"metadata\">",
            "<source src=\"http://h/media/episodes/5/episode.mp3\" type=\"audio/mpeg\">",
            "<source src=\"http://h/media/episodes/5/program.opus\"",
            "class=\"chapter\" data-start=\"0\"",
            "class=\"chapter\" data-start=\"754.250\"><span class=\"at\">12:34</span>\
             <span>The &lt;boss&gt;</span>",
            "Ana &quot;A&quot;</span><span class=\"role\">host",
            "Bo</span><span class=\"role\">co-host",
            "1:02:05",
            "href=\"http://h/media/episodes/5/chapters.json\"",
            "<script src=\"/assets/episode.js\" defer>",
            "About &lt;this&gt;.",
            "Celeste &amp; co",
        ] {
            assert!(html.contains(want), "no {want} in\n{html}");
        }
    }

    #[test]
    fn a_page_without_audio_says_why() {
        let mut ep = episode(6, "Soon", Status::Rendering);
        ep.files.mp3 = None;
        let html = episode_page(&Show::default(), "http://h", &ep);
        assert!(!html.contains("<audio"));
        assert!(html.contains("being prepared"));
    }
}
