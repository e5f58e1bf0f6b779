//! `id {}`: this identity's card, to share with peers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Show this identity's contact card: its fingerprint (the user id \
peers need to `add` you), its self-chosen name, its public keys and its relay. Share the \
fingerprint over a channel you trust; it is public, never a secret.";

/// No arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {}

/// The card.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Card {
    /// The user id: 32 hex characters, a hash of the two public keys.
    pub fingerprint: String,
    /// The same as `fingerprint` (the name the library and older tools use).
    pub user_id: String,
    /// The self-chosen display name (peers see it as `~name` until they
    /// save you under a name of their own).
    pub name: String,
    /// Curve25519 identity key, base64.
    pub identity_key: String,
    /// Ed25519 signing key, base64.
    pub signing_key: String,
    /// The relay this identity uses, if known.
    pub relay: Option<String>,
}

/// Runs the tool.
pub fn run(shared: &Shared, _args: Args) -> Card {
    let u = &shared.user;
    let id = u.user_id().to_string();
    Card {
        fingerprint: id.clone(),
        user_id: id,
        name: u.name().to_owned(),
        identity_key: u.identity_key(),
        signing_key: u.signing_key(),
        relay: u.relay_url().map(str::to_owned),
    }
}
