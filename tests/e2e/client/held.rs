//! Two readers of one identity (an MCP server beside a `receive --follow`):
//! a held message belongs to the instance that got it until it confirms it,
//! and to the others again once that instance is gone; a watcher that only
//! peeks (`wait_for_mail`) takes nothing.

use std::time::{Duration, Instant};

use retalk::{ReceiveOptions, User};
use retalk_testkit::*;

fn held() -> ReceiveOptions {
    ReceiveOptions {
        hold: true,
        ..ReceiveOptions::default()
    }
}

async fn texts_held(u: &User) -> Vec<String> {
    u.receive_with(&held())
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.text)
        .collect()
}

#[tokio::test]
async fn a_held_message_goes_to_one_reader_until_that_reader_is_gone() {
    let (_relay, tmp, alice, bob) = pair().await;
    let bob2 = User::open(&tmp.path().join("bob"), PASS).await.unwrap();

    alice.send(&bob.user_id(), "one").await.unwrap();
    assert_eq!(texts_held(&bob).await, ["one"]);
    // The other instance does not get it while the first holds it...
    assert!(texts_held(&bob2).await.is_empty());
    // ...the holder does, again, until it confirms.
    let again = bob.receive_with(&held()).await.unwrap().messages;
    assert_eq!(again.len(), 1);

    // A message the first instance never confirms reaches the second once
    // the first is gone (its process ended, here: dropped).
    alice.send(&bob.user_id(), "two").await.unwrap();
    assert_eq!(texts_held(&bob2).await, ["two"]);
    drop(bob);
    let mut got = texts_held(&bob2).await;
    got.sort();
    assert_eq!(got, ["one", "two"]);

    // Confirmed: gone for everyone.
    for m in bob2.receive_with(&held()).await.unwrap().messages {
        bob2.shown(&m).unwrap();
    }
    let bob3 = User::open(&tmp.path().join("bob"), PASS).await.unwrap();
    assert!(texts_held(&bob3).await.is_empty());
    assert!(texts_held(&bob2).await.is_empty());
}

#[tokio::test]
async fn wait_for_mail_waits_for_mail_and_takes_nothing() {
    let (_relay, _tmp, alice, bob) = pair().await;

    // Nothing there: it holds (here for one second) and says so.
    let t = Instant::now();
    assert!(!bob
        .wait_for_mail(Duration::from_secs(1), None)
        .await
        .unwrap());
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    // Mail lands during the wait: it returns at once, well before the end.
    let watcher = async {
        let t = Instant::now();
        let seen = bob
            .wait_for_mail(Duration::from_secs(20), None)
            .await
            .unwrap();
        (seen, t.elapsed())
    };
    let sender = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        alice.send(&bob.user_id(), "are you there").await.unwrap();
    };
    let ((seen, took), ()) = tokio::join!(watcher, sender);
    assert!(seen);
    assert!(took < Duration::from_secs(10), "{took:?}");

    // Already there: at once, again and again (it took nothing)...
    assert!(bob
        .wait_for_mail(Duration::from_secs(20), None)
        .await
        .unwrap());
    // ...only the chosen sender's, with `from`.
    assert!(!bob
        .wait_for_mail(Duration::ZERO, Some(&bob.user_id()))
        .await
        .unwrap());
    assert_eq!(texts(&bob).await, ["are you there"]);
}
