//! `retalk-server migrate --from server.db --to postgres://...`: copies a
//! SQLite relay's state (ours, or either reference generation's file) into
//! an empty PostgreSQL database, in one transaction: users and their keys,
//! unclaimed one-time keys, undelivered mail (in arrival order), refusals,
//! API keys, and the nonces of the last minutes (so requests served by the
//! old relay cannot be replayed to the new one).
//!
//! The SQLite file is opened read-only and not changed. Stop the old relay
//! first: mail it accepts after the copy started is not copied.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::storage::postgres::{self, PgError};
use crate::store::{integer, real, text, NONCE_MEMORY_SECS};

/// Why a migration failed (nothing was written to PostgreSQL).
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The SQLite file could not be read.
    #[error("cannot read {path}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// The cause.
        source: rusqlite::Error,
    },
    /// PostgreSQL refused or failed.
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// The reading task died.
    #[error("reading the SQLite file failed: {0}")]
    Task(String),
    /// The target already holds a relay's data.
    #[error(
        "the PostgreSQL database already holds relay data ({0}); migrate into an empty database"
    )]
    NotEmpty(String),
}

impl From<PgError> for MigrateError {
    fn from(e: PgError) -> Self {
        MigrateError::Postgres(e.to_string())
    }
}

/// How many rows of each kind were copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Users (with their long-term and fallback keys).
    pub users: u64,
    /// Unclaimed one-time keys.
    pub one_time_keys: u64,
    /// Undelivered messages.
    pub messages: u64,
    /// Refusals.
    pub refusals: u64,
    /// Recent nonces.
    pub nonces: u64,
    /// API keys.
    pub api_keys: u64,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users, {} one-time keys, {} messages, {} refusals, {} nonces, {} API keys",
            self.users,
            self.one_time_keys,
            self.messages,
            self.refusals,
            self.nonces,
            self.api_keys
        )
    }
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1")?
        .exists([name])
}

type Rows = Vec<Vec<String>>;

/// Every row of `sql` as text columns (`ts` columns stay exact as their
/// float's shortest text).
fn rows(conn: &Connection, sql: &str, kinds: &[char]) -> rusqlite::Result<Rows> {
    let mut stmt = conn.prepare(sql)?;
    let mut out = Vec::new();
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        let mut row = Vec::with_capacity(kinds.len());
        for (i, k) in kinds.iter().enumerate() {
            row.push(match k {
                'f' => real(r, i)?.to_string(),
                'i' => integer(r, i)?.to_string(),
                _ => text(r, i)?,
            });
        }
        out.push(row);
    }
    Ok(out)
}

struct Source {
    users: Rows,
    otks: Rows,
    messages: Rows,
    refused: Rows,
    nonces: Rows,
    api_keys: Rows,
}

fn read_source(path: &Path, now: f64) -> rusqlite::Result<Source> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let cutoff = now - NONCE_MEMORY_SECS;
    let mut nonces = rows(
        &conn,
        &format!("SELECT nonce, ts FROM nonces WHERE ts >= {cutoff}"),
        &['t', 'f'],
    )?;
    if has_table(&conn, "retalk_nonces")? {
        nonces.extend(rows(
            &conn,
            &format!("SELECT nonce, ts FROM retalk_nonces WHERE ts >= {cutoff}"),
            &['t', 'f'],
        )?);
    }
    if has_table(&conn, "retalk_nonce_groups")? {
        nonces.extend(
            crate::store::recent_group_nonces(&conn, cutoff)?
                .into_iter()
                .map(|(nonce, ts)| vec![nonce, ts.to_string()]),
        );
    }
    Ok(Source {
        users: rows(
            &conn,
            "SELECT id, identity_key, signing_key, fallback_key_id, fallback_key FROM users \
             ORDER BY id",
            &['t'; 5],
        )?,
        otks: rows(
            &conn,
            "SELECT owner, key_id, key FROM otks WHERE ifnull(claimed, 0) = 0 ORDER BY id",
            &['t'; 3],
        )?,
        messages: rows(
            &conn,
            "SELECT ts, sender, recipient, mtype, body FROM messages ORDER BY id",
            &['f', 't', 't', 'i', 't'],
        )?,
        refused: if has_table(&conn, "refused")? {
            rows(
                &conn,
                "SELECT recipient, hash, sig, ts FROM refused ORDER BY id",
                &['t', 't', 't', 'f'],
            )?
        } else {
            Vec::new()
        },
        nonces,
        api_keys: if has_table(&conn, "api_keys")? {
            rows(
                &conn,
                "SELECT key_hash, label, created, disabled FROM api_keys",
                &['t', 't', 'f', 'i'],
            )?
        } else {
            Vec::new()
        },
    })
}

