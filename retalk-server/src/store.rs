//! The relay's SQLite database: schema, migration and one function per tool
//! operation.
//!
//! The tables and columns are exactly the Python reference's (see the wire
//! spec, "Relay database"), so a `server.db` written by either generation of
//! the reference opens as is, and tools written against the reference's file
//! keep working. On top of them this relay adds only indexes, so that every
//! hot query touches the caller's own rows and nothing else:
//!
//! * (none on `messages`: the writer keeps which messages wait in which
//!   mailbox in memory, [`crate::mailboxes`], so a mailbox read costs the
//!   size of that mailbox, not of all mail waiting on the relay, and a
//!   send writes no index page of its own);
//! * `otks(owner, claimed, id)`: claiming and counting keys;
//! * `refused(ts)`: pruning old entries.
//!
//! and its own tables: `retalk_nonce_groups(ts, nonces)`, appended to in
//! time order, one row per group commit, where it records the nonces of
//! the requests it served (`retalk_nonces(ts, nonce)`, one row per request,
//! before schema 5; see [`crate::nonces`] for why not in the reference's
//! `nonces`). (Schemas 3 to 5 also had per-mailbox totals, kept by
//! triggers: the writer keeps them in memory since schema 6, see
//! [`crate::mailboxes`].)
//!
//! The functions here run inside the writer's transaction (see
//! [`crate::writer`]); none of them commits.

use std::path::Path;

use retalk_proto::tools::{
    ClaimedKey, KeyCounts, Mail, Nack, PublicKeys, PublishKeys, Published, SendMessage, SendOutcome,
};
use retalk_proto::{UserId, WireError};
use rusqlite::types::ValueRef;
use rusqlite::{params, CachedStatement, Connection, OpenFlags, OptionalExtension, Row};

use crate::mailboxes::{Mailboxes, Totals};
use crate::storage::sqlite::wal_buffer;

/// The reference's schema, verbatim (both generations; 0.0.1 lacks the last
/// two tables, which are harmless to it).
const REFERENCE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users(
    id TEXT PRIMARY KEY,
    identity_key TEXT,
    signing_key TEXT,
    fallback_key_id TEXT,
    fallback_key TEXT
);
CREATE TABLE IF NOT EXISTS otks(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT,
    key_id TEXT,
    key TEXT,
    claimed INT DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL,
    sender TEXT,
    recipient TEXT,
    mtype INT,
    body TEXT
);
CREATE TABLE IF NOT EXISTS nonces(
    nonce TEXT PRIMARY KEY,
    ts REAL
);
CREATE TABLE IF NOT EXISTS api_keys(
    key_hash TEXT PRIMARY KEY,
    label TEXT,
    created REAL,
    disabled INT DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refused(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT,
    hash TEXT,
    sig TEXT,
    ts REAL,
    UNIQUE(recipient, hash)
);
";

/// What this relay adds: indexes, and its own table of nonces. Until
/// round 8 of issue 16 it also indexed `messages(recipient, id)`, and until
/// round 9 (schema 6) it kept per-mailbox totals in a table with triggers;
/// the writer now keeps both in memory (see [`crate::mailboxes`]) and drops
/// the file's (a relay of an earlier build makes the index again,
/// harmlessly; it refuses a schema-6 file, so never the totals).
const RELAY_SCHEMA: &str = "
DROP INDEX IF EXISTS retalk_messages_recipient;
CREATE INDEX IF NOT EXISTS retalk_otks_owner ON otks(owner, claimed, id);
CREATE INDEX IF NOT EXISTS retalk_nonces_ts ON nonces(ts);
CREATE INDEX IF NOT EXISTS retalk_refused_ts ON refused(ts);
CREATE TABLE IF NOT EXISTS retalk_nonces(
    ts REAL NOT NULL,
    nonce TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS retalk_nonces_by_ts ON retalk_nonces(ts);
CREATE TABLE IF NOT EXISTS retalk_nonce_groups(
    ts REAL NOT NULL,
    nonces BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS retalk_nonce_groups_by_ts ON retalk_nonce_groups(ts);
DROP TRIGGER IF EXISTS retalk_mailbox_totals_in;
DROP TRIGGER IF EXISTS retalk_mailbox_totals_out;
DROP TABLE IF EXISTS retalk_mailbox_totals;
";

/// Schema 4 drops schema 3's per-(recipient, sender) counts: the writer
/// keeps them in memory instead (see [`crate::mailboxes`]). Its triggers kept
/// both tables; schemas 4 and 5 replaced them by totals-only triggers,
/// which schema 6 drops in turn (see [`RELAY_SCHEMA`]).
const DROP_SCHEMA_3: &str = "
DROP TRIGGER IF EXISTS retalk_mailboxes_in;
DROP TRIGGER IF EXISTS retalk_mailboxes_out;
DROP TABLE IF EXISTS retalk_mailboxes;
";

/// `PRAGMA user_version` once this relay's indexes exist. Later migrations
/// bump it; the reference never sets it (it stays 0).
///
/// * 3: mailbox totals per recipient and per (recipient, sender), kept by
///   triggers;
/// * 4: the per-(recipient, sender) table and its triggers dropped (the
///   writer counts those in memory), totals per recipient kept by new
///   triggers;
/// * 5: nonces recorded one row per group commit in `retalk_nonce_groups`
///   (the group's time and its nonces' 16-byte values, concatenated)
///   instead of one row per request in `retalk_nonces`, which is still read
///   and pruned but no longer written. A relay of schema 4 refuses the file
///   (it would not see these nonces), as it refuses any newer schema.
/// * 6: the mailbox totals table (`retalk_mailbox_totals`) and the triggers
///   that kept it dropped: the writer keeps each mailbox's messages and
///   bytes in memory, with its index of the mail ([`crate::mailboxes`]).
///   A relay of schema 5 refuses the file (it would trust totals nobody
///   keeps any more).
pub const SCHEMA_VERSION: i64 = 6;

/// How long a nonce is remembered: twice the timestamp window plus a
/// margin, so a request is refused as stale before its nonce is forgotten.
pub const NONCE_MEMORY_SECS: f64 = (2 * retalk_proto::TIMESTAMP_WINDOW_SECS + 10) as f64;

/// A tool operation that did not complete.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Refused for a reason the caller can act on; nothing changed.
    #[error(transparent)]
    Refused(#[from] WireError),
    /// The database failed; the transaction must not be committed.
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

/// Result of a store operation.
pub type OpResult<T> = Result<T, OpError>;

/// WAL pages between checkpoints (see [`open`]).
pub const WAL_CHECKPOINT_PAGES: u32 = 4000;

/// Opens (creating if needed) the database at `path`, switches it to WAL,
/// sets how commits reach the disk, and brings the schema up to date.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    // The default VFS but for the log's writes, merged per commit (see
    // `wal_buffer`: about three system calls fewer per stored message).
    wal_buffer::register()?;
    let conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), wal_buffer::NAME)?;
    // Another process (sqlite3 .backup, an operator's query) may hold a lock
    // for a moment; wait for it rather than failing requests.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "cannot switch {} to WAL journal mode (got {mode})",
            path.display()
        )));
    }
    // Both settings use NORMAL: commits append to the WAL without an fsync,
    // and SQLite syncs the WAL before each checkpoint and the database file
    // after it, so a checkpoint never makes an unsynced commit part of the
    // main file. With `Durability::Full` the writer adds the missing piece
    // itself: it fsyncs the WAL (see [`wal_file`]) after each group commit
    // and before answering, off the writer thread so the next group can run
    // meanwhile. See `crate::writer` for why.
    //
    // A checkpoint (copying the WAL into the main file, two fsyncs) runs on
    // the writer's thread and stalls it for milliseconds; at SQLite's
    // default of every 1,000 pages (4 MiB) that cost a quarter of the
    // relay's throughput under load (docs/benchmarks.md). Every 4,000 pages
    // the same hot pages are copied once instead of four times; the WAL
    // stays at about 16 MiB.
    //
    // The page cache holds 64 MiB (SQLite's default is 2 MiB): pages a busy
    // relay touches at random stay in memory rather than being read back.
    // (Smaller pages, 1 KiB, were tried and cost more: the appended rows then
    // span four times as many WAL frames, each its own write; see
    // docs/benchmarks.md.)
    conn.execute_batch(&format!(
        "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}; \
         PRAGMA foreign_keys=OFF; PRAGMA cache_size=-65536;"
    ))?;
    migrate(&conn)?;
    // The relay's connection runs no triggers: what its statements write is
    // all it writes. (Schemas 3 to 5 kept mailbox totals by triggers for
    // other programs while this connection, triggers off, kept them by its
    // own statements: a trigger made the message insert a statement that
    // writes two tables and may abort part-way, so SQLite copied every page
    // it touched into a statement journal first, about a tenth of the
    // writer's work per send; docs/benchmarks.md, round 6. Schema 6 keeps
    // the totals in the writer's memory.) Triggers stay off: one that some
    // other program adds to the file would otherwise run inside every
    // send's insert, with that cost, writing what the writer does not
    // track.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER,
        false,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Opens the write-ahead log of `conn`'s database for the writer's own
