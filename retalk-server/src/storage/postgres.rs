//! The PostgreSQL backend: any number of relay replicas on one database.
//!
//! Requests are run in groups ([`batch`]): whatever is queued when a
//! connection is free goes into one transaction on a pooled connection
//! (deadpool-postgres, prepared statements cached per connection), with
//! one row-set statement per step for all its sends, and every request is
//! answered only after that `COMMIT` returns, so a 200 is as durable as the
//! server's `synchronous_commit` makes it (on by default: flushed WAL).
//! How the contract of [`super`] holds across replicas:
//!
//! * nonces: `INSERT ... ON CONFLICT (nonce) DO NOTHING` into
//!   `retalk_nonces` in the request's transaction; no row inserted means
//!   another request (on any replica) has it: a replay, which changes
//!   nothing;
//! * one-time keys: `DELETE ... WHERE id = (SELECT ... FOR UPDATE SKIP
//!   LOCKED) RETURNING`: concurrent claims each take a different row;
//! * mailboxes: every send and every deleting read first locks the
//!   recipient's row in `retalk_mailboxes` (an upsert), which holds the
//!   totals the caps are checked against; so sends and reads of one mailbox
//!   are serialised across replicas and the caps hold;
//! * wake-ups: a send commits a `pg_notify('retalk_mail', recipient)`; each
//!   replica LISTENs on a dedicated connection (reconnecting, and waking
//!   every local waiter to look again, after a drop). Notifications are
//!   hints: waiting reads also look again every [`RECHECK`] (every
//!   [`POLL`] where the engine has no LISTEN/NOTIFY, e.g. CockroachDB).
//!
//! The SQL uses explicit casts and no advisory locks, so that engines
//! speaking the PostgreSQL protocol can run it where they support the
//! statement; the migration lock is a row lock (`SELECT ... FOR UPDATE` on
//! `retalk_migration_lock`) inside the migration's transaction.

mod batch;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use futures_util::StreamExt;
use retalk_proto::tools::{ClaimedKey, KeyCounts, Mail, Nack, PublicKeys, PublishKeys, Published};
use retalk_proto::{UserId, WireError};
use tokio_postgres::{AsyncMessage, NoTls};

use super::Backend;
use crate::admin::KEYS_CHANNEL;
use crate::admission::ApiKeys;
use crate::metrics::Health;
use crate::store::{NONCE_MEMORY_SECS, READ_MAX_BYTES, READ_MAX_MESSAGES};
use crate::waiters::{Shutdown, Waiters};
use crate::writer::{unavailable, Job, Limits, Op, Outcome, WaitPlan};

/// How often a waiting read looks again when notifications work.
pub const RECHECK: Duration = Duration::from_secs(2);
/// How often it looks when the engine has no LISTEN/NOTIFY.
pub const POLL: Duration = Duration::from_millis(250);
/// Connections per replica.
pub const POOL_SIZE: usize = 16;
/// The notification channel.
const CHANNEL: &str = "retalk_mail";
/// How often old nonces, refusals and expired mail are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(30);
/// How often each replica reloads the API keys even without a
/// notification (one lost, or an engine without NOTIFY): the longest a key
/// disabled on one replica can still be accepted by another.
pub const KEYS_RELOAD: Duration = Duration::from_secs(5);

/// Why the PostgreSQL backend could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The URL does not parse.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(#[source] tokio_postgres::Error),
    /// The server refused or failed a statement.
    #[error("{}", chain(.0))]
    Db(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool.
    #[error("{}", chain(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The pool could not be built.
    #[error("connection pool: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    /// The database's schema is not one this relay can use.
    #[error("{0}")]
    Schema(String),
}

