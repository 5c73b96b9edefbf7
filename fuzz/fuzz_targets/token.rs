//! Token parsing and secret comparison on any text: never a panic, and a token Booth formats
//! parses back to what it names.
#![no_main]

use std::sync::OnceLock;

use booth::server::tokens::{self, Secret};
use libfuzzer_sys::fuzz_target;

static SECRET: OnceLock<Option<Secret>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(ours) = SECRET.get_or_init(|| Secret::generate().ok()) else {
        return;
    };
    if let Some((named, secret)) = tokens::parse(text) {
        let _ = ours.matches(secret);
        assert!(ours.matches(&ours.to_hex()));
        let again = tokens::format(named, ours);
        assert_eq!(tokens::parse(&again).map(|(r, _)| r), Some(named));
    }
});
