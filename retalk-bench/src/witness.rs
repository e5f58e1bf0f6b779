//! A loopback TCP forwarder in front of a relay that notes the moment the
//! relay answers each `send_message`.
//!
//! Delivery latency is measured from "the sender's request returned" to
//! "the receiver has the message". Inside this process that moment is
//! known; for the real CLI it happens inside a `retalk send` process, which
//! then goes on to save its state and exit. The clients therefore talk to
//! the relay through this forwarder (the relay is told to accept the
//! forwarder's URL as its audience), and the forwarder timestamps the first
//! byte of the relay's answer to any request whose bytes mention
//! `send_message`, before passing it on. The forwarder also delays every
//! answer the receiver gets by one loopback hop, so the figure it yields errs
//! on the long side.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The running forwarder. It lives (on plain threads, so it keeps working
/// while the caller blocks on child processes) until the process ends.
pub struct Witness {
    url: String,
    answers: Arc<Mutex<Vec<Instant>>>,
}

const NEEDLE: &[u8] = b"send_message";

impl Witness {
    /// Listens on a free loopback port and forwards every connection to
    /// `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<Witness> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let answers = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&answers);
        std::thread::Builder::new()
            .name("witness-accept".into())
            .spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    let seen = Arc::clone(&seen);
                    let _ = std::thread::Builder::new()
                        .name("witness-conn".into())
                        .spawn(move || {
                            let _ = forward(client, upstream, &seen);
                        });
                }
            })?;
        Ok(Witness { url, answers })
    }

    /// The URL clients use instead of the relay's.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Forgets the answers noted so far.
    pub fn clear(&self) {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The latest `send_message` answer noted since [`Witness::clear`].
    pub fn last_send_answer(&self) -> Option<Instant> {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .copied()
    }
}

/// Copies both ways until either side closes. HTTP/1.1 keep-alive is
/// sequential, so "a request mentioning send_message went up" followed by
/// "bytes came down" is that request's answer.
fn forward(client: TcpStream, upstream: SocketAddr, seen: &Mutex<Vec<Instant>>) -> io::Result<()> {
    let relay = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    relay.set_nodelay(true)?;
    let pending = Arc::new(AtomicBool::new(false));
    let (mut client_r, mut relay_w) = (client.try_clone()?, relay.try_clone()?);
    let up_pending = Arc::clone(&pending);
    let up = std::thread::Builder::new()
        .name("witness-up".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            // The needle may straddle two reads: keep the previous tail.
            let mut tail: Vec<u8> = Vec::new();
            loop {
                let n = match client_r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                tail.extend_from_slice(&buf[..n]);
                if tail.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
                    up_pending.store(true, Ordering::SeqCst);
                }
                let keep = tail.len().saturating_sub(NEEDLE.len() - 1);
                tail.drain(..keep);
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
        if pending.swap(false, Ordering::SeqCst) {
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Instant::now());
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
    fn notes_the_answer_to_a_request_that_mentions_send_message() {
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
        let port = w.url().rsplit(':').next().unwrap().parse::<u16>().unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 16];
        c.write_all(b"{\"tool\": \"count_keys\"}").unwrap();
        let n = c.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first");
        assert_eq!(w.last_send_answer(), None);
        let before = Instant::now();
        c.write_all(b"{\"tool\": \"send_").unwrap();
        c.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.write_all(b"message\"}").unwrap();
        let n = c.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"second");
        assert!(w.last_send_answer().is_some_and(|t| t >= before));
        w.clear();
        assert_eq!(w.last_send_answer(), None);
    }
}
