//! Bounded waiting: every wait in a test has an end, so a bug shows as a
//! failure rather than a hang.

use std::time::Duration;

/// Upper bound for any single wait in a test.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Waits (bounded) until `cond` holds, polling; for states with no event to
/// await (e.g. the relay's waiter count).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
