//! `mcp`: how fast a `wait` held through `retalk mcp` wakes up. Alice's
//! agent side is the real `retalk mcp` process, spoken to in MCP's JSON-RPC
//! over its stdin/stdout (the initialize handshake); Bob sends from this
//! process with the client library. Each run: `tools/call wait`, a pause so
//! the wait is parked on the relay, Bob's `send`, and the time from Bob's
//! `send` returning (the relay stored the message) to the `wait`'s
//! response line on the server's stdout: relay wake-up, fetch, decryption,
//! acknowledgement, JSON-RPC. Also from the start of Bob's `send`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::stats::{table, Latency, Recorder};
use crate::target_relay::RelayArgs;

/// Options of the `mcp` scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct McpArgs {
    #[command(flatten)]
    pub relay: RelayArgs,
    /// The `retalk` executable (default: the one next to this binary).
    #[arg(long)]
    pub cli: Option<PathBuf>,
    /// Timed wake-ups.
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Start the server with `--no-push` (no announcements, no upkeep):
    /// the `wait` alone.
    #[arg(long)]
    pub no_push: bool,
    /// Milliseconds between starting the `wait` and Bob's send.
    #[arg(long, default_value_t = 200)]
    pub park_ms: u64,
}

/// What `mcp` measured.
#[derive(Debug, Clone, Serialize)]
pub struct McpReport {
    /// The relay.
    pub relay: String,
    /// The server ran with `--no-push`.
    pub no_push: bool,
    /// Bob's `send` returned → the `wait` response on stdout.
    pub wake: Latency,
    /// Bob's `send` started → the `wait` response on stdout.
    pub from_send_start: Latency,
    /// Bob's `send` alone (library, warm session).
    pub send: Latency,
    /// Waits that returned without the message.
    pub missed: u64,
}

const SECRET: &str = "retalk-bench secret";

struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    next_id: u64,
}

impl Server {
    fn send(&mut self, v: &Value) -> Result<(), String> {
        writeln!(self.stdin, "{v}").map_err(|e| format!("write to retalk mcp: {e}"))?;
        self.stdin.flush().map_err(|e| e.to_string())
    }

    fn request(&mut self, method: &str, params: Value) -> Result<u64, String> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        Ok(id)
    }

    /// The response to `id` (notifications skipped).
    fn response(&mut self, id: u64, timeout: Duration) -> Result<(Value, Instant), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .map_err(|_| format!("no response to request {id} in {timeout:?}"))?;
            let at = Instant::now();
            let v: Value = serde_json::from_str(&line)
                .map_err(|e| format!("retalk mcp printed a non-JSON line ({e}): {line}"))?;
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                return Ok((v, at));
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the scenario.
pub async fn run(args: &McpArgs) -> Result<McpReport, String> {
    let under = args.relay.open().await.map_err(|e| e.to_string())?;
    let url = under.relay().target.url.clone();
    let bin = args
        .cli
        .clone()
        .unwrap_or_else(|| crate::target_relay::sibling("retalk"));
    let tmp = tempfile::Builder::new()
        .prefix("retalk-bench-mcp-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let (a_dir, b_dir) = (tmp.path().join("alice"), tmp.path().join("bob"));
    let err = |e: retalk::ClientError| e.to_string();
    let alice = retalk::User::create(&a_dir, SECRET, "alice", Some(&url))
        .await
        .map_err(err)?;
    alice.publish(100, false).await.map_err(err)?;
    let alice_id = alice.user_id();
    drop(alice);
    let bob = retalk::User::create(&b_dir, SECRET, "bob", Some(&url))
        .await
        .map_err(err)?;
    bob.publish(100, false).await.map_err(err)?;
    let bob_id = bob.user_id().to_string();

    eprintln!("mcp: starting {} mcp", bin.display());
    let mut child = Command::new(&bin)
        .args(["mcp", "-s"])
        .arg(&a_dir)
        .args(["--relay", &url, "--no-save"])
        .args(args.no_push.then_some("--no-push"))
        .env("PICKLE_SECRET", SECRET)
        .env("RETALK_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut srv = Server {
        child,
        stdin,
        lines,
        next_id: 0,
    };
    let id = srv.request(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {},
               "clientInfo": {"name": "retalk-bench", "version": "1"}}),
    )?;
    srv.response(id, Duration::from_secs(30))?;
    srv.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;

    let (mut wake, mut from_start, mut send_rec) = (
        Recorder::default(),
        Recorder::default(),
        Recorder::default(),
    );
    let mut missed = 0;
    // The first message starts the Olm session (key claim): not timed.
    for i in 0..=args.runs {
        let text = format!("wake {i}");
        let id = srv.request(
            "tools/call",
            json!({"name": "wait", "arguments": {"timeout": 20, "peer": bob_id}}),
        )?;
        tokio::time::sleep(Duration::from_millis(args.park_ms)).await;
        let t0 = Instant::now();
        bob.send(&alice_id, &text).await.map_err(err)?;
        let t1 = Instant::now();
        let (resp, at) = srv.response(id, Duration::from_secs(30))?;
        let texts: Vec<&str> = resp["result"]["structuredContent"]["messages"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m["text"].as_str()).collect())
            .unwrap_or_default();
        if texts != [text.as_str()] {
            missed += 1;
            eprintln!("mcp: run {i}: the wait returned {resp}");
            continue;
        }
        if i > 0 {
            wake.record(at - t1);
            from_start.record(at - t0);
            send_rec.record(t1 - t0);
        }
        // Bob's side takes Alice's acknowledgement now and then, so his
        // outbox stays small, as a live client's would.
        if i % 10 == 0 {
            let _ = bob.receive().await;
        }
    }
    Ok(McpReport {
        relay: url,
        no_push: args.no_push,
        wake: wake.latency(),
        from_send_start: from_start.latency(),
        send: send_rec.latency(),
        missed,
    })
}

/// The results as a table.
pub fn render(r: &McpReport) -> String {
    table(
        &[
            "relay",
            "send returned → wait response p50 / p99 / max",
            "send start → wait response",
            "send alone",
            "missed",
        ],
        &[vec![
            if r.no_push {
                format!("{} (--no-push)", r.relay)
            } else {
                r.relay.clone()
            },
            r.wake.cell(),
            r.from_send_start.cell(),
            r.send.cell(),
            r.missed.to_string(),
        ]],
    )
}
