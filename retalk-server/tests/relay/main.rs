//! The relay's integration tests, one binary with a module per area: the
//! relay in this process (or, in `binary`, the real `retalk-server`
//! executable) on loopback, spoken to over HTTP as any client would.
//!
//! * `auth`: the reference's signed-request vectors over HTTP, replays,
//!   both dialects;
//! * `bad_input`: malformed, oversized, slow and hostile requests;
//! * `binary`: the executable: flags and environment, SIGTERM, kill -9;
//! * `concurrency`: racing claims, sends and reads;
//! * `fixture`: a database written by the Python reference;
//! * `limits`: caps on keys, bodies and answers;
//! * `tools`: each tool's answers;
//! * `wait`: waiting reads and their wake-ups.

mod auth;
mod bad_input;
mod binary;
mod concurrency;
mod fixture;
mod limits;
mod tools;
mod wait;
