//! Client identities for tests: a cheap key derivation (the cost is stored
//! per identity, so tests need not pay the production Argon2id cost on
//! every open; one test covers the defaults), and a relay with two users.

use std::path::Path;
use std::time::Duration;

use retalk::{CreateOptions, KdfParams, User};

use crate::relay::TestRelay;
use crate::PATIENCE;

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

/// The passphrase of every test identity.
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
