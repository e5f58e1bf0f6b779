//! The encrypted local store of one identity: a folder (mode 0700) holding
//! `retalk.db` (SQLite, mode 0600) and `retalk.lock`.
//!
//! Secrets (the Olm account and sessions) are vodozemac pickles encrypted
//! with a key derived from the passphrase by Argon2id ([`crypto`]);
//! decrypted messages waiting to be returned are sealed with ChaCha20-Poly1305.
//! Public data (ids, names, relay URL, Olm ciphertext) is stored as is.
//!
//! Every read and write goes through [`Store::tx`], one SQLite transaction,
//! so each step of an operation either happens completely or not at all;
//! operations themselves are serialised across processes by [`lock`].
//!
//! The file is named `retalk.db`, not `store.db`: a folder made by the Python
//! reference holds a `store.db` with another layout (see the wire-protocol
//! spec), and the two must never be confused.

mod acks;
mod blocked;
mod contact_inbox;
pub mod crypto;
mod groups;
mod history;
mod inbox;
mod invites;
mod left_groups;
pub mod lock;
mod meta;
mod outbox;
mod peers;
mod processed;
pub mod schema;
mod sessions;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension};
use vodozemac::olm::Account;

use crate::proto::UserId;

pub use crypto::{KdfParams, StoreKeys};
pub use lock::StoreLock;

pub use contact_inbox::StagedContact;
pub use groups::GroupRow;
pub use history::HistoryRow;
pub use inbox::InboxRow;
pub use invites::InviteRow;
pub use outbox::OutboxRow;
pub use peers::PeerRow;
pub use sessions::StoredSession;

/// The SQLite file in an identity folder.
pub const DB_FILE: &str = "retalk.db";
/// The lock file in an identity folder.
pub const LOCK_FILE: &str = "retalk.lock";
/// The Python 0.0.1 reference's store file; a folder holding one is an
/// identity too (to be imported), never overwritten.
pub const LEGACY_DB_FILE: &str = "store.db";

/// Why the store could not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No identity in this folder.
    #[error("no retalk identity in {0}")]
    NoIdentity(PathBuf),
    /// An identity already lives in this folder.
    #[error("an identity already exists in {0}")]
    AlreadyExists(PathBuf),
    /// The passphrase does not open this store; nothing was changed.
    #[error("wrong passphrase for this identity (nothing was changed)")]
    WrongPassphrase,
    /// A file-system error.
    #[error("identity store: {0}")]
    Io(String),
    /// An SQLite error.
    #[error("identity store database: {0}")]
    Sqlite(String),
    /// The store's contents are not what this version writes.
    #[error("identity store is damaged or from another version: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            // a column that does not hold what this version writes (an id
            // that is not one, a roster that is not JSON): damage, not a
            // database failure worth retrying
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..) => StoreError::Corrupt(e.to_string()),
            e => StoreError::Sqlite(e.to_string()),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// Reads column `idx` as a user id. Only checked ids are ever written, so
/// anything else is damage, reported as such rather than carried on as text.
fn user_id(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<UserId> {
    let text: String = row.get(idx)?;
    UserId::try_from(text).map_err(|e| damaged(idx, e))
}

/// Reads column `idx` as an optional user id (see [`user_id`]).
fn user_id_opt(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<UserId>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|t| UserId::try_from(t).map_err(|e| damaged(idx, e)))
        .transpose()
}

/// A text column that does not hold what this version writes (reported as
/// [`StoreError::Corrupt`] by the `From` conversion).
fn damaged(idx: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
}

/// Reads column `idx` as JSON text of a `T` (rosters and id lists); text
/// that does not parse is damage, never silently an empty value.
fn json_col<T: serde::de::DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| damaged(idx, e))
}

/// Seconds since the epoch, as a float (what the reference stores).
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// An open identity store.
pub struct Store {
    dir: PathBuf,
    conn: Mutex<Connection>,
    keys: StoreKeys,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

/// What a new identity starts with.
pub struct NewIdentity<'a> {
    /// Passphrase the secrets are encrypted with.
    pub passphrase: &'a str,
    /// Self-chosen display name sent inside messages.
    pub name: &'a str,
    /// Relay URL saved for later sessions.
    pub relay_url: Option<&'a str>,
    /// Key-derivation cost.
    pub kdf: KdfParams,
}

