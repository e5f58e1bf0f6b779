//! `retalk show`: the terminal view and the web view's API and security,
//! against a real relay, real stores and real crypto (messages saved by
//! `send --save` / `receive --save` in other processes).

mod showkit;

use showkit::*;
use std::process::Stdio;

const HOSTILE: &str = "\x1b]0;owned\x07\x1b[2J\u{202e}gnp.exe\r<b>bold</b>";

#[test]
fn terminal_view_renders_saved_history_safely_and_follows_other_processes() {
    let p = pair();
    p.talk("alice", "bob", "hello bob");
    p.talk("bob", "alice", "hi alice\nhow are you?");
    p.talk("bob", "alice", HOSTILE);

    // Piped: plain lines, no colour, day line, times, continuation indented.
    // The relay is unreachable: show never needs it.
    let unreachable = [("SERVER_URL", "http://127.0.0.1:9")];
    let out = p.run(&["show", "alice", "bob"], &unreachable).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("# 💬 alice ⇄ bob ({})", p.bob), "{out}");
    assert!(
        lines[1].starts_with("-- 📅 ") && lines[1].ends_with(" --"),
        "{out}"
    );
    let body: Vec<String> = lines[2..]
        .iter()
        .map(|l| match l.strip_prefix('[') {
            Some(r) => r.split_once("] ").unwrap().1.to_string(),
            None => l.to_string(),
        })
        .collect();
    assert_eq!(
        body,
        [
            "alice 🟢: hello bob",
            "🔵 bob: hi alice",
            "  how are you?",
            "🔵 bob: \\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{202e}gnp.exe\\r<b>bold</b>",
        ],
        "{out}"
    );
    assert!(!out.contains('\x1b') && !out.contains('\u{202e}') && !out.contains('\r'));

    // The same from bob's side, the identity chosen with -u: PEER alone.
    let out = p.run(&["show", "alice", "-u", "bob"], &[]).ok();
    assert!(out.contains("] 🔵 alice: hello bob"), "{out}");
    assert!(out.contains("] bob 🟢: hi alice"), "{out}");
    assert!(
        out.contains(&format!("# 💬 bob ⇄ alice ({})", p.alice)),
        "{out}"
    );

    // CLICOLOR_FORCE: the chat layout in colour, wrapped to COLUMNS;
    // NO_COLOR wins over it for colour.
    let long = "lorem ipsum ".repeat(12);
    p.talk("alice", "bob", &long);
    let forced = [("CLICOLOR_FORCE", "1"), ("COLUMNS", "60")];
    let out = p.run(&["show", "alice", "bob"], &forced).ok();
    assert!(out.contains("\x1b["), "coloured: {out:?}");
    assert!(out.contains("──"), "chat layout: {out}");
    assert_eq!(
        out.matches('\x1b').count(),
        out.matches("\x1b[").count(),
        "only our own SGR escapes, none from the peer"
    );
    let no_colour = p
        .run(
            &["show", "alice", "bob"],
            &[
                ("CLICOLOR_FORCE", "1"),
                ("COLUMNS", "60"),
                ("NO_COLOR", "1"),
            ],
        )
        .ok();
    assert!(!no_colour.contains('\x1b'), "NO_COLOR: {no_colour:?}");
    assert!(no_colour.contains("──"), "{no_colour}");
    let lorem: Vec<&str> = no_colour.lines().filter(|l| l.contains("lorem")).collect();
    assert!(lorem.len() >= 3, "wrapped: {no_colour}");
    assert!(
        no_colour.lines().all(|l| l.chars().count() <= 60),
        "{no_colour}"
    );
    let mine = lorem[0];
    assert!(mine.starts_with("     "), "mine on the right: {mine:?}");
    let theirs = no_colour
        .lines()
        .find(|l| l.contains("how are you?"))
        .unwrap();
    assert!(
        theirs.starts_with("  how"),
        "theirs on the left: {theirs:?}"
    );

    // --follow: a message saved by another process appears.
    let mut c = p.cmd(&["show", "alice", "bob", "--follow"]);
    c.env("SERVER_URL", "http://127.0.0.1:9")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdout = LineReader::new(child.stdout.take().unwrap());
    let mut stderr = LineReader::new(child.stderr.take().unwrap());
    let mut child = KillOnDrop(child);
    stderr.wait_for("listening", SLOW);
    stdout.wait_for("lorem", SLOW);
    p.send_saved("alice", "bob", "saved while following");
    stdout.wait_for("alice 🟢: saved while following", SLOW);
    p.talk("bob", "alice", "and a reply");
    stdout.wait_for("🔵 bob: and a reply", SLOW);
    signal(&child.0, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child.0, SLOW), 0, "SIGTERM ends it cleanly");
}

