//! A rough throughput check of durable signed `send_message`, for
//! development (the project's benchmarks live in `retalk-bench`).
//!
//!     cargo run --release -p retalk-server --example load -- [N] [CONCURRENCY] [full|process]
//!
//! Starts a relay in-process (its own runtime) on a temp database, signs N
//! sends up front (so signing is not measured), then posts them from
//! CONCURRENCY connections and reports sends per second.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use retalk::proto::tools::{MessageType, PublishKeys, SendMessage};
use retalk::proto::{
    build_request, Dialect, IdentityKey, KeyPairSigner, RequestSigner, SigningKey,
};
use retalk_server::{Config, Durability, Relay};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let conc: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let durability = match args.next().as_deref() {
        Some("process") => Durability::Process,
        _ => Durability::Full,
    };
    let dir = tempfile::tempdir().unwrap();
    let relay_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let relay = relay_rt
        .block_on(Relay::start(Config {
            port: 0,
            db: dir.path().join("server.db"),
            durability,
            ..Default::default()
        }))
        .unwrap();
    let url = relay.url();
    let addr = format!("http://{}", relay.local_addr());

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(async move {
        let http = reqwest::Client::new();
        let bob = KeyPairSigner::random();
        let publish = PublishKeys {
            identity_key: IdentityKey::parse(&bob.identity_key(), "ik").unwrap(),
            signing_key: SigningKey::parse(&bob.signing_key(), "sk").unwrap(),
            one_time_keys: vec![],
            fallback_key: None,
        };
        let body = build_request(&publish, &bob, &url, Dialect::Both, now()).unwrap();
        let r = http.post(&addr).body(body).send().await.unwrap();
        assert!(r.status().is_success());
        let bob_id = retalk::proto::UserId::parse(
            &retalk::proto::fingerprint(&bob.identity_key(), &bob.signing_key()),
            "id",
        )
        .unwrap();

        let senders: Vec<KeyPairSigner> = (0..conc).map(|_| KeyPairSigner::random()).collect();
        for s in &senders {
            let p = PublishKeys {
                identity_key: IdentityKey::parse(&s.identity_key(), "ik").unwrap(),
                signing_key: SigningKey::parse(&s.signing_key(), "sk").unwrap(),
                one_time_keys: vec![],
                fallback_key: None,
            };
            let body = build_request(&p, s, &url, Dialect::Both, now()).unwrap();
            http.post(&addr).body(body).send().await.unwrap();
        }
        let ciphertext = vec![7u8; 200];
        let t = Instant::now();
        let bodies: Vec<Vec<Vec<u8>>> = senders
            .iter()
            .map(|s| {
                (0..n / conc)
                    .map(|_| {
                        let m = SendMessage::new(bob_id.clone(), MessageType::Normal, &ciphertext);
                        build_request(&m, s, &url, Dialect::V03, now()).unwrap()
                    })
                    .collect()
            })
            .collect();
        eprintln!("signed {} requests in {:?}", n / conc * conc, t.elapsed());

        let t = Instant::now();
        let mut tasks = Vec::new();
        for batch in bodies {
            let (http, addr) = (http.clone(), addr.clone());
            tasks.push(tokio::spawn(async move {
                for body in batch {
                    let r = http.post(&addr).body(body).send().await.unwrap();
                    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
                    let _ = r.bytes().await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let el = t.elapsed();
        let total = n / conc * conc;
        println!(
            "{total} durable signed send_message in {el:?}: {:.0}/s ({durability:?}, {conc} connections)",
            total as f64 / el.as_secs_f64()
        );
    });
    thread_cpu_report();
    relay_rt.block_on(relay.shutdown());
}

/// CPU seconds used by each of this process's threads, grouped by name,
/// from /proc (Linux only; silent elsewhere).
fn thread_cpu_report() {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    let tick = 100.0; // USER_HZ
    let mut by_name: std::collections::BTreeMap<String, f64> = Default::default();
    for t in tasks.flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        // Fields after the ")" of the command name: utime is 14th, stime
        // 15th overall.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let secs =
            (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / tick;
        let key = name
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_owned();
        *by_name.entry(key).or_default() += secs;
    }
    for (name, secs) in by_name {
        println!("  cpu {name:<20} {secs:.2} s");
    }
}
