//! Which messages wait in each mailbox, in arrival order, with how many
//! each sender has there (for `--max-mailbox-per-sender`) and how many
//! messages and body bytes the mailbox holds in all (for `--max-mailbox` and
//! `--max-mailbox-bytes`, and the metrics' gauges): the writer's index of
//! `messages`, kept in its memory instead of in the file.
//!
//! Why memory: an index on `messages(recipient, id)` in the file puts every
//! send's entry at its recipient's end of the index, a different page for
//! each recipient, so a group commit of N sends to N mailboxes dirtied N
//! index pages besides the few table pages its rows fill, and wrote each
//! of them whole to the log (and again at the checkpoint): most of the
//! bytes a send wrote. Without it the writer thread spends about 30% less
//! per send (docs/benchmarks.md, issue 16 round 8). The per-mailbox totals
//! were a table of the file (`retalk_mailbox_totals`, schema 3 to 5) for
//! the same check, with the same cost: a row, so a page, per recipient
//! rewritten by every send, and a lookup and an update statement per send
//! (round 9). The rows are the record; this is a cache of them, rebuilt
//! from them, never ahead of them.
//!
//! * Built by one scan of `messages` (in rowid order) at the writer's
//!   first transaction, and again whenever another connection has changed
//!   the file since (`PRAGMA data_version`, checked at the start of each of
//!   the writer's transactions by [`Mailboxes::check`]): a reference relay
//!   or an operator's `sqlite3` writing the file in between is seen.
//! * From then on the writer keeps it in step with its own statements, in
//!   the same transaction: +1 entry per message stored, −1 per message
//!   handed over and deleted or expired. A transaction that does not commit
//!   makes it forget everything ([`Mailboxes::forget`]); the next
//!   transaction scans again.
//! * Which rows belong to a mailbox is SQL's `recipient = ?` on a text
//!   column: rows whose recipient is stored as text. A sender is matched
//!   (`sender = ?`) and counted only when stored as text, likewise. A
//!   message's size is its body's length in bytes as stored
//!   (`octet_length(body)`, the same as `length(CAST(body AS BLOB))`,
//!   whatever type another program stored it as; 0 for none).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// The index's maps hash user ids with foldhash, seeded at random per
/// process (so no one can pick ids that collide), instead of SipHash: its
/// lookups and inserts were about 5% of the writer thread (perf).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// The scan that builds the index: every message, once, in rowid order (at
/// a writer's first transaction, and after another connection's writes).
/// A body's size is `octet_length`, its length in bytes as stored, which
/// SQLite takes from the record's header without loading the body (a body
/// longer than fits a page would otherwise be read from its overflow
/// pages): the same number as `length(CAST(body AS BLOB))`, which the tests
/// use as the truth.
pub(crate) const BUILD: &str = "SELECT id, recipient, sender, ifnull(octet_length(body), 0) \
     FROM messages WHERE typeof(recipient) = 'text' ORDER BY id";

/// The writer's index of waiting mail (see the module documentation).
#[derive(Debug, Default)]
pub struct Mailboxes {
    boxes: Map<Box<str>, Mailbox>,
    /// Messages and body bytes in all mailboxes.
    all: Totals,
    /// `PRAGMA data_version` when the index was built or last checked;
    /// `None` when it must be built (first use, or after [`Self::forget`]).
    version: Option<i64>,
}

/// How much mail waits: messages, and the bytes of their bodies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Messages.
    pub messages: u64,
    /// Bytes of their bodies.
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Mailbox {
    /// Oldest first (ids only grow: `messages` is AUTOINCREMENT).
    mail: VecDeque<Entry>,
    /// Messages waiting per (text) sender; senders with none are dropped.
    senders: Map<Arc<str>, u64>,
    /// Body bytes of `mail` (its messages are `mail.len()`).
    bytes: u64,
}

#[derive(Debug)]
struct Entry {
    id: i64,
    sender: Option<Arc<str>>,
    /// The body's length in bytes.
    bytes: u64,
}

impl Mailboxes {
    /// Makes the index match the file, inside the caller's transaction (so
    /// nothing else can commit until it ends): builds it if it is not
    /// held, or if another connection has committed since it was.
    pub fn check(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.version != Some(version) {
            // Not held until built whole (a failed scan builds it again).
            self.version = None;
            self.load(conn)?;
            self.version = Some(version);
        }
        Ok(())
    }

