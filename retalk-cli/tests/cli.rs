//! The `retalk` command line through the real binaries: `retalk` against a
//! real `retalk-server`, each test in its own sandbox (HOME, XDG_DATA_HOME,
//! working directory) with its own relay.

mod support;

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path().display().to_string());
            out.extend(tree(&e.path()));
        }
    }
    out
}

// ---------------------------------------------------------------- the demo

/// The README's two-minute demo, verbatim apart from the relay's port.
#[test]
fn readme_demo_works_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let bin_dir = retalk_bin().parent().unwrap().to_path_buf();
    let script = format!(
        r#"set -eu
export SERVER_URL={url}

ALICE_ID=$(PICKLE_SECRET=alice-secret retalk init ./alice --name alice)
BOB_ID=$(PICKLE_SECRET=bob-secret retalk init ./bob --name bob)

PICKLE_SECRET=alice-secret retalk add bob "$BOB_ID" -s ./alice
PICKLE_SECRET=bob-secret retalk add alice "$ALICE_ID" -s ./bob

PICKLE_SECRET=bob-secret retalk receive -s ./bob
PICKLE_SECRET=alice-secret retalk send bob "hello bob" -s ./alice

PICKLE_SECRET=bob-secret retalk receive -s ./bob
# alice: hello bob

PICKLE_SECRET=bob-secret retalk send alice "hi alice, got it" -s ./bob
PICKLE_SECRET=alice-secret retalk receive -s ./alice
# bob: hi alice, got it
"#,
        url = relay.url()
    );
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("xdg"))
        .current_dir(&work)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = Run::of(out);
    assert_eq!(r.code, 0, "demo failed:\n{}", r.stderr);
    // stdout carries only the messages; the ids went into variables.
    assert_eq!(r.stdout, "alice: hello bob\nbob: hi alice, got it\n");
    assert!(r.stderr.contains("using alice ("), "{}", r.stderr);
    assert!(r.stderr.contains(") from ./bob"), "{}", r.stderr);
}

// -------------------------------------------------------- init and identity

