//! The ID3v2.4 tag at the head of an episode's MP3: title, show, author, date, artwork, and
//! chapters (ID3v2 Chapter Frame Addendum 1.0: one CHAP per chapter and a top-level, ordered
//! CTOC listing them), which Apple Podcasts, Overcast, ffmpeg and most players read.
//!
//! Bytes in, bytes out: never a file here. Text is UTF-8 (encoding byte 3, which v2.4 allows);
//! every size is syncsafe (7 bits a byte), as v2.4 asks of frames as well as of the header.

/// A picture for the tag (APIC, the front cover).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artwork {
    /// Its MIME type, `image/jpeg` or `image/png`.
    pub mime: String,
    /// The image file's bytes.
    pub bytes: Vec<u8>,
}

/// One chapter as the tag keeps it: times on the audio's timeline, ms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagChapter {
    /// Where it starts.
    pub start_ms: u32,
    /// Where it ends (the next chapter's start, or the end of the audio).
    pub end_ms: u32,
    /// Its label.
    pub title: String,
}

/// What goes into the tag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagFields<'a> {
    /// The episode's title (TIT2).
    pub title: &'a str,
    /// The show (TALB: podcast apps and music players file the episode under it).
    pub show: &'a str,
    /// Who makes it (TPE1).
    pub author: &'a str,
    /// When it was recorded (TDRC, UTC), ms since the Unix epoch.
    pub recorded_ms: i64,
    /// The cover (APIC), if any.
    pub artwork: Option<&'a Artwork>,
    /// Chapters in order, at most [`MAX_CHAPTERS`].
    pub chapters: &'a [TagChapter],
}

/// Chapters a CTOC can list (its entry count is one byte).
pub const MAX_CHAPTERS: usize = 255;

/// Why a tag cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Id3Error {
    /// A frame (the artwork, most likely) larger than ID3's 256 MiB limit.
    #[error("the {frame} frame is {bytes} bytes, over ID3's limit of 256 MiB")]
    TooLarge {
        /// Which frame.
        frame: &'static str,
        /// Its size.
        bytes: usize,
    },
    /// More chapters than a table of contents can list.
    #[error("{0} chapters: an ID3 table of contents lists at most 255")]
    TooManyChapters(usize),
    /// An artwork MIME type that is not plain ASCII (ID3 stores it as Latin-1).
    #[error("artwork MIME type {0:?} is not ASCII")]
    BadMime(String),
}

/// The largest value a 4-byte syncsafe integer holds.
const SYNCSAFE_MAX: usize = (1 << 28) - 1;
/// Text encoding byte: UTF-8.
const UTF8: u8 = 3;

fn syncsafe(n: usize) -> [u8; 4] {
    [
        ((n >> 21) & 0x7f) as u8,
        ((n >> 14) & 0x7f) as u8,
        ((n >> 7) & 0x7f) as u8,
        (n & 0x7f) as u8,
    ]
}

/// A frame: 4-byte id, syncsafe size, no flags, then its body.
fn frame(id: &'static str, body: &[u8], out: &mut Vec<u8>) -> Result<(), Id3Error> {
    if body.len() > SYNCSAFE_MAX {
        return Err(Id3Error::TooLarge {
            frame: id,
            bytes: body.len(),
        });
    }
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&syncsafe(body.len()));
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(body);
    Ok(())
}

fn text_frame(id: &'static str, text: &str, out: &mut Vec<u8>) -> Result<(), Id3Error> {
    let mut body = Vec::with_capacity(1 + text.len());
    body.push(UTF8);
    body.extend_from_slice(text.as_bytes());
    frame(id, &body, out)
}

fn picture_frame(art: &Artwork, out: &mut Vec<u8>) -> Result<(), Id3Error> {
    if !art.mime.is_ascii() || art.mime.contains('\0') {
        return Err(Id3Error::BadMime(art.mime.clone()));
    }
    let mut body = Vec::with_capacity(art.mime.len() + art.bytes.len() + 4);
    body.push(UTF8);
    body.extend_from_slice(art.mime.as_bytes());
    body.push(0);
    body.push(3); // picture type: front cover
    body.push(0); // empty description
    body.extend_from_slice(&art.bytes);
    frame("APIC", &body, out)
}