/// An error with its causes, `a: b: c` (tokio-postgres keeps the useful
/// part, e.g. "connection refused", in the source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// Migration `n` is `MIGRATIONS[n - 1]`; applied in order, each once, and
/// recorded in `retalk_schema`.
const MIGRATIONS: &[&str] = &["
CREATE TABLE IF NOT EXISTS retalk_users(
    id TEXT PRIMARY KEY,
    identity_key TEXT,
    signing_key TEXT NOT NULL,
    fallback_key_id TEXT,
    fallback_key TEXT
);
CREATE TABLE IF NOT EXISTS retalk_otks(
    id BIGSERIAL PRIMARY KEY,
    owner TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS retalk_otks_owner ON retalk_otks(owner, id);
CREATE TABLE IF NOT EXISTS retalk_messages(
    id BIGSERIAL PRIMARY KEY,
    ts DOUBLE PRECISION NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    mtype INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS retalk_messages_recipient ON retalk_messages(recipient, id);
CREATE INDEX IF NOT EXISTS retalk_messages_sender ON retalk_messages(recipient, sender, id);
CREATE INDEX IF NOT EXISTS retalk_messages_ts ON retalk_messages(ts);
CREATE TABLE IF NOT EXISTS retalk_mailboxes(
    recipient TEXT PRIMARY KEY,
    count BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS retalk_refused(
    id BIGSERIAL PRIMARY KEY,
    recipient TEXT NOT NULL,
    hash TEXT NOT NULL,
    sig TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    UNIQUE(recipient, hash)
);
CREATE INDEX IF NOT EXISTS retalk_refused_ts ON retalk_refused(ts);
CREATE TABLE IF NOT EXISTS retalk_nonces(
    nonce TEXT PRIMARY KEY,
    ts DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS retalk_nonces_ts ON retalk_nonces(ts);
CREATE TABLE IF NOT EXISTS retalk_api_keys(
    key_hash TEXT PRIMARY KEY,
    label TEXT,
    created DOUBLE PRECISION,
    disabled INTEGER NOT NULL DEFAULT 0
);
"];

/// The schema version this relay writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Parses a URL into a connection configuration.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, PgError> {
    url.parse::<tokio_postgres::Config>().map_err(PgError::Url)
}

/// A pool of connections to `url`.
pub fn pool(config: &tokio_postgres::Config, size: usize) -> Result<Pool, PgError> {
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()?)
}

/// Brings the schema up to date. Safe when several replicas start at
/// once: the migrations run in one transaction holding the lock row of
/// `retalk_migration_lock` (`SELECT ... FOR UPDATE`, which engines without
/// `LOCK TABLE` or advisory locks also have), so one replica migrates and
/// the others then find the work done.
pub async fn migrate(pool: &Pool) -> Result<(), PgError> {
    let mut client = pool.get().await?;
    // Two replicas creating the same table at the same instant can collide
    // in the catalog (a unique violation) even with IF NOT EXISTS: retry.
    let mut tries = 0;
    loop {
        match client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS retalk_schema(version BIGINT NOT NULL); \
                 CREATE TABLE IF NOT EXISTS retalk_migration_lock(id INTEGER PRIMARY KEY); \
                 INSERT INTO retalk_migration_lock(id) VALUES(1) ON CONFLICT (id) DO NOTHING",
            )
            .await
        {
            Ok(()) => break,
            Err(e) if tries < 5 && e.code().is_some() => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Up to date (every start but the first after an upgrade): no lock.
    let current: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::int8 FROM retalk_schema",
            &[],
        )
        .await?
        .get(0);
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = client.transaction().await?;
    tx.batch_execute("SELECT id FROM retalk_migration_lock WHERE id = 1 FOR UPDATE")
        .await?;
    let version: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::int8 FROM retalk_schema",
            &[],
        )
        .await?
        .get(0);
    if version > SCHEMA_VERSION {
        return Err(PgError::Schema(format!(
            "database schema version {version} is newer than this relay understands \
             ({SCHEMA_VERSION}); upgrade retalk-server"
        )));
    }
    for (n, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO retalk_schema(version) VALUES($1::int8)",
            &[&(n as i64 + 1)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A request that did not complete.
enum Fail {
    /// Refused; the transaction commits (its nonce) and nothing else.
    Refused(WireError),
    /// The database failed; rolled back.
    Db(PgError),
}

impl From<WireError> for Fail {
    fn from(e: WireError) -> Self {
        Fail::Refused(e)
    }
}
impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e.into())
    }
}
impl From<deadpool_postgres::PoolError> for Fail {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Fail::Db(e.into())
    }
}

struct Inner {
    pool: Pool,
    limits: Limits,
    waiters: Arc<Waiters>,
    health: Arc<Health>,
    /// Whether the engine has LISTEN/NOTIFY.
    notify: bool,
    in_flight: AtomicUsize,
    stopping: AtomicBool,
}

/// The backend; see the module docs.
pub struct Postgres {
    inner: Arc<Inner>,
    /// Requests waiting for a group ([`batch::dispatch`]).
    queue: tokio::sync::mpsc::UnboundedSender<Job>,
    stop: Arc<Shutdown>,
}

/// Connects, migrates, starts the notification listener and the pruner.
/// `shutdown` stops the background tasks.
pub async fn open(
    url: &str,
    limits: Limits,
    waiters: Arc<Waiters>,
    health: Arc<Health>,
    keys: Arc<ApiKeys>,
) -> Result<Postgres, PgError> {
    let config = parse_url(url)?;
    let pool = pool(&config, POOL_SIZE)?;
    migrate(&pool).await?;
    load_keys(&pool, &keys).await?;
    // Does the engine have NOTIFY? (CockroachDB, for one, has not.)
    let notify = {
        let client = pool.get().await?;
        client
            .execute("SELECT pg_notify($1::text, ''::text)", &[&CHANNEL])
            .await
            .is_ok()
    };
    if !notify {
        tracing::warn!(
            "the database has no LISTEN/NOTIFY: waiting reads look for mail every {POLL:?}"
        );
    }
    let stop = Arc::new(Shutdown::default());
    let inner = Arc::new(Inner {
        pool: pool.clone(),
        limits,
        waiters: Arc::clone(&waiters),
        health,
        notify,
        in_flight: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
    });
    if notify {
        tokio::spawn(listen(
            config,
            waiters,
            pool.clone(),
            Arc::clone(&keys),
            Arc::clone(&stop),
        ));
    }
    tokio::spawn(reload_keys_loop(pool.clone(), keys, Arc::clone(&stop)));
    tokio::spawn(prune_loop(Arc::clone(&inner), Arc::clone(&stop)));
    let (queue, jobs) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(batch::dispatch(Arc::clone(&inner), jobs, Arc::clone(&stop)));
    Ok(Postgres { inner, queue, stop })
}

impl Postgres {
    /// The connection pool (the admin routes use it).
    pub fn pool(&self) -> Pool {
        self.inner.pool.clone()
    }
}

/// Replaces `keys` with the database's enabled API keys.
async fn load_keys(pool: &Pool, keys: &ApiKeys) -> Result<(), PgError> {
    let client = pool.get().await?;
    crate::admin::pg::reload(&client, keys)
        .await
        .map_err(|e| match e {
            crate::admin::AdminError::Postgres(e) => PgError::Db(e),
            crate::admin::AdminError::Pool(e) => PgError::Pool(e),
            other => PgError::Schema(other.to_string()),
        })
}

/// Every [`KEYS_RELOAD`], the API keys again (see there).
async fn reload_keys_loop(pool: Pool, keys: Arc<ApiKeys>, stop: Arc<Shutdown>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(KEYS_RELOAD) => {}
            _ = stop.wait() => return,
        }
        if let Err(e) = load_keys(&pool, &keys).await {
            tracing::warn!("reloading the API keys failed: {e}");
        }
    }
}

