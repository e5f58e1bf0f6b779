//! Groups between our CLI and Python retalk 0.3.0's CLI (issue 10), through
//! our relay: rooms created on either side are adopted by the other, posts
//! fan out tagged with the room, a leave drops the leaver everywhere, a
//! removed member cannot post themselves back into our roster, and a room
//! from a stranger is held as an invitation until accepted.
//!
//! retalk 0.3.0 ships no tests of its own (neither its sdist nor its wheel
//! has them), so these drive its real CLI, from its venv, beside ours.

use retalk_testkit::pyref as harness;

use std::path::{Path, PathBuf};
use std::process::Output;

use harness::{rust_cli, tempdir, RustRelay, Ver};
use serde_json::{json, Value};

/// Which CLI a [`Cli`] drives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Python,
    Ours,
}

/// One CLI with its own home (any number of `-u` identities) on a relay.
pub(crate) struct Cli {
    pub kind: Kind,
    pub home: PathBuf,
    pw: PathBuf,
    pub url: String,
}

impl Cli {
    pub fn new(kind: Kind, root: &Path, url: &str) -> Cli {
        let home = root.join(match kind {
            Kind::Python => "py",
            Kind::Ours => "rs",
        });
        std::fs::create_dir_all(&home).unwrap();
        let pw = home.join("pw");
        std::fs::write(&pw, "group-pass\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Cli {
            kind,
            home,
            pw,
            url: url.to_owned(),
        }
    }

    /// The other CLI on the same home (and passphrase file).
    pub fn other_on_same_home(&self) -> Cli {
        Cli {
            kind: match self.kind {
                Kind::Python => Kind::Ours,
                Kind::Ours => Kind::Python,
            },
            home: self.home.clone(),
            pw: self.pw.clone(),
            url: self.url.clone(),
        }
    }

    /// `retalk ARGS -u USER --passphrase-path PW`.
    pub fn run(&self, user: &str, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-u", user, "--passphrase-path", self.pw.to_str().unwrap()]);
        match self.kind {
            Kind::Python => harness::pyref().cli(Ver::V030, &self.home, &all, &[]),
            Kind::Ours => rust_cli(&self.home, &all, &[]),
        }
    }

