//! A deliberately small HTTP/1.1 client over tokio sockets.
//!
//! A load generator that shares two cores with the relay it measures must
//! spend as little CPU per request as it can, or it measures itself. So the
//! timed phases send request bytes that were fully built (headers included)
//! before the clock started, and parse only what a relay's answer needs:
//! the status, `Content-Length` (or chunked framing), and whether the
//! connection stays open. A general client (reqwest/hyper) would add header
//! maps, pooling and body streams to every request.
//!
//! It also has to speak to the Python reference relay, whose
//! `BaseHTTPRequestHandler` answers in HTTP/1.0 and closes the connection
//! after every response; [`Conn`] reconnects transparently when that happens,
//! and the reconnect is part of the measured latency, as it is for any client
//! of that relay.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where a relay listens: an `http://host:port/path` URL on this machine.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given (the default signature audience).
    pub url: String,
    /// Host name or address to connect to.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Request path (`/` when the URL has none).
    pub path: String,
}

impl Target {
    /// Parses an `http://` URL. TLS is not supported: benchmarks run on
    /// loopback only, and TLS would measure the TLS stack, not the relay.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("relay URL {url:?} must start with http:// (loopback only)"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                p.parse::<u16>()
                    .map_err(|_| format!("bad port in relay URL {url:?}"))?,
            ),
            None => (authority.to_owned(), 80),
        };
        if host.is_empty() {
            return Err(format!("relay URL {url:?} has no host"));
        }
        Ok(Target {
            url: url.trim_end_matches('/').to_owned(),
            host,
            port,
            path: path.to_owned(),
        })
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The complete bytes of a JSON POST to the relay.
    pub fn post(&self, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.path,
            self.host_header(),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    /// The complete bytes of a GET of `path` (relative to the relay URL's
    /// path, e.g. `info`).
    pub fn get(&self, sub: &str) -> Vec<u8> {
        let base = self.path.trim_end_matches('/');
        format!(
            "GET {base}/{sub} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.host_header()
        )
        .into_bytes()
    }
}

