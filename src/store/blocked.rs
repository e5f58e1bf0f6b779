//! The `blocked` table: senders whose mail is refused without decrypting.

use rusqlite::{params, OptionalExtension};

use super::{now, user_id, StoreError, Tx};
use crate::proto::UserId;

impl Tx<'_> {
    /// Blocks `id`; false if it already was.
    pub fn block(&self, id: &UserId) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO blocked(id, ts) VALUES(?1, ?2)",
            params![id.as_str(), now()],
        )? > 0)
    }

    /// Unblocks `id`; false if it was not blocked.
    pub fn unblock(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn.execute("DELETE FROM blocked WHERE id=?1", [id])? > 0)
    }

    /// Whether `id` is blocked.
    pub fn is_blocked(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM blocked WHERE id=?1", [id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Every blocked id, sorted.
    pub fn blocked(&self) -> Result<Vec<UserId>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id FROM blocked ORDER BY id")?;
        let rows = stmt
            .query_map([], |r| user_id(r, 0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