fn set_private_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    // WAL: one fsync per commit, and readers (`exists`, `open`) never block
    // behind a writer. FULL: a committed step survives a power cut too,
    // since the relay has already forgotten what we committed.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(conn)
}

fn has_identity(path: &Path) -> bool {
    if !path.is_file() {
        return false;
    }
    let Ok(conn) = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    conn.query_row("SELECT v FROM meta WHERE k='format_version'", [], |r| {
        r.get::<_, String>(0)
    })
    .is_ok()
}

impl Store {
    /// Whether `dir` holds an identity (of this format or the reference's).
    pub fn exists(dir: &Path) -> bool {
        has_identity(&dir.join(DB_FILE)) || dir.join(LEGACY_DB_FILE).is_file()
    }

    /// A public setting recorded with the identity in `dir`, read without
    /// the passphrase (the `meta` table is not encrypted): `setting:KEY` of
    /// this store, else `KEY` of a Python 0.3.x store not yet taken over
    /// (where 0.3.x keeps `no_passphrase` and `api_key`). `None` when absent
    /// or unreadable. Never writes.
    pub fn public_setting(dir: &Path, key: &str) -> Option<String> {
        let read = |file: &str, k: &str| -> Option<String> {
            let path = dir.join(file);
            if !path.is_file() {
                return None;
            }
            let conn = Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .ok()?;
            conn.query_row("SELECT v FROM meta WHERE k=?1", [k], |r| {
                r.get::<_, String>(0)
            })
            .ok()
        };
        if has_identity(&dir.join(DB_FILE)) {
            read(DB_FILE, &format!("setting:{key}"))
        } else {
            read(LEGACY_DB_FILE, key)
        }
    }

