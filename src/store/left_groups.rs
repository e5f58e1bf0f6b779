//! The `left_groups` table: rooms this identity left. Their mail is
//! refused (signed nack) and they never come back on their own, until
//! `group join` clears the entry.

use rusqlite::params;

use super::{now, StoreError, Tx};

impl Tx<'_> {
    /// Records that we left `gid` (labelled `name`).
    pub fn left_insert(&self, gid: &str, name: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO left_groups(gid, name, ts) VALUES(?1, ?2, ?3) \
             ON CONFLICT(gid) DO UPDATE SET name=excluded.name, ts=excluded.ts",
            params![gid, name, now()],
        )?;
        Ok(())
    }

    /// Whether we left `gid`.
    pub fn has_left(&self, gid: &str) -> Result<bool, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM left_groups WHERE gid=?1",
            [gid],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Rooms left: (id, label), by label.
    pub fn left_groups(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT gid, name FROM left_groups ORDER BY name, gid")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Clears the entry of the room with this id or label; returns the
    /// (id, label) cleared.
    pub fn left_delete(&self, r: &str) -> Result<Option<(String, String)>, StoreError> {
        let found = self
            .left_groups()?
            .into_iter()
            .find(|(gid, name)| gid == r || name == r);
        if let Some((gid, _)) = &found {
            self.conn
                .execute("DELETE FROM left_groups WHERE gid=?1", [gid])?;
        }
        Ok(found)
    }
}
