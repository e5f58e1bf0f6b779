//! What can go wrong in the client, as values a program can act on.
//!
//! Messages never contain message text, passphrases or private keys. They
//! may contain user ids (public) and the relay's own reason for a refusal,
//! cleaned of control characters and shortened, since a hostile relay
//! chooses that text.

use std::path::PathBuf;

use crate::proto::{UserId, WireError};
use crate::store::StoreError;

/// A failed client operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The folder holds no identity.
    #[error("no retalk identity in {0} (create one first)")]
    NoIdentity(PathBuf),
    /// The folder already holds an identity.
    #[error("an identity already exists in {0}; refusing to overwrite it")]
    AlreadyExists(PathBuf),
    /// The passphrase does not open the store; nothing was changed.
    #[error("wrong passphrase for this identity (nothing was changed)")]
    WrongPassphrase,
    /// The relay served keys that do not belong to the peer: they do not
    /// hash to its id, or differ from the key pinned for it. Nothing was
    /// encrypted.
    #[error("PIN MISMATCH for peer {peer}: {detail}; possible man-in-the-middle by the relay, refusing to use these keys")]
    PinMismatch {
        /// The peer whose keys were refused.
        peer: UserId,
        /// What did not match.
        detail: String,
    },
    /// A name that is neither a saved peer nor a user id.
    #[error("unknown peer {0:?}: not a saved peer name and not a 32-hex user id")]
    UnknownPeer(String),
    /// No room with this label or id.
    #[error("no group {0:?}")]
    UnknownGroup(String),
    /// A contact name already stands for another user id.
    #[error("a contact named {name:?} already exists (-> {id}); pick another name or replace it")]
    NameTaken {
        /// The name asked for.
        name: String,
        /// The id it stands for now.
        id: UserId,
    },
    /// A message addressed to this identity's own id (Olm sessions are
    /// between two accounts: a note to self would never decrypt).
    #[error("cannot send to your own user id {0}: a message needs another identity as recipient")]
    SelfSend(UserId),
    /// The relay refused the message for now (it does not know the
    /// recipient); it is kept in the outbox and re-sent by the next
    /// `maintain` or `flush_outbox`.
    #[error("{reason}; the message ({id}) is kept and will be re-sent")]
    KeptForResend {
        /// The message id.
        id: String,
        /// The relay's refusal.
        reason: String,
    },
    /// No relay URL was given now or saved at creation.
    #[error("no relay URL: none was saved with this identity and none was given")]
    NoRelay,
    /// An argument is not acceptable (empty name, malformed key, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The relay refused a request, for the reason it gives.
    #[error("relay refused {tool}: {error}")]
    Relay {
        /// The tool called.
        tool: &'static str,
        /// The relay's reason.
        error: WireError,
    },
    /// The relay could not be reached, or did not answer in time.
    /// (The text names the relay URL and what failed: connect, timeout...)
    #[error("cannot reach the relay: {0}")]
    Unreachable(String),
    /// The relay answered something that is not a valid response.
    #[error("the relay sent an invalid answer to {tool}: {detail}")]
    BadResponse {
        /// The tool called.
        tool: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// The local store failed.
    #[error("{0}")]
    Store(StoreError),
    /// An Olm operation failed.
    #[error("encryption error: {0}")]
    Crypto(String),
}

impl ClientError {
    /// Whether this is a refusal caused by how the program was used (the
    /// CLI exits with status 2 for these) rather than a failure (status 1).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ClientError::NoIdentity(_)
                | ClientError::AlreadyExists(_)
                | ClientError::WrongPassphrase
                | ClientError::PinMismatch { .. }
                | ClientError::UnknownPeer(_)
                | ClientError::UnknownGroup(_)
                | ClientError::NameTaken { .. }
                | ClientError::SelfSend(_)
                | ClientError::NoRelay
                | ClientError::InvalidArgument(_)
        )
    }

    /// Whether a request may have failed without the relay deciding
    /// anything (worth retrying later).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable(_) => true,
            ClientError::Relay { error, .. } => matches!(
                error,
                WireError::LimitExceeded(_) | WireError::Unavailable(_)
            ),
            _ => false,
        }
    }
}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoIdentity(p) => ClientError::NoIdentity(p),
            StoreError::AlreadyExists(p) => ClientError::AlreadyExists(p),
            StoreError::WrongPassphrase => ClientError::WrongPassphrase,
            other => ClientError::Store(other),
        }
    }
}

/// Text chosen by the relay, made safe to show: control characters
/// replaced, length bounded.
pub(crate) fn sanitize(text: &str) -> String {
    const MAX: usize = 300;
    let mut out: String = text
        .chars()
        .map(|c| {
            // control characters and the invisible direction marks and
            // overrides (U+202E makes a line read backwards)
            let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                ' '
            } else {
                c
            }
        })
        .take(MAX)
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}
