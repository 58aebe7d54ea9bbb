//! The crm-syntax reader on arbitrary text: it must return `Ok` or `Err`,
//! never panic or run away; and whatever it accepts, the writer must print
//! so that reading it again gives the same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = ha_scheduler::crm::read_crm(text) {
            let written = ha_scheduler::crm::write_crm(&config);
            match ha_scheduler::crm::read_crm(&written) {
                Ok(back) => assert_eq!(back, config, "round trip changed:\n{written}"),
                Err(e) => panic!("written text does not read back: {e}\n{written}"),
            }
        }
    }
});
