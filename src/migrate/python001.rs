//! Reader for the identity folder of the Python reference, retalk 0.0.1.
//!
//! Layout (see the wire contract, "Local identity store of the 0.0.1
//! reference"): `DIR/store.db`, SQLite, with
//!
//! ```text
//! meta(k TEXT PRIMARY KEY, v TEXT)        account, name, server_url, fallback_ts
//! sessions(peer TEXT PRIMARY KEY, blob TEXT)
//! outbox(id TEXT PRIMARY KEY, peer TEXT, mtype INT, body TEXT, ts REAL)
//! processed(hash TEXT PRIMARY KEY, msg_id TEXT)
//! peers(name TEXT PRIMARY KEY, id TEXT, pin TEXT)   (made by the CLI only)
//! ```
//!
//! The account and session pickles are vodozemac encrypted pickles under the
//! key `sha256(secret)`. Reading never writes: the database is opened
//! read-only, and the reference's `store.db.lock` is taken (shared) only if
//! it already exists, so a refused secret leaves the folder byte-identical.

use std::fs::File;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};
use vodozemac::olm::{Account, AccountPickle, OlmMessage, Session, SessionPickle};

use super::MigrateError;
use crate::proto::ids::{IdentityKey, UserId};

/// File name of the reference's store inside an identity folder.
pub const STORE_FILE: &str = "store.db";
/// The lock file the reference holds (flock) for each whole operation.
pub const LOCK_FILE: &str = "store.db.lock";

/// Everything a Python 0.0.1 identity folder holds, decrypted and checked.
pub struct PythonIdentity {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// The Olm account (identity keys, unpublished and published one-time
    /// keys, fallback keys).
    pub account: Account,
    /// The user id: fingerprint of the account's two public keys.
    pub user_id: UserId,
    /// Self-chosen display name (`meta.name`), `""` when unset.
    pub name: String,
    /// Relay URL saved at `init` (`meta.server_url`), if any.
    pub server_url: Option<String>,
    /// When the fallback key was last published (`meta.fallback_ts`, seconds
    /// since the epoch); `None` when keys were never published.
    pub fallback_ts: Option<f64>,
    /// One Olm session per peer.
    pub sessions: Vec<(UserId, Session)>,
    /// Sent, not yet acknowledged messages, oldest first.
    pub outbox: Vec<OutboxEntry>,
    /// Hashes of decrypted ciphertexts and the message id each carried (to
    /// re-acknowledge re-sent copies).
    pub processed: Vec<Processed>,
    /// Saved peers (`retalk add NAME ID [--pin KEY]`).
    pub peers: Vec<SavedPeer>,
}

impl std::fmt::Debug for PythonIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No key material in debug output.
        f.debug_struct("PythonIdentity")
            .field("dir", &self.dir)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("server_url", &self.server_url)
            .field("fallback_ts", &self.fallback_ts)
            .field("sessions", &self.sessions.len())
            .field("outbox", &self.outbox)
            .field("processed", &self.processed.len())
            .field("peers", &self.peers)
            .finish()
    }
}

/// One unacknowledged message, exactly as it went on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// The envelope id (what the peer's acknowledgement carries).
    pub id: String,
    /// The recipient.
    pub peer: UserId,
    /// 0 = pre-key message, 1 = normal message.
    pub mtype: u8,
    /// The ciphertext, padded standard base64 (as sent).
    pub body: String,
    /// When it was first sent, seconds since the epoch.
    pub ts: f64,
}

/// A processed ciphertext: `sha256(body as base64 text)` → message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// Lowercase hex sha256 of the body's base64 text.
    pub hash: String,
    /// The id of the message that ciphertext carried.
    pub msg_id: String,
}

/// A saved peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedPeer {
    /// The local name (`retalk add NAME ...`).
    pub name: String,
    /// The peer's user id.
    pub id: UserId,
    /// An explicitly pinned identity key, if one was given.
    pub pin: Option<IdentityKey>,
}

/// The pickle key of the 0.0.1 reference: the unsalted sha256 of the secret.
pub fn pickle_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `dir` looks like a Python 0.0.1 identity folder (has `store.db`
/// with the reference's `meta` table and an account in it). Never writes.
pub fn is_python_identity(dir: &Path) -> bool {
    let path = dir.join(STORE_FILE);
    if !path.is_file() {
        return false;
    }
    let Ok(conn) = open_ro(&path) else {
        return false;
    };
    conn.query_row("SELECT 1 FROM meta WHERE k='account'", [], |_| Ok(()))
        .optional()
        .ok()
        .flatten()
        .is_some()
}

pub(super) fn open_ro(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// Holds the reference's lock file (shared) while reading, when it exists.
pub struct ReferenceLock {
    _file: Option<File>,
}

impl ReferenceLock {
    /// Waits for any running Python operation on `dir` to finish. Exclusive,
    /// because the reference only knows exclusive locks and a migration must
    /// not overlap one of its operations. Never creates the file.
    pub fn acquire(dir: &Path) -> Result<Self, MigrateError> {
        let path = dir.join(LOCK_FILE);
        let file = match std::fs::OpenOptions::new().read(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self { _file: None }),
            Err(e) => return Err(MigrateError::Io(path, e)),
        };
        fs4::fs_std::FileExt::lock_exclusive(&file).map_err(|e| MigrateError::Io(path, e))?;
        Ok(Self { _file: Some(file) })
    }
}

pub(super) fn corrupt(what: impl Into<String>) -> MigrateError {
    MigrateError::Corrupt(what.into())
}

pub(super) fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
}

