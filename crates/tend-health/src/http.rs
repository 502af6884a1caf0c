//! A minimal HTTP/1.1 client (GET for probes, POST for webhooks), over plain TCP or TLS, and
//! the request-head reader of the metrics listener, written on `tokio::net` directly.
//!
//! Why not reqwest or hyper: tend ships as one static binary, and all it needs is one request
//! on a fresh connection, reading the status line (and, for a webhook, a small body). hyper +
//! its body/service stack would add far more than the HTTP it would save. So: one request per
//! connection, `Connection: close`, no keep-alive, no redirects (a `3xx` is reported as it
//! is: for a probe it is unhealthy, which usually means a wrong URL), and the whole exchange
//! bounded by one timeout. TLS is rustls (see [`crate::tls`] for the choice).
//!
//! **Where an https exchange runs.** Certificate verification happens synchronously inside
//! the handshake, and on Windows it is the OS's chain engine, which may go to the network
//! (revocation, missing intermediates) for seconds. tend supervises on a single-threaded
//! runtime that must never stall, so every https exchange runs on a short-lived thread of its
//! own with its own small runtime; the caller awaits the answer, bounded by the same timeout.
//! A thread per request is cheap next to a TLS handshake, and costs nothing between probes.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::fmt::duration as human;
use crate::tls::{self, TlsClient, TlsError, TlsOptions};

// The URL type is pure and parsed at config time, so it lives in tend-core.
pub use tend_core::health::{HttpUrl, UrlError};

/// How much of a response (or request) head is read before giving up on it.
const MAX_HEAD: usize = 8 * 1024;

/// How much of a response body is kept (webhook answers are a few dozen bytes).
const MAX_BODY: usize = 64 * 1024;

/// How long a body that is only wanted for an error message may take to arrive.
const BODY_GRACE: Duration = Duration::from_secs(2);

/// What went wrong with a connection or an exchange. The `Display` text is what a probe
/// reports as its reason, so it is written for the operator.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// the name
        host: String,
        /// the resolver's error
        source: io::Error,
    },
    /// The name resolved to nothing.
    #[error("cannot resolve {host}: no addresses")]
    NoAddress {
        /// the name
        host: String,
    },
    /// Nothing listens there (every resolved address refused).
    #[error("connect refused ({addr})")]
    Refused {
        /// the last address tried
        addr: SocketAddr,
    },
    /// Another connect error (unreachable network, ...).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// the last address tried
        addr: SocketAddr,
        /// the error
        source: io::Error,
    },
    /// TLS could not be set up, or the handshake failed (an untrusted certificate, a name
    /// mismatch, a peer that does not speak TLS).
    #[error("TLS: {source} for {host}")]
    Tls {
        /// the URL's host, as the certificate was checked against it
        host: String,
        /// what failed
        source: TlsError,
    },
    /// The thread of an https exchange could not be started.
    #[error("cannot start the https exchange: {0}")]
    Thread(io::Error),
    /// The whole exchange took longer than allowed.
    #[error("timed out after {}", human(*.after))]
    TimedOut {
        /// the limit
        after: Duration,
    },
    /// Writing the request failed.
    #[error("cannot send the request: {0}")]
    Send(io::Error),
    /// Reading the response failed (typically a reset).
    #[error("connection failed before a response: {0}")]
    Receive(io::Error),
    /// The peer closed without sending a status line.
    #[error("connection closed before a response")]
    Closed,
    /// The first line is not `HTTP/1.x NNN ...`.
    #[error("not an HTTP response: {0:?}")]
    Malformed(String),
}

/// The part of a response tend looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// From before connecting until the status line was read.
    pub took: Duration,
    /// The body (at most 64 KiB), when it was asked for ([`BodyPolicy`]); empty otherwise.
    pub body: Vec<u8>,
}