/// fsyncs (see [`open`]).
///
/// `fsync` flushes a file's dirty pages whichever descriptor wrote them, so
/// syncing this handle after SQLite's commit makes that commit durable. The
/// WAL exists as long as a connection in WAL mode is open (the writer's is,
/// for the relay's lifetime); SQLite truncates and reuses it but never
/// replaces the file under an open connection.
pub fn wal_file(conn: &Connection) -> std::io::Result<std::fs::File> {
    let db = conn.path().filter(|p| !p.is_empty()).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the database has no file (in-memory?), so its log cannot be synced",
        )
    })?;
    let wal = format!("{db}-wal");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .map_err(|e| std::io::Error::new(e.kind(), format!("opening {wal}: {e}")))
}

/// Creates missing tables and indexes. Idempotent; never renames or retypes
/// a column, so the reference can still open the file afterwards.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "database schema version {version} is newer than this relay understands \
             ({SCHEMA_VERSION}); upgrade retalk-server"
        )));
    }
    let drop = if version < 4 { DROP_SCHEMA_3 } else { "" };
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {drop} {REFERENCE_SCHEMA} {RELAY_SCHEMA} \
         PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
    ))
}

/// Records the nonces a group commit accepted at `now` as one row, their
/// 16-byte values concatenated (see [`crate::nonces`] for why the check
/// itself is made in memory). One row per group rather than per request:
/// every request of a group shares its time, and one insert into the table
/// and its time index replaces one pair per request. Nothing is written for
/// a group without nonces.
pub fn record_nonces<'a>(
    conn: &Connection,
    nonces: impl ExactSizeIterator<Item = &'a [u8; 16]>,
    now: f64,
) -> rusqlite::Result<()> {
    if nonces.len() == 0 {
        return Ok(());
    }
    let mut blob = Vec::with_capacity(16 * nonces.len());
    for n in nonces {
        blob.extend_from_slice(n);
    }
    conn.prepare_cached("INSERT INTO retalk_nonce_groups(ts, nonces) VALUES(?1, ?2)")?
        .execute(params![now, blob])?;
    Ok(())
}

