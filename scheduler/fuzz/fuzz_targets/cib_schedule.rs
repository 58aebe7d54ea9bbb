//! Whatever the CIB reader accepts, the scheduler must place without
//! panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cib) = ha_scheduler::cib::read_cib(text) {
            let now = cib.execution_date.unwrap_or(1_700_000_000);
            let _ = ha_scheduler::schedule(&cib.config, &cib.status, now);
        }
    }
});
