//! The jitter buffer under any push/pop sequence: never a panic, and never deeper than its
//! maximum, however fast a sender pushes.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use booth::rtc::jitter::JitterBuffer;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Step {
    Push { ts: u64 },
    PushNear { step: i16 },
    Pop,
}

#[derive(Debug, Arbitrary)]
struct Script {
    target: u8,
    max: u8,
    steps: Vec<Step>,
}

fuzz_target!(|script: Script| {
    let target = usize::from(script.target % 16);
    let mut buffer = JitterBuffer::new(target, usize::from(script.max % 64));
    let packet: Arc<[u8]> = Arc::from(&[0xF8u8, 0xFF, 0xFE][..]);
    let mut last = 0u64;
    let max = buffer.max_depth();
    for step in script.steps {
        match step {
            Step::Push { ts } => {
                last = ts;
                buffer.push(ts, Arc::clone(&packet));
            }
            Step::PushNear { step } => {
                last = last.wrapping_add_signed(i64::from(step) * 960);
                buffer.push(last, Arc::clone(&packet));
            }
            Step::Pop => {
                let _ = buffer.pop();
            }
        }
        assert!(buffer.depth() <= max, "depth {} over {max}", buffer.depth());
    }
});
