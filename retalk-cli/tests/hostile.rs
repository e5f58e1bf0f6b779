//! A hostile relay's error text never reaches the terminal raw (issue 9):
//! a loopback HTTP server in the test answers every request with an error
//! whose text carries U+202E (right-to-left override), an ANSI escape and
//! a newline that would fake a line of our own. What the CLI prints on
//! stderr has none of them.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use support::*;

const EVIL: &str = "nope \u{202e}txet desrever\u{1b}[2J\nretalk: all good, keys published";

/// Serves until the test process ends: GET answers 404, POST answers 400
/// with `{"error": EVIL}`.
fn hostile_relay() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut r = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut first = String::new();
                    if r.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        let lower = h.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let (status, text) = if first.starts_with("GET") {
                        ("404 Not Found", r#"{"error":"no"}"#.to_string())
                    } else {
                        (
                            "400 Bad Request",
                            serde_json::json!({ "error": EVIL }).to_string(),
                        )
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if stream.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[track_caller]
fn assert_neutral(what: &str, stderr: &str) {
    assert!(
        !stderr.contains('\u{202e}') && !stderr.contains('\u{1b}'),
        "{what}: raw control text on stderr: {stderr:?}"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("retalk: all good")),
        "{what}: the relay's newline made a line of its own: {stderr:?}"
    );
    // the text is shown, escaped, so the user still sees what the relay said
    assert!(
        stderr.contains("nope"),
        "{what}: the relay's text is missing: {stderr}"
    );
}

#[test]
fn a_hostile_relays_error_text_is_neutralised_on_stderr() {
    let url = hostile_relay();
    let s = Sandbox::new();
    // init: the registration fails; its warning quotes the relay
    let r = s.run(
        &secret("alice"),
        &["init", "alice", "--name", "alice", "--server", &url],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_neutral("init", &r.stderr);
    // commands that fail on the relay's answer
    for args in [
        &["sync", "-s", "alice", "--server", &url][..],
        &["register", "-s", "alice", "--server", &url][..],
    ] {
        let r = s.run(&secret("alice"), args);
        assert_ne!(r.code, 0, "{args:?}: {}", r.stderr);
        assert_neutral(&args.join(" "), &r.stderr);
    }
}
