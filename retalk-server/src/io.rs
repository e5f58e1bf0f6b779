//! A socket wrapper that gives up on a peer that stops reading.
//!
//! Header and body read timeouts (hyper's and ours) cover slow senders; this
//! covers the other direction. A client that requests a large mailbox and
//! then never reads the answer would otherwise hold its connection and the
//! answer's memory forever. Any write that makes no progress for the
//! timeout fails with `TimedOut`, and hyper closes the connection.
//!
//! It also gives hyper's own answers to unparsable requests (an empty 400,
//! 414 or 431, written before any of our code runs) the JSON error body
//! every other refusal has: such an answer is recognised by its head (a
//! 4xx with `connection: close` and `content-length: 0`, which the relay's
//! own answers never are) and replaced as it is written.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `S` with a timeout on stalled writes.
pub struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    /// A replacement answer still to be written, and how much of it is.
    pending: Option<(Vec<u8>, usize)>,
}

/// The JSON answer replacing hyper's empty one for a parse error, if `buf`
/// is such an answer.
fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    const TAIL: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\n";
    if buf.len() > 512 || !buf.starts_with(b"HTTP/1.1 4") || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    if !buf.windows(TAIL.len()).any(|w| w == TAIL) {
        return None;
    }
    let (line, text) = match &buf[9..12] {
        b"400" => (
            "400 Bad Request",
            "malformed HTTP request (request line, a header, Content-Length or \
             Transfer-Encoding): POST a JSON tool call with a Content-Length or a chunked body",
        ),
        b"414" => ("414 URI Too Long", "request URI too long"),
        b"431" => (
            "431 Request Header Fields Too Large",
            "request headers too large or too many",
        ),
        _ => return None,
    };
    let body = format!("{{\"error\":\"{text}\"}}");
    Some(
        format!(
            "HTTP/1.1 {line}\r\ncontent-type: application/json\r\nconnection: close\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<S> WriteTimeout<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, timeout: Duration) -> Self {
        WriteTimeout {
            inner,
            timeout,
            stalled: None,
            pending: None,
        }
    }

    /// Turns a pending write into an error once it has stalled too long.
    fn on_pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(&mut self, r: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.on_pending(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> WriteTimeout<S> {
    /// Writes what is left of a replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.pending {
            if *done == bytes.len() {
                self.pending = None;
                break;
            }
            let r = Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]);
            match r {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.stalled = None;
                    if let Some((_, done)) = &mut self.pending {
                        *done += n;
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return self.on_pending(cx),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_some() {
            return match self.drain(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            };
        }
        if let Some(answer) = replacement(buf) {
            self.pending = Some((answer, 0));
            return match self.drain(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                // Taken: the rest goes out on the next write or flush.
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty());
        if self.pending.is_some() || first.is_some_and(|b| replacement(b).is_some()) {
            return match first {
                Some(b) => self.poll_write(cx, b),
                None => self.poll_write(cx, &[]),
            };
        }
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
