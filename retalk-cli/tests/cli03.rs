//! The 0.3 command line: the agent-talk command lines end to end between two
//! of our identities on our relay, and the defects of issue 9, each against
//! a real relay, real store and real crypto.

mod support;

use serde_json::Value;
use std::process::Command;
use support::*;

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// `retalk ARGS` in the sandbox with RETALK_HOME=home/.retalk and the
/// passphrase in a file given with --passphrase-path (agent-talk's way).
fn r03(s: &Sandbox, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let pw = s.root.path().join("pw");
    if !pw.exists() {
        std::fs::write(&pw, "agent-pass\nsecond line is not part of it\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    let mut c: Command = s.cmd(args);
    c.env("RETALK_HOME", s.home().join(".retalk"))
        .arg("--passphrase-path")
        .arg(&pw);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    Run::of(c.output().unwrap())
}

fn init03(s: &Sandbox, relay: &str, user: &str) -> String {
    let r = r03(
        s,
        &["init", "-u", user, "--relay", relay, "--display-name", user],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("registered"), "{}", r.stderr);
    r.stdout.trim().to_string()
}

#[test]
fn agent_talk_command_lines_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let s = Sandbox::new();
    let url = relay.url();
    let alice = init03(&s, &url, "alice");
    let bob = init03(&s, &url, "bob");
    assert!(s.home().join(".retalk/alice/retalk.db").is_file());

    let sync = json(r03(&s, &["sync", "-u", "alice"], &[]).ok().trim());
    for k in [
        "unclaimed",
        "republished",
        "replenished",
        "fallback_rotated",
        "resent",
    ] {
        assert!(sync.get(k).is_some(), "sync lacks {k}: {sync}");
    }
    let card = json(r03(&s, &["id", "--json", "-u", "bob"], &[]).ok().trim());
    assert_eq!(card["fingerprint"], bob.as_str());
    assert_eq!(card["verified"], true);
    assert_eq!(card["relay"], url.as_str());
    let human = r03(&s, &["id", "--card", "-u", "bob"], &[]).ok();
    assert!(human.contains(&format!("Fingerprint:  {bob}")), "{human}");

    let r = r03(
        &s,
        &["add", &bob, "--peer", "bob", "--verify", "-u", "alice"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    r03(&s, &["add", &alice, "--peer", "alice", "-u", "bob"], &[]).ok();
    let contacts = r03(&s, &["contacts", "--json", "-u", "alice"], &[]).ok();
    let c = json(contacts.trim());
    assert_eq!(
        (c["name"].as_str(), c["fingerprint"].as_str()),
        (Some("bob"), Some(bob.as_str()))
    );
    assert_eq!(c["verified"], true);

    let receipt = r03(
        &s,
        &[
            "send",
            "--peer",
            "bob",
            "hello from alice",
            "--save",
            "-u",
            "alice",
        ],
        &[],
    )
    .ok();
    let rc = json(receipt.trim());
    assert_eq!(rc["to"], bob.as_str());
    let sent_id = rc["id"].as_str().unwrap().to_string();

    let got = r03(
        &s,
        &["receive", "--peer", &alice, "--quiet", "-u", "bob"],
        &[("RETALK_SAVE_MESSAGE", "1")],
    );
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert!(!got.stderr.contains("using"), "--quiet: {}", got.stderr);
    let m = json(got.stdout.lines().next().expect("one message"));
    assert_eq!(
        (
            m["id"].as_str(),
            m["from"].as_str(),
            m["name"].as_str(),
            m["text"].as_str()
        ),
        (
            Some(sent_id.as_str()),
            Some(alice.as_str()),
            Some("alice"),
            Some("hello from alice")
        )
    );
    // Nothing more: zero lines when nothing arrived.
    assert_eq!(r03(&s, &["receive", "--all", "-u", "bob"], &[]).ok(), "");

    let h = r03(&s, &["history", "--peer", "alice", "-u", "bob"], &[]).ok();
    let h = json(h.trim());
    assert_eq!(
        (h["direction"].as_str(), h["text"].as_str()),
        (Some("in"), Some("hello from alice"))
    );
    let h = r03(&s, &["history", "--peer", "bob", "-u", "alice"], &[]).ok();
    assert_eq!(json(h.trim())["direction"], "out");
    // The kept text is sealed, not in the clear.
    let db = std::fs::read(s.home().join(".retalk/bob/retalk.db")).unwrap();
    assert!(!db.windows(16).any(|w| w == b"hello from alice"));

    // verify from the relay; block refuses the sender's mail unread.
    assert_eq!(r03(&s, &["verify", "alice", "-u", "bob"], &[]).code, 0);
    r03(&s, &["block", "alice", "-u", "bob"], &[]).ok();
    let l = r03(&s, &["block", "--list", "--json", "-u", "bob"], &[]).ok();
    assert_eq!(json(l.trim())["fingerprint"], alice.as_str());
    r03(
        &s,
        &["send", "--peer", "bob", "blocked?", "-u", "alice"],
        &[],
    )
    .ok();
    assert_eq!(r03(&s, &["receive", "--all", "-u", "bob"], &[]).ok(), "");
    r03(&s, &["block", "--remove", "alice", "-u", "bob"], &[]).ok();
}

#[test]
fn defects_found_by_a_new_user() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let s = Sandbox::new();
    let url = relay.url();
    let alice = init03(&s, &url, "alice");
    let bob = init03(&s, &url, "bob");
    r03(&s, &["add", &bob, "--peer", "bob", "-u", "alice"], &[]).ok();

    // Sending to one's own id is refused clearly, nothing "succeeds".
    let r = r03(&s, &["send", "--peer", &alice, "note", "-u", "alice"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("own user id"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    // Empty messages are refused.
    let r = r03(&s, &["send", "--peer", "bob", "  ", "-u", "alice"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("empty"), "{}", r.stderr);
    // A 31-character id is called a mistyped id, not a name.
    let r = r03(
        &s,
        &["send", "--peer", &bob[..31], "hi", "-u", "alice"],
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("has 31 characters; a user id has 32"),
        "{}",
        r.stderr
    );
    // add does not silently re-point a name.
    let other = "fedcba9876543210fedcba9876543210";
    let r = r03(&s, &["add", other, "--peer", "bob", "-u", "alice"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    let c = r03(
        &s,
        &["contacts", "--show", "bob", "--json", "-u", "alice"],
        &[],
    )
    .ok();
    assert_eq!(json(c.trim())["fingerprint"], bob.as_str());
    // A permanent relay refusal exits 3, says what to do, names no tool.
    let stranger = "0123456789abcdef0123456789abcdef";
    let r = r03(&s, &["send", "--peer", stranger, "hi", "-u", "alice"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("has not published keys"), "{}", r.stderr);
    for tool in ["claim_key", "count_keys", "get_keys", "send_message"] {
        assert!(!r.stderr.contains(tool), "{}", r.stderr);
    }
    // config --relay changes the saved relay.
    let cfg = r03(
        &s,
        &["config", "-u", "alice", "--relay", "http://127.0.0.1:9"],
        &[],
    )
    .ok();
    assert_eq!(json(cfg.trim())["relay"], "http://127.0.0.1:9");
    let r = r03(&s, &["sync", "-u", "alice"], &[]);
    assert_eq!(
        r.code, 1,
        "the saved relay is now the unreachable one: {}",
        r.stderr
    );
    r03(&s, &["config", "-u", "alice", "--relay", &url], &[]).ok();
    // --passphrase-path: the first line only (the file has two).
    assert_eq!(r03(&s, &["id", "-u", "alice"], &[]).ok().trim(), alice);
    // A store folder that already existed with mode 0755 ends up 0700.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let d = s.work().join("pre");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        r03(&s, &["init", "--dir", "./pre", "--no-register"], &[]).ok();
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}

/// `receive` with stdout already closed: the first write fails, so nothing
/// is confirmed to the relay and the next `receive` shows all three. (A
/// reader that closes the pipe *after* lines reached it, as `| head -1`
/// can, has those lines: the kernel took them, and retalk cannot know
/// they were never read. docs/cli.md says so and points to `--save`.)
#[cfg(unix)]
#[test]
fn a_closed_stdout_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let s = Sandbox::new();
    let url = relay.url();
    let alice = init03(&s, &url, "alice");
    let bob = init03(&s, &url, "bob");
    r03(&s, &["add", &bob, "--peer", "bob", "-u", "alice"], &[]).ok();
    for t in ["one", "two", "three"] {
        r03(&s, &["send", "--peer", "bob", t, "-u", "alice"], &[]).ok();
    }
    let pw = s.root.path().join("pw");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(retalk_bin())
        .args(["receive", "--all", "-u", "bob", "--passphrase-path"])
        .arg(&pw)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", s.home())
        .env("RETALK_HOME", s.home().join(".retalk"))
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("stdout was closed"), "{err}");
    let rest = r03(&s, &["receive", "--peer", &alice, "-u", "bob"], &[]).ok();
    let mut texts: Vec<String> = rest
        .lines()
        .map(|l| json(l)["text"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        ["one", "three", "two"],
        "nothing lost, nothing twice"
    );
}

#[test]
fn completions_and_man() {
    let s = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let r = Run::of(s.cmd(&["completions", shell]).output().unwrap());
        assert_eq!(r.code, 0);
        assert!(r.stdout.contains("receive"), "{shell}");
    }
    let r = Run::of(s.cmd(&["man"]).output().unwrap());
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH"),
        "{}",
        &r.stdout[..80.min(r.stdout.len())]
    );
    for sub in [
        "sync", "register", "contacts", "verify", "block", "history", "config",
    ] {
        let r = Run::of(s.cmd(&[sub, "--help"]).output().unwrap());
        assert_eq!(r.code, 0);
        assert!(
            r.stdout.contains("Examples:"),
            "{sub} --help lacks examples"
        );
    }
}

/// `receive -f | head -1`: the follower prints one message, `head` exits;
/// the messages sent after that fail to be written (the pipe is closed),
/// so the follower ends without confirming them and the next `receive`
/// shows them: nothing lost, nothing twice.
#[cfg(unix)]
#[test]
fn a_follower_whose_stdout_closes_loses_nothing() {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let s = Sandbox::new();
    let url = relay.url();
    let alice = init03(&s, &url, "alice");
    let bob = init03(&s, &url, "bob");
    r03(&s, &["add", &bob, "--peer", "bob", "-u", "alice"], &[]).ok();
    r03(&s, &["send", "--peer", "bob", "one", "-u", "alice"], &[]).ok();
    let pw = s.root.path().join("pw");
    // The pipeline `retalk receive -f | head -1`, built here rather than by
    // a shell, so the test can wait for `head` itself to exit.
    let mut follower = Command::new(retalk_bin())
        .args(["receive", "-f", "--all", "-u", "bob", "--passphrase-path"])
        .arg(&pw)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", s.home())
        .env("RETALK_HOME", s.home().join(".retalk"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut head = Command::new("head")
        .arg("-1")
        .stdin(follower.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    head.stdout
        .take()
        .unwrap()
        .read_to_string(&mut first)
        .unwrap();
    assert_eq!(wait_exit(&mut head, Duration::from_secs(60)), 0);
    assert_eq!(json(&first)["text"], "one", "{first}");
    // head has exited, so the pipe is closed before anything else is sent;
    // the follower notices at its next write
    for t in ["two", "three"] {
        r03(&s, &["send", "--peer", "bob", t, "-u", "alice"], &[]).ok();
    }
    let code = wait_exit(&mut follower, Duration::from_secs(60));
    assert_eq!(code, 1, "the follower stops on the closed pipe");
    let rest = r03(&s, &["receive", "--peer", &alice, "-u", "bob"], &[]).ok();
    let texts: Vec<String> = rest
        .lines()
        .map(|l| json(l)["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["two", "three"], "nothing lost, nothing twice");
}

/// Removes a relay database and its WAL files.
fn wipe_db(db: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
}

/// The relay restarts on an empty database (it lost it). Bob's follower
/// (`--follow --interval 60`, agent-talk's) republishes his keys at once,
/// so Alice's next send is accepted and shows on Bob's stdout within
/// seconds, not after ~76 s. Without a follower, a send refused as
/// "unknown recipient" exits 1, says the message is kept, and `retalk sync`
/// re-sends it once Bob has published again: nothing lost.
#[test]
fn a_relay_that_lost_its_database() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(dir.path());
    let s = Sandbox::new();
    let url = relay.url();
    let alice = init03(&s, &url, "alice");
    let bob = init03(&s, &url, "bob");
    r03(&s, &["add", &bob, "--peer", "bob", "-u", "alice"], &[]).ok();
    r03(&s, &["add", &alice, "--peer", "alice", "-u", "bob"], &[]).ok();
    r03(&s, &["send", "--peer", "bob", "before", "-u", "alice"], &[]).ok();

    let pw = s.root.path().join("pw");
    let mut cmd = s.cmd(&[
        "receive",
        "--all",
        "--follow",
        "--interval",
        "60",
        "-u",
        "bob",
    ]);
    cmd.env("RETALK_HOME", s.home().join(".retalk"))
        .arg("--passphrase-path")
        .arg(&pw);
    let mut f = Follower::start(cmd);
    let l = f.stdout.next(SLOW).expect("the first message");
    assert_eq!(json(&l)["text"], "before");

    relay.kill();
    wipe_db(&relay.db);
    relay = Relay::spawn(relay.db.clone(), relay.port);
    // the follower lost its held read: it comes back and republishes
    let started = Instant::now();
    let mut sent = None;
    let mut refused = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let r = r03(
            &s,
            &["send", "--peer", "bob", "after the loss", "-u", "alice"],
            &[],
        );
        if r.code == 0 {
            sent = Some(started.elapsed());
            break;
        }
        assert!(r.stderr.contains("kept"), "{}", r.stderr);
        refused += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let took = sent.expect("Bob's follower republished his keys within 20 s");
    let l = f.stdout.next(SLOW).expect("the message after the loss");
    assert_eq!(json(&l)["text"], "after the loss");
    // (each attempt refused above is a message of its own, kept in
    // Alice's outbox: they come with the re-send below)
    drop(f);
    eprintln!("republished and delivered {took:?} after the restart");

    // no follower: the relay loses its database again
    relay.kill();
    wipe_db(&relay.db);
    let _relay = Relay::spawn(relay.db.clone(), relay.port);
    let r = r03(
        &s,
        &["send", "--peer", "bob", "while unknown", "-u", "alice"],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown recipient") && r.stderr.contains("kept"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("send_message"),
        "no protocol tool names: {}",
        r.stderr
    );
    // Bob comes back (any receive republishes), Alice syncs: re-sent
    let got = r03(&s, &["receive", "--all", "-u", "bob"], &[]).ok();
    assert!(!got.contains("while unknown"), "{got}");
    let sync = json(r03(&s, &["sync", "-u", "alice"], &[]).ok().trim());
    assert!(sync["resent"].as_u64().unwrap() >= 1, "{sync}");
    let got = r03(&s, &["receive", "--all", "-u", "bob"], &[]).ok();
    let texts: Vec<String> = got
        .lines()
        .map(|l| json(l)["text"].as_str().unwrap().to_string())
        .collect();
    // (copies of refused attempts not yet re-sent by a later send come
    // here too, each once)
    assert_eq!(
        texts.iter().filter(|t| *t == "while unknown").count(),
        1,
        "{got}"
    );
    let others = texts.iter().filter(|t| *t != "while unknown");
    assert!(others.clone().all(|t| t == "after the loss"), "{got}");
    assert!(others.count() <= refused, "{got}");
}
