//! The plaintext envelope inside Olm messages, written by any peer: parsing
//! never panics, and what parses survives a round trip through its wire
//! form unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| retalk_fuzz::envelope(data));
