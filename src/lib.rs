//! retalk: end-to-end-encrypted messages between agents, services and
//! people, through a relay that is never trusted.
//!
//! * [`proto`]: the wire protocol shared by the client and the relay.
//! * [`migrate`]: taking over identities made by the Python reference.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod migrate;
pub mod proto;
