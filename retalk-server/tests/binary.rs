//! The `retalk-server` binary as an operator runs it: start-up line, flags
//! versus environment, `--help`, request logging, SIGTERM, and durability
//! across `kill -9`.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use retalk::proto::tools::{CountKeys, ReadMessages};
use retalk::proto::{build_request, Dialect, KeyPairSigner, RequestSigner};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_retalk-server");

/// Every variable the binary reads, cleared so the caller's environment
/// cannot leak into a test.
const VARS: &[&str] = &[
    "RETALK_SERVER_HOST",
    "SERVER_HOST",
    "RETALK_SERVER_PORT",
    "SERVER_PORT",
    "RETALK_SERVER_AUDIENCE",
    "SERVER_AUDIENCE",
    "RETALK_SERVER_DB",
    "SERVER_DB",
    "RETALK_SERVER_MAX_BODY",
    "RETALK_SERVER_MAX_OTKS",
    "RETALK_SERVER_MAX_MAILBOX",
    "RETALK_SERVER_MAX_REFUSED",
    "RETALK_SERVER_REFUSED_TTL",
    "RETALK_SERVER_MAX_GROUP_SIZE",
    "RETALK_SERVER_TIMEOUT",
    "RETALK_SERVER_DURABILITY",
    "RETALK_SERVER_LOG_REQUESTS",
    "RUST_LOG",
];

struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The start-up line.
    banner: String,
    /// `http://127.0.0.1:PORT`, where it really listens.
    addr: String,
    seen: Vec<String>,
}

fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args);
    for v in VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = command(dir, args, env);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let banner = lines
        .recv_timeout(PATIENCE)
        .expect("no start-up line on stderr");
    let addr = banner
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("unexpected start-up line: {banner}"))
        .to_owned();
    Proc {
        child,
        lines,
        banner,
        addr: format!("http://{addr}"),
        seen: Vec::new(),
    }
}

impl Proc {
    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0);
    }

    /// Waits (bounded) for the process to exit; returns its status and
    /// collects the rest of stderr.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.seen.push(line);
                }
                return status;
            }
            assert!(Instant::now() < deadline, "relay did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for a stderr line containing `needle`.
    fn wait_line(&mut self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no stderr line with {needle:?}; saw {:?}", self.seen),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn starts_with_no_setup_says_where_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(dir.path(), &["--port", "0"], &[]);
    // Address, audience and database in one line.
    let port = p.addr.rsplit(':').next().unwrap().to_owned();
    assert!(p.addr.starts_with("http://127.0.0.1:"), "{}", p.banner);
    assert!(
        p.banner
            .contains(&format!("audience http://127.0.0.1:{port}")),
        "{}",
        p.banner
    );
    assert!(p.banner.ends_with("database server.db"), "{}", p.banner);
    assert!(dir.path().join("server.db").exists());
    // Ctrl-C stops it cleanly too.
    let mut p = p;
    p.signal(libc::SIGINT);
    assert!(p.wait_exit().success());
    assert!(
        p.seen.iter().all(|l| !l.contains("panicked")),
        "{:?}",
        p.seen
    );
}

#[test]
fn flags_beat_the_environment_and_new_names_beat_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SERVER_AUDIENCE", "https://old-name.example"),
        ("RETALK_SERVER_AUDIENCE", "https://new-name.example"),
        ("SERVER_DB", "old.db"),
        ("SERVER_PORT", "0"),
    ];
    let p = spawn(dir.path(), &[], &env);
    assert!(
        p.banner.contains("audience https://new-name.example,"),
        "{}",
        p.banner
    );
    assert!(p.banner.ends_with("database old.db"), "{}", p.banner);
    assert!(dir.path().join("old.db").exists());
    drop(p);

    let p = spawn(
        dir.path(),
        &[
            "--audience",
            "https://flag.example,https://flag2.example",
            "--db",
            "flag.db",
        ],
        &env,
    );
    assert!(
        p.banner
            .contains("audiences https://flag.example, https://flag2.example,"),
        "{}",
        p.banner
    );
    assert!(p.banner.ends_with("database flag.db"), "{}", p.banner);
}

#[test]
fn bad_settings_stop_it_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path(), &[], &[("RETALK_SERVER_PORT", "eighty")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RETALK_SERVER_PORT"), "{err}");

    let out = command(
        dir.path(),
        &["--port", "0", "--db", "/nonexistent-dir/x/server.db"],
        &[],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open database"), "{err}");
}

#[test]
fn help_teaches_and_the_docs_match_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path(), &["--help"], &[]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Examples:",
        "What it stores",
        "never",
        "--audience",
        "TLS proxy",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}");
    }
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/server.md"))
            .unwrap();
    // Every flag and variable in --help is documented, and vice versa.
    let words = |text: &str, prefix: &str| -> HashSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .filter(|w| {
                w.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()))
            })
            .map(str::to_owned)
            .collect()
    };
    let help_flags = words(&help, "--");
    let help_vars: HashSet<_> = words(&help, "")
        .into_iter()
        .filter(|w| w.starts_with("RETALK_SERVER_") || w.starts_with("SERVER_") || w == "RUST_LOG")
        .collect();
    let docs_flags = words(&docs, "--");
    for f in &help_flags {
        assert!(docs_flags.contains(f), "docs/server.md lacks {f}");
    }
    for v in &help_vars {
        assert!(docs.contains(v.as_str()), "docs/server.md lacks {v}");
    }
    for f in &docs_flags {
        assert!(
            help_flags.contains(f),
            "docs/server.md documents {f}, which --help lacks"
        );
    }
    for v in VARS {
        assert!(help.contains(v), "--help lacks {v}");
        assert!(docs.contains(v), "docs/server.md lacks {v}");
    }
}

