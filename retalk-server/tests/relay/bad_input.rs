//! Every class of bad input gets a 4xx with `{"error": ...}` naming what is
//! wrong, and changes nothing; oversized bodies are refused unread; slow
//! and idle connections are dropped.

use std::time::Duration;

use retalk::proto::tools::{CountKeys, ReadMessages};
use retalk::proto::RequestSigner;
use retalk_testkit::*;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn args(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn malformed_requests_are_refused_and_change_nothing() {
    let r = start().await;
    let (alice, alice_id) = r.user(0).await;
    let (bob, bob_id) = r.user(3).await;
    let aud = r.url();
    let bob_s = bob_id.to_string();
    let key = random_key().to_string();
    let big_batch: Map<String, Value> = (0..1001)
        .map(|i| (format!("k{i}"), Value::from(random_key().to_string())))
        .collect();

    // (body, expected status, words the error must contain)
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"not json".to_vec(), 400, "not valid JSON"),
        (b"".to_vec(), 400, "not valid JSON"),
        (b"[1,2]".to_vec(), 400, "JSON object"),
        (b"{\"args\":{}}".to_vec(), 400, "missing \"tool\""),
        (
            b"{\"tool\":7,\"args\":{}}".to_vec(),
            400,
            "\"tool\" must be a string",
        ),
        (
            b"{\"tool\":\"count_keys\",\"args\":[]}".to_vec(),
            400,
            "\"args\" must be an object",
        ),
        (
            signed_body(&alice, "drop_tables", Map::new(), &aud),
            400,
            "unknown tool",
        ),
        (
            signed_body(&alice, "count_keys", args(json!({"extra": 1})), &aud),
            400,
            "unexpected argument",
        ),
        (
            signed_body(
                &alice,
                "get_keys",
                args(json!({"peer": bob_s.to_uppercase()})),
                &aud,
            ),
            400,
            "32 lowercase hex",
        ),
        (
            signed_body(&alice, "claim_key", args(json!({"peer": "abc"})), &aud),
            400,
            "32 lowercase hex",
        ),
        (
            signed_body(&alice, "claim_key", args(json!({"peer": 12})), &aud),
            400,
            "must be a string",
        ),
        (
            signed_body(&alice, "claim_key", Map::new(), &aud),
            400,
            "is missing",
        ),
        (
            signed_body(
                &alice,
                "send_message",
                args(json!({"to": bob_s, "mtype": 2, "body": "AAAA"})),
                &aud,
            ),
            400,
            "mtype",
        ),
        (
            signed_body(
                &alice,
                "send_message",
                args(json!({"to": bob_s, "mtype": "1", "body": "AAAA"})),
                &aud,
            ),
            400,
            "mtype",
        ),
        (
            signed_body(
                &alice,
                "send_message",
                args(json!({"to": bob_s, "mtype": 1, "body": "not base64!"})),
                &aud,
            ),
            400,
            "base64",
        ),
        (
            signed_body(
                &alice,
                "send_message",
                args(json!({"to": bob_s, "mtype": 1, "body": ""})),
                &aud,
            ),
            400,
            "base64",
        ),
        (
            signed_body(
                &alice,
                "send_message",
                args(json!({"to": bob_s, "mtype": 1})),
                &aud,
            ),
            400,
            "body",
        ),
        (
            signed_body(
                &alice,
                "publish_keys",
                args(json!({
                    "identity_key": alice.identity_key(),
                    "signing_key": alice.signing_key(),
                    "one_time_keys": {"k": "QUJD"},
                    "fallback_key": null,
                })),
                &aud,
            ),
            400,
            "32-byte key",
        ),
        (
            signed_body(
                &alice,
                "publish_keys",
                args(json!({
                    "identity_key": "short",
                    "signing_key": alice.signing_key(),
                    "one_time_keys": {},
                    "fallback_key": null,
                })),
                &aud,
            ),
            400,
            "identity_key",
        ),
        (
            signed_body(
                &alice,
                "publish_keys",
                args(json!({
                    "identity_key": alice.identity_key(),
                    "signing_key": alice.signing_key(),
                    "one_time_keys": big_batch,
                    "fallback_key": null,
                })),
                &aud,
            ),
            400,
            "at most 1000",
        ),
        (
            signed_body(
                &alice,
                "publish_keys",
                args(json!({
                    "identity_key": alice.identity_key(),
                    "signing_key": alice.signing_key(),
                    "one_time_keys": {},
                    "fallback_key": {"a": key, "b": key},
                })),
                &aud,
            ),
            400,
            "exactly one",
        ),
        (
            signed_body(&alice, "read_messages", args(json!({"wait": 0})), &aud),
            400,
            "wait",
        ),
        (
            signed_body(&alice, "read_messages", args(json!({"wait": 61})), &aud),
            400,
            "wait",
        ),
        (
            signed_body(&alice, "read_messages", args(json!({"peek": "yes"})), &aud),
            400,
            "peek",
        ),
        (
            signed_body(
                &alice,
                "nack",
                args(json!({"hash": "00", "sig": "AAAA"})),
                &aud,
            ),
            400,
            "hash",
        ),
    ];
    for (body, want_status, want_text) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        let (status, answer) = r.post_raw(body).await;
        assert_eq!(status, want_status, "{shown}: {answer}");
        assert!(
            error_text(&answer).contains(want_text),
            "{shown}: {answer} should mention {want_text:?}"
        );
    }

    // Nothing changed: Bob's mailbox is empty, his keys are all there,
    // Alice has no one-time keys.
    assert_eq!(r.ok(&bob, &ReadMessages::default()).await, json!([]));
    assert_eq!(r.ok(&bob, &CountKeys).await["unclaimed"], 3);
    assert_eq!(r.ok(&alice, &CountKeys).await["unclaimed"], 0);
    let _ = alice_id;
}

