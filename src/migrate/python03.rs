//! Reader for the identity folder of the Python reference, retalk 0.3.x.
//!
//! Layout (`~/.retalk/NAME/store.db`, SQLite; read from retalk 0.3.0's
//! `user.py` and `store.py`):
//!
//! ```text
//! meta(k TEXT PRIMARY KEY, v TEXT)   account, name, server_url, fallback_ts,
//!                                    created_at, no_passphrase, api_key, group_cap
//! sessions(peer, sid, blob, used)    several Olm sessions per peer
//! outbox(id, peer, mtype, body, ts, gid)
//! processed(hash, msg_id)
//! peers(fingerprint, name, identity_key, signing_key)   keys = verified
//! blocked(fingerprint)
//! messages(msg_id, from_fp, from_name, peer_fp, direction, body, ts, gid, gname)
//! groups(gid, name, members, ts), left_groups(gid, name, ts)
//! invite_codes(code, kind, peer, created, expires, uses, used_by, revoked)
//! received_contacts(...)
//! ```
//!
//! Pickles are vodozemac encrypted pickles under `sha256(passphrase)`, as in
//! 0.0.1. Saved message bodies (`messages.body`) are sealed with the
//! reference's at-rest scheme: libolm "PK" encryption to a Curve25519 key
//! derived from the same `sha256(passphrase)`. That scheme is unauthenticated
//! (vodozemac gates it behind `insecure-pk-encryption`); we use it only to
//! open the reference's own copies once, and re-seal each text under this
//! project's authenticated store encryption.
//!
//! Reading never writes: the database is opened read-only.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};
use vodozemac::olm::{Account, Session};
use vodozemac::pk_encryption::{Message as PkMessage, PkDecryption};
use vodozemac::{Curve25519PublicKey, Curve25519SecretKey};

use super::python001::{
    columns, corrupt, decrypt_account, pickle_key, read_outbox, read_processed, read_sessions,
    table_exists, OutboxEntry, Processed, STORE_FILE,
};
use super::MigrateError;
use crate::proto::ids::UserId;

/// Everything a Python 0.3.x identity folder holds that this project's store
/// can carry, decrypted and checked.
pub struct Python03Identity {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// The Olm account.
    pub account: Account,
    /// The user id: fingerprint of the account's two public keys.
    pub user_id: UserId,
    /// Display name (`meta.name`), `""` when unset.
    pub name: String,
    /// Relay URL saved at `init` (`meta.server_url`).
    pub server_url: Option<String>,
    /// When the fallback key was last published.
    pub fallback_ts: Option<f64>,
    /// When the identity was made (`meta.created_at`).
    pub created_at: Option<f64>,
    /// Made with `--no-passphrase` (`meta.no_passphrase = 1`).
    pub no_passphrase: bool,
    /// Relay API key saved at `init` (`meta.api_key`).
    pub api_key: Option<String>,
    /// Olm sessions, most recently used first within each peer.
    pub sessions: Vec<(UserId, Session)>,
    /// Sent, not yet acknowledged messages, oldest first.
    pub outbox: Vec<OutboxEntry>,
    /// Hashes of decrypted ciphertexts and their message ids.
    pub processed: Vec<Processed>,
    /// Saved contacts.
    pub contacts: Vec<Contact>,
    /// Blocked user ids.
    pub blocked: Vec<UserId>,
    /// Saved messages (`--save`), opened.
    pub history: Vec<SavedMessage>,
    /// Rooms.
    pub groups: Vec<SavedGroup>,
    /// Rooms left: (id, label).
    pub left_groups: Vec<(String, String)>,
    /// Minted invite codes.
    pub invites: Vec<SavedInvite>,
    /// Cards peers shared, staged for `import --inbox` (only those whose
    /// keys, if any, hash to their id).
    pub contact_inbox: Vec<crate::store::StagedContact>,
}

impl std::fmt::Debug for Python03Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No key material, no message text.
        f.debug_struct("Python03Identity")
            .field("dir", &self.dir)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("server_url", &self.server_url)
            .field("no_passphrase", &self.no_passphrase)
            .field("sessions", &self.sessions.len())
            .field("outbox", &self.outbox.len())
            .field("processed", &self.processed.len())
            .field("contacts", &self.contacts)
            .field("blocked", &self.blocked)
            .field("history", &self.history.len())
            .finish()
    }
}

