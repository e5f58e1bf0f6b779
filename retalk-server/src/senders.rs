//! How many undelivered messages each sender has in each mailbox, for the
//! per-sender cap (`--max-mailbox-per-sender`), kept in the writer's memory.
//!
//! Why memory: the count used to live in a table of its own
//! (`retalk_mailboxes`, one row per recipient and sender), kept by a trigger
//! on every insert and delete. Its rows are spread over the whole table, so
//! every send dirtied a page of it at random that the group commit then
//! wrote to the log (and the checkpoint again to the file): about a third of
//! the pages a send dirtied (docs/benchmarks.md). The messages themselves
//! are the record; this is a cache of them, never ahead of the database.
//!
//! * A mailbox is counted from `messages` the first time a send to it is
//!   checked (one index range scan of that mailbox, inside the writer's
//!   transaction, so it sees exactly what the send would).
//! * From then on the writer keeps it in step: +1 for a message it stores,
//!   −1 for each it hands over and deletes. Emptied mailboxes are dropped.
//! * Anything else that deletes mail (expiry) or a group that does not
//!   commit (its changes are rolled back) makes the writer forget every
//!   count; each is counted again at its next send.
//!
//! The writer is the only writer of its file (one relay process per SQLite
//! database), so nothing else changes `messages` while a count is held; a
//! reference relay run on the file in between is harmless, since counts are
//! taken afresh at every start.

use std::collections::HashMap;

use rusqlite::Connection;

/// Per mailbox (by recipient), per sender: messages waiting.
#[derive(Debug, Default)]
pub struct SenderCounts {
    boxes: HashMap<String, HashMap<String, u64>>,
}

impl SenderCounts {
    /// Messages from `sender` waiting in `recipient`'s mailbox, counting the
    /// mailbox from the database first if it is not held yet.
    pub fn waiting(
        &mut self,
        conn: &Connection,
        recipient: &str,
        sender: &str,
    ) -> rusqlite::Result<u64> {
        if let Some(senders) = self.boxes.get(recipient) {
            return Ok(senders.get(sender).copied().unwrap_or(0));
        }
        let senders = count(conn, recipient)?;
        let n = senders.get(sender).copied().unwrap_or(0);
        self.boxes.insert(recipient.to_owned(), senders);
        Ok(n)
    }

    /// A message from `sender` was stored in `recipient`'s mailbox (in the
    /// writer's open transaction).
    pub fn stored(&mut self, recipient: &str, sender: &str) {
        if let Some(senders) = self.boxes.get_mut(recipient) {
            match senders.get_mut(sender) {
                Some(n) => *n += 1,
                None => {
                    senders.insert(sender.to_owned(), 1);
                }
            }
        }
    }

    /// Messages from these senders (one entry per message) were deleted
    /// from `recipient`'s mailbox on delivery.
    pub fn delivered<'a>(&mut self, recipient: &str, senders: impl IntoIterator<Item = &'a str>) {
        let Some(counts) = self.boxes.get_mut(recipient) else {
            return;
        };
        for sender in senders {
            match counts.get_mut(sender) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    counts.remove(sender);
                }
                None => {
                    // Not what the count said: count this mailbox again.
                    self.boxes.remove(recipient);
                    return;
                }
            }
        }
        if counts.is_empty() {
            self.boxes.remove(recipient);
        }
    }

    /// Forgets every count (mail was deleted by other means, or a group's
    /// changes were rolled back).
    pub fn forget(&mut self) {
        self.boxes.clear();
    }
}

/// Counts `recipient`'s waiting mail by sender, as the rows say (senders
/// read as [`crate::store::text`] reads them, so the keys match the `from`
/// of delivered mail).
fn count(conn: &Connection, recipient: &str) -> rusqlite::Result<HashMap<String, u64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT sender, COUNT(*) FROM messages WHERE recipient = ?1 GROUP BY sender",
    )?;
    let mut rows = stmt.query([recipient])?;
    let mut out: HashMap<String, u64> = HashMap::new();
    while let Some(row) = rows.next()? {
        let sender = crate::store::text(row, 0)?;
        let n: i64 = row.get(1)?;
        *out.entry(sender).or_default() += n.max(0) as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(&dir.path().join("s.db")).unwrap();
        (dir, conn)
    }

    fn insert(conn: &Connection, sender: &str, recipient: &str) {
        conn.execute(
            "INSERT INTO messages(ts, sender, recipient, mtype, body) VALUES(1, ?1, ?2, 1, 'AA==')",
            [sender, recipient],
        )
        .unwrap();
    }

    /// The counts held always equal what the table says, through stores,
    /// deliveries and a forget.
    #[test]
    fn counts_follow_the_table() {
        let (_dir, conn) = db();
        insert(&conn, "a", "r");
        insert(&conn, "a", "r");
        insert(&conn, "b", "r");
        let mut c = SenderCounts::default();
        assert_eq!(c.waiting(&conn, "r", "a").unwrap(), 2);
        // Held now: a row added behind the writer's back is not seen...
        insert(&conn, "a", "r");
        assert_eq!(c.waiting(&conn, "r", "a").unwrap(), 2);
        // ...until the counts are forgotten.
        c.forget();
        assert_eq!(c.waiting(&conn, "r", "a").unwrap(), 3);
        c.stored("r", "c");
        assert_eq!(c.waiting(&conn, "r", "c").unwrap(), 1);
        c.delivered("r", ["a", "a", "b", "c"]);
        assert_eq!(c.waiting(&conn, "r", "a").unwrap(), 1);
        assert_eq!(c.waiting(&conn, "r", "b").unwrap(), 0);
        // A mailbox never counted is counted at its first look.
        assert_eq!(c.waiting(&conn, "elsewhere", "a").unwrap(), 0);
        c.stored("elsewhere", "a");
        assert_eq!(c.waiting(&conn, "elsewhere", "a").unwrap(), 1);
        // A delivery the count cannot explain drops the mailbox's count.
        c.delivered("elsewhere", ["zz"]);
        assert!(!c.boxes.contains_key("elsewhere"));
        // Emptied mailboxes are not kept.
        c.delivered("r", ["a"]);
        assert!(!c.boxes.contains_key("r"));
    }
}