    /// Creates a store with a fresh Olm account. Blocking (Argon2id, file
    /// locking): run it on a blocking thread.
    pub fn create(dir: &Path, new: NewIdentity<'_>) -> Result<(Store, Account), StoreError> {
        if !dir.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(dir)?;
        }
        // Also a folder that existed before (made by mkdir with the usual
        // 0755): the store is private whoever made its folder.
        set_private_mode(dir, 0o700)?;
        let _lock = lock::lock_blocking(dir)?;
        if Self::exists(dir) {
            return Err(StoreError::AlreadyExists(dir.to_owned()));
        }
        let path = dir.join(DB_FILE);
        // A file without `format_version` is the remains of an interrupted
        // create (everything is written in one transaction): start over.
        for suffix in ["", "-wal", "-shm"] {
            let p = dir.join(format!("{DB_FILE}{suffix}"));
            if p.exists() {
                std::fs::remove_file(&p)?;
            }
        }
        {
            // Create the file ourselves so it is 0600 from the first byte;
            // SQLite gives its -wal and -shm files the same mode.
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            o.open(&path)?;
        }
        let salt: [u8; crypto::SALT_LEN] = rand::random();
        let keys = StoreKeys::derive(new.passphrase, &salt, new.kdf)?;
        let account = Account::new();
        let mut conn = connect(&path)?;
        let tx = conn.transaction()?;
        schema::migrate(&tx, 0)?;
        {
            let t = Tx {
                conn: &tx,
                keys: &keys,
            };
            let ik = account.curve25519_key().to_base64();
            let sk = account.ed25519_key().to_base64();
            let uid = crate::proto::fingerprint(&ik, &sk);
            for (k, v) in [
                ("kdf", "argon2id".to_owned()),
                ("kdf_m_kib", new.kdf.m_kib.to_string()),
                ("kdf_t", new.kdf.t.to_string()),
                ("kdf_p", new.kdf.p.to_string()),
                ("kdf_salt", hex::encode(salt)),
                ("check", keys.check_value()),
                ("identity_key", ik),
                ("signing_key", sk),
                ("user_id", uid),
                ("name", new.name.to_owned()),
                ("created", now().to_string()),
            ] {
                t.set_meta(k, &v)?;
            }
            if let Some(url) = new.relay_url {
                t.set_meta("relay_url", url)?;
            }
            t.save_account(&account)?;
            // Written last: its presence marks a complete store.
            t.set_meta("format_version", &schema::FORMAT_VERSION.to_string())?;
        }
        tx.commit()?;
        Ok((
            Store {
                dir: dir.to_owned(),
                conn: Mutex::new(conn),
                keys,
            },
            account,
        ))
    }

    /// Opens a store, checking the passphrase before anything else.
    /// Blocking (Argon2id): run it on a blocking thread.
    pub fn open(dir: &Path, passphrase: &str) -> Result<Store, StoreError> {
        let path = dir.join(DB_FILE);
        if !has_identity(&path) {
            return Err(StoreError::NoIdentity(dir.to_owned()));
        }
        let conn = connect(&path)?;
        let meta = |k: &str| -> Result<String, StoreError> {
            conn.query_row("SELECT v FROM meta WHERE k=?1", [k], |r| r.get(0))
                .optional()?
                .ok_or_else(|| StoreError::Corrupt(format!("missing {k}")))
        };
        let version: u32 = meta("format_version")?
            .parse()
            .map_err(|_| StoreError::Corrupt("format_version".into()))?;
        if version > schema::FORMAT_VERSION || version == 0 {
            return Err(StoreError::Corrupt(format!(
                "format version {version}, this program reads 1 to {} \
                 (a newer retalk made it: upgrade retalk)",
                schema::FORMAT_VERSION
            )));
        }
        if meta("kdf")? != "argon2id" {
            return Err(StoreError::Corrupt("unknown key derivation".into()));
        }
        let num = |k: &str| -> Result<u32, StoreError> {
            meta(k)?
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("{k} is not a number")))
        };
        let params = KdfParams {
            m_kib: num("kdf_m_kib")?,
            t: num("kdf_t")?,
            p: num("kdf_p")?,
        };
        let salt = hex::decode(meta("kdf_salt")?)
            .map_err(|_| StoreError::Corrupt("kdf_salt is not hex".into()))?;
        let check = meta("check")?;
        let keys = StoreKeys::derive(passphrase, &salt, params)?;
        if !keys.verify_check(&check) {
            return Err(StoreError::WrongPassphrase);
        }
        // Upgrade an older store only once the passphrase is known to be
        // right (a wrong secret changes nothing), in one IMMEDIATE
        // transaction that re-reads the version, so two processes never
        // both migrate.
        let mut conn = conn;
        if version < schema::FORMAT_VERSION {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now_version: u32 = tx
                .query_row("SELECT v FROM meta WHERE k='format_version'", [], |r| {
                    r.get::<_, String>(0)
                })?
                .parse()
                .map_err(|_| StoreError::Corrupt("format_version".into()))?;
            if now_version < schema::FORMAT_VERSION {
                schema::migrate(&tx, now_version)?;
                tx.execute(
                    "UPDATE meta SET v=?1 WHERE k='format_version'",
                    [schema::FORMAT_VERSION.to_string()],
                )?;
                tracing::info!(
                    from = now_version,
                    to = schema::FORMAT_VERSION,
                    "upgraded the identity store"
                );
            }
            tx.commit()?;
        }
        Ok(Store {
            dir: dir.to_owned(),
            conn: Mutex::new(conn),
            keys,
        })
    }

    /// The identity folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` in one SQLite transaction, committed if `f` succeeds.
    /// Never hold the result of this across an `.await` that needs the
    /// store: the connection is behind a plain mutex.
    pub fn tx<R, E>(&self, f: impl FnOnce(&Tx<'_>) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&Tx {
            conn: &tx,
            keys: &self.keys,
        })?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// Runs `f` in a read transaction: deferred (it takes no write lock,
    /// so it never waits for or blocks a writer in another process) and
    /// `query_only`, so a write inside it fails instead of happening. For
    /// the paths that only look (listing contacts, history, the blocklist).
    pub fn read<R, E>(&self, f: impl FnOnce(&Tx<'_>) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        conn.pragma_update(None, "query_only", true)
            .map_err(StoreError::from)?;
        let out = (|| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)
                .map_err(StoreError::from)?;
            let out = f(&Tx {
                conn: &tx,
                keys: &self.keys,
            })?;
            // nothing to commit; ending it releases the read snapshot
            tx.rollback().map_err(StoreError::from)?;
            Ok(out)
        })();
        conn.pragma_update(None, "query_only", false)
            .map_err(StoreError::from)?;
        out
    }
}

/// One transaction on the store, with typed accessors.
pub struct Tx<'a> {
    conn: &'a Connection,
    keys: &'a StoreKeys,
}

#[cfg(test)]
mod tests {
    use super::*;
    use vodozemac::olm::SessionConfig;

