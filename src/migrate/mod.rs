//! Taking over identities made by the Python reference implementation.
//!
//! Two generations are read: retalk 0.0.1 ([`python001`]) and retalk 0.3.x
//! ([`python03`]: `~/.retalk/NAME/store.db`, which adds several sessions per
//! peer, verified contacts, a block list and sealed saved messages). Both
//! are taken over the same way; for 0.3.x the backup folder is
//! `python-0.3-backup/`.
//!
//! A retalk 0.0.1 identity folder (`DIR/store.db`, made by `retalk init DIR`
//! of the Python CLI) is read with its secret, checked, and turned into this
//! project's store (`DIR/retalk.db`, Argon2id-protected) in the same folder:
//! same account (hence the same user id), sessions, saved peers, outbox,
//! processed-message hashes, name, relay URL and fallback-key timestamp. The
//! Python files are then moved into `DIR/python-0.0.1-backup/`, where the
//! Python CLI can still open them (`retalk ... -s DIR/python-0.0.1-backup`).
//! See `docs/compatibility.md`.
//!
//! * [`python001`] reads and validates the reference's store without
//!   writing anything; a wrong secret is [`MigrateError::WrongSecret`].
//! * [`migrate_python_001`] performs the migration, [`import_if_needed`]
//!   is what opening an identity calls (a no-op for anything but an
//!   unmigrated Python folder).
//!
//! The secret that unlocked the Python identity (its `PICKLE_SECRET`)
//! becomes the passphrase of the new store.
//!
//! Crash safety: the new store is built completely in a staging folder
//! (`DIR/.retalk-migration/`) and moved into place with one `rename`, the
//! commit point; only then are the Python files moved to the backup folder.
//! An interruption before the commit leaves the Python folder as it was
//! (the next attempt starts over); one after it is finished by the next
//! [`import_if_needed`].

pub mod python001;
pub mod python03;

pub use python001::{is_python_identity, PythonIdentity};
pub use python03::Python03Identity;

use std::path::{Path, PathBuf};

use rusqlite::OptionalExtension;

use crate::store::{
    self, KdfParams, NewIdentity, OutboxRow, PeerRow, Store, StoreError, StoredSession,
};

/// Folder (inside the identity folder) the Python 0.0.1 files are moved to.
pub const BACKUP_DIR: &str = "python-0.0.1-backup";
/// Folder the Python 0.3.x files are moved to.
pub const BACKUP_DIR_03: &str = "python-0.3-backup";
/// Staging folder for the store being built.
const STAGING_DIR: &str = ".retalk-migration";
/// `meta` key of the new store recording where it came from.
pub const MIGRATED_FROM_KEY: &str = "migrated_from";
/// Its value for a 0.0.1 migration.
pub const MIGRATED_FROM: &str = "python-retalk-0.0.1";
/// Its value for a 0.3.x migration.
pub const MIGRATED_FROM_03: &str = "python-retalk-0.3";

/// Which Python reference made an identity folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// retalk 0.0.1 (`retalk init DIR`).
    V001,
    /// retalk 0.3.x (`retalk init -u NAME`), or a 0.0.1 folder 0.3.x opened
    /// (it upgrades the tables in place).
    V03,
}

impl Generation {
    /// How people name it.
    pub fn label(self) -> &'static str {
        match self {
            Generation::V001 => "Python retalk 0.0.1",
            Generation::V03 => "Python retalk 0.3.x",
        }
    }

    /// The backup folder's base name.
    pub fn backup_dir(self) -> &'static str {
        match self {
            Generation::V001 => BACKUP_DIR,
            Generation::V03 => BACKUP_DIR_03,
        }
    }

    fn migrated_from(self) -> &'static str {
        match self {
            Generation::V001 => MIGRATED_FROM,
            Generation::V03 => MIGRATED_FROM_03,
        }
    }
}

