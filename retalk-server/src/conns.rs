//! Bounds on open connections, so that idle or slow connections cannot
//! exhaust the relay's file descriptors ("accept failed: Too many open
//! files" locked every client out at about 1,000 idle connections).
//!
//! * In all: at most `max` connections. A new connection past it makes the
//!   oldest *idle* one (no request in progress: a keep-alive connection
//!   between requests, or one still sending its request head) close, so
//!   the newcomer is served; if every connection is busy (waiting readers,
//!   requests in progress), the newcomer is closed at once instead.
//! * Per client address: at most `per_ip` (0 = no bound); more are closed
//!   at once.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Default total when none is configured: 80% of the soft open-file limit
/// (the rest is for the database, its log, the metrics listener and
/// accepting), at least 16.
pub fn default_max() -> usize {
    (open_file_limit() * 4 / 5).max(16)
}

/// The soft limit on open files, read from /proc (1,024, the common
/// default, where that is not available).
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(1024)
}

/// One connection's state, shared with its task.
#[derive(Debug, Default)]
pub struct ConnState {
    /// Requests being handled on it right now.
    pub in_flight: AtomicUsize,
    /// Told to close (gracefully: an idle connection closes at once).
    pub close: Notify,
}

/// The accept loop's book of open connections.
#[derive(Debug)]
pub struct Book {
    max: usize,
    per_ip: usize,
    next_id: u64,
    /// By age: the oldest first.
    open: BTreeMap<u64, (IpAddr, Arc<ConnState>)>,
    by_ip: HashMap<IpAddr, usize>,
}

/// What to do with a new connection.
#[derive(Debug)]
pub enum Admit {
    /// Serve it, with this id and state.
    Serve(u64, Arc<ConnState>),
    /// Close it: its address has too many.
    PerAddress,
    /// Close it: full, and nothing idle to shed.
    Full,
}

impl Book {
    /// An empty book.
    pub fn new(max: usize, per_ip: usize) -> Self {
        Book {
            max: max.max(1),
            per_ip,
            next_id: 0,
            open: BTreeMap::new(),
            by_ip: HashMap::new(),
        }
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Asks the oldest idle connection to close; whether there was one.
    pub fn shed_idle(&mut self) -> bool {
        let victim = self
            .open
            .iter()
            .find(|(_, (_, s))| s.in_flight.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                // Forget it now (its task ends shortly), so one shed makes
                // exactly one place.
                if let Some((ip, state)) = self.remove(id) {
                    let _ = ip;
                    state.close.notify_one();
                }
                true
            }
            None => false,
        }
    }

    /// Decides about a connection from `ip`.
    pub fn admit(&mut self, ip: IpAddr) -> Admit {
        if self.per_ip > 0 && self.by_ip.get(&ip).copied().unwrap_or(0) >= self.per_ip {
            return Admit::PerAddress;
        }
        if self.open.len() >= self.max && !self.shed_idle() {
            return Admit::Full;
        }
        let id = self.next_id;
        self.next_id += 1;
        let state = Arc::new(ConnState::default());
        self.open.insert(id, (ip, Arc::clone(&state)));
        *self.by_ip.entry(ip).or_default() += 1;
        Admit::Serve(id, state)
    }

    /// A connection ended (or was shed); forgetting twice is harmless.
    pub fn remove(&mut self, id: u64) -> Option<(IpAddr, Arc<ConnState>)> {
        let (ip, state) = self.open.remove(&id)?;
        if let Some(n) = self.by_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_ip.remove(&ip);
            }
        }
        Some((ip, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_makes_room_and_busy_ones_stay() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut book = Book::new(2, 0);
        let Admit::Serve(a, sa) = book.admit(ip) else {
            panic!()
        };
        let Admit::Serve(_b, sb) = book.admit(ip) else {
            panic!()
        };
        sa.in_flight.store(1, Ordering::Release);
        // Full: b (idle) is shed, a (busy) stays.
        let Admit::Serve(_, sc) = book.admit(ip) else {
            panic!()
        };
        assert_eq!(book.len(), 2);
        assert!(book.open.contains_key(&a));
        // Everything busy: the newcomer is refused.
        sc.in_flight.store(1, Ordering::Release);
        assert!(matches!(book.admit(ip), Admit::Full));
        drop(sb);
    }

    #[test]
    fn one_address_is_bounded_and_others_are_not() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let mut book = Book::new(100, 2);
        let Admit::Serve(first, _) = book.admit(a) else {
            panic!()
        };
        assert!(matches!(book.admit(a), Admit::Serve(..)));
        assert!(matches!(book.admit(a), Admit::PerAddress));
        assert!(matches!(book.admit(b), Admit::Serve(..)));
        book.remove(first);
        assert!(matches!(book.admit(a), Admit::Serve(..)));
    }

    #[test]
    fn the_default_stays_below_the_file_limit() {
        assert!(default_max() < open_file_limit().max(20));
    }
}
