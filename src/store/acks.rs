//! The `pending_acks` table: acknowledgements owed to senders.

use rusqlite::params;

use super::{user_id, StoreError, Tx};
use crate::proto::UserId;

/// An acknowledgement owed to a sender.
#[derive(Debug, Clone)]
pub struct AckRow {
    /// Local order.
    pub seq: i64,
    /// Who to acknowledge.
    pub peer: UserId,
    /// The acknowledged message id.
    pub msg_id: String,
    /// The encrypted acknowledgement, once made.
    pub wire: Option<(u8, String)>,
}

impl Tx<'_> {
    /// Owes `peer` an acknowledgement of `msg_id`.
    pub fn ack_insert(&self, peer: &UserId, msg_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO pending_acks(peer, msg_id) VALUES(?1, ?2)",
            [peer.as_str(), msg_id],
        )?;
        Ok(())
    }

    /// Acknowledgements owed, oldest first.
    pub fn acks(&self) -> Result<Vec<AckRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, peer, msg_id, mtype, body FROM pending_acks ORDER BY seq")?;
        let rows = stmt
            .query_map([], |r| {
                let mtype: Option<u8> = r.get(3)?;
                let body: Option<String> = r.get(4)?;
                Ok(AckRow {
                    seq: r.get(0)?,
                    peer: user_id(r, 1)?,
                    msg_id: r.get(2)?,
                    wire: mtype.zip(body),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Stores the ciphertext made for an acknowledgement.
    pub fn ack_set_wire(&self, seq: i64, mtype: u8, body: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE pending_acks SET mtype=?2, body=?3 WHERE seq=?1",
            params![seq, mtype, body],
        )?;
        Ok(())
    }

    /// An acknowledgement was delivered (or given up).
    pub fn ack_delete(&self, seq: i64) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM pending_acks WHERE seq=?1", [seq])?;
        Ok(())
    }
}