fn chapter_id(i: usize) -> String {
    format!("chp{i}")
}

fn chapter_frame(i: usize, chapter: &TagChapter, out: &mut Vec<u8>) -> Result<(), Id3Error> {
    let mut body = Vec::with_capacity(32 + chapter.title.len());
    body.extend_from_slice(chapter_id(i).as_bytes());
    body.push(0);
    body.extend_from_slice(&chapter.start_ms.to_be_bytes());
    body.extend_from_slice(&chapter.end_ms.to_be_bytes());
    // Byte offsets unused: times are what players seek by.
    body.extend_from_slice(&u32::MAX.to_be_bytes());
    body.extend_from_slice(&u32::MAX.to_be_bytes());
    text_frame("TIT2", &chapter.title, &mut body)?;
    frame("CHAP", &body, out)
}

fn table_of_contents(chapters: &[TagChapter], out: &mut Vec<u8>) -> Result<(), Id3Error> {
    let count =
        u8::try_from(chapters.len()).map_err(|_| Id3Error::TooManyChapters(chapters.len()))?;
    let mut body = Vec::with_capacity(8 + chapters.len() * 6);
    body.extend_from_slice(b"toc\0");
    body.push(0b11); // top-level, ordered
    body.push(count);
    for i in 0..chapters.len() {
        body.extend_from_slice(chapter_id(i).as_bytes());
        body.push(0);
    }
    frame("CTOC", &body, out)
}

/// A UTC date and time, `YYYY-MM-DDTHH:MM:SS` (ID3v2.4's timestamp form).
fn timestamp(ms: i64) -> String {
    super::iso8601(ms)[..19].to_owned()
}

