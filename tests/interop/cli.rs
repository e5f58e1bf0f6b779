//! Our CLI (`retalk`, the real binary) with the Python reference:
//!
//! * item 3 of the interop issue: the CLI conversation against each Python
//!   relay (0.0.1 and 0.3.0);
//! * item 4, by command line: the Python 0.0.1 CLI and ours through our
//!   relay;
//! * item 5: the migration of an identity folder made by the Python 0.0.1
//!   CLI (`tests/data/fixture-0.0.1`, a copy of
//!   `../shared/fixtures/retalk-0.0.1`), by simply using our CLI on it.

use retalk_testkit::pyref as harness;

use std::path::Path;

use harness::{
    copy_dir, fixture_dir, parallel, rust_cli, rust_cli_ok, snapshot, tempdir, PyRelay, RustRelay,
    Ver,
};
use serde_json::{json, Value};

/// Runs our CLI for identity `dir` with `secret` and relay `url`.
fn ours(home: &Path, dir: &Path, secret: &str, url: &str, args: &[&str]) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-s", dir.to_str().unwrap()]);
    rust_cli_ok(
        home,
        &all,
        &[("PICKLE_SECRET", secret), ("SERVER_URL", url)],
    )
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// Two identities of our CLI talk through a Python relay: init, add,
/// receive (publishes), send, receive with saved names, both ways, and
/// every message acknowledged.
fn conversation_at_python_relay(ver: Ver) {
    let py = harness::pyref();
    let tmp = tempdir(&format!("cli-at-py{}", ver.as_str()));
    let home = tmp.path().join("home");
    let relay = PyRelay::start(py, ver, &tmp.path().join("relay.db"), None, &[]);
    let url = relay.url.as_str();
    let dir = |who: &str| tmp.path().join(who);
    let secret = |who: &str| format!("{who}-secret");
    let ids = parallel(vec!["alice", "bob"], |who| {
        let d = dir(who);
        rust_cli_ok(
            &home,
            &["init", d.to_str().unwrap(), "--name", who],
            &[("PICKLE_SECRET", &secret(who)), ("SERVER_URL", url)],
        )
        .trim()
        .to_owned()
    });
    let (a, b) = (&ids[0], &ids[1]);
    let cli = |who: &str, args: &[&str]| ours(&home, &dir(who), &secret(who), url, args);
    parallel(
        vec![("alice", "bob", b), ("bob", "alice", a)],
        |(who, peer, id)| cli(who, &["add", peer, id]),
    );
    assert_eq!(cli("bob", &["receive"]), "", "publishes Bob's keys");
    cli("alice", &["send", "bob", "hello over the python relay"]);
    assert_eq!(
        cli("bob", &["receive"]),
        "alice: hello over the python relay\n"
    );
    cli("bob", &["send", "alice", "and back"]);
    let got = json_lines(&cli("alice", &["receive", "--json"]));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (&got[0]["from"], &got[0]["name"], &got[0]["text"]),
        (&json!(b), &json!("bob"), &json!("and back"))
    );
    // Alice's ack reaches Bob; nothing else is waiting anywhere.
    assert_eq!(cli("bob", &["receive"]), "");
    assert_eq!(cli("alice", &["receive"]), "");
    let conn = rusqlite::Connection::open(&relay.db).unwrap();
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

fn conversation_at_python_relay_001() {
    conversation_at_python_relay(Ver::V001);
}

fn conversation_at_python_relay_030() {
    conversation_at_python_relay(Ver::V030);
}