/// Nonces seen since `cutoff`, as text: this relay's (one row per group
/// since schema 5, one per request before), and any a reference relay
/// recorded in its own table on the same file.
pub fn recent_nonces(conn: &Connection, cutoff: f64) -> rusqlite::Result<Vec<(String, f64)>> {
    let mut out = recent_group_nonces(conn, cutoff)?;
    for sql in [
        "SELECT nonce, ts FROM retalk_nonces WHERE ts >= ?1",
        "SELECT nonce, ts FROM nonces WHERE ts >= ?1",
    ] {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([cutoff], |r| {
            Ok((text(r, 0)?, r.get::<_, Option<f64>>(1)?.unwrap_or(cutoff)))
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

/// The nonces of the groups committed since `cutoff` (schema 5's table),
/// as text. A row whose length is not a whole number of nonces, or that is
/// not a blob, is skipped: nothing this relay writes.
pub fn recent_group_nonces(conn: &Connection, cutoff: f64) -> rusqlite::Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare("SELECT nonces, ts FROM retalk_nonce_groups WHERE ts >= ?1")?;
    let mut rows = stmt.query([cutoff])?;
    while let Some(r) = rows.next()? {
        let ts = r.get::<_, Option<f64>>(1)?.unwrap_or(cutoff);
        if let ValueRef::Blob(blob) = r.get_ref(0)? {
            if blob.len() % 16 == 0 {
                out.extend(blob.chunks(16).map(|n| (hex::encode(n), ts)));
            }
        }
    }
    Ok(out)
}

/// Deletes undelivered mail older than `ttl_secs` (0 = keep forever), in
/// arrival order: from the oldest message up to the first young one, so no
/// index on `ts` is needed and a young message is never deleted (one that
/// arrived after a young one but carries an older time, after a clock step,
/// waits for the next pass). Returns how many were deleted; `boxes` follows
/// (or forgets, if the deletion does not commit).
pub fn expire_messages(
    conn: &Connection,
    boxes: &mut Mailboxes,
    now: f64,
    ttl_secs: f64,
) -> rusqlite::Result<usize> {
    if ttl_secs <= 0.0 {
        return Ok(0);
    }
    // Outside the writer's groups, so a transaction of its own: the rows
    // and the index, all or nothing.
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    boxes.check(&tx)?;
    let end: i64 = tx
        .prepare_cached(
            "SELECT ifnull(\
             (SELECT id FROM messages WHERE ts >= ?1 OR ts IS NULL ORDER BY id LIMIT 1), \
             (SELECT ifnull(MAX(id), 0) + 1 FROM messages))",
        )?
        .query_row([now - ttl_secs], |r| r.get(0))?;
    let n = tx
        .prepare_cached("DELETE FROM messages WHERE id < ?1")?
        .execute([end])?;
    boxes.expired_before(end);
    if let Err(e) = tx.commit() {
        boxes.forget();
        return Err(e);
    }
    Ok(n)
}

/// Forgets nonces too old to matter and refusals past their lifetime.
pub fn prune(conn: &Connection, now: f64, refused_ttl_secs: f64) -> rusqlite::Result<()> {
    let cutoff = now - NONCE_MEMORY_SECS;
    conn.prepare_cached("DELETE FROM nonces WHERE ts < ?1")?
        .execute([cutoff])?;
    conn.prepare_cached("DELETE FROM retalk_nonces WHERE ts < ?1")?
        .execute([cutoff])?;
    conn.prepare_cached("DELETE FROM retalk_nonce_groups WHERE ts < ?1")?
        .execute([cutoff])?;
    if refused_ttl_secs > 0.0 {
        conn.prepare_cached("DELETE FROM refused WHERE ts < ?1")?
            .execute([now - refused_ttl_secs])?;
    }
    Ok(())
}

fn unknown_peer(peer: &UserId) -> OpError {
    WireError::NotFound(format!("unknown peer or no published keys: {peer}")).into()
}

/// Reads a text column leniently: files written by other tools may hold a
/// blob or a number where text is expected, and that must not make a
/// mailbox unreadable.
pub(crate) fn text(row: &Row<'_>, idx: usize) -> rusqlite::Result<String> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Null => String::new(),
    })
}

pub(crate) fn real(row: &Row<'_>, idx: usize) -> rusqlite::Result<f64> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Real(f) => f,
        ValueRef::Integer(i) => i as f64,
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0.0),
        ValueRef::Blob(_) | ValueRef::Null => 0.0,
    })
}

pub(crate) fn integer(row: &Row<'_>, idx: usize) -> rusqlite::Result<i64> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Integer(i) => i,
        ValueRef::Real(f) => f as i64,
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0),
        ValueRef::Blob(_) | ValueRef::Null => 0,
    })
}

