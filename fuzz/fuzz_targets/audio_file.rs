//! The audio file decoders (WAV, FLAC, MP3, Ogg Vorbis through symphonia; PCM WAV and Ogg
//! Opus through Booth's own readers) on any bytes, named by each extension in turn so every
//! probe path is taken.
#![no_main]

use std::path::Path;

use booth::audio::FileSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let name = ["in.wav", "in.flac", "in.mp3", "in.ogg", "in.opus", "in"][usize::from(pick % 6)];
    let Ok(mut source) = FileSource::open_bytes(Path::new(name), bytes.to_vec()) else {
        return;
    };
    let channels = source.channels();
    assert!(channels > 0 && source.sample_rate() > 0);
    // A few hundred blocks are enough to reach every decoder state an input of this size has.
    for _ in 0..512 {
        match source.read() {
            Ok(Some(block)) => assert_eq!(block.len() % channels, 0, "a block splits a frame"),
            _ => break,
        }
    }
});
