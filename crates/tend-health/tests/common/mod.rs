//! Helpers shared by the integration tests: tiny loopback servers and condition waits.
//! Nothing here sleeps and hopes: waits poll a condition up to a deadline.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses a different subset"
)]

pub mod https;
pub mod prom;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A request as a test server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub head: String,
    pub body: Vec<u8>,
}

/// Reads one request (head, and a body of Content-Length bytes), plain or over TLS.
pub async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen { head, body })
}

/// A server on 127.0.0.1 that answers the n-th connection with `responses[n]` (raw bytes,
/// written as is) and reports every request it read. After the list, it stops accepting.
pub async fn http_server(
    responses: Vec<&'static str>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    tend_health::init_network().expect("WSAStartup");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for response in responses {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            if let Some(seen) = read_request(&mut stream).await {
                let _ = tx.send(seen);
            }
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (addr, rx)
}

/// A server that accepts connections and never answers (holding them open).
pub async fn silent_server() -> SocketAddr {
    tend_health::init_network().expect("WSAStartup");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port() -> SocketAddr {
    tend_health::init_network().expect("WSAStartup");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// Polls `cond` every 10 ms until it holds or `within` passes; returns whether it held.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Receives the next item or fails the test after `within`.
pub async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, within: Duration) -> T {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("nothing arrived in time")
        .expect("channel closed")
}