impl Response {
    /// 2xx.
    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Whether the response body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPolicy {
    /// Never: only the status line matters (probes).
    Skip,
    /// For a non-2xx status, best effort, for the error message (`HTTP 400: no_text`).
    OnError,
    /// Always (a receiver that reports errors in a 200's body, as DingTalk, WeCom and
    /// Feishu do); best effort after a non-2xx status.
    Always,
}

/// Sends requests, plain or over TLS with the trust settings of one `[health]` or `[notify]`
/// section. Cheap to clone: the TLS setup (the OS's roots, `ca_file`) is loaded once, on the
/// first https request, and shared.
#[derive(Debug, Clone)]
pub struct HttpClient {
    tls: Arc<TlsClient>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new(TlsOptions::default())
    }
}

impl PartialEq for HttpClient {
    fn eq(&self, other: &Self) -> bool {
        self.tls.options() == other.tls.options()
    }
}

impl Eq for HttpClient {}

impl HttpClient {
    /// A client that trusts per `tls` (`ca_file`, `insecure_skip_verify`) for https URLs.
    #[must_use]
    pub fn new(tls: TlsOptions) -> Self {
        Self {
            tls: Arc::new(TlsClient::new(tls)),
        }
    }

    /// `GET url`, bounded by `timeout`; only the status line is read.
    ///
    /// # Errors
    /// Resolution, connection, TLS, I/O, a malformed status line, or the timeout.
    pub async fn get(&self, url: &HttpUrl, timeout: Duration) -> Result<Response, HttpError> {
        self.request(url, "GET", None, BodyPolicy::Skip, timeout)
            .await
    }

    /// `POST url` with a JSON body, bounded by `timeout`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn post_json(
        &self,
        url: &HttpUrl,
        body: &[u8],
        read_body: BodyPolicy,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        self.request(
            url,
            "POST",
            Some(("application/json", body)),
            read_body,
            timeout,
        )
        .await
    }

    async fn request(
        &self,
        url: &HttpUrl,
        method: &str,
        body: Option<(&str, &[u8])>,
        read_body: BodyPolicy,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let began = Instant::now();
        let wire = request_bytes(url, method, body);
        if url.is_https() {
            return self
                .request_tls(url.clone(), wire, read_body, began, timeout)
                .await;
        }
        let exchange = async {
            let mut stream = connect(url.host(), url.port()).await?;
            exchange(&mut stream, &wire, read_body, began, timeout).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::TimedOut { after: timeout }),
        }
    }

    /// The https exchange, on a thread of its own (see the module's comment).
    async fn request_tls(
        &self,
        url: HttpUrl,
        wire: Vec<u8>,
        read_body: BodyPolicy,
        began: Instant,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let tls = self.tls.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("tend-https".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(HttpError::Thread(e)));
                        return;
                    }
                };
                let result = rt.block_on(async {
                    let exchange = exchange_tls(&tls, &url, &wire, read_body, began, timeout);
                    // Bounded here too, so the thread itself ends after `timeout` (plus at
                    // most one certificate check in progress).
                    match tokio::time::timeout(timeout, exchange).await {
                        Ok(r) => r,
                        Err(_) => Err(HttpError::TimedOut { after: timeout }),
                    }
                });
                // The caller may have stopped waiting (its own timeout): nothing to do then.
                let _ = tx.send(result);
                // A name lookup still running (getaddrinfo cannot be cancelled) is left to
                // finish on its own instead of holding this thread.
                rt.shutdown_background();
            })
            .map_err(HttpError::Thread)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            // The thread ended without an answer: only a panic does that.
            Ok(Err(_)) => Err(HttpError::Thread(io::Error::other(
                "the https thread ended without an answer",
            ))),
            Err(_) => Err(HttpError::TimedOut { after: timeout }),
        }
    }
}

async fn exchange_tls(
    tls: &TlsClient,
    url: &HttpUrl,
    wire: &[u8],
    read_body: BodyPolicy,
    began: Instant,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let tls_err = |source| HttpError::Tls {
        host: url.host().to_owned(),
        source,
    };
    let config = tls.config().map_err(tls_err)?;
    let name = tls::server_name(url.host()).map_err(tls_err)?;
    let tcp = connect(url.host(), url.port()).await?;
    let mut stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| tls_err(tls::handshake_error(&e)))?;
    exchange(&mut stream, wire, read_body, began, timeout).await
}