async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The relay may close its side while we still write: that is the point.
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut out))
        .await
        .expect("the relay neither answered nor closed");
    String::from_utf8_lossy(&out).into_owned()
}

/// A declared length over the cap gets 413 at once: the test never sends
/// the body, so an answer proves the relay did not wait to read it.
#[tokio::test]
async fn oversized_body_is_refused_before_reading() {
    let r = start().await;
    let head = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        64 * 1024 * 1024
    );
    let answer = raw_exchange(r.relay.local_addr(), head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("request body too large"), "{answer}");
}

/// A chunked body (no declared length) is cut off at the cap.
#[tokio::test]
async fn oversized_chunked_body_is_refused() {
    let r = start_with(|c| c.max_body = 4096).await;
    let mut req = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b'a'; 1024];
    for _ in 0..8 {
        req.extend_from_slice(b"400\r\n");
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(r.relay.local_addr(), &req).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn body_within_a_small_cap_is_accepted_and_one_over_is_not() {
    let r = start_with(|c| c.max_body = 2000).await;
    let signer = retalk::proto::KeyPairSigner::random();
    let (status, _) = r.call(&signer, &CountKeys).await;
    assert_eq!(status, 200);
    let (status, body) = r.call(&signer, &publish_req(&signer, 40, true)).await;
    assert_eq!(status, 413, "{body}");
    assert!(error_text(&body).contains("max 2000"), "{body}");
    assert_eq!(r.ok(&signer, &CountKeys).await["unclaimed"], 0);
}

/// A connection that never sends a request is closed after the timeout.
#[tokio::test]
async fn idle_connection_is_dropped() {
    let r = start_with(|c| c.timeout = Duration::from_millis(300)).await;
    let mut s = TcpStream::connect(r.relay.local_addr()).await.unwrap();
    assert_closed_when_idle(&mut s).await;
}

/// The relay closes `s` (EOF or reset, possibly after a 408 from hyper)
/// within [`PATIENCE`].
async fn assert_closed_when_idle(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(PATIENCE, s.read(&mut buf))
        .await
        .expect("the idle connection was never closed");
    match n {
        Ok(0) | Err(_) => {}
        Ok(n) => {
            let text = String::from_utf8_lossy(&buf[..n]);
            assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        }
    }
}

/// Reads one answer (head and a `content-length` body) from `s`.
async fn read_answer(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse().unwrap());
            if got.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(PATIENCE, s.read(&mut buf))
            .await
            .expect("no answer")
            .unwrap();
        assert!(n > 0, "closed before the answer: {text}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// The idle timeout counts from each request, not from the first: a
/// keep-alive connection whose requests come closer together than the
/// timeout is served for longer than it (the per-connection timer fires
/// at an earlier request's deadline and is re-armed), and once it idles
/// it is closed.
#[tokio::test]
async fn a_busy_connection_outlives_the_timeout_and_an_idle_one_does_not() {
    let timeout = Duration::from_millis(1000);
    let r = start_with(|c| c.timeout = timeout).await;
    let mut s = TcpStream::connect(r.relay.local_addr()).await.unwrap();
    let started = std::time::Instant::now();
    for _ in 0..4 {
        s.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
            .await
            .unwrap();
        let answer = read_answer(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
        tokio::time::sleep(timeout * 6 / 10).await;
    }
    assert!(started.elapsed() > timeout * 2, "served beyond one timeout");
    assert_closed_when_idle(&mut s).await;
}

/// A body that stops arriving is answered 408 and the connection freed.
#[tokio::test]
async fn slow_body_is_dropped() {
    let r = start_with(|c| c.timeout = Duration::from_millis(300)).await;
    let mut s = TcpStream::connect(r.relay.local_addr()).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"tool\"")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut out))
        .await
        .expect("slow body was never cut off")
        .ok();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("not received"), "{text}");
}

