//! Invite codes between our CLI and Python retalk 0.3.0's CLI (issue 10),
//! both directions, through our relay: a request redeeming a live code is
//! accepted (the redeemer saved with verified keys), and each rejection
//! reason (`unknown-code`, `revoked`, `expired`, `consumed`,
//! `card-mismatch`) comes out of the inviter's `invite watch` as 0.3.0's
//! `contact_request_rejected` record. Ours also: a redeemer's self-chosen
//! name never takes an existing contact's name, and `invite watch` leaves
//! saved contacts' mail for `receive`.

use retalk_testkit::pyref as harness;

use std::process::Command;

use harness::{tempdir, RustRelay, Ver};
use serde_json::{json, Value};

use crate::groups03::{Cli, Kind};

/// One `invite watch` (no --follow): its records.
fn watch(cli: &Cli, user: &str) -> Vec<Value> {
    cli.lines(user, &["invite", "watch"])
}

fn code_of(cli: &Cli, user: &str, extra: &[&str]) -> String {
    let mut args = vec!["invite", "new"];
    args.extend_from_slice(extra);
    let rec = cli.lines(user, &args);
    assert_eq!(
        rec[0].as_object().unwrap().keys().len(),
        4,
        "{{code, kind, expires, peer}}: {rec:?}"
    );
    rec[0]["code"].as_str().unwrap().to_owned()
}

fn rejected(recs: &[Value], from: &str) -> String {
    let r = recs
        .iter()
        .find(|r| r["from"] == json!(from) && r["kind"] == json!("contact_request_rejected"))
        .unwrap_or_else(|| panic!("no rejection from {from} in {recs:?}"));
    r["reason"].as_str().unwrap().to_owned()
}