/// The request head (and body) as sent.
fn request_bytes(url: &HttpUrl, method: &str, body: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tend/{}\r\nAccept: */*\r\n\
         Connection: close\r\n",
        url.target(),
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
    );
    if let Some((kind, bytes)) = body {
        head.push_str(&format!(
            "Content-Type: {kind}\r\nContent-Length: {}\r\n",
            bytes.len()
        ));
    }
    head.push_str("\r\n");
    let mut wire = head.into_bytes();
    if let Some((_, bytes)) = body {
        wire.extend_from_slice(bytes);
    }
    wire
}

/// Connects to `host:port`, trying every resolved address in order (`localhost` may resolve
/// to `::1` first while the program listens on 127.0.0.1 only).
pub(crate) async fn connect(host: &str, port: u16) -> Result<TcpStream, HttpError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| HttpError::Resolve {
            host: host.into(),
            source,
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((addr, e)),
        }
    }
    match last {
        None => Err(HttpError::NoAddress { host: host.into() }),
        Some((addr, e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(HttpError::Refused { addr })
        }
        Some((addr, source)) => Err(HttpError::Connect { addr, source }),
    }
}

/// Sends `wire` and reads the answer on an open connection (plain or TLS). `timeout` from
/// `began` is the caller's bound; a body that is only wanted for an error message gets at
/// most [`BODY_GRACE`] of it, and what arrived by then is kept.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    wire: &[u8],
    read_body: BodyPolicy,
    began: Instant,
    timeout: Duration,
) -> Result<Response, HttpError> {
    stream.write_all(wire).await.map_err(HttpError::Send)?;
    stream.flush().await.map_err(HttpError::Send)?;
    let mut buf = Vec::with_capacity(512);
    let status = read_status(stream, &mut buf).await?;
    let took = began.elapsed();
    let success = (200..300).contains(&status);
    let wanted = match read_body {
        BodyPolicy::Skip => false,
        BodyPolicy::OnError => !success,
        BodyPolicy::Always => true,
    };
    let mut body = Vec::new();
    if wanted {
        let left = timeout.saturating_sub(began.elapsed());
        // A 2xx body that was asked for may use the rest of the time; one that only
        // decorates an error message may not hold up the report for long.
        let limit = if success { left } else { left.min(BODY_GRACE) };
        // Cut short (slow, reset, no close_notify): what arrived is kept.
        let _ = tokio::time::timeout(limit, read_body_into(stream, &mut buf, &mut body)).await;
    }
    // The rest is not read: the connection is closed either way (`Connection: close`).
    Ok(Response { status, took, body })
}

/// Reads up to the end of the status line and parses its code; `buf` keeps every byte read.
async fn read_status<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<u16, HttpError> {
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&buf[..end]);
            return parse_status_line(line.trim_end_matches('\r'));
        }
        if buf.len() >= MAX_HEAD {
            return Err(HttpError::Malformed(snippet(buf)));
        }
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS peer that closes without close_notify: the same as a plain close.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(HttpError::Receive(e)),
        };
        if n == 0 {
            return if buf.is_empty() {
                Err(HttpError::Closed)
            } else {
                Err(HttpError::Malformed(snippet(buf)))
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads the rest of the head (`buf` holds what came so far) and then the body into `body`,
/// by `Content-Length`, `chunked`, or up to the close; at most [`MAX_BODY`] bytes. Gives up
/// quietly on anything odd: the body is an extra, never a reason to fail an exchange whose
/// status is known.
async fn read_body_into<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    body: &mut Vec<u8>,
) {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() >= MAX_HEAD {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
    };
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let mut raw = buf[head_end..].to_vec();
    // Raw bytes wanted: the whole body, or (chunked) enough to decode MAX_BODY of it.
    let want = match (chunked, length) {
        (false, Some(n)) => n.min(MAX_BODY),
        _ => MAX_BODY + 1024,
    };
    while raw.len() < want && !(chunked && chunked_complete(&raw)) {
        match stream.read(&mut chunk).await {
            Ok(n) if n > 0 => raw.extend_from_slice(&chunk[..n]),
            // The close ends a body without a length; a TLS close without close_notify too.
            _ => break,
        }
    }
    *body = if chunked { dechunk(&raw) } else { raw };
    body.truncate(MAX_BODY);
}

/// Whether a chunked body has its last (zero-size) chunk.
fn chunked_complete(raw: &[u8]) -> bool {
    let mut rest = raw;
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            return false;
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            // Not chunked after all: stop waiting for the end of it.
            return true;
        };
        if size == 0 {
            return true;
        }
        let next = line_end + 2 + size + 2;
        if rest.len() < next {
            return false;
        }
        rest = &rest[next..];
    }
}

/// The data of a chunked body, as far as it goes.
fn dechunk(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(line_end) = find(rest, b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        let data = &rest[line_end + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[..size.min(data.len())]);
        if data.len() < size + 2 {
            break;
        }
        rest = &data[size + 2..];
    }
    out
}

fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned()
}

/// `HTTP/1.1 200 OK` -> 200. Strict about the shape, lenient about the reason phrase (which
/// may be empty).
pub(crate) fn parse_status_line(line: &str) -> Result<u16, HttpError> {
    let bad = || HttpError::Malformed(line.chars().take(60).collect());
    let rest = line.strip_prefix("HTTP/1.").ok_or_else(bad)?;
    let mut parts = rest.splitn(3, ' ');
    let minor = parts.next().ok_or_else(bad)?;
    let code = parts.next().ok_or_else(bad)?;
    if minor.len() != 1 || !minor.as_bytes()[0].is_ascii_digit() {
        return Err(bad());
    }
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    code.parse().map_err(|_| bad())
}

/// A request line, as the metrics listener sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestLine {
    pub(crate) method: String,
    /// Path without the query.
    pub(crate) path: String,
}

/// Why a request could not be read.
#[derive(Debug)]
pub(crate) enum RequestError {
    /// Closed, reset, or too slow (the caller bounds the time).
    Io,
    /// Not an HTTP/1.x request, or a head over [`MAX_HEAD`].
    Malformed,
}

/// Reads a request head (up to the blank line) and parses its first line. The body, if any,
/// is ignored: the listener serves only `GET`.
pub(crate) async fn read_request(stream: &mut TcpStream) -> Result<RequestLine, RequestError> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n").or_else(|| find(&buf, b"\n\n")) {
            let head = String::from_utf8_lossy(&buf[..end]);
            let first = head.lines().next().unwrap_or_default();
            return parse_request_line(first).ok_or(RequestError::Malformed);
        }
        if buf.len() >= MAX_HEAD {
            return Err(RequestError::Malformed);
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| RequestError::Io)?;
        if n == 0 {
            return Err(RequestError::Io);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn parse_request_line(line: &str) -> Option<RequestLine> {
    let mut parts = line.trim_end_matches('\r').split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || method.is_empty() {
        return None;
    }
    if !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    Some(RequestLine {
        method: method.into(),
        path: path.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let cases = [
            ("HTTP/1.1 200 OK", Some(200)),
            ("HTTP/1.0 503 Service Unavailable", Some(503)),
            ("HTTP/1.1 204", Some(204)),
            ("HTTP/1.1 404 ", Some(404)),
            ("HTTP/2 200 OK", None),
            ("HTTP/1.1 20 OK", None),
            ("HTTP/1.1 2000 OK", None),
            ("SSH-2.0-OpenSSH", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse_status_line(line).ok(), want, "{line:?}");
        }
    }

    #[test]
    fn chunked_bodies() {
        let raw = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        assert!(chunked_complete(raw));
        assert_eq!(dechunk(raw), b"hello, world");
        let partial = b"5\r\nhello\r\n7\r\n, wo";
        assert!(!chunked_complete(partial));
        assert_eq!(dechunk(partial), b"hello, wo");
        assert!(chunked_complete(b"not hex\r\n"));
    }

    #[test]
    fn request_lines() {
        let r = parse_request_line("GET /metrics?x=1 HTTP/1.1").unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/metrics"));
        assert!(parse_request_line("GET /metrics").is_none());
        assert!(parse_request_line("get / HTTP/1.1").is_none());
        assert!(parse_request_line("GET / HTTP/2 extra").is_none());
    }
}