    fn cheap_store(dir: &Path) -> Store {
        let kdf = KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        Store::create(
            dir,
            NewIdentity {
                passphrase: "pw",
                name: "n",
                relay_url: None,
                kdf,
            },
        )
        .unwrap()
        .0
    }

    #[test]
    fn a_read_transaction_reads_and_refuses_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = cheap_store(&tmp.path().join("s"));
        store
            .tx(|t| t.block(&UserId::parse("f1041c25c87351d8550b31cc6b13ab04", "id").unwrap()))
            .unwrap();
        let seen = store.read(|t| t.blocked()).unwrap();
        assert_eq!(seen, ["f1041c25c87351d8550b31cc6b13ab04"]);
        let err = store
            .read(|t| t.block(&UserId::parse("00112233445566778899aabbccddeeff", "id").unwrap()));
        assert!(err.is_err(), "a write inside read() must fail");
        assert_eq!(store.read(|t| t.blocked()).unwrap().len(), 1);
        // and writing transactions still work afterwards
        store
            .tx(|t| t.block(&UserId::parse("00112233445566778899aabbccddeeff", "id").unwrap()))
            .unwrap();
        assert_eq!(store.read(|t| t.blocked()).unwrap().len(), 2);
    }

    #[test]
    fn ids_and_rosters_that_do_not_parse_are_damage_not_silently_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let store = cheap_store(&tmp.path().join("s"));
        let good = UserId::parse("f1041c25c87351d8550b31cc6b13ab04", "id").unwrap();
        store
            .tx(|t| {
                t.peer_upsert(&PeerRow {
                    name: "bob".into(),
                    id: good.clone(),
                    pin: None,
                    signing_key: None,
                })
            })
            .unwrap();
        let peers = store.read(|t| t.peers()).unwrap();
        assert_eq!(peers[0].id, good, "a checked id reads back typed");
        // a row no version of ours writes: an id that is not one
        store
            .tx(|t| {
                t.conn
                    .execute("INSERT INTO peers(name, id) VALUES('eve', 'not an id')", [])?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let err = store.read(|t| t.peers()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        // a roster that is not JSON is damage too, never an empty room
        store
            .tx(|t| {
                t.group_save(&GroupRow {
                    gid: "00112233445566778899aabbccddeeff".into(),
                    name: "room".into(),
                    members: [good.clone()].into(),
                    removed: Default::default(),
                    seen: [(good.clone(), [good.clone()].into())].into(),
                    state: "active".into(),
                    inviter: Some(good.clone()),
                })
            })
            .unwrap();
        let g = store.read(|t| t.groups()).unwrap();
        assert_eq!(
            g[0].seen[&good].len(),
            1,
            "a roster map keyed by ids round-trips"
        );
        store
            .tx(|t| {
                t.conn.execute("UPDATE groups SET members='[\"x\"'", [])?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let err = store.read(|t| t.groups()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn sessions_per_peer_are_bounded_keeping_the_most_recent() {
        let tmp = tempfile::tempdir().unwrap();
        let store = cheap_store(&tmp.path().join("s"));
        let me = Account::new();
        let mut them = Account::new();
        them.generate_one_time_keys(20);
        let keys: Vec<_> = them.one_time_keys().into_values().collect();
        let mut ids = Vec::new();
        for otk in keys.iter().take(12) {
            let session = me
                .create_outbound_session(SessionConfig::version_1(), them.curve25519_key(), *otk)
                .unwrap();
            ids.push(session.session_id());
            let s = StoredSession {
                session_id: session.session_id(),
                peer_key: them.curve25519_key().to_base64(),
                session,
            };
            store.tx(|t| t.save_session("peer", &s)).unwrap();
        }
        let kept: Vec<String> = store
            .tx(|t| t.sessions("peer"))
            .unwrap()
            .into_iter()
            .map(|s| s.session_id)
            .collect();
        let newest: Vec<String> = ids.iter().rev().take(8).cloned().collect();
        assert_eq!(kept, newest, "most recently used first, oldest dropped");
    }

    #[test]
    fn wrong_passphrase_is_refused_before_anything_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        drop(cheap_store(&dir));
        assert_eq!(
            Store::open(&dir, "nope").unwrap_err(),
            StoreError::WrongPassphrase
        );
        let store = Store::open(&dir, "pw").unwrap();
        assert!(store.tx(|t| t.account()).is_ok());
    }
}