#[test]
fn init_prints_only_the_id_and_refuses_to_overwrite() {
    let s = Sandbox::new();
    let r = s.run("pw", &["init", "./a", "--name", "a"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = r.stdout.strip_suffix('\n').unwrap();
    assert!(is_id(id), "stdout is exactly the id: {:?}", r.stdout);
    assert!(r.stderr.contains("created identity"));
    assert!(!r.stderr.contains("pw"), "the passphrase never shows");

    let again = s.run("other", &["init", "./a", "--name", "b"]);
    assert_eq!(again.code, 2);
    assert!(again.stdout.is_empty());
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert!(again.stderr.contains("hint:"));
    // The original identity is intact.
    let same = s.run("pw", &["id", "-s", "./a"]).ok();
    assert_eq!(same.trim(), id);
}

#[test]
fn init_needs_an_explicit_location() {
    let s = Sandbox::new();
    let r = s.run("pw", &["init", "--name", "x"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("init needs a location"), "{}", r.stderr);
    assert!(tree(&s.work()).is_empty() && tree(&s.xdg()).is_empty());
}

#[test]
fn identity_resolution_order_is_flag_user_level_store_default() {
    let s = Sandbox::new();
    let mk = |args: &[&str]| {
        let r = s.run("pw", args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        r.stdout.trim().to_string()
    };
    let default = mk(&["init", "-u", "--name", "dflt"]);
    let work = mk(&["init", "-u", "work", "--name", "wrk"]);
    let flag = mk(&["init", "./flag", "--name", "flg"]);
    let envd = mk(&["init", "./envd", "--name", "env"]);
    assert!(s.xdg().join("retalk/default").is_dir());
    assert!(s.xdg().join("retalk/work").is_dir());

    let who = |extra_env: Option<&str>, args: &[&str]| {
        let mut c = s.cmd(args);
        c.env("PICKLE_SECRET", "pw");
        if let Some(store) = extra_env {
            c.env("STORE", store);
        }
        let r = Run::of(c.output().unwrap());
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        r.stdout.trim().to_string()
    };
    // 1. -s beats everything.
    assert_eq!(
        who(Some("./envd"), &["id", "-u", "work", "-s", "./flag"]),
        flag
    );
    // 2. -u beats STORE; bare -u is `default`.
    assert_eq!(who(Some("./envd"), &["id", "-u", "work"]), work);
    assert_eq!(who(Some("./envd"), &["id", "-u"]), default);
    // 3. STORE beats the implicit default.
    assert_eq!(who(Some("./envd"), &["id"]), envd);
    // 4. The user-level default when nothing is selected.
    assert_eq!(who(None, &["id"]), default);
    // An empty STORE counts as unset.
    assert_eq!(who(Some(""), &["id"]), default);
}

#[test]
fn no_identity_is_exit_2_and_creates_nothing() {
    let s = Sandbox::new();
    for args in [
        &["receive"][..],
        &["id"],
        &["send", "bob", "hi"],
        &["add", "bob", "f1041c25c87351d8550b31cc6b13ab04"],
        &["receive", "-s", "./nope"],
        &["id", "-u", "work"],
    ] {
        let r = s.run("pw", args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("retalk: no identity"), "{}", r.stderr);
        assert!(
            r.stderr.contains("retalk init"),
            "hint names init: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty());
    }
    let r = Run::of(
        s.cmd(&["id"])
            .env("PICKLE_SECRET", "pw")
            .env("STORE", "./from-env")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("(from STORE)"), "{}", r.stderr);
    assert!(tree(&s.work()).is_empty(), "{:?}", tree(&s.work()));
    assert!(tree(&s.xdg()).is_empty(), "{:?}", tree(&s.xdg()));
}

#[test]
fn wrong_passphrase_is_exit_2() {
    let s = Sandbox::new();
    s.init("alice");
    let r = s.run("not-it", &["id", "-s", "./alice"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.starts_with("retalk: "), "{}", r.stderr);
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);
    assert!(!r.stderr.contains("not-it"));
    assert!(r.stdout.is_empty());
}

#[test]
fn passphrase_sources() {
    let s = Sandbox::new();
    let id = s.init("alice");
    // --passphrase-file beats the environment.
    let pw = s.root.path().join("pw");
    std::fs::write(&pw, "alice-secret\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let r = s.run(
        "wrong",
        &[
            "id",
            "-s",
            "./alice",
            "--passphrase-file",
            pw.to_str().unwrap(),
        ],
    );
    assert_eq!(r.ok().trim(), id);
    // RETALK_PASSPHRASE works alone.
    let r = Run::of(
        s.cmd(&["id", "-s", "./alice"])
            .env("RETALK_PASSPHRASE", "alice-secret")
            .output()
            .unwrap(),
    );
    assert_eq!(r.ok().trim(), id);
    // PICKLE_SECRET beats RETALK_PASSPHRASE.
    let r = Run::of(
        s.cmd(&["id", "-s", "./alice"])
            .env("PICKLE_SECRET", "alice-secret")
            .env("RETALK_PASSPHRASE", "wrong")
            .output()
            .unwrap(),
    );
    assert_eq!(r.ok().trim(), id);
    // A missing file is an error, not a fall-through.
    let r = s.run(
        "alice-secret",
        &[
            "id",
            "-s",
            "./alice",
            "--passphrase-file",
            "/nonexistent/pw",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    // Nothing set and no terminal: a clear error, not a hang.
    let r = Run::of(s.cmd(&["id", "-s", "./alice"]).output().unwrap());
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no passphrase"), "{}", r.stderr);
}

#[test]
fn id_json_has_the_public_identity() {
    let s = Sandbox::new();
    let id = s.init("alice");
    let out = s
        .run(&secret("alice"), &["id", "--json", "-s", "./alice"])
        .ok();
    assert_eq!(out.lines().count(), 1);
    let v = json(out.trim());
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 4);
    assert_eq!(v["user_id"], id.as_str());
    assert_eq!(v["name"], "alice");
    for k in ["identity_key", "signing_key"] {
        let key = v[k].as_str().unwrap();
        assert_eq!(key.len(), 43, "{k} is unpadded base64 of 32 bytes: {key}");
    }
    assert_eq!(&out[..11], r#"{"user_id":"#, "field order as documented");
}

// ------------------------------------------------------------ add and send

#[test]
fn add_validates_its_arguments() {
    let s = Sandbox::new();
    s.init("alice");
    let pw = secret("alice");
    for args in [
        &["add", "bob", "1234", "-s", "./alice"][..],
        &[
            "add",
            "f1041c25c87351d8550b31cc6b13ab04",
            "f1041c25c87351d8550b31cc6b13ab04",
            "-s",
            "./alice",
        ],
        &[
            "add",
            "~bob",
            "f1041c25c87351d8550b31cc6b13ab04",
            "-s",
            "./alice",
        ],
        &[
            "add",
            "bob",
            "f1041c25c87351d8550b31cc6b13ab04",
            "--pin",
            "nope",
            "-s",
            "./alice",
        ],
        &["add", "bob"],
    ] {
        let r = s.run(&pw, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
    let r = s.run(
        &pw,
        &[
            "add",
            "bob",
            "F1041C25C87351D8550B31CC6B13AB04",
            "-s",
            "./alice",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("f1041c25c87351d8550b31cc6b13ab04"));
}

#[test]
fn unknown_peer_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let s = Sandbox::with_relay(&relay);
    s.init("alice");
    let r = s.run(&secret("alice"), &["send", "carol", "hi", "-s", "./alice"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("carol"), "{}", r.stderr);
    assert!(r.stderr.contains("retalk add"), "hint: {}", r.stderr);
}

#[test]
fn relay_unreachable_is_exit_1() {
    let s = Sandbox::new();
    s.init("alice");
    // A port nobody listens on: bind one, then release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [
        &["receive", "-s", "./alice", "--server", url.as_str()][..],
        &[
            "send",
            "f1041c25c87351d8550b31cc6b13ab04",
            "hi",
            "-s",
            "./alice",
            "--server",
            url.as_str(),
        ],
    ] {
        let r = s.run(&secret("alice"), args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("retalk: "), "{}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    // No relay at all is a refusal with a hint.
    let r = s.run(&secret("alice"), &["receive", "-s", "./alice"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--server"), "{}", r.stderr);
}

/// alice and bob know each other and have both published their keys.
fn pair(relay: &Relay) -> (Sandbox, String, String) {
    let s = Sandbox::with_relay(relay);
    let alice = s.init("alice");
    let bob = s.init("bob");
    s.run("alice-secret", &["add", "bob", &bob, "-s", "./alice"])
        .ok();
    s.run("bob-secret", &["add", "alice", &alice, "-s", "./bob"])
        .ok();
    s.run("bob-secret", &["receive", "-s", "./bob"]).ok();
    s.run("alice-secret", &["receive", "-s", "./alice"]).ok();
    (s, alice, bob)
}

#[test]
fn send_json_receipt_and_stdin_text() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let (s, alice, bob) = pair(&relay);

    let r = s.run(
        "alice-secret",
        &["send", "bob", "first", "--json", "-s", "./alice"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1);
    let receipt = json(r.stdout.trim());
    assert_eq!(receipt.as_object().unwrap().len(), 2);
    assert_eq!(receipt["to"], bob.as_str());
    let msg_id = receipt["id"].as_str().unwrap().to_string();
    assert!(r.stderr.contains("sent to bob"));

    // Without --json, stdout stays empty.
    let mut c = s.cmd(&["send", "bob", "-", "-s", "./alice"]);
    c.env("PICKLE_SECRET", "alice-secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("line one\nline two ✓\n".as_bytes())
        .unwrap();
    let r = Run::of(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());

    let out = s
        .run("bob-secret", &["receive", "--json", "-s", "./bob"])
        .ok();
    let msgs: Vec<Value> = out.lines().map(json).collect();
    assert_eq!(msgs.len(), 2, "{out}");
    assert_eq!(msgs[0]["id"], msg_id.as_str());
    assert_eq!(msgs[0]["text"], "first");
    assert_eq!(msgs[1]["text"], "line one\nline two ✓");
    for m in &msgs {
        assert_eq!(m["from"], alice.as_str());
        assert_eq!(m["name"], "alice");
    }
    // Plain output keeps one message per line.
    let mut c = s.cmd(&["send", "bob", "-", "-s", "./alice"]);
    c.env("PICKLE_SECRET", "alice-secret").stdin(Stdio::piped());
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a\nb").unwrap();
    assert!(child.wait().unwrap().success());
    let out = s.run("bob-secret", &["receive", "-s", "./bob"]).ok();
    assert_eq!(out, "alice: a\\nb\n");
}

#[test]
fn receive_json_names_saved_then_self_chosen_then_empty() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let (s, alice, bob) = pair(&relay);
    let carol = s.init("carol"); // self-named, not saved by bob
    let r = s.run("dave-secret", &["init", "./dave"]); // no name at all
    let dave = r.ok().trim().to_string();
    s.run(
        "alice-secret",
        &["send", "bob", "from alice", "-s", "./alice"],
    )
    .ok();
    s.run(
        "carol-secret",
        &["send", &bob, "from carol", "-s", "./carol"],
    )
    .ok();
    s.run("dave-secret", &["send", &bob, "from dave", "-s", "./dave"])
        .ok();

    let out = s
        .run("bob-secret", &["receive", "--json", "-s", "./bob"])
        .ok();
    let got: Vec<(String, String, String)> = out
        .lines()
        .map(json)
        .map(|v| {
            (
                v["from"].as_str().unwrap().to_string(),
                v["name"].as_str().unwrap().to_string(),
                v["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (alice, "alice".into(), "from alice".into()),
            (carol, "~carol".into(), "from carol".into()),
            (dave.clone(), "".into(), "from dave".into()),
        ]
    );
    let first = out.lines().next().unwrap();
    assert!(first.starts_with(r#"{"id":""#), "{first}");
    // Mail is delivered once.
    assert_eq!(s.run("bob-secret", &["receive", "-s", "./bob"]).ok(), "");
    // Plain output shows the id when there is no name.
    s.run("dave-secret", &["send", &bob, "again", "-s", "./dave"])
        .ok();
    let out = s.run("bob-secret", &["receive", "-s", "./bob"]).ok();
    assert_eq!(out, format!("{dave}: again\n"));
}

// ------------------------------------------------------------------ follow

fn follower(s: &Sandbox, who: &str, extra: &[&str]) -> Command {
    let mut args = vec!["receive", "--follow", "-s"];
    let dir = format!("./{who}");
    args.push(&dir);
    args.extend_from_slice(extra);
    let mut c = s.cmd(&args);
    c.env("PICKLE_SECRET", secret(who));
    c
}

/// `retalk receive --follow --json | jq -c .` shows each message as it
/// arrives. --interval 60 proves the messages are pushed, not polled.
#[test]
fn follow_json_piped_into_jq_sees_each_message_as_it_arrives() {
    let have_jq = Command::new("sh")
        .args(["-c", "command -v jq"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        have_jq,
        "jq is required (apt-get install -y jq; .ci/run does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let (s, alice, _bob) = pair(&relay);

    let mut recv = KillOnDrop(
        follower(&s, "bob", &["--json", "--interval", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // --unbuffered: jq itself block-buffers when its output is a pipe (as
    // here); at a terminal it writes each object at once.
    let mut jq = KillOnDrop(
        Command::new("jq")
            .args(["--unbuffered", "-c", "."])
            .stdin(Stdio::from(recv.0.stdout.take().unwrap()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = LineReader::new(jq.0.stdout.take().unwrap());
    let mut err = LineReader::new(recv.0.stderr.take().unwrap());
    err.wait_for("listening", SLOW);
    assert!(
        err.seen.iter().any(|l| l.contains("pushes")),
        "the relay supports held waits: {:?}",
        err.seen
    );

    for i in 0..3 {
        let text = format!("message {i}");
        s.run("alice-secret", &["send", "bob", &text, "-s", "./alice"])
            .ok();
        let sent = Instant::now();
        let line = out
            .next(SLOW)
            .unwrap_or_else(|| panic!("{text} never arrived; stderr {:?}", err.seen));
        let took = sent.elapsed();
        let v = json(&line);
        assert_eq!(v["text"], text.as_str());
        assert_eq!(v["from"], alice.as_str());
        assert_eq!(v["name"], "alice");
        // Pushed, not polled (the poll interval is 60 s).
        assert!(took < Duration::from_secs(10), "{text} took {took:?}");
    }
    signal(&recv.0, libc::SIGTERM);
    assert_eq!(wait_exit(&mut recv.0, SLOW), 0);
    assert!(jq.0.wait().unwrap().success());
    assert_eq!(out.rest(SLOW), Vec::<String>::new());
}

#[test]
fn follow_exits_0_on_sigterm_and_sigint_even_mid_wait() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let (s, _alice, _bob) = pair(&relay);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut f = Follower::start(follower(&s, "bob", &[]));
        // The follower is now inside a held read that lasts up to 25 s.
        let t = Instant::now();
        signal(&f.child, sig);
        assert_eq!(wait_exit(&mut f.child, SLOW), 0, "signal {sig}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "slow exit: {:?}",
            t.elapsed()
        );
        let errs = f.stderr.rest(SLOW);
        assert!(
            errs.iter().all(|l| !l.contains("retalk: ")),
            "no error on a clean stop: {errs:?}"
        );
    }
}

#[test]
fn follow_polls_when_asked_not_to_wait() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let (s, _alice, _bob) = pair(&relay);
    let mut f = Follower::start(follower(&s, "bob", &["--wait", "0", "--interval", "0.2"]));
    assert!(
        f.stderr
            .seen
            .iter()
            .any(|l| l.contains("polling the relay every 200ms")),
        "{:?}",
        f.stderr.seen
    );
    s.run("alice-secret", &["send", "bob", "polled", "-s", "./alice"])
        .ok();
    assert_eq!(f.stdout.next(SLOW).as_deref(), Some("alice: polled"));
    signal(&f.child, libc::SIGINT);
    assert_eq!(wait_exit(&mut f.child, SLOW), 0);
}

/// The relay crashes and comes back on the same database and port: the
/// follower says so once, keeps going, and prints every message once.
#[test]
fn follow_rides_out_a_relay_restart_and_never_prints_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(dir.path());
    let (s, _alice, _bob) = pair(&relay);
    let mut f = Follower::start(follower(&s, "bob", &["--json"]));

    s.run("alice-secret", &["send", "bob", "before", "-s", "./alice"])
        .ok();
    let before = json(&f.stdout.next(SLOW).expect("before"));
    assert_eq!(before["text"], "before");

    relay.kill();
    let outage = f.stderr.wait_for("retrying", SLOW);
    assert!(outage.starts_with("retalk: "), "{outage}");
    relay.restart();

    s.run("alice-secret", &["send", "bob", "after", "-s", "./alice"])
        .ok();
    let after = json(&f.stdout.next(SLOW).expect("after the restart"));
    assert_eq!(after["text"], "after");
    s.run("alice-secret", &["send", "bob", "last", "-s", "./alice"])
        .ok();
    let last = json(&f.stdout.next(SLOW).expect("last"));
    assert_eq!(last["text"], "last");

    signal(&f.child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut f.child, SLOW), 0);
    assert_eq!(
        f.stdout.rest(SLOW),
        Vec::<String>::new(),
        "nothing printed twice"
    );
    let ids = [&before["id"], &after["id"], &last["id"]];
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    f.stderr.rest(SLOW);
    let outage_lines: Vec<_> = f
        .stderr
        .seen
        .iter()
        .filter(|l| l.starts_with("retalk: "))
        .collect();
    assert_eq!(outage_lines.len(), 1, "{:?}", f.stderr.seen);
}

// -------------------------------------------------------------------- help

#[test]
fn every_help_teaches_identity_sources_and_exit_codes() {
    let s = Sandbox::new();
    for cmd in [
        &["--help"][..],
        &["init", "--help"],
        &["id", "--help"],
        &["add", "--help"],
        &["send", "--help"],
        &["receive", "--help"],
    ] {
        let r = Run::of(s.cmd(cmd).output().unwrap());
        assert_eq!(r.code, 0);
        for needle in [
            "-s, --store",
            "-u, --user-level",
            "STORE",
            "PICKLE_SECRET",
            "Exit codes",
            "wrong passphrase",
        ] {
            assert!(r.stdout.contains(needle), "{cmd:?} lacks {needle}");
        }
        if cmd.len() == 2 {
            assert!(r.stdout.contains("Examples:"), "{cmd:?}");
            assert!(r.stdout.contains("relay"), "{cmd:?}");
        }
    }
    // Usage errors exit 2.
    let r = Run::of(s.cmd(&["send", "bob"]).output().unwrap());
    assert_eq!(r.code, 2);
    let r = Run::of(s.cmd(&[]).output().unwrap());
    assert_eq!(r.code, 2);
}

/// The auto-responder from docs/cli.md: a `--follow` pipeline that answers
/// each message with `retalk send` from the same identity. The follower's
/// held read must not block the sends.
#[cfg(unix)]
#[test]
fn auto_responder_pipeline_answers_while_following() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let (s, _alice, bob) = pair(&relay);
    let script = r#"
retalk receive --follow --json -s ./bob |
while read -r msg; do
  sender=$(jq -r .from <<<"$msg")
  text=$(jq -r .text <<<"$msg")
  retalk send "$sender" "you said: $text" -s ./bob
done
"#;
    let bin_dir = retalk_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut responder = KillOnDrop(
        Command::new("bash")
            .args(["-c", script])
            .env_clear()
            .env("PATH", &path)
            .env("HOME", s.home())
            .env("XDG_DATA_HOME", s.xdg())
            .env("SERVER_URL", relay.url())
            .env("PICKLE_SECRET", "bob-secret")
            .current_dir(s.work())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let mut responder_err = LineReader::new(responder.0.stderr.take().unwrap());
    responder_err.wait_for("listening", SLOW);

    let mut f = Follower::start(follower(&s, "alice", &["--json"]));
    for text in ["ping", "are you there?"] {
        s.run("alice-secret", &["send", "bob", text, "-s", "./alice"])
            .ok();
        let reply = json(
            &f.stdout
                .next(SLOW)
                .unwrap_or_else(|| panic!("no reply; responder said {:?}", responder_err.seen)),
        );
        assert_eq!(reply["text"], format!("you said: {text}").as_str());
        assert_eq!(reply["from"], bob.as_str());
    }
    // Stop the whole pipeline (its process group).
    let pgid = responder.0.id() as i32;
    // SAFETY: signalling the process group we created above.
    #[allow(unsafe_code)]
    let _ = unsafe { libc::kill(-pgid, libc::SIGTERM) };
    wait_exit(&mut responder.0, SLOW);
    signal(&f.child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut f.child, SLOW), 0);
}
