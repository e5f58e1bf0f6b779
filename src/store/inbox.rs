//! The `inbox`, `delivered` and `problems` tables: mail fetched but not yet
//! decrypted, and outcomes not yet returned to the caller.

use rusqlite::params;

use super::{now, user_id, StoreError, Tx};
use crate::proto::UserId;

/// Mail fetched but not yet processed.
#[derive(Debug, Clone)]
pub struct InboxRow {
    /// Local order.
    pub seq: i64,
    /// The sender as the relay named it (not yet validated).
    pub sender: String,
    /// Olm message type as the relay gave it.
    pub mtype: i64,
    /// Padded base64 ciphertext.
    pub body: String,
}

/// A decrypted message not yet returned.
#[derive(Debug, Clone)]
pub struct DeliveredRow {
    /// Sender id.
    pub peer: UserId,
    /// Message id.
    pub msg_id: String,
    /// Sender's self-chosen name.
    pub name: String,
    /// Message text.
    pub text: String,
    /// The room of a group post: (id, the sender's label).
    pub group: Option<(String, String)>,
    /// A record that is not a chat message (group and invite events), as
    /// JSON; `text` is empty then.
    pub notice: Option<serde_json::Value>,
}

/// Decrypted messages and problems (sender id, reason) not yet returned.
pub type Outcomes = (Vec<DeliveredRow>, Vec<(UserId, String)>);

const DELIVERED_PURPOSE: &str = "delivered-message";

/// `meta` keys of claims on held messages (public: ids only).
const CLAIM_PREFIX: &str = "claim:";

fn claim_key(peer: &str, msg_id: &str) -> String {
    format!("{CLAIM_PREFIX}{peer}/{msg_id}")
}

