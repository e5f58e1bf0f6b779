//! The metrics listener (issue 15): Prometheus text, /healthz, /readyz, on
//! their own address and not on the public one.

use retalk_proto::tools::{CountKeys, ReadMessages};
use retalk_proto::KeyPairSigner;
use retalk_testkit::*;

#[tokio::test]
async fn metrics_health_and_readiness_are_served_on_their_own_address() {
    let r = start_with(|c| {
        c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        c.rate_limit = 2;
    })
    .await;
    let maddr = r.relay.metrics_addr().expect("metrics listener");
    assert_ne!(maddr, r.relay.local_addr());
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    r.ok(&alice, &send_req(&bob_id, "hi")).await;
    // A bad signature and a rate-limited caller.
    // Signed for another relay: a bad signature here.
    let bad = signed_body(&bob, "count_keys", Default::default(), "http://elsewhere");
    assert_eq!(post_raw(&r.http, &r.addr(), bad).await.0, 401);
    let s = KeyPairSigner::random();
    for _ in 0..3 {
        r.call(&s, &CountKeys).await;
    }
    let get = |path: &str| {
        let url = format!("http://{maddr}{path}");
        let http = r.http.clone();
        async move {
            let resp = http.get(url).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (status, text) = get("/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        "retalk_requests_total{tool=\"send_message\",status=\"200\"}",
        "retalk_verification_failures_total{reason=\"bad_signature\"}",
        "retalk_rate_limited_total{scope=\"user\"}",
        "retalk_group_commit_size",
        "retalk_verify_batch_size",
        "retalk_fsync_seconds",
        "retalk_mailbox_messages",
        "retalk_mailbox_bytes",
        "retalk_waiting_readers",
        "retalk_http_responses_total{status=\"429\"}",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    // The mailbox gauges are this relay's (its writer's counts as of its
    // last commit), not another relay's of the same process: one message
    // waits.
    let line = text
        .lines()
        .find(|l| l.starts_with("retalk_mailbox_messages "))
        .unwrap();
    assert_eq!(line, "retalk_mailbox_messages 1");
    let gauge = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    assert!(gauge(&text, "retalk_mailbox_bytes") > 0.0);
    r.ok(&bob, &ReadMessages::default()).await;
    // Delivered: both gauges follow at the next scrape.
    let (_, text) = get("/metrics").await;
    assert_eq!(gauge(&text, "retalk_mailbox_messages"), 0.0);
    assert_eq!(gauge(&text, "retalk_mailbox_bytes"), 0.0);
    assert_eq!(get("/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(get("/readyz").await, (200, "ready\n".to_owned()));
    // Nothing of this is on the public port.
    let resp = r
        .http
        .get(format!("{}/metrics", r.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}