/// Not HTTP at all: refused by the HTTP layer, and the relay keeps serving.
#[tokio::test]
async fn garbage_on_the_socket_does_not_hurt() {
    let r = start().await;
    let answer = raw_exchange(r.relay.local_addr(), b"\x00\x01\x02 hello\r\n\r\n").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    let signer = retalk::proto::KeyPairSigner::random();
    assert_eq!(r.call(&signer, &CountKeys).await.0, 200);
}

/// A client that asks for a large mailbox and then stops reading is cut
/// off after the timeout instead of holding its connection forever.
#[tokio::test]
async fn a_client_that_stops_reading_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let aud = "http://relay.test";
    let cfg = || {
        let mut c = config(dir.path());
        c.audiences = vec![aud.into()];
        c.timeout = Duration::from_millis(300);
        c
    };
    let bob = retalk::proto::KeyPairSigner::random();
    let bob_id = id_of(&bob);
    let big_body = "A".repeat(64 * 1024);
    let count = 200;
    {
        let relay = retalk_server::Relay::start(cfg()).await.unwrap();
        relay.shutdown().await;
        let conn = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
        conn.execute_batch("BEGIN").unwrap();
        for _ in 0..count {
            conn.execute(
                "INSERT INTO messages(ts, sender, recipient, mtype, body) VALUES(1.0, ?1, ?1, 1, ?2)",
                rusqlite::params![bob_id.as_str(), big_body],
            )
            .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }
    let relay = retalk_server::Relay::start(cfg()).await.unwrap();
    let body = retalk::proto::build_request(
        &ReadMessages::default(),
        &bob,
        aud,
        retalk::proto::Dialect::Both,
        now(),
    )
    .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(relay.local_addr()).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    // Wait for the answer to start (the relay has read the mailbox and is
    // writing), then stop reading for ten times the relay's timeout: the
    // answer is far larger than the socket buffers, so the relay's writes
    // stall.
    let mut status = [0u8; 12];
    tokio::time::timeout(PATIENCE, s.read_exact(&mut status))
        .await
        .expect("no answer")
        .unwrap();
    assert_eq!(&status, b"HTTP/1.1 200");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut got = status.to_vec();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut got))
        .await
        .expect("connection neither finished nor closed");
    let full = count * big_body.len();
    assert!(
        got.len() < full,
        "the whole answer ({} bytes) arrived",
        got.len()
    );
    relay.shutdown().await;
}
