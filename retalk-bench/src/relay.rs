//! Relays the benchmark starts itself: our release binary or the Python
//! reference, each on a free loopback port with a fresh database.
//!
//! Starting the relay (rather than only taking a URL) is what lets a
//! scenario read the relay's memory from `/proc`, restart it around a
//! direct database fill, and give both implementations identical
//! conditions in one run.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use crate::http::wait_listening;
use crate::wire::Relay;

/// Which implementation a managed relay runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Kind {
    /// `retalk-server` from this repository.
    Ours,
    /// The Python reference `retalk-server` (0.0.1 or 0.3.x).
    Python,
}

impl Kind {
    /// A short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Ours => "ours (Rust)",
            Kind::Python => "Python reference",
        }
    }
}

/// A relay process this benchmark owns; stopped when dropped.
pub struct Managed {
    /// Which implementation.
    pub kind: Kind,
    bin: PathBuf,
    /// Its SQLite database.
    pub db: PathBuf,
    /// Where its stderr/stdout go.
    pub log: PathBuf,
    port: u16,
    child: Option<Child>,
    /// How to address it.
    pub relay: Relay,
    /// The URL signatures must be bound to, when not `relay`'s own (see
    /// [`Managed::restart_with_audience`]).
    audience: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

/// A free loopback TCP port (bound, read and released).
pub fn free_port() -> io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    /// Current resident set, KiB.
    pub rss_kib: u64,
    /// Peak resident set ("high water mark"), KiB.
    pub hwm_kib: u64,
    /// Threads.
    pub threads: u64,
}

/// Reads the memory of process `pid`.
pub fn memory(pid: u32) -> io::Result<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
    })
}

/// CPU time (user + system) process `pid` has used so far, seconds.
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces; fields resume after its ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("bad /proc stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, utime 14 and stime 15 (1-based).
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(14) + ticks(15)) / hz.max(1.0))
}

/// CPU time (user + system) this process has used so far, seconds.
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(u.ru_utime) + tv(u.ru_stime)
    }
}

impl Managed {
    /// Starts a relay of `kind` from `bin`, with its database in a fresh
    /// temporary directory (under `dir` when given).
    pub async fn start(kind: Kind, bin: &Path, dir: Option<&Path>) -> io::Result<Self> {
        let tmp = match dir {
            Some(d) => {
                fs::create_dir_all(d)?;
                tempfile::Builder::new()
                    .prefix("retalk-bench-")
                    .tempdir_in(d)?
            }
            None => tempfile::Builder::new().prefix("retalk-bench-").tempdir()?,
        };
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        let mut m = Managed {
            kind,
            bin: bin.to_owned(),
            db: tmp.path().join("relay.db"),
            log: tmp.path().join("relay.log"),
            port,
            child: None,
            relay: Relay::new(&url, None).map_err(io::Error::other)?,
            audience: None,
            _dir: Some(tmp),
        };
        m.spawn().await?;
        Ok(m)
    }

    /// Starts one of several replicas of our relay sharing the database at
    /// `db_url` (PostgreSQL) and accepting signatures for `audience`, as
    /// behind a load balancer.
    pub async fn start_replica(bin: &Path, db_url: &str, audience: &str) -> io::Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix("retalk-bench-replica-")
            .tempdir()?;
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        let mut m = Managed {
            kind: Kind::Ours,
            bin: bin.to_owned(),
            db: PathBuf::from(db_url),
            log: tmp.path().join("relay.log"),
            port,
            child: None,
            relay: Relay::new(&url, Some(audience)).map_err(io::Error::other)?,
            audience: Some(audience.to_owned()),
            _dir: Some(tmp),
        };
        m.spawn().await?;
        Ok(m)
    }

    /// Starts the process (again) on the same port and database.
    pub async fn spawn(&mut self) -> io::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let url = self
            .audience
            .clone()
            .unwrap_or_else(|| self.relay.target.url.clone());
        let port = self.port.to_string();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(&self.bin);
        match self.kind {
            Kind::Ours => {
                cmd.args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port,
                    "--audience",
                    &url,
                    "--db",
                ])
                .arg(&self.db);
            }
            Kind::Python => {
                // 0.0.1 reads SERVER_*, 0.3.x RETALK_SERVER_*; set both so
                // either generation runs the same way.
                for prefix in ["SERVER_", "RETALK_SERVER_"] {
                    cmd.env(format!("{prefix}HOST"), "127.0.0.1")
                        .env(format!("{prefix}PORT"), &port)
                        .env(format!("{prefix}AUDIENCE"), &url)
                        .env(format!("{prefix}DB"), &self.db);
                }
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.child = Some(cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start {}: {e}", self.bin.display()),
            )
        })?);
        let ready = wait_listening(&self.relay.target, Duration::from_secs(30)).await;
        if let Err(e) = ready {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            self.stop();
            return Err(io::Error::other(format!(
                "relay {} did not start listening: {e}\n{log}",
                self.bin.display()
            )));
        }
        Ok(())
    }

    /// Restarts the relay (same port and database) so that it accepts
    /// requests signed for `audience` (a forwarder's URL) instead of its own.
    /// The bench's own requests to it are not usable afterwards.
    pub async fn restart_with_audience(&mut self, audience: &str) -> io::Result<()> {
        self.stop();
        self.audience = Some(audience.to_owned());
        self.spawn().await
    }

    /// Stops the process (SIGTERM, then SIGKILL after 10 s) and waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        for _ in 0..200 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The relay's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The relay's current memory.
    pub fn memory(&self) -> io::Result<Memory> {
        memory(
            self.pid()
                .ok_or_else(|| io::Error::other("relay not running"))?,
        )
    }
}

impl Drop for Managed {
    /// Stops the relay; if its log reports errors, shows them, since the
    /// log goes away with the temporary directory and a refusal counted in
    /// a table says nothing about its cause.
    fn drop(&mut self) {
        self.stop();
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("Traceback") || l.contains("panicked"))
            .collect();
        if !errors.is_empty() {
            eprintln!(
                "{} relay log had {} error line(s); the last ones:",
                self.kind.label(),
                errors.len()
            );
            for l in errors.iter().rev().take(5).rev() {
                eprintln!("  {l}");
            }
        }
    }
}