impl Backend for Postgres {
    fn submit(&self, job: Job) {
        if self.inner.stopping.load(Ordering::SeqCst) {
            let _ = job.reply.send(Err(unavailable()));
            return;
        }
        self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
        if let Err(tokio::sync::mpsc::error::SendError(job)) = self.queue.send(job) {
            self.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
            let _ = job.reply.send(Err(unavailable()));
        }
    }

    fn stop(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.inner.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop.fire();
        self.inner.pool.close();
    }

    fn recheck(&self) -> Option<Duration> {
        Some(if self.inner.notify { RECHECK } else { POLL })
    }
}

fn now(limits: &Limits) -> f64 {
    crate::unix_now(limits.clock_offset_secs)
}

impl Inner {
    /// Runs one request's operation (not its nonce) in `tx`.
    async fn execute(&self, tx: &Transaction<'_>, job: &Job, now: f64) -> Result<Outcome, Fail> {
        let caller = &job.caller;
        let l = &self.limits;
        Ok(match &job.op {
            Op::Publish(req) => {
                Outcome::Published(publish_keys(tx, caller, req, l.max_otks).await?)
            }
            Op::CountKeys => Outcome::Counts(count_keys(tx, caller).await?),
            Op::GetKeys(peer) => Outcome::Keys(get_keys(tx, peer).await?),
            Op::ClaimKey(peer) => Outcome::Claimed(claim_key(tx, peer).await?),
            // Sends run as row sets in their group (batch.rs), never here.
            Op::Send(..) => {
                return Err(Fail::Db(PgError::Schema(
                    "internal error: a send outside its group".into(),
                )))
            }
            Op::Read { peer, peek, wait } => {
                let mail = read_messages(tx, caller, peer.as_ref(), *peek).await?;
                let wait = match wait {
                    Some(secs) if mail.is_empty() => Some(WaitPlan {
                        caller: caller.clone(),
                        peer: peer.clone(),
                        peek: *peek,
                        secs: *secs,
                    }),
                    _ => None,
                };
                Outcome::Mail { mail, wait }
            }
            Op::Nack(req) => {
                nack(tx, caller, req, now, l.max_refused, l.refused_ttl_secs).await?;
                Outcome::Nacked
            }
        })
    }
}

