//! Errors a relay returns, and their wire form `{"error": "..."}`.
//!
//! Reference clients read only the `error` text, so the text names the cause
//! in words a person can act on; the HTTP status is chosen for people and
//! tools that look at it (400 malformed, 401 bad auth, 404 unknown user,
//! 413 too large, 429 over a limit).

use serde::{Deserialize, Serialize};

use super::auth::AuthError;
use super::canonical::CanonicalError;
use super::ids::IdError;

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The request is malformed: not JSON, wrong types, unknown tool, bad ids.
    #[error("{0}")]
    BadRequest(String),
    /// The signature check failed.
    #[error("{0}")]
    Auth(#[from] AuthError),
    /// The addressed user has no published keys.
    #[error("{0}")]
    NotFound(String),
    /// The body is larger than the relay accepts.
    #[error("{0}")]
    TooLarge(String),
    /// A per-user bound was reached (stored keys, mailbox size, rate).
    #[error("{0}")]
    LimitExceeded(String),
    /// The relay could not do its part (storage failure); nothing changed.
    #[error("{0}")]
    Unavailable(String),
}

impl WireError {
    /// The HTTP status this error is sent with.
    pub fn status(&self) -> u16 {
        match self {
            WireError::BadRequest(_) => 400,
            WireError::Auth(_) => 401,
            WireError::NotFound(_) => 404,
            WireError::TooLarge(_) => 413,
            WireError::LimitExceeded(_) => 429,
            WireError::Unavailable(_) => 503,
        }
    }

    /// The error as received from a relay, rebuilt from its status and text
    /// so a client can tell refusals apart.
    pub fn from_status(status: u16, message: String) -> Self {
        match status {
            401 | 403 => WireError::Auth(AuthError::from_reason(message)),
            404 => WireError::NotFound(message),
            413 => WireError::TooLarge(message),
            429 => WireError::LimitExceeded(message),
            500..=599 => WireError::Unavailable(message),
            _ => WireError::BadRequest(message),
        }
    }

    /// The wire body for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.to_string(),
        }
    }
}

impl From<IdError> for WireError {
    fn from(e: IdError) -> Self {
        WireError::BadRequest(e.to_string())
    }
}

impl From<CanonicalError> for WireError {
    fn from(e: CanonicalError) -> Self {
        WireError::BadRequest(e.to_string())
    }
}

/// `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
}