    /// Forgets the index (the transaction that changed it did not commit);
    /// the next [`Self::check`] builds it again.
    pub fn forget(&mut self) {
        self.boxes.clear();
        self.all = Totals::default();
        self.version = None;
    }

    fn load(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.boxes.clear();
        self.all = Totals::default();
        let mut stmt = conn.prepare(BUILD)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let ValueRef::Text(recipient) = row.get_ref(1)? else {
                continue;
            };
            let recipient = String::from_utf8_lossy(recipient);
            let sender = match row.get_ref(2)? {
                ValueRef::Text(s) => Some(String::from_utf8_lossy(s)),
                _ => None,
            };
            // A length is never negative; `u64::try_from` only guards it.
            let bytes = u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0);
            self.add(&recipient, id, sender.as_deref(), bytes);
        }
        Ok(())
    }

    /// Files message `id` (from `sender`, when stored as text) at the end
    /// of `recipient`'s mailbox, with its body's size. A mailbox's entries
    /// share one copy of each sender's id, the key of its count.
    fn add(&mut self, recipient: &str, id: i64, sender: Option<&str>, bytes: u64) {
        let mailbox = match self.boxes.get_mut(recipient) {
            Some(m) => m,
            None => self.boxes.entry(recipient.into()).or_default(),
        };
        let sender = sender.map(|sender| match mailbox.senders.get_key_value(sender) {
            Some((name, _)) => name.clone(),
            None => Arc::from(sender),
        });
        if let Some(name) = &sender {
            *mailbox.senders.entry(name.clone()).or_default() += 1;
        }
        mailbox.mail.push_back(Entry { id, sender, bytes });
        mailbox.bytes += bytes;
        self.all.messages += 1;
        self.all.bytes += bytes;
    }

    /// The mail waiting in all mailboxes (kept as it changes, not summed).
    pub fn all(&self) -> Totals {
        self.all
    }

    /// The mail waiting in `recipient`'s mailbox.
    pub fn totals(&self, recipient: &str) -> Totals {
        self.boxes
            .get(recipient)
            .map(|m| Totals {
                messages: m.mail.len() as u64,
                bytes: m.bytes,
            })
            .unwrap_or_default()
    }

    /// Messages from `sender` waiting in `recipient`'s mailbox.
    pub fn waiting_from(&self, recipient: &str, sender: &str) -> u64 {
        self.boxes
            .get(recipient)
            .and_then(|m| m.senders.get(sender))
            .copied()
            .unwrap_or(0)
    }

    /// Message `id` from `sender`, its body `bytes` long, was stored in
    /// `recipient`'s mailbox (in the writer's open transaction).
    pub fn stored(&mut self, recipient: &str, id: i64, sender: &str, bytes: u64) {
        self.add(recipient, id, Some(sender), bytes);
    }

    /// The ids waiting in `recipient`'s mailbox, oldest first, only those
    /// from `peer` when it is set.
    pub fn waiting<'a>(
        &'a self,
        recipient: &str,
        peer: Option<&'a str>,
    ) -> impl Iterator<Item = i64> + 'a {
        self.boxes
            .get(recipient)
            .into_iter()
            .flat_map(|m| m.mail.iter())
            .filter(move |e| peer.is_none_or(|p| e.sender.as_deref() == Some(p)))
            .map(|e| e.id)
    }

    /// These messages (ids ascending) left `recipient`'s mailbox: handed
    /// over and deleted in the writer's open transaction.
    pub fn delivered(&mut self, recipient: &str, ids: &[i64]) {
        let Some(mailbox) = self.boxes.get_mut(recipient) else {
            return;
        };
        let all = &mut self.all;
        if mailbox
            .mail
            .iter()
            .map(|e| e.id)
            .take(ids.len())
            .eq(ids.iter().copied())
        {
            // The whole read was the mailbox's oldest mail (no peer).
            for _ in 0..ids.len() {
                if let Some(e) = mailbox.mail.pop_front() {
                    mailbox.uncount(&e, all);
                }
            }
        } else {
            // One peer's mail, from anywhere in the mailbox.
            let mut gone = ids.iter().peekable();
            for e in std::mem::take(&mut mailbox.mail) {
                while gone.next_if(|&&id| id < e.id).is_some() {}
                if gone.next_if(|&&id| id == e.id).is_some() {
                    mailbox.uncount(&e, all);
                } else {
                    mailbox.mail.push_back(e);
                }
            }
        }
        if mailbox.mail.is_empty() {
            self.boxes.remove(recipient);
        }
    }

    /// Every message with an id below `end` was deleted (expiry, in the
    /// writer's transaction).
    pub fn expired_before(&mut self, end: i64) {
        let all = &mut self.all;
        self.boxes.retain(|_, mailbox| {
            while mailbox.mail.front().is_some_and(|e| e.id < end) {
                if let Some(e) = mailbox.mail.pop_front() {
                    mailbox.uncount(&e, all);
                }
            }
            !mailbox.mail.is_empty()
        });
    }
}