/// `publish_keys`: set the caller's keys, add one-time keys, maybe replace
/// the fallback key. Creates the mailbox on first use.
pub fn publish_keys(
    conn: &Connection,
    caller: &UserId,
    req: &PublishKeys,
    max_otks: u64,
) -> OpResult<Published> {
    if UserId::fingerprint(&req.identity_key, &req.signing_key) != *caller {
        return Err(WireError::BadRequest("published keys do not match user id".into()).into());
    }
    let adding = req.one_time_keys.len() as u64;
    if adding > 0 {
        let stored: u64 = conn
            .prepare_cached("SELECT COUNT(*) FROM otks WHERE owner=?1 AND claimed=0")?
            .query_row([caller.as_str()], |r| r.get(0))?;
        if stored + adding > max_otks {
            return Err(WireError::LimitExceeded(format!(
                "one-time key limit: you have {stored} unclaimed one-time keys on this relay \
                 and publishing {adding} more would exceed its cap of {max_otks} per user"
            ))
            .into());
        }
    }
    conn.prepare_cached(
        "INSERT INTO users(id, identity_key, signing_key) VALUES(?1, ?2, ?3) \
         ON CONFLICT(id) DO UPDATE SET identity_key=excluded.identity_key, \
         signing_key=excluded.signing_key",
    )?
    .execute(params![
        caller.as_str(),
        req.identity_key.as_str(),
        req.signing_key.as_str()
    ])?;
    if let Some((key_id, key)) = &req.fallback_key {
        conn.prepare_cached("UPDATE users SET fallback_key_id=?1, fallback_key=?2 WHERE id=?3")?
            .execute(params![key_id, key.as_str(), caller.as_str()])?;
    }
    let mut insert =
        conn.prepare_cached("INSERT INTO otks(owner, key_id, key, claimed) VALUES(?1, ?2, ?3, 0)")?;
    for (key_id, key) in &req.one_time_keys {
        insert.execute(params![caller.as_str(), key_id, key.as_str()])?;
    }
    Ok(Published {
        ok: true,
        user_id: Some(caller.to_string()),
        fingerprint: Some(caller.to_string()),
        one_time_keys_added: adding,
        fallback_key_set: req.fallback_key.is_some(),
    })
}

/// `count_keys`: the caller's unclaimed one-time keys and fallback status.
pub fn count_keys(conn: &Connection, caller: &UserId) -> OpResult<KeyCounts> {
    let unclaimed: u64 = conn
        .prepare_cached("SELECT COUNT(*) FROM otks WHERE owner=?1 AND claimed=0")?
        .query_row([caller.as_str()], |r| r.get(0))?;
    let fallback: Option<String> = conn
        .prepare_cached("SELECT fallback_key FROM users WHERE id=?1")?
        .query_row([caller.as_str()], |r| text(r, 0))
        .optional()?;
    Ok(KeyCounts {
        unclaimed,
        has_fallback: fallback.is_some_and(|f| !f.is_empty()),
    })
}

struct UserRow {
    identity_key: Option<String>,
    signing_key: String,
    fallback_key_id: String,
    fallback_key: String,
}

fn user_row(conn: &Connection, id: &UserId) -> rusqlite::Result<Option<UserRow>> {
    conn.prepare_cached(
        "SELECT identity_key, signing_key, fallback_key_id, fallback_key FROM users WHERE id=?1",
    )?
    .query_row([id.as_str()], |r| {
        Ok(UserRow {
            identity_key: match r.get_ref(0)? {
                ValueRef::Null => None,
                _ => Some(text(r, 0)?),
            },
            signing_key: text(r, 1)?,
            fallback_key_id: text(r, 2)?,
            fallback_key: text(r, 3)?,
        })
    })
    .optional()
}

/// `get_keys`: a peer's long-term public keys.
pub fn get_keys(conn: &Connection, peer: &UserId) -> OpResult<PublicKeys> {
    match user_row(conn, peer)? {
        Some(UserRow {
            identity_key: Some(identity_key),
            signing_key,
            ..
        }) => Ok(PublicKeys {
            identity_key,
            signing_key,
        }),
        _ => Err(unknown_peer(peer)),
    }
}

/// `claim_key`: hand out (and forget) the peer's oldest unclaimed one-time
/// key, or its fallback key when none is left.
///
/// A claimed key is deleted rather than marked `claimed=1` as the reference
/// does: nothing ever reads a claimed key again, and keeping them would let
/// the table grow without bound however the per-user cap is set. Rows that
/// the reference marked claimed are ignored, as by the reference.
pub fn claim_key(conn: &Connection, peer: &UserId) -> OpResult<ClaimedKey> {
    let Some(UserRow {
        identity_key: Some(identity_key),
        signing_key,
        fallback_key_id,
        fallback_key,
    }) = user_row(conn, peer)?
    else {
        return Err(unknown_peer(peer));
    };
    let otk = conn
        .prepare_cached(
            "DELETE FROM otks WHERE id = (SELECT id FROM otks WHERE owner=?1 AND claimed=0 \
             ORDER BY id LIMIT 1) RETURNING key_id, key",
        )?
        .query_row([peer.as_str()], |r| Ok((text(r, 0)?, text(r, 1)?)))
        .optional()?;
    match otk {
        Some((key_id, one_time_key)) => Ok(ClaimedKey {
            identity_key,
            signing_key,
            key_id,
            one_time_key,
            fallback: false,
        }),
        None if fallback_key.is_empty() => Err(WireError::NotFound(format!(
            "no one-time keys left for peer: {peer} (and no fallback key)"
        ))
        .into()),
        None => Ok(ClaimedKey {
            identity_key,
            signing_key,
            key_id: fallback_key_id,
            one_time_key: fallback_key,
            fallback: true,
        }),
    }
}

/// The statements a `send_message` runs, taken from rusqlite's statement
/// cache once for a group commit and handed back at its end.
///
/// Why: `prepare_cached` finds a statement by its SQL text (hashing it)
/// and, when the handle drops, resets it and files it back; for the six
/// statements of a send that was about 4.5% of the writer's time
/// (docs/benchmarks.md, round 7). Held here, each message only binds and
/// steps them (rusqlite resets a statement after each use, so none is left
/// running at the commit).
pub struct SendStatements<'c> {
    conn: &'c Connection,
    known: CachedStatement<'c>,
    refusal: CachedStatement<'c>,
    insert: CachedStatement<'c>,
}

