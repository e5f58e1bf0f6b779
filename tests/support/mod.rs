//! Helpers shared by the client tests: a relay on loopback with its
//! database in a temp dir, and identities with a cheap key derivation (the
//! cost parameters are stored per identity, so tests need not pay the
//! production Argon2id cost on every open; one test covers the defaults).

#![allow(dead_code)]

pub mod raw;

use std::path::{Path, PathBuf};
use std::time::Duration;

use retalk::{CreateOptions, KdfParams, User};
use retalk_server::{Config, Relay};

/// Upper bound for any single wait in a test, so a bug shows as a failure
/// rather than a hang.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A relay and the temp dir holding its database.
pub struct TestRelay {
    pub relay: Relay,
    pub dir: tempfile::TempDir,
}

impl TestRelay {
    pub async fn start() -> TestRelay {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::start(config(dir.path())).await.unwrap();
        TestRelay { relay, dir }
    }

    pub fn url(&self) -> String {
        self.relay.url()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("server.db")
    }

    /// A read-write connection to the relay's database, as the reference's
    /// tests use it to inspect and tamper.
    pub fn sql(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.db()).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c
    }
}

pub fn config(dir: &Path) -> Config {
    Config {
        port: 0,
        db: dir.join("server.db"),
        ..Default::default()
    }
}

/// Fast Argon2id parameters for tests.
pub fn cheap() -> CreateOptions {
    CreateOptions {
        kdf: KdfParams {
            m_kib: 256,
            t: 1,
            p: 1,
        },
    }
}

pub const PASS: &str = "test passphrase";

/// A new identity in `root/name`, published to `url`.
pub async fn user(root: &Path, name: &str, url: &str) -> User {
    let u = User::create_with(&root.join(name), PASS, name, Some(url), cheap())
        .await
        .unwrap();
    u.publish(100, false).await.unwrap();
    u
}

/// A relay and two users on it, Alice and Bob, in a fresh folder (kept
/// alive by the returned `TempDir`).
pub async fn pair() -> (TestRelay, tempfile::TempDir, User, User) {
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let alice = user(tmp.path(), "alice", &relay.url()).await;
    let bob = user(tmp.path(), "bob", &relay.url()).await;
    (relay, tmp, alice, bob)
}

/// The texts of what one `receive` returns.
pub async fn texts(u: &User) -> Vec<String> {
    u.receive()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect()
}

/// Receives until `n` messages arrived (or panics after a while).
pub async fn receive_n(u: &User, n: usize) -> Vec<retalk::Message> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + PATIENCE;
    while got.len() < n {
        got.extend(u.receive().await.unwrap());
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} messages arrived",
            got.len()
        );
        if got.len() < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    got
}

/// Environment variable that turns a test binary run into a child process
/// of a multi-process test (its value names the role).
pub const CHILD_ROLE: &str = "RETALK_TEST_CHILD";

/// The role of this process when a test re-ran its own binary.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ROLE).ok()
}

/// Runs test `test_name` of this same test binary as a child process with
/// extra environment; returns its exit status and output. Async (tokio's
/// process API) because the relay the child talks to runs on this
/// process's runtime.
pub async fn run_child(test_name: &str, envs: &[(&str, String)]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .expect("child process did not finish in time")
        .unwrap()
}

/// Text of a child's output, for assertion messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
