//! The `outbox` table: chat ciphertext sent but not yet acknowledged.

use rusqlite::params;

use super::{now, user_id, StoreError, Tx};
use crate::proto::UserId;

/// A sent message awaiting its acknowledgement.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// The message id inside the envelope.
    pub id: String,
    /// Recipient id.
    pub peer: UserId,
    /// Olm message type.
    pub mtype: u8,
    /// Padded base64 ciphertext, exactly as first sent.
    pub body: String,
}

impl Tx<'_> {
    /// Records a sent message until it is acknowledged.
    pub fn outbox_insert(&self, row: &OutboxRow) -> Result<(), StoreError> {
        let t = now();
        self.conn.execute(
            "INSERT OR REPLACE INTO outbox(id, peer, mtype, body, created, last_sent) \
             VALUES(?1, ?2, ?3, ?4, ?5, ?5)",
            params![row.id, row.peer.as_str(), row.mtype, row.body, t],
        )?;
        Ok(())
    }

    /// Messages last sent at or before `cutoff`, oldest first.
    pub fn outbox_due(&self, cutoff: f64) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, peer, mtype, body FROM outbox WHERE last_sent<=?1 ORDER BY created, id",
        )?;
        let rows = stmt
            .query_map([cutoff], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    peer: user_id(r, 1)?,
                    mtype: r.get(2)?,
                    body: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Notes that a message was (re-)sent now.
    pub fn outbox_sent(&self, id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET last_sent=?2 WHERE id=?1",
            params![id, now()],
        )?;
        Ok(())
    }

    /// Drops a message from the outbox; with `peer`, only if it was sent to
    /// that peer (an acknowledgement counts only from the recipient).
    pub fn outbox_delete(&self, id: &str, peer: Option<&str>) -> Result<bool, StoreError> {
        let n = match peer {
            Some(p) => self
                .conn
                .execute("DELETE FROM outbox WHERE id=?1 AND peer=?2", [id, p])?,
            None => self.conn.execute("DELETE FROM outbox WHERE id=?1", [id])?,
        };
        Ok(n > 0)
    }

    /// Messages awaiting acknowledgement.
    pub fn outbox_len(&self) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))?
            as usize)
    }
}