fn unknown_peer(peer: &UserId) -> Fail {
    WireError::NotFound(format!("unknown peer or no published keys: {peer}")).into()
}

async fn publish_keys(
    tx: &Transaction<'_>,
    caller: &UserId,
    req: &PublishKeys,
    max_otks: u64,
) -> Result<Published, Fail> {
    if UserId::fingerprint(&req.identity_key, &req.signing_key) != *caller {
        return Err(WireError::BadRequest("published keys do not match user id".into()).into());
    }
    let id = caller.as_str();
    // Publishes of one user are serialised by its row, so the cap holds
    // across replicas.
    let lock = tx
        .prepare_cached("SELECT 1 FROM retalk_users WHERE id = $1::text FOR UPDATE")
        .await?;
    tx.query_opt(&lock, &[&id]).await?;
    let adding = req.one_time_keys.len() as u64;
    if adding > 0 {
        let stmt = tx
            .prepare_cached("SELECT COUNT(*)::int8 FROM retalk_otks WHERE owner = $1::text")
            .await?;
        let stored = tx.query_one(&stmt, &[&id]).await?.get::<_, i64>(0) as u64;
        if stored + adding > max_otks {
            return Err(WireError::LimitExceeded(format!(
                "one-time key limit: you have {stored} unclaimed one-time keys on this relay \
                 and publishing {adding} more would exceed its cap of {max_otks} per user"
            ))
            .into());
        }
    }
    let upsert = tx
        .prepare_cached(
            "INSERT INTO retalk_users(id, identity_key, signing_key) \
             VALUES($1::text, $2::text, $3::text) \
             ON CONFLICT (id) DO UPDATE SET identity_key = excluded.identity_key, \
             signing_key = excluded.signing_key",
        )
        .await?;
    tx.execute(
        &upsert,
        &[&id, &req.identity_key.as_str(), &req.signing_key.as_str()],
    )
    .await?;
    if let Some((key_id, key)) = &req.fallback_key {
        let stmt = tx
            .prepare_cached(
                "UPDATE retalk_users SET fallback_key_id = $1::text, fallback_key = $2::text \
                 WHERE id = $3::text",
            )
            .await?;
        tx.execute(&stmt, &[key_id, &key.as_str(), &id]).await?;
    }
    if adding > 0 {
        let ids: Vec<&str> = req.one_time_keys.iter().map(|(k, _)| k.as_str()).collect();
        let keys: Vec<&str> = req.one_time_keys.iter().map(|(_, k)| k.as_str()).collect();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO retalk_otks(owner, key_id, key) \
                 SELECT $1::text, k.key_id, k.key \
                 FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k(key_id, key, n) \
                 ORDER BY k.n",
            )
            .await?;
        tx.execute(&stmt, &[&id, &ids, &keys]).await?;
    }
    Ok(Published {
        ok: true,
        user_id: Some(caller.to_string()),
        fingerprint: Some(caller.to_string()),
        one_time_keys_added: adding,
        fallback_key_set: req.fallback_key.is_some(),
    })
}