/// Copies the relay state in the SQLite file `from` into the (empty)
/// PostgreSQL database at `to`, creating its schema.
pub async fn sqlite_to_postgres(from: &Path, to: &str) -> Result<Copied, MigrateError> {
    let now = crate::unix_now(0);
    let path = from.to_path_buf();
    let src = tokio::task::spawn_blocking(move || read_source(&path, now))
        .await
        .map_err(|e| MigrateError::Task(e.to_string()))?
        .map_err(|source| MigrateError::Sqlite {
            path: from.display().to_string(),
            source,
        })?;
    let pool = postgres::pool(&postgres::parse_url(to)?, 1)?;
    postgres::migrate(&pool).await?;
    let mut client = pool.get().await.map_err(PgError::from)?;
    let tx = client.transaction().await.map_err(PgError::from)?;
    let db = |e: tokio_postgres::Error| MigrateError::from(PgError::from(e));
    let present: i64 = tx
        .query_one(
            "SELECT ((SELECT COUNT(*) FROM retalk_users) + (SELECT COUNT(*) FROM retalk_messages))::int8",
            &[],
        )
        .await
        .map_err(db)?
        .get(0);
    if present > 0 {
        return Err(MigrateError::NotEmpty(format!(
            "{present} users and messages"
        )));
    }
    let f = |s: &str| s.parse::<f64>().unwrap_or(0.0);
    let i = |s: &str| s.parse::<i64>().unwrap_or(0);
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let mut copied = Copied::default();
    let stmt = tx
        .prepare(
            "INSERT INTO retalk_users(id, identity_key, signing_key, fallback_key_id, fallback_key) \
             VALUES($1::text, $2::text, $3::text, $4::text, $5::text) ON CONFLICT (id) DO NOTHING",
        )
        .await
        .map_err(db)?;
    for r in &src.users {
        let (ik, fid, fk) = (opt(&r[1]), opt(&r[3]), opt(&r[4]));
        copied.users += tx
            .execute(&stmt, &[&r[0], &ik, &r[2], &fid, &fk])
            .await
            .map_err(db)?;
    }
    let stmt = tx
        .prepare("INSERT INTO retalk_otks(owner, key_id, key) VALUES($1::text, $2::text, $3::text)")
        .await
        .map_err(db)?;
    for r in &src.otks {
        copied.one_time_keys += tx
            .execute(&stmt, &[&r[0], &r[1], &r[2]])
            .await
            .map_err(db)?;
    }
    let stmt = tx
        .prepare(
            "INSERT INTO retalk_messages(ts, sender, recipient, mtype, body) \
             VALUES($1::float8, $2::text, $3::text, $4::int4, $5::text)",
        )
        .await
        .map_err(db)?;
    for r in &src.messages {
        let mtype = i32::try_from(i(&r[3])).unwrap_or(i32::MAX);
        copied.messages += tx
            .execute(&stmt, &[&f(&r[0]), &r[1], &r[2], &mtype, &r[4]])
            .await
            .map_err(db)?;
    }
    tx.execute(
        "INSERT INTO retalk_mailboxes(recipient, count, bytes) \
         SELECT recipient, COUNT(*)::int8, COALESCE(SUM(octet_length(body)), 0)::int8 \
         FROM retalk_messages GROUP BY recipient",
        &[],
    )
    .await
    .map_err(db)?;
    let stmt = tx
        .prepare(
            "INSERT INTO retalk_refused(recipient, hash, sig, ts) \
             VALUES($1::text, $2::text, $3::text, $4::float8) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db)?;
    for r in &src.refused {
        copied.refusals += tx
            .execute(&stmt, &[&r[0], &r[1], &r[2], &f(&r[3])])
            .await
            .map_err(db)?;
    }
    let stmt = tx
        .prepare(
            "INSERT INTO retalk_nonces(nonce, ts) VALUES($1::text, $2::float8) \
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db)?;
    for r in &src.nonces {
        copied.nonces += tx.execute(&stmt, &[&r[0], &f(&r[1])]).await.map_err(db)?;
    }
    let stmt = tx
        .prepare(
            "INSERT INTO retalk_api_keys(key_hash, label, created, disabled) \
             VALUES($1::text, $2::text, $3::float8, $4::int4) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db)?;
    for r in &src.api_keys {
        let disabled = i32::from(i(&r[3]) != 0);
        copied.api_keys += tx
            .execute(&stmt, &[&r[0], &r[1], &f(&r[2]), &disabled])
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(copied)
}