/// The whole tag: header and frames, no padding.
///
/// # Errors
/// [`Id3Error`] for artwork over ID3's size limit or with a non-ASCII MIME type, and for more
/// than [`MAX_CHAPTERS`] chapters.
pub fn id3v2_4(fields: &TagFields<'_>) -> Result<Vec<u8>, Id3Error> {
    let mut frames = Vec::new();
    text_frame("TIT2", fields.title, &mut frames)?;
    text_frame("TALB", fields.show, &mut frames)?;
    text_frame("TPE1", fields.author, &mut frames)?;
    text_frame("TDRC", &timestamp(fields.recorded_ms), &mut frames)?;
    // Podcast apps and players sort episodes into "Podcast" by genre.
    text_frame("TCON", "Podcast", &mut frames)?;
    if let Some(art) = fields.artwork {
        picture_frame(art, &mut frames)?;
    }
    if !fields.chapters.is_empty() {
        table_of_contents(fields.chapters, &mut frames)?;
        for (i, chapter) in fields.chapters.iter().enumerate() {
            chapter_frame(i, chapter, &mut frames)?;
        }
    }
    if frames.len() > SYNCSAFE_MAX {
        return Err(Id3Error::TooLarge {
            frame: "tag",
            bytes: frames.len(),
        });
    }
    let mut tag = Vec::with_capacity(10 + frames.len());
    tag.extend_from_slice(b"ID3");
    tag.extend_from_slice(&[4, 0]); // v2.4.0
    tag.push(0); // no flags
    tag.extend_from_slice(&syncsafe(frames.len()));
    tag.extend_from_slice(&frames);
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsyncsafe(b: &[u8]) -> usize {
        b[..4].iter().fold(0, |n, &x| (n << 7) | usize::from(x))
    }

    /// The frames of a tag as (id, body).
    fn frames(mut b: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while b.len() >= 10 {
            let size = unsyncsafe(&b[4..8]);
            out.push((
                String::from_utf8(b[..4].to_vec()).unwrap(),
                b[10..10 + size].to_vec(),
            ));
            b = &b[10 + size..];
        }
        out
    }

    #[test]
    fn sizes_are_syncsafe() {
        assert_eq!(syncsafe(0), [0, 0, 0, 0]);
        assert_eq!(syncsafe(127), [0, 0, 0, 127]);
        assert_eq!(syncsafe(128), [0, 0, 1, 0]);
        assert_eq!(syncsafe(SYNCSAFE_MAX), [127; 4]);
        assert_eq!(unsyncsafe(&syncsafe(1_234_567)), 1_234_567);
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00");
        // As `date -u -d @1796062909` prints it: Mon Nov 30 18:21:49 UTC 2026.
        assert_eq!(timestamp(1_796_062_909_000), "2026-11-30T18:21:49");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29T00:00:00");
    }

    #[test]
    fn the_header_and_text_frames_are_v2_4_utf8() {
        let tag = id3v2_4(&TagFields {
            title: "Launch night ✨",
            show: "Booth Live",
            author: "Ana",
            recorded_ms: 0,
            ..TagFields::default()
        })
        .unwrap();
        assert_eq!(&tag[..6], b"ID3\x04\x00\x00");
        assert_eq!(unsyncsafe(&tag[6..10]), tag.len() - 10);
        let f = frames(&tag[10..]);
        assert_eq!(f[0].0, "TIT2");
        assert_eq!(f[0].1[0], 3, "UTF-8");
        assert_eq!(&f[0].1[1..], "Launch night ✨".as_bytes());
        let ids: Vec<&str> = f.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["TIT2", "TALB", "TPE1", "TDRC", "TCON"]);
        assert_eq!(&f[3].1[1..], b"1970-01-01T00:00:00");
    }

    #[test]
    fn chapters_are_chap_frames_listed_by_one_ordered_top_level_ctoc() {
        let chapters = [
            TagChapter {
                start_ms: 0,
                end_ms: 5_000,
                title: "Intro".into(),
            },
            TagChapter {
                start_ms: 5_000,
                end_ms: 20_000,
                title: "Q & A".into(),
            },
        ];
        let tag = id3v2_4(&TagFields {
            chapters: &chapters,
            ..TagFields::default()
        })
        .unwrap();
        let f = frames(&tag[10..]);
        let ctoc = &f.iter().find(|(id, _)| id == "CTOC").unwrap().1;
        assert_eq!(ctoc, b"toc\0\x03\x02chp0\0chp1\0");
        let chaps: Vec<&Vec<u8>> = f
            .iter()
            .filter(|(id, _)| id == "CHAP")
            .map(|(_, b)| b)
            .collect();
        assert_eq!(chaps.len(), 2);
        let c = chaps[1];
        assert_eq!(&c[..5], b"chp1\0");
        assert_eq!(&c[5..9], &5_000u32.to_be_bytes());
        assert_eq!(&c[9..13], &20_000u32.to_be_bytes());
        assert_eq!(&c[13..21], &[0xff; 8]);
        let sub = frames(&c[21..]);
        assert_eq!(sub[0].0, "TIT2");
        assert_eq!(&sub[0].1, b"\x03Q & A");
    }

    #[test]
    fn artwork_is_a_front_cover_apic() {
        let art = Artwork {
            mime: "image/png".into(),
            bytes: vec![0x89, b'P', b'N', b'G'],
        };
        let tag = id3v2_4(&TagFields {
            artwork: Some(&art),
            ..TagFields::default()
        })
        .unwrap();
        let f = frames(&tag[10..]);
        let apic = &f.iter().find(|(id, _)| id == "APIC").unwrap().1;
        assert_eq!(apic.as_slice(), b"\x03image/png\0\x03\0\x89PNG");
        let bad = Artwork {
            mime: "imäge/png".into(),
            bytes: vec![],
        };
        assert!(matches!(
            id3v2_4(&TagFields {
                artwork: Some(&bad),
                ..TagFields::default()
            }),
            Err(Id3Error::BadMime(_))
        ));
    }

    #[test]
    fn too_many_chapters_is_an_error() {
        let many: Vec<TagChapter> = (0..256)
            .map(|i| TagChapter {
                start_ms: i,
                end_ms: i + 1,
                title: String::new(),
            })
            .collect();
        assert!(matches!(
            id3v2_4(&TagFields {
                chapters: &many,
                ..TagFields::default()
            }),
            Err(Id3Error::TooManyChapters(256))
        ));
    }
}
