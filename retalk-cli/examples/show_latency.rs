//! Benchmark: how long after a message is saved it is visible in the
//! browser with `retalk show --web` (target: under 300 ms; 0.3.0's page
//! polls every 2 s).
//!
//! Run (release, needs chromium and chromedriver, as the browser test):
//!
//! ```text
//! cargo run --release -p retalk-cli --example show_latency -- [N]
//! ```
//!
//! It creates an identity in a temporary folder, runs `retalk show -s DIR
//! --web --port 0` (the real binary, another process), opens the page in
//! headless chromium, and then N times (default 50, at random 50-250 ms
//! gaps so the saves do not line up with the viewer's file check) keeps a
//! message with the library, as `send --save` does, in this process. The
//! page records `Date.now()` the moment each bubble enters the document (a
//! MutationObserver); the latency is that minus the moment the save's
//! commit returned. Same machine, same clock.

#[path = "../tests/showkit/webdriver.rs"]
mod webdriver;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N: a number of messages"))
        .unwrap_or(50);
    let retalk = retalk_testkit::workspace_bin("retalk-cli", "retalk", &["retalk-cli/src", "src"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("alice");
    let pass = "bench-pass";
    let user = retalk::User::create(&dir, pass, "alice", None)
        .await
        .expect("create the identity");
    let peer = retalk::UserId::parse("5ba74911b26b0ae17aca712c9068ec4d", "peer").unwrap();
    user.history()
        .keep_sent(&peer, "m0", "warm-up")
        .expect("save");

    let mut child = Command::new(&retalk)
        .args(["show", "-s"])
        .arg(&dir)
        .args(["--web", "--port", "0"])
        .env("PICKLE_SECRET", pass)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start retalk show --web");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut url = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("retalk show --web ended before printing its URL");
        }
        if let Some(i) = line.find("http://127.0.0.1:") {
            url = line[i..].trim().to_string();
        }
        if line.contains("listening on 127.0.0.1") {
            break;
        }
    }
    // Keep draining stderr so the viewer never blocks on it.
    std::thread::spawn(move || for _ in err.lines() {});

    let b = webdriver::Browser::start(1100, 720).await;
    b.goto(&url).await;
    b.until(
        "return document.querySelectorAll('#thread .bubble').length === 1 && \
         document.getElementById('live').classList.contains('on')",
        Duration::from_secs(30),
    )
    .await;
    b.js(
        "window.seen = {}; \
         new MutationObserver(ms => { const t = Date.now(); \
           for (const m of ms) for (const n of m.addedNodes) \
             if (n.classList && n.classList.contains('bubble')) \
               window.seen[n.querySelector('.text').textContent] = t; }) \
           .observe(document.getElementById('thread'), {childList: true}); \
         return true",
        json!([]),
    )
    .await;

    let mut lat = Vec::with_capacity(n);
    for i in 1..=n {
        let gap = 50 + rand::random::<u64>() % 200;
        tokio::time::sleep(Duration::from_millis(gap)).await;
        let text = format!("bench message {i}");
        user.history()
            .keep_sent(&peer, &format!("m{i}"), &text)
            .expect("save");
        let saved = now_ms();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let seen = loop {
            let v = b
                .js("return window.seen[arguments[0]] || 0", json!([text]))
                .await;
            if let Some(t) = v.as_f64().filter(|t| *t > 0.0) {
                break t;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "message {i} not visible after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        lat.push((seen - saved).max(0.0));
    }
    drop(b);
    let _ = child.kill();
    let _ = child.wait();

    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "show --web save -> visible: n={} min={:.0}ms p50={:.0}ms p95={:.0}ms p99={:.0}ms max={:.0}ms (target < 300 ms); loadavg {}",
        lat.len(),
        lat[0],
        q(0.5),
        q(0.95),
        q(0.99),
        lat[lat.len() - 1],
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}
