//! `retalk mcp` (issue 14) driven by an independent MCP client: the
//! official Python SDK (`mcp` from PyPI, pinned, in `target/pyref/venv-mcp`
//! made by `tests/pyref/setup-mcp.sh`), running `tests/mcp/driver.py`.
//!
//! The driver's own assertions are the test (see its docstring): two
//! identities talking through tools, push announcements, a `wait` in
//! progress woken by the peer's send, cancellation, tool errors the server
//! survives, a server beside `receive --follow` losing and duplicating
//! nothing, and rooms (groups) through the group tools, `send {group}` and
//! `history {group}` among three identities. Its report (the tool list
//! with schemas, latencies) is written to `target/mcp-report.json`, where
//! docs/mcp.md's tool list comes from.
//!
//! A Python case: reported ignored when Python or PyPI is missing, a
//! failure under `RETALK_REQUIRE_PYREF=1`; once Python is there, a venv
//! that cannot be built fails the test.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use retalk_testkit::pyref::{self as harness, RustRelay};
use retalk_testkit::{cheap, PASS};
use serde_json::{json, Value};

fn retalk_exe() -> PathBuf {
    retalk_testkit::workspace_bin(
        "retalk-cli",
        "retalk",
        &[
            "src",
            "retalk-proto",
            "retalk-cli",
            "retalk-mcp",
            "Cargo.toml",
            "Cargo.lock",
        ],
    )
}

fn mcp_python(root: &Path) -> PathBuf {
    let py = harness::pyref();
    let out = Command::new("bash")
        .arg(root.join("tests/pyref/setup-mcp.sh"))
        .env("RETALK_PYREF_DIR", &py.dir)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/pyref/setup-mcp.sh");
    assert!(
        out.status.success(),
        "tests/pyref/setup-mcp.sh failed (exit {:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    py.dir.join("venv-mcp/bin/python")
}

fn identity(rt: &tokio::runtime::Runtime, dir: &Path, name: &str, url: &str) -> String {
    rt.block_on(async {
        let u = retalk::User::create_with(dir, PASS, name, Some(url), cheap())
            .await
            .unwrap();
        u.publish(100, false).await.unwrap();
        u.user_id().to_string()
    })
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Two identities through `retalk mcp` and the Python SDK (see the module
/// docs for what the driver checks).
fn python_client_drives_two_servers() {
    let root = harness::root();
    let python = mcp_python(&root);
    let exe = retalk_exe();
    let tmp = harness::tempdir("mcp");
    let relay = RustRelay::start(&tmp.path().join("server.db"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let alice = tmp.path().join("alice");
    let bob = tmp.path().join("bob");
    let carol = tmp.path().join("carol");
    identity(&rt, &alice, "alice", &relay.url);
    identity(&rt, &bob, "bob", &relay.url);
    identity(&rt, &carol, "carol", &relay.url);
    let cfg = json!({
        "retalk": exe,
        "relay": relay.url,
        "dead_relay": format!("http://127.0.0.1:{}", dead_port()),
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "passphrase": PASS,
        "messages": 20,
    });
    let cfg_path = tmp.path().join("config.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let mut child = Command::new(&python)
        .arg(root.join("tests/mcp/driver.py"))
        .arg(&cfg_path)
        .env("HOME", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Python driver");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // Bounded: the driver's own steps have time-outs; this is the backstop.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the MCP driver did not finish in 300 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out_t.join().unwrap();
    let err = err_t.join().unwrap();
    assert!(
        status.success(),
        "the MCP driver failed ({status}):\n{err}\nstdout: {out}"
    );
    let report: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("the driver's report is not JSON ({e}): {out}\n{err}"));
    assert_eq!(report["tools"].as_array().map(Vec::len), Some(18));
    assert_eq!(
        report["follow_split"]["mcp"].as_u64().unwrap()
            + report["follow_split"]["follow"].as_u64().unwrap(),
        20
    );
    let path = root.join("target/mcp-report.json");
    let _ = std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap());
    eprintln!(
        "mcp: protocols {}, wait after send {} ms, announce {} ms, follow split {} (report in {})",
        report["protocol"],
        report["wait_after_send_ms"],
        report["push_announce_ms"],
        report["follow_split"],
        path.display()
    );
}

crate::cases! {
    python: [python_client_drives_two_servers],
    plain: [],
}
