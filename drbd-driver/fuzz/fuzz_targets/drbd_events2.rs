//! Arbitrary bytes as a `drbdsetup events2` stream: split into lines in
//! chunks whose sizes come from the input, parsed, applied to a `State`,
//! then summarised and displayed. Errors are fine; panics, overflows and
//! runaway allocations are not.
#![no_main]

use ha_drbd::events2::LineSplitter;
use ha_drbd::model::State;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut splitter = LineSplitter::new();
    let mut state = State::new();
    for part in body.chunks(chunk) {
        for line in splitter.push(part).into_iter().flatten() {
            let _ = state.apply_line(&line);
        }
    }
    for line in splitter.finish().into_iter().flatten() {
        let _ = state.apply_line(&line);
    }
    for s in state.summary() {
        let _ = s.to_string();
    }
});