pub(super) fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let cols = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(cols)
}

/// A sign that the store was made (or upgraded in place) by retalk 0.3.x,
/// whose layout differs: several sessions per peer (`sessions.sid`), peers
/// keyed by fingerprint, group-tagged outbox rows.
fn layout_03(conn: &Connection) -> rusqlite::Result<Option<&'static str>> {
    if columns(conn, "sessions")?.iter().any(|c| c == "sid") {
        return Ok(Some("sessions.sid"));
    }
    if columns(conn, "peers")?.iter().any(|c| c == "fingerprint") {
        return Ok(Some("peers.fingerprint"));
    }
    if columns(conn, "outbox")?.iter().any(|c| c == "gid") {
        return Ok(Some("outbox.gid"));
    }
    Ok(None)
}

/// [`layout_03`] of the store in `dir` (`None` also when it cannot be read).
pub fn layout_03_in(dir: &Path) -> rusqlite::Result<Option<&'static str>> {
    let conn = open_ro(&dir.join(STORE_FILE))?;
    layout_03(&conn)
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> MigrateError + '_ {
    move |e| MigrateError::Sqlite(path.to_path_buf(), e)
}

/// Reads and decrypts the identity in `dir` with `secret`.
///
/// Checks everything a migration relies on: the account decrypts (else
/// [`MigrateError::WrongSecret`]), every session decrypts, ids, keys and
/// ciphertexts are well formed. Writes nothing. The caller should hold
/// [`ReferenceLock`] if a Python process might be using the folder.
pub fn read(dir: &Path, secret: &str) -> Result<PythonIdentity, MigrateError> {
    let path = dir.join(STORE_FILE);
    if !path.is_file() {
        return Err(MigrateError::NotPythonIdentity(dir.to_path_buf()));
    }
    let e = sql(&path);
    let conn = open_ro(&path).map_err(&e)?;
    if !table_exists(&conn, "meta").map_err(&e)? {
        return Err(MigrateError::NotPythonIdentity(dir.to_path_buf()));
    }
    if let Some(sign) = layout_03(&conn).map_err(&e)? {
        return Err(MigrateError::Python03(dir.to_path_buf(), sign));
    }
    let meta = |k: &str| -> Result<Option<String>, MigrateError> {
        conn.query_row("SELECT v FROM meta WHERE k=?1", [k], |r| {
            r.get::<_, Option<String>>(0)
        })
        .optional()
        .map(Option::flatten)
        .map_err(&e)
    };
    let key = pickle_key(secret);

    let account_blob =
        meta("account")?.ok_or_else(|| MigrateError::NotPythonIdentity(dir.to_path_buf()))?;
    let (account, user_id) = decrypt_account(&account_blob, &key)?;

    let name = meta("name")?.unwrap_or_default();
    let server_url = meta("server_url")?.filter(|s| !s.is_empty());
    let fallback_ts = match meta("fallback_ts")? {
        None => None,
        Some(s) => Some(
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|t| t.is_finite())
                .ok_or_else(|| corrupt(format!("meta.fallback_ts is not a number: {s:?}")))?,
        ),
    };

    let sessions = read_sessions(&conn, &e, &key, "ORDER BY peer")?;
    let outbox = read_outbox(&conn, &e)?;
    let processed = read_processed(&conn, &e)?;

    let mut peers = Vec::new();
    if table_exists(&conn, "peers").map_err(&e)? {
        let mut stmt = conn
            .prepare("SELECT name, id, pin FROM peers ORDER BY name")
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(&e)?;
        for row in rows {
            let (name, id, pin) = row.map_err(&e)?;
            let id = UserId::parse(&id, "peers.id")
                .map_err(|_| corrupt(format!("saved peer {name:?}: malformed id {id:?}")))?;
            let pin = match pin.filter(|p| !p.is_empty()) {
                None => None,
                Some(p) => Some(
                    IdentityKey::parse(&p, "peers.pin")
                        .map_err(|_| corrupt(format!("saved peer {name:?}: malformed pin")))?,
                ),
            };
            peers.push(SavedPeer { name, id, pin });
        }
    }

    Ok(PythonIdentity {
        dir: dir.to_path_buf(),
        account,
        user_id,
        name,
        server_url,
        fallback_ts,
        sessions,
        outbox,
        processed,
        peers,
    })
}

