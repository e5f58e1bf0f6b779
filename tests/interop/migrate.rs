//! Item 5 of the interop issue: identities made by the Python 0.0.1 CLI
//! (`tests/data/fixture-0.0.1`, a copy of `../shared/fixtures/retalk-0.0.1`)
//! are read by `retalk::migrate` exactly as the reference reads them.

use retalk_testkit::pyref as harness;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use harness::{copy_dir, fixture_dir, snapshot, tempdir, Ver};
use retalk::migrate::{python001, MigrateError};
use retalk::proto::Envelope;
use serde_json::{json, Value};
use vodozemac::olm::OlmMessage;

fn fixture() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("fixture.json")).unwrap())
        .unwrap()
}

/// The reader recovers everything the fixture describes, and Bob's session
/// decrypts the message still pending for him in the fixture's relay
/// database (so the session state really continues).
fn reads_the_fixture_identities() {
    let fx = fixture();
    let bob = python001::read(&fixture_dir().join("bob"), "bob-secret").unwrap();
    assert_eq!(bob.user_id.as_str(), fx["bob"]["user_id"].as_str().unwrap());
    assert_eq!(bob.name, fx["bob"]["name"].as_str().unwrap());
    assert_eq!(bob.server_url.as_deref(), Some("http://127.0.0.1:18769"));
    assert!(bob.fallback_ts.is_some_and(|t| t > 1.7e9));
    let alice_id = fx["alice"]["user_id"].as_str().unwrap();
    assert_eq!(bob.peers.len(), 1);
    assert_eq!(bob.peers[0].name, "alice");
    assert_eq!(bob.peers[0].id.as_str(), alice_id);
    assert_eq!(bob.peers[0].pin, None);
    assert_eq!(bob.sessions.len(), 1);
    assert_eq!(bob.sessions[0].0.as_str(), alice_id);
    assert!(bob.outbox.is_empty(), "Bob's one message was acknowledged");
    assert_eq!(bob.processed.len(), 1);

    let alice = python001::read(&fixture_dir().join("alice"), "alice-secret").unwrap();
    assert_eq!(alice.user_id.as_str(), alice_id);
    assert_eq!(alice.name, "alice-py");
    assert_eq!(
        alice.outbox.len(),
        1,
        "the pending message is unacknowledged"
    );
    assert_eq!(alice.outbox[0].peer, bob.user_id);
    assert_eq!(alice.outbox[0].mtype, 1);

    // The pending message in the relay database, decrypted with the session
    // read from Bob's folder.
    let db = rusqlite::Connection::open_with_flags(
        fixture_dir().join("server.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (sender, mtype, body): (String, i64, String) = db
        .query_row(
            "SELECT sender, mtype, body FROM messages WHERE recipient=?1",
            [bob.user_id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(sender, alice_id);
    assert_eq!(
        body, alice.outbox[0].body,
        "the relay holds Alice's outbox copy"
    );
    let msg = OlmMessage::from_parts(mtype as usize, &STANDARD.decode(&body).unwrap()).unwrap();
    let (_, mut session) = bob.sessions.into_iter().next().unwrap();
    let plaintext = session.decrypt(&msg).unwrap();
    match Envelope::parse(&plaintext).unwrap() {
        Envelope::Msg { id, text, name } => {
            assert_eq!(text, fx["pending_on_relay"]["text"].as_str().unwrap());
            assert_eq!(name, "alice-py");
            assert_eq!(id, alice.outbox[0].id, "the ack will carry the outbox id");
        }
        other => panic!("expected a chat message, got {other:?}"),
    }
}

/// A wrong secret is a typed error and leaves the folder byte-identical
/// (no lock file, journal or anything else appears).
fn wrong_secret_is_refused_and_changes_nothing() {
    let tmp = tempdir("migrate-read");
    let dir = tmp.path().join("bob");
    copy_dir(&fixture_dir().join("bob"), &dir);
    let before = snapshot(&dir);
    let err = python001::read(&dir, "not-bob-secret").unwrap_err();
    assert!(matches!(err, MigrateError::WrongSecret), "{err:?}");
    assert!(err.to_string().contains("wrong secret"), "{err}");
    assert_eq!(snapshot(&dir), before);
    // and reading with the right one writes nothing either
    python001::read(&dir, "bob-secret").unwrap();
    assert_eq!(snapshot(&dir), before);
    // not an identity folder at all
    let err = python001::read(tmp.path(), "bob-secret").unwrap_err();
    assert!(matches!(err, MigrateError::NotPythonIdentity(_)), "{err:?}");
    assert!(!python001::is_python_identity(tmp.path()));
    assert!(python001::is_python_identity(&dir));
}

/// What our reader sees is what the real Python 0.0.1 library sees: user
/// id and both public keys of each fixture identity, and the reference
/// refuses the same wrong secret.
fn reader_agrees_with_the_reference() {
    let py = harness::pyref();
    let tmp = tempdir("migrate-agree");
    copy_dir(&fixture_dir(), tmp.path());
    let got = harness::parallel(
        vec![("alice", "alice-secret"), ("bob", "bob-secret")],
        |(who, secret)| {
            let dir = tmp.path().join(who);
            let theirs = py.drive(
                Ver::V001,
                "identity_key",
                &json!({"dir": dir, "secret": secret}),
            );
            let wrong = py.driver(
                Ver::V001,
                "user_id",
                &json!({"dir": dir, "secret": "wrong"}),
            );
            (who, secret, theirs, wrong)
        },
    );
    for (who, secret, theirs, wrong) in got {
        let ours = python001::read(&tmp.path().join(who), secret).unwrap();
        assert_eq!(ours.user_id.as_str(), theirs["user_id"].as_str().unwrap());
        assert_eq!(
            ours.account.curve25519_key().to_base64(),
            theirs["identity_key"].as_str().unwrap()
        );
        assert_eq!(
            ours.account.ed25519_key().to_base64(),
            theirs["signing_key"].as_str().unwrap()
        );
        assert_eq!(wrong.code, 1, "{:?}", wrong.json);
        assert_eq!(wrong.json["type"], "PickleException");
    }
}

fn copy_fixture(tmp: &std::path::Path) {
    copy_dir(&fixture_dir(), tmp);
}

fn meta(db: &std::path::Path, k: &str) -> Option<String> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.query_row("SELECT v FROM meta WHERE k=?1", [k], |r| r.get(0))
        .ok()
}

/// The library migration of Bob's fixture folder: same user id, his saved
/// peer, his session continues (he decrypts the message pending on the
/// fixture's relay database, shown under his saved name for Alice), his
/// reply decrypts in the real Python 0.0.1 client and acknowledges Alice's
/// outbox entry. The Python files end up byte-identical in the backup
/// folder, where the Python library still opens them, and the new store is
/// Argon2id-protected under the same secret.
fn library_migration_continues_the_conversation() {
    let py = harness::pyref();
    let fx = fixture();
    let tmp = tempdir("migrate-lib");
    copy_fixture(tmp.path());
    let bob_dir = tmp.path().join("bob");
    let original = std::fs::read(bob_dir.join("store.db")).unwrap();
    let relay = harness::RustRelay::start(&tmp.path().join("server.db"));

    assert!(retalk::migrate::needs_migration(&bob_dir));
    let started = std::time::Instant::now();
    let done =
        retalk::migrate::migrate_python_001(&bob_dir, "bob-secret", retalk::KdfParams::default())
            .unwrap();
    eprintln!("migration took {:?}", started.elapsed());
    assert_eq!(
        done.user_id.as_str(),
        fx["bob"]["user_id"].as_str().unwrap()
    );
    assert_eq!(
        (done.sessions, done.peers, done.outbox, done.processed),
        (1, 1, 0, 1)
    );
    assert_eq!(done.name, "bob-py");
    assert_eq!(done.relay_url.as_deref(), Some("http://127.0.0.1:18769"));
    assert!(!retalk::migrate::needs_migration(&bob_dir));

    // The folder now: our store, the Python files in the backup, nothing
    // else left over (SQLite's -wal/-shm companions of retalk.db aside).
    let mut names: Vec<String> = std::fs::read_dir(&bob_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("retalk.db-"))
        .collect();
    names.sort();
    assert_eq!(names, ["python-0.0.1-backup", "retalk.db", "retalk.lock"]);
    assert_eq!(done.backup, bob_dir.join("python-0.0.1-backup"));
    assert_eq!(
        std::fs::read(done.backup.join("store.db")).unwrap(),
        original
    );

    // Argon2id under the same secret; the old unsalted key opens nothing.
    let db = bob_dir.join("retalk.db");
    assert_eq!(meta(&db, "kdf").as_deref(), Some("argon2id"));
    assert_eq!(meta(&db, "kdf_m_kib").as_deref(), Some("19456"));
    assert_eq!(meta(&db, "kdf_t").as_deref(), Some("2"));
    assert_eq!(meta(&db, "kdf_salt").map(|s| s.len()), Some(32));
    let account = meta(&db, "account").unwrap();
    assert!(vodozemac::olm::AccountPickle::from_encrypted(
        &account,
        &python001::pickle_key("bob-secret")
    )
    .is_err());
    assert_eq!(
        meta(&db, "user_id").as_deref(),
        fx["bob"]["user_id"].as_str()
    );

    // Open it with the library, against our relay on the fixture database.
    let mut bob = relay
        .block_on(retalk::User::open(&bob_dir, "bob-secret"))
        .unwrap();
    assert!(matches!(
        relay.block_on(retalk::User::open(&bob_dir, "wrong")),
        Err(retalk::ClientError::WrongPassphrase)
    ));
    bob.set_relay_url(&relay.url);
    assert_eq!(
        bob.user_id().as_str(),
        fx["bob"]["user_id"].as_str().unwrap()
    );
    assert_eq!(bob.name(), "bob-py");
    let alice_id = bob.resolve_peer("alice").unwrap();
    assert_eq!(alice_id.as_str(), fx["alice"]["user_id"].as_str().unwrap());
    assert_eq!(bob.session_count(&alice_id).unwrap(), 1);

    let got = relay.block_on(bob.receive()).unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].from, alice_id);
    assert_eq!(got[0].name, "alice");
    assert_eq!(
        got[0].text,
        fx["pending_on_relay"]["text"].as_str().unwrap()
    );
    assert_eq!(bob.session_count(&alice_id).unwrap(), 1, "same session");

    relay
        .block_on(bob.send(&alice_id, "reply from the Rust library"))
        .unwrap();
    let alice = json!({
        "dir": tmp.path().join("alice"), "secret": "alice-secret",
        "server": relay.url, "name": "alice-py",
    });
    assert_eq!(
        py.drive(Ver::V001, "outbox", &alice)["outbox"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let got = py.drive(Ver::V001, "receive", &alice);
    assert_eq!(
        got["messages"],
        json!([{"from": fx["bob"]["user_id"], "name": "~bob-py", "text": "reply from the Rust library"}])
    );
    assert_eq!(
        py.drive(Ver::V001, "outbox", &alice)["outbox"],
        json!([]),
        "Bob's acknowledgement of the pending message arrived"
    );
    // and Alice's acknowledgement empties Bob's outbox
    assert_eq!(bob.outbox_len().unwrap(), 1);
    assert!(relay.block_on(bob.receive()).unwrap().is_empty());
    assert_eq!(bob.outbox_len().unwrap(), 0);

    // The backup is still a working Python identity folder.
    let backup = py.drive(
        Ver::V001,
        "user_id",
        &json!({"dir": done.backup, "secret": "bob-secret"}),
    );
    assert_eq!(backup["user_id"], fx["bob"]["user_id"]);
}

/// A wrong secret refuses the migration with a typed error and leaves the
/// folder byte-identical; a second migration of a migrated folder is
/// refused; an interrupted migration (staging left behind) starts over.
fn migration_refusals_and_restart() {
    let tmp = tempdir("migrate-refuse");
    copy_fixture(tmp.path());
    let dir = tmp.path().join("alice");
    let before = snapshot(&dir);
    let cheap = retalk::KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };
    let err = retalk::migrate::migrate_python_001(&dir, "bob-secret", cheap).unwrap_err();
    assert!(matches!(err, MigrateError::WrongSecret), "{err:?}");
    assert_eq!(snapshot(&dir), before, "nothing changed");
    let err = retalk::migrate::import_if_needed(&dir, "nope").unwrap_err();
    assert!(matches!(err, MigrateError::WrongSecret), "{err:?}");
    assert_eq!(snapshot(&dir), before, "nothing changed");

    // an interrupted earlier attempt left a staging folder: started over
    std::fs::create_dir(dir.join(".retalk-migration")).unwrap();
    std::fs::write(dir.join(".retalk-migration/retalk.db"), b"half").unwrap();
    let done = retalk::migrate::migrate_python_001(&dir, "alice-secret", cheap).unwrap();
    assert_eq!(done.outbox, 1);
    assert!(!dir.join(".retalk-migration").exists());
    let err = retalk::migrate::migrate_python_001(&dir, "alice-secret", cheap).unwrap_err();
    assert!(matches!(err, MigrateError::AlreadyMigrated(_)), "{err:?}");
    assert_eq!(
        retalk::migrate::import_if_needed(&dir, "alice-secret").unwrap(),
        None
    );

    // interrupted after the commit point: the Python file is still there;
    // the next open finishes moving it
    std::fs::copy(
        dir.join("python-0.0.1-backup/store.db"),
        dir.join("store.db"),
    )
    .unwrap();
    assert_eq!(
        retalk::migrate::import_if_needed(&dir, "alice-secret").unwrap(),
        None
    );
    assert!(!dir.join("store.db").exists());
    assert!(
        !dir.join("python-0.0.1-backup-2").exists(),
        "same file, same backup"
    );
}

/// Transparent on first open: `retalk::User::open` on a Python 0.0.1
/// folder takes it over (a wrong secret changes nothing), and later opens
/// use the new store.
fn user_open_takes_over_a_python_folder() {
    let fx = fixture();
    let tmp = tempdir("migrate-open");
    copy_fixture(tmp.path());
    let dir = tmp.path().join("alice");
    let before = snapshot(&dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(retalk::User::exists(&dir));
    let err = rt
        .block_on(retalk::User::open(&dir, "bob-secret"))
        .unwrap_err();
    assert!(
        matches!(err, retalk::ClientError::WrongPassphrase),
        "{err:?}"
    );
    assert_eq!(snapshot(&dir), before, "a wrong secret changes nothing");

    let alice = rt
        .block_on(retalk::User::open(&dir, "alice-secret"))
        .unwrap();
    assert_eq!(
        alice.user_id().as_str(),
        fx["alice"]["user_id"].as_str().unwrap()
    );
    assert_eq!(alice.name(), "alice-py");
    assert_eq!(alice.relay_url(), Some("http://127.0.0.1:18769"));
    assert_eq!(alice.outbox_len().unwrap(), 1);
    let peers = alice.peers().unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].name, "bob");
    assert_eq!(peers[0].id.as_str(), fx["bob"]["user_id"].as_str().unwrap());
    assert_eq!(alice.session_count(&peers[0].id).unwrap(), 1);
    drop(alice);
    assert!(!dir.join("store.db").exists());
    assert!(dir.join("python-0.0.1-backup/store.db").exists());
    let again = rt
        .block_on(retalk::User::open(&dir, "alice-secret"))
        .unwrap();
    assert_eq!(
        again.user_id().as_str(),
        fx["alice"]["user_id"].as_str().unwrap()
    );
    assert!(matches!(
        rt.block_on(retalk::User::open(&dir, "alice-secret-typo")),
        Err(retalk::ClientError::WrongPassphrase)
    ));
}

/// Folders of Python retalk 0.3.x (made by it, or a 0.0.1 folder it has
/// opened, which upgrades the tables in place) are not mistaken for 0.0.1
/// folders: the 0.0.1 reader refuses them and changes nothing, and opening
/// them takes them over as 0.3.x identities (same user id).
fn python_030_folders_are_read_as_030() {
    let py = harness::pyref();
    let tmp = tempdir("migrate-030");
    copy_fixture(tmp.path());
    let made = tmp.path().join("made-by-030");
    let upgraded = tmp.path().join("bob");
    let ids = harness::parallel(
        vec![(&made, "s3"), (&upgraded, "bob-secret")],
        |(dir, secret)| py.drive(Ver::V030, "user_id", &json!({"dir": dir, "secret": secret})),
    );
    let rt = harness::runtime();
    for ((dir, secret), id) in [(&made, "s3"), (&upgraded, "bob-secret")]
        .into_iter()
        .zip(ids)
    {
        let before = snapshot(dir);
        let err = python001::read(dir, "whatever").unwrap_err();
        assert!(matches!(err, MigrateError::Python03(..)), "{err:?}");
        assert!(err.to_string().contains("0.3.x"), "{err}");
        assert_eq!(&snapshot(dir), &before, "nothing changed");
        assert_eq!(
            retalk::migrate::pending(dir),
            Some(retalk::migrate::Generation::V03)
        );
        let user = rt.block_on(retalk::User::open(dir, secret)).unwrap();
        assert_eq!(
            Some(user.user_id().as_str()),
            id["user_id"].as_str(),
            "{id}"
        );
        assert!(dir.join("python-0.3-backup/store.db").is_file());
    }
}

/// Rows the 0.0.1 store does not attribute are still honoured after the
/// migration: a peer whose session Alice started (the reference never
/// records that peer's identity key) can be pinned afterwards, and a copy
/// of a message Alice decrypted before the migration (the reference's
/// `processed` rows name no sender) is acknowledged again when its sender
/// re-sends it, which empties that sender's outbox.
fn unattributed_rows_after_migration() {
    let py = harness::pyref();
    let tmp = tempdir("migrate-unattributed");
    let relay = harness::RustRelay::start(&tmp.path().join("server.db"));
    let user = |name: &str| harness::PyUser {
        store: tmp.path().join(name).join("store.db"),
        ..harness::PyUser::new(Ver::V001, tmp.path(), name, &relay.url)
    };
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let ids = harness::parallel(vec![&alice, &bob, &carol], |u| {
        std::fs::create_dir_all(u.store.parent().unwrap()).unwrap();
        u.publish(py, 5)
    });
    let b_id = &ids[1];
    // Alice starts a session with Bob; Carol starts one with Alice; Bob
    // writes to Alice, who decrypts (and acks) before Bob reads the ack.
    alice.run(py, "send", json!({"to": b_id, "text": "hi bob"}));
    carol.run(py, "send", json!({"to": ids[0], "text": "hi alice"}));
    assert_eq!(bob.receive(py).len(), 1);
    bob.run(
        py,
        "send",
        json!({"to": ids[0], "text": "acked before the move"}),
    );
    assert_eq!(alice.receive(py).len(), 2);
    // the ack Alice sent goes missing (the relay lost it)
    let conn = rusqlite::Connection::open(&relay.db).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute("DELETE FROM messages WHERE recipient=?1", [b_id])
        .unwrap();
    assert_eq!(bob.outbox(py).len(), 1);

    let rt = harness::runtime();
    let mut a = rt
        .block_on(retalk::User::open(
            alice.store.parent().unwrap(),
            "alice-secret",
        ))
        .unwrap();
    a.set_relay_url(&relay.url);
    let bob_ik = py.drive(Ver::V001, "identity_key", &bob.args(json!({})))["identity_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = retalk::UserId::parse(b_id, "bob").unwrap();
    a.add_peer("bob", &b, Some(&bob_ik))
        .expect("a pin for a peer whose key the reference did not record");

    // Bob re-sends; the migrated Alice recognises the copy and re-acks it.
    assert_eq!(bob.run(py, "flush_outbox", json!({}))["resent"], 1);
    assert!(rt.block_on(a.receive()).unwrap().is_empty(), "a duplicate");
    assert!(bob.receive(py).is_empty());
    assert_eq!(
        bob.outbox(py),
        Vec::<serde_json::Value>::new(),
        "the re-ack arrived"
    );
}

crate::cases! {
    python: [reader_agrees_with_the_reference, library_migration_continues_the_conversation, python_030_folders_are_read_as_030, unattributed_rows_after_migration],
    plain: [reads_the_fixture_identities, wrong_secret_is_refused_and_changes_nothing, migration_refusals_and_restart, user_open_takes_over_a_python_folder],
}
