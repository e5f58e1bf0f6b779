//! Item 5 of the interop issue: identities made by the Python 0.0.1 CLI
//! (`tests/data/fixture-0.0.1`, a copy of `../shared/fixtures/retalk-0.0.1`)
//! are read by `retalk::migrate` exactly as the reference reads them.

#[path = "pyref/harness.rs"]
mod harness;

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
#[test]
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
#[test]
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
#[test]
fn reader_agrees_with_the_reference() {
    let Some(py) = harness::pyref("interop_migrate::reader_agrees_with_the_reference") else {
        return;
    };
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