/// A saved contact of 0.3.x.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The contact's user id.
    pub id: UserId,
    /// The local name; `None` for a contact added by id alone.
    pub name: Option<String>,
    /// Verified keys (identity, signing), checked against the id.
    pub keys: Option<(String, String)>,
    /// An identity key pinned alone (`add NAME ID --pin KEY` of 0.0.1, in
    /// a folder 0.3.x opened without upgrading its peers table).
    pub pin: Option<String>,
}

/// A message kept by `--save`.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedMessage {
    /// Message id (a group fan-out shares one).
    pub msg_id: String,
    /// The other party.
    pub peer: UserId,
    /// `"in"` or `"out"`.
    pub direction: String,
    /// The sender's name as shown when it was kept.
    pub name: String,
    /// The text.
    pub text: String,
    /// When it was kept, seconds since the epoch.
    pub ts: f64,
    /// The room of a group message: (id, label when kept).
    pub group: Option<(String, String)>,
}

/// A room (`groups` row): id, label, roster as stored (0.3.x keeps the
/// owner in adopted rooms' rosters; the writer drops it).
#[derive(Debug, Clone, PartialEq)]
pub struct SavedGroup {
    /// The room's id.
    pub gid: String,
    /// The local label.
    pub name: String,
    /// The roster, valid user ids only.
    pub members: Vec<UserId>,
}

/// A minted invite code (`invite_codes` row). The code itself is read only
/// to be hashed by the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedInvite {
    /// The code, as 0.3.x stores it (in the clear).
    pub code: String,
    /// `"single"` or `"permanent"`.
    pub kind: String,
    /// The name to save the redeemer under.
    pub peer: Option<String>,
    /// When minted.
    pub created: f64,
    /// When it expires; `None`: never.
    pub expires: Option<f64>,
    /// Redemptions.
    pub uses: i64,
    /// Who redeemed it.
    pub used_by: Vec<String>,
    /// Revoked.
    pub revoked: bool,
}

/// The key that opens the reference's saved-message bodies.
fn at_rest(store_key: &[u8; 32]) -> PkDecryption {
    let mut h = Sha256::new();
    h.update(b"retalk:at-rest|");
    h.update(store_key);
    let seed: [u8; 32] = h.finalize().into();
    PkDecryption::from_key(Curve25519SecretKey::from_slice(&seed))
}

/// Opens one `messages.body`: the JSON triple `[ciphertext, mac,
/// ephemeral_key]`, each standard base64.
fn open_body(dec: &PkDecryption, blob: &str) -> Option<String> {
    let parts: Vec<String> = serde_json::from_str(blob).ok()?;
    let [ct, mac, eph] = <[String; 3]>::try_from(parts).ok()?;
    let ct = STANDARD.decode(ct).ok()?;
    let mac = STANDARD.decode(mac).ok()?;
    let eph = STANDARD.decode(eph).ok()?;
    // The binding gives the ephemeral key as its 32 raw bytes; accept its
    // unpadded base64 text as well.
    let ephemeral_key = Curve25519PublicKey::from_slice(&eph).ok().or_else(|| {
        std::str::from_utf8(&eph)
            .ok()
            .and_then(|s| Curve25519PublicKey::from_base64(s).ok())
    })?;
    let plain = dec
        .decrypt(&PkMessage {
            ciphertext: ct,
            mac,
            ephemeral_key,
        })
        .ok()?;
    String::from_utf8(plain).ok()
}

