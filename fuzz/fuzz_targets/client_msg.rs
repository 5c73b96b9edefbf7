//! Room-channel messages from clients, on any text: parsed or refused with a protocol code,
//! never a panic; a parsed message survives its own round trip.
#![no_main]

use booth::room::protocol::ClientMsg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientMsg::parse(text) {
        Ok((msg, _)) => {
            let again = ClientMsg::parse(&msg.to_text());
            // Non-finite levels (1e999 reads as infinity) are written as null; everything else survives.
            if !matches!(msg, ClientMsg::VoiceLevel { level } if !level.is_finite()) {
                assert_eq!(again.map(|(m, _)| m).ok(), Some(msg));
            }
        }
        Err((e, _)) => {
            let _ = e.code();
        }
    }
});