#[test]
fn terminal_view_refusals_are_clear() {
    let p = pair();
    let r = p.run(&["show", "alice", "--group", "team"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no group 'team'"), "{}", r.stderr);
    let r = p.run(&["show", "alice"], &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("show needs a conversation") && r.stderr.contains("--dir DIR"),
        "{}",
        r.stderr
    );
    let r = p.run(&["show", "alice", "bob", "--web"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("give no PEER"), "{}", r.stderr);
    let r = p.run(&["show", "alice", "nobody"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = p.run(&["show", "alice", "bob", "-u", "bob"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("give just the PEER"), "{}", r.stderr);
    // Nothing saved yet: an empty chat whose view says so, exit 0.
    let r = p.run(&["show", "alice", "bob"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("(no saved messages"), "{}", r.stdout);
}

#[test]
fn web_api_matches_0_3_and_pushes_new_messages() {
    let p = pair();
    p.talk("alice", "bob", "hello bob");
    p.talk("bob", "alice", "<img src=x onerror=alert(1)>");
    let web = Web::start(&p, "alice");

    // 0.3.0's shapes.
    let c = web.json("/api/conversations");
    assert_eq!(c["me"], "alice");
    let convs = c["conversations"].as_array().unwrap();
    assert_eq!(convs.len(), 1, "{c}");
    assert_eq!(convs[0]["fingerprint"], p.bob.as_str());
    assert_eq!(convs[0]["name"], "bob");
    assert_eq!(convs[0]["count"], 2);
    assert!(convs[0]["last_ts"].as_f64().unwrap() > 1.6e9);
    assert_eq!(convs[0]["last_text"], "<img src=x onerror=alert(1)>");
    let m = web.json(&format!("/api/messages?peer={}&after=0", p.bob));
    let msgs = m["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    for k in ["rowid", "direction", "name", "text", "ts"] {
        assert!(msgs[0].get(k).is_some(), "no {k}: {m}");
    }
    assert_eq!(
        (msgs[0]["direction"].as_str(), msgs[0]["name"].as_str()),
        (Some("out"), Some("alice"))
    );
    assert_eq!(
        (msgs[1]["direction"].as_str(), msgs[1]["name"].as_str()),
        (Some("in"), Some("bob"))
    );
    let first = msgs[0]["rowid"].as_i64().unwrap();
    let after = web.json(&format!("/api/messages?peer={}&after={first}", p.bob));
    assert_eq!(after["messages"].as_array().unwrap().len(), 1);
    // The token in the query works as well as in the header.
    let q = web.get(&format!("/api/conversations?t={}", web.token), &[]);
    assert_eq!(q.status, 200);
    let bad = web.get(
        &format!("/api/messages?peer={}&after=x", p.bob),
        &[("X-Retalk-Token", &web.token)],
    );
    assert_eq!(bad.status, 400);

    // Server-sent events: a message saved by another process is pushed.
    let mut events = Events::open(&web, "");
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.send_saved("alice", "bob", "pushed to the page");
    let ev = events.next(SLOW).expect("an event");
    assert_eq!(ev["text"], "pushed to the page");
    assert_eq!(ev["peer"], p.bob.as_str());
    assert_eq!(ev["direction"], "out");
    // A reconnect with `after` replays what it missed.
    let mut replay = Events::open(&web, &format!("&after={first}"));
    let a = replay.next(SLOW).unwrap();
    let b = replay.next(SLOW).unwrap();
    assert_eq!(
        (a["text"].as_str(), b["text"].as_str()),
        (
            Some("<img src=x onerror=alert(1)>"),
            Some("pushed to the page")
        )
    );
    let c = web.json("/api/conversations");
    assert_eq!(c["conversations"][0]["count"], 3);
}

#[test]
fn web_view_refuses_without_token_or_with_a_foreign_host() {
    let p = pair();
    let web = Web::start(&p, "alice");
    let page = web.get(&format!("/?t={}", web.token), &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<div id=\"app\""));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!page.body.contains("<script>"), "no inline script");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    for asset in ["/app.js", "/app.css"] {
        let r = web.get(&format!("{asset}?t={}", web.token), &[]);
        assert_eq!(r.status, 200, "{asset}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(web.get(asset, &[]).status, 403, "{asset} without token");
    }
    let js = web.get(&format!("/app.js?t={}", web.token), &[]).body;
    assert!(!js.contains("innerHTML"), "texts go in with textContent");

    for path in [
        "/",
        "/api/conversations",
        "/api/events",
        "/api/messages?peer=x",
    ] {
        let r = web.get(path, &[]);
        assert_eq!(r.status, 403, "{path} without token");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let wrong = "0".repeat(web.token.len());
        let r = web.get(path, &[("X-Retalk-Token", &wrong)]);
        assert_eq!(r.status, 403, "{path} with a wrong token");
        let r = web.get(
            &format!(
                "{path}{}t=short",
                if path.contains('?') { "&" } else { "?" }
            ),
            &[],
        );
        assert_eq!(r.status, 403, "{path} with a short token");
    }
    // DNS rebinding: the right token but another Host.
    for host in ["evil.example:80", "127.0.0.1", "127.0.0.1:1"] {
        let r = http_get(
            web.port,
            "/api/conversations",
            &[("Host", host), ("X-Retalk-Token", &web.token)],
        );
        assert_eq!(r.status, 403, "Host {host}");
    }
    let r = http_get(
        web.port,
        "/api/conversations",
        &[("X-Retalk-Token", &web.token)],
    );
    assert_eq!(r.status, 403, "no Host");
    let local = format!("localhost:{}", web.port);
    let r = http_get(
        web.port,
        "/api/conversations",
        &[("Host", &local), ("X-Retalk-Token", &web.token)],
    );
    assert_eq!(r.status, 200, "localhost:PORT is this server");
    // Only loopback: nothing listens on another address of the machine.
    assert!(web.base.starts_with("http://127.0.0.1:"));
}
