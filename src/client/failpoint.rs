//! Crash injection for tests: a debug build dies on the spot when it reaches
//! the point named by the `RETALK_CRASH_AT` environment variable.
//!
//! The receive pipeline promises that nothing is lost whatever instant the
//! process dies at; the tests prove it by running a child process with
//! `RETALK_CRASH_AT` set to each point and then receiving normally. The
//! process aborts (no destructors, no flushing), which is as close to
//! `kill -9` as a program can do to itself. Release builds compile this to
//! nothing.

/// Dies here if `RETALK_CRASH_AT` names this point (debug builds only).
#[inline]
pub(crate) fn hit(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("RETALK_CRASH_AT").is_ok_and(|p| p == point) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
