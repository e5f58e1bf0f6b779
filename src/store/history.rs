//! The `history` table: messages kept for `retalk history` when the user
//! asks (`--save`), text and names sealed with the store key (derived from
//! the passphrase by Argon2id), never stored in the clear.

use rusqlite::params;

use super::{now, user_id, StoreError, Tx};
use crate::proto::UserId;

const HISTORY_PURPOSE: &str = "history-message";

/// One kept message.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The message id.
    pub msg_id: String,
    /// The other party (sender of an incoming, recipient of an outgoing).
    pub peer: UserId,
    /// `"in"` or `"out"`.
    pub direction: String,
    /// The sender's name as shown when it was kept.
    pub name: String,
    /// The text.
    pub text: String,
    /// When it was kept, seconds since the epoch.
    pub ts: f64,
    /// The room of a group message: (id, label when kept).
    pub group: Option<(String, String)>,
}

impl Tx<'_> {
    /// Keeps a message (once per peer, id and direction).
    pub fn history_insert(&self, row: &HistoryRow) -> Result<(), StoreError> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({
                "name": row.name,
                "text": row.text,
                "group": row.group.as_ref().map(|g| &g.1),
            }))
            .expect("JSON values always serialize"),
        );
        let sealed = self.keys.seal(HISTORY_PURPOSE, &plain);
        let ts = if row.ts > 0.0 { row.ts } else { now() };
        self.conn.execute(
            "INSERT OR IGNORE INTO history(msg_id, peer, direction, sealed, ts, gid) \
             VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                row.msg_id,
                row.peer.as_str(),
                row.direction,
                sealed,
                ts,
                row.group.as_ref().map(|g| &g.0)
            ],
        )?;
        Ok(())
    }

    /// Kept messages in the order they were kept, only with `peer` if given.
    /// Read-only. A row that does not open (damaged file) is skipped.
    pub fn history(&self, peer: Option<&str>) -> Result<Vec<HistoryRow>, StoreError> {
        let rows = self.history_after(peer, i64::MIN)?;
        Ok(rows.into_iter().map(|(_, row)| row).collect())
    }

    /// Kept messages after `after` (their `seq`, the row's place in keeping
    /// order), oldest first, each with its `seq`; only with `peer` if given.
    /// Read-only; what `retalk show` polls. A row that does not open is
    /// skipped, as in [`history`](Self::history).
    pub fn history_after(
        &self,
        peer: Option<&str>,
        after: i64,
    ) -> Result<Vec<(i64, HistoryRow)>, StoreError> {
        self.history_where("(?1 IS NULL OR peer=?1)", peer, after)
    }

    /// Kept messages of the room `gid` after `after`, as
    /// [`history_after`](Self::history_after).
    pub fn history_group_after(
        &self,
        gid: &str,
        after: i64,
    ) -> Result<Vec<(i64, HistoryRow)>, StoreError> {
        self.history_where("gid=?1", Some(gid), after)
    }

    fn history_where(
        &self,
        filter: &str,
        key: Option<&str>,
        after: i64,
    ) -> Result<Vec<(i64, HistoryRow)>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT seq, msg_id, peer, direction, sealed, ts, gid FROM history \
             WHERE seq > ?2 AND {filter} ORDER BY seq"
        ))?;
        let rows = stmt
            .query_map(params![key, after], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    user_id(r, 2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, f64>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, msg_id, peer, direction, sealed, ts, gid) in rows {
            let Some(v) = self
                .keys
                .open(HISTORY_PURPOSE, &sealed)
                .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
            else {
                tracing::warn!(
                    peer = peer.as_str(),
                    "skipping a kept message that does not decrypt"
                );
                continue;
            };
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
            out.push((
                seq,
                HistoryRow {
                    msg_id,
                    peer,
                    direction,
                    name: field("name"),
                    text: field("text"),
                    ts,
                    group: gid.map(|g| (g, field("group"))),
                },
            ));
        }
        Ok(out)
    }
}