/// Why an identity could not be migrated. Nothing in the Python folder was
/// changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The folder holds no Python 0.0.1 identity (`store.db` with an
    /// account).
    #[error("{0} holds no Python retalk 0.0.1 identity (no store.db with an account)")]
    NotPythonIdentity(PathBuf),
    /// The folder was made, or opened once, by Python retalk 0.3.x, whose
    /// store layout this migration does not read.
    #[error("{0} holds a Python retalk 0.3.x identity (its store has {1}); only 0.0.1 identity folders can be taken over (nothing was changed)")]
    Python03(PathBuf, &'static str),
    /// The secret does not decrypt the account.
    #[error(
        "wrong secret: it does not unlock the Python retalk 0.0.1 identity (nothing was changed)"
    )]
    WrongSecret,
    /// The folder already holds this project's store.
    #[error("{0} already holds a retalk store (retalk.db); nothing to migrate")]
    AlreadyMigrated(PathBuf),
    /// The store decrypted but something in it is malformed.
    #[error("the Python retalk store is damaged: {0}")]
    Corrupt(String),
    /// SQLite could not read the store.
    #[error("cannot read {0}: {1}")]
    Sqlite(PathBuf, #[source] rusqlite::Error),
    /// A file operation failed.
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// Writing the new store failed.
    #[error("writing the new store: {0}")]
    Store(#[from] StoreError),
}

impl From<MigrateError> for crate::ClientError {
    fn from(e: MigrateError) -> Self {
        match e {
            MigrateError::WrongSecret => crate::ClientError::WrongPassphrase,
            MigrateError::NotPythonIdentity(p) => crate::ClientError::NoIdentity(p),
            MigrateError::AlreadyMigrated(p) => crate::ClientError::AlreadyExists(p),
            MigrateError::Store(s) => s.into(),
            e @ MigrateError::Python03(..) => crate::ClientError::InvalidArgument(e.to_string()),
            other => crate::ClientError::Store(StoreError::Corrupt(other.to_string())),
        }
    }
}

/// What a migration carried over.
#[derive(Debug, Clone, PartialEq)]
pub struct Migrated {
    /// Which reference made the folder.
    pub from: Generation,
    /// The identity folder (now holding `retalk.db`).
    pub dir: PathBuf,
    /// Where the Python files went.
    pub backup: PathBuf,
    /// The user id (unchanged).
    pub user_id: crate::UserId,
    /// The self-chosen name.
    pub name: String,
    /// The saved relay URL, if any.
    pub relay_url: Option<String>,
    /// Olm sessions carried over.
    pub sessions: usize,
    /// Saved peers carried over.
    pub peers: usize,
    /// Unacknowledged messages carried over.
    pub outbox: usize,
    /// Processed-message hashes carried over.
    pub processed: usize,
    /// Saved messages carried over (0.3.x).
    pub history: usize,
    /// Blocked senders carried over (0.3.x).
    pub blocked: usize,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> MigrateError + '_ {
    move |e| MigrateError::Io(path.to_path_buf(), e)
}

/// Whether `dir` holds this project's store (complete).
fn has_our_store(dir: &Path) -> bool {
    let path = dir.join(store::DB_FILE);
    path.is_file()
        && rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()
            .and_then(|c| {
                c.query_row("SELECT v FROM meta WHERE k='format_version'", [], |r| {
                    r.get::<_, String>(0)
                })
                .ok()
            })
            .is_some()
}

/// Which migration made our store in `dir`, if one did.
fn was_migrated(dir: &Path) -> Option<Generation> {
    let from = rusqlite::Connection::open_with_flags(
        dir.join(store::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()
    .and_then(|c| {
        c.query_row("SELECT v FROM meta WHERE k=?1", [MIGRATED_FROM_KEY], |r| {
            r.get::<_, String>(0)
        })
        .optional()
        .ok()
        .flatten()
    })?;
    Some(if from == MIGRATED_FROM_03 {
        Generation::V03
    } else {
        Generation::V001
    })
}

/// Whether `dir` holds a Python identity that has not been migrated.
pub fn needs_migration(dir: &Path) -> bool {
    !has_our_store(dir) && dir.join(python001::STORE_FILE).is_file()
}

/// Which reference made the unmigrated Python identity in `dir`, if it
/// holds one. Never writes.
pub fn pending(dir: &Path) -> Option<Generation> {
    if !needs_migration(dir) {
        return None;
    }
    Some(match python001::layout_03_in(dir) {
        Ok(Some(_)) => Generation::V03,
        _ => Generation::V001,
    })
}

/// What opening an identity calls first: migrates a Python 0.0.1 or 0.3.x
/// identity in `dir` with `secret` (returning what was carried over),
/// finishes a migration that was interrupted after its commit point, and
/// otherwise does nothing. Uses the default Argon2id cost.
pub fn import_if_needed(dir: &Path, secret: &str) -> Result<Option<Migrated>, MigrateError> {
    if has_our_store(dir) {
        if dir.join(python001::STORE_FILE).is_file() {
            if let Some(from) = was_migrated(dir) {
                let _lock = store::lock::lock_blocking(dir).map_err(io(dir))?;
                move_python_files(dir, &backup_dir_for(dir, from)?)?;
            }
        }
        return Ok(None);
    }
    match pending(dir) {
        None => Ok(None),
        Some(Generation::V001) => migrate_python_001(dir, secret, KdfParams::default()).map(Some),
        Some(Generation::V03) => migrate_python_03(dir, secret, KdfParams::default()).map(Some),
    }
}

/// Migrates the Python 0.0.1 identity in `dir`: reads and checks it with
/// `secret` (a wrong one changes nothing), writes `DIR/retalk.db` protected
/// by `secret` through Argon2id with cost `kdf`, and moves the Python files
/// into `DIR/python-0.0.1-backup/`.
pub fn migrate_python_001(
    dir: &Path,
    secret: &str,
    kdf: KdfParams,
) -> Result<Migrated, MigrateError> {
    take_over(
        dir,
        Generation::V001,
        || python001::read(dir, secret),
        |staging, mut py| {
            let sessions = std::mem::take(&mut py.sessions);
            let session_count = write_store(staging, secret, kdf, &py, sessions)?;
            Ok(Migrated {
                from: Generation::V001,
                dir: dir.to_path_buf(),
                backup: PathBuf::new(),
                user_id: py.user_id.clone(),
                name: py.name.clone(),
                relay_url: py.server_url.clone(),
                sessions: session_count,
                peers: py.peers.len(),
                outbox: py.outbox.len(),
                processed: py.processed.len(),
                history: 0,
                blocked: 0,
            })
        },
    )
}

/// Migrates the Python 0.3.x identity in `dir` (see [`python03`]) as
/// [`migrate_python_001`] does, into `DIR/python-0.3-backup/`. The
/// passphrase of the 0.3.x identity (its constant for `--no-passphrase`)
/// becomes the new store's.
pub fn migrate_python_03(
    dir: &Path,
    secret: &str,
    kdf: KdfParams,
) -> Result<Migrated, MigrateError> {
    take_over(
        dir,
        Generation::V03,
        || python03::read(dir, secret),
        |staging, py| write_store_03(staging, secret, kdf, py),
    )
}

/// The crash-safe frame of a migration: `read` reads and checks the Python
/// folder (writing nothing, so a wrong secret leaves it as it was), `write`
/// builds the new store in the staging folder it is given; then the store
/// is moved into place (the commit point) and the Python files into the
/// backup folder.
fn take_over<R>(
    dir: &Path,
    from: Generation,
    read: impl FnOnce() -> Result<R, MigrateError>,
    write: impl FnOnce(&Path, R) -> Result<Migrated, MigrateError>,
) -> Result<Migrated, MigrateError> {
    if has_our_store(dir) {
        return Err(MigrateError::AlreadyMigrated(dir.to_path_buf()));
    }
    // Read and check everything before writing anything, holding the
    // reference's own lock (if it ever made one) so no Python process is in
    // the middle of an operation.
    let python_lock = python001::ReferenceLock::acquire(dir)?;
    let py = read()?;
    let _lock = store::lock::lock_blocking(dir).map_err(io(dir))?;

    let staging = dir.join(STAGING_DIR);
    if staging.exists() {
        // left by an attempt interrupted before its commit point
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    let mut migrated = match write(&staging, py) {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };

    let backup = backup_dir_for(dir, from)?;
    std::fs::create_dir_all(&backup).map_err(io(&backup))?;
    for suffix in ["", "-wal", "-shm"] {
        let from = staging.join(format!("{}{suffix}", store::DB_FILE));
        if from.exists() {
            let to = dir.join(format!("{}{suffix}", store::DB_FILE));
            std::fs::rename(&from, &to).map_err(io(&to))?;
        }
    }
    sync_dir(dir)?;
    // committed: the folder now opens as our store
    drop(python_lock);
    move_python_files(dir, &backup)?;
    std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    sync_dir(dir)?;
    tracing::info!(
        dir = %dir.display(),
        user_id = %migrated.user_id,
        "migrated a {} identity; original kept in {}",
        from.label(),
        backup.display()
    );
    migrated.backup = backup;
    Ok(migrated)
}

/// The backup folder to use: `python-0.0.1-backup` (or `python-0.3-backup`),
/// or `-2`, `-3`, ... when an earlier, different backup is already there
/// (never overwritten).
fn backup_dir_for(dir: &Path, from: Generation) -> Result<PathBuf, MigrateError> {
    let base = from.backup_dir();
    let current = std::fs::read(dir.join(python001::STORE_FILE)).ok();
    for n in 1.. {
        let candidate = if n == 1 {
            dir.join(base)
        } else {
            dir.join(format!("{base}-{n}"))
        };
        let existing = candidate.join(python001::STORE_FILE);
        if !existing.exists() {
            return Ok(candidate);
        }
        if current.is_some() && std::fs::read(&existing).ok() == current {
            return Ok(candidate);
        }
    }
    unreachable!("the loop returns")
}

/// Moves `store.db` and its companions (`-journal`, `-wal`, `-shm`,
/// `.lock`) from `dir` into `backup`.
fn move_python_files(dir: &Path, backup: &Path) -> Result<(), MigrateError> {
    std::fs::create_dir_all(backup).map_err(io(backup))?;
    for suffix in ["", "-journal", "-wal", "-shm", ".lock"] {
        let name = format!("{}{suffix}", python001::STORE_FILE);
        let from = dir.join(&name);
        if from.exists() {
            let to = backup.join(&name);
            std::fs::rename(&from, &to).map_err(io(&to))?;
        }
    }
    sync_dir(backup)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), MigrateError> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The empty store a take-over fills, in `staging`.
fn new_store(
    staging: &Path,
    secret: &str,
    kdf: KdfParams,
    name: &str,
    relay_url: Option<&str>,
) -> Result<Store, MigrateError> {
    let (store, _fresh) = Store::create(
        staging,
        NewIdentity {
            passphrase: secret,
            name,
            relay_url,
            kdf,
        },
    )?;
    Ok(store)
}

/// The sender to record with the reference's processed hashes, which name
/// none. Sessions are never deleted there and every processed hash comes
/// from a message decrypted with the sender's session, so when all sessions
/// are with one peer every hash is that peer's; otherwise the sender is
/// unknown (""). `sessions` is ordered by peer.
fn only_peer(sessions: &[(crate::UserId, vodozemac::olm::Session)]) -> String {
    let mut peers: Vec<&str> = sessions.iter().map(|(p, _)| p.as_str()).collect();
    peers.dedup();
    match peers.as_slice() {
        [one] => (*one).to_owned(),
        _ => String::new(),
    }
}

/// Builds the new store in `staging`; returns how many sessions it holds.
fn write_store(
    staging: &Path,
    secret: &str,
    kdf: KdfParams,
    py: &PythonIdentity,
    py_sessions: Vec<(crate::UserId, vodozemac::olm::Session)>,
) -> Result<usize, MigrateError> {
    let store = new_store(staging, secret, kdf, &py.name, py.server_url.as_deref())?;
    let own_key = py.account.curve25519_key().to_base64();
    let only_peer = only_peer(&py_sessions);
    let pins: std::collections::HashMap<&str, &str> = py
        .peers
        .iter()
        .filter_map(|p| p.pin.as_ref().map(|k| (p.id.as_str(), k.as_str())))
        .collect();
    let mut sessions = 0;
    store.tx(|t| {
        save_common(
            t,
            Generation::V001,
            &py.account,
            &py.user_id,
            py.fallback_ts,
            (&py.outbox, &py.processed, &only_peer),
        )?;
        sessions += save_sessions(t, &own_key, &pins, py_sessions)?;
        for p in &py.peers {
            t.peer_upsert(&PeerRow {
                name: p.name.clone(),
                id: p.id.clone(),
                pin: p.pin.as_ref().map(|k| k.as_str().to_owned()),
                signing_key: None,
            })?;
        }
        Ok::<_, StoreError>(())
    })?;
    drop(store);
    Ok(sessions)
}

/// What every take-over writes: the account and its public keys, the
/// fallback key's age, where the store came from, the outbox and the
/// processed-ciphertext hashes (attributed to `only_peer`, "" = unknown).
fn save_common(
    t: &store::Tx<'_>,
    from: Generation,
    account: &vodozemac::olm::Account,
    user_id: &crate::UserId,
    fallback_ts: Option<f64>,
    (outbox, processed, only_peer): (&[python001::OutboxEntry], &[python001::Processed], &str),
) -> Result<(), StoreError> {
    t.save_account(account)?;
    t.set_meta("identity_key", &account.curve25519_key().to_base64())?;
    t.set_meta("signing_key", &account.ed25519_key().to_base64())?;
    t.set_meta("user_id", user_id.as_str())?;
    if let Some(ts) = fallback_ts {
        t.set_meta("fallback_ts", &ts.to_string())?;
    }
    t.set_meta(MIGRATED_FROM_KEY, from.migrated_from())?;
    t.set_meta("migrated_at", &store::now().to_string())?;
    for row in outbox {
        t.outbox_insert(&OutboxRow {
            id: row.id.clone(),
            peer: row.peer.clone(),
            mtype: row.mtype,
            body: row.body.clone(),
        })?;
    }
    for p in processed {
        t.processed_insert(&p.hash, &p.msg_id, only_peer)?;
    }
    Ok(())
}

/// Saves sessions read from a Python store, in the order given (the last
/// saved becomes the most recently used of its peer); returns how many.
fn save_sessions(
    t: &store::Tx<'_>,
    own_key: &str,
    pins: &std::collections::HashMap<&str, &str>,
    py_sessions: Vec<(crate::UserId, vodozemac::olm::Session)>,
) -> Result<usize, StoreError> {
    let mut n = 0;
    for (peer, session) in py_sessions {
        // The peer's identity key: known from the session itself when the
        // peer started it (an inbound session records the sender's key);
        // otherwise from a pin or verified contact; otherwise not recorded
        // by the reference ("" = unknown; the user id still pins it).
        let theirs = session.session_keys().identity_key.to_base64();
        let peer_key = if theirs != own_key {
            theirs
        } else {
            pins.get(peer.as_str())
                .map(|k| k.to_string())
                .unwrap_or_default()
        };
        t.save_session(
            peer.as_str(),
            &StoredSession {
                session_id: session.session_id(),
                peer_key,
                session,
            },
        )?;
        n += 1;
    }
    Ok(n)
}

/// Builds the new store for a 0.3.x identity in `staging`.
fn write_store_03(
    staging: &Path,
    secret: &str,
    kdf: KdfParams,
    mut py: python03::Python03Identity,
) -> Result<Migrated, MigrateError> {
    let store = new_store(staging, secret, kdf, &py.name, py.server_url.as_deref())?;
    let own_key = py.account.curve25519_key().to_base64();
    let only_peer = only_peer(&py.sessions);
    let pins: std::collections::HashMap<&str, &str> = py
        .contacts
        .iter()
        .filter_map(|c| {
            let key = c.keys.as_ref().map(|(ik, _)| ik).or(c.pin.as_ref());
            key.map(|k| (c.id.as_str(), k.as_str()))
        })
        .collect();
    // Read freshest first within each peer; saved oldest first so the
    // freshest ends up the most recently used.
    let mut py_sessions = std::mem::take(&mut py.sessions);
    py_sessions.reverse();
    let sessions = store.tx(|t| {
        save_common(
            t,
            Generation::V03,
            &py.account,
            &py.user_id,
            py.fallback_ts,
            (&py.outbox, &py.processed, &only_peer),
        )?;
        if let Some(ts) = py.created_at {
            t.set_meta("created", &ts.to_string())?;
        }
        if py.no_passphrase {
            t.set_meta("setting:no_passphrase", "1")?;
        }
        if let Some(key) = &py.api_key {
            t.set_meta("setting:api_key", key)?;
        }
        let n = save_sessions(t, &own_key, &pins, py_sessions)?;
        for c in &py.contacts {
            t.peer_upsert(&PeerRow {
                // a contact saved by id alone is named by its id, as `add ID`
                // does here
                name: c.name.clone().unwrap_or_else(|| c.id.as_str().to_owned()),
                id: c.id.clone(),
                pin: c.keys.as_ref().map(|(ik, _)| ik.clone()).or(c.pin.clone()),
                signing_key: c.keys.as_ref().map(|(_, sk)| sk.clone()),
            })?;
        }
        for b in &py.blocked {
            t.block(b)?;
        }
        for c in &py.contact_inbox {
            t.contact_inbox_put(c)?;
        }
        for m in &py.history {
            t.history_insert(&store::HistoryRow {
                msg_id: m.msg_id.clone(),
                peer: m.peer.clone(),
                direction: m.direction.clone(),
                name: m.name.clone(),
                text: m.text.clone(),
                ts: m.ts,
                group: m.group.clone(),
            })?;
        }
        // rooms: the roster without this identity (0.3.x keeps it in
        // adopted rooms), active (they were adopted already)
        for g in &py.groups {
            let mut name = g.name.clone();
            let mut n = 1;
            while t.group_by_ref(&name)?.is_some_and(|o| o.gid != g.gid) {
                n += 1;
                name = format!("{}-{n}", g.name);
            }
            t.group_save(&store::GroupRow {
                gid: g.gid.clone(),
                name,
                members: g
                    .members
                    .iter()
                    .filter(|m| **m != py.user_id)
                    .cloned()
                    .collect(),
                removed: Default::default(),
                seen: Default::default(),
                state: "active".into(),
                inviter: None,
            })?;
        }
        for (gid, name) in &py.left_groups {
            t.left_insert(gid, name)?;
        }
        // invite codes: 0.3.x keeps them in the clear; here only their hash
        for i in &py.invites {
            use sha2::Digest;
            t.invite_insert(&store::InviteRow {
                hash: hex::encode(sha2::Sha256::digest(i.code.as_bytes())),
                hint: i.code.chars().take(6).collect(),
                kind: i.kind.clone(),
                peer: i.peer.clone(),
                created: i.created,
                expires: i.expires,
                uses: i.uses,
                // (0.3.x records redeemers as text: only ids are kept)
                used_by: i
                    .used_by
                    .iter()
                    .filter_map(|u| crate::UserId::parse(u, "used_by").ok())
                    .collect(),
                revoked: i.revoked,
            })?;
        }
        Ok::<_, StoreError>(n)
    })?;
    drop(store);
    Ok(Migrated {
        from: Generation::V03,
        dir: py.dir.clone(),
        backup: PathBuf::new(),
        user_id: py.user_id.clone(),
        name: py.name.clone(),
        relay_url: py.server_url.clone(),
        sessions,
        peers: py.contacts.len(),
        outbox: py.outbox.len(),
        processed: py.processed.len(),
        history: py.history.len(),
        blocked: py.blocked.len(),
    })
}