impl Mailbox {
    /// Takes entry `e`, just removed from `mail`, out of the counts: its
    /// sender's, the mailbox's bytes and `all`.
    fn uncount(&mut self, e: &Entry, all: &mut Totals) {
        self.bytes -= e.bytes;
        all.messages -= 1;
        all.bytes -= e.bytes;
        let Some(sender) = &e.sender else { return };
        if let Some(n) = self.senders.get_mut(sender) {
            *n -= 1;
            if *n == 0 {
                self.senders.remove(sender);
            }
        }
    }
}

/// For the tests of this module and of [`crate::store`]: the index held
/// to an independent reading of the table.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::HashMap;

    use rusqlite::Connection;

    use super::{Mailboxes, Totals};

    /// Per mailbox: ids in order, per-sender counts, body bytes.
    type View = HashMap<String, (Vec<i64>, HashMap<String, u64>, u64)>;

    /// What the table says.
    fn truth(conn: &Connection) -> View {
        let mut out: View = HashMap::new();
        let mut stmt = conn
            .prepare(
                "SELECT id, recipient, sender, typeof(sender) = 'text', \
                 ifnull(length(CAST(body AS BLOB)), 0) FROM messages \
                 WHERE typeof(recipient) = 'text' ORDER BY id",
            )
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let entry = out.entry(r.get(1).unwrap()).or_default();
            entry.0.push(r.get(0).unwrap());
            if r.get::<_, bool>(3).unwrap() {
                *entry.1.entry(r.get(2).unwrap()).or_default() += 1;
            }
            entry.2 += r.get::<_, u64>(4).unwrap();
        }
        out
    }

    fn held(m: &Mailboxes) -> View {
        m.boxes
            .iter()
            .map(|(k, b)| {
                let ids = b.mail.iter().map(|e| e.id).collect();
                let senders = b.senders.iter().map(|(s, n)| (s.to_string(), *n)).collect();
                (k.to_string(), (ids, senders, b.bytes))
            })
            .collect()
    }

    /// The index equals the table: each mailbox (ids, senders' counts,
    /// bytes), each one's totals, and the totals of all. `step` names the
    /// moment in the failure message.
    pub(crate) fn same(m: &Mailboxes, conn: &Connection, step: &str) {
        let truth = truth(conn);
        assert_eq!(held(m), truth, "after {step}");
        for (recipient, (ids, _, bytes)) in &truth {
            let expected = Totals {
                messages: ids.len() as u64,
                bytes: *bytes,
            };
            assert_eq!(m.totals(recipient), expected, "{recipient} after {step}");
        }
        let all = Totals {
            messages: truth.values().map(|v| v.0.len() as u64).sum(),
            bytes: truth.values().map(|v| v.2).sum(),
        };
        assert_eq!(m.all(), all, "after {step}");
        assert_eq!(m.totals("nobody"), Totals::default());
    }
}