async fn count_keys(tx: &Transaction<'_>, caller: &UserId) -> Result<KeyCounts, Fail> {
    let stmt = tx
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM retalk_otks WHERE owner = $1::text)::int8, \
             (SELECT fallback_key FROM retalk_users WHERE id = $1::text)",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&caller.as_str()]).await?;
    let fallback: Option<String> = row.get(1);
    Ok(KeyCounts {
        unclaimed: row.get::<_, i64>(0) as u64,
        has_fallback: fallback.is_some_and(|f| !f.is_empty()),
    })
}

struct UserRow {
    identity_key: Option<String>,
    signing_key: String,
    fallback_key_id: Option<String>,
    fallback_key: Option<String>,
}

async fn user_row(tx: &Transaction<'_>, id: &UserId) -> Result<Option<UserRow>, Fail> {
    let stmt = tx
        .prepare_cached(
            "SELECT identity_key, signing_key, fallback_key_id, fallback_key \
             FROM retalk_users WHERE id = $1::text",
        )
        .await?;
    Ok(tx
        .query_opt(&stmt, &[&id.as_str()])
        .await?
        .map(|r| UserRow {
            identity_key: r.get(0),
            signing_key: r.get(1),
            fallback_key_id: r.get(2),
            fallback_key: r.get(3),
        }))
}

