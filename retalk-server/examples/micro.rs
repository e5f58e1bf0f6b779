//! Per-request CPU cost of the relay's stages, single-threaded, for
//! development:
//!
//!     cargo run --release -p retalk-server --example micro
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use retalk::proto::tools::{MessageType, SendMessage};
use retalk::proto::Nonce;
use retalk::proto::{build_request, Dialect, KeyPairSigner, SignedRequest, UserId};
use retalk_server::verify::Verifier;
use retalk_server::{store, Durability};

fn main() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signer = KeyPairSigner::random();
    let to = UserId::parse(&"d".repeat(32), "to").unwrap();
    let n = 5000;
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let m = SendMessage::new(to.clone(), MessageType::Normal, &[7u8; 200]);
            build_request(&m, &signer, "http://127.0.0.1:8766", Dialect::V03, now).unwrap()
        })
        .collect();
    println!("body size {} bytes", bodies[0].len());
    let t = Instant::now();
    for b in &bodies {
        std::hint::black_box(SignedRequest::parse(b).unwrap());
    }
    println!(
        "parse: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let v = Verifier {
        audiences: vec!["http://127.0.0.1:8766".to_owned()].into(),
        clock_offset_secs: 0,
    };
    let t = Instant::now();
    for b in &bodies {
        std::hint::black_box(v.check(b).unwrap());
    }
    println!(
        "parse+verify: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );

    // The signature primitives alone.
    let vk = signer.signing.verifying_key();
    let bytes = vk.to_bytes();
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(ed25519_dalek::VerifyingKey::from_bytes(&bytes).unwrap());
    }
    println!(
        "key decompression: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    use ed25519_dalek::Signer;
    let msg = b"count_keys|http://127.0.0.1:8766|0123|1|2|3";
    let sig = signer.signing.sign(msg);
    let t = Instant::now();
    for _ in 0..n {
        vk.verify_strict(msg, &sig).unwrap();
    }
    println!(
        "verify_strict: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    for batch in [8usize, 32, 64] {
        let msgs: Vec<&[u8]> = vec![&msg[..]; batch];
        let sigs = vec![sig; batch];
        let keys = vec![vk; batch];
        let t = Instant::now();
        for _ in 0..n / batch {
            ed25519_dalek::verify_batch(&msgs, &sigs, &keys).unwrap();
        }
        println!(
            "verify_batch of {batch}: {:.1} us per signature",
            t.elapsed().as_secs_f64() * 1e6 / (n / batch * batch) as f64
        );
    }

    // The writer's share: nonce + send_message, committed in groups.
    let dir = tempfile::tempdir().unwrap();
    for durability in [Durability::Full, Durability::Process] {
        for group in [1usize, 16, 128] {
            let path = dir.path().join(format!("{durability:?}-{group}.db"));
            let mut conn = store::open(&path, durability).unwrap();
            let sender = UserId::parse(&"a".repeat(32), "s").unwrap();
            conn.execute(
                "INSERT INTO users(id, identity_key) VALUES(?1, 'x')",
                [to.as_str()],
            )
            .unwrap();
            let msg = SendMessage::new(to.clone(), MessageType::Normal, &[7u8; 200]);
            let jobs = if group == 1 { 300 } else { 6000 };
            let t = Instant::now();
            for chunk in 0..jobs / group {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .unwrap();
                for i in 0..group {
                    let nonce = Nonce::parse(&format!("{:032x}", chunk * group + i)).unwrap();
                    store::insert_nonce(&tx, &nonce, now as f64).unwrap();
                    store::send_message(&tx, &sender, &msg, "00", now as f64, 0, 0.0).unwrap();
                }
                tx.commit().unwrap();
            }
            println!(
                "store {durability:?}, groups of {group}: {:.1} us per send",
                t.elapsed().as_secs_f64() * 1e6 / jobs as f64
            );
        }
    }
}