async fn count_keys(
    http: &reqwest::Client,
    addr: &str,
    audience: &str,
    who: &KeyPairSigner,
) -> u16 {
    let body = build_request(&CountKeys, who, audience, Dialect::Both, now()).unwrap();
    post_raw(http, addr, body).await.0
}

#[tokio::test]
async fn no_request_lines_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let http = client();
    let me = KeyPairSigner::random();
    for (flag, expect_lines) in [(None, false), (Some("--log-requests"), true)] {
        let mut args = vec!["--port", "0", "--audience", "http://relay.test"];
        args.extend(flag);
        let mut p = spawn(dir.path(), &args, &[]);
        assert_eq!(
            count_keys(&http, &p.addr, "http://relay.test", &me).await,
            200
        );
        let (status, _) = post_raw(&http, &p.addr, "garbage").await;
        assert_eq!(status, 400);
        p.signal(libc::SIGTERM);
        assert!(p.wait_exit().success());
        let logged = p.seen.join("\n");
        assert_eq!(logged.contains("POST 200"), expect_lines, "{logged}");
        assert_eq!(logged.contains("POST 400"), expect_lines, "{logged}");
        // Never an id or a key, even when asked to log.
        assert!(!logged.contains(id_of(&me).as_str()), "{logged}");
        assert!(!logged.contains(&me.signing_key()), "{logged}");
    }
}

/// SIGTERM: the waiting reader is answered, the process exits 0.
#[tokio::test]
async fn sigterm_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let aud = "http://relay.test";
    let mut p = spawn(
        dir.path(),
        &["--port", "0", "--audience", aud],
        &[("RUST_LOG", "retalk_server=debug")],
    );
    let http = client();
    let me = KeyPairSigner::random();
    let body = build_request(
        &ReadMessages {
            wait: Some(60),
            ..Default::default()
        },
        &me,
        aud,
        Dialect::Both,
        now(),
    )
    .unwrap();
    let (h, a) = (http.clone(), p.addr.clone());
    let reader = tokio::spawn(async move { post_raw(&h, &a, body).await });
    let watch = tokio::task::spawn_blocking(move || {
        p.wait_line("a read is waiting for mail");
        p
    });
    let mut p = watch.await.unwrap();
    let t = Instant::now();
    p.signal(libc::SIGTERM);
    let (status, mail) = tokio::time::timeout(PATIENCE, reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((status, mail), (200, json!([])));
    let exit = tokio::task::spawn_blocking(move || {
        let s = p.wait_exit();
        (s, p.seen.join("\n"))
    })
    .await
    .unwrap();
    assert!(exit.0.success(), "{:?}: {}", exit.0, exit.1);
    assert!(!exit.1.contains("panicked"), "{}", exit.1);
    assert!(t.elapsed() < Duration::from_secs(20));
    // Cleanly closed: the WAL was folded back into the file.
    assert!(!dir.path().join("server.db-wal").exists());
}

/// HTTP 200 on send_message means on disk: N sends, kill -9, restart on
/// the same file, all N are there. Checked in both durability modes.
#[tokio::test]
async fn answered_sends_survive_kill_9() {
    for mode in ["full", "process"] {
        let dir = tempfile::tempdir().unwrap();
        let aud = "http://relay.test";
        let args = ["--port", "0", "--audience", aud, "--durability", mode];
        let p = spawn(dir.path(), &args, &[]);
        let http = client();
        let bob = KeyPairSigner::random();
        let bob_id = id_of(&bob);
        let body = build_request(
            &publish_req(&bob, 0, false),
            &bob,
            aud,
            Dialect::Both,
            now(),
        )
        .unwrap();
        assert_eq!(post_raw(&http, &p.addr, body).await.0, 200);

        // 8 concurrent senders, 40 messages each.
        let mut tasks = tokio::task::JoinSet::new();
        for s in 0..8 {
            let (http, addr, to) = (http.clone(), p.addr.clone(), bob_id.clone());
            tasks.spawn(async move {
                let me = KeyPairSigner::random();
                let body =
                    build_request(&publish_req(&me, 0, false), &me, aud, Dialect::Both, now())
                        .unwrap();
                assert_eq!(post_raw(&http, &addr, body).await.0, 200);
                let mut ids = Vec::new();
                for i in 0..40 {
                    let body = build_request(
                        &send_req(&to, &format!("{s}/{i}")),
                        &me,
                        aud,
                        Dialect::Both,
                        now(),
                    )
                    .unwrap();
                    let (status, out) = post_raw(&http, &addr, body).await;
                    assert_eq!(status, 200, "{out}");
                    ids.push(out["message_id"].as_i64().unwrap());
                }
                ids
            });
        }
        let mut sent = HashSet::new();
        while let Some(ids) = tasks.join_next().await {
            sent.extend(ids.unwrap());
        }
        assert_eq!(sent.len(), 320);

        // kill -9: no shutdown, no checkpoint.
        let mut p = p;
        p.child.kill().unwrap();
        p.child.wait().unwrap();
        drop(p);

        let p = spawn(dir.path(), &args, &[]);
        let body =
            build_request(&ReadMessages::default(), &bob, aud, Dialect::Both, now()).unwrap();
        let (status, mail) = post_raw(&http, &p.addr, body).await;
        assert_eq!(status, 200);
        let got: HashSet<i64> = mail
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["message_id"].as_i64().unwrap())
            .collect();
        assert_eq!(got, sent, "durability {mode}: answered sends lost");
    }
}
