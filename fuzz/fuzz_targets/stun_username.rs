//! The STUN USERNAME peek that routes a UDP packet to its session, on any datagram: never a
//! panic, and the name it finds lies inside the packet.
#![no_main]

use booth::rtc::stun_local_ufrag;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(ufrag) = stun_local_ufrag(data) {
        assert!(ufrag.len() + 20 <= data.len());
        assert!(!ufrag.contains(':'));
    }
});