#[cfg(test)]
mod tests {
    use super::testing::same;
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(&dir.path().join("s.db")).unwrap();
        (dir, conn)
    }

    fn insert(conn: &Connection, sender: &str, recipient: &str) -> i64 {
        conn.execute(
            // Bodies of 0 to 49 bytes, so that sizes differ.
            "INSERT INTO messages(ts, sender, recipient, mtype, body) \
             VALUES(1, ?1, ?2, 1, substr(hex(randomblob(25)), 1, abs(random()) % 50))",
            [sender, recipient],
        )
        .unwrap();
        conn.last_insert_rowid()
    }

    /// The stored size of message `id`'s body.
    fn size(conn: &Connection, id: i64) -> u64 {
        conn.query_row(
            "SELECT ifnull(length(CAST(body AS BLOB)), 0) FROM messages WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// Through the writer's own changes (stores, whole and per-peer reads,
    /// expiry), another connection's writes and a forgotten index, the
    /// index equals what the table says.
    #[test]
    fn the_index_follows_the_table() {
        let (dir, conn) = db();
        insert(&conn, "a", "r");
        insert(&conn, "a", "r");
        insert(&conn, "b", "r");
        let mut m = Mailboxes::default();
        m.check(&conn).unwrap();
        same(&m, &conn, "the first build");
        assert_eq!(m.waiting_from("r", "a"), 2);
        // The writer's own insert is not a change by "another connection".
        let id = insert(&conn, "c", "r");
        m.stored("r", id, "c", size(&conn, id));
        m.check(&conn).unwrap();
        same(&m, &conn, "the writer's own store");
        let ids: Vec<i64> = m.waiting("r", Some("a")).collect();
        assert_eq!(ids.len(), 2);
        // A per-peer read removes that peer's entries from the middle.
        for id in &ids {
            conn.execute("DELETE FROM messages WHERE id = ?1", [id])
                .unwrap();
        }
        m.delivered("r", &ids);
        same(&m, &conn, "a per-peer read");
        assert_eq!(m.waiting_from("r", "a"), 0);
        // Another connection's writes (a row with a blob recipient and one
        // with a NULL sender among them) are seen at the next check.
        let other = Connection::open(dir.path().join("s.db")).unwrap();
        other
            .execute_batch(
                "INSERT INTO messages(ts, sender, recipient, mtype, body) VALUES \
                 (1, 'x', 'q', 1, 'AA=='), (1, NULL, 'q', 1, NULL), (1, 'x', 'q', 1, x'00ff10'), \
                 (1, 'x', x'71', 1, 'AA==');",
            )
            .unwrap();
        m.check(&conn).unwrap();
        same(&m, &conn, "another connection's writes");
        assert_eq!(m.waiting("q", None).count(), 3);
        assert_eq!(
            m.totals("q").bytes,
            4 + 3,
            "a NULL body counts 0, a blob its bytes"
        );
        assert_eq!(m.waiting("q", Some("x")).count(), 2);
        // A whole read of the oldest mail.
        let all: Vec<i64> = m.waiting("r", None).collect();
        for id in &all {
            conn.execute("DELETE FROM messages WHERE id = ?1", [id])
                .unwrap();
        }
        m.delivered("r", &all);
        assert!(!m.boxes.contains_key("r"), "emptied mailboxes are dropped");
        same(&m, &conn, "a whole read");
        // Expiry of everything below an id.
        let keep = insert(&conn, "a", "q");
        m.stored("q", keep, "a", size(&conn, keep));
        conn.execute("DELETE FROM messages WHERE id < ?1", [keep])
            .unwrap();
        m.expired_before(keep);
        same(&m, &conn, "expiry");
        // A rolled-back change: forgotten, then built again.
        insert(&conn, "lost", "q");
        m.forget();
        m.check(&conn).unwrap();
        same(&m, &conn, "a forgotten index");
    }

    /// Random stores, peer and whole reads and expiries, applied to the
    /// table and the index alike: they never disagree.
    #[test]
    fn random_changes_keep_the_index_equal_to_the_table() {
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
            cases: 24,
            ..Default::default()
        });
        let op = (0u8..4, 0u8..4, 0u8..3);
        runner
            .run(&proptest::collection::vec(op, 1..60), |ops| {
                let (_dir, conn) = db();
                let mut m = Mailboxes::default();
                m.check(&conn).unwrap();
                for (kind, who, peer) in ops {
                    let r = format!("r{}", who % 3);
                    let s = format!("s{peer}");
                    match kind {
                        0 | 1 => {
                            let id = insert(&conn, &s, &r);
                            m.stored(&r, id, &s, size(&conn, id));
                        }
                        2 => {
                            let p = (peer > 0).then_some(s.as_str());
                            let ids: Vec<i64> = m.waiting(&r, p).take(2).collect();
                            for id in &ids {
                                conn.execute("DELETE FROM messages WHERE id = ?1", [id])
                                    .unwrap();
                            }
                            m.delivered(&r, &ids);
                        }
                        _ => {
                            let end: i64 = conn
                                .query_row("SELECT ifnull(MIN(id), 0) + 1 FROM messages", [], |r| {
                                    r.get(0)
                                })
                                .unwrap();
                            conn.execute("DELETE FROM messages WHERE id < ?1", [end])
                                .unwrap();
                            m.expired_before(end);
                        }
                    }
                    same(&m, &conn, &format!("op {kind}"));
                }
                Ok(())
            })
            .unwrap();
    }
}
