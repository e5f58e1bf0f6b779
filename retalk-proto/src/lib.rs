//! The wire protocol, shared by the relay and the client: canonical JSON,
//! ids and keys, signed requests, one module per tool, errors, and the
//! plaintext envelope inside Olm messages. The contract it implements is
//! described in `docs/protocol.md`.
//!
//! It depends on no client code (no Olm, no store, no HTTP client), so the
//! relay builds without them.

pub mod auth;
pub mod canonical;
pub mod envelope;
pub mod error;
pub mod ids;
pub mod request;
pub mod tools;

pub use auth::{Auth, AuthError, Dialect, KeyPairSigner, RequestSigner, TIMESTAMP_WINDOW_SECS};
pub use canonical::{args_sha256, canonical_args, canonical_json, lower_hex, CanonicalError};
pub use envelope::{new_id, Envelope, EnvelopeError, GroupTag};
pub use error::{ErrorBody, WireError};
pub use ids::{fingerprint, IdError, IdentityKey, Nonce, SigningKey, UserId};
pub use request::{build_request, SignedRequest};
pub use tools::{Call, Tool};

/// Public, unauthenticated relay policy served at `GET /info`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RelayInfo {
    /// Advisory cap on group roster size (0.3.x clients read it).
    #[serde(default)]
    pub max_group_size: u64,
    /// Longest `read_messages` wait this relay honours, in seconds; absent
    /// on relays that do not support waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<u64>,
    /// The relay implementation and version, e.g. `retalk-server 0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}
