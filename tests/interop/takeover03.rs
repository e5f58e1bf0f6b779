//! Taking over identities made by the Python retalk 0.3.0 CLI (issue 9):
//! a 0.3.0 user who switches to our `retalk` keeps their user id, contacts
//! (verified ones stay verified), block list, saved history and Olm
//! sessions, and the conversation goes on with a peer still on Python
//! 0.3.0, including a message that was waiting on the relay.

use retalk_testkit::pyref as harness;

use std::path::Path;
use std::process::Output;

use harness::{rust_cli, tempdir, RustRelay, Ver};
use serde_json::Value;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[track_caller]
fn ok(o: Output, what: &str) -> String {
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout: {out}\nstderr: {err}",
        o.status
    );
    out
}

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn texts(out: &str) -> Vec<String> {
    lines(out)
        .iter()
        .map(|v| v["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn write_pw(home: &Path) -> String {
    std::fs::create_dir_all(home).unwrap();
    let pw = home.join("pw");
    std::fs::write(&pw, "agent-pass\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    pw.to_str().unwrap().to_owned()
}

/// Alice made her identity with Python 0.3.0 and talked to Bob (Python
/// 0.3.0) with `--save`; she blocked Carol; Bob's last message waits on
/// the relay. Our CLI, pointed at the same `~/.retalk/alice`, takes it
/// over on its first command and continues the conversation both ways.
fn a_python_030_identity_is_taken_over_and_the_conversation_continues() {
    let py = harness::pyref();
    let tmp = tempdir("takeover03");
    let relay = RustRelay::start(&tmp.path().join("server.db"));
    let url = relay.url.as_str();
    let (a_home, b_home) = (tmp.path().join("alice"), tmp.path().join("bob"));
    let (a_pw, b_pw) = (write_pw(&a_home), write_pw(&b_home));
    let pya = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-u", "alice", "--passphrase-path", &a_pw]);
        py.cli(Ver::V030, &a_home, &all, &[])
    };
    let pyb = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-u", "bob", "--passphrase-path", &b_pw]);
        py.cli(Ver::V030, &b_home, &all, &[])
    };
    let ours = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-u", "alice", "--passphrase-path", &a_pw]);
        rust_cli(&a_home, &all, &[])
    };

    let init = ["init", "--relay", url, "--display-name"];
    let alice = ok(pya(&[&init[..], &["alice"]].concat()), "py init alice")
        .trim()
        .to_owned();
    let bob = ok(pyb(&[&init[..], &["bob"]].concat()), "py init bob")
        .trim()
        .to_owned();
    let carol = "c0ffee00c0ffee00c0ffee00c0ffee00";
    ok(
        pya(&["add", &bob, "--peer", "bob", "--verify"]),
        "py add bob",
    );
    ok(pyb(&["add", &alice, "--peer", "alice"]), "py add alice");
    ok(pya(&["block", carol]), "py block carol");
    ok(
        pya(&["send", "--peer", "bob", "hello bob", "--save"]),
        "py send",
    );
    assert_eq!(
        texts(&ok(pyb(&["receive", "--all"]), "py bob receive")),
        ["hello bob"]
    );
    // Bob introduces "carol" to Alice; her 0.3.0 receive stages the card
    ok(pyb(&["add", carol, "--peer", "carol"]), "py bob add carol");
    ok(pyb(&["share", "--peer", "alice", "carol"]), "py bob share");
    let card = lines(&ok(
        pya(&["receive", "--peer", "bob"]),
        "py alice gets the card",
    ));
    assert_eq!(card[0]["kind"], "contact", "{card:?}");
    ok(pyb(&["send", "--peer", "alice", "hi alice"]), "py bob send");
    assert_eq!(
        texts(&ok(
            pya(&["receive", "--peer", "bob", "--save"]),
            "py alice receive"
        )),
        ["hi alice"]
    );
    ok(
        pyb(&["send", "--peer", "alice", "waiting on the relay"]),
        "py bob send 2",
    );

    // Our CLI on Alice's 0.3.0 folder: the first command takes it over.
    let dir = a_home.join(".retalk/alice");
    assert!(dir.join("store.db").is_file());
    let o = ours(&["receive", "--peer", "bob", "--save"]);
    let (_, err) = text(&o);
    let got = ok(o, "our receive");
    assert!(
        err.contains("took over the Python retalk 0.3.x identity"),
        "{err}"
    );
    assert!(err.contains("2 saved messages"), "{err}");
    assert_eq!(texts(&got), ["waiting on the relay"]);
    assert_eq!(lines(&got)[0]["from"], bob.as_str());
    assert!(dir.join("retalk.db").is_file());
    assert!(!dir.join("store.db").exists(), "the Python files moved");
    assert!(dir.join("python-0.3-backup/store.db").is_file());

    // Same user id, contacts (bob verified), block list, history.
    assert_eq!(ok(ours(&["id"]), "our id").trim(), alice);
    let contacts = lines(&ok(ours(&["contacts", "--json"]), "our contacts"));
    let b = contacts
        .iter()
        .find(|c| c["fingerprint"] == bob.as_str())
        .unwrap_or_else(|| panic!("bob in {contacts:?}"));
    assert_eq!(b["name"], "bob");
    assert_eq!(b["verified"], true, "{b}");
    let blocked = ok(ours(&["block", "--list"]), "our block --list");
    assert!(blocked.contains(carol), "{blocked}");
    let history = lines(&ok(ours(&["history", "--peer", "bob"]), "our history"));
    let seen: Vec<(String, String)> = history
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap_or_default().to_owned(),
                m["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("out".to_owned(), "hello bob".to_owned()),
            ("in".to_owned(), "hi alice".to_owned()),
            ("in".to_owned(), "waiting on the relay".to_owned()),
        ]
    );

    // The staged card came along, for `import --inbox`.
    let staged = lines(&ok(
        ours(&["import", "--inbox", "--list", "--json"]),
        "our inbox list",
    ));
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert_eq!(
        (
            staged[0]["name"].as_str(),
            staged[0]["fingerprint"].as_str()
        ),
        (Some("carol"), Some(carol))
    );
    assert_eq!(staged[0]["from_fp"], bob.as_str());

    // The Olm sessions carried on: Bob (still Python 0.3.0) reads ours.
    ok(
        ours(&["send", "--peer", "bob", "now from rust"]),
        "our send",
    );
    assert_eq!(
        texts(&ok(pyb(&["receive", "--all"]), "py bob receive 2")),
        ["now from rust"]
    );
    ok(
        pyb(&["send", "--peer", "alice", "and back"]),
        "py bob send 3",
    );
    assert_eq!(
        texts(&ok(ours(&["receive", "--peer", "bob"]), "our receive 2")),
        ["and back"]
    );
}