/// The Python 0.0.1 CLI and ours, each with its own identity, through our
/// relay: both start a session in turn and show each other's saved names.
fn python_cli_and_our_cli_through_our_relay() {
    let py = harness::pyref();
    let tmp = tempdir("cli-mixed");
    let home = tmp.path().join("home");
    let relay = RustRelay::start(&tmp.path().join("server.db"));
    let url = relay.url.as_str();
    let (pdir, rdir) = (tmp.path().join("py"), tmp.path().join("rs"));
    let pyenv = [("PICKLE_SECRET", "py-secret")];
    let pycli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-s", pdir.to_str().unwrap(), "--server", url]);
        py.cli_ok(Ver::V001, &home, &all, &pyenv)
    };
    let p_id = py
        .cli_ok(
            Ver::V001,
            &home,
            &["init", pdir.to_str().unwrap(), "--name", "pyuser"],
            &pyenv,
        )
        .trim()
        .to_owned();
    let r_id = rust_cli_ok(
        &home,
        &["init", rdir.to_str().unwrap(), "--name", "rsuser"],
        &[("PICKLE_SECRET", "rs-secret"), ("SERVER_URL", url)],
    )
    .trim()
    .to_owned();
    let rs = |args: &[&str]| ours(&home, &rdir, "rs-secret", url, args);
    py.cli_ok(
        Ver::V001,
        &home,
        &["add", "rusty", &r_id, "-s", pdir.to_str().unwrap()],
        &[],
    );
    rs(&["add", "snake", &p_id]);

    // Python starts (our receive publishes our keys first)
    assert_eq!(rs(&["receive"]), "");
    pycli(&["send", "rusty", "from the python cli"]);
    assert_eq!(rs(&["receive"]), "snake: from the python cli\n");
    rs(&["send", "snake", "from the rust cli"]);
    let got = json_lines(&pycli(&["receive", "--json"]));
    assert_eq!(
        got,
        vec![json!({"from": r_id, "name": "rusty", "text": "from the rust cli"})]
    );
    assert_eq!(rs(&["receive"]), "", "the Python ack");
    let o = py.drive(Ver::V001, "outbox", &json!({ "dir": pdir }));
    assert_eq!(o["outbox"], json!([]), "our ack emptied the Python outbox");

    // and a second Rust identity starts a session with the Python user
    let r2 = tmp.path().join("rs2");
    let r2_id = rust_cli_ok(
        &home,
        &["init", r2.to_str().unwrap(), "--name", "second"],
        &[("PICKLE_SECRET", "rs2-secret"), ("SERVER_URL", url)],
    )
    .trim()
    .to_owned();
    ours(
        &home,
        &r2,
        "rs2-secret",
        url,
        &["send", &p_id, "rust starts"],
    );
    let got = json_lines(&pycli(&["receive", "--json"]));
    assert_eq!(
        got,
        vec![json!({"from": r2_id, "name": "~second", "text": "rust starts"})]
    );
    pycli(&["send", &r2_id, "python answers"]);
    assert_eq!(
        ours(&home, &r2, "rs2-secret", url, &["receive"]),
        "~pyuser: python answers\n"
    );
}

fn meta(db: &Path, k: &str) -> Option<String> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.query_row("SELECT v FROM meta WHERE k=?1", [k], |r| r.get(0))
        .ok()
}

