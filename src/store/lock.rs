//! The store's cross-process lock: an exclusive `flock` on `DIR/retalk.lock`
//! held for the whole of each operation.
//!
//! An Olm session is a ratchet: two processes that each load it, encrypt and
//! save it back would both use the same message key and one of their
//! messages would never decrypt. Holding one exclusive lock from the first
//! read to the last write of an operation (network calls included) makes
//! operations on one identity strictly sequential, whichever process or task
//! runs them. `flock` locks belong to an open file description, so two tasks
//! of one process exclude each other too, and the kernel drops the lock when
//! the process dies: a crash never leaves a stale lock behind.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::LOCK_FILE;

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Blocks the calling thread until the lock is held.
pub fn lock_blocking(dir: &Path) -> io::Result<StoreLock> {
    let file = open_lock_file(&dir.join(LOCK_FILE))?;
    fs4::fs_std::FileExt::lock_exclusive(&file)?;
    Ok(StoreLock { _file: file })
}

/// Waits for the lock on a blocking-pool thread, so a task waiting for
/// another process never stalls the async runtime.
pub async fn lock(dir: &Path) -> io::Result<StoreLock> {
    let dir: PathBuf = dir.to_owned();
    tokio::task::spawn_blocking(move || lock_blocking(&dir))
        .await
        .map_err(|e| io::Error::other(format!("lock task failed: {e}")))?
}