/// The Olm sessions of a reference store, in `order` (an `ORDER BY`
/// clause). Shared by the 0.0.1 and 0.3.x readers.
pub(super) fn read_sessions(
    conn: &Connection,
    e: &dyn Fn(rusqlite::Error) -> MigrateError,
    key: &[u8; 32],
    order: &str,
) -> Result<Vec<(UserId, Session)>, MigrateError> {
    let mut sessions = Vec::new();
    if table_exists(conn, "sessions").map_err(e)? {
        let mut stmt = conn
            .prepare(&format!("SELECT peer, blob FROM sessions {order}"))
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .map_err(e)?;
        for row in rows {
            let (peer, blob) = row.map_err(e)?;
            let peer = UserId::parse(&peer, "sessions.peer")
                .map_err(|_| corrupt(format!("session for a malformed peer id {peer:?}")))?;
            let Some(blob) = blob.filter(|b| !b.is_empty()) else {
                continue; // no session state: nothing to carry over
            };
            let session = SessionPickle::from_encrypted(&blob, key)
                .map(Session::from_pickle)
                .map_err(|err| corrupt(format!("session with {peer}: {err}")))?;
            sessions.push((peer, session));
        }
    }
    Ok(sessions)
}

/// The unacknowledged messages of a reference store, oldest first, each
/// checked to be an Olm message. Shared by the 0.0.1 and 0.3.x readers.
pub(super) fn read_outbox(
    conn: &Connection,
    e: &dyn Fn(rusqlite::Error) -> MigrateError,
) -> Result<Vec<OutboxEntry>, MigrateError> {
    let mut outbox = Vec::new();
    if table_exists(conn, "outbox").map_err(e)? {
        let mut stmt = conn
            .prepare("SELECT id, peer, mtype, body, ts FROM outbox ORDER BY ts, id")
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                ))
            })
            .map_err(e)?;
        for row in rows {
            let (id, peer, mtype, body, ts) = row.map_err(e)?;
            let peer = UserId::parse(&peer, "outbox.peer")
                .map_err(|_| corrupt(format!("outbox entry {id} for a malformed peer id")))?;
            let mtype = u8::try_from(mtype)
                .ok()
                .filter(|m| *m <= 1)
                .ok_or_else(|| corrupt(format!("outbox entry {id}: mtype {mtype}")))?;
            let ok = STANDARD
                .decode(&body)
                .ok()
                .and_then(|b| OlmMessage::from_parts(mtype as usize, &b).ok())
                .is_some();
            if !ok {
                return Err(corrupt(format!(
                    "outbox entry {id}: body is not an Olm message"
                )));
            }
            outbox.push(OutboxEntry {
                id,
                peer,
                mtype,
                body,
                ts: ts.unwrap_or(0.0),
            });
        }
    }
    Ok(outbox)
}

/// The processed-ciphertext hashes of a reference store. Shared by the
/// 0.0.1 and 0.3.x readers.
pub(super) fn read_processed(
    conn: &Connection,
    e: &dyn Fn(rusqlite::Error) -> MigrateError,
) -> Result<Vec<Processed>, MigrateError> {
    let mut processed = Vec::new();
    if table_exists(conn, "processed").map_err(e)? {
        let mut stmt = conn
            .prepare("SELECT hash, msg_id FROM processed ORDER BY hash")
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .map_err(e)?;
        for row in rows {
            let (hash, msg_id) = row.map_err(e)?;
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(corrupt(format!("processed hash {hash:?}")));
            }
            processed.push(Processed {
                hash,
                msg_id: msg_id.unwrap_or_default(),
            });
        }
    }
    Ok(processed)
}

/// Decrypts a reference account pickle with `key` and derives its user id.
/// The MAC check is what tells a wrong secret
/// ([`MigrateError::WrongSecret`]); any other failure of a pickle that
/// authenticated is damage.
pub(super) fn decrypt_account(
    blob: &str,
    key: &[u8; 32],
) -> Result<(Account, UserId), MigrateError> {
    let account = match AccountPickle::from_encrypted(blob, key) {
        Ok(p) => Account::from_pickle(p),
        Err(vodozemac::PickleError::Decryption(_)) => return Err(MigrateError::WrongSecret),
        Err(err) => return Err(corrupt(format!("account pickle: {err}"))),
    };
    let user_id = UserId::parse(
        &crate::proto::fingerprint(
            &account.curve25519_key().to_base64(),
            &account.ed25519_key().to_base64(),
        ),
        "user id",
    )
    .expect("a fingerprint is 32 lowercase hex characters");
    Ok((account, user_id))
}
