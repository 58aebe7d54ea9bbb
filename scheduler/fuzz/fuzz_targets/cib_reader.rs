//! The CIB reader on arbitrary text: it must return `Ok` or `Err`, never
//! panic, overflow, or run away (libFuzzer's -timeout catches hangs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ha_scheduler::cib::read_cib(text);
    }
});
