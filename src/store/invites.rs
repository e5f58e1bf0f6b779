//! The `invites` table: invite codes this identity minted. A code is
//! stored only as its SHA-256 (codes are 128 random bits, so no slower
//! hash is needed) and a short hint for listing; the code itself is shown
//! once, when minted.

use rusqlite::params;

use super::{json_col, StoreError, Tx};
use crate::proto::UserId;

/// One minted code.
#[derive(Debug, Clone, PartialEq)]
pub struct InviteRow {
    /// SHA-256 of the code, hex.
    pub hash: String,
    /// The code's first characters, to tell codes apart in a list.
    pub hint: String,
    /// `"single"` or `"permanent"`.
    pub kind: String,
    /// The name to save the redeemer under.
    pub peer: Option<String>,
    /// When minted, seconds since the epoch.
    pub created: f64,
    /// When it stops working; `None`: never.
    pub expires: Option<f64>,
    /// Redemptions so far.
    pub uses: i64,
    /// Who redeemed it (user ids).
    pub used_by: Vec<UserId>,
    /// Revoked by its owner.
    pub revoked: bool,
}

impl Tx<'_> {
    /// Saves a new code.
    pub fn invite_insert(&self, i: &InviteRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO invites(hash, hint, kind, peer, created, expires, uses, used_by, revoked) \
             VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                i.hash,
                i.hint,
                i.kind,
                i.peer,
                i.created,
                i.expires,
                i.uses,
                serde_json::to_string(&i.used_by).unwrap_or_else(|_| "[]".into()),
                i.revoked
            ],
        )?;
        Ok(())
    }

    /// Every code, oldest first.
    pub fn invites(&self) -> Result<Vec<InviteRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT hash, hint, kind, peer, created, expires, uses, used_by, revoked \
             FROM invites ORDER BY created, hash",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(InviteRow {
                    hash: r.get(0)?,
                    hint: r.get(1)?,
                    kind: r.get(2)?,
                    peer: r.get(3)?,
                    created: r.get(4)?,
                    expires: r.get(5)?,
                    uses: r.get(6)?,
                    used_by: json_col(r, 7)?,
                    revoked: r.get(8)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Records one more redemption, by `by`.
    pub fn invite_used(&self, hash: &str, used_by: &[UserId]) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE invites SET uses=uses+1, used_by=?2 WHERE hash=?1",
            params![
                hash,
                serde_json::to_string(used_by).unwrap_or_else(|_| "[]".into())
            ],
        )?;
        Ok(())
    }

    /// Revokes a code.
    pub fn invite_revoke(&self, hash: &str) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE invites SET revoked=1 WHERE hash=?1", [hash])?;
        Ok(())
    }
}
