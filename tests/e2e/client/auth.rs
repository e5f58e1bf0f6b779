//! Signed requests cannot be replayed, kept for later, or taken to another
//! relay; the client keeps the relay's reason in its typed error.

use retalk::proto::tools::CountKeys;
use retalk::proto::{AuthError, WireError};
use retalk_testkit::raw::{now_secs, RawPeer};
use retalk_testkit::*;

#[tokio::test]
async fn replayed_stale_and_other_relay_requests_are_refused() {
    let relay = TestRelay::start().await;
    let other = TestRelay::start().await;
    let peer = RawPeer::new(&relay.url(), 1).await;

    // A captured request works once, never twice.
    let body = peer.body(&CountKeys, &relay.url(), now_secs());
    assert!(peer.post::<CountKeys>(body.clone()).await.is_ok());
    assert_eq!(
        peer.post::<CountKeys>(body).await.unwrap_err(),
        WireError::Auth(AuthError::Replay)
    );

    // Signed too long ago, or too far ahead.
    for skew in [-1000, 1000] {
        let body = peer.body(&CountKeys, &relay.url(), now_secs() + skew);
        assert_eq!(
            peer.post::<CountKeys>(body).await.unwrap_err(),
            WireError::Auth(AuthError::Stale)
        );
    }

    // Signed for another relay (its audience), presented here.
    let body = peer.body(&CountKeys, &other.url(), now_secs());
    assert_eq!(
        peer.post::<CountKeys>(body).await.unwrap_err(),
        WireError::Auth(AuthError::BadSignature)
    );
    relay.relay.shutdown().await;
    other.relay.shutdown().await;
}

#[tokio::test]
async fn a_user_signs_for_the_relay_it_addresses() {
    // The same identity works against two relays: each request is signed
    // for the URL it is sent to.
    let a = TestRelay::start().await;
    let b = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut u = user(tmp.path(), "u", &a.url()).await;
    u.set_relay_url(&b.url());
    assert!(u.ensure_published().await.unwrap());
    assert!(!u.ensure_published().await.unwrap());
    a.relay.shutdown().await;
    b.relay.shutdown().await;
}
