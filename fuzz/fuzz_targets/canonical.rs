//! Canonical JSON: for any JSON text, the canonical form (if the value has
//! one) parses back to a value with the same canonical form, and the args
//! hash of an object never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| retalk_fuzz::canonical(data));
