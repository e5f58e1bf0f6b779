//! The workspace's shared test kit (not published): what the test suites
//! of the library, the relay, the CLI and the interop checks all need, in
//! one place instead of a copy per suite.
//!
//! * [`relay`]: the in-process relay starter ([`TestRelay`]) and a small
//!   signing client for raw wire calls;
//! * [`process`]: the relay executable as a process ([`RelayProcess`]),
//!   workspace binaries built on demand, line readers with timeouts;
//! * [`users`]: client identities with a cheap key derivation, [`pair`];
//! * [`raw`]: a peer that speaks the protocol by hand ([`raw::RawPeer`]);
//! * [`child`]: tests that re-run their own binary as a child process;
//! * [`wait`]: the bounded waits every test uses ([`PATIENCE`]);
//! * [`pyref`]: driving the Python reference (retalk 0.0.1 / 0.3.0);
//! * [`OlmSigner`]: signing raw requests with a vodozemac account (the
//!   library's own, re-exported).
//!
//! Suites glob-import the crate (`use retalk_testkit::*;`); the Python
//! harness is imported by name (`use retalk_testkit::pyref as harness;`).

pub mod child;
pub mod process;
pub mod pyref;
pub mod raw;
pub mod relay;
pub mod users;
pub mod wait;

pub use child::*;
pub use process::*;
pub use relay::*;
pub use retalk::OlmSigner;
pub use users::*;
pub use wait::*;