/// A 0.3.0 identity made with `--no-passphrase` opens with our CLI without
/// any passphrase, as 0.3.0's own commands do (the choice is recorded);
/// and so does one made by ours.
fn no_passphrase_identities_open_without_one() {
    let py = harness::pyref();
    let tmp = tempdir("takeover03-np");
    let relay = RustRelay::start(&tmp.path().join("server.db"));
    let home = tmp.path().join("h");
    let id = ok(
        py.cli(
            Ver::V030,
            &home,
            &["init", "-u", "dave", "--relay", &relay.url, "-np"],
            &[],
        ),
        "py init -np",
    )
    .trim()
    .to_owned();
    let o = rust_cli(&home, &["id", "-u", "dave"], &[]);
    let (_, err) = text(&o);
    assert_eq!(ok(o, "our id on the 0.3.0 -np identity").trim(), id);
    assert!(err.contains("took over"), "{err}");
    assert_eq!(
        ok(rust_cli(&home, &["id", "-u", "dave"], &[]), "again").trim(),
        id
    );

    let ours = ok(
        rust_cli(
            &home,
            &["init", "-u", "erin", "--relay", &relay.url, "-np"],
            &[],
        ),
        "our init -np",
    )
    .trim()
    .to_owned();
    assert_eq!(
        ok(
            rust_cli(&home, &["id", "-u", "erin"], &[]),
            "our id, no -np"
        )
        .trim(),
        ours
    );
}

/// A wrong passphrase refuses the take-over and changes nothing.
fn a_wrong_passphrase_changes_nothing() {
    let py = harness::pyref();
    let tmp = tempdir("takeover03-wrong");
    let home = tmp.path().join("h");
    let pw = write_pw(&home);
    ok(
        py.cli(
            Ver::V030,
            &home,
            &[
                "init",
                "-u",
                "fay",
                "--no-register",
                "--passphrase-path",
                &pw,
            ],
            &[],
        ),
        "py init",
    );
    let dir = home.join(".retalk/fay");
    let before = harness::snapshot(&dir);
    let wrong = home.join("wrong");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let o = rust_cli(
        &home,
        &[
            "id",
            "-u",
            "fay",
            "--passphrase-path",
            wrong.to_str().unwrap(),
        ],
        &[],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.to_lowercase().contains("passphrase"), "{err}");
    assert_eq!(harness::snapshot(&dir), before, "nothing changed");
}

crate::cases! {
    python: [
        a_python_030_identity_is_taken_over_and_the_conversation_continues,
        no_passphrase_identities_open_without_one,
        a_wrong_passphrase_changes_nothing,
    ],
    plain: [],
}
