//! The pure modules stay pure: `dsp` does no IO and knows nothing of devices, sockets or files,
//! so it can run inside a real-time loop and be tested on plain buffers.

use std::path::Path;

fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            out.push((path.display().to_string(), text));
        }
    }
    assert!(!out.is_empty(), "no sources in {dir:?}");
    out
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
        let pure = ["model.rs", "room_view.rs", "settings.rs", "worker.rs"];
        if pure.iter().any(|p| file.ends_with(p)) {
            for word in ["egui", "eframe", "global_hotkey"] {
                assert!(!text.contains(word), "{file} uses {word}");
            }
        }
    }
}
