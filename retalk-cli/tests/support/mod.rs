//! Test support: a sandbox (HOME, XDG_DATA_HOME, working directory) per
//! test and helpers for running `retalk`; the relay process and line
//! readers are the test kit's (`retalk_testkit::process`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Generous bound for anything that should take milliseconds: the test
/// machine may be busy compiling.
pub const SLOW: Duration = Duration::from_secs(30);

/// The `retalk` binary under test.
pub fn retalk_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_retalk"))
}

/// Line readers come from the test kit.
pub use retalk_testkit::LineReader;

/// A running relay (the test kit's process starter); killed on drop.
pub type Relay = retalk_testkit::RelayProcess;

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
