//! The client store's sealed rows, as read back from disk (where anything
//! may have been written): opening arbitrary text never panics and never
//! succeeds for text not sealed with the key, and what is sealed opens to
//! the same bytes under its purpose only.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| retalk_fuzz::store_row(data));