    /// [`run`](Self::run), which must succeed; its stdout.
    #[track_caller]
    pub fn ok(&self, user: &str, args: &[&str]) -> String {
        let o = self.run(user, args);
        assert!(
            o.status.success(),
            "{:?} {user} {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            self.kind,
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// stdout as JSON lines.
    #[track_caller]
    pub fn lines(&self, user: &str, args: &[&str]) -> Vec<Value> {
        json_lines(&self.ok(user, args))
    }

    /// A new identity, registered; its id.
    pub fn init(&self, user: &str) -> String {
        let id = self.ok(
            user,
            &["init", "--relay", &self.url, "--display-name", user],
        );
        self.ok(user, &["sync"]);
        id.trim().to_owned()
    }

    /// Saves `id` as `name` with keys verified from the relay.
    pub fn add(&self, user: &str, name: &str, id: &str) {
        self.ok(user, &["add", id, "--peer", name, "--verify"]);
    }

    /// Everything waiting, as JSON lines (`receive --all`).
    pub fn receive(&self, user: &str) -> Vec<Value> {
        self.lines(user, &["receive", "--all"])
    }
}

pub(crate) fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The chat lines (those with a `text`).
fn chats(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l.get("text").is_some()).collect()
}

/// The `members` of room `gid` in `group list --json` (0.3.0 may list the
/// viewer too: left out, so both sides compare as "the others").
fn roster(cli: &Cli, user: &str, me: &str, gid: &str) -> Vec<String> {
    let groups = cli.lines(user, &["group", "list", "--json"]);
    let g = groups
        .iter()
        .find(|g| g["group_id"] == json!(gid))
        .unwrap_or_else(|| panic!("{:?} {user}: no room {gid} in {groups:?}", cli.kind));
    let mut m: Vec<String> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .filter(|x| x != me)
        .collect();
    m.sort();
    m
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Rooms both ways between our CLI (alice, carol) and 0.3.0's (bob, dave,
/// and eve, a stranger to alice).
fn rooms_between_ours_and_python_030() {
    let tmp = tempdir("groups03-rooms");
    let relay = RustRelay::start(&tmp.path().join("relay.db"));
    let ours = Cli::new(Kind::Ours, tmp.path(), &relay.url);
    let py = Cli::new(Kind::Python, tmp.path(), &relay.url);
    let alice = ours.init("alice");
    let carol = ours.init("carol");
    let bob = py.init("bob");
    let dave = py.init("dave");
    let eve = py.init("eve");
    for (name, id) in [("bob", &bob), ("carol", &carol), ("dave", &dave)] {
        ours.add("alice", name, id);
    }
    for (name, id) in [("alice", &alice), ("bob", &bob), ("dave", &dave)] {
        ours.add("carol", name, id);
    }
    for (name, id) in [("alice", &alice), ("carol", &carol), ("dave", &dave)] {
        py.add("bob", name, id);
    }
    for (name, id) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
        py.add("dave", name, id);
    }
    py.add("eve", "alice", &alice);

    // 1. a room made on our side, adopted by 0.3.0 and by ours
    let made = ours.lines(
        "alice",
        &["group", "create", "team", "--members", "bob,carol,dave"],
    );
    let gid = made[0]["group_id"].as_str().unwrap().to_owned();
    assert_eq!(made[0]["members"], json!(sorted(&[&bob, &carol, &dave])));
    let r = ours.lines("alice", &["send", "--group", "team", "hello team"]);
    assert_eq!(
        (
            &r[0]["group"],
            &r[0]["group_id"],
            &r[0]["sent"],
            &r[0]["failed"]
        ),
        (&json!("team"), &json!(gid), &json!(3), &json!(0)),
        "{r:?}"
    );
    let keys: Vec<&String> = r[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        5,
        "{{id, group, group_id, sent, failed}}: {r:?}"
    );
    for (cli, user) in [(&py, "bob"), (&py, "dave"), (&ours, "carol")] {
        let got = cli.receive(user);
        let c = chats(&got);
        assert_eq!(c.len(), 1, "{:?} {user}: {got:?}", cli.kind);
        assert_eq!(
            (
                &c[0]["from"],
                &c[0]["text"],
                &c[0]["group"],
                &c[0]["group_id"]
            ),
            (
                &json!(alice),
                &json!("hello team"),
                &json!("team"),
                &json!(gid)
            ),
            "{:?} {user}",
            cli.kind
        );
    }
    for (cli, user, me) in [
        (&py, "bob", &bob),
        (&py, "dave", &dave),
        (&ours, "carol", &carol),
    ] {
        let mut want = sorted(&[&alice, &bob, &carol, &dave]);
        want.retain(|x| x != me);
        assert_eq!(roster(cli, user, me, &gid), want, "{:?} {user}", cli.kind);
    }

    // 2. 0.3.0 posts to our room: ours get it tagged
    let r = py.lines("bob", &["send", "--group", "team", "python says hi"]);
    assert_eq!(r[0]["sent"], json!(3), "{r:?}");
    for user in ["alice", "carol"] {
        let got = ours.receive(user);
        let c = chats(&got);
        assert_eq!(c.len(), 1, "{user}: {got:?}");
        assert_eq!(
            (&c[0]["from"], &c[0]["text"], &c[0]["group_id"]),
            (&json!(bob), &json!("python says hi"), &json!(gid))
        );
    }
    py.receive("dave");

    // 3. a room made on 0.3.0's side, adopted by ours
    let made = py.lines(
        "bob",
        &["group", "create", "pyroom", "--members", "alice,carol"],
    );
    let pygid = made[0]["group_id"].as_str().unwrap().to_owned();
    py.ok("bob", &["send", "--group", "pyroom", "welcome to pyroom"]);
    for user in ["alice", "carol"] {
        let got = ours.receive(user);
        let c = chats(&got);
        assert_eq!(
            (&c[0]["group"], &c[0]["group_id"], &c[0]["text"]),
            (&json!("pyroom"), &json!(pygid), &json!("welcome to pyroom")),
            "{user}: {got:?}"
        );
        // adopted from a contact silently, as 0.3.0: only the post prints
        assert_eq!(got.len(), 1, "{user}: {got:?}");
    }
    assert_eq!(
        roster(&ours, "alice", &alice, &pygid),
        sorted(&[&bob, &carol])
    );
    // and ours answer in it: 0.3.0 gets it tagged
    ours.ok("carol", &["send", "--group", "pyroom", "carol in pyroom"]);
    let got = py.receive("bob");
    let c = chats(&got);
    assert_eq!(
        (&c[0]["from"], &c[0]["group_id"], &c[0]["text"]),
        (&json!(carol), &json!(pygid), &json!("carol in pyroom"))
    );
    ours.receive("alice");

    // 4. alice removes dave; her next post carries the roster without him
    ours.ok("alice", &["group", "remove", "team", "dave"]);
    let r = ours.lines("alice", &["send", "--group", "team", "dave is out"]);
    assert_eq!(r[0]["sent"], json!(2));
    py.receive("bob");
    // a removal alone prints nothing; carol's roster drops dave
    let got = ours.receive("carol");
    assert_eq!(chats(&got).len(), 1, "{got:?}");
    assert_eq!(
        roster(&ours, "carol", &carol, &gid),
        sorted(&[&alice, &bob])
    );
    assert_eq!(roster(&py, "bob", &bob, &gid), sorted(&[&alice, &carol]));
    // dave (0.3.0, who never heard) posts with himself on his roster: our
    // rosters do not take him back, and his text is refused
    py.ok("dave", &["send", "--group", "team", "i am back"]);
    for (user, me) in [("alice", &alice), ("carol", &carol)] {
        let got = ours.receive(user);
        assert!(
            chats(&got).is_empty(),
            "{user} refused dave's post: {got:?}"
        );
        let mut want = sorted(&[&alice, &bob, &carol]);
        want.retain(|x| x != me);
        assert_eq!(roster(&ours, user, me, &gid), want, "{user}");
    }

    // 5. bob (0.3.0) leaves: ours drop him and print 0.3.0's leave record
    py.ok("bob", &["group", "leave", "team"]);
    for (user, me) in [("alice", &alice), ("carol", &carol)] {
        let got = ours.receive(user);
        let leave = got
            .iter()
            .find(|l| l["kind"] == json!("group_leave"))
            .unwrap_or_else(|| panic!("{user}: no leave record in {got:?}"));
        assert_eq!(
            (&leave["from"], &leave["group_id"]),
            (&json!(bob), &json!(gid))
        );
        let keys: Vec<&String> = leave.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "{{id, from, name, kind, group_id}}: {leave}");
        let mut want = sorted(&[&alice, &carol]);
        want.retain(|x| x != me);
        assert_eq!(roster(&ours, user, me, &gid), want, "{user}");
    }
    let r = ours.lines("alice", &["send", "--group", "team", "after bob left"]);
    assert_eq!(r[0]["sent"], json!(1), "only carol is left: {r:?}");
    ours.receive("carol");

