//! Test support: a real `retalk-server` on a free loopback port, a sandbox
//! (HOME, XDG_DATA_HOME, working directory) per test, and line readers with
//! timeouts for long-running processes.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Generous bound for anything that should take milliseconds: the test
/// machine may be busy compiling.
pub const SLOW: Duration = Duration::from_secs(30);

/// The `retalk` binary under test.
pub fn retalk_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_retalk"))
}

/// The newest modification time of the files under `p`.
fn newest(p: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(p).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(p)
        .ok()?
        .flatten()
        .filter_map(|e| newest(&e.path()))
        .max()
}

/// The `retalk-server` binary next to `retalk`. `cargo test -p retalk-cli`
/// alone does not build it, so it is built here (once per test run) when it
/// is missing or older than the relay's sources.
pub fn relay_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let bin = retalk_bin().with_file_name("retalk-server");
            let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
            let sources = ["src", "retalk-server", "Cargo.lock", "Cargo.toml"]
                .iter()
                .filter_map(|p| newest(&root.join(p)))
                .max();
            let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
            if matches!((built, sources), (Some(b), Some(s)) if b >= s) {
                return bin;
            }
            let profile_dir = bin.parent().expect("target profile dir");
            let target_dir = profile_dir.parent().expect("target dir");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "retalk-server", "--target-dir"])
                .arg(target_dir)
                .current_dir(root);
            if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build -p retalk-server");
            assert!(status.success(), "cargo build -p retalk-server failed");
            assert!(bin.exists(), "{} still missing after build", bin.display());
            bin
        })
        .clone()
}

/// Lines of a child's stream, readable with a timeout.
pub struct LineReader {
    rx: Receiver<String>,
    pub seen: Vec<String>,
}

impl LineReader {
    /// Reads `r` line by line on a thread.
    pub fn new(r: impl Read + Send + 'static) -> Self {
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        Self { rx, seen: vec![] }
    }

    /// The next line, or `None` at EOF or after `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<String> {
        match self.rx.recv_timeout(timeout) {
            Ok(l) => {
                self.seen.push(l.clone());
                Some(l)
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Reads until a line contains `needle`; panics with what was seen
    /// after `timeout`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(l) if l.contains(needle) => return l,
                Some(_) => {}
                None => panic!(
                    "no line containing {needle:?} within {timeout:?}; saw {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Every remaining line until EOF (bounded by `timeout`).
    pub fn rest(&mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = vec![];
        while let Some(l) = self.next(deadline.saturating_duration_since(Instant::now())) {
            out.push(l);
        }
        out
    }
}

/// A running relay; killed on drop.
pub struct Relay {
    child: Option<Child>,
    pub port: u16,
    pub db: PathBuf,
    stderr: Option<LineReader>,
}

impl Relay {
    /// Starts a relay with its database in `dir`, on a free port.
    pub fn start(dir: &Path) -> Relay {
        Self::spawn(dir.join("server.db"), 0)
    }

    /// Starts a relay on `db` and `port` (0 = any free port), retrying a few
    /// times if the port is briefly unavailable.
    pub fn spawn(db: PathBuf, port: u16) -> Relay {
        let mut last = String::new();
        for _ in 0..20 {
            let mut child = Command::new(relay_bin())
                .args(["--host", "127.0.0.1", "--port"])
                .arg(port.to_string())
                .arg("--db")
                .arg(&db)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn retalk-server");
            let mut err = LineReader::new(child.stderr.take().expect("stderr"));
            // "retalk-server X: listening on 127.0.0.1:PORT, audience ..."
            let deadline = Instant::now() + SLOW;
            while let Some(line) = err.next(deadline.saturating_duration_since(Instant::now())) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split(',').next().unwrap_or("");
                    let p: u16 = addr
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .expect("port in the relay's start-up line");
                    let relay = Relay {
                        child: Some(child),
                        port: p,
                        db,
                        stderr: Some(err),
                    };
                    relay.wait_accepting();
                    return relay;
                }
            }
            last = err.seen.join("\n");
            let _ = child.kill();
            let _ = child.wait();
            thread::sleep(Duration::from_millis(250));
        }
        panic!("retalk-server did not start on port {port}: {last}");
    }

    fn wait_accepting(&self) {
        let deadline = Instant::now() + SLOW;
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("relay on port {} never accepted connections", self.port);
    }

    /// The URL clients use (the relay's default audience).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the relay at once (SIGKILL), like a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same database and port.
    pub fn restart(&mut self) {
        self.kill();
        let fresh = Relay::spawn(self.db.clone(), self.port);
        *self = fresh;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A sandbox: its own HOME, XDG_DATA_HOME and working directory, so tests
/// never touch real identities.
pub struct Sandbox {
    pub root: tempfile::TempDir,
    pub relay_url: Option<String>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::tempdir().expect("tempdir");
        for d in ["home", "xdg", "work"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        Sandbox {
            root,
            relay_url: None,
        }
    }

    pub fn with_relay(relay: &Relay) -> Sandbox {
        let mut s = Sandbox::new();
        s.relay_url = Some(relay.url());
        s
    }

    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    pub fn xdg(&self) -> PathBuf {
        self.root.path().join("xdg")
    }

    pub fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// `retalk ARGS` with a clean environment: PATH, HOME, XDG_DATA_HOME,
    /// SERVER_URL (if a relay is attached), working directory `work/`,
    /// stdin empty.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(retalk_bin());
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.xdg())
            .current_dir(self.work())
            .stdin(Stdio::null());
        if let Some(u) = &self.relay_url {
            c.env("SERVER_URL", u);
        }
        c
    }

    /// Runs `retalk ARGS` with `PICKLE_SECRET=secret`.
    pub fn run(&self, secret: &str, args: &[&str]) -> Run {
        Run::of(
            self.cmd(args)
                .env("PICKLE_SECRET", secret)
                .output()
                .expect("run retalk"),
        )
    }

    /// Creates `./NAME` with display name NAME and passphrase `NAME-secret`;
    /// returns its id.
    pub fn init(&self, name: &str) -> String {
        let r = self.run(&secret(name), &["init", name, "--name", name]);
        assert_eq!(r.code, 0, "init {name}: {}", r.stderr);
        r.stdout.trim().to_string()
    }
}

/// The conventional passphrase of a test identity.
pub fn secret(name: &str) -> String {
    format!("{name}-secret")
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "expected success; stderr: {}", self.stderr);
        self.stdout
    }
}

/// True for 32 lowercase hex characters.
pub fn is_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Sends a signal to a process.
pub fn signal(child: &Child, sig: i32) {
    let pid = child.id() as i32;
    // SAFETY: kill(2) on a pid we spawned and have not yet waited for.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// Waits for a child to exit, bounded; kills it and panics on timeout.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not exit within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A running `retalk receive --follow ...`; killed on drop.
pub struct Follower {
    pub child: Child,
    pub stdout: LineReader,
    pub stderr: LineReader,
}

impl Follower {
    /// Starts `cmd` with stdout and stderr captured and waits until it says
    /// it is listening.
    pub fn start(mut cmd: Command) -> Follower {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn follower");
        let stdout = LineReader::new(child.stdout.take().unwrap());
        let stderr: ChildStderr = child.stderr.take().unwrap();
        let mut f = Follower {
            child,
            stdout,
            stderr: LineReader::new(stderr),
        };
        f.stderr.wait_for("listening", SLOW);
        f
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed (and reaped) on drop, so a failing test leaves
/// nothing running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