impl Tx<'_> {
    /// Keeps fetched mail until it is processed.
    pub fn inbox_insert(
        &self,
        relay: &str,
        mail: &crate::proto::tools::Mail,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO inbox(relay, relay_id, ts, sender, mtype, body, fetched) \
             VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                relay,
                mail.message_id,
                mail.ts,
                mail.from,
                mail.mtype,
                mail.body,
                now()
            ],
        )?;
        Ok(())
    }

    /// Fetched mail in arrival order.
    pub fn inbox(&self) -> Result<Vec<InboxRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, sender, mtype, body FROM inbox ORDER BY seq")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(InboxRow {
                    seq: r.get(0)?,
                    sender: r.get(1)?,
                    mtype: r.get(2)?,
                    body: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Removes processed mail.
    pub fn inbox_delete(&self, seq: i64) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM inbox WHERE seq=?1", [seq])?;
        Ok(())
    }

    /// Keeps a decrypted message until it is returned (at most once per
    /// sender and id).
    pub fn delivered_insert(
        &self,
        peer: &UserId,
        msg_id: &str,
        name: &str,
        text: &str,
    ) -> Result<(), StoreError> {
        self.delivered_insert_value(
            peer,
            msg_id,
            &serde_json::json!({"name": name, "text": text}),
        )
    }

    /// Keeps a delivered item given as its JSON fields: `name`, `text`, and
    /// optionally `group` (`{"id", "name"}`) and `notice` (a record).
    pub fn delivered_insert_value(
        &self,
        peer: &UserId,
        msg_id: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(value).expect("JSON values always serialize"),
        );
        let sealed = self.keys.seal(DELIVERED_PURPOSE, &plain);
        self.conn.execute(
            "INSERT OR IGNORE INTO delivered(peer, msg_id, sealed) VALUES(?1, ?2, ?3)",
            params![peer.as_str(), msg_id, sealed],
        )?;
        Ok(())
    }

    /// Keeps a delivery problem until it is returned.
    pub fn problem_insert(&self, peer: &UserId, reason: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO problems(peer, reason) VALUES(?1, ?2)",
            [peer.as_str(), reason],
        )?;
        Ok(())
    }

    /// Removes and returns everything waiting to be returned, in order.
    pub fn take_outcomes(&self) -> Result<Outcomes, StoreError> {
        let out = self.peek_outcomes(None)?;
        self.conn.execute_batch(&format!(
            "DELETE FROM delivered; DELETE FROM meta WHERE k LIKE '{CLAIM_PREFIX}%';"
        ))?;
        Ok(out)
    }

    /// Who holds a delivered message and since when (`claimant`, seconds
    /// since the epoch), if anyone does.
    pub fn claim(&self, peer: &str, msg_id: &str) -> Result<Option<(String, f64)>, StoreError> {
        Ok(self.meta(&claim_key(peer, msg_id))?.and_then(|v| {
            let (who, ts) = v.split_once(' ')?;
            Some((who.to_owned(), ts.parse().ok()?))
        }))
    }

    /// Records that `claimant` holds a delivered message, as of now.
    pub fn set_claim(&self, peer: &str, msg_id: &str, claimant: &str) -> Result<(), StoreError> {
        self.set_meta(&claim_key(peer, msg_id), &format!("{claimant} {}", now()))
    }

    /// Returns the decrypted messages waiting to be returned (only `peer`'s
    /// with `Some`) without removing them, and removes and returns the
    /// problems. A held message goes only when [`Tx::delivered_delete`] says
    /// it was shown.
    pub fn peek_outcomes(&self, peer: Option<&str>) -> Result<Outcomes, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT peer, msg_id, sealed FROM delivered \
             WHERE ?1 IS NULL OR peer=?1 ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([peer], |r| {
                Ok((
                    user_id(r, 0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut delivered = Vec::with_capacity(rows.len());
        for (peer, msg_id, sealed) in rows {
            // A row that does not open (damaged file) must not block every
            // later receive: it is dropped with a warning.
            let Some(v) = self
                .keys
                .open(DELIVERED_PURPOSE, &sealed)
                .and_then(|plain| serde_json::from_slice::<serde_json::Value>(&plain).ok())
            else {
                tracing::warn!(
                    peer = peer.as_str(),
                    "dropping a stored message that does not decrypt"
                );
                self.delivered_delete(peer.as_str(), &msg_id)?;
                continue;
            };
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
            delivered.push(DeliveredRow {
                peer,
                msg_id,
                name: field("name"),
                text: field("text"),
                group: v.get("group").and_then(|g| {
                    Some((
                        g.get("id")?.as_str()?.to_owned(),
                        g.get("name")
                            .and_then(|n| n.as_str())
                            .unwrap_or("")
                            .to_owned(),
                    ))
                }),
                notice: v.get("notice").filter(|n| n.is_object()).cloned(),
            });
        }
        let mut stmt = self
            .conn
            .prepare("SELECT peer, reason FROM problems ORDER BY seq")?;
        let problems = stmt
            .query_map([], |r| Ok((user_id(r, 0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        self.conn.execute_batch("DELETE FROM problems;")?;
        Ok((delivered, problems))
    }

    /// Removes and returns the delivered notices whose `kind` starts with
    /// `prefix` (each with `from` and `name` added), leaving the rest.
    pub fn take_notices(&self, prefix: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        let (delivered, problems) = self.peek_outcomes(None)?;
        // peek_outcomes took the problems out: put them back for receive
        for (peer, reason) in &problems {
            self.problem_insert(peer, reason)?;
        }
        let mut out = Vec::new();
        for d in delivered {
            let Some(serde_json::Value::Object(mut n)) = d.notice else {
                continue;
            };
            let kind = n.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            if !kind.starts_with(prefix) {
                continue;
            }
            self.delivered_delete(d.peer.as_str(), &d.msg_id)?;
            n.insert("from".into(), String::from(d.peer).into());
            out.push(serde_json::Value::Object(n));
        }
        Ok(out)
    }

    /// A held message was shown: forget it.
    pub fn delivered_delete(&self, peer: &str, msg_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM delivered WHERE peer=?1 AND msg_id=?2",
            [peer, msg_id],
        )?;
        self.delete_meta(&claim_key(peer, msg_id))
    }
}
