//! The `peers` table: local names for peers and optional pinned keys.

use rusqlite::{params, OptionalExtension};

use super::{user_id, StoreError, Tx};
use crate::proto::UserId;

/// A saved peer.
#[derive(Debug, Clone)]
pub struct PeerRow {
    /// Local name.
    pub name: String,
    /// Peer id.
    pub id: UserId,
    /// Pinned identity key.
    pub pin: Option<String>,
    /// Verified signing key (with `pin`: the contact's keys were checked
    /// against its id by `verify`).
    pub signing_key: Option<String>,
}

impl Tx<'_> {
    /// Saves (or replaces) a peer name.
    pub fn peer_upsert(&self, p: &PeerRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO peers(name, id, pin, signing_key) VALUES(?1, ?2, ?3, ?4) \
             ON CONFLICT(name) DO UPDATE SET id=excluded.id, pin=excluded.pin, \
             signing_key=excluded.signing_key",
            params![p.name, p.id.as_str(), p.pin, p.signing_key],
        )?;
        Ok(())
    }

    /// Every saved peer, by name.
    pub fn peers(&self) -> Result<Vec<PeerRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, id, pin, signing_key FROM peers ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PeerRow {
                    name: r.get(0)?,
                    id: user_id(r, 1)?,
                    pin: r.get(2)?,
                    signing_key: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The peer saved under `name`.
    pub fn peer_by_name(&self, name: &str) -> Result<Option<PeerRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, id, pin, signing_key FROM peers WHERE name=?1",
                [name],
                |r| {
                    Ok(PeerRow {
                        name: r.get(0)?,
                        id: user_id(r, 1)?,
                        pin: r.get(2)?,
                        signing_key: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every saved name and pin for `id` (a peer may be saved under several).
    pub fn peers_for_id(&self, id: &str) -> Result<Vec<PeerRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, id, pin, signing_key FROM peers WHERE id=?1 ORDER BY name")?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(PeerRow {
                    name: r.get(0)?,
                    id: user_id(r, 1)?,
                    pin: r.get(2)?,
                    signing_key: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Forgets the name `name`; false if it was not saved.
    pub fn peer_delete(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM peers WHERE name=?1", [name])?
            > 0)
    }

    /// Records the verified keys of every name saved for `id`.
    pub fn peer_set_keys(
        &self,
        id: &UserId,
        identity_key: &str,
        signing_key: &str,
    ) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE peers SET pin=?2, signing_key=?3 WHERE id=?1",
            params![id.as_str(), identity_key, signing_key],
        )?)
    }
}
