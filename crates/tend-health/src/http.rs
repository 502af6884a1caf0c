//! A minimal HTTP/1.1 client (GET for probes, POST for webhooks) and the request-head reader
//! of the metrics listener, written on `tokio::net` directly.
//!
//! Why not reqwest or hyper: tend ships as one static binary, and all it needs is one request
//! on a fresh connection to a (usually loopback) endpoint, reading nothing but the status
//! line. hyper + its body/service stack would roughly double the binary for that, and TLS
//! (which is what makes a real client big) is deliberately out of scope: health endpoints are
//! local, and for a remote webhook `notify.command` can call `curl`. So: `http://` only,
//! `Connection: close`, no redirects, no keep-alive, no chunked bodies, the whole exchange
//! bounded by one timeout.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::fmt::duration as human;

// The URL type is pure and parsed at config time, so it lives in tend-core.
pub use tend_core::health::{HttpUrl, UrlError};

/// How much of a response (or request) head is read before giving up on it.
const MAX_HEAD: usize = 8 * 1024;

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
}

impl Response {
    /// 2xx.
    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
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

/// `GET url`, bounded by `timeout`.
///
/// # Errors
/// Resolution, connection, I/O, a malformed status line, or the timeout.
pub async fn get(url: &HttpUrl, timeout: Duration) -> Result<Response, HttpError> {
    request(url, "GET", None, timeout).await
}

/// `POST url` with a JSON body, bounded by `timeout`.
///
/// # Errors
/// As [`get`].
pub async fn post_json(
    url: &HttpUrl,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    request(url, "POST", Some(("application/json", body)), timeout).await
}

async fn request(
    url: &HttpUrl,
    method: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let began = Instant::now();
    let exchange = async {
        let mut stream = connect(url.host(), url.port()).await?;
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
        stream.write_all(&wire).await.map_err(HttpError::Send)?;
        let status = read_status(&mut stream).await?;
        // The body is not read: only the status matters, and the connection is closed
        // either way (`Connection: close`).
        Ok(status)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(status)) => Ok(Response {
            status,
            took: began.elapsed(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(HttpError::TimedOut { after: timeout }),
    }
}

/// Reads up to the end of the status line and parses its code.
async fn read_status(stream: &mut TcpStream) -> Result<u16, HttpError> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&buf[..end]);
            return parse_status_line(line.trim_end_matches('\r'));
        }
        if buf.len() >= MAX_HEAD {
            return Err(HttpError::Malformed(snippet(&buf)));
        }
        let n = stream.read(&mut chunk).await.map_err(HttpError::Receive)?;
        if n == 0 {
            return if buf.is_empty() {
                Err(HttpError::Closed)
            } else {
                Err(HttpError::Malformed(snippet(&buf)))
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
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
    fn request_lines() {
        let r = parse_request_line("GET /metrics?x=1 HTTP/1.1").unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/metrics"));
        assert!(parse_request_line("GET /metrics").is_none());
        assert!(parse_request_line("get / HTTP/1.1").is_none());
        assert!(parse_request_line("GET / HTTP/2 extra").is_none());
    }
}
