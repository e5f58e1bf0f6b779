//! Introductions (`share`) and the contact inbox (`import --inbox`)
//! between our CLI and Python retalk 0.3.0's, both directions, through our
//! relay: the card arrives as 0.3.0's `{"kind": "contact"}` record, is
//! staged, listed and imported (verified when the sharer had verified it).

use retalk_testkit::pyref as harness;

use std::path::Path;
use std::process::Output;

use harness::{rust_cli, tempdir, RustRelay, Ver};
use serde_json::Value;

#[track_caller]
fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn pw(home: &Path) -> String {
    std::fs::create_dir_all(home).unwrap();
    let p = home.join("pw");
    std::fs::write(&p, "agent-pass\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p.to_str().unwrap().to_owned()
}

fn cards_between_ours_and_python_030() {
    let py = harness::pyref();
    let tmp = tempdir("share03");
    let relay = RustRelay::start(&tmp.path().join("server.db"));
    let url = relay.url.as_str();
    let (ph, rh) = (tmp.path().join("py"), tmp.path().join("rs"));
    let (ppw, rpw) = (pw(&ph), pw(&rh));
    let p = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--passphrase-path", &ppw]);
        py.cli(Ver::V030, &ph, &all, &[])
    };
    let r = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--passphrase-path", &rpw]);
        rust_cli(&rh, &all, &[])
    };
    let init = |u: &str| ["init", "-u", u, "--relay", url, "--display-name", u].map(str::to_owned);
    let alice = ok(
        p(&init("alice").each_ref().map(String::as_str)),
        "py init alice",
    );
    let carol = ok(
        p(&init("carol").each_ref().map(String::as_str)),
        "py init carol",
    );
    let bob = ok(
        r(&init("bob").each_ref().map(String::as_str)),
        "our init bob",
    );
    let (alice, carol, bob) = (alice.trim(), carol.trim(), bob.trim());

    // Python alice introduces carol (verified) to our bob
    ok(
        p(&["add", bob, "--peer", "bob", "-u", "alice"]),
        "py add bob",
    );
    ok(
        p(&["add", carol, "--peer", "carol", "--verify", "-u", "alice"]),
        "py add carol",
    );
    let receipt = lines(&ok(
        p(&["share", "--peer", "bob", "carol", "-u", "alice"]),
        "py share",
    ));
    assert_eq!(receipt[0]["shared"], carol, "{receipt:?}");
    let got = lines(&ok(r(&["receive", "--all", "-u", "bob"]), "our receive"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["kind"], "contact");
    assert_eq!(got[0]["id"], receipt[0]["id"]);
    assert_eq!(got[0]["from"], alice);
    assert_eq!(got[0]["card"]["fingerprint"], carol);
    let staged = lines(&ok(
        r(&["import", "--inbox", "--list", "--json", "-u", "bob"]),
        "our inbox list",
    ));
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert_eq!(staged[0]["name"], "carol");
    assert_eq!(staged[0]["verified"], true);
    ok(r(&["import", "--inbox", "-u", "bob"]), "our import --inbox");
    let contacts = lines(&ok(r(&["contacts", "--json", "-u", "bob"]), "our contacts"));
    let c = contacts
        .iter()
        .find(|c| c["fingerprint"] == carol)
        .unwrap_or_else(|| panic!("carol in {contacts:?}"));
    assert_eq!(
        (c["name"].as_str(), c["verified"].as_bool()),
        (Some("carol"), Some(true))
    );
    assert!(
        lines(&ok(
            r(&["import", "--inbox", "--list", "--json", "-u", "bob"]),
            "again"
        ))
        .is_empty(),
        "the import moved the card out of the inbox"
    );

    // our bob introduces carol to Python alice, under another name
    ok(
        r(&["add", alice, "--peer", "alice", "-u", "bob"]),
        "our add alice",
    );
    let receipt = lines(&ok(
        r(&[
            "share", "--peer", "alice", "carol", "--as", "caz", "-u", "bob",
        ]),
        "our share",
    ));
    assert_eq!(
        receipt[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "shared", "to"]
    );
    assert_eq!(receipt[0]["to"], alice);
    let got = lines(&ok(p(&["receive", "--all", "-u", "alice"]), "py receive"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["kind"], "contact");
    assert_eq!(got[0]["card"]["fingerprint"], carol);
    assert_eq!(got[0]["card"]["name"], "caz");
    let staged = lines(&ok(
        p(&["import", "--inbox", "--list", "--json", "-u", "alice"]),
        "py inbox list",
    ));
    assert_eq!(staged[0]["name"], "caz", "{staged:?}");
    assert_eq!(staged[0]["verified"], true, "bob had verified carol's keys");
}

crate::cases! {
    python: [cards_between_ours_and_python_030],
    plain: [],
}
