//! Memory of idle waiting readers, for development:
//!
//!     cargo build --release -p retalk-server
//!     cargo run --release -p retalk-server --example waiters -- target/release/retalk-server 10000
//!
//! Starts the relay binary, publishes N users, opens one connection per user
//! holding a `read_messages` with `wait: 60`, and reports the relay's
//! resident memory once all N are waiting.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use retalk::proto::tools::{PublishKeys, ReadMessages};
use retalk::proto::{
    build_request, Dialect, IdentityKey, KeyPairSigner, RequestSigner, SigningKey,
};
use tokio::io::AsyncWriteExt;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let bin = std::fs::canonicalize(args.next().expect("path to retalk-server")).unwrap();
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let aud = "http://relay.test";
    let mut child = Command::new(bin)
        .args(["--port", "0", "--audience", aud, "--durability", "process"])
        .current_dir(dir.path())
        .env("RUST_LOG", "retalk_server=debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let addr = banner
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap()
        .to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if l.contains("a read is waiting") && tx.send(()).is_err() {
                break;
            }
        }
    });
    println!("relay pid {pid} at {addr}; idle RSS {} KiB", rss_kib(pid));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let users: Vec<KeyPairSigner> = (0..n).map(|_| KeyPairSigner::random()).collect();
        let http = reqwest::Client::new();
        let url = format!("http://{addr}");
        let mut tasks = Vec::new();
        for chunk in users.chunks(n.div_ceil(64)) {
            let bodies: Vec<Vec<u8>> = chunk
                .iter()
                .map(|u| {
                    let p = PublishKeys {
                        identity_key: IdentityKey::parse(&u.identity_key(), "ik").unwrap(),
                        signing_key: SigningKey::parse(&u.signing_key(), "sk").unwrap(),
                        one_time_keys: vec![],
                        fallback_key: None,
                    };
                    build_request(&p, u, aud, Dialect::Both, now()).unwrap()
                })
                .collect();
            let (http, url) = (http.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                for b in bodies {
                    assert!(http.post(&url).body(b).send().await.unwrap().status().is_success());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        println!("{n} users published; RSS {} KiB", rss_kib(pid));
        let mut conns = Vec::with_capacity(n);
        for u in &users {
            let body = build_request(
                &ReadMessages { wait: Some(60), ..Default::default() },
                u,
                aud,
                Dialect::Both,
                now(),
            )
            .unwrap();
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!(
                "POST / HTTP/1.1\r\nhost: relay\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(&body).await.unwrap();
            conns.push(s);
        }
        let t = Instant::now();
        let mut waiting = 0;
        while waiting < n && t.elapsed() < Duration::from_secs(50) {
            if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                waiting += 1;
            }
        }
        let rss = rss_kib(pid);
        println!(
            "{waiting} readers waiting: relay RSS {rss} KiB ({:.1} MiB, {:.1} KiB per waiter incl. baseline)",
            rss as f64 / 1024.0,
            rss as f64 / waiting.max(1) as f64
        );
        drop(conns);
    });
    let _ = child.kill();
    let _ = child.wait();
}
