//! The store's tables, made by numbered migrations.
//!
//! Version 1 (every store made before 0.3 compatibility):
//!
//! * `meta(k, v)`: format version, key-derivation parameters and salt, the
//!   passphrase check value, the encrypted account pickle, the public ids,
//!   the self-chosen name, the saved relay URL and when the fallback key was
//!   last published.
//! * `sessions`: every Olm session with every peer (encrypted pickles). A
//!   pair can hold several: when both sides start a session at once, each
//!   keeps both, tries each when decrypting and sends on the one used most
//!   recently (`last_used` is a store-wide counter, not a clock, so it stays
//!   monotonic across processes and clock changes).
//! * `outbox`: chat ciphertext sent but not yet acknowledged, for re-sending.
//! * `processed`: sha256 of every decrypted body -> its message id, so a
//!   re-sent copy (which no longer decrypts) is recognised and re-acked.
//! * `peers`: local names and optional pinned identity keys.
//! * `inbox`: mail fetched from the relay but not yet decrypted. The relay
//!   deletes mail when it hands it over, so it is written here first.
//! * `delivered` and `problems`: outcomes not yet returned to the caller
//!   (message text is sealed with the store key).
//! * `pending_acks`: acknowledgements owed to senders; the ciphertext is
//!   stored once made so a crash between encrypting and sending re-sends the
//!   same bytes instead of skipping a ratchet step.

//!
//! Version 2 (the 0.3 command line):
//!
//! * `history`: messages kept for `retalk history` (`send --save`,
//!   `receive --save`), text sealed with the store key (Argon2id-derived).
//! * `blocked`: senders whose mail is refused unread.
//! * `peers.signing_key`: with `pin`, the two verified keys of a contact.
//! * `received_contacts`: contact cards shared with us, awaiting import.
//!
//! Version 3 (groups and invite codes):
//!
//! * `groups`: rooms with their local label, roster (without this
//!   identity), the members removed or gone, the roster each member last
//!   sent, and whether the room is held as an invitation.
//! * `left_groups`: rooms this identity left (their mail is refused).
//! * `invites`: minted invite codes, stored as SHA-256 and a short hint.
//! * `history.gid`: the room of a kept group message.
//!
//! A store is upgraded in place, in one transaction, when it is opened by a
//! newer program; a store newer than this program is refused.

/// The migrations, in order: `MIGRATIONS[i]` turns version `i` into `i + 1`.
/// Append only; never edit a released one.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// The version this code writes and reads.
pub const FORMAT_VERSION: u32 = MIGRATIONS.len() as u32;

/// Version 1: the tables of the 0.0.1-compatible client.
const V1: &str = "
CREATE TABLE IF NOT EXISTS meta(
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions(
    peer TEXT NOT NULL,
    session_id TEXT NOT NULL,
    peer_key TEXT NOT NULL,
    pickle TEXT NOT NULL,
    created REAL NOT NULL,
    last_used INTEGER NOT NULL,
    PRIMARY KEY(peer, session_id)
);
CREATE TABLE IF NOT EXISTS outbox(
    id TEXT PRIMARY KEY,
    peer TEXT NOT NULL,
    mtype INTEGER NOT NULL,
    body TEXT NOT NULL,
    created REAL NOT NULL,
    last_sent REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS processed(
    hash TEXT PRIMARY KEY,
    msg_id TEXT NOT NULL,
    peer TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS processed_by_id ON processed(peer, msg_id);
CREATE TABLE IF NOT EXISTS peers(
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    pin TEXT
);
CREATE TABLE IF NOT EXISTS inbox(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    relay TEXT NOT NULL,
    relay_id INTEGER NOT NULL,
    ts REAL NOT NULL,
    sender TEXT NOT NULL,
    mtype INTEGER NOT NULL,
    body TEXT NOT NULL,
    fetched REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS delivered(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    sealed TEXT NOT NULL,
    UNIQUE(peer, msg_id)
);
CREATE TABLE IF NOT EXISTS problems(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_acks(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    mtype INTEGER,
    body TEXT
);
";

/// Version 2: history, block list, verified contacts, shared-contact inbox.
const V2: &str = "
CREATE TABLE IF NOT EXISTS history(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL,
    peer TEXT NOT NULL,
    direction TEXT NOT NULL,
    sealed TEXT NOT NULL,
    ts REAL NOT NULL,
    UNIQUE(peer, msg_id, direction)
);
CREATE INDEX IF NOT EXISTS history_by_peer ON history(peer, seq);
CREATE TABLE IF NOT EXISTS blocked(
    id TEXT PRIMARY KEY,
    ts REAL NOT NULL
);
ALTER TABLE peers ADD COLUMN signing_key TEXT;
CREATE TABLE IF NOT EXISTS received_contacts(
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    signing_key TEXT NOT NULL,
    from_id TEXT NOT NULL,
    from_name TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    ts REAL NOT NULL
);
";

/// Version 3: groups, rooms left, invite codes, group tags in history.
const V3: &str = "
CREATE TABLE IF NOT EXISTS groups(
    gid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    members TEXT NOT NULL,
    removed TEXT NOT NULL,
    seen TEXT NOT NULL,
    state TEXT NOT NULL,
    inviter TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS left_groups(
    gid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS invites(
    hash TEXT PRIMARY KEY,
    hint TEXT NOT NULL,
    kind TEXT NOT NULL,
    peer TEXT,
    created REAL NOT NULL,
    expires REAL,
    uses INTEGER NOT NULL,
    used_by TEXT NOT NULL,
    revoked INTEGER NOT NULL
);
ALTER TABLE history ADD COLUMN gid TEXT;
CREATE INDEX IF NOT EXISTS history_by_group ON history(gid, seq);
";

/// Version 4: cards peers shared with this identity (0.3.x `share`),
/// waiting for `import --inbox`. One row per introduced user, newest share
/// wins. Public data (ids, names, public keys), like `peers`.
const V4: &str = "
CREATE TABLE IF NOT EXISTS contact_inbox(
    fingerprint TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    identity_key TEXT,
    signing_key TEXT,
    from_fp TEXT NOT NULL,
    from_name TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    ts REAL NOT NULL
);
";

/// Applies the migrations from version `from` to [`FORMAT_VERSION`] (all of
/// them for a new store) and records the new version, inside the caller's
/// transaction.
pub fn migrate(conn: &rusqlite::Connection, from: u32) -> Result<(), rusqlite::Error> {
    for m in &MIGRATIONS[from as usize..] {
        conn.execute_batch(m)?;
    }
    Ok(())
}
