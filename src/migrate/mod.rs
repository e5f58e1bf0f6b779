//! Taking over identities made by the Python reference implementation.
//!
//! A retalk 0.0.1 identity folder (`DIR/store.db`, made by `retalk init DIR`
//! of the Python CLI) is read with its secret, checked, and turned into this
//! project's store in the same folder: same account (hence the same user
//! id), sessions, saved peers, outbox, processed-message hashes, name, relay
//! URL and fallback-key timestamp. See `docs/compatibility.md`.
//!
//! [`python001`] reads and validates the reference's store without writing
//! anything; a wrong secret is [`MigrateError::WrongSecret`].

pub mod python001;

pub use python001::{is_python_identity, PythonIdentity};

use std::path::PathBuf;

/// Why an identity could not be migrated. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The folder holds no Python 0.0.1 identity (`store.db` with an
    /// account).
    #[error("{0} holds no Python retalk 0.0.1 identity (no store.db with an account)")]
    NotPythonIdentity(PathBuf),
    /// The secret does not decrypt the account.
    #[error("wrong secret: it does not unlock the Python retalk 0.0.1 identity")]
    WrongSecret,
    /// The store decrypted but something in it is malformed.
    #[error("the Python retalk 0.0.1 store is damaged: {0}")]
    Corrupt(String),
    /// SQLite could not read the store.
    #[error("cannot read {0}: {1}")]
    Sqlite(PathBuf, #[source] rusqlite::Error),
    /// A file operation failed.
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
}