/// Reads and decrypts the 0.3.x identity in `dir` with `secret`.
///
/// Checks what a migration relies on: the account decrypts (else
/// [`MigrateError::WrongSecret`]), every session decrypts, ids, keys and
/// ciphertexts are well formed, verified contact keys hash to their id, and
/// every saved message opens. Writes nothing.
pub fn read(dir: &Path, secret: &str) -> Result<Python03Identity, MigrateError> {
    let path = dir.join(STORE_FILE);
    if !path.is_file() {
        return Err(MigrateError::NotPythonIdentity(dir.to_path_buf()));
    }
    let e = |err: rusqlite::Error| MigrateError::Sqlite(path.clone(), err);
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(e)?;
    if !table_exists(&conn, "meta").map_err(e)? {
        return Err(MigrateError::NotPythonIdentity(dir.to_path_buf()));
    }
    let meta = |k: &str| -> Result<Option<String>, MigrateError> {
        conn.query_row("SELECT v FROM meta WHERE k=?1", [k], |r| {
            r.get::<_, Option<String>>(0)
        })
        .optional()
        .map(Option::flatten)
        .map_err(e)
    };
    let number = |k: &str| -> Result<Option<f64>, MigrateError> {
        match meta(k)? {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|t| t.is_finite())
                .map(Some)
                .ok_or_else(|| corrupt(format!("meta.{k} is not a number: {s:?}"))),
        }
    };
    let key = pickle_key(secret);
    let account_blob =
        meta("account")?.ok_or_else(|| MigrateError::NotPythonIdentity(dir.to_path_buf()))?;
    let (account, user_id) = decrypt_account(&account_blob, &key)?;
    let id = |raw: &str, what: &str| {
        UserId::parse(raw, "id").map_err(|_| corrupt(format!("{what}: malformed user id {raw:?}")))
    };

    // freshest first within each peer (`used`, where the table has it)
    let order = if columns(&conn, "sessions")
        .map_err(e)?
        .iter()
        .any(|c| c == "used")
    {
        "ORDER BY peer, used DESC"
    } else {
        "ORDER BY peer"
    };
    let sessions = read_sessions(&conn, &e, &key, order)?;
    let outbox = read_outbox(&conn, &e)?;
    let processed = read_processed(&conn, &e)?;

    let mut contacts = Vec::new();
    if table_exists(&conn, "peers").map_err(e)? {
        let cols = columns(&conn, "peers").map_err(e)?;
        if !cols.iter().any(|c| c == "fingerprint") {
            // The 0.0.1 layout, `peers(name, id, pin)`: 0.3.x's library
            // upgrades the other tables in place, only its CLI this one.
            let mut stmt = conn
                .prepare("SELECT name, id, pin FROM peers ORDER BY name")
                .map_err(e)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })
                .map_err(e)?;
            for row in rows {
                let (name, raw, pin) = row.map_err(e)?;
                let pin = pin.filter(|p| !p.is_empty());
                if let Some(p) = &pin {
                    crate::proto::ids::IdentityKey::parse(p, "peers.pin")
                        .map_err(|_| corrupt(format!("saved peer {name:?}: malformed pin")))?;
                }
                contacts.push(Contact {
                    id: id(&raw, "a saved contact")?,
                    name: name.filter(|n| !n.is_empty()),
                    keys: None,
                    pin,
                });
            }
        }
        let signing = if !cols.iter().any(|c| c == "fingerprint") {
            None
        } else if cols.iter().any(|c| c == "signing_key") {
            Some("signing_key")
        } else {
            Some("NULL")
        };
        if let Some(signing) = signing {
            let mut stmt = conn
                .prepare(&format!(
                "SELECT fingerprint, name, identity_key, {signing} FROM peers ORDER BY fingerprint"
            ))
                .map_err(e)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .map_err(e)?;
            for row in rows {
                let (fp, name, ik, sk) = row.map_err(e)?;
                let cid = id(&fp, "a saved contact")?;
                let keys = match (ik.filter(|k| !k.is_empty()), sk.filter(|k| !k.is_empty())) {
                    (Some(ik), Some(sk)) => {
                        if crate::proto::fingerprint(&ik, &sk) != cid.as_str() {
                            return Err(corrupt(format!(
                                "saved contact {cid}: its recorded keys do not hash to its id"
                            )));
                        }
                        Some((ik, sk))
                    }
                    _ => None,
                };
                contacts.push(Contact {
                    id: cid,
                    name: name.filter(|n| !n.is_empty()),
                    keys,
                    pin: None,
                });
            }
        }
    }

    let mut blocked = Vec::new();
    if table_exists(&conn, "blocked").map_err(e)? {
        let mut stmt = conn
            .prepare("SELECT fingerprint FROM blocked ORDER BY fingerprint")
            .map_err(e)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(e)?;
        for row in rows {
            blocked.push(id(&row.map_err(e)?, "a blocked sender")?);
        }
    }

    let mut history = Vec::new();
    if table_exists(&conn, "messages").map_err(e)? {
        let dec = at_rest(&key);
        let (gid, gname) = if columns(&conn, "messages")
            .map_err(e)?
            .iter()
            .any(|c| c == "gid")
        {
            ("gid", "gname")
        } else {
            ("NULL", "NULL")
        };
        let mut stmt = conn
            .prepare(&format!(
                "SELECT msg_id, from_name, peer_fp, direction, body, ts, {gid}, {gname} \
                 FROM messages ORDER BY ts, rowid"
            ))
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<f64>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .map_err(e)?;
        for row in rows {
            let (msg_id, from_name, peer, direction, body, ts, gid, gname) = row.map_err(e)?;
            let msg_id = msg_id.unwrap_or_default();
            let group = gid
                .filter(|g| !g.is_empty())
                .map(|g| (g, gname.unwrap_or_default()));
            let Some(peer) = peer.filter(|p| !p.is_empty()) else {
                return Err(corrupt(format!("saved message {msg_id} names no peer")));
            };
            let peer = id(&peer, &format!("saved message {msg_id}"))?;
            let text = open_body(&dec, body.as_deref().unwrap_or_default())
                .ok_or_else(|| corrupt(format!("saved message {msg_id} does not open")))?;
            history.push(SavedMessage {
                msg_id,
                peer,
                direction: match direction.as_deref() {
                    Some("out") => "out".into(),
                    _ => "in".into(),
                },
                name: from_name.unwrap_or_default(),
                text,
                ts: ts.unwrap_or(0.0),
                group,
            });
        }
    }

    let mut groups = Vec::new();
    if table_exists(&conn, "groups").map_err(e)? {
        let mut stmt = conn
            .prepare("SELECT gid, name, members FROM groups ORDER BY name, gid")
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(e)?;
        for row in rows {
            let (gid, name, members) = row.map_err(e)?;
            let members: Vec<String> =
                serde_json::from_str(members.as_deref().unwrap_or("[]")).unwrap_or_default();
            groups.push(SavedGroup {
                name: name
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| gid.chars().take(8).collect()),
                gid,
                members: members
                    .iter()
                    .filter_map(|m| UserId::parse(m, "member").ok())
                    .collect(),
            });
        }
    }
    let mut left_groups = Vec::new();
    if table_exists(&conn, "left_groups").map_err(e)? {
        let mut stmt = conn
            .prepare("SELECT gid, name FROM left_groups ORDER BY gid")
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .map_err(e)?;
        for row in rows {
            let (gid, name) = row.map_err(e)?;
            left_groups.push((gid, name.unwrap_or_default()));
        }
    }
    let mut invites = Vec::new();
    if table_exists(&conn, "invite_codes").map_err(e)? {
        let mut stmt = conn
            .prepare(
                "SELECT code, kind, peer, created, expires, uses, used_by, revoked \
                 FROM invite_codes ORDER BY created",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SavedInvite {
                    code: r.get(0)?,
                    kind: r
                        .get::<_, Option<String>>(1)?
                        .unwrap_or_else(|| "single".into()),
                    peer: r.get(2)?,
                    created: r.get::<_, Option<f64>>(3)?.unwrap_or(0.0),
                    expires: r.get(4)?,
                    uses: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                    used_by: serde_json::from_str(
                        r.get::<_, Option<String>>(6)?.as_deref().unwrap_or("[]"),
                    )
                    .unwrap_or_default(),
                    revoked: r.get::<_, Option<i64>>(7)?.unwrap_or(0) != 0,
                })
            })
            .map_err(e)?;
        for row in rows {
            invites.push(row.map_err(e)?);
        }
    }

    let mut contact_inbox = Vec::new();
    if table_exists(&conn, "received_contacts").map_err(e)? {
        let mut stmt = conn
            .prepare(
                "SELECT fingerprint, name, identity_key, signing_key, from_fp, from_name, msg_id \
                 FROM received_contacts",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                let f = |i: usize| -> rusqlite::Result<String> {
                    Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default())
                };
                Ok([f(0)?, f(1)?, f(2)?, f(3)?, f(4)?, f(5)?, f(6)?])
            })
            .map_err(e)?;
        for row in rows {
            let [fp, name, ik, sk, from, from_name, msg_id] = row.map_err(e)?;
            let card = serde_json::json!({"fingerprint": fp, "name": name,
                "identity_key": ik, "signing_key": sk});
            // a card that would not be staged today is not carried either
            let Ok(from) = crate::UserId::parse(&from, "from") else {
                continue;
            };
            if let Some(c) = crate::client::stage_card(&card, &from, &from_name, &msg_id) {
                contact_inbox.push(c);
            }
        }
    }

    Ok(Python03Identity {
        dir: dir.to_path_buf(),
        user_id,
        name: meta("name")?.unwrap_or_default(),
        server_url: meta("server_url")?.filter(|s| !s.is_empty()),
        fallback_ts: number("fallback_ts")?,
        created_at: number("created_at")?,
        no_passphrase: meta("no_passphrase")?.as_deref() == Some("1"),
        api_key: meta("api_key")?.filter(|s| !s.is_empty()),
        account,
        sessions,
        outbox,
        processed,
        contacts,
        blocked,
        history,
        groups,
        left_groups,
        invites,
        contact_inbox,
    })
}
