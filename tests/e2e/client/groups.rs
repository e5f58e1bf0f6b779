//! `user.groups()` and `user.invites()` through a real relay: posts fan
//! out tagged with the room; rosters change only by current members'
//! transitions; removed and departed members cannot list themselves back;
//! strangers' rooms are invitations; invite codes are checked, stored
//! hashed, and never let a redeemer's name shadow a contact.

use retalk::{AdoptPolicy, Joined, Message, User, UserId, ADOPT_SETTING};
use retalk_testkit::*;

/// Receives until `n` chat messages came (notices are collected too).
async fn chats(u: &User, n: usize) -> (Vec<Message>, Vec<serde_json::Value>) {
    let mut got = Vec::new();
    let mut notices = Vec::new();
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        for m in u.receive().await.unwrap() {
            match m.notice {
                Some(n) => notices.push(n),
                None => got.push(m),
            }
        }
        if got.len() >= n {
            return (got, notices);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} messages",
            got.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Everything waiting now (chat and notices).
async fn drain(u: &User) -> Vec<Message> {
    u.receive().await.unwrap()
}

fn others(u: &User, gid: &str) -> Vec<UserId> {
    u.groups().get(gid).unwrap().unwrap().members
}

fn sorted(mut v: Vec<UserId>) -> Vec<UserId> {
    v.sort();
    v
}

async fn four() -> (TestRelay, tempfile::TempDir, [User; 4]) {
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut users = Vec::new();
    for n in ["alice", "bob", "carol", "dave"] {
        users.push(user(tmp.path(), n, &relay.url()).await);
    }
    let users: [User; 4] = users.try_into().unwrap();
    // everyone saves everyone
    for a in &users {
        for b in &users {
            if a.user_id() != b.user_id() {
                a.add_peer(b.name(), &b.user_id(), None).unwrap();
            }
        }
    }
    (relay, tmp, users)
}

#[tokio::test]
async fn posts_fan_out_tagged_and_rosters_converge_by_transitions() {
    let (_relay, _tmp, [alice, bob, carol, dave]) = four().await;
    let g = alice
        .groups()
        .create("team", &[bob.user_id(), carol.user_id()])
        .await
        .unwrap();
    let sent = alice.groups().send("team", "hello").await.unwrap();
    assert_eq!(sent.sent.len(), 2);
    assert!(sent.failed.is_empty());
    for u in [&bob, &carol] {
        let (m, notices) = chats(u, 1).await;
        assert_eq!(m[0].text, "hello");
        let tag = m[0].group.as_ref().unwrap();
        assert_eq!(
            (tag.id.as_str(), tag.name.as_str()),
            (g.id.as_str(), "team")
        );
        // adopted from a contact silently, as 0.3.x
        assert!(notices.is_empty(), "{notices:?}");
    }
    assert_eq!(
        sorted(others(&bob, &g.id)),
        sorted(vec![alice.user_id(), carol.user_id()])
    );

    // bob adds dave; his post tells alice and carol, who are shown it
    bob.groups().add(&g.id, &[dave.user_id()]).await.unwrap();
    bob.groups().send(&g.id, "meet dave").await.unwrap();
    for u in [&alice, &carol] {
        let (_, notices) = chats(u, 1).await;
        assert_eq!(notices[0]["added"], serde_json::json!([dave.user_id()]));
        assert!(others(u, &g.id).contains(&dave.user_id()));
    }
    chats(&dave, 1).await;

    // carol, who has not posted since, posts her roster (with dave, as she
    // learned): nothing changes. A stale roster from someone who never saw
    // dave removes nobody either: alice's first roster lacked dave, but
    // alice's next post lists him, so no one drops him.
    carol.groups().send(&g.id, "hi all").await.unwrap();
    for u in [&alice, &bob, &dave] {
        let (_, notices) = chats(u, 1).await;
        assert!(notices.is_empty(), "{notices:?}");
    }
    assert_eq!(others(&alice, &g.id).len(), 3);

    // alice welcomes dave (her roster now lists him), then removes him:
    // bob and carol drop him (a transition alice made)
    alice.groups().send(&g.id, "welcome dave").await.unwrap();
    for u in [&bob, &carol, &dave] {
        chats(u, 1).await;
    }
    alice.groups().remove(&g.id, &[dave.user_id()]).unwrap();
    alice.groups().send(&g.id, "dave is out").await.unwrap();
    for u in [&bob, &carol] {
        let (_, notices) = chats(u, 1).await;
        assert!(
            notices.is_empty(),
            "a removal alone is not announced: {notices:?}"
        );
        assert!(!others(u, &g.id).contains(&dave.user_id()));
    }
    // dave never got that post (not a member any more); he posts with
    // himself listed: refused everywhere, no one takes him back
    assert!(drain(&dave).await.is_empty());
    let r = dave.groups().send(&g.id, "i am back").await.unwrap();
    assert_eq!(r.sent.len(), 3);
    for u in [&alice, &bob, &carol] {
        assert!(drain(u).await.iter().all(|m| m.text != "i am back"));
        assert!(!others(u, &g.id).contains(&dave.user_id()));
    }
    // the refusals are signed: dave's client drops the copies from its
    // outbox instead of re-sending them forever
    dave.flush_outbox(std::time::Duration::ZERO).await.unwrap();
    assert_eq!(dave.outbox_len().unwrap(), 0);

    // carol leaves: told to everyone, dropped everywhere; her client
    // refuses the room's later mail
    let left = carol.groups().leave(&g.id).await.unwrap();
    assert_eq!(left.told.len(), 2);
    assert!(carol.groups().get(&g.id).unwrap().is_none());
    for u in [&alice, &bob] {
        let got = drain(u).await;
        let leave = got.iter().find_map(|m| m.notice.clone()).unwrap();
        assert_eq!(leave["kind"], "group_leave");
        assert_eq!(leave["group_id"], serde_json::json!(g.id));
        assert!(!others(u, &g.id).contains(&carol.user_id()));
    }
    let r = alice.groups().send(&g.id, "after carol").await.unwrap();
    assert_eq!(r.sent, vec![bob.user_id()]);
    chats(&bob, 1).await;
    // rejoining only lifts the refusal
    assert!(matches!(
        carol.groups().join(&g.id).unwrap(),
        Joined::Rejoined { .. }
    ));
}

#[tokio::test]
async fn a_strangers_room_is_an_invitation_until_joined() {
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let alice = user(tmp.path(), "alice", &relay.url()).await;
    let mallory = user(tmp.path(), "mallory", &relay.url()).await;
    let g = mallory
        .groups()
        .create("free stuff", &[alice.user_id()])
        .await
        .unwrap();
    mallory.groups().send(&g.id, "click").await.unwrap();
    let (m, notices) = chats(&alice, 1).await;
    assert_eq!(m[0].group.as_ref().unwrap().id, g.id);
    assert_eq!(notices[0]["kind"], "group_invitation");
    let held = alice.groups().get(&g.id).unwrap().unwrap();
    assert!(held.invitation);
    assert_eq!(held.inviter, Some(mallory.user_id()));
    let e = alice.groups().send(&g.id, "x").await.unwrap_err();
    assert!(e.to_string().contains("invitation"), "{e}");
    assert!(matches!(
        alice.groups().join(&g.id).unwrap(),
        Joined::Accepted(_)
    ));
    alice.groups().send(&g.id, "ok").await.unwrap();
    assert_eq!(chats(&mallory, 1).await.0[0].text, "ok");

    // with the policy `anyone`, a stranger's room is adopted at once
    alice
        .set_setting(ADOPT_SETTING, Some(AdoptPolicy::Anyone.as_str()))
        .unwrap();
    let g2 = mallory
        .groups()
        .create("second", &[alice.user_id()])
        .await
        .unwrap();
    mallory.groups().send(&g2.id, "again").await.unwrap();
    let (_, notices) = chats(&alice, 1).await;
    assert!(notices.is_empty(), "{notices:?}");
    assert!(!alice.groups().get(&g2.id).unwrap().unwrap().invitation);
}

#[tokio::test]
async fn labels_are_local_unique_and_never_user_ids() {
    let (_relay, _tmp, [alice, bob, carol, _dave]) = four().await;
    bob.groups()
        .create("team", &[alice.user_id()])
        .await
        .unwrap();
    let c = carol
        .groups()
        .create("team", &[alice.user_id()])
        .await
        .unwrap();
    let a = alice
        .groups()
        .create("team", &[bob.user_id()])
        .await
        .unwrap();
    bob.groups().send("team", "from bob").await.unwrap();
    carol.groups().send("team", "from carol").await.unwrap();
    let (m, _) = chats(&alice, 2).await;
    let labels: Vec<&str> = m
        .iter()
        .map(|m| m.group.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(labels, ["team-2", "team-3"]);
    assert_eq!(alice.groups().get("team").unwrap().unwrap().id, a.id);
    assert_eq!(alice.groups().get("team-3").unwrap().unwrap().id, c.id);
    let e = alice
        .groups()
        .create(alice.user_id().as_str(), &[bob.user_id()])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("fingerprint"), "{e}");
    assert!(alice.groups().rename("team", "team-2").is_err());
    alice.groups().rename("team", "mine").unwrap();
    assert_eq!(alice.groups().get("mine").unwrap().unwrap().id, a.id);
}

#[tokio::test]
async fn the_relays_cap_limits_rosters() {
    let relay = start_with(|c| c.max_group_size = 3).await;
    let tmp = tempfile::tempdir().unwrap();
    let mut us = Vec::new();
    for n in ["a", "b", "c", "d"] {
        us.push(user(tmp.path(), n, &relay.url()).await);
    }
    let ids: Vec<UserId> = us.iter().map(User::user_id).collect();
    let e = us[0].groups().create("big", &ids[1..]).await.unwrap_err();
    assert!(e.to_string().contains("allows 3"), "{e}");
    us[0].groups().create("ok", &ids[1..3]).await.unwrap();
    assert!(us[0].groups().add("ok", &ids[3..]).await.is_err());
    assert_eq!(us[0].group_cap().await, 3);
}

#[tokio::test]
async fn invite_codes_accept_once_reject_with_reasons_and_keep_names() {
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let alice = user(tmp.path(), "alice", &relay.url()).await;
    let bob = user(tmp.path(), "bob", &relay.url()).await;
    let carol = user(tmp.path(), "carol", &relay.url()).await;
    // alice already has a contact called "carol" (someone else)
    let other = user(tmp.path(), "other", &relay.url()).await;
    alice.add_peer("carol", &other.user_id(), None).unwrap();

    let single = alice.invites().create(None, false, None).unwrap();
    assert_eq!(single.kind, "single");
    assert!(single.expires.is_some());
    bob.invites()
        .request(&alice.user_id(), &single.code, Some("alice"))
        .await
        .unwrap();
    let recs = alice.invites().watch().await.unwrap();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["kind"], "contact_accepted");
    assert_eq!(recs[0]["name"], "bob");
    let saved = alice.contacts().get("bob").unwrap().unwrap();
    assert!(saved.verified());
    // carol redeems the spent code: consumed; then a permanent one: saved,
    // but not as "carol", which means someone else here
    carol
        .invites()
        .request(&alice.user_id(), &single.code, None)
        .await
        .unwrap();
    let recs = alice.invites().watch().await.unwrap();
    assert_eq!(recs[0]["reason"], "consumed");
    let open = alice.invites().create(None, true, None).unwrap();
    assert_eq!(open.expires, None);
    carol
        .invites()
        .request(&alice.user_id(), &open.code, None)
        .await
        .unwrap();
    let recs = alice.invites().watch().await.unwrap();
    assert_eq!(recs[0]["name"], "carol-2", "{recs:?}");
    assert_eq!(
        alice.contacts().get("carol").unwrap().unwrap().id,
        other.user_id()
    );
    // revoked (by its hint, as `invite list` shows it), and unknown
    let dave = user(tmp.path(), "dave", &relay.url()).await;
    let hint = alice
        .invites()
        .list()
        .unwrap()
        .into_iter()
        .find(|i| i.kind == "permanent")
        .unwrap()
        .code;
    assert!(alice.invites().revoke(&hint).unwrap());
    dave.invites()
        .request(&alice.user_id(), &open.code, None)
        .await
        .unwrap();
    let recs = alice.invites().watch().await.unwrap();
    assert_eq!(recs[0]["reason"], "revoked");
    let eve = user(tmp.path(), "eve", &relay.url()).await;
    eve.invites()
        .request(&alice.user_id(), "made-up", None)
        .await
        .unwrap();
    let recs = alice.invites().watch().await.unwrap();
    assert_eq!(recs[0]["reason"], "unknown-code");
    // a refused request is nacked: the redeemer's outbox drops it
    eve.flush_outbox(std::time::Duration::ZERO).await.unwrap();
    assert_eq!(eve.outbox_len().unwrap(), 0);

    // watch never takes a contact's mail
    bob.send(&alice.user_id(), "for receive").await.unwrap();
    assert!(alice.invites().watch().await.unwrap().is_empty());
    let got = alice.receive().await.unwrap();
    assert!(got.iter().any(|m| m.text == "for receive"), "{got:?}");
}

