//! Arrows point one way: the pure modules stay pure (`dsp` does no IO and knows nothing of
//! devices, sockets or files, so it can run inside a real-time loop and be tested on plain
//! buffers; `room` is a state machine; `codec` opens nothing), the engine knows nothing of the
//! network or the command front-ends, the server nothing of the front-ends or the overlay. And
//! no source file grows past what a reader can hold.

use std::path::Path;

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{d:?}: {e}")) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.display().to_string(), text));
            }
        }
    }
    assert!(!out.is_empty(), "no sources in {dir:?}");
    out
}

fn src(module: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let dir = root.join(module);
    if dir.is_dir() {
        sources(&dir)
    } else {
        let path = root.join(format!("{module}.rs"));
        vec![(
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap(),
        )]
    }
}

/// The top-level modules a source names through `crate::` (in paths, `use` lines and
/// `use crate::{a::X, b}` groups alike).
fn crate_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.push(first_segment(&item));
        } else {
            found.push(first_segment(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn first_segment(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The first module of `forbidden` that `module`'s sources name, with the file: `None` when
/// they name none.
fn reaches(module: &str, forbidden: &[&str]) -> Option<String> {
    src(module).into_iter().find_map(|(file, text)| {
        crate_modules(&text)
            .into_iter()
            .find(|m| forbidden.contains(&m.as_str()))
            .map(|m| format!("{file} uses crate::{m}"))
    })
}

#[test]
fn the_module_reader_sees_grouped_imports() {
    let text = "use crate::{dsp::Limiter, rtc::{a, b}, engine};\nfn f() { crate::live::go() }";
    assert_eq!(crate_modules(text), ["dsp", "rtc", "engine", "live"]);
}

/// Lines of code: not blank, not a comment, and not in the `#[cfg(test)]` module at the end.
fn lines_of_code(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let tests_start = (0..lines.len()).find(|&i| {
        lines[i] == "#[cfg(test)]"
            && lines[i + 1..]
                .iter()
                .find(|l| !l.starts_with("#["))
                .is_some_and(|l| l.starts_with("mod "))
    });
    lines[..tests_start.unwrap_or(lines.len())]
        .iter()
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

#[test]
fn the_engine_knows_nothing_of_the_network_or_the_front_ends() {
    let forbidden = [
        "host", "live", "server", "rtc", "app", "listen", "mix", "whip_out",
    ];
    assert_eq!(reaches("engine", &forbidden), None);
}

#[test]
fn the_server_knows_nothing_of_the_front_ends_or_the_overlay() {
    let forbidden = ["host", "live", "app", "listen", "mix", "whip_out"];
    assert_eq!(reaches("server", &forbidden), None);
}

#[test]
fn episodes_know_nothing_of_http_rooms_tasks_or_the_front_ends() {
    let forbidden = [
        "server", "engine", "rtc", "audio", "host", "live", "app", "listen", "mix", "whip_out",
    ];
    assert_eq!(reaches("episodes", &forbidden), None);
}

#[test]
fn the_lower_layers_never_reach_up() {
    let up = [
        "server", "live", "host", "app", "engine", "listen", "mix", "episodes", "whip_out",
    ];
    for module in ["rtc", "codec", "audio"] {
        assert_eq!(reaches(module, &up), None);
    }
}

#[test]
fn no_source_file_is_longer_than_800_lines_of_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (file, text) in sources(&root) {
        let n = lines_of_code(&text);
        assert!(
            n <= 800,
            "{file} has {n} lines of code: split it at its seams"
        );
    }
}

#[test]
fn dsp_imports_no_io_threads_or_clocks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let forbidden = [
        "std::fs",
        "std::net",
        "std::thread",
        "std::time",
        "std::io",
        "tokio",
        "cpal",
        "axum",
        "crate::audio",
        "crate::codec",
        "crate::mix",
        "println!",
        "eprintln!",
    ];
    for (file, text) in sources(&root.join("src/dsp")) {
        for word in forbidden {
            assert!(!text.contains(word), "{file} uses {word}");
        }
    }
}

#[test]
fn codec_opens_no_files_or_sockets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, text) in sources(&root.join("src/codec")) {
        for word in [
            "std::fs",
            "std::net",
            "tokio",
            "cpal",
            "crate::audio",
            "crate::mix",
        ] {
            assert!(!text.contains(word), "{file} uses {word}");
        }
    }
}

#[test]
fn room_is_a_pure_state_machine() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, text) in sources(&root.join("src/room")) {
        for word in [
            "std::fs",
            "std::net",
            "std::thread",
            "std::io",
            "Instant::now",
            "SystemTime",
            "tokio",
            "cpal",
            "axum",
            "str0m",
            "getrandom",
            "crate::",
            "println!",
            "eprintln!",
        ] {
            assert!(!text.contains(word), "{file} uses {word}");
        }
    }
}

/// The overlay's model and room view hold no egui types: the state and every action can be
/// driven and tested without drawing, and the views stay thin.
#[cfg(feature = "gui")]
#[test]
fn the_overlay_model_knows_nothing_of_egui() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, text) in sources(&root.join("src/app")) {
        let pure = [
            "model.rs",
            "room_view.rs",
            "settings.rs",
            "worker.rs",
            "episode.rs",
        ];
        if pure.iter().any(|p| file.ends_with(p)) {
            for word in ["egui", "eframe", "global_hotkey"] {
                assert!(!text.contains(word), "{file} uses {word}");
            }
        }
    }
}
