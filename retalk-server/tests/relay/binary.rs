//! The `retalk-server` binary as an operator runs it: start-up line, flags
//! versus environment, `--help`, request logging, SIGTERM, and durability
//! across `kill -9`.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use retalk::proto::tools::{CountKeys, ReadMessages};
use retalk::proto::{build_request, Dialect, KeyPairSigner, RequestSigner};
use retalk_testkit::*;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_retalk-server");

fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    relay_command(Path::new(BIN), dir, args, env)
}

/// The relay binary started with `args` and `env` in `dir` (the test kit's
/// process starter), once it says where it listens.
fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> RelayProcess {
    RelayProcess::launch(command(dir, args, env), dir.join("server.db"))
        .unwrap_or_else(|stderr| panic!("retalk-server did not start: {stderr}"))
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
        p.stderr.seen.iter().all(|l| !l.contains("panicked")),
        "{:?}",
        p.stderr.seen
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
    for v in RELAY_VARS {
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
        let logged = p.stderr.seen.join("\n");
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
        (s, p.stderr.seen.join("\n"))
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
        p.kill();
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