#[tokio::test]
async fn a_post_from_someone_not_on_our_roster_is_not_shown_as_the_rooms() {
    let (_relay, _tmp, [alice, bob, carol, _dave]) = four().await;
    let g = bob
        .groups()
        .create("team", &[alice.user_id()])
        .await
        .unwrap();
    bob.groups().send(&g.id, "first").await.unwrap();
    chats(&alice, 1).await;
    // bob adds carol and posts; carol posts before alice read bob's post
    bob.groups().add(&g.id, &[carol.user_id()]).await.unwrap();
    bob.groups().send(&g.id, "meet carol").await.unwrap();
    chats(&carol, 1).await;
    carol.groups().send(&g.id, "carol speaking").await.unwrap();
    let only_carol = alice
        .receive_with(&retalk::ReceiveOptions {
            from: Some(carol.user_id()),
            ..Default::default()
        })
        .await
        .unwrap();
    let m = &only_carol.messages[0];
    assert_eq!(m.text, "carol speaking");
    assert_eq!(
        m.group, None,
        "not the room's: carol is not on alice's roster"
    );
    assert!(!others(&alice, &g.id).contains(&carol.user_id()));
    // once bob's post lists her, her posts are the room's
    chats(&alice, 1).await;
    assert!(others(&alice, &g.id).contains(&carol.user_id()));
    carol.groups().send(&g.id, "now in").await.unwrap();
    let (m, _) = chats(&alice, 1).await;
    assert_eq!(
        m[0].group.as_ref().map(|g| g.id.as_str()),
        Some(g.id.as_str())
    );
}

