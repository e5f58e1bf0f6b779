//! A real PostgreSQL server for tests: Debian's `postgresql` binaries
//! (`/usr/lib/postgresql/*/bin`), `initdb` into a temp dir and `pg_ctl
//! start` on a free loopback port, run as the `postgres` user when the
//! tests run as root. Never a mock.
//!
//! PostgreSQL is required, not optional: without it these helpers panic
//! with the command that installs it, so a suite never passes by skipping
//! (`.ci/run` installs it and sets `RETALK_REQUIRE_POSTGRES=1`).
//!
//! [`TestPostgres::start`] owns a server and stops it on drop;
//! [`database`] hands out a fresh database on one server shared by the
//! whole test binary (stopped when the binary exits).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A running PostgreSQL server in a temp dir.
pub struct TestPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

/// The newest installed `/usr/lib/postgresql/N/bin`, or a panic naming the
/// package to install.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is needed for the PostgreSQL backend tests and is not installed \
             (no /usr/lib/postgresql/*/bin/initdb): run `apt-get install postgresql` \
             (RETALK_REQUIRE_POSTGRES={})",
            std::env::var("RETALK_REQUIRE_POSTGRES").unwrap_or_default()
        ),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::geteuid() };
    uid == 0
}

/// `program args...`, as the `postgres` user when we are root.
fn pg_command(bin: &Path, program: &str) -> Command {
    let exe = bin.join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl TestPostgres {
    /// Initialises and starts a server; panics (with the fix) when
    /// PostgreSQL is not installed.
    pub fn start() -> TestPostgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("retalk-pg-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:postgres").arg(dir.path());
                    c
                },
                "chown of the PostgreSQL temp dir",
            );
        }
        let data = dir.path().join("data");
        let mut init = pg_command(&bin, "initdb");
        init.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(init, "initdb");
        // A port taken between our probe and the server's bind: try another.
        for attempt in 0..5 {
            let port = free_port();
            let mut start = pg_command(&bin, "pg_ctl");
            start
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("log"))
                .args(["-w", "-t", "60", "-o"])
                .arg(format!(
                    "-p {port} -c listen_addresses=127.0.0.1 -k {} -c max_connections=300 \
                     -c fsync=off",
                    dir.path().display()
                ))
                .arg("start");
            let ok = start
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return TestPostgres { bin, dir, port };
            }
            assert!(
                attempt < 4,
                "pg_ctl start failed: {}",
                std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
            );
        }
        unreachable!()
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `name` as the `postgres` superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        let mut c = pg_command(&self.bin, "createdb");
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            name,
        ]);
        run(c, "createdb");
        self.url(name)
    }

    /// Stops the server at once (what [`Drop`] does).
    pub fn stop(&self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = c.status();
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

static SHARED: OnceLock<TestPostgres> = OnceLock::new();

extern "C" fn stop_shared() {
    if let Some(pg) = SHARED.get() {
        pg.stop();
    }
}

/// The server shared by this test binary, started on first use and
/// stopped when the binary exits.
pub fn shared() -> &'static TestPostgres {
    SHARED.get_or_init(|| {
        let pg = TestPostgres::start();
        // SAFETY: registering a plain function with no captured state.
        #[allow(unsafe_code)]
        let _ = unsafe { libc::atexit(stop_shared) };
        pg
    })
}

/// A fresh, empty database on the shared server; its URL.
pub fn database() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    shared().create_database(&format!("t{}_{n}", std::process::id()))
}
