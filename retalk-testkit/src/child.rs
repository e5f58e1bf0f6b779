//! Multi-process tests: a test re-runs its own binary as a child process
//! (to crash it on purpose, or to race two processes on one store).

use crate::PATIENCE;

/// Environment variable that turns a test binary run into a child process
/// of a multi-process test (its value names the role).
pub const CHILD_ROLE: &str = "RETALK_TEST_CHILD";

/// The role of this process when a test re-ran its own binary.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ROLE).ok()
}

/// The harness's name of test `name` in module `module` (pass
/// `module_path!()`): the path without the test binary's crate name, as
/// `--exact` wants it.
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_crate, rest)) => format!("{rest}::{name}"),
        None => name.to_owned(),
    }
}

/// Asserts that a child process was killed by SIGABRT: what a crash
/// injection point does (`std::process::abort`), as opposed to any other
/// failure (a panic exits 101, a timeout is a kill).
#[track_caller]
pub fn assert_aborted(out: &std::process::Output) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "the child should have died by SIGABRT at its crash point: {}",
        output_text(out)
    );
}

/// Runs test `test_name` of this same test binary as a child process with
/// extra environment; returns its exit status and output. Async (tokio's
/// process API) because the relay the child talks to runs on this
/// process's runtime.
pub async fn run_child(test_name: &str, envs: &[(&str, String)]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .expect("child process did not finish in time")
        .unwrap()
}

/// Text of a child's output, for assertion messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
