//! What the `show` tests share: a relay, two user-level identities (alice,
//! bob) that talk with `--save`, a running `show --web`, and a raw HTTP
//! client (so a test can send any Host header).

#![allow(dead_code)]

#[path = "../support/mod.rs"]
mod support;

pub use support::*;

pub mod webdriver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A relay and two identities that know each other.
pub struct Pair {
    pub relay: Relay,
    pub s: Sandbox,
    pub alice: String,
    pub bob: String,
    _dir: tempfile::TempDir,
}

impl Pair {
    /// `retalk ARGS` with RETALK_HOME, the passphrase file, TZ=UTC.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let pw = self.s.root.path().join("pw");
        if !pw.exists() {
            std::fs::write(&pw, "show-pass\n").unwrap();
        }
        let mut c = self.s.cmd(args);
        c.env("RETALK_HOME", self.s.home().join(".retalk"))
            .env("TZ", "UTC")
            .arg("--passphrase-path")
            .arg(&pw);
        c
    }

    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        Run::of(c.output().expect("run retalk"))
    }

    /// alice → bob, kept on alice's side; bob receives it with --save.
    pub fn talk(&self, from: &str, to: &str, text: &str) {
        let r = self.run(&["send", "--peer", to, text, "--save", "-u", from], &[]);
        assert_eq!(r.code, 0, "send: {}", r.stderr);
        let r = self.run(&["receive", "--all", "--save", "--quiet", "-u", to], &[]);
        assert_eq!(r.code, 0, "receive: {}", r.stderr);
    }

    /// Only the sender keeps it (`send --save`): one process saving while
    /// a viewer runs.
    pub fn send_saved(&self, from: &str, to: &str, text: &str) {
        let r = self.run(&["send", "--peer", to, text, "--save", "-u", from], &[]);
        assert_eq!(r.code, 0, "send: {}", r.stderr);
    }

    /// The store folder of a user.
    pub fn dir(&self, user: &str) -> std::path::PathBuf {
        self.s.home().join(".retalk").join(user)
    }
}

/// Starts a relay and creates alice and bob, each a contact of the other.
pub fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path());
    let s = Sandbox::with_relay(&relay);
    let mut p = Pair {
        relay,
        s,
        alice: String::new(),
        bob: String::new(),
        _dir: dir,
    };
    let url = p.relay.url();
    for u in ["alice", "bob"] {
        let r = p.run(
            &["init", "-u", u, "--relay", &url, "--display-name", u],
            &[],
        );
        assert_eq!(r.code, 0, "init {u}: {}", r.stderr);
        let id = r.stdout.trim().to_string();
        if u == "alice" {
            p.alice = id;
        } else {
            p.bob = id;
        }
    }
    let (a, b) = (p.alice.clone(), p.bob.clone());
    p.run(&["add", &b, "--peer", "bob", "-u", "alice"], &[])
        .ok();
    p.run(&["add", &a, "--peer", "alice", "-u", "bob"], &[])
        .ok();
    p
}

/// A running `retalk show USER --web --port 0`; killed on drop.
pub struct Web {
    pub child: KillOnDrop,
    pub stderr: LineReader,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub token: String,
    pub port: u16,
}

impl Web {
    pub fn start(p: &Pair, user: &str) -> Web {
        let mut c = p.cmd(&["show", user, "--web", "--port", "0"]);
        // The relay must not matter: an unreachable one changes nothing.
        c.env("SERVER_URL", "http://127.0.0.1:9")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn show --web");
        let mut stderr = LineReader::new(child.stderr.take().unwrap());
        let child = KillOnDrop(child);
        let line = stderr.wait_for("/?t=", SLOW);
        let url = line.trim();
        let (base, token) = url.split_once("/?t=").expect("URL with token");
        let port = base.rsplit(':').next().unwrap().parse().unwrap();
        stderr.wait_for("listening on 127.0.0.1 only", SLOW);
        Web {
            child,
            stderr,
            base: base.to_string(),
            token: token.to_string(),
            port,
        }
    }

    /// `http://127.0.0.1:PORT/?t=TOKEN`
    pub fn url(&self) -> String {
        format!("{}/?t={}", self.base, self.token)
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Http {
        let host = format!("127.0.0.1:{}", self.port);
        let mut all = vec![("Host", host.as_str())];
        all.extend_from_slice(headers);
        http_get(self.port, path, &all)
    }

    /// GET with the token in the header, expecting 200 and JSON.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path, &[("X-Retalk-Token", &self.token)]);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
    }
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Http {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` on 127.0.0.1:port with exactly these headers (Host included
/// only if given), HTTP/1.1, `Connection: close`.
pub fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> Http {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(SLOW)).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Http {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Http {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// An open `GET /api/events` stream: reads `data:` lines.
pub struct Events {
    r: BufReader<TcpStream>,
}

impl Events {
    pub fn open(web: &Web, query: &str) -> Events {
        let mut s = TcpStream::connect(("127.0.0.1", web.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let req = format!(
            "GET /api/events?t={}{query} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\n\r\n",
            web.token, web.port
        );
        s.write_all(req.as_bytes()).unwrap();
        Events {
            r: BufReader::new(s),
        }
    }

    /// The next `data:` payload as JSON, within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        // Kept across timeouts: a read cut short leaves its part here.
        let mut line = String::new();
        while Instant::now() < deadline {
            match self.r.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {
                    // chunk-size lines, ids and comments are skipped
                    let data = line.trim_end().strip_prefix("data:").map(str::to_owned);
                    line.clear();
                    if let Some(d) = data {
                        return Some(serde_json::from_str(d.trim()).expect("event JSON"));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
        None
    }
}
