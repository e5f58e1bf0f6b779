//! The library's end-to-end tests, one binary with a module per area (each
//! test binary links the whole tree, so one binary is far cheaper to build
//! than one per file):
//!
//! * `client`: two or more identities through a real relay on loopback:
//!   delivery, keys, the store, crash safety, hostile peers and relays,
//!   several processes on one store;
//! * `protocol`: the reference's vectors for canonical JSON, signed requests
//!   and Olm.
//!
//! The tests that drive the Python reference live in `tests/interop/`,
//! whose runner reports them as ignored when the reference is unavailable.

mod client;
mod protocol;