/// A redeemer's self-chosen name does not shadow a contact of the
/// owner-wide list either (the list every identity of the person sees).
#[tokio::test]
async fn a_redeemers_name_never_shadows_an_owner_wide_contact() {
    let relay = TestRelay::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut alice = user(tmp.path(), "alice", &relay.url()).await;
    let carol = user(tmp.path(), "carol", &relay.url()).await;
    let other = user(tmp.path(), "other", &relay.url()).await;
    let global = retalk::GlobalContacts::in_home(&tmp.path().join("home"));
    global.add(Some("carol"), &other.user_id(), false).unwrap();
    alice.set_global_contacts(Some(global.clone()));
    let code = alice.invites().create(None, false, None).unwrap();
    carol
        .invites()
        .request(&alice.user_id(), &code.code, None)
        .await
        .unwrap();
    let recs = alice.invites().watch().await.unwrap();
    assert_eq!(recs[0]["kind"], "contact_accepted", "{recs:?}");
    assert_eq!(recs[0]["name"], "carol-2", "{recs:?}");
    assert_eq!(
        alice.contacts().get("carol-2").unwrap().unwrap().id,
        carol.user_id()
    );
    assert_eq!(
        global.get("carol").unwrap().unwrap().id,
        other.user_id(),
        "the owner-wide carol is untouched"
    );
}
