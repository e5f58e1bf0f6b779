//! The `processed` table: hashes of decrypted bodies, to recognise re-sent copies.

use rusqlite::{params, OptionalExtension};

use super::{now, StoreError, Tx};

impl Tx<'_> {
    /// The message id recorded for a body hash, if that body was processed.
    pub fn processed(&self, hash: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT msg_id, peer FROM processed WHERE hash=?1",
                [hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Whether a message with this id from this peer was processed before.
    pub fn processed_id(&self, peer: &str, msg_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM processed WHERE peer=?1 AND msg_id=?2 LIMIT 1",
                [peer, msg_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Forgets processed bodies recorded before `cutoff`; returns how many.
    pub fn processed_prune(&self, cutoff: f64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM processed WHERE ts < ?1", [cutoff])?)
    }

    /// Records a processed body.
    pub fn processed_insert(&self, hash: &str, msg_id: &str, peer: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO processed(hash, msg_id, peer, ts) VALUES(?1, ?2, ?3, ?4)",
            params![hash, msg_id, peer, now()],
        )?;
        Ok(())
    }
}