/// A contact request with a card that is not the sender's (someone else's
/// keys), sent by 0.3.0's own library from a fresh Python identity.
fn forged_request(root: &std::path::Path, url: &str, to: &str, code: &str, victim_card: &Value) {
    let py = harness::pyref();
    let script = r#"
import json, sys, uuid
from retalk.user import User
url, store, to, code, card = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
u = User(url, "forger-secret", name="forger", store=store)
u.sync()
u._send_envelope(to, {"id": uuid.uuid4().hex, "kind": "contact_request", "code": code, "card": card}, record_outbox=True)
print(u.fingerprint())
"#;
    let out = Command::new(py.python(Ver::V030))
        .arg("-c")
        .arg(script)
        .arg(url)
        .arg(root.join("forger.db"))
        .arg(to)
        .arg(code)
        .arg(victim_card.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "forger: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Ours invites, 0.3.0 redeems: accepted, then every rejection reason.
fn python_030_redeems_our_codes() {
    let tmp = tempdir("invites03-ours-invite");
    let relay = RustRelay::start(&tmp.path().join("relay.db"));
    let ours = Cli::new(Kind::Ours, tmp.path(), &relay.url);
    let py = Cli::new(Kind::Python, tmp.path(), &relay.url);
    let alice = ours.init("alice");
    let code = code_of(&ours, "alice", &[]);
    // the paste-able invite names the code
    let msg = ours.ok("alice", &["id", "--invite-message", "--code", &code]);
    assert!(
        msg.contains(&format!("retalk request {alice} --code {code}")),
        "{msg}"
    );

    // accepted: bob is saved under his own name, keys verified
    let bob = py.init("bob");
    let r = py.lines(
        "bob",
        &["request", &alice, "--code", &code, "--peer", "alice"],
    );
    assert_eq!(r[0]["to"], json!(alice));
    let recs = watch(&ours, "alice");
    let acc = recs
        .iter()
        .find(|r| r["kind"] == json!("contact_accepted"))
        .unwrap_or_else(|| panic!("{recs:?}"));
    assert_eq!(
        (
            &acc["from"],
            &acc["code"],
            &acc["name"],
            &acc["card"]["verified"]
        ),
        (&json!(bob), &json!(code), &json!("bob"), &json!(true))
    );
    let contacts = ours.lines("alice", &["contacts", "--json"]);
    assert!(contacts.iter().any(|c| c["name"] == json!("bob")
        && c["fingerprint"] == json!(bob)
        && c["verified"] == json!(true)));
    // and the two can talk at once
    ours.ok("alice", &["send", "--peer", "bob", "welcome"]);
    let got = py.receive("bob");
    assert_eq!(got[0]["text"], json!("welcome"));

    // consumed: the single-use code again, by someone else
    let carol = py.init("carol");
    py.ok("carol", &["request", &alice, "--code", &code]);
    // unknown-code
    let dave = py.init("dave");
    py.ok(
        "dave",
        &["request", &alice, "--code", "not-a-code-of-alice"],
    );
    // revoked
    let revoked = code_of(&ours, "alice", &[]);
    ours.ok("alice", &["invite", "revoke", &revoked]);
    let eve = py.init("eve");
    py.ok("eve", &["request", &alice, "--code", &revoked]);
    // expired (0.000001 days: 86 ms)
    let short = code_of(&ours, "alice", &["--expires", "0.000001"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let frank = py.init("frank");
    py.ok("frank", &["request", &alice, "--code", &short]);
    let recs = watch(&ours, "alice");
    assert_eq!(rejected(&recs, &carol), "consumed");
    assert_eq!(rejected(&recs, &dave), "unknown-code");
    assert_eq!(rejected(&recs, &eve), "revoked");
    assert_eq!(rejected(&recs, &frank), "expired");
    for r in &recs {
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{{kind, from, reason}}: {r}");
    }

    // card-mismatch: a live permanent code, but a card that is bob's
    let open = code_of(&ours, "alice", &["--permanent", "--peer", "friend"]);
    let bob_card: Value = serde_json::from_str(py.ok("bob", &["id", "--json"]).trim()).unwrap();
    forged_request(tmp.path(), &relay.url, &alice, &open, &bob_card);
    let recs = watch(&ours, "alice");
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["reason"], json!("card-mismatch"));

    // a redeemer calling themselves "bob" does not take the name "bob"
    let open2 = code_of(&ours, "alice", &["--permanent"]);
    let bob2 = py.ok(
        "bob2",
        &["init", "--relay", &relay.url, "--display-name", "bob"],
    );
    let bob2 = bob2.trim().to_owned();
    py.ok("bob2", &["sync"]);
    py.ok("bob2", &["request", &alice, "--code", &open2]);
    let recs = watch(&ours, "alice");
    assert_eq!(recs[0]["kind"], json!("contact_accepted"), "{recs:?}");
    assert_eq!(recs[0]["name"], json!("bob-2"));
    let contacts = ours.lines("alice", &["contacts", "--json"]);
    let named = |n: &str| {
        contacts
            .iter()
            .find(|c| c["name"] == json!(n))
            .map(|c| c["fingerprint"].clone())
    };
    assert_eq!(named("bob"), Some(json!(bob)));
    assert_eq!(named("bob-2"), Some(json!(bob2)));

    // watch leaves a saved contact's mail for receive
    py.ok(
        "bob",
        &["send", "--peer", "alice", "for receive, not for watch"],
    );
    assert!(watch(&ours, "alice").is_empty());
    let got = ours.receive("alice");
    assert_eq!(
        (&got[0]["from"], &got[0]["text"]),
        (&json!(bob), &json!("for receive, not for watch"))
    );

    // listing shows hints, not codes
    let list = ours.lines("alice", &["invite", "list", "--json"]);
    assert_eq!(list.len(), 5);
    for i in &list {
        let shown = i["code"].as_str().unwrap();
        assert!(shown.ends_with('…') && shown.chars().count() == 7, "{i}");
    }
    let db = std::fs::read(ours.home.join("alice/retalk.db")).unwrap_or_default();
    for c in [&code, &revoked, &short, &open, &open2] {
        assert!(
            !db.windows(c.len()).any(|w| w == c.as_bytes()),
            "the code is not stored"
        );
    }
}

/// 0.3.0 invites, ours redeem: accepted, then each reason our CLI can
/// cause (it always sends its true card, so no card-mismatch).
fn we_redeem_python_030_codes() {
    let tmp = tempdir("invites03-py-invite");
    let relay = RustRelay::start(&tmp.path().join("relay.db"));
    let ours = Cli::new(Kind::Ours, tmp.path(), &relay.url);
    let py = Cli::new(Kind::Python, tmp.path(), &relay.url);
    let bob = py.init("bob");
    let code = code_of(&py, "bob", &[]);
    let alice = ours.init("alice");
    let r = ours.lines(
        "alice",
        &["request", &bob, "--code", &code, "--peer", "bob"],
    );
    assert_eq!(r[0]["to"], json!(bob));
    let c = ours.lines("alice", &["contacts", "--json"]);
    assert_eq!(
        (&c[0]["name"], &c[0]["fingerprint"], &c[0]["verified"]),
        (&json!("bob"), &json!(bob), &json!(true))
    );
    let recs = watch(&py, "bob");
    let acc = recs
        .iter()
        .find(|r| r["kind"] == json!("contact_accepted"))
        .unwrap_or_else(|| panic!("{recs:?}"));
    assert_eq!(
        (&acc["from"], &acc["name"]),
        (&json!(alice), &json!("alice"))
    );
    py.ok("bob", &["send", "--peer", "alice", "hello new contact"]);
    let got = ours.receive("alice");
    assert_eq!(got[0]["text"], json!("hello new contact"));

    let carol = ours.init("carol");
    ours.ok("carol", &["request", &bob, "--code", &code]);
    let dave = ours.init("dave");
    ours.ok("dave", &["request", &bob, "--code", "bogus-code"]);
    let revoked = code_of(&py, "bob", &[]);
    py.ok("bob", &["invite", "revoke", &revoked]);
    let eve = ours.init("eve");
    ours.ok("eve", &["request", &bob, "--code", &revoked]);
    let short = code_of(&py, "bob", &["--expires", "0.000001"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let frank = ours.init("frank");
    ours.ok("frank", &["request", &bob, "--code", &short]);
    let recs = watch(&py, "bob");
    assert_eq!(rejected(&recs, &carol), "consumed");
    assert_eq!(rejected(&recs, &dave), "unknown-code");
    assert_eq!(rejected(&recs, &eve), "revoked");
    assert_eq!(rejected(&recs, &frank), "expired");
}

crate::cases! {
    python: [python_030_redeems_our_codes, we_redeem_python_030_codes],
    plain: [],
}