    // 6. ours leave a 0.3.0 room: 0.3.0 drops the leaver
    ours.ok("carol", &["group", "leave", "pyroom"]);
    let got = py.receive("bob");
    assert!(
        got.iter()
            .any(|l| l["kind"] == json!("group_leave") && l["from"] == json!(carol)),
        "{got:?}"
    );
    assert_eq!(roster(&py, "bob", &bob, &pygid), vec![alice.clone()]);
    // and a copy still sent to the room carol left is refused by her client
    ours.ok("carol", &["group", "list"]);
    let left = ours.lines("carol", &["group", "list", "--json"]);
    assert!(left.iter().all(|g| g["group_id"] != json!(pygid)));

    // 7. a stranger's room is held as an invitation until accepted
    py.ok("eve", &["group", "create", "evil", "--members", "alice"]);
    py.ok("eve", &["send", "--group", "evil", "join my room"]);
    let got = ours.receive("alice");
    let inv = got
        .iter()
        .find(|l| l["kind"] == json!("group_invitation"))
        .unwrap_or_else(|| panic!("no invitation in {got:?}"));
    assert_eq!((&inv["from"], &inv["group"]), (&json!(eve), &json!("evil")));
    let listed = ours.lines("alice", &["group", "list", "--json"]);
    let evil = listed.iter().find(|g| g["name"] == json!("evil")).unwrap();
    assert_eq!(evil["invitation"], json!(true));
    let o = ours.run("alice", &["send", "--group", "evil", "no"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("invitation"), "{}", stderr(&o));
    ours.ok("alice", &["group", "join", "evil"]);
    let r = ours.lines("alice", &["send", "--group", "evil", "ok, joined"]);
    assert_eq!(r[0]["sent"], json!(1));
    let got = py.receive("eve");
    assert_eq!(chats(&got)[0]["text"], json!("ok, joined"));
}

/// A partial group send: one member never registered (no copy can be
/// made for them) and one member's mailbox is full at the relay (their
/// copy is encrypted but refused for now): exit 2, both named on stderr,
/// the others reached; the kept copy goes out with `sync` once there is
/// room, and arrives tagged.
fn partial_group_send_exits_2_and_keeps_copies() {
    let tmp = tempdir("groups03-partial");
    let relay = RustRelay::start_with(retalk_server::Config {
        port: 0,
        db: tmp.path().join("relay.db"),
        max_mailbox_per_sender: 2,
        ..Default::default()
    });
    let ours = Cli::new(Kind::Ours, tmp.path(), &relay.url);
    let py = Cli::new(Kind::Python, tmp.path(), &relay.url);
    ours.init("alice");
    let bob = py.init("bob");
    let full = ours.init("full");
    let ghost = ours
        .ok("ghost", &["init", "--relay", &relay.url, "--no-register"])
        .trim()
        .to_owned();
    ours.add("alice", "bob", &bob);
    ours.add("alice", "full", &full);
    ours.ok("alice", &["add", &ghost, "--peer", "ghost"]);
    for n in 1..=2 {
        ours.ok("alice", &["send", "--peer", "full", &format!("filler {n}")]);
    }
    ours.ok(
        "alice",
        &["group", "create", "t", "--members", "bob,full,ghost"],
    );
    let o = ours.run("alice", &["send", "--group", "t", "partial"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    for who in [&ghost, &full] {
        assert!(stderr(&o).contains(who.as_str()), "{who}: {}", stderr(&o));
    }
    let r = json_lines(&String::from_utf8_lossy(&o.stdout));
    assert_eq!((&r[0]["sent"], &r[0]["failed"]), (&json!(1), &json!(2)));
    let got = py.receive("bob");
    assert_eq!(chats(&got)[0]["text"], json!("partial"));
    // full reads its mailbox (room again); once alice has full's
    // acknowledgements, her sync re-sends the kept copy
    let got = ours.receive("full");
    assert_eq!(chats(&got).len(), 2, "{got:?}");
    ours.receive("alice");
    let s = ours.lines("alice", &["sync"]);
    assert_eq!(s[0]["resent"], json!(1), "{s:?}");
    let got = ours.receive("full");
    let c = chats(&got);
    assert_eq!(
        (&c[0]["text"], &c[0]["group"]),
        (&json!("partial"), &json!("t")),
        "{got:?}"
    );
}

/// A 0.3.0 identity taken over by our CLI keeps its rooms (rosters
/// without itself), the rooms it left (still refused), its invite codes
/// (now stored hashed, still redeemable) and its saved room messages.
fn a_030_identity_keeps_its_rooms_and_codes_when_taken_over() {
    let tmp = tempdir("groups03-takeover");
    let relay = RustRelay::start(&tmp.path().join("relay.db"));
    let py = Cli::new(Kind::Python, tmp.path(), &relay.url);
    let alice = py.init("alice");
    let bob = py.init("bob");
    py.add("alice", "bob", &bob);
    py.add("bob", "alice", &alice);
    let made = py.lines("bob", &["group", "create", "team", "--members", "alice"]);
    let gid = made[0]["group_id"].as_str().unwrap().to_owned();
    py.ok("bob", &["send", "--group", "team", "kept in history"]);
    py.ok("alice", &["receive", "--all", "--save"]);
    py.ok("alice", &["group", "create", "solo", "--members", "bob"]);
    py.ok("alice", &["group", "leave", "solo"]);
    py.receive("bob");
    let code = py.lines("alice", &["invite", "new", "--permanent"])[0]["code"]
        .as_str()
        .unwrap()
        .to_owned();

    let ours = py.other_on_same_home();
    let rooms = ours.lines("alice", &["group", "list", "--json"]);
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    assert_eq!(
        (
            &rooms[0]["group_id"],
            &rooms[0]["name"],
            &rooms[0]["members"]
        ),
        (&json!(gid), &json!("team"), &json!([bob]))
    );
    let h = ours.lines("alice", &["history", "--group", "team"]);
    assert_eq!(
        (&h[0]["text"], &h[0]["group_id"]),
        (&json!("kept in history"), &json!(gid))
    );
    let db = std::fs::read(ours.home.join(".retalk/alice/retalk.db")).unwrap();
    assert!(!db.windows(code.len()).any(|w| w == code.as_bytes()));
    // the code still works
    let carol = py.init("carol");
    py.ok("carol", &["request", &alice, "--code", &code]);
    let recs = ours.lines("alice", &["invite", "watch"]);
    assert_eq!(
        (&recs[0]["kind"], &recs[0]["from"]),
        (&json!("contact_accepted"), &json!(carol))
    );
    // the room goes on with bob on 0.3.0
    ours.ok("alice", &["send", "--group", "team", "from the new client"]);
    let got = py.receive("bob");
    assert_eq!(
        (&got[0]["text"], &got[0]["group_id"]),
        (&json!("from the new client"), &json!(gid))
    );
    // the room left is still left: its mail is refused until `join`
    let o = ours.run("alice", &["group", "join", "solo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("rejoined"), "{}", stderr(&o));
}

crate::cases! {
    python: [
        rooms_between_ours_and_python_030,
        partial_group_send_exits_2_and_keeps_copies,
        a_030_identity_keeps_its_rooms_and_codes_when_taken_over,
    ],
    plain: [],
}
