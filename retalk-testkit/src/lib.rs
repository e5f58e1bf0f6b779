//! The workspace's shared test kit (not published): what the test suites
//! of the library, the relay, the CLI and the benchmark tool all need, in
//! one place instead of a copy per suite.
//!
//! * [`OlmSigner`]: signs raw requests with a vodozemac account, for tests
//!   that speak the wire protocol below the client library.

mod signer;

pub use signer::OlmSigner;
