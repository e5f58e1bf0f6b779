//! The nonces the relay has seen, for refusing replays.
//!
//! Every signed request carries a random nonce that must never be accepted
//! twice while its timestamp could still pass (see [`NONCE_MEMORY_SECS`]).
//! The database holds the durable record, so the protection survives a
//! restart; the question "seen before?" is answered from memory.
//!
//! Why both: asking the database means an index keyed by the nonce, and
//! random keys land on random pages of that index, so every request dirtied
//! a page of its own that the group commit then wrote to the log (the
//! reference's `nonces(nonce PRIMARY KEY)` does exactly that). That was a
//! fifth to a quarter of the relay's throughput (docs/benchmarks.md). The
//! relay's own table, `retalk_nonce_groups`, is only ever appended to, in
//! time order, one row per group commit holding all of the group's nonces
//! (every request of a group shares its time), and read once at start;
//! the lookups go to a hash map in the writer thread, about 25 bytes per nonce of the last five minutes (tens
//! of megabytes at ten thousand requests a second, nothing at rest).
//!
//! The map is a cache of the table, never ahead of it: a group's nonces
//! enter it only once the group is committed, so a rolled-back group leaves
//! no trace in either.

use std::collections::{HashMap, HashSet};

use retalk_proto::Nonce;
use rusqlite::Connection;

use crate::store::{self, NONCE_MEMORY_SECS};

/// A nonce's 16 bytes.
type Key = [u8; 16];

/// The nonces of the last [`NONCE_MEMORY_SECS`], with when they were seen.
#[derive(Debug, Default)]
pub struct NonceMemory {
    seen: HashMap<Key, f64>,
}

impl NonceMemory {
    /// Loads what the database remembers (this relay's table and, on a file
    /// a reference relay used, the reference's) as of `now`.
    pub fn load(conn: &Connection, now: f64) -> rusqlite::Result<NonceMemory> {
        let mut seen = HashMap::new();
        for (nonce, ts) in store::recent_nonces(conn, now - NONCE_MEMORY_SECS)? {
            // A reference relay may have stored a nonce this relay would
            // refuse to parse; such a nonce can never come back here.
            if let Ok(nonce) = Nonce::parse(&nonce) {
                seen.insert(nonce.to_bytes(), ts);
            }
        }
        Ok(NonceMemory { seen })
    }

    /// Drops nonces seen before `cutoff` (the table is pruned alongside).
    pub fn forget_before(&mut self, cutoff: f64) {
        self.seen.retain(|_, ts| *ts >= cutoff);
    }
}

/// The nonces of one group, checked against the memory and each other,
/// written to the database with the group (one row, just before its
/// commit), remembered once it commits.
#[derive(Debug, Default)]
pub struct GroupNonces {
    keys: HashSet<Key>,
}

impl GroupNonces {
    /// Takes `nonce` into the group, or answers `false` when it was seen
    /// before (a replay).
    pub fn admit(&mut self, memory: &NonceMemory, nonce: &Nonce) -> bool {
        let k = nonce.to_bytes();
        !memory.seen.contains_key(&k) && self.keys.insert(k)
    }

    /// Writes the group's nonces in its transaction (call last, just before
    /// the commit, so that every request of the group is in).
    pub fn record(&self, conn: &Connection, now: f64) -> rusqlite::Result<()> {
        store::record_nonces(conn, self.keys.iter(), now)
    }

    /// The group committed: its nonces join the memory.
    pub fn commit(self, memory: &mut NonceMemory, now: f64) {
        memory.seen.extend(self.keys.into_iter().map(|k| (k, now)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = store::open(&dir.path().join("s.db")).unwrap();
        (dir, conn)
    }

    fn n(c: char) -> Nonce {
        Nonce::parse(&c.to_string().repeat(32)).unwrap()
    }

    #[test]
    fn a_nonce_is_admitted_once_within_a_group_and_after_its_commit() {
        let (_dir, conn) = db();
        let mut memory = NonceMemory::default();
        let mut group = GroupNonces::default();
        assert!(group.admit(&memory, &n('a')));
        assert!(!group.admit(&memory, &n('a')));
        group.record(&conn, 100.0).unwrap();
        group.commit(&mut memory, 100.0);
        let mut next = GroupNonces::default();
        assert!(!next.admit(&memory, &n('a')));
        assert!(next.admit(&memory, &n('b')));
        // Not committed (a rolled-back group): not remembered.
        drop(next);
        assert_eq!(memory.seen.len(), 1);
    }

    #[test]
    fn memory_is_rebuilt_from_both_tables_and_forgets_old_nonces() {
        let (_dir, conn) = db();
        let now = 1_000_000.0;
        store::record_nonces(&conn, [n('a').to_bytes()].iter(), now - 10.0).unwrap();
        store::record_nonces(
            &conn,
            [n('b').to_bytes()].iter(),
            now - NONCE_MEMORY_SECS - 1.0,
        )
        .unwrap();
        conn.execute(
            "INSERT INTO nonces(nonce, ts) VALUES(?1, ?2), ('not hex', ?2)",
            rusqlite::params![n('c').as_str(), now - 5.0],
        )
        .unwrap();
        let mut memory = NonceMemory::load(&conn, now).unwrap();
        let mut group = GroupNonces::default();
        assert!(!group.admit(&memory, &n('a')));
        assert!(!group.admit(&memory, &n('c')));
        assert!(group.admit(&memory, &n('b')), "expired");
        assert_eq!(memory.seen.len(), 2);
        memory.forget_before(now - 7.0);
        assert_eq!(memory.seen.len(), 1, "a (10 s old) forgotten, c (5 s) kept");
    }
}