/// Item 5 end to end, with the real binaries: Bob's folder made by the
/// Python 0.0.1 CLI is taken over by our CLI on first use. A wrong secret
/// is refused and changes nothing; with his secret, `retalk receive`
/// shows the message Alice left on the relay (our relay, opened on the
/// fixture's relay database) under his saved name for her; `retalk id`
/// shows the same user id; his reply, sent with our CLI, is decrypted by
/// Alice's Python 0.0.1 CLI on her fixture folder, and her outbox entry
/// for the pending message is acknowledged. The original files are in
/// `bob/python-0.0.1-backup/`, byte for byte, and the new store is
/// protected by Argon2id.
fn migration_by_the_cli() {
    let py = harness::pyref();
    let fx: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("fixture.json")).unwrap())
            .unwrap();
    let tmp = tempdir("cli-migrate");
    copy_dir(&fixture_dir(), tmp.path());
    let home = tmp.path().join("home");
    let (alice_dir, bob_dir) = (tmp.path().join("alice"), tmp.path().join("bob"));
    let original = std::fs::read(bob_dir.join("store.db")).unwrap();
    // the fixture was made for another audience: our relay, any port, on a
    // copy of the fixture's relay database
    let relay = RustRelay::start(&tmp.path().join("server.db"));
    let url = relay.url.as_str();
    let bob_id = fx["bob"]["user_id"].as_str().unwrap();
    let alice_id = fx["alice"]["user_id"].as_str().unwrap();
    let pending = fx["pending_on_relay"]["text"].as_str().unwrap();

    // a wrong secret: refused (exit 2), folder byte-identical, mail untouched
    let before = snapshot(&bob_dir);
    let out = rust_cli(
        &home,
        &["receive", "-s", bob_dir.to_str().unwrap()],
        &[("PICKLE_SECRET", "not-bobs-secret"), ("SERVER_URL", url)],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wrong passphrase"), "{stderr}");
    assert_eq!(snapshot(&bob_dir), before, "a wrong secret changes nothing");
    assert_eq!(harness::relay_pending(&relay.db, bob_id), 1);

    // the right secret: taken over (said on stderr), and the pending
    // message shows
    let out = rust_cli(
        &home,
        &["receive", "-s", bob_dir.to_str().unwrap()],
        &[("PICKLE_SECRET", "bob-secret"), ("SERVER_URL", url)],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("alice: {pending}\n")
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("took over the Python retalk 0.0.1 identity")
            && stderr.contains("python-0.0.1-backup"),
        "{stderr}"
    );
    let bob = |args: &[&str]| ours(&home, &bob_dir, "bob-secret", url, args);
    let id: Value = serde_json::from_str(bob(&["id", "--json"]).trim()).unwrap();
    assert_eq!(id["user_id"], bob_id);
    assert_eq!(id["name"], "bob-py");

    // the folder: our store, Argon2id, the Python original in the backup
    assert!(!bob_dir.join("store.db").exists());
    assert_eq!(
        std::fs::read(bob_dir.join("python-0.0.1-backup/store.db")).unwrap(),
        original
    );
    let db = bob_dir.join("retalk.db");
    assert_eq!(meta(&db, "kdf").as_deref(), Some("argon2id"));
    assert!(meta(&db, "kdf_m_kib").unwrap().parse::<u32>().unwrap() >= 19 * 1024);
    assert_eq!(
        meta(&db, "migrated_from").as_deref(),
        Some("python-retalk-0.0.1")
    );

    // Bob answers with our CLI; Alice reads it with the Python 0.0.1 CLI
    bob(&["send", "alice", "reply from the rust cli"]);
    let alice_args = ["-s", alice_dir.to_str().unwrap(), "--server", url];
    let got = py.cli_ok(
        Ver::V001,
        &home,
        &[&["receive", "--json"][..], &alice_args[..]].concat(),
        &[("PICKLE_SECRET", "alice-secret")],
    );
    assert_eq!(
        json_lines(&got),
        vec![json!({"from": bob_id, "name": "bob", "text": "reply from the rust cli"})]
    );
    let outbox = py.drive(Ver::V001, "outbox", &json!({ "dir": alice_dir }));
    assert_eq!(
        outbox["outbox"],
        json!([]),
        "Bob's ack of the pending message emptied Alice's outbox"
    );
    // and Alice's ack of the reply reaches Bob; the relay holds nothing
    assert_eq!(bob(&["receive"]), "");
    assert_eq!(harness::relay_pending(&relay.db, bob_id), 0);
    assert_eq!(harness::relay_pending(&relay.db, alice_id), 0);
    // the conversation goes on in both directions
    py.cli_ok(
        Ver::V001,
        &home,
        &[&["send", "bob", "still here"][..], &alice_args[..]].concat(),
        &[("PICKLE_SECRET", "alice-secret")],
    );
    assert_eq!(bob(&["receive"]), "alice: still here\n");
}

crate::cases! {
    python: [conversation_at_python_relay_001, conversation_at_python_relay_030, python_cli_and_our_cli_through_our_relay, migration_by_the_cli],
    plain: [],
}
