//! The identity store: creation, passphrase, permissions, key-derivation
//! parameters, saved peers. No relay needed.

use std::path::Path;

use retalk::{ClientError, User, UserId};
use retalk_testkit::*;
use sha2::{Digest, Sha256};

fn digest_dir(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                hex::encode(Sha256::digest(bytes)),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn create_open_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    assert!(!User::exists(&dir));
    assert!(matches!(
        User::open(&dir, PASS).await,
        Err(ClientError::NoIdentity(_))
    ));

    let made = User::create_with(&dir, PASS, "alice", Some("http://127.0.0.1:9"), cheap())
        .await
        .unwrap();
    assert!(User::exists(&dir));
    let id = made.user_id();
    assert_eq!(
        id.as_str(),
        retalk::proto::fingerprint(&made.identity_key(), &made.signing_key())
    );
    drop(made);

    let again = User::create_with(&dir, PASS, "other", None, cheap()).await;
    let err = again.unwrap_err();
    assert!(matches!(err, ClientError::AlreadyExists(_)));
    assert!(err.is_refusal());

    let mut u = User::open(&dir, PASS).await.unwrap();
    assert_eq!(u.user_id(), id);
    assert_eq!(u.name(), "alice");
    assert_eq!(u.relay_url(), Some("http://127.0.0.1:9"));
    u.set_relay_url("http://127.0.0.1:10");
    assert_eq!(u.relay_url(), Some("http://127.0.0.1:10"));
    drop(u);
    // The override was for that session only.
    let u = User::open(&dir, PASS).await.unwrap();
    assert_eq!(u.relay_url(), Some("http://127.0.0.1:9"));

    // No relay at all: a refusal, not a crash.
    let none = User::create_with(&tmp.path().join("norelay"), PASS, "n", None, cheap())
        .await
        .unwrap();
    let err = none.send(&id, "x").await.unwrap_err();
    assert_eq!(err, ClientError::NoRelay);
    assert!(err.is_refusal());
}

#[tokio::test]
async fn wrong_passphrase_fails_clearly_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("id");
    let u = User::create_with(&dir, PASS, "alice", None, cheap())
        .await
        .unwrap();
    u.add_peer("bob", &UserId::parse(&"b".repeat(32), "t").unwrap(), None)
        .unwrap();
    drop(u);
    let before = digest_dir(&dir);
    let err = User::open(&dir, "not the passphrase").await.unwrap_err();
    assert_eq!(err, ClientError::WrongPassphrase);
    assert!(err.is_refusal());
    assert!(err.to_string().contains("wrong passphrase"));
    assert_eq!(digest_dir(&dir), before, "a failed open must not write");
    assert!(User::open(&dir, PASS).await.is_ok());
}

#[cfg(unix)]
#[tokio::test]
async fn folder_is_private_and_files_too() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("deep/id");
    let u = User::create_with(&dir, PASS, "p", None, cheap())
        .await
        .unwrap();
    u.add_peer("x", &u.user_id(), None).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{} is not private", p.display());
        files += 1;
    }
    assert!(files >= 2, "expected the database and the lock file");
}

#[tokio::test]
async fn default_key_derivation_is_argon2id_19mib_2_passes_2_lanes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = User::create(&tmp.path().join("a"), PASS, "a", None)
        .await
        .unwrap();
    let b = User::create(&tmp.path().join("b"), PASS, "b", None)
        .await
        .unwrap();
    let meta = |dir: &str, k: &str| -> String {
        rusqlite::Connection::open(tmp.path().join(dir).join("retalk.db"))
            .unwrap()
            .query_row("SELECT v FROM meta WHERE k=?1", [k], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(meta("a", "kdf"), "argon2id");
    assert_eq!(meta("a", "kdf_m_kib"), "19456");
    assert_eq!(meta("a", "kdf_t"), "2");
    assert_eq!(meta("a", "kdf_p"), "2");
    assert_eq!(meta("a", "format_version"), "4");
    assert_eq!(meta("a", "kdf_salt").len(), 32);
    assert_ne!(
        meta("a", "kdf_salt"),
        meta("b", "kdf_salt"),
        "salts are per store"
    );
    // The account is stored encrypted, not as a readable pickle.
    let account = meta("a", "account");
    assert!(serde_json::from_str::<serde_json::Value>(&account).is_err());
    assert!(!account.contains(&a.identity_key()));
    // The stored parameters are what opening uses.
    drop(a);
    let a = User::open(&tmp.path().join("a"), PASS).await.unwrap();
    assert_ne!(a.user_id(), b.user_id());
}

#[tokio::test]
async fn saved_peers_resolve_by_name_then_id() {
    let tmp = tempfile::tempdir().unwrap();
    let u = User::create_with(&tmp.path().join("id"), PASS, "me", None, cheap())
        .await
        .unwrap();
    let bob = UserId::parse(&"ab".repeat(16), "t").unwrap();
    let carol = UserId::parse(&"cd".repeat(16), "t").unwrap();
    u.add_peer("bob", &bob, None).unwrap();
    u.add_peer(
        "carol",
        &carol,
        Some("teXmhMp1bJIls+R3WqcrqjOq1aWHuTEJpCgvttG5c1I"),
    )
    .unwrap();
    assert_eq!(u.resolve_peer("bob").unwrap(), bob);
    assert_eq!(u.resolve_peer(carol.as_str()).unwrap(), carol);
    assert_eq!(
        u.resolve_peer(&carol.as_str().to_uppercase()).unwrap(),
        carol
    );
    let err = u.resolve_peer("dave").unwrap_err();
    assert_eq!(err, ClientError::UnknownPeer("dave".into()));
    assert!(err.is_refusal());
    // A saved name wins over an id-shaped string.
    u.add_peer(carol.as_str(), &bob, None).unwrap();
    assert_eq!(u.resolve_peer(carol.as_str()).unwrap(), bob);

    let peers = u.peers().unwrap();
    let names: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bob", "carol", carol.as_str()]);
    assert_eq!(
        peers[1].pin.as_deref(),
        Some("teXmhMp1bJIls+R3WqcrqjOq1aWHuTEJpCgvttG5c1I")
    );
    // Renaming replaces; bad input is refused.
    u.add_peer("bob", &carol, None).unwrap();
    assert_eq!(u.resolve_peer("bob").unwrap(), carol);
    assert!(matches!(
        u.add_peer("x", &bob, Some("not a key")),
        Err(ClientError::InvalidArgument(_))
    ));
    assert!(u.add_peer("", &bob, None).is_err());
    assert!(u.add_peer("a\u{1b}[31m", &bob, None).is_err());
}

#[tokio::test]
async fn a_python_identity_folder_is_recognised_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("py");
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/fixture-0.0.1/alice/store.db"
    );
    std::fs::copy(fixture, dir.join("store.db")).unwrap();
    let python_store = || std::fs::read(dir.join("store.db")).unwrap();
    let before = python_store();
    assert!(User::exists(&dir));
    assert!(matches!(
        User::create_with(&dir, PASS, "x", None, cheap()).await,
        Err(ClientError::AlreadyExists(_))
    ));
    // Opening takes it over with its own secret; a wrong one changes nothing.
    assert_eq!(
        User::open(&dir, "not alice's secret").await.unwrap_err(),
        ClientError::WrongPassphrase
    );
    assert!(!dir.join("retalk.db").exists());
    assert_eq!(python_store(), before);
}
