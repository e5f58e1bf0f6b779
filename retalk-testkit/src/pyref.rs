//! Driving the Python reference (retalk 0.0.1 / 0.3.0 from PyPI) from Rust
//! integration tests.
//!
//! * [`availability`]: runs `tests/pyref/setup.sh` once per test process.
//!   When the reference is unavailable it panics if `RETALK_REQUIRE_PYREF`
//!   is set (CI); otherwise it says why, and the interop runner
//!   (`tests/interop/main.rs`) reports the tests that need it as ignored.
//! * [`pyref`]: the reference for a test that needs it.
//! * [`PyRef::driver`]: one call of `tests/pyref/driver.py` (the reference
//!   library), [`PyRef::cli`]: the reference CLI.
//! * [`PyRelay`]: a Python relay on a free loopback port, killed on drop.
//!
//! Everything runs on 127.0.0.1 with per-test temp dirs; tests may run in
//! parallel threads.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A reference version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ver {
    /// retalk 0.0.1
    V001,
    /// retalk 0.3.0
    V030,
}

impl Ver {
    /// The version string (venv suffix).
    pub fn as_str(self) -> &'static str {
        match self {
            Ver::V001 => "0.0.1",
            Ver::V030 => "0.3.0",
        }
    }
}

/// The installed reference.
#[derive(Debug)]
pub struct PyRef {
    /// Workspace root.
    pub root: PathBuf,
    /// `$RETALK_PYREF_DIR` (default `<root>/target/pyref`).
    pub dir: PathBuf,
    /// Idle `driver.py serve` processes, reused across calls.
    pool: std::sync::Mutex<Vec<DriverServer>>,
}

/// One `driver.py serve` process: a request line in, a result line out.
#[derive(Debug)]
struct DriverServer {
    ver: Ver,
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

/// The workspace root (the parent of this crate's manifest dir).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("retalk-testkit sits in the workspace root")
        .to_path_buf()
}

fn pyref_dir() -> PathBuf {
    std::env::var_os("RETALK_PYREF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/pyref"))
}

/// Why the reference is not available.
#[derive(Debug)]
struct Unavailable {
    reason: String,
    /// Python or PyPI is missing (a skip is allowed outside CI); otherwise
    /// the setup itself is broken, which always fails.
    missing: bool,
}

fn setup() -> Result<PyRef, Unavailable> {
    let dir = pyref_dir();
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(root().join("tests/pyref/setup.sh"))
        .env("RETALK_PYREF_DIR", &dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Unavailable {
            reason: format!("cannot run bash tests/pyref/setup.sh: {e}"),
            missing: e.kind() == std::io::ErrorKind::NotFound,
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        // setup.sh: exit 2 = no usable python3; exit 1 with this text = PyPI
        // unreachable. Anything else is a broken setup, never skipped.
        let (why, missing) = match out.status.code() {
            Some(2) => ("no usable python3 (>= 3.10 with venv)", true),
            Some(1) if stderr.contains("PyPI looks unreachable") => ("PyPI unreachable", true),
            _ => ("tests/pyref/setup.sh failed", false),
        };
        return Err(Unavailable {
            reason: format!(
                "{why} (tests/pyref/setup.sh exit {:?}):\n{}",
                out.status.code(),
                tail.join("\n")
            ),
            missing,
        });
    }
    eprintln!(
        "pyref: reference ready in {:?} ({})",
        started.elapsed(),
        stderr.lines().last().unwrap_or("")
    );
    Ok(PyRef {
        root: root(),
        dir,
        pool: Default::default(),
    })
}

fn setup_once() -> &'static Result<PyRef, Unavailable> {
    static SETUP: OnceLock<Result<PyRef, Unavailable>> = OnceLock::new();
    SETUP.get_or_init(setup)
}

/// Whether the reference can be used, set up once per process: `Ok` when
/// it is ready; `Err(reason)` when Python or PyPI is missing and
/// `RETALK_REQUIRE_PYREF` is not set, so a test runner can report the tests
/// that need it as ignored (never as passed). Panics when the variable is
/// set (CI) and the reference is missing, or when the setup is broken for
/// any other reason.
pub fn availability() -> Result<&'static PyRef, String> {
    match setup_once() {
        Ok(p) => Ok(p),
        Err(Unavailable { reason, missing }) => {
            if std::env::var_os("RETALK_REQUIRE_PYREF").is_some_and(|v| !v.is_empty() && v != "0") {
                panic!(
                    "RETALK_REQUIRE_PYREF is set but the Python reference is unavailable: {reason}"
                );
            }
            if !missing {
                panic!("the Python reference could not be set up: {reason}");
            }
            Err(reason.clone())
        }
    }
}

