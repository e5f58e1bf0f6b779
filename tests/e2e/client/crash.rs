//! Nothing the relay hands over is lost, whenever the receiving process
//! dies. Each test runs a child process (this test binary again) that
//! receives with `RETALK_CRASH_AT` naming one step of the pipeline, so it
//! aborts right there (as `kill -9` would); then a normal receive must yield
//! every message exactly once and the sender's outbox must empty.

use std::time::Duration;

use retalk::User;
use retalk_testkit::*;

/// The child's part: open the store and receive (or send) once.
async fn child(role: &str) {
    let dir = std::env::var("RETALK_TEST_DIR").unwrap();
    let mut u = User::open(dir.as_ref(), PASS).await.unwrap();
    u.set_relay_url(&std::env::var("RETALK_TEST_URL").unwrap());
    match role {
        "receive" => {
            let got = u.receive().await.unwrap();
            println!("received {}", got.len());
        }
        "receive_wait" => {
            let got = u
                .receive_inbox(Some(Duration::from_secs(30)))
                .await
                .unwrap();
            println!("received {}", got.messages.len());
        }
        "send" => {
            let to = u
                .resolve_peer(&std::env::var("RETALK_TEST_TO").unwrap())
                .unwrap();
            u.send(&to, "sent by a dying process").await.unwrap();
        }
        other => panic!("unknown child role {other}"),
    }
}

fn mail_count(relay: &TestRelay, to: &User) -> i64 {
    relay
        .sql()
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE recipient=?1",
            [to.user_id().as_str()],
            |r| r.get(0),
        )
        .unwrap()
}

/// Alice sends two messages; Bob's receive dies at `point`; Bob then
/// receives normally.
async fn receive_crash_case(name: &str, point: &str) {
    let (relay, tmp, alice, bob) = pair().await;
    alice.send(&bob.user_id(), "first").await.unwrap();
    alice.send(&bob.user_id(), "second").await.unwrap();

    let out = run_child(
        &test_name(module_path!(), name),
        &[
            (CHILD_ROLE, "receive".into()),
            ("RETALK_CRASH_AT", point.into()),
            (
                "RETALK_TEST_DIR",
                tmp.path().join("bob").display().to_string(),
            ),
            ("RETALK_TEST_URL", relay.url()),
        ],
    )
    .await;
    assert_aborted(&out);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("received"),
        "the child should have died at {point}: {}",
        output_text(&out)
    );
    // The relay handed the mail over and forgot it: only Bob's store has it.
    assert_eq!(mail_count(&relay, &bob), 0);

    let inbox = bob.receive_inbox(None).await.unwrap();
    assert!(inbox.problems.is_empty(), "{:?}", inbox.problems);
    let texts: Vec<&str> = inbox.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["first", "second"], "after a crash at {point}");
    assert!(bob.receive_inbox(None).await.unwrap().is_empty());

    // Every message gets acknowledged in the end.
    let deadline = std::time::Instant::now() + PATIENCE;
    while alice.outbox_len().unwrap() > 0 {
        assert!(alice.receive().await.unwrap().is_empty());
        assert!(
            std::time::Instant::now() < deadline,
            "acks missing after {point}"
        );
        bob.maintain(Default::default()).await.unwrap();
    }
    // And the pair still works.
    bob.send(&alice.user_id(), "still talking").await.unwrap();
    assert_eq!(alice.receive().await.unwrap()[0].text, "still talking");
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn crash_after_fetch() {
    if let Some(role) = child_role() {
        return child(&role).await;
    }
    receive_crash_case("crash_after_fetch", "receive:fetched").await;
}

/// A listener holding a waiting read (`receive --follow`) dies the moment
/// mail arrives: the held read only peeked, so the mail is still on the
/// relay, and the next receive yields it exactly once.
#[tokio::test]
async fn crash_while_a_waiting_read_sees_mail() {
    if let Some(role) = child_role() {
        return child(&role).await;
    }
    let (relay, tmp, alice, bob) = pair().await;
    let envs = [
        (CHILD_ROLE, "receive_wait".to_string()),
        ("RETALK_CRASH_AT", "receive:peeked".into()),
        (
            "RETALK_TEST_DIR",
            tmp.path().join("bob").display().to_string(),
        ),
        ("RETALK_TEST_URL", relay.url()),
    ];
    let child = tokio::spawn(async move {
        run_child(
            &test_name(module_path!(), "crash_while_a_waiting_read_sees_mail"),
            &envs,
        )
        .await
    });
    let deadline = std::time::Instant::now() + PATIENCE;
    while relay.relay.waiting() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    alice.send(&bob.user_id(), "first").await.unwrap();
    alice.send(&bob.user_id(), "second").await.unwrap();
    let out = child.await.unwrap();
    assert_aborted(&out);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("received"),
        "the child should have died after its waiting read saw mail: {}",
        output_text(&out)
    );
    // At least the first message woke the waiter; none was taken off the
    // relay by the dying process.
    assert_eq!(mail_count(&relay, &bob), 2);
    let texts: Vec<String> = texts(&bob).await;
    assert_eq!(texts, ["first", "second"]);
    assert!(bob.receive_inbox(None).await.unwrap().is_empty());
    relay.relay.shutdown().await;
}

#[tokio::test]
async fn crash_after_first_decrypt() {
    if let Some(role) = child_role() {
        return child(&role).await;
    }
    receive_crash_case("crash_after_first_decrypt", "receive:decrypted").await;
}

#[tokio::test]
async fn crash_after_encrypting_an_ack() {
    if let Some(role) = child_role() {
        return child(&role).await;
    }
    receive_crash_case("crash_after_encrypting_an_ack", "ack:encrypted").await;
}

#[tokio::test]
async fn crash_after_acking_before_returning() {
    if let Some(role) = child_role() {
        return child(&role).await;
    }
    receive_crash_case("crash_after_acking_before_returning", "receive:acked").await;
}

#[tokio::test]
async fn crash_between_queueing_and_uploading_a_send() {
    if let Some(role) = child_role() {
        return child(&role).await;
    }
    let (relay, tmp, alice, bob) = pair().await;
    let out = run_child(
        &test_name(
            module_path!(),
            "crash_between_queueing_and_uploading_a_send",
        ),
        &[
            (CHILD_ROLE, "send".into()),
            ("RETALK_CRASH_AT", "send:stored".into()),
            (
                "RETALK_TEST_DIR",
                tmp.path().join("alice").display().to_string(),
            ),
            ("RETALK_TEST_URL", relay.url()),
            ("RETALK_TEST_TO", bob.user_id().to_string()),
        ],
    )
    .await;
    assert_aborted(&out);
    assert_eq!(mail_count(&relay, &bob), 0, "it died before uploading");
    assert_eq!(alice.outbox_len().unwrap(), 1, "but the message was queued");
    let opts = retalk::MaintainOptions {
        resend_after: Duration::ZERO,
        ..Default::default()
    };
    assert_eq!(alice.maintain(opts).await.unwrap().resent, 1);
    let got = bob.receive().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "sent by a dying process");
    alice.receive().await.unwrap();
    assert_eq!(alice.outbox_len().unwrap(), 0);
    relay.relay.shutdown().await;
}
