//! The header read timeout's clock: one timer per connection, re-armed
//! only when it fires.
//!
//! hyper bounds the reading of every request head with a fresh sleep from
//! its [`Timer`], dropped as soon as the head is read. With tokio's timer
//! that is a timer-wheel insertion and removal per request, and the
//! insertion often wakes the thread parked in the I/O driver (a write to
//! its eventfd, then that thread's wake-up) to recompute its timeout: 0.4
//! such writes per `send_message` at 64 connections (docs/benchmarks.md,
//! round 4).
//!
//! Here a connection's sleeps share one tokio timer. A new sleep only
//! records its deadline; the shared timer stays armed at an earlier one (a
//! previous request's), and when that fires, the sleep whose deadline has
//! not come re-arms it at its own. So a busy connection touches the timer
//! wheel about once per timeout period instead of once per request, and
//! every deadline still fires on time: never before it (the deadline is
//! checked against the clock) and not later than tokio would have.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::rt::{Sleep, Timer};

/// The clock: tokio's (the same as the system's, except in tests that
/// pause time), as hyper's own tokio timer uses.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A [`Timer`] for one connection (make one per connection).
#[derive(Clone, Default)]
pub struct ConnTimer {
    shared: Arc<Mutex<Option<Armed>>>,
}

/// The connection's tokio timer and the deadline it is armed at.
struct Armed {
    sleep: Pin<Box<tokio::time::Sleep>>,
    at: Instant,
}

impl ConnTimer {
    /// A timer with nothing armed yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Timer for ConnTimer {
    fn sleep(&self, duration: std::time::Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(LazySleep {
            deadline,
            shared: Arc::clone(&self.shared),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<LazySleep>() {
            Some(mut lazy) => lazy.deadline = new_deadline,
            None => *sleep = self.sleep_until(new_deadline),
        }
    }

    fn now(&self) -> Instant {
        now()
    }
}

/// One of a connection's sleeps: done once its deadline has passed.
struct LazySleep {
    deadline: Instant,
    shared: Arc<Mutex<Option<Armed>>>,
}

impl Future for LazySleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        if now() >= deadline {
            return Poll::Ready(());
        }
        // One task per connection polls these, so the lock is never
        // contended; a panic elsewhere cannot leave the timer unusable.
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let armed = shared.get_or_insert_with(|| Armed {
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
            at: deadline,
        });
        // Armed later than this deadline (only if the timeout shrank):
        // bring it forward.
        if armed.at > deadline {
            armed.sleep.as_mut().reset(deadline.into());
            armed.at = deadline;
        }
        // Fired at an earlier deadline: re-arm at this one. At most twice
        // round, since the second arming is in the future.
        while armed.sleep.as_mut().poll(cx).is_ready() {
            if now() >= deadline {
                return Poll::Ready(());
            }
            armed.sleep.as_mut().reset(deadline.into());
            armed.at = deadline;
        }
        Poll::Pending
    }
}

impl Sleep for LazySleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Sleeps end at their deadline, not before, whether the shared timer
    /// is armed earlier (re-armed when it fires), later (brought forward)
    /// or not at all.
    #[tokio::test(start_paused = true)]
    async fn every_sleep_ends_at_its_own_deadline() {
        let timer = ConnTimer::new();
        let ms = |n| Duration::from_millis(n);

        // Nothing armed: ends on time.
        ends_after(timer.sleep(ms(100)), ms(100)).await;

        // The shared timer armed at an earlier deadline, then a later sleep:
        // the early firing does not end it.
        let mut early = timer.sleep(ms(50));
        assert!(futures_poll(early.as_mut()).is_pending());
        drop(early);
        ends_after(timer.sleep(ms(300)), ms(300)).await;

        // Armed later than a new, shorter sleep: brought forward.
        let mut long = timer.sleep(ms(10_000));
        assert!(futures_poll(long.as_mut()).is_pending());
        drop(long);
        ends_after(timer.sleep(ms(20)), ms(20)).await;

        // hyper's reset moves a sleep's deadline.
        let mut sleep = timer.sleep(ms(10_000));
        timer.reset(&mut sleep, now() + ms(40));
        ends_after(sleep, ms(40)).await;
    }

    /// Awaits `sleep` on the paused clock: it must end at `due`, not before
    /// and less than 50 ms after.
    async fn ends_after(sleep: Pin<Box<dyn Sleep>>, due: Duration) {
        let begin = tokio::time::Instant::now();
        sleep.await;
        let took = begin.elapsed();
        assert!(
            took >= due && took < due + Duration::from_millis(50),
            "due after {due:?}, ended after {took:?}"
        );
    }

    fn futures_poll<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
        let waker = std::task::Waker::noop();
        f.poll(&mut Context::from_waker(waker))
    }
}
