//! Crash injection for tests: a build with the `failpoints` feature dies on
//! the spot when it reaches the point named by the `RETALK_CRASH_AT`
//! environment variable. The feature is off by default (the test kit turns
//! it on for the test suites), so normal builds never read the variable.
//!
//! The receive pipeline promises that nothing is lost whatever instant the
//! process dies at; the tests prove it by running a child process with
//! `RETALK_CRASH_AT` set to each point and then receiving normally. The
//! process aborts (no destructors, no flushing), which is as close to
//! `kill -9` as a program can do to itself. Without the feature this
//! compiles to nothing.

/// Dies here if `RETALK_CRASH_AT` names this point (`failpoints` builds
/// only).
#[inline]
pub(crate) fn hit(point: &str) {
    #[cfg(feature = "failpoints")]
    if std::env::var("RETALK_CRASH_AT").is_ok_and(|p| p == point) {
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = point;
}
