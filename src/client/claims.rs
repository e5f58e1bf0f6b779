//! Claims on held messages: which reader a message returned by a `hold`
//! receive belongs to until [`User::shown`](super::User::shown) confirms it.
//!
//! Two readers of one identity (an MCP server beside a `receive --follow`,
//! in two processes) both see the `delivered` table. Without claims, a
//! message one of them was returned but had not yet confirmed would be
//! returned to the other too: a duplicate. So a hold receive records, with
//! each message it returns, the claimant token of its [`User`] instance,
//! and skips messages claimed by another instance that is still alive.
//!
//! Liveness is a lock, not a clock: each instance holds an exclusive
//! `flock` on `DIR/claims/TOKEN.lock` from its first hold receive until it
//! is dropped, and the kernel releases it when the process dies. A claim
//! whose lock can be taken belongs to a reader that is gone, and its
//! messages are returned again (first, as before), so a reader that died
//! between receiving and confirming loses nothing and blocks nothing.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::User;

/// The folder of claim locks inside the identity folder.
const CLAIMS_DIR: &str = "claims";

fn lock_path(dir: &Path, token: &str) -> PathBuf {
    dir.join(CLAIMS_DIR).join(format!("{token}.lock"))
}

fn open(path: &Path, create: bool) -> io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(create).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// The claim lock an instance holds while alive.
#[derive(Debug)]
pub(crate) struct ClaimLock {
    _file: File,
}

impl User {
    /// Takes this instance's claim lock if it does not hold it yet.
    pub(crate) fn hold_claim_lock(&self) -> io::Result<()> {
        let mut slot = self.claim_lock.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return Ok(());
        }
        let dir = self.dir().join(CLAIMS_DIR);
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        let file = open(&lock_path(self.dir(), &self.claimant), true)?;
        if !fs4::fs_std::FileExt::try_lock_exclusive(&file)? {
            return Err(io::Error::other("claim lock already held"));
        }
        *slot = Some(ClaimLock { _file: file });
        Ok(())
    }

    /// Whether the instance `token` (another than this one) is alive: its
    /// claim lock is held. A gone instance's lock file is removed.
    pub(crate) fn claimant_alive(&self, token: &str) -> bool {
        if token == self.claimant {
            return true;
        }
        // Tokens are hex we wrote; anything else is not a path to follow.
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        let path = lock_path(self.dir(), token);
        let Ok(file) = open(&path, false) else {
            return false;
        };
        match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
            Ok(true) => {
                let _ = std::fs::remove_file(&path);
                false
            }
            Ok(false) => true,
            // Cannot tell: keep the claim (a duplicate is worse than a
            // message shown a little later, by its holder).
            Err(_) => true,
        }
    }
}