impl<'c> SendStatements<'c> {
    /// Takes the statements from `conn`'s cache (preparing them the first
    /// time).
    pub fn prepare(conn: &'c Connection) -> rusqlite::Result<SendStatements<'c>> {
        Ok(SendStatements {
            conn,
            known: conn.prepare_cached("SELECT 1 FROM users WHERE id=?1")?,
            refusal: conn.prepare_cached(
                "SELECT sig FROM refused WHERE recipient=?1 AND hash=?2 AND ts>?3",
            )?,
            insert: conn.prepare_cached(
                "INSERT INTO messages(ts, sender, recipient, mtype, body) \
                 VALUES(?1, ?2, ?3, ?4, ?5)",
            )?,
        })
    }

    /// `send_message`: stores a ciphertext for a recipient with published
    /// keys, unless the recipient refused this exact body (then hands back
    /// the signed refusal) or its mailbox is full.
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        sender: &UserId,
        req: &SendMessage,
        body_sha256: &str,
        now: f64,
        caps: &MailboxCaps,
        refused_ttl_secs: f64,
        boxes: &mut Mailboxes,
    ) -> OpResult<SendOutcome> {
        if !self.known.exists([req.to.as_str()])? {
            return Err(WireError::NotFound(format!("unknown recipient: {}", req.to)).into());
        }
        let cutoff = if refused_ttl_secs > 0.0 {
            now - refused_ttl_secs
        } else {
            f64::NEG_INFINITY
        };
        let refusal: Option<String> = self
            .refusal
            .query_row(params![req.to.as_str(), body_sha256, cutoff], |r| {
                text(r, 0)
            })
            .optional()?;
        if let Some(sig) = refusal {
            return Ok(SendOutcome::Refused {
                refused: true,
                hash: body_sha256.to_owned(),
                sig,
            });
        }
        if caps.messages > 0 || caps.per_sender > 0 || caps.bytes > 0 {
            // The writer's counts of this mailbox and of this sender's mail
            // there (see [`crate::mailboxes`]): no statement, whatever the
            // number of messages or senders.
            let Totals {
                messages: waiting,
                bytes,
            } = boxes.totals(req.to.as_str());
            let from_sender: u64 = if caps.per_sender > 0 {
                boxes.waiting_from(req.to.as_str(), sender.as_str())
            } else {
                0
            };
            let full = |text: String| -> OpResult<SendOutcome> {
                Err(
                    WireError::LimitExceeded(format!("{text}; resend later from your outbox"))
                        .into(),
                )
            };
            if caps.messages > 0 && waiting >= caps.messages {
                return full(format!(
                    "mailbox full: {} has {waiting} undelivered messages (cap {})",
                    req.to, caps.messages
                ));
            }
            if caps.per_sender > 0 && from_sender >= caps.per_sender {
                return full(format!(
                    "mailbox full for sender: {sender} already has {from_sender} undelivered \
                     messages for {} (per-sender cap {})",
                    req.to, caps.per_sender
                ));
            }
            let size = req.body.len() as u64;
            if caps.bytes > 0 && bytes + size > caps.bytes {
                return full(format!(
                    "mailbox full: {} has {bytes} bytes of undelivered messages and this one \
                     is {size} (cap {} bytes)",
                    req.to, caps.bytes
                ));
            }
        }
        self.insert.execute(params![
            now,
            sender.as_str(),
            req.to.as_str(),
            u8::from(req.mtype),
            req.body
        ])?;
        let message_id = self.conn.last_insert_rowid();
        // The body is bound as text: its stored length in bytes is its
        // UTF-8 length, what the index's scan (`length(CAST(body AS
        // BLOB))`) counts.
        boxes.stored(
            req.to.as_str(),
            message_id,
            sender.as_str(),
            req.body.len() as u64,
        );
        Ok(SendOutcome::Stored {
            message_id,
            ts: now,
        })
    }
}

/// What one recipient's mailbox may hold (0 = no bound of that kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxCaps {
    /// Undelivered messages in all.
    pub messages: u64,
    /// Undelivered messages from any one sender.
    pub per_sender: u64,
    /// Bytes of undelivered message bodies in all.
    pub bytes: u64,
}

/// Most messages one `read_messages` answer carries.
pub const READ_MAX_MESSAGES: usize = 1000;
/// Body bytes after which one `read_messages` answer stops.
pub const READ_MAX_BYTES: usize = 16 * 1024 * 1024;

