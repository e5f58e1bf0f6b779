//! Defects found by probing the relay as an attacker would (issue 15):
//! each test shows one fixed.

use retalk::proto::KeyPairSigner;
use retalk_testkit::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes raw bytes to the relay and reads its answer until it closes the
/// connection or one whole response has arrived: (status, JSON body).
async fn raw_exchange(addr: &str, bytes: &[u8]) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The relay may answer (and close) before reading everything.
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if len.is_some_and(|n| buf.len() >= end + 4 + n) {
                    break;
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer in time");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text:?}"));
    (status, value)
}

/// A chunked body over the cap names the cap (was "more than that bytes").
#[tokio::test]
async fn a_chunked_body_over_the_cap_names_the_cap() {
    let r = start_with(|c| c.max_body = 1000).await;
    let mut req = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        req.extend_from_slice(format!("258\r\n{}\r\n", " ".repeat(600)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (status, v) = raw_exchange(&r.relay.local_addr().to_string(), &req).await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(
        error_text(&v),
        "request body too large: more than 1000 bytes (max 1000)"
    );
}

/// A body carrying both generations' names for one auth field must give
/// them the same value: otherwise which one is read decides what is checked.
#[tokio::test]
async fn conflicting_old_and_new_auth_names_are_refused() {
    let r = start().await;
    let s = KeyPairSigner::random();
    let other = KeyPairSigner::random();
    let good = signed_body(&s, "count_keys", Default::default(), &r.url());
    let (status, _) = post_raw(&r.http, &r.url(), good.clone()).await;
    assert_eq!(status, 200);
    let foreign: Value = serde_json::from_slice(&signed_body(
        &other,
        "count_keys",
        Default::default(),
        &r.url(),
    ))
    .unwrap();
    for (field, replacement) in [
        ("user_id", foreign["args"]["auth"]["user_id"].clone()),
        (
            "fingerprint",
            foreign["args"]["auth"]["fingerprint"].clone(),
        ),
        ("ts", Value::from((now() - 5).to_string())),
        ("timestamp", Value::from(now() - 5)),
        ("sig", foreign["args"]["auth"]["sig"].clone()),
        ("signature", foreign["args"]["auth"]["signature"].clone()),
    ] {
        let mut v: Value =
            serde_json::from_slice(&signed_body(&s, "count_keys", Default::default(), &r.url()))
                .unwrap();
        v["args"]["auth"][field] = replacement;
        let (status, body) = post_raw(&r.http, &r.url(), v.to_string()).await;
        assert_eq!(status, 401, "{field}: {body}");
        assert!(error_text(&body).contains("they differ"), "{field}: {body}");
    }
    // The same value spelled as a number and as a string is not a conflict.
    let mut v: Value =
        serde_json::from_slice(&signed_body(&s, "count_keys", Default::default(), &r.url()))
            .unwrap();
    let ts: i64 = v["args"]["auth"]["ts"].as_str().unwrap().parse().unwrap();
    v["args"]["auth"]["timestamp"] = Value::from(ts);
    let (status, body) = post_raw(&r.http, &r.url(), v.to_string()).await;
    assert_eq!(status, 200, "{body}");
}

/// Requests hyper itself cannot parse get the same JSON error body as every
/// other refusal (they used to get an empty 400/414/431).
#[tokio::test]
async fn malformed_http_gets_a_json_error() {
    let r = start().await;
    let addr = r.relay.local_addr().to_string();
    let post = |headers: &str| format!("POST / HTTP/1.1\r\nhost: x\r\n{headers}\r\n").into_bytes();
    let mut cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage line", b"GARBAGE\r\n\r\n".to_vec(), 400),
        (
            "binary",
            vec![0u8, 1, 2, 0xff, 0xfe, b'\r', b'\n', b'\r', b'\n'],
            400,
        ),
        ("length not a number", post("content-length: abc\r\n"), 400),
        ("negative length", post("content-length: -1\r\n"), 400),
        ("length list", post("content-length: 1, 2\r\n"), 400),
        (
            "two lengths",
            post("content-length: 1\r\ncontent-length: 2\r\n"),
            400,
        ),
        ("plus sign", post("content-length: +5\r\n"), 400),
        (
            "unknown transfer-encoding",
            post("transfer-encoding: gzip\r\n"),
            400,
        ),
        (
            "chunked not last",
            post("transfer-encoding: chunked, gzip\r\n"),
            400,
        ),
        ("bad header name", post("bad header: x\r\n"), 400),
        ("header without colon", post("nocolon\r\n"), 400),
        (
            "bad version",
            b"POST / HTTP/9.9\r\nhost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bad method",
            b"P@ST / HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            400,
        ),
        ("nul in header", post("x-a: a\0b\r\n"), 400),
        ("space before colon", post("content-length : 5\r\n"), 400),
        (
            "huge uri",
            format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            414,
        ),
        ("header flood", post(&"x-a: b\r\n".repeat(200)), 431),
        (
            "huge header",
            post(&format!("x-a: {}\r\n", "b".repeat(500_000))),
            431,
        ),
        // Over the 128 KiB bound on a request head, under hyper's read
        // buffer: refused by the bound, whatever the reads look like.
        (
            "large header",
            post(&format!("x-a: {}\r\n", "b".repeat(200_000))),
            431,
        ),
    ];
    // A bad chunk size is found while reading the body: our own 400.
    cases.push((
        "bad chunk size",
        [
            post("transfer-encoding: chunked\r\n"),
            b"zz\r\nab\r\n0\r\n\r\n".to_vec(),
        ]
        .concat(),
        400,
    ));
    for (what, bytes, want) in cases {
        let (status, body) = raw_exchange(&addr, &bytes).await;
        assert_eq!(status, want, "{what}: {body}");
        assert!(!error_text(&body).is_empty(), "{what}");
    }
    // The relay still serves well-formed requests afterwards.
    let s = KeyPairSigner::random();
    let good = signed_body(&s, "count_keys", Default::default(), &r.url());
    assert_eq!(post_raw(&r.http, &r.addr(), good).await.0, 200);
}

/// 0.3.0's `test_leave_with_relay_down_still_protects` stops the relay
/// with SIGTERM, waits for it to exit, and expects a client's sends to
/// fail. Whatever the relay was doing (here: a waiting reader and an idle
/// keep-alive connection open), once the process has exited nothing may
/// answer on its port.
#[tokio::test]
async fn after_sigterm_and_exit_nothing_answers() {
    use std::path::Path;
    let dir = tempfile::tempdir().unwrap();
    let aud = "http://relay.test";
    let cmd = relay_command(
        Path::new(env!("CARGO_BIN_EXE_retalk-server")),
        dir.path(),
        &["--port", "0", "--audience", aud],
        &[],
    );
    let mut p = RelayProcess::launch(cmd, dir.path().join("server.db"))
        .unwrap_or_else(|e| panic!("retalk-server did not start: {e}"));
    let hostport = p.addr.trim_start_matches("http://").to_owned();
    let s = KeyPairSigner::random();
    let http = client();
    let body = retalk_proto::build_request(
        &retalk_proto::tools::ReadMessages {
            wait: Some(30),
            ..Default::default()
        },
        &s,
        aud,
        retalk_proto::Dialect::Both,
        now(),
    )
    .unwrap();
    let (h, a) = (http.clone(), p.addr.clone());
    let reader = tokio::spawn(async move { post_raw(&h, &a, body).await });
    let _idle = tokio::net::TcpStream::connect(&hostport).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    p.signal(libc::SIGTERM);
    let status = tokio::task::spawn_blocking(move || p.wait_exit())
        .await
        .unwrap();
    assert!(status.success());
    let _ = tokio::time::timeout(PATIENCE, reader).await;
    // Exited: the port refuses, and a signed send fails rather than being
    // "delivered".
    assert!(tokio::net::TcpStream::connect(&hostport).await.is_err());
    let send = retalk_proto::build_request(
        &retalk_proto::tools::CountKeys,
        &s,
        aud,
        retalk_proto::Dialect::Both,
        now(),
    )
    .unwrap();
    assert!(http
        .post(format!("http://{hostport}"))
        .body(send)
        .send()
        .await
        .is_err());
}
