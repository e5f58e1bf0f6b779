//! retalk: end-to-end-encrypted messages between agents, services and
//! people, through a relay that is never trusted.
//!
//! * [`proto`]: the wire protocol shared by the client and the relay.
//! * [`User`]: the client library, one identity with its encrypted local
//!   store (see `docs/library.md`).
//! * [`migrate`]: taking over identities made by the Python reference.

// One `unsafe` block in the crate, allowed where it stands: viewing the
// key derivation's zeroed huge-page mapping as Argon2 blocks (store/crypto.rs).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod client;
pub mod migrate;
pub mod proto;
mod store;

pub use client::{
    AddOptions, Added, Blocklist, ClientError, Contact, Contacts, CreateOptions, DeliveryProblem,
    Direction, History, HistoryEntry, Inbox, MaintainOptions, MaintainReport, Message, Peer,
    ReceiveOptions, User,
};
pub use proto::UserId;
pub use store::{KdfParams, StoreError, StoreKeys};
