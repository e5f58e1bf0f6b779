//! The relay as a real process: the `retalk-server` executable on a free
//! loopback port, as an operator or a CLI test runs it. The one starter for
//! every suite that needs the binary (the CLI's, the relay's own binary
//! tests); [`crate::relay`] starts it inside the test process instead.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::PATIENCE;

/// Every variable `retalk-server` reads, removed from its environment so
/// the caller's cannot leak into a test.
pub const RELAY_VARS: &[&str] = &[
    "RETALK_SERVER_HOST",
    "SERVER_HOST",
    "RETALK_SERVER_PORT",
    "SERVER_PORT",
    "RETALK_SERVER_AUDIENCE",
    "SERVER_AUDIENCE",
    "RETALK_SERVER_DB",
    "SERVER_DB",
    "RETALK_SERVER_MAX_BODY",
    "RETALK_SERVER_MAX_OTKS",
    "RETALK_SERVER_MAX_MAILBOX",
    "RETALK_SERVER_MAX_REFUSED",
    "RETALK_SERVER_REFUSED_TTL",
    "RETALK_SERVER_MAX_GROUP_SIZE",
    "RETALK_SERVER_TIMEOUT",
    "RETALK_SERVER_DURABILITY",
    "RETALK_SERVER_LOG_REQUESTS",
    "RUST_LOG",
];

/// Lines of a child's stream, readable with a timeout.
pub struct LineReader {
    rx: Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl LineReader {
    /// Reads `r` line by line on a thread.
    pub fn new(r: impl Read + Send + 'static) -> Self {
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(l) = line else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Self { rx, seen: vec![] }
    }

    /// The next line, or `None` at EOF or after `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<String> {
        let l = self.rx.recv_timeout(timeout).ok()?;
        self.seen.push(l.clone());
        Some(l)
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

/// A workspace binary of `package`, next to this test binary
/// (`target/<profile>/<bin>`). `cargo test --workspace` has just built it;
/// when it is missing or older than the sources it is made from (say,
/// `cargo test -p retalk-cli` alone), it is built here once, with the same
/// cargo, profile and target directory. `sources` are paths relative to the
/// workspace root.
pub fn workspace_bin(package: &str, bin: &str, sources: &[&str]) -> PathBuf {
    // this test binary is target/<profile>/deps/NAME-HASH
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    let path = profile_dir.join(bin);
    let root = crate::pyref::root();
    let newest_source = sources.iter().filter_map(|p| newest(&root.join(p))).max();
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    if matches!((built, newest_source), (Some(b), Some(s)) if b >= s) {
        return path;
    }
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let target_dir = profile_dir.parent().expect("target dir");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", bin, "--profile"])
        .arg(&profile)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(&root)
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "cargo build -p {package} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        path.exists(),
        "{} still missing after build",
        path.display()
    );
    path
}

/// The `retalk-server` executable (built once per test process if stale).
pub fn relay_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        workspace_bin(
            "retalk-server",
            "retalk-server",
            &["retalk-server", "retalk-proto", "Cargo.lock", "Cargo.toml"],
        )
    })
    .clone()
}

/// A `retalk-server` command in `dir` with `args` and `env`, and none of
/// the caller's relay variables.
pub fn relay_command(bin: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir).args(args);
    for v in RELAY_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A running `retalk-server`; killed on drop.
pub struct RelayProcess {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its database file.
    pub db: PathBuf,
    /// Its start-up line.
    pub banner: String,
    /// `http://127.0.0.1:PORT`, where it really listens.
    pub addr: String,
    /// Its stderr after the start-up line.
    pub stderr: LineReader,
}

impl RelayProcess {
    /// Starts a relay with its database in `dir`, on a free port.
    pub fn start(dir: &Path) -> RelayProcess {
        Self::spawn(dir.join("server.db"), 0)
    }

    /// Starts a relay on `db` and `port` (0 = any free port), retrying a few
    /// times if the port is briefly unavailable (a restart on the same port).
    pub fn spawn(db: PathBuf, port: u16) -> RelayProcess {
        let dir = db.parent().unwrap_or(Path::new(".")).to_path_buf();
        let port_arg = port.to_string();
        let db_arg = db.display().to_string();
        let args = ["--host", "127.0.0.1", "--port", &port_arg, "--db", &db_arg];
        let mut last = String::new();
        for _ in 0..20 {
            let cmd = relay_command(&relay_bin(), &dir, &args, &[]);
            match Self::launch(cmd, db.clone()) {
                Ok(relay) => return relay,
                Err(seen) => last = seen,
            }
            thread::sleep(Duration::from_millis(250));
        }
        panic!("retalk-server did not start on port {port}: {last}");
    }

    /// Runs `cmd` and waits (bounded) for its start-up line ("... listening
    /// on 127.0.0.1:PORT, ...") and for the port to accept connections.
    /// `Err` with its stderr when it exits or never says where it listens.
    pub fn launch(mut cmd: Command, db: PathBuf) -> Result<RelayProcess, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn retalk-server");
        let mut err = LineReader::new(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + PATIENCE;
        while let Some(line) = err.next(deadline.saturating_duration_since(Instant::now())) {
            let Some(rest) = line.split("listening on ").nth(1) else {
                continue;
            };
            let addr = rest.split(',').next().unwrap_or("").to_owned();
            let port: u16 = addr
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no port in the start-up line: {line}"));
            let relay = RelayProcess {
                child: Some(child),
                port,
                db,
                banner: line.clone(),
                addr: format!("http://{addr}"),
                stderr: err,
            };
            relay.wait_accepting();
            return Ok(relay);
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(err.seen.join("\n"))
    }

    fn wait_accepting(&self) {
        let deadline = Instant::now() + PATIENCE;
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

    /// Sends `sig` to the relay.
    pub fn signal(&self, sig: i32) {
        let Some(child) = &self.child else {
            panic!("the relay was already stopped");
        };
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", child.id());
    }

    /// Waits (bounded) for the relay to exit; returns its status after
    /// collecting the rest of its stderr into `stderr.seen`.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("the relay is running");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the relay") {
                self.stderr.rest(Duration::from_secs(2));
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "relay did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for a stderr line containing `needle` (or finds one
    /// already read).
    pub fn wait_line(&mut self, needle: &str) -> String {
        if let Some(l) = self.stderr.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        self.stderr.wait_for(needle, PATIENCE)
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
        *self = RelayProcess::spawn(self.db.clone(), self.port);
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
