//! Putting large amounts of waiting mail into a relay.
//!
//! Through the protocol (any relay, any URL): signed `send_message`
//! requests in bursts, exactly what real senders do. It is the honest way,
//! but the Python reference stores a few hundred messages a second, so a
//! million would take the better part of an hour.
//!
//! Straight into the relay's SQLite file (relays this benchmark started,
//! while stopped): rows are inserted into the `messages` table with the
//! columns the reference schema defines (`ts, sender, recipient, mtype,
//! body`). The relay is restarted afterwards, so it sees the rows exactly as
//! if they had been sent before a restart. Senders and recipients are real
//! users whose keys were published through the protocol.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::wire::{burst, message, now_secs, sign_parallel, Relay, User};

/// Sends `count` messages from `senders` round-robin to `recipients`
/// through the protocol.
pub async fn by_protocol(
    relay: &Relay,
    senders: &[User],
    recipients: &[User],
    count: usize,
    body_bytes: usize,
    concurrency: usize,
) -> Result<(), String> {
    // Signed in chunks so each chunk is sent well inside the 150 s window.
    const CHUNK: usize = 50_000;
    let mut left = count;
    let mut seq = 0usize;
    while left > 0 {
        let n = left.min(CHUNK);
        let ts = now_secs();
        let base = seq;
        let reqs = sign_parallel(n, |i| {
            let k = base + i;
            let from = &senders[k % senders.len()];
            let to = &recipients[(k / senders.len()) % recipients.len()];
            relay.signed_at(from, &message(&to.id, body_bytes, k as u64), ts)
        });
        let b = burst(
            &relay.target,
            Arc::new(reqs),
            concurrency,
            Instant::now() + Duration::from_secs(130),
        )
        .await;
        if b.errors.count > 0 || b.truncated {
            return Err(format!(
                "filling by protocol failed after {seq} messages: {:?}{}",
                b.errors.samples,
                if b.truncated {
                    " (too slow: timed out)"
                } else {
                    ""
                }
            ));
        }
        left -= n;
        seq += n;
    }
    Ok(())
}

/// Inserts `count` messages straight into the `messages` table of the
/// SQLite database at `db` (the relay must be stopped).
pub fn by_sqlite(
    db: &Path,
    senders: &[User],
    recipients: &[User],
    count: usize,
    body_bytes: usize,
) -> Result<(), String> {
    let conn = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('messages')")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| format!("reading the messages table of {}: {e}", db.display()))?;
    for needed in ["ts", "sender", "recipient", "mtype", "body"] {
        if !columns.iter().any(|c| c == needed) {
            return Err(format!(
                "{}: the messages table has no {needed:?} column (columns: {columns:?}); \
                 this schema is not the reference one, fill with --fill protocol",
                db.display()
            ));
        }
    }
    let now = now_secs() as f64;
    let tx = conn.unchecked_transaction().map_err(|e| e.to_string())?;
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO messages(ts, sender, recipient, mtype, body) VALUES(?1, ?2, ?3, 1, ?4)",
            )
            .map_err(|e| e.to_string())?;
        for k in 0..count {
            let from = &senders[k % senders.len()];
            let to = &recipients[(k / senders.len()) % recipients.len()];
            let m = message(&to.id, body_bytes, k as u64);
            ins.execute(rusqlite::params![
                now,
                from.id.as_str(),
                to.id.as_str(),
                m.body
            ])
            .map_err(|e| e.to_string())?;
        }
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok(())
}
