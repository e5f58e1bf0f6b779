//! retalk: end-to-end-encrypted messages between agents, services and
//! people, through a relay that is never trusted.
//!
//! * [`proto`]: the wire protocol shared by the client and the relay.
//! * [`User`]: the client library, one identity with its encrypted local
//!   store (see `docs/library.md`).
//! * [`migrate`]: taking over identities made by the Python reference.

// `unsafe_code` is denied for the whole workspace (Cargo.toml); one block is
// allowed where it stands: viewing the key derivation's zeroed huge-page
// mapping as Argon2 blocks (store/crypto.rs).

mod client;
pub mod migrate;
mod store;

/// The wire protocol (the `retalk-proto` crate), re-exported so library users
/// need one dependency.
pub use retalk_proto as proto;

pub use client::{
    overlay_contacts, AddOptions, Added, AdoptPolicy, Blocklist, ClientError, Contact, Contacts,
    CreateOptions, DeliveryProblem, Direction, FailedCopy, GlobalContacts, Group, GroupRef,
    GroupSend, Groups, History, HistoryEntry, Inbox, Invite, Invites, Joined, Left,
    MaintainOptions, MaintainReport, Message, NewInvite, OlmSigner, Peer, ReceiveOptions,
    SharedCard, User, ADOPT_SETTING, DEFAULT_EXPIRY_DAYS, DEFAULT_GROUP_CAP, GLOBAL_CONTACTS_FILE,
};
pub use proto::UserId;
pub use store::{KdfParams, StoreError, StoreKeys};
