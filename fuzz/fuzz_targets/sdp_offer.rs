//! The checks a WHIP/WHEP offer meets before str0m sees it (its audio section, its ICE
//! username fragment), on any text: never a panic.
#![no_main]

use booth::rtc::{sdp_audio_section, sdp_ice_ufrag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = std::str::from_utf8(data) else {
        return;
    };
    let _ = sdp_audio_section(sdp);
    if let Some(ufrag) = sdp_ice_ufrag(sdp) {
        assert!(sdp.contains(ufrag));
    }
});
