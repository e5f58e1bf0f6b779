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

pub mod crypto;
pub mod lock;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use vodozemac::olm::{Account, AccountPickle, Session, SessionPickle};

pub use crypto::{KdfParams, StoreKeys};
pub use lock::StoreLock;

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
        StoreError::Sqlite(e.to_string())
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e.to_string())
    }
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
            set_private_mode(dir, 0o700)?;
        }
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
        tx.execute_batch(schema::CREATE)?;
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
        if version != schema::FORMAT_VERSION {
            return Err(StoreError::Corrupt(format!(
                "format version {version}, this program reads {}",
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
}

/// A session as stored.
pub struct StoredSession {
    /// vodozemac's session id.
    pub session_id: String,
    /// The peer's Curve25519 identity key (checked against its id).
    pub peer_key: String,
    /// The ratchet.
    pub session: Session,
}

/// A sent message awaiting its acknowledgement.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// The message id inside the envelope.
    pub id: String,
    /// Recipient id.
    pub peer: String,
    /// Olm message type.
    pub mtype: u8,
    /// Padded base64 ciphertext, exactly as first sent.
    pub body: String,
}

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

/// An acknowledgement owed to a sender.
#[derive(Debug, Clone)]
pub struct AckRow {
    /// Local order.
    pub seq: i64,
    /// Who to acknowledge.
    pub peer: String,
    /// The acknowledged message id.
    pub msg_id: String,
    /// The encrypted acknowledgement, once made.
    pub wire: Option<(u8, String)>,
}

/// A decrypted message not yet returned.
#[derive(Debug, Clone)]
pub struct DeliveredRow {
    /// Sender id.
    pub peer: String,
    /// Message id.
    pub msg_id: String,
    /// Sender's self-chosen name.
    pub name: String,
    /// Message text.
    pub text: String,
}

/// Decrypted messages and problems (sender id, reason) not yet returned.
pub type Outcomes = (Vec<DeliveredRow>, Vec<(String, String)>);

/// A saved peer.
#[derive(Debug, Clone)]
pub struct PeerRow {
    /// Local name.
    pub name: String,
    /// Peer id.
    pub id: String,
    /// Pinned identity key.
    pub pin: Option<String>,
}

const DELIVERED_PURPOSE: &str = "delivered-message";

/// Most sessions kept with one peer. Two is the norm after a crossed
/// initiation; more means fresh starts whose predecessors are dead.
pub const MAX_SESSIONS_PER_PEER: i64 = 8;

/// One transaction on the store, with typed accessors.
pub struct Tx<'a> {
    conn: &'a Connection,
    keys: &'a StoreKeys,
}

impl Tx<'_> {
    /// A `meta` value.
    pub fn meta(&self, k: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT v FROM meta WHERE k=?1", [k], |r| r.get(0))
            .optional()?)
    }

    /// Sets a `meta` value.
    pub fn set_meta(&self, k: &str, v: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
            params![k, v],
        )?;
        Ok(())
    }

    /// The Olm account.
    pub fn account(&self) -> Result<Account, StoreError> {
        let blob = self
            .meta("account")?
            .ok_or_else(|| StoreError::Corrupt("no account".into()))?;
        let pickle = AccountPickle::from_encrypted(&blob, self.keys.pickle_key())
            .map_err(|_| StoreError::Corrupt("the account does not decrypt".into()))?;
        Ok(Account::from_pickle(pickle))
    }

    /// Saves the Olm account.
    pub fn save_account(&self, account: &Account) -> Result<(), StoreError> {
        self.set_meta("account", &account.pickle().encrypt(self.keys.pickle_key()))
    }

    /// Every session with `peer`, most recently used first. A row that no
    /// longer decrypts is skipped (and reported in the log) rather than
    /// making the peer unreachable.
    pub fn sessions(&self, peer: &str) -> Result<Vec<StoredSession>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT session_id, peer_key, pickle FROM sessions WHERE peer=?1 \
             ORDER BY last_used DESC, created DESC",
        )?;
        let rows = stmt
            .query_map([peer], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (session_id, peer_key, pickle) in rows {
            match SessionPickle::from_encrypted(&pickle, self.keys.pickle_key()) {
                Ok(p) => out.push(StoredSession {
                    session_id,
                    peer_key,
                    session: Session::from_pickle(p),
                }),
                Err(_) => tracing::warn!(peer, "skipping a stored session that does not decrypt"),
            }
        }
        Ok(out)
    }

    /// Inserts or updates a session and marks it the most recently used.
    pub fn save_session(&self, peer: &str, s: &StoredSession) -> Result<(), StoreError> {
        let pickle = s.session.pickle().encrypt(self.keys.pickle_key());
        self.conn.execute(
            "INSERT INTO sessions(peer, session_id, peer_key, pickle, created, last_used) \
             VALUES(?1, ?2, ?3, ?4, ?5, (SELECT COALESCE(MAX(last_used), 0) + 1 FROM sessions)) \
             ON CONFLICT(peer, session_id) DO UPDATE SET pickle=excluded.pickle, \
             last_used=excluded.last_used",
            params![peer, s.session_id, s.peer_key, pickle, now()],
        )?;
        // Bound the sessions kept per peer (decryption tries each): the
        // least recently used beyond the limit are long dead.
        self.conn.execute(
            "DELETE FROM sessions WHERE peer=?1 AND session_id NOT IN \
             (SELECT session_id FROM sessions WHERE peer=?1 ORDER BY last_used DESC LIMIT ?2)",
            params![peer, MAX_SESSIONS_PER_PEER],
        )?;
        Ok(())
    }

    /// Forgets every session with `peer`.
    pub fn delete_sessions(&self, peer: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM sessions WHERE peer=?1", [peer])?;
        Ok(())
    }

    /// How many sessions are held with `peer`.
    pub fn session_count(&self, peer: &str) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM sessions WHERE peer=?1", [peer], |r| {
                r.get::<_, i64>(0)
            })? as usize)
    }

    /// Records a sent message until it is acknowledged.
    pub fn outbox_insert(&self, row: &OutboxRow) -> Result<(), StoreError> {
        let t = now();
        self.conn.execute(
            "INSERT OR REPLACE INTO outbox(id, peer, mtype, body, created, last_sent) \
             VALUES(?1, ?2, ?3, ?4, ?5, ?5)",
            params![row.id, row.peer, row.mtype, row.body, t],
        )?;
        Ok(())
    }

    /// Messages last sent at or before `cutoff`, oldest first.
    pub fn outbox_due(&self, cutoff: f64) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, peer, mtype, body FROM outbox WHERE last_sent<=?1 ORDER BY created, id",
        )?;
        let rows = stmt
            .query_map([cutoff], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    peer: r.get(1)?,
                    mtype: r.get(2)?,
                    body: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Notes that a message was (re-)sent now.
    pub fn outbox_sent(&self, id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET last_sent=?2 WHERE id=?1",
            params![id, now()],
        )?;
        Ok(())
    }

    /// Drops a message from the outbox; with `peer`, only if it was sent to
    /// that peer (an acknowledgement counts only from the recipient).
    pub fn outbox_delete(&self, id: &str, peer: Option<&str>) -> Result<bool, StoreError> {
        let n = match peer {
            Some(p) => self
                .conn
                .execute("DELETE FROM outbox WHERE id=?1 AND peer=?2", [id, p])?,
            None => self.conn.execute("DELETE FROM outbox WHERE id=?1", [id])?,
        };
        Ok(n > 0)
    }

    /// Messages awaiting acknowledgement.
    pub fn outbox_len(&self) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))?
            as usize)
    }

    /// The message id recorded for a body hash, if that body was processed.
    pub fn processed(&self, hash: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT msg_id, peer FROM processed WHERE hash=?1",
                [hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Whether a message with this id from this peer was processed before.
    pub fn processed_id(&self, peer: &str, msg_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM processed WHERE peer=?1 AND msg_id=?2 LIMIT 1",
                [peer, msg_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Forgets processed bodies recorded before `cutoff`; returns how many.
    pub fn processed_prune(&self, cutoff: f64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM processed WHERE ts < ?1", [cutoff])?)
    }

    /// Records a processed body.
    pub fn processed_insert(&self, hash: &str, msg_id: &str, peer: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO processed(hash, msg_id, peer, ts) VALUES(?1, ?2, ?3, ?4)",
            params![hash, msg_id, peer, now()],
        )?;
        Ok(())
    }

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
        peer: &str,
        msg_id: &str,
        name: &str,
        text: &str,
    ) -> Result<(), StoreError> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({"name": name, "text": text}))
                .expect("JSON values always serialize"),
        );
        let sealed = self.keys.seal(DELIVERED_PURPOSE, &plain);
        self.conn.execute(
            "INSERT OR IGNORE INTO delivered(peer, msg_id, sealed) VALUES(?1, ?2, ?3)",
            params![peer, msg_id, sealed],
        )?;
        Ok(())
    }

    /// Keeps a delivery problem until it is returned.
    pub fn problem_insert(&self, peer: &str, reason: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO problems(peer, reason) VALUES(?1, ?2)",
            [peer, reason],
        )?;
        Ok(())
    }

    /// Removes and returns everything waiting to be returned, in order.
    pub fn take_outcomes(&self) -> Result<Outcomes, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT peer, msg_id, sealed FROM delivered ORDER BY seq")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
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
                tracing::warn!(peer, "dropping a stored message that does not decrypt");
                continue;
            };
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
            delivered.push(DeliveredRow {
                peer,
                msg_id,
                name: field("name"),
                text: field("text"),
            });
        }
        let mut stmt = self
            .conn
            .prepare("SELECT peer, reason FROM problems ORDER BY seq")?;
        let problems = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        self.conn
            .execute_batch("DELETE FROM delivered; DELETE FROM problems;")?;
        Ok((delivered, problems))
    }

    /// Owes `peer` an acknowledgement of `msg_id`.
    pub fn ack_insert(&self, peer: &str, msg_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO pending_acks(peer, msg_id) VALUES(?1, ?2)",
            [peer, msg_id],
        )?;
        Ok(())
    }

    /// Acknowledgements owed, oldest first.
    pub fn acks(&self) -> Result<Vec<AckRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, peer, msg_id, mtype, body FROM pending_acks ORDER BY seq")?;
        let rows = stmt
            .query_map([], |r| {
                let mtype: Option<u8> = r.get(3)?;
                let body: Option<String> = r.get(4)?;
                Ok(AckRow {
                    seq: r.get(0)?,
                    peer: r.get(1)?,
                    msg_id: r.get(2)?,
                    wire: mtype.zip(body),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Stores the ciphertext made for an acknowledgement.
    pub fn ack_set_wire(&self, seq: i64, mtype: u8, body: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE pending_acks SET mtype=?2, body=?3 WHERE seq=?1",
            params![seq, mtype, body],
        )?;
        Ok(())
    }

    /// An acknowledgement was delivered (or given up).
    pub fn ack_delete(&self, seq: i64) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM pending_acks WHERE seq=?1", [seq])?;
        Ok(())
    }

    /// Saves (or replaces) a peer name.
    pub fn peer_upsert(&self, p: &PeerRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO peers(name, id, pin) VALUES(?1, ?2, ?3) \
             ON CONFLICT(name) DO UPDATE SET id=excluded.id, pin=excluded.pin",
            params![p.name, p.id, p.pin],
        )?;
        Ok(())
    }

    /// Every saved peer, by name.
    pub fn peers(&self) -> Result<Vec<PeerRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, id, pin FROM peers ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PeerRow {
                    name: r.get(0)?,
                    id: r.get(1)?,
                    pin: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The peer saved under `name`.
    pub fn peer_by_name(&self, name: &str) -> Result<Option<PeerRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, id, pin FROM peers WHERE name=?1",
                [name],
                |r| {
                    Ok(PeerRow {
                        name: r.get(0)?,
                        id: r.get(1)?,
                        pin: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every saved name and pin for `id` (a peer may be saved under several).
    pub fn peers_for_id(&self, id: &str) -> Result<Vec<PeerRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, id, pin FROM peers WHERE id=?1 ORDER BY name")?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(PeerRow {
                    name: r.get(0)?,
                    id: r.get(1)?,
                    pin: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The identity keys of the sessions held with `peer` (for checking a
    /// new pin against what a handshake already verified). Sessions whose
    /// peer key is unknown (`""`: imported from a Python 0.0.1 store, which
    /// does not record it for sessions it started) are left out.
    pub fn session_keys(&self, peer: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT peer_key FROM sessions WHERE peer=?1 AND peer_key != ''")?;
        let rows = stmt
            .query_map([peer], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
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