/// `read_messages`: the caller's pending mail in arrival order (only
/// `peer`'s when set), deleted unless `peek`. A very full mailbox is handed
/// over in parts (see [`READ_MAX_MESSAGES`]), so no answer grows without
/// bound; only what is returned is deleted.
pub fn read_messages(
    conn: &Connection,
    boxes: &mut Mailboxes,
    caller: &UserId,
    peer: Option<&UserId>,
    peek: bool,
) -> OpResult<Vec<Mail>> {
    // Which rows, oldest first, from the writer's index (see
    // [`crate::mailboxes`]); each row then by its primary key.
    let ids: Vec<i64> = boxes
        .waiting(caller.as_str(), peer.map(UserId::as_str))
        .take(READ_MAX_MESSAGES)
        .collect();
    let mut stmt =
        conn.prepare_cached("SELECT ts, sender, mtype, body FROM messages WHERE id=?1")?;
    // One answer carries at most READ_MAX_MESSAGES messages and about
    // READ_MAX_BYTES of bodies (always at least one message); the rest
    // stays, oldest first, for the next read.
    let mut mail = Vec::new();
    let mut bytes = 0usize;
    let mut missing = false;
    for id in ids {
        let row = stmt
            .query_row([id], |r| {
                Ok(Mail {
                    message_id: id,
                    ts: real(r, 0)?,
                    from: text(r, 1)?,
                    mtype: integer(r, 2)?,
                    body: text(r, 3)?,
                })
            })
            .optional()?;
        let Some(m) = row else {
            // Gone behind the index's back (it checks for other writers at
            // each transaction, so this is a bug): build it again next time.
            missing = true;
            continue;
        };
        bytes += m.body.len();
        mail.push(m);
        if mail.len() >= READ_MAX_MESSAGES || bytes >= READ_MAX_BYTES {
            break;
        }
    }
    drop(stmt);
    if !peek && !mail.is_empty() {
        let mut delete = conn.prepare_cached("DELETE FROM messages WHERE id=?1")?;
        for m in &mail {
            delete.execute([m.message_id])?;
        }
        drop(delete);
        // Exactly the rows read went (in the writer's transaction).
        let gone: Vec<i64> = mail.iter().map(|m| m.message_id).collect();
        boxes.delivered(caller.as_str(), &gone);
    }
    if missing {
        tracing::warn!("the mailbox index named a message no longer stored; rebuilding it");
        boxes.forget();
    }
    Ok(mail)
}

