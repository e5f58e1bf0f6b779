//! The `contact_inbox` table: contact cards peers shared with this
//! identity (`retalk share` of 0.3.x), staged until `import --inbox`.

use rusqlite::params;

use super::{now, user_id, StoreError, Tx};
use crate::proto::UserId;

/// A staged card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedContact {
    /// The introduced user's id.
    pub fingerprint: UserId,
    /// The name the sharer recommends.
    pub name: String,
    /// Its keys, when the card carried both (already checked to hash to
    /// the id).
    pub keys: Option<(String, String)>,
    /// Who shared it.
    pub from: UserId,
    /// The sharer's name as shown then.
    pub from_name: String,
    /// The message that carried it.
    pub msg_id: String,
}

impl Tx<'_> {
    /// Stages a card, replacing an earlier one for the same user.
    pub fn contact_inbox_put(&self, c: &StagedContact) -> Result<(), StoreError> {
        let (ik, sk) = match &c.keys {
            Some((ik, sk)) => (Some(ik.as_str()), Some(sk.as_str())),
            None => (None, None),
        };
        self.conn.execute(
            "INSERT OR REPLACE INTO contact_inbox(fingerprint, name, identity_key, signing_key, \
             from_fp, from_name, msg_id, ts) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                c.fingerprint.as_str(),
                c.name,
                ik,
                sk,
                c.from.as_str(),
                c.from_name,
                c.msg_id,
                now()
            ],
        )?;
        Ok(())
    }

    /// Every staged card, by recommended name.
    pub fn contact_inbox(&self) -> Result<Vec<StagedContact>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT fingerprint, name, identity_key, signing_key, from_fp, from_name, msg_id \
             FROM contact_inbox ORDER BY name, fingerprint",
        )?;
        let rows = stmt
            .query_map([], |r| {
                let ik: Option<String> = r.get(2)?;
                let sk: Option<String> = r.get(3)?;
                Ok(StagedContact {
                    fingerprint: user_id(r, 0)?,
                    name: r.get(1)?,
                    keys: ik.zip(sk),
                    from: user_id(r, 4)?,
                    from_name: r.get(5)?,
                    msg_id: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Removes a staged card.
    pub fn contact_inbox_delete(&self, fingerprint: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM contact_inbox WHERE fingerprint=?1",
            [fingerprint],
        )?;
        Ok(())
    }
}
