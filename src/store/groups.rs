//! The `groups` table: rooms (client-side fan-out groups) with their local
//! label, roster and the bookkeeping that makes rosters converge: members
//! who were removed or left (they cannot list themselves back), and the
//! roster each member last sent (so a change is a transition one member
//! made, not "whatever arrived last").

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, OptionalExtension};

use super::{json_col, now, user_id_opt, StoreError, Tx};
use crate::proto::UserId;

/// A room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// The room's id (32 hex), shared by every member.
    pub gid: String,
    /// The local label (unique in this store).
    pub name: String,
    /// Current members, without this identity.
    pub members: BTreeSet<UserId>,
    /// Members removed or gone: their own envelopes never bring them back.
    pub removed: BTreeSet<UserId>,
    /// The roster each member last sent us.
    pub seen: BTreeMap<UserId, BTreeSet<UserId>>,
    /// `"active"`, or `"invited"`: held until accepted (`join`).
    pub state: String,
    /// Who brought the room (invitations).
    pub inviter: Option<UserId>,
}

impl GroupRow {
    /// Whether this room is held as an invitation.
    pub fn is_invitation(&self) -> bool {
        self.state == "invited"
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

const COLS: &str = "gid, name, members, removed, seen, state, inviter";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        gid: r.get(0)?,
        name: r.get(1)?,
        members: json_col(r, 2)?,
        removed: json_col(r, 3)?,
        seen: json_col(r, 4)?,
        state: r.get(5)?,
        inviter: user_id_opt(r, 6)?,
    })
}

impl Tx<'_> {
    /// Every room, by label.
    pub fn groups(&self) -> Result<Vec<GroupRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLS} FROM groups ORDER BY name, gid"))?;
        let rows = stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The room with this id.
    pub fn group(&self, gid: &str) -> Result<Option<GroupRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLS} FROM groups WHERE gid=?1"),
                [gid],
                row,
            )
            .optional()?)
    }

    /// The room labelled `name`, else the one whose id is `name`.
    pub fn group_by_ref(&self, name: &str) -> Result<Option<GroupRow>, StoreError> {
        let by_name = self
            .conn
            .query_row(
                &format!("SELECT {COLS} FROM groups WHERE name=?1"),
                [name],
                row,
            )
            .optional()?;
        match by_name {
            Some(g) => Ok(Some(g)),
            None => self.group(name),
        }
    }

    /// Saves (inserts or replaces) a room.
    pub fn group_save(&self, g: &GroupRow) -> Result<(), StoreError> {
        let t = now();
        self.conn.execute(
            "INSERT INTO groups(gid, name, members, removed, seen, state, inviter, created, \
             updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) \
             ON CONFLICT(gid) DO UPDATE SET name=excluded.name, members=excluded.members, \
             removed=excluded.removed, seen=excluded.seen, state=excluded.state, \
             inviter=excluded.inviter, updated=excluded.updated",
            params![
                g.gid,
                g.name,
                to_json(&g.members),
                to_json(&g.removed),
                to_json(&g.seen),
                g.state,
                g.inviter.as_ref().map(UserId::as_str),
                t
            ],
        )?;
        Ok(())
    }

    /// Forgets a room; false if there was none.
    pub fn group_delete(&self, gid: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM groups WHERE gid=?1", [gid])?
            > 0)
    }
}
