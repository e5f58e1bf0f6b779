//! A loopback TCP forwarder in front of a relay that notes the moment the
//! relay answers each `send_message`.
//!
//! Delivery latency is measured from "the sender's request returned" to
//! "the receiver has the message". Inside this process that moment is
//! known; for the real CLI it happens inside a `retalk send` process, which
//! then goes on to save its state and exit. The clients therefore talk to
//! the relay through this forwarder (the relay is told to accept the
//! forwarder's URL as its audience), and the forwarder timestamps the first
//! byte of the relay's answer to a `send_message` signed by the sender
//! (the request mentions both), before passing it on. Only the sender's
//! count: a receiver acknowledges what it got with a `send_message` of its
//! own. The forwarder also delays every answer the receiver gets by one
//! loopback hop, so the figure it yields errs on the long side.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The running forwarder. It lives (on plain threads, so it keeps working
/// while the caller blocks on child processes) until the process ends.
pub struct Witness {
    url: String,
    seen: Arc<Seen>,
}

/// What the connections share.
#[derive(Default)]
struct Seen {
    /// The user id whose `send_message` answers count.
    sender: Mutex<Vec<u8>>,
    /// When those answers came.
    answers: Mutex<Vec<Instant>>,
}

const TOOL: &[u8] = b"send_message";

impl Witness {
    /// Listens on a free loopback port and forwards every connection to
    /// `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<Witness> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let seen = Arc::new(Seen::default());
        let shared = Arc::clone(&seen);
        std::thread::Builder::new()
            .name("witness-accept".into())
            .spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    let seen = Arc::clone(&shared);
                    let _ = std::thread::Builder::new()
                        .name("witness-conn".into())
                        .spawn(move || {
                            let _ = forward(client, upstream, &seen);
                        });
                }
            })?;
        Ok(Witness { url, seen })
    }

    /// Counts only `send_message` requests signed by `user_id` from now on.
    pub fn watch_sender(&self, user_id: &str) {
        *lock(&self.seen.sender) = user_id.as_bytes().to_vec();
    }

    /// The URL clients use instead of the relay's.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Forgets the answers noted so far.
    pub fn clear(&self) {
        lock(&self.seen.answers).clear();
    }

    /// The latest `send_message` answer noted since [`Witness::clear`].
    pub fn last_send_answer(&self) -> Option<Instant> {
        lock(&self.seen.answers).last().copied()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `request` names `user` as its signer: the id as the value of
/// the auth's `user_id` (0.0.1) or `fingerprint` (0.3.x), however the JSON
/// is spaced, not merely anywhere (a receipt sent back to the sender names
/// the sender as its `to`).
fn signed_by(request: &[u8], user: &[u8]) -> bool {
    if user.is_empty() {
        return false;
    }
    (0..request.len().saturating_sub(user.len() - 1))
        .filter(|&i| request[i..].starts_with(user))
        .any(|i| {
            let before = request[..i].trim_ascii_end();
            let before = before
                .strip_suffix(b"\"")
                .unwrap_or(before)
                .trim_ascii_end();
            let Some(before) = before.strip_suffix(b":") else {
                return false;
            };
            let key = before.trim_ascii_end();
            key.ends_with(b"\"user_id\"") || key.ends_with(b"\"fingerprint\"")
        })
}

/// Largest request kept for matching (ours are a few KiB).
const MAX_KEPT: usize = 1 << 20;

/// Copies both ways until either side closes. HTTP/1.1 keep-alive is
/// sequential, so "a matching request went up" followed by "bytes came
/// down" is that request's answer, and the next bytes up start a new
/// request.
fn forward(client: TcpStream, upstream: SocketAddr, seen: &Arc<Seen>) -> io::Result<()> {
    let relay = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    relay.set_nodelay(true)?;
    // Set when the request going up matches; cleared (and the request
    // buffer with it) when its answer comes down.
    let pending = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicBool::new(false));
    let (mut client_r, mut relay_w) = (client.try_clone()?, relay.try_clone()?);
    let (up_pending, up_answered, up_seen) = (
        Arc::clone(&pending),
        Arc::clone(&answered),
        Arc::clone(seen),
    );
    let up = std::thread::Builder::new()
        .name("witness-up".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            // The current request so far (the needles may straddle reads).
            let mut request: Vec<u8> = Vec::new();
            loop {
                let n = match client_r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if up_answered.swap(false, Ordering::SeqCst) {
                    request.clear();
                }
                if request.len() < MAX_KEPT {
                    request.extend_from_slice(&buf[..n]);
                }
                let sender = lock(&up_seen.sender).clone();
                if contains(&request, TOOL) && signed_by(&request, &sender) {
                    up_pending.store(true, Ordering::SeqCst);
                }
                if relay_w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = relay_w.shutdown(Shutdown::Write);
        })?;
    let (mut relay_r, mut client_w) = (relay, client);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match relay_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        answered.store(true, Ordering::SeqCst);
        if pending.swap(false, Ordering::SeqCst) {
            lock(&seen.answers).push(now);
        }
        if client_w.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = client_w.shutdown(Shutdown::Both);
    let _ = up.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_is_the_auth_id_in_either_dialect_and_spacing() {
        assert!(signed_by(br#"{"auth": {"user_id": "ab12"}}"#, b"ab12"));
        assert!(signed_by(br#"{"auth":{"fingerprint":"ab12"}}"#, b"ab12"));
        assert!(!signed_by(br#"{"args": {"to": "ab12"}}"#, b"ab12"));
        assert!(!signed_by(br#"{"auth": {"user_id": "cd34"}}"#, b"ab12"));
        assert!(!signed_by(br#"{"auth": {"user_id": "ab12"}}"#, b""));
    }

    #[test]
    fn notes_answers_to_the_senders_send_message_only() {
        let relay = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = relay.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = relay.accept().unwrap();
            let mut buf = [0u8; 256];
            for answer in [&b"first"[..], b"second"] {
                // Answer once the whole request (ending in '}') is in.
                loop {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0);
                    if buf[..n].ends_with(b"}") {
                        break;
                    }
                }
                s.write_all(answer).unwrap();
            }
        });
        let w = Witness::start(addr).unwrap();
        w.watch_sender("alice");
        let port = w.url().rsplit(':').next().unwrap().parse::<u16>().unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 16];
        // Another user's send_message does not count, even to the sender.
        c.write_all(b"{\"tool\": \"send_message\", \"args\": {\"to\": \"alice\"}, \"auth\": {\"user_id\": \"bob\"}}").unwrap();
        let n = c.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first");
        assert_eq!(w.last_send_answer(), None);
        let before = Instant::now();
        c.write_all(b"{\"tool\": \"send_").unwrap();
        c.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.write_all(b"message\", \"auth\": {\"fingerprint\":\"alice\"}}")
            .unwrap();
        let n = c.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"second");
        assert!(w.last_send_answer().is_some_and(|t| t >= before));
        w.clear();
        assert_eq!(w.last_send_answer(), None);
    }
}
