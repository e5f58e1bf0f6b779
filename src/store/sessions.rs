//! The `sessions` table: every Olm session with every peer (encrypted pickles).

use rusqlite::params;
use vodozemac::olm::{Session, SessionPickle};

use super::{now, StoreError, Tx};

/// A session as stored.
pub struct StoredSession {
    /// vodozemac's session id.
    pub session_id: String,
    /// The peer's Curve25519 identity key (checked against its id).
    pub peer_key: String,
    /// The ratchet.
    pub session: Session,
}

/// Most sessions kept with one peer. Two is the norm after a crossed
/// initiation; more means fresh starts whose predecessors are dead.
pub const MAX_SESSIONS_PER_PEER: i64 = 8;

impl Tx<'_> {
    /// Every session with `peer`, most recently used first. A row that no
    /// longer decrypts is skipped (and reported in the log) rather than
    /// making the peer unreachable.
    pub fn sessions(&self, peer: &str) -> Result<Vec<StoredSession>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT session_id, peer_key, pickle FROM sessions WHERE peer=?1 \
             ORDER BY last_used DESC, created DESC",
        )?;
        let rows = stmt
            .query_map([peer], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (session_id, peer_key, pickle) in rows {
            match SessionPickle::from_encrypted(&pickle, self.keys.pickle_key()) {
                Ok(p) => out.push(StoredSession {
                    session_id,
                    peer_key,
                    session: Session::from_pickle(p),
                }),
                Err(_) => tracing::warn!(peer, "skipping a stored session that does not decrypt"),
            }
        }
        Ok(out)
    }

    /// Inserts or updates a session and marks it the most recently used.
    pub fn save_session(&self, peer: &str, s: &StoredSession) -> Result<(), StoreError> {
        let pickle = s.session.pickle().encrypt(self.keys.pickle_key());
        self.conn.execute(
            "INSERT INTO sessions(peer, session_id, peer_key, pickle, created, last_used) \
             VALUES(?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(last_used), 0) + 1 FROM sessions)) \
             ON CONFLICT(peer, session_id) DO UPDATE SET pickle=excluded.pickle, \
             last_used=excluded.last_used",
            params![peer, s.session_id, s.peer_key, pickle, now()],
        )?;
        // Bound the sessions kept per peer (decryption tries each): the
        // least recently used beyond the limit are long dead.
        self.conn.execute(
            "DELETE FROM sessions WHERE peer=?1 AND session_id NOT IN \
             (SELECT session_id FROM sessions WHERE peer=?1 ORDER BY last_used DESC LIMIT ?2)",
            params![peer, MAX_SESSIONS_PER_PEER],
        )?;
        Ok(())
    }

    /// Forgets every session with `peer`.
    pub fn delete_sessions(&self, peer: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM sessions WHERE peer=?1", [peer])?;
        Ok(())
    }

    /// How many sessions are held with `peer`.
    pub fn session_count(&self, peer: &str) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM sessions WHERE peer=?1", [peer], |r| {
                r.get::<_, i64>(0)
            })? as usize)
    }

    /// The identity keys of the sessions held with `peer` (for checking a
    /// new pin against what a handshake already verified). Sessions whose
    /// peer key is unknown (`""`: imported from a Python 0.0.1 store, which
    /// does not record it for sessions it started) are left out.
    pub fn session_keys(&self, peer: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT peer_key FROM sessions WHERE peer=?1 AND peer_key != ''")?;
        let rows = stmt
            .query_map([peer], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
