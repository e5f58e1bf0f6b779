//! A hostile relay may answer anything. This one answers each tool with
//! whatever the test scripts; the client must turn all of it into error
//! values or delivery problems, never a panic, and keep the relay's words
//! out of the terminal's control sequences.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use retalk::proto::{AuthError, WireError};
use retalk::{ClientError, User, UserId};
use retalk_testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Script = Arc<Mutex<HashMap<String, (u16, String)>>>;

/// A loopback HTTP server answering `POST {"tool": T}` with `script[T]`.
async fn hostile_relay(script: Script) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let script = script.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, len) = loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse::<usize>().unwrap())
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                while buf.len() < head_end + len {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let tool = serde_json::from_slice::<serde_json::Value>(&buf[head_end..])
                    .ok()
                    .and_then(|v| v["tool"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let (status, body) = script
                    .lock()
                    .unwrap()
                    .get(&tool)
                    .cloned()
                    .unwrap_or((404, String::new()));
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    url
}

fn set(script: &Script, tool: &str, status: u16, body: &str) {
    script
        .lock()
        .unwrap()
        .insert(tool.to_owned(), (status, body.to_owned()));
}

#[tokio::test]
async fn hostile_answers_become_errors_and_problems() {
    let script: Script = Default::default();
    let url = hostile_relay(script.clone()).await;
    let tmp = tempfile::tempdir().unwrap();
    let me = User::create_with(&tmp.path().join("me"), PASS, "me", Some(&url), cheap())
        .await
        .unwrap();
    let peer = UserId::parse(&"ab".repeat(16), "t").unwrap();

    // Mail of every wrong shape: a bad sender, an unknown type, a body that
    // is not base64, bytes that are not Olm, a normal message with no
    // session. None of it stops the receive.
    let mail = serde_json::json!([
        {"message_id": 1, "ts": 1.0, "from": "not an id", "mtype": 1, "body": "AAAA"},
        {"message_id": 2, "ts": 1.0, "from": peer.as_str(), "mtype": 7, "body": "AAAA"},
        {"message_id": 3, "ts": 1.0, "from": peer.as_str(), "mtype": 1, "body": "%%%"},
        {"message_id": 4, "ts": 1.0, "from": peer.as_str(), "mtype": 0, "body": "AAAA"},
        {"message_id": 5, "ts": 1.0, "from": peer.as_str(), "mtype": 1, "body": "AAAA"},
    ]);
    set(&script, "read_messages", 200, &mail.to_string());
    let inbox = me.receive_inbox(None).await.unwrap();
    assert!(inbox.messages.is_empty());
    assert_eq!(inbox.problems.len(), 3, "{:?}", inbox.problems);
    assert!(inbox.problems.iter().all(|p| p.from == peer));

    // Answers that are not what the tool returns.
    set(&script, "read_messages", 200, r#"{"unexpected": true}"#);
    assert!(matches!(
        me.receive().await.unwrap_err(),
        ClientError::BadResponse {
            tool: "read_messages",
            ..
        }
    ));
    set(&script, "count_keys", 200, "garbage");
    assert!(matches!(
        me.ensure_published().await.unwrap_err(),
        ClientError::BadResponse { .. }
    ));
    set(&script, "count_keys", 500, "<html>oops</html>");
    let err = me.maintain(Default::default()).await.unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::Relay {
                error: WireError::Unavailable(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());

    // Keys that do not belong to the peer, even malformed ones.
    set(
        &script,
        "claim_key",
        200,
        r#"{"identity_key": "x", "signing_key": "y", "key_id": "k", "one_time_key": "z", "fallback": false}"#,
    );
    assert!(matches!(
        me.send(&peer, "secret").await.unwrap_err(),
        ClientError::PinMismatch { .. }
    ));
    assert_eq!(me.outbox_len().unwrap(), 0);

    // Reasons keep their kind, even as HTTP 400, and lose control
    // characters.
    set(
        &script,
        "count_keys",
        400,
        r#"{"error": "replay detected: nonce already used"}"#,
    );
    assert!(matches!(
        me.ensure_published().await.unwrap_err(),
        ClientError::Relay {
            error: WireError::Auth(AuthError::Replay),
            ..
        }
    ));
    set(
        &script,
        "count_keys",
        429,
        r#"{"error": "slow down \u001b[2J\u001b]0;pwned\u0007"}"#,
    );
    let text = me.ensure_published().await.unwrap_err().to_string();
    assert!(text.contains("slow down"));
    assert!(!text.chars().any(char::is_control), "{text:?}");
}
