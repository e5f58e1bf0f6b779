//! Connection bounds (issue 15): idle connections cannot lock the relay
//! out; busy ones (waiting readers) are not the ones shed; one address can
//! be bounded.

use std::time::Duration;

use retalk_proto::tools::{CountKeys, ReadMessages};
use retalk_proto::KeyPairSigner;
use retalk_testkit::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

async fn connect_from(ip: &str, to: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the relay closed `s` (read sees EOF or reset) within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(wait, s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn idle_connections_make_room_for_new_ones_and_waiters_stay() {
    let r = start_with(|c| c.max_connections = Some(20)).await;
    let (alice, _) = r.user(0).await;
    let (bob, bob_id) = r.user(0).await;
    // A waiting reader holds a busy connection.
    let waiter = {
        let http = client();
        let url = r.addr();
        let body = retalk_proto::build_request(
            &ReadMessages {
                wait: Some(20),
                ..Default::default()
            },
            &bob,
            &r.url(),
            retalk_proto::Dialect::Both,
            now(),
        )
        .unwrap();
        tokio::spawn(async move { post_raw(&http, &url, body).await })
    };
    eventually("the read to wait", || r.relay.waiting() == 1).await;
    // Far more idle connections than the cap.
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(connect_from("127.0.0.1", r.relay.local_addr()).await);
    }
    // A signed request still gets through at once (a fresh client, so a
    // fresh connection).
    let started = std::time::Instant::now();
    let s = KeyPairSigner::random();
    let body =
        retalk_proto::build_request(&CountKeys, &s, &r.url(), retalk_proto::Dialect::Both, now())
            .unwrap();
    let (status, v) = post_raw(&client(), &r.addr(), body).await;
    assert_eq!(status, 200, "{v}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The oldest idle connections were closed to make room.
    assert!(closed_within(&mut idle[0], Duration::from_secs(10)).await);
    // The waiter was not shed: mail reaches it.
    r.ok(&alice, &send_req(&bob_id, "still here")).await;
    let (status, mail) = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(mail.as_array().unwrap().len(), 1, "{mail}");
}

#[tokio::test]
async fn one_address_can_be_bounded() {
    let r = start_with(|c| c.max_connections_per_ip = 3).await;
    let addr = r.relay.local_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.2", addr).await);
    }
    let mut extra = connect_from("127.0.0.2", addr).await;
    assert!(closed_within(&mut extra, Duration::from_secs(10)).await);
    // The first three are still open, and another address is served.
    assert!(!closed_within(&mut held[0], Duration::from_millis(200)).await);
    let s = KeyPairSigner::random();
    let http = reqwest::Client::builder()
        .local_address("127.0.0.3".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let body =
        retalk_proto::build_request(&CountKeys, &s, &r.url(), retalk_proto::Dialect::Both, now())
            .unwrap();
    assert_eq!(post_raw(&http, &r.addr(), body).await.0, 200);
    // Closing one makes room for that address again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from("127.0.0.2", addr).await;
    assert!(!closed_within(&mut again, Duration::from_millis(300)).await);
}
