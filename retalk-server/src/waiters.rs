//! Per-mailbox wake-ups for `read_messages` with `wait`, and the relay-wide
//! shutdown signal that releases every waiter.
//!
//! A waiting reader costs one small map entry (shared by all waiters on the
//! same mailbox) and a parked future: no thread, no timer wheel beyond
//! tokio's, no polling. The writer calls [`Waiters::notify`] after a commit
//! that stored mail for a recipient; entries disappear with their last
//! waiter, so the map holds only mailboxes someone is waiting on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use retalk_proto::UserId;
use tokio::sync::Notify;

struct Entry {
    notify: Arc<Notify>,
    waiters: usize,
}

/// Registry of waiting readers, keyed by mailbox.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<UserId, Entry>>,
    total: AtomicUsize,
}

impl Waiters {
    /// Registers interest in `mailbox`. The caller must create (and
    /// `enable`) a `notified()` future on the guard's [`WaitGuard::notify`]
    /// *before* checking the mailbox, so mail stored between the check and
    /// the wait still wakes it.
    pub fn register(self: &Arc<Self>, mailbox: &UserId) -> WaitGuard {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(mailbox.clone()).or_insert_with(|| Entry {
            notify: Arc::new(Notify::new()),
            waiters: 0,
        });
        entry.waiters += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        WaitGuard {
            registry: Arc::clone(self),
            mailbox: mailbox.clone(),
            notify: Arc::clone(&entry.notify),
        }
    }

    /// Wakes everyone waiting on `mailbox` (no-op when nobody is).
    pub fn notify(&self, mailbox: &UserId) {
        if self.total.load(Ordering::Relaxed) == 0 {
            return;
        }
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.get(mailbox) {
            entry.notify.notify_waiters();
        }
    }

    /// Wakes every waiting reader, to look at its mailbox again (after
    /// wake-ups from elsewhere may have been lost).
    pub fn notify_all(&self) {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        for entry in map.values() {
            entry.notify.notify_waiters();
        }
    }

    /// How many readers are waiting right now.
    pub fn count(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// How many mailboxes have at least one waiter.
    #[cfg(test)]
    pub fn mailboxes(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One waiting reader; dropping it (answer sent, or client gone and its
/// request future dropped) unregisters it.
pub struct WaitGuard {
    registry: Arc<Waiters>,
    mailbox: UserId,
    /// The mailbox's wake-up; see [`Waiters::register`].
    pub notify: Arc<Notify>,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        let mut map = self
            .registry
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.get_mut(&self.mailbox) {
            entry.waiters -= 1;
            if entry.waiters == 0 {
                map.remove(&self.mailbox);
            }
        }
        self.registry.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A one-way, relay-wide "we are stopping" signal.
#[derive(Default)]
pub struct Shutdown {
    fired: AtomicBool,
    notify: Notify,
}

impl Shutdown {
    /// Fires the signal (idempotent).
    pub fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether the signal has fired.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Resolves once the signal has fired (at once if it already has).
    pub async fn wait(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.fired() {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> UserId {
        UserId::parse(&c.to_string().repeat(32), "id").unwrap()
    }

    #[tokio::test]
    async fn notify_wakes_only_that_mailbox_and_guards_clean_up() {
        let w = Arc::new(Waiters::default());
        let a1 = w.register(&id('a'));
        let a2 = w.register(&id('a'));
        let b = w.register(&id('b'));
        assert_eq!((w.count(), w.mailboxes()), (3, 2));

        {
            let na = a1.notify.notified();
            let nb = b.notify.notified();
            tokio::pin!(na, nb);
            na.as_mut().enable();
            nb.as_mut().enable();
            w.notify(&id('a'));
            // `a` was woken before anyone polled; `b` was not.
            assert!(futures_poll(na.as_mut()));
            assert!(!futures_poll(nb.as_mut()));
        }

        drop(a1);
        assert_eq!((w.count(), w.mailboxes()), (2, 2));
        drop(a2);
        drop(b);
        assert_eq!((w.count(), w.mailboxes()), (0, 0));
    }

    fn futures_poll<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let waker = std::task::Waker::from(Arc::new(Noop));
        let mut cx = std::task::Context::from_waker(&waker);
        f.poll(&mut cx).is_ready()
    }

    #[tokio::test]
    async fn shutdown_resolves_before_and_after_firing() {
        let s = Arc::new(Shutdown::default());
        let s2 = Arc::clone(&s);
        let t = tokio::spawn(async move { s2.wait().await });
        tokio::task::yield_now().await;
        s.fire();
        t.await.unwrap();
        s.wait().await;
        assert!(s.fired());
    }
}
