//! Watching the mailbox without taking anything: a held, peeking read.
//!
//! A front end that announces mail (the MCP server's push) must not consume
//! it: the relay deletes mail when it hands it over, and what it announces
//! is fetched later by [`User::receive_with`]. The peek leaves the mailbox
//! as it is, so a watcher may be stopped at any moment, and other readers of
//! the identity (a `receive --follow`) are unaffected.

use std::time::Duration;

use crate::proto::tools::ReadMessages;
use crate::proto::UserId;

use super::transport::REQUEST_TIMEOUT;
use super::{ClientError, User};

impl User {
    /// Waits up to `wait` (whole seconds, rounded up, capped at the relay's
    /// `max_wait`) for mail, only `from`'s when given, and returns whether
    /// the relay holds any; nothing is taken, decrypted or acknowledged.
    /// Returns at once when mail is already there. Relays that cannot hold
    /// a read (no `max_wait` in `GET /info`) cannot peek either: for them
    /// this returns `Ok(false)` at once, and the caller polls with
    /// [`receive_with`](Self::receive_with) instead (see
    /// [`relay_supports_wait`](Self::relay_supports_wait)).
    ///
    /// The store lock is not taken. Dropping the future mid-wait is safe:
    /// it only abandons a read that takes nothing.
    pub async fn wait_for_mail(
        &self,
        wait: Duration,
        from: Option<&UserId>,
    ) -> Result<bool, ClientError> {
        self.relay()?;
        let Some(max) = self.relay_max_wait().await? else {
            return Ok(false);
        };
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let secs = secs.min(max);
        let req = ReadMessages {
            peer: from.cloned(),
            peek: true,
            wait: (secs > 0).then_some(secs),
        };
        let timeout = REQUEST_TIMEOUT + Duration::from_secs(secs);
        let mail = self.call_with_timeout(self.signer(), &req, timeout).await?;
        Ok(!mail.is_empty())
    }
}
