//! Episode files over HTTP as podcast apps and browsers fetch them: a real server on a free
//! loopback port around `serve_file`, asked by reqwest and by curl.

use std::path::PathBuf;
use std::process::Command;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use booth::server::media_files::serve_file;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    LAST_MODIFIED, RANGE,
};

use crate::support::{have_tool, run, tempdir};

const LEN: usize = 5000;

async fn file(
    State(dir): State<PathBuf>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    serve_file(&dir.join(name), "audio/mpeg", &method, &headers).await
}

/// A file whose bytes say where they are (so a wrong offset shows) at `/media/episode.mp3`,
/// served from `dir` by a server on a free port: the file's bytes and the URL.
async fn serve(dir: &std::path::Path) -> (Vec<u8>, String) {
    let bytes: Vec<u8> = (0..LEN).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("episode.mp3"), &bytes).unwrap();
    let app = Router::new()
        .route("/media/{name}", axum::routing::any(file))
        .with_state(dir.to_path_buf());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/media/episode.mp3",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (bytes, url)
}

fn header(r: &reqwest::Response, name: reqwest::header::HeaderName) -> &str {
    r.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", r.headers()))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn whole_file_and_ranges() {
    let dir = tempdir();
    let (bytes, url) = serve(dir.path()).await;
    let http = reqwest::Client::new();

    let whole = http.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(header(&whole, ACCEPT_RANGES), "bytes");
    assert!(header(&whole, ETAG).starts_with('"'), "a strong ETag");
    assert!(whole.headers().contains_key(LAST_MODIFIED));
    assert_eq!(whole.bytes().await.unwrap(), bytes);

    let part = http
        .get(&url)
        .header(RANGE, "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&part, CONTENT_RANGE),
        format!("bytes 1000-1999/{LEN}")
    );
    assert_eq!(part.bytes().await.unwrap(), bytes[1000..2000]);

    let suffix = http
        .get(&url)
        .header(RANGE, "bytes=-300")
        .send()
        .await
        .unwrap();
    assert_eq!(suffix.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&suffix, CONTENT_RANGE),
        format!("bytes 4700-4999/{LEN}")
    );
    assert_eq!(suffix.bytes().await.unwrap(), bytes[4700..]);

    let open = http
        .get(&url)
        .header(RANGE, "bytes=4990-")
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(open.bytes().await.unwrap(), bytes[4990..]);

    let beyond = http
        .get(&url)
        .header(RANGE, "bytes=5000-")
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&beyond, CONTENT_RANGE), format!("bytes */{LEN}"));

    let several = http
        .get(&url)
        .header(RANGE, "bytes=0-9,20-29")
        .send()
        .await
        .unwrap();
    assert_eq!(several.status(), StatusCode::OK);
    assert_eq!(several.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn head_conditional_requests_and_refusals() {
    let dir = tempdir();
    let (bytes, url) = serve(dir.path()).await;
    let http = reqwest::Client::new();
    let whole = http.get(&url).send().await.unwrap();
    let etag = header(&whole, ETAG).to_owned();
    let modified = header(&whole, LAST_MODIFIED).to_owned();

    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, CONTENT_LENGTH), LEN.to_string());
    assert_eq!(header(&head, ETAG), etag);
    assert!(head.bytes().await.unwrap().is_empty());

    let same = http
        .get(&url)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::NOT_MODIFIED);
    assert!(same.bytes().await.unwrap().is_empty());
    let since = http
        .get(&url)
        .header(IF_MODIFIED_SINCE, &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(since.status(), StatusCode::NOT_MODIFIED);
    let other = http
        .get(&url)
        .header(IF_NONE_MATCH, "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);

    // If-Range: the range only while the client's version is the file's.
    let current = http
        .get(&url)
        .header(RANGE, "bytes=0-9")
        .header(IF_RANGE, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), StatusCode::PARTIAL_CONTENT);
    let stale = http
        .get(&url)
        .header(RANGE, "bytes=0-9")
        .header(IF_RANGE, "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(stale.bytes().await.unwrap(), bytes);

    let missing = http
        .get(url.replace("episode", "missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let post = http.post(&url).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn curl_gets_exactly_the_thousand_bytes_it_asks_for() {
    if !have_tool("curl") {
        return;
    }
    let dir = tempdir();
    let (bytes, url) = serve(dir.path()).await;
    let out_path = dir.path().join("part.bin");
    let out = tokio::task::spawn_blocking(move || {
        run(Command::new("curl").args([
            "-s",
            "-r",
            "1000-1999",
            "-o",
            out_path.to_str().unwrap(),
            "-w",
            "%{http_code}",
            &url,
        ]))
    })
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "206");
    let got = std::fs::read(dir.path().join("part.bin")).unwrap();
    assert_eq!(got.len(), 1000);
    assert_eq!(got, bytes[1000..2000]);
}