/// `nack`: remember the caller's signed refusal of a body hash (re-nacking
/// refreshes it), keeping at most `max_refused` per caller.
pub fn nack(
    conn: &Connection,
    caller: &UserId,
    req: &Nack,
    now: f64,
    max_refused: u64,
    refused_ttl_secs: f64,
) -> OpResult<()> {
    // Expired refusals go as soon as a new one arrives (as the reference),
    // not only at the next periodic prune.
    if refused_ttl_secs > 0.0 {
        conn.prepare_cached("DELETE FROM refused WHERE ts < ?1")?
            .execute([now - refused_ttl_secs])?;
    }
    conn.prepare_cached(
        "INSERT INTO refused(recipient, hash, sig, ts) VALUES(?1, ?2, ?3, ?4) \
         ON CONFLICT(recipient, hash) DO UPDATE SET sig=excluded.sig, ts=excluded.ts",
    )?
    .execute(params![caller.as_str(), req.hash, req.sig, now])?;
    if max_refused > 0 {
        let n: u64 = conn
            .prepare_cached("SELECT COUNT(*) FROM refused WHERE recipient=?1")?
            .query_row([caller.as_str()], |r| r.get(0))?;
        if n > max_refused {
            conn.prepare_cached(
                "DELETE FROM refused WHERE id IN \
                 (SELECT id FROM refused WHERE recipient=?1 ORDER BY id LIMIT ?2)",
            )?
            .execute(params![caller.as_str(), n - max_refused])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = stmt.parameter_count();
        let args: Vec<String> = (0..n).map(|_| "x".to_owned()).collect();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    /// Every statement the store functions run, as SQLite saw it prepared
    /// (recorded by a trace hook; one test at a time uses it).
    static RAN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    fn record(event: rusqlite::trace::TraceEvent<'_>) {
        if let rusqlite::trace::TraceEvent::Stmt(stmt, _) = event {
            RAN.lock().unwrap().push(stmt.sql().into_owned());
        }
    }

    /// Every query a tool runs is an index lookup on the caller's own rows,
    /// so its cost does not grow with other users' mail or keys. The SQL
    /// checked is what the code really ran: each store function is called
    /// under a trace hook that records every statement, and each recorded
    /// statement that reads or changes rows is planned with EXPLAIN QUERY
    /// PLAN. A new query is checked without this test changing.
    #[test]
    fn every_query_the_tools_run_uses_an_index() {
        use retalk_proto::tools::{MessageType, Nack, PublishKeys, SendMessage};
        use retalk_proto::{IdentityKey, SigningKey};
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("s.db")).unwrap();
        conn.trace_v2(
            rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT,
            Some(record),
        );
        RAN.lock().unwrap().clear();
        let key = |c: char| {
            let b64 = "A".repeat(42) + &c.to_string();
            IdentityKey::parse(&b64, "key").unwrap()
        };
        // A user with real keys (its id is their fingerprint), published.
        let user = |c: char| {
            use base64::Engine;
            let sk = ed25519_dalek::SigningKey::from_bytes(&[c as u8; 32]);
            let sk = base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(sk.verifying_key().as_bytes());
            let req = PublishKeys {
                identity_key: key(c),
                signing_key: SigningKey::parse(&sk, "sk").unwrap(),
                one_time_keys: vec![("k1".into(), key('w')), ("k2".into(), key('A'))],
                fallback_key: Some(("fb".into(), key('Q'))),
            };
            let fp = retalk_proto::fingerprint(req.identity_key.as_str(), &sk);
            let id = UserId::parse(&fp, "id").unwrap();
            publish_keys(&conn, &id, &req, 100).unwrap();
            id
        };
        let (alice, bob) = (user('Q'), user('g'));
        count_keys(&conn, &alice).unwrap();
        get_keys(&conn, &bob).unwrap();
        claim_key(&conn, &bob).unwrap();
        let send = SendMessage::new(bob.clone(), MessageType::Normal, b"ciphertext");
        let mut counts = Mailboxes::default();
        counts.check(&conn).unwrap();
        let caps = MailboxCaps {
            messages: 100,
            per_sender: 100,
            bytes: 1 << 20,
        };
        // A send, before a nack and again after (then its refusal lookup
        // finds a row).
        let send_once = |counts: &mut Mailboxes| {
            SendStatements::prepare(&conn)
                .unwrap()
                .send(&alice, &send, &"0".repeat(64), 1e6, &caps, 3600.0, counts)
                .unwrap();
        };
        send_once(&mut counts);
        read_messages(&conn, &mut counts, &bob, Some(&alice), true).unwrap();
        read_messages(&conn, &mut counts, &bob, None, true).unwrap();
        read_messages(&conn, &mut counts, &bob, Some(&alice), false).unwrap();
        read_messages(&conn, &mut counts, &bob, None, false).unwrap();
        let refusal = Nack {
            hash: "0".repeat(64),
            sig: "A".repeat(86),
        };
        nack(&conn, &bob, &refusal, 1e6, 1, 3600.0).unwrap();
        nack(
            &conn,
            &bob,
            &Nack {
                hash: "1".repeat(64),
                ..refusal
            },
            1e6,
            1,
            3600.0,
        )
        .unwrap();
        send_once(&mut counts);
        record_nonces(&conn, [[1u8; 16], [2; 16]].iter(), 1e6).unwrap();
        recent_nonces(&conn, 1e6 - 600.0).unwrap();
        prune(&conn, 1e6, 3600.0).unwrap();
        conn.trace_v2(rusqlite::trace::TraceEventCodes::empty(), None);

        let mut ran = std::mem::take(&mut *RAN.lock().unwrap());
        ran.sort();
        ran.dedup();
        // The writer's one scan to build its mailbox index (at its start,
        // or after another program wrote the file) reads every message by
        // design; it is not a per-request query.
        let checked: Vec<&String> = ran
            .iter()
            .filter(|sql| sql.contains(" WHERE ") && sql.as_str() != crate::mailboxes::BUILD)
            .collect();
        // The tools above must have run their lookups (not just inserts).
        assert!(checked.len() >= 10, "too few queries recorded: {ran:#?}");
        for sql in checked {
            let p = plan(&conn, sql);
            assert!(p.contains("USING"), "{sql}: {p}");
            assert!(!p.contains("SCAN"), "{sql}: {p}");
        }
    }

    /// A file from an earlier build, which indexed `messages(recipient,
    /// id)`, loses that index when this relay opens it (the writer indexes
    /// mailboxes in memory); its mail is still there and indexed.
    #[test]
    fn the_files_mailbox_index_is_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = open(&path).unwrap();
        conn.execute_batch(
            "CREATE INDEX retalk_messages_recipient ON messages(recipient, id); \
             INSERT INTO messages(ts, sender, recipient, mtype, body) VALUES(1, 'a', 'b', 1, 'AA==');",
        )
        .unwrap();
        drop(conn);
        let conn = open(&path).unwrap();
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'retalk_messages_recipient'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0);
        let mut boxes = Mailboxes::default();
        boxes.check(&conn).unwrap();
        assert_eq!(boxes.waiting("b", None).count(), 1);
    }

    /// Nonces live at least twice the timestamp window: anything younger
    /// survives a prune, so a replay is refused as long as its timestamp
    /// could still pass. In all three tables: the groups (schema 5), the
    /// per-request rows an older version of this relay wrote, and the
    /// reference's.
    #[test]
    fn prune_keeps_nonces_for_twice_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("s.db")).unwrap();
        let now = 1_000_000.0;
        let window = 2.0 * retalk_proto::TIMESTAMP_WINDOW_SECS as f64;
        let too_old = now - NONCE_MEMORY_SECS - 1.0;
        record_nonces(&conn, [[0x11; 16], [0x12; 16]].iter(), now - window).unwrap();
        record_nonces(&conn, [[0x21; 16]].iter(), too_old).unwrap();
        record_nonces(&conn, [].iter(), now).unwrap();
        for (table, nonce, ts) in [
            ("retalk_nonces", "13", now - window),
            ("retalk_nonces", "22", too_old),
            ("nonces", "23", too_old),
        ] {
            conn.execute(
                &format!("INSERT INTO {table}(nonce, ts) VALUES(?1, ?2)"),
                params![nonce.repeat(16), ts],
            )
            .unwrap();
        }
        let groups: i64 = conn
            .query_row("SELECT COUNT(*) FROM retalk_nonce_groups", [], |r| r.get(0))
            .unwrap();
        assert_eq!(groups, 2, "a group without nonces writes no row");
        prune(&conn, now, 0.0).unwrap();
        let mut kept = recent_nonces(&conn, f64::NEG_INFINITY).unwrap();
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        let young = |n: &str| (n.repeat(16), now - window);
        assert_eq!(kept, [young("11"), young("12"), young("13")]);
    }

    /// A file from schema 4 (nonces one row per request in
    /// `retalk_nonces`) moves to schema 5 (and on) on opening, and the nonces it
    /// recorded are still remembered; a group row that is not whole nonces
    /// is skipped, not misread.
    #[test]
    fn schema_4_nonces_are_remembered_after_the_move_to_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE retalk_nonce_groups; PRAGMA user_version=4; \
             INSERT INTO retalk_nonces(ts, nonce) VALUES(1e6, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');",
        )
        .unwrap();
        drop(conn);
        let conn = open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        conn.execute(
            "INSERT INTO retalk_nonce_groups(ts, nonces) VALUES(1e6, ?1)",
            [vec![0xbbu8; 17]],
        )
        .unwrap();
        record_nonces(&conn, [[0xcc; 16]].iter(), 1e6).unwrap();
        let mut seen = recent_nonces(&conn, 0.0).unwrap();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            [("a".repeat(32), 1e6), ("c".repeat(32), 1e6)],
            "the schema-4 row and the group, not the 17-byte row"
        );
    }

    #[test]
    fn the_log_can_be_opened_for_syncing_on_a_new_and_a_reopened_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = open(&path).unwrap();
        wal_file(&conn).unwrap();
        drop(conn);
        // Closing the last connection removed the log; reopening an
        // up-to-date database (nothing to migrate) must bring it back.
        assert!(!dir.path().join("s.db-wal").exists());
        let conn = open(&path).unwrap();
        wal_file(&conn).unwrap();
        let pages: u32 = conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pages, WAL_CHECKPOINT_PAGES);
    }

    /// The file has no mailbox totals since schema 6: the writer keeps them
    /// with its index of the mail. Through sends, full, per-peer and peeking
    /// reads, a reference relay's inserts and deletes (seen at the writer's
    /// next transaction), and expiry, they always equal what the messages
    /// add up to, per mailbox and in all.
    #[test]
    fn the_writers_totals_match_the_messages() {
        use retalk_proto::tools::{MessageType, PublishKeys, SendMessage};
        use retalk_proto::{IdentityKey, SigningKey};
        use rusqlite::config::DbConfig;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = open(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        assert!(!conn
            .db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER)
            .unwrap());
        let leftovers: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'retalk_mailbox_totals%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leftovers, 0, "no totals table or triggers in the file");
        let user = |c: u8| {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
            let sk = ed25519_dalek::SigningKey::from_bytes(&[c; 32]);
            let sk = b64.encode(sk.verifying_key().as_bytes());
            let ik = b64.encode([c; 32]);
            let req = PublishKeys {
                identity_key: IdentityKey::parse(&ik, "key").unwrap(),
                signing_key: SigningKey::parse(&sk, "sk").unwrap(),
                one_time_keys: vec![],
                fallback_key: None,
            };
            let fp = retalk_proto::fingerprint(req.identity_key.as_str(), &sk);
            let id = UserId::parse(&fp, "id").unwrap();
            publish_keys(&conn, &id, &req, 100).unwrap();
            id
        };
        let (alice, bob, carol) = (user(1), user(2), user(3));
        let caps = MailboxCaps {
            messages: 1000,
            per_sender: 1000,
            bytes: 1 << 30,
        };
        let mut counts = Mailboxes::default();
        counts.check(&conn).unwrap();
        let send = |counts: &mut Mailboxes, from: &UserId, to: &UserId, body: &[u8], ts: f64| {
            let msg = SendMessage::new(to.clone(), MessageType::Normal, body);
            let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(msg.body.as_bytes()));
            let out = SendStatements::prepare(&conn)
                .unwrap()
                .send(from, &msg, &hash, ts, &caps, 0.0, counts)
                .unwrap();
            assert!(matches!(out, SendOutcome::Stored { .. }));
        };
        // The whole index (ids, senders' counts, bytes) and the totals,
        // per mailbox and in all, against the table.
        let check = |counts: &Mailboxes, step: &str| {
            crate::mailboxes::testing::same(counts, &conn, step);
        };
        for (i, size) in [1usize, 10, 100, 1000].into_iter().enumerate() {
            send(&mut counts, &alice, &bob, &vec![7; size], 100.0 + i as f64);
            send(
                &mut counts,
                &carol,
                &bob,
                &vec![8; size + 1],
                100.0 + i as f64,
            );
            send(&mut counts, &bob, &alice, &vec![9; 2 * size], 200.0);
        }
        check(&counts, "sends");
        read_messages(&conn, &mut counts, &bob, Some(&alice), true).unwrap();
        check(&counts, "a peek");
        assert_eq!(
            read_messages(&conn, &mut counts, &bob, Some(&carol), false)
                .unwrap()
                .len(),
            4
        );
        check(&counts, "a read of one peer's mail");
        // A reference relay on the file: its inserts and delete, with a
        // body stored as a blob and one stored as NULL.
        other
            .execute_batch(&format!(
                "INSERT INTO messages(ts, sender, recipient, mtype, body) \
                   VALUES(300, '{a}', '{c}', 1, x'00ff00'), (300, '{a}', '{c}', 1, NULL), \
                   (300, '{a}', '{b}', 1, 'héllo'); \
                 DELETE FROM messages WHERE recipient = '{c}' AND body IS NULL;",
                a = alice.as_str(),
                b = bob.as_str(),
                c = carol.as_str()
            ))
            .unwrap();
        // The writer's next transaction indexes them.
        counts.check(&conn).unwrap();
        check(&counts, "a reference relay's writes");
        assert_eq!(
            read_messages(&conn, &mut counts, &bob, None, false)
                .unwrap()
                .len(),
            5
        );
        check(&counts, "a full read");
        assert_eq!(
            read_messages(&conn, &mut counts, &carol, None, false)
                .unwrap()
                .len(),
            1
        );
        check(&counts, "reading a blob body");
        send(&mut counts, &alice, &carol, b"late", 10_000.0);
        // Alice's mail from bob (ts 200) is past a 1000 s lifetime at 1500;
        // carol's new one (10,000) is not.
        assert_eq!(
            expire_messages(&conn, &mut counts, 1500.0, 1000.0).unwrap(),
            4
        );
        check(&counts, "expiry");
        assert_eq!(
            counts.all(),
            Totals {
                messages: 1,
                bytes: "bGF0ZQ==".len() as u64
            },
            "only the late message, its body in base64"
        );
    }

    #[test]
    fn migration_is_idempotent_and_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(open(&path).unwrap());
        let conn = open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        conn.execute_batch("PRAGMA user_version=99").unwrap();
        drop(conn);
        let err = open(&path).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