/// The Python reference, for a test that needs it. The interop runner only
/// runs such tests once [`availability`] said yes, so this panics (a
/// failure, never a silent pass) if it is called without it.
pub fn pyref() -> &'static PyRef {
    match availability() {
        Ok(p) => p,
        Err(reason) => panic!(
            "this test needs the Python reference, which is unavailable ({reason}); \
             register it as a Python case so the runner reports it as ignored"
        ),
    }
}

/// The outcome of one driver call.
#[derive(Debug, Clone)]
pub struct DriverOut {
    /// 0 result, 1 the library raised, 2 usage error.
    pub code: i32,
    /// The one JSON object printed.
    pub json: Value,
    /// The library's own prints.
    pub stderr: String,
}

impl PyRef {
    /// The venv's interpreter for `ver`.
    pub fn python(&self, ver: Ver) -> PathBuf {
        self.dir.join(format!("venv-{}/bin/python", ver.as_str()))
    }

    /// The reference CLI executable for `ver`.
    pub fn cli_exe(&self, ver: Ver) -> PathBuf {
        self.dir.join(format!("venv-{}/bin/retalk", ver.as_str()))
    }

    /// Runs one driver command with `args`, as `driver.py COMMAND -` would
    /// (same exit code and JSON), through a reused `driver.py serve`
    /// process of that version (one per concurrent caller).
    pub fn driver(&self, ver: Ver, command: &str, args: &Value) -> DriverOut {
        use std::io::BufRead;
        let taken = {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            pool.iter()
                .position(|s| s.ver == ver)
                .map(|i| pool.swap_remove(i))
        };
        let mut server = match taken {
            Some(s) => s,
            None => {
                let mut child = Command::new(self.python(ver))
                    .arg(self.root.join("tests/pyref/driver.py"))
                    .arg("serve")
                    .env("PYTHONDONTWRITEBYTECODE", "1")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("spawn driver.py serve");
                DriverServer {
                    ver,
                    stdin: child.stdin.take().unwrap(),
                    stdout: std::io::BufReader::new(child.stdout.take().unwrap()),
                    child,
                }
            }
        };
        let request = serde_json::json!({"command": command, "args": args});
        let mut line = String::new();
        let io = writeln!(server.stdin, "{request}")
            .and_then(|()| server.stdin.flush())
            .and_then(|()| server.stdout.read_line(&mut line));
        if io.is_err() || line.is_empty() {
            let _ = server.child.kill();
            let _ = server.child.wait();
            panic!(
                "driver.py serve ({}) died during {command} {args}: {io:?}",
                ver.as_str()
            );
        }
        let reply: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!("driver.py serve {command}: not one JSON line ({e}): {line:?}")
        });
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(server);
        DriverOut {
            code: reply["code"].as_i64().unwrap_or(-1) as i32,
            json: reply["json"].clone(),
            stderr: reply["stderr"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// Like [`PyRef::driver`], panicking unless it exits 0.
    #[track_caller]
    pub fn drive(&self, ver: Ver, command: &str, args: &Value) -> Value {
        let out = self.driver(ver, command, args);
        assert_eq!(
            out.code,
            0,
            "driver.py {} {command} {args} failed: {}\nstderr: {}",
            ver.as_str(),
            out.json,
            out.stderr
        );
        out.json
    }

    /// Like [`PyRef::driver`], panicking unless the library raised (exit 1);
    /// returns the error text.
    #[track_caller]
    pub fn drive_err(&self, ver: Ver, command: &str, args: &Value) -> String {
        let out = self.driver(ver, command, args);
        assert_eq!(
            out.code,
            1,
            "driver.py {} {command} {args} should have raised, got {}\nstderr: {}",
            ver.as_str(),
            out.json,
            out.stderr
        );
        out.json["error"].as_str().unwrap_or_default().to_owned()
    }

    /// Runs the reference CLI with `args`, an isolated `home` (HOME,
    /// RETALK_HOME, XDG_DATA_HOME all inside it) and extra `env`. No
    /// inherited retalk env var leaks in.
    pub fn cli(&self, ver: Ver, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(self.cli_exe(ver));
        cmd.args(args);
        isolate_env(&mut cmd, home);
        cmd.env("PYTHONDONTWRITEBYTECODE", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .output()
            .expect("run the reference CLI")
    }

    /// Like [`PyRef::cli`], panicking unless it exits 0; returns stdout.
    #[track_caller]
    pub fn cli_ok(&self, ver: Ver, home: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.cli(ver, home, args, env);
        assert!(
            out.status.success(),
            "python retalk {} {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            ver.as_str(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Removes every retalk-related variable from `cmd`'s environment and points
/// HOME and the config/data homes into `home`.
pub fn isolate_env(cmd: &mut Command, home: &Path) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("RETALK_") && k != "RETALK_PYREF_DIR"
            || matches!(
                k.as_str(),
                "PICKLE_SECRET" | "SERVER_URL" | "STORE" | "XDG_DATA_HOME" | "XDG_CONFIG_HOME"
            )
        {
            cmd.env_remove(&k);
        }
    }
    std::fs::create_dir_all(home).unwrap();
    cmd.env("HOME", home)
        .env("RETALK_HOME", home.join(".retalk"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CONFIG_HOME", home.join(".config"));
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port` (bounded).
pub fn wait_port(port: u16, timeout: Duration) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// A Python reference relay on loopback; killed on drop.
pub struct PyRelay {
    child: Child,
    /// The version it runs.
    pub ver: Ver,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:PORT` (the address; the audience may differ).
    pub url: String,
    /// Its database file.
    pub db: PathBuf,
    log: PathBuf,
}

impl PyRelay {
    /// Starts `ver`'s relay on a free port with database `db`, signing
    /// audience `audience` (default: its URL) and extra flags (0.3.0).
    pub fn start(py: &PyRef, ver: Ver, db: &Path, audience: Option<&str>, extra: &[&str]) -> Self {
        let mut last = String::new();
        for _attempt in 0..4 {
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}");
            let log = db.with_extension(format!("relay-{port}.log"));
            let logf = std::fs::File::create(&log).unwrap();
            let mut cmd = Command::new("bash");
            cmd.arg(py.root.join("tests/pyref/relay.sh"))
                .arg(ver.as_str())
                .arg(port.to_string())
                .arg(db)
                .arg(audience.unwrap_or(&url));
            if !extra.is_empty() {
                cmd.arg("--").args(extra);
            }
            cmd.env("RETALK_PYREF_DIR", &py.dir)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::null())
                .stdout(logf.try_clone().unwrap())
                .stderr(logf);
            let mut child = cmd.spawn().expect("spawn relay.sh");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    last = format!(
                        "python relay {} exited {status} before listening on {port}: {}",
                        ver.as_str(),
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    break; // port taken meanwhile? try another
                }
                if wait_port(port, Duration::from_millis(100)) {
                    return PyRelay {
                        child,
                        ver,
                        port,
                        url,
                        db: db.to_path_buf(),
                        log,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "python relay {} did not listen on {port} within 15 s",
                        ver.as_str()
                    );
                }
            }
        }
        panic!("could not start the python relay: {last}");
    }

    /// What the relay printed so far (its request log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PyRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh temp dir (removed on drop).
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("retalk-interop-{prefix}-"))
        .tempdir()
        .unwrap()
}

/// Copies a folder tree (files and subfolders).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Every file under `dir` with its bytes, sorted by path (to compare a
/// folder before and after).
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                walk(base, &entry.path(), out);
            } else {
                out.push((
                    entry.path().strip_prefix(base).unwrap().to_path_buf(),
                    std::fs::read(entry.path()).unwrap(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The fixture made by the Python 0.0.1 CLI and relay
/// (`tests/data/fixture-0.0.1`).
pub fn fixture_dir() -> PathBuf {
    root().join("tests/data/fixture-0.0.1")
}

/// Runs `f` on each item in its own thread and returns the results in order
/// (for independent Python steps: each costs an interpreter start).
pub fn parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|it| {
                let f = &f;
                s.spawn(move || f(it))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Our relay (`retalk_server::Relay`) on a free loopback port, on its own
/// runtime so tests stay synchronous while Python processes call it; shut
/// down gracefully on drop.
pub struct RustRelay {
    relay: Option<retalk_server::Relay>,
    rt: Option<tokio::runtime::Runtime>,
    /// `http://127.0.0.1:PORT`, also its audience unless configured.
    pub url: String,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its database file.
    pub db: PathBuf,
}

impl RustRelay {
    /// A relay with database `db` and otherwise default settings.
    pub fn start(db: &Path) -> Self {
        Self::start_with(retalk_server::Config {
            port: 0,
            db: db.to_path_buf(),
            ..Default::default()
        })
    }

    /// A relay with `config` (port 0 picks a free port).
    pub fn start_with(config: retalk_server::Config) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rust-relay")
            .enable_all()
            .build()
            .unwrap();
        let db = config.db.clone();
        let relay = rt
            .block_on(retalk_server::Relay::start(config))
            .expect("our relay starts");
        let port = relay.local_addr().port();
        assert!(wait_port(port, Duration::from_secs(10)), "relay listens");
        RustRelay {
            url: format!("http://127.0.0.1:{port}"),
            port,
            db,
            relay: Some(relay),
            rt: Some(rt),
        }
    }

    /// The relay itself.
    pub fn relay(&self) -> &retalk_server::Relay {
        self.relay.as_ref().unwrap()
    }

    /// Runs a future on the relay's runtime (for async client code).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.as_ref().unwrap().block_on(f)
    }

    /// Stops the relay (gracefully, everything committed).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let (Some(relay), Some(rt)) = (self.relay.take(), self.rt.take()) {
            rt.block_on(relay.shutdown());
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for RustRelay {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Rows waiting in a relay database (reference schema), by recipient.
pub fn relay_pending(db: &Path, recipient: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM messages WHERE recipient=?1",
        [recipient],
        |r| r.get(0),
    )
    .unwrap()
}

/// One Python reference user driven through `driver.py`.
#[derive(Debug, Clone)]
pub struct PyUser {
    /// Which reference version.
    pub ver: Ver,
    /// Its store file.
    pub store: PathBuf,
    /// pickle_secret / passphrase.
    pub secret: String,
    /// Relay URL (and audience).
    pub server: String,
    /// Self-chosen display name.
    pub name: String,
    /// Local names `{peer_id: name}`.
    pub names: serde_json::Map<String, Value>,
}

impl PyUser {
    /// A user `name` with store `dir/NAME.db`, secret `NAME-secret`.
    pub fn new(ver: Ver, dir: &Path, name: &str, server: &str) -> Self {
        PyUser {
            ver,
            store: dir.join(format!("{name}.db")),
            secret: format!("{name}-secret"),
            server: server.to_owned(),
            name: name.to_owned(),
            names: Default::default(),
        }
    }

    /// The common args plus `extra`.
    pub fn args(&self, extra: Value) -> Value {
        let mut a = serde_json::json!({
            "store": self.store,
            "secret": self.secret,
            "server": self.server,
            "name": self.name,
            "names": self.names,
        });
        if let Value::Object(extra) = extra {
            a.as_object_mut().unwrap().extend(extra);
        }
        a
    }

    /// Runs a driver command; panics unless it succeeds.
    #[track_caller]
    pub fn run(&self, py: &PyRef, command: &str, extra: Value) -> Value {
        py.drive(self.ver, command, &self.args(extra))
    }

    /// Runs a driver command that must raise; returns the error text.
    #[track_caller]
    pub fn run_err(&self, py: &PyRef, command: &str, extra: Value) -> String {
        py.drive_err(self.ver, command, &self.args(extra))
    }

    /// Publishes keys (`n` one-time keys) and returns the user id.
    #[track_caller]
    pub fn publish(&self, py: &PyRef, n: u32) -> String {
        let out = self.run(py, "publish", serde_json::json!({ "n": n }));
        out["user_id"].as_str().unwrap().to_owned()
    }

    /// Receives; returns the messages as `(from, name, text)`.
    #[track_caller]
    pub fn receive(&self, py: &PyRef) -> Vec<(String, String, String)> {
        let out = self.run(py, "receive", Value::Null);
        out["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["from"].as_str().unwrap_or_default().to_owned(),
                    m["name"].as_str().unwrap_or_default().to_owned(),
                    m["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Its outbox rows (`{"id", "peer", "mtype", "ts"}`).
    #[track_caller]
    pub fn outbox(&self, py: &PyRef) -> Vec<Value> {
        let out = py.drive(
            self.ver,
            "outbox",
            &serde_json::json!({ "store": self.store }),
        );
        out["outbox"].as_array().unwrap().clone()
    }
}

/// Our CLI binary (`retalk`, package `retalk-cli`) of this test's profile.
///
/// `cargo test --workspace` has just built it (the CLI's own integration
/// tests need it), so it is used as is when it is newer than every source
/// it is made from. Otherwise (say, `cargo test --test interop cli::` after
/// an edit) it is built once per test process with the same cargo and
/// profile. A fresh binary is never rebuilt here: a nested build resolves
/// features differently and would recompile the library for nothing.
pub fn rust_cli_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        crate::process::workspace_bin(
            "retalk-cli",
            "retalk",
            &[
                "src",
                "retalk-proto",
                "retalk-cli",
                "Cargo.toml",
                "Cargo.lock",
            ],
        )
    })
}

/// Runs our CLI with an isolated `home` and `env`.
pub fn rust_cli(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(rust_cli_exe());
    cmd.args(args);
    isolate_env(&mut cmd, home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .output()
        .expect("run the retalk CLI")
}

/// Like [`rust_cli`], panicking unless it exits 0; returns stdout.
#[track_caller]
pub fn rust_cli_ok(home: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = rust_cli(home, args, env);
    assert!(
        out.status.success(),
        "retalk {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A current-thread runtime for driving our (async) client library.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub use crate::users::cheap;

/// A new Rust identity `root/NAME` (passphrase `NAME-secret`) using relay
/// `url`, with `otks` one-time keys published.
pub fn rust_user(
    rt: &tokio::runtime::Runtime,
    root: &Path,
    name: &str,
    url: &str,
    otks: usize,
) -> retalk::User {
    let u = rt
        .block_on(retalk::User::create_with(
            &root.join(name),
            &format!("{name}-secret"),
            name,
            Some(url),
            cheap(),
        ))
        .unwrap();
    rt.block_on(u.publish(otks, false)).unwrap();
    u
}

/// `(from, name, text)` of messages our library returned.
pub fn triples(msgs: &[retalk::Message]) -> Vec<(String, String, String)> {
    msgs.iter()
        .map(|m| (m.from.to_string(), m.name.clone(), m.text.clone()))
        .collect()
}

/// A Python 0.3.0 user `pyu` that blocks the Rust user `rust` refuses its
/// message with a signed nack (through whatever relay both use); our
/// client's re-send gets the refused-body answer, verifies the signature,
/// drops the message and its sessions with that peer, and its next message
/// starts a new session that arrives once the block is lifted.
pub fn python_030_refuses_rust_sender(
    py: &PyRef,
    rt: &tokio::runtime::Runtime,
    rust: &retalk::User,
    pyu: &PyUser,
    pyu_id: &str,
) {
    assert_eq!(pyu.ver, Ver::V030);
    let p = retalk::UserId::parse(pyu_id, "peer").unwrap();
    let r = rust.user_id().to_string();
    rt.block_on(rust.send(&p, "you will refuse this")).unwrap();
    assert_eq!(rust.session_count(&p).unwrap(), 1);
    let got = py.drive(
        Ver::V030,
        "receive",
        &pyu.args(serde_json::json!({"user_kwargs": {"blocked": [r]}})),
    );
    assert_eq!(got["messages"], serde_json::json!([]), "blocked: dropped");
    assert_eq!(rust.outbox_len().unwrap(), 1);
    assert_eq!(
        rt.block_on(rust.flush_outbox(Duration::ZERO)).unwrap(),
        0,
        "refused, not re-sent"
    );
    assert_eq!(
        rust.outbox_len().unwrap(),
        0,
        "the verified refusal dropped it"
    );
    assert_eq!(rust.session_count(&p).unwrap(), 0, "sessions reset");
    rt.block_on(rust.send(&p, "fresh start")).unwrap();
    assert_eq!(rust.session_count(&p).unwrap(), 1);
    assert_eq!(
        pyu.receive(py),
        vec![(r, format!("~{}", rust.name()), "fresh start".to_owned())]
    );
}
