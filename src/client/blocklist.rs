//! `user.blocklist()`: senders whose mail is refused unread. Their mail is
//! dropped before any decryption (so a blocked sender cannot make us use up
//! a one-time key) and refused at the relay with a signed `nack`.

use crate::proto::UserId;

use super::{ClientError, User};

/// The block list of one identity; see [`User::blocklist`].
pub struct Blocklist<'u> {
    user: &'u User,
}

impl User {
    /// This identity's block list.
    pub fn blocklist(&self) -> Blocklist<'_> {
        Blocklist { user: self }
    }
}

impl Blocklist<'_> {
    /// Blocks `id`; false if it already was.
    pub fn add(&self, id: &UserId) -> Result<bool, ClientError> {
        Ok(self.user.store.tx(|t| t.block(id))?)
    }

    /// Unblocks `id`; false if it was not blocked.
    pub fn remove(&self, id: &UserId) -> Result<bool, ClientError> {
        Ok(self.user.store.tx(|t| t.unblock(id.as_str()))?)
    }

    /// Whether `id` is blocked.
    pub fn contains(&self, id: &UserId) -> Result<bool, ClientError> {
        Ok(self.user.store.read(|t| t.is_blocked(id.as_str()))?)
    }

    /// Every blocked id, sorted.
    pub fn list(&self) -> Result<Vec<UserId>, ClientError> {
        Ok(self.user.store.read(|t| t.blocked())?)
    }
}
