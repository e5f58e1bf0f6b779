//! The relay's request parser: any body either parses into a tool call
//! with its auth, or is refused with an error; never a panic. What parses
//! then goes through the checks a relay runs before the signature, and the
//! signature check itself (which must refuse, as nothing here is signed by
//! the key it names, except by a fuzzer that found a forgery).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| retalk_fuzz::request(data));