/// One parsed response.
#[derive(Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The `error` text of a failed call, or the body as text.
    pub fn error_text(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// One client connection that reconnects when the relay closes it.
pub struct Conn {
    target: Target,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// How many times this connection had to (re)connect.
    pub connects: u64,
    /// Local address to connect from (`None`: the system's choice).
    source: Option<std::net::IpAddr>,
}

/// Connects to `target` from the local address `source` (any port), e.g.
/// 127.0.0.2 on loopback, so a relay sees a client address of its own.
pub async fn connect_from(target: &Target, source: std::net::IpAddr) -> io::Result<TcpStream> {
    let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await?
        .find(|a| a.is_ipv4() == source.is_ipv4())
        .ok_or_else(|| io::Error::other("no address of the source's family"))?;
    let socket = if source.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(std::net::SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

impl Conn {
    /// A connection that connects lazily on first use.
    pub fn new(target: &Target) -> Self {
        Conn {
            target: target.clone(),
            stream: None,
            buf: Vec::new(),
            connects: 0,
            source: None,
        }
    }

    /// A connection from the local address `source` (see [`connect_from`]).
    pub fn from_source(target: &Target, source: Option<std::net::IpAddr>) -> Self {
        Conn {
            source,
            ..Conn::new(target)
        }
    }

    /// Opens the socket now (so connection setup is not timed later).
    pub async fn connect(&mut self) -> io::Result<()> {
        if self.stream.is_none() {
            let s = match self.source {
                Some(ip) => connect_from(&self.target, ip).await?,
                None => TcpStream::connect((self.target.host.as_str(), self.target.port)).await?,
            };
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.connects += 1;
            self.buf.clear();
        }
        Ok(())
    }

    /// Sends one complete request and reads its response.
    ///
    /// If a reused keep-alive connection turns out to be closed before any
    /// response byte arrived (the relay may drop idle connections), it
    /// reconnects and sends once more; a relay that had processed the first
    /// copy would refuse the second as a replay, so this cannot double-count.
    pub async fn request(&mut self, raw: &[u8]) -> io::Result<Response> {
        let reused = self.stream.is_some();
        match self.try_request(raw).await {
            Ok(r) => Ok(r),
            Err(e) if reused && is_stale(&e) => {
                self.stream = None;
                self.try_request(raw).await
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    /// Writes a request without reading its answer (the answer is read later
    /// with [`Conn::read_response`]); used to park long-polling readers.
    pub async fn send_only(&mut self, raw: &[u8]) -> io::Result<()> {
        self.connect().await?;
        let s = self.stream.as_mut().expect("connected");
        s.write_all(raw).await
    }

    /// Reads the answer to a request sent with [`Conn::send_only`].
    pub async fn read_response(&mut self) -> io::Result<Response> {
        let (resp, keep) = self.read_inner().await?;
        if !keep {
            self.stream = None;
        }
        Ok(resp)
    }

    async fn try_request(&mut self, raw: &[u8]) -> io::Result<Response> {
        self.connect().await?;
        self.stream
            .as_mut()
            .expect("connected")
            .write_all(raw)
            .await?;
        self.read_response().await
    }

    async fn fill(&mut self) -> io::Result<usize> {
        let s = self.stream.as_mut().expect("connected");
        let mut chunk = [0u8; 16 * 1024];
        let n = s.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn read_inner(&mut self) -> io::Result<(Response, bool)> {
        // Headers.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    if self.buf.is_empty() {
                        "connection closed before a response"
                    } else {
                        "connection closed inside response headers"
                    },
                ));
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| bad("response headers are not UTF-8"))?
            .to_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.split(' ');
        let version = parts.next().unwrap_or_default();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let mut keep = version == "HTTP/1.1";
        let mut length: Option<usize> = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse().map_err(|_| bad("bad content-length"))?);
            } else if name.eq_ignore_ascii_case("connection") {
                if value.eq_ignore_ascii_case("close") {
                    keep = false;
                } else if value.eq_ignore_ascii_case("keep-alive") {
                    keep = true;
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        self.buf.drain(..head_end);
        let body = if chunked {
            self.read_chunked().await?
        } else if let Some(n) = length {
            while self.buf.len() < n {
                if self.fill().await? == 0 {
                    return Err(bad("connection closed inside response body"));
                }
            }
            self.buf.drain(..n).collect()
        } else {
            // No framing: the body runs to the end of the connection.
            while self.fill().await? != 0 {}
            keep = false;
            std::mem::take(&mut self.buf)
        };
        Ok((Response { status, body }, keep))
    }

    async fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n") {
                    break i;
                }
                if self.fill().await? == 0 {
                    return Err(bad("connection closed inside chunk header"));
                }
            };
            let size_text =
                std::str::from_utf8(&self.buf[..line_end]).map_err(|_| bad("bad chunk size"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                if self.fill().await? == 0 {
                    return Err(bad("connection closed inside chunk"));
                }
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Waits until something accepts TCP connections at `target`.
pub async fn wait_listening(target: &Target, timeout: Duration) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match TcpStream::connect((target.host.as_str(), target.port)).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("http://127.0.0.1:8766").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8766, "/")
        );
        let t = Target::parse("http://[::1]:9/relay/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 9, "/relay/")
        );
        assert_eq!(t.url, "http://[::1]:9/relay");
        assert!(Target::parse("https://x").is_err());
    }

    #[tokio::test]
    async fn reads_length_chunked_and_close_framing() {
        use tokio::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            // First connection: a keep-alive length-framed answer, then a
            // chunked one, then an HTTP/1.0 answer that closes.
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 4096];
            let _ = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]")
                .await
                .unwrap();
            let _ = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.1 400 Bad\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"e\r\n2\r\n\"}\r\n0\r\n\r\n")
                .await
                .unwrap();
            let _ = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n1")
                .await
                .unwrap();
            drop(s);
            let (mut s, _) = l.accept().await.unwrap();
            let _ = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.0 200 OK\r\n\r\nrest").await.unwrap();
        });
        let t = Target::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let mut c = Conn::new(&t);
        let req = t.post(b"{}");
        let r = c.request(&req).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"[]"[..]));
        let r = c.request(&req).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (400, &b"{\"e\"}"[..]));
        let r = c.request(&req).await.unwrap();
        assert_eq!(r.body, b"1");
        let r = c.request(&req).await.unwrap();
        assert_eq!(r.body, b"rest");
        assert_eq!(c.connects, 2);
    }
}