async fn get_keys(tx: &Transaction<'_>, peer: &UserId) -> Result<PublicKeys, Fail> {
    match user_row(tx, peer).await? {
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

/// Hands out (and deletes) the peer's oldest one-time key that no
/// concurrent claim holds, or the fallback key.
async fn claim_key(tx: &Transaction<'_>, peer: &UserId) -> Result<ClaimedKey, Fail> {
    let Some(UserRow {
        identity_key: Some(identity_key),
        signing_key,
        fallback_key_id,
        fallback_key,
    }) = user_row(tx, peer).await?
    else {
        return Err(unknown_peer(peer));
    };
    let stmt = tx
        .prepare_cached(
            "DELETE FROM retalk_otks WHERE id = (SELECT id FROM retalk_otks \
             WHERE owner = $1::text ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING key_id, key",
        )
        .await?;
    match tx.query_opt(&stmt, &[&peer.as_str()]).await? {
        Some(row) => Ok(ClaimedKey {
            identity_key,
            signing_key,
            key_id: row.get(0),
            one_time_key: row.get(1),
            fallback: false,
        }),
        None => match fallback_key.filter(|k| !k.is_empty()) {
            None => Err(WireError::NotFound(format!(
                "no one-time keys left for peer: {peer} (and no fallback key)"
            ))
            .into()),
            Some(fallback_key) => Ok(ClaimedKey {
                identity_key,
                signing_key,
                key_id: fallback_key_id.unwrap_or_default(),
                one_time_key: fallback_key,
                fallback: true,
            }),
        },
    }
}

/// Locks `recipient`'s mailbox row (creating it empty) for the rest of the
/// transaction and returns its totals (messages, bytes).
async fn lock_mailbox(tx: &Transaction<'_>, recipient: &str) -> Result<(i64, i64), Fail> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO retalk_mailboxes(recipient, count, bytes) VALUES($1::text, 0, 0) \
             ON CONFLICT (recipient) DO UPDATE SET count = retalk_mailboxes.count \
             RETURNING count, bytes",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&recipient]).await?;
    Ok((row.get(0), row.get(1)))
}

async fn read_messages(
    tx: &Transaction<'_>,
    caller: &UserId,
    peer: Option<&UserId>,
    peek: bool,
) -> Result<Vec<Mail>, Fail> {
    let me = caller.as_str();
    if !peek {
        // Serialises deleting reads (and sends) of this mailbox.
        lock_mailbox(tx, me).await?;
    }
    let limit = READ_MAX_MESSAGES as i64;
    let rows = match peer {
        None => {
            let stmt = tx
                .prepare_cached(
                    "SELECT id, ts, sender, mtype, body FROM retalk_messages \
                     WHERE recipient = $1::text ORDER BY id LIMIT $2::int8",
                )
                .await?;
            tx.query(&stmt, &[&me, &limit]).await?
        }
        Some(peer) => {
            let stmt = tx
                .prepare_cached(
                    "SELECT id, ts, sender, mtype, body FROM retalk_messages \
                     WHERE recipient = $1::text AND sender = $2::text ORDER BY id LIMIT $3::int8",
                )
                .await?;
            tx.query(&stmt, &[&me, &peer.as_str(), &limit]).await?
        }
    };
    let mut mail = Vec::new();
    let mut bytes = 0usize;
    for row in rows {
        let m = Mail {
            message_id: row.get(0),
            ts: row.get(1),
            from: row.get(2),
            mtype: i64::from(row.get::<_, i32>(3)),
            body: row.get(4),
        };
        bytes += m.body.len();
        mail.push(m);
        if bytes >= READ_MAX_BYTES {
            break;
        }
    }
    if !peek && !mail.is_empty() {
        let ids: Vec<i64> = mail.iter().map(|m| m.message_id).collect();
        let stmt = tx
            .prepare_cached("DELETE FROM retalk_messages WHERE id = ANY($1::int8[])")
            .await?;
        tx.execute(&stmt, &[&ids]).await?;
        let totals = tx
            .prepare_cached(
                "UPDATE retalk_mailboxes SET count = count - $2::int8, bytes = bytes - $3::int8 \
                 WHERE recipient = $1::text",
            )
            .await?;
        tx.execute(&totals, &[&me, &(mail.len() as i64), &(bytes as i64)])
            .await?;
    }
    Ok(mail)
}

async fn nack(
    tx: &Transaction<'_>,
    caller: &UserId,
    req: &Nack,
    now: f64,
    max_refused: u64,
    refused_ttl_secs: f64,
) -> Result<(), Fail> {
    let me = caller.as_str();
    if refused_ttl_secs > 0.0 {
        let stmt = tx
            .prepare_cached(
                "DELETE FROM retalk_refused WHERE recipient = $1::text AND ts < $2::float8",
            )
            .await?;
        tx.execute(&stmt, &[&me, &(now - refused_ttl_secs)]).await?;
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO retalk_refused(recipient, hash, sig, ts) \
             VALUES($1::text, $2::text, $3::text, $4::float8) \
             ON CONFLICT (recipient, hash) DO UPDATE SET sig = excluded.sig, ts = excluded.ts",
        )
        .await?;
    tx.execute(&stmt, &[&me, &req.hash, &req.sig, &now]).await?;
    if max_refused > 0 {
        let stmt = tx
            .prepare_cached(
                "DELETE FROM retalk_refused WHERE id IN (SELECT id FROM retalk_refused \
                 WHERE recipient = $1::text ORDER BY id DESC OFFSET $2::int8)",
            )
            .await?;
        tx.execute(&stmt, &[&me, &(max_refused as i64)]).await?;
    }
    Ok(())
}

/// Every [`PRUNE_EVERY`]: forgets old nonces and expired refusals, and
/// deletes undelivered mail past its lifetime (one mailbox per
/// transaction, under that mailbox's lock, keeping its totals right).
async fn prune_loop(inner: Arc<Inner>, stop: Arc<Shutdown>) {
    loop {
        if let Err(e) = prune(&inner).await {
            tracing::warn!("pruning the database failed: {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stop.wait() => return,
        }
    }
}

async fn prune(inner: &Inner) -> Result<(), PgError> {
    let now = now(&inner.limits);
    let mut client = inner.pool.get().await?;
    client
        .execute(
            "DELETE FROM retalk_nonces WHERE ts < $1::float8",
            &[&(now - NONCE_MEMORY_SECS)],
        )
        .await?;
    if inner.limits.refused_ttl_secs > 0.0 {
        client
            .execute(
                "DELETE FROM retalk_refused WHERE ts < $1::float8",
                &[&(now - inner.limits.refused_ttl_secs)],
            )
            .await?;
    }
    if inner.limits.message_ttl_secs <= 0.0 {
        return Ok(());
    }
    let cutoff = now - inner.limits.message_ttl_secs;
    let rows = client
        .query(
            "SELECT DISTINCT recipient FROM retalk_messages WHERE ts < $1::float8",
            &[&cutoff],
        )
        .await?;
    let mut expired = 0u64;
    for row in rows {
        let recipient: String = row.get(0);
        let tx = client.transaction().await?;
        let (n, bytes) = {
            lock_mailbox(&tx, &recipient).await.map_err(|e| match e {
                Fail::Db(e) => e,
                Fail::Refused(e) => PgError::Schema(e.to_string()),
            })?;
            let gone = tx
                .query(
                    "DELETE FROM retalk_messages WHERE recipient = $1::text AND ts < $2::float8 \
                     RETURNING octet_length(body)::int8",
                    &[&recipient, &cutoff],
                )
                .await?;
            let bytes: i64 = gone.iter().map(|r| r.get::<_, i64>(0)).sum();
            (gone.len() as i64, bytes)
        };
        tx.execute(
            "UPDATE retalk_mailboxes SET count = count - $2::int8, bytes = bytes - $3::int8 \
             WHERE recipient = $1::text",
            &[&recipient, &n, &bytes],
        )
        .await?;
        tx.commit().await?;
        expired += n as u64;
    }
    if expired > 0 {
        metrics::counter!("retalk_expired_messages_total").increment(expired);
        tracing::info!("deleted {expired} undelivered message(s) past --message-ttl");
    }
    Ok(())
}

/// The LISTEN side of cross-replica wake-ups (and of API key changes), on
/// its own connection (a pooled one would be recycled). After a drop it
/// reconnects with backoff, wakes every local waiter and reloads the keys,
/// since notifications sent meanwhile are lost.
async fn listen(
    config: tokio_postgres::Config,
    waiters: Arc<Waiters>,
    pool: Pool,
    keys: Arc<ApiKeys>,
    stop: Arc<Shutdown>,
) {
    let mut backoff = Duration::from_millis(100);
    let reload = |pool: Pool, keys: Arc<ApiKeys>| {
        tokio::spawn(async move {
            if let Err(e) = load_keys(&pool, &keys).await {
                tracing::warn!("reloading the API keys failed: {e}");
            }
        });
    };
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut conn)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(bool, String)>();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
                    while let Some(Ok(message)) = messages.next().await {
                        if let AsyncMessage::Notification(n) = message {
                            let keys = n.channel() == KEYS_CHANNEL;
                            if tx.send((keys, n.payload().to_owned())).is_err() {
                                return;
                            }
                        }
                    }
                });
                match client
                    .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {KEYS_CHANNEL}"))
                    .await
                {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        // Whatever was sent while nobody listened.
                        waiters.notify_all();
                        reload(pool.clone(), Arc::clone(&keys));
                        loop {
                            tokio::select! {
                                payload = rx.recv() => match payload {
                                    Some((true, _)) => reload(pool.clone(), Arc::clone(&keys)),
                                    Some((false, p)) => {
                                        if let Ok(id) = UserId::parse(&p, "recipient") {
                                            waiters.notify(&id);
                                        }
                                    }
                                    None => break,
                                },
                                _ = stop.wait() => {
                                    driver.abort();
                                    return;
                                }
                            }
                        }
                        tracing::warn!("lost the database's notification connection; reconnecting");
                    }
                    Err(e) => tracing::warn!("LISTEN failed: {e}"),
                }
                driver.abort();
            }
            Err(e) => tracing::warn!("cannot connect for notifications: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
