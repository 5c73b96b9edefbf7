//! Serving an episode's files (a 60 MB MP3, its Opus program, its chapters) the way podcast
//! apps and browsers' `<audio>` expect: one `Range` answered with 206 so they can seek and
//! resume, `HEAD`, a strong `ETag` and `Last-Modified` with their conditional requests.
//!
//! It must never read a whole file into memory (bodies stream from the file in chunks), and
//! never answer with bytes other than those asked for: a range it cannot honour exactly is
//! either refused (416) or answered with the whole file (200).

use std::io::SeekFrom;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// How much of the file one chunk of the body carries.
const CHUNK: usize = 64 * 1024;

/// Why a file cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaFileError {
    /// No such file (or not a regular file).
    #[error("no such file")]
    NotFound,
    /// The file is there but cannot be read.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

impl MediaFileError {
    /// The HTTP status it answers with.
    #[must_use]
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for MediaFileError {
    fn into_response(self) -> Response {
        if let Self::Io(e) = &self {
            tracing::error!("serving a media file: {e}");
        }
        let status = self.status_code();
        let text = match self {
            Self::NotFound => "not found",
            Self::Io(_) => "the file cannot be read",
        };
        (status, text).into_response()
    }
}

/// What a `Range` header asks of a file of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No range (or one Booth answers with the whole file: several ranges, bad syntax).
    Whole,
    /// Bytes `start..=end`, both within the file.
    Part {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A range that lies beyond the file: 416.
    Unsatisfiable,
}

/// Reads one `Range` header value (`bytes=a-b`, `bytes=a-`, `bytes=-n`) against a file of
/// `len` bytes. Several ranges and malformed values are [`RangeAsk::Whole`], as RFC 9110
/// allows a server to ignore them.
#[must_use]
pub fn parse_range(value: &str, len: u64) -> RangeAsk {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeAsk::Whole,
        (true, false) => match number(b) {
            None => RangeAsk::Whole,
            Some(0) => RangeAsk::Unsatisfiable,
            Some(_) if len == 0 => RangeAsk::Unsatisfiable,
            Some(n) => RangeAsk::Part {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        (false, open_end) => {
            let Some(start) = number(a) else {
                return RangeAsk::Whole;
            };
            let end = if open_end { Some(u64::MAX) } else { number(b) };
            match end {
                None => RangeAsk::Whole,
                Some(end) if end < start => RangeAsk::Whole,
                Some(_) if start >= len => RangeAsk::Unsatisfiable,
                Some(end) => RangeAsk::Part {
                    start,
                    end: end.min(len - 1),
                },
            }
        }
    }
}

/// The validators of a file: its strong `ETag` and its `Last-Modified` (whole seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Validators {
    etag: String,
    modified: SystemTime,
}

impl Validators {
    fn of(len: u64, mtime: SystemTime) -> Self {
        let since = mtime.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            etag: format!(
                "\"{len:x}-{:x}-{:x}\"",
                since.as_secs(),
                since.subsec_nanos()
            ),
            modified: UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        }
    }

    fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }

    /// `If-None-Match` (which wins) or `If-Modified-Since` says the client's copy is current.
    fn not_modified(&self, headers: &HeaderMap) -> bool {
        if let Some(inm) = header_str(headers, header::IF_NONE_MATCH) {
            return inm.split(',').any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/") == self.etag
            });
        }
        header_str(headers, header::IF_MODIFIED_SINCE)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| self.modified <= since)
    }

    /// `If-Range` names this very version (strong ETag or exact date): the range may be served.
    fn range_still_valid(&self, headers: &HeaderMap) -> bool {
        match header_str(headers, header::IF_RANGE) {
            None => true,
            Some(v) if v.trim().starts_with('"') => v.trim() == self.etag,
            Some(v) => httpdate::parse_http_date(v).is_ok_and(|d| d == self.modified),
        }
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Serves the file at `path` as `content_type` for a `GET` or `HEAD` with these request
/// headers: 200 with the whole file, 206 for one satisfiable `Range`, 416 for an
/// unsatisfiable one, 304 when the client's copy is current, 404 when there is no such file,
/// 405 for other methods. The body streams from the file.
pub async fn serve_file(
    path: &Path,
    content_type: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    match respond(path, content_type, method, headers).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn respond(
    path: &Path,
    content_type: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, MediaFileError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => MediaFileError::NotFound,
            _ => MediaFileError::Io(e),
        })?;
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Err(MediaFileError::NotFound);
    }
    let len = meta.len();
    let validators = Validators::of(len, meta.modified().unwrap_or(UNIX_EPOCH));
    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    insert(h, header::ETAG, &validators.etag);
    insert(h, header::LAST_MODIFIED, &validators.last_modified());
    if validators.not_modified(headers) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(response);
    }
    insert(h, header::CONTENT_TYPE, content_type);
    let ask = match header_str(headers, header::RANGE) {
        Some(range) if validators.range_still_valid(headers) => parse_range(range, len),
        _ => RangeAsk::Whole,
    };
    let (start, count) = match ask {
        RangeAsk::Whole => (0, len),
        RangeAsk::Part { start, end } => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = response.headers_mut();
            insert(
                h,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{len}"),
            );
            (start, end - start + 1)
        }
        RangeAsk::Unsatisfiable => {
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let h = response.headers_mut();
            insert(h, header::CONTENT_RANGE, &format!("bytes */{len}"));
            h.remove(header::CONTENT_TYPE);
            return Ok(response);
        }
    };
    insert(
        response.headers_mut(),
        header::CONTENT_LENGTH,
        &count.to_string(),
    );
    if method == Method::GET {
        file.seek(SeekFrom::Start(start)).await?;
        *response.body_mut() = Body::from_stream(chunks(file.take(count)));
    }
    Ok(response)
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// The reader's bytes as a stream of chunks, ending at its end or at its first error.
fn chunks(
    reader: tokio::io::Take<tokio::fs::File>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        let mut buf = vec![0u8; CHUNK];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let p = |s| parse_range(s, 5000);
        assert_eq!(
            p("bytes=1000-1999"),
            RangeAsk::Part {
                start: 1000,
                end: 1999
            }
        );
        assert_eq!(
            p("bytes=4000-"),
            RangeAsk::Part {
                start: 4000,
                end: 4999
            }
        );
        assert_eq!(
            p("bytes=4000-99999"),
            RangeAsk::Part {
                start: 4000,
                end: 4999
            }
        );
        assert_eq!(
            p("bytes=-500"),
            RangeAsk::Part {
                start: 4500,
                end: 4999
            }
        );
        assert_eq!(
            p("bytes=-9000"),
            RangeAsk::Part {
                start: 0,
                end: 4999
            }
        );
        assert_eq!(p("bytes=5000-"), RangeAsk::Unsatisfiable);
        assert_eq!(p("bytes=-0"), RangeAsk::Unsatisfiable);
        assert_eq!(p("bytes=0-1,5-9"), RangeAsk::Whole);
        assert_eq!(p("bytes=9-1"), RangeAsk::Whole);
        assert_eq!(p("bytes=a-b"), RangeAsk::Whole);
        assert_eq!(p("bytes=+1-2"), RangeAsk::Whole);
        assert_eq!(p("items=0-1"), RangeAsk::Whole);
        assert_eq!(parse_range("bytes=0-", 0), RangeAsk::Unsatisfiable);
    }
}
