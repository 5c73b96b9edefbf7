//! The Ogg Opus reader on any bytes: opening, reading to the end and the length scan must end
//! in audio or an error, within libFuzzer's time and memory limits, never a panic.
#![no_main]

use std::io::Cursor;

use booth::codec::OggOpusReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = OggOpusReader::new(Cursor::new(data)) else {
        return;
    };
    let _ = reader.total_frames();
    let channels = usize::from(reader.channels());
    while let Ok(Some(block)) = reader.read() {
        assert_eq!(block.len() % channels, 0, "a block splits a frame");
    }
});
