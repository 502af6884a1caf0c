//! Helpers for tests that run the real `tend` binary against the fixture program.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const TEND: &str = env!("CARGO_BIN_EXE_tend");
pub const FIXTURE: &str = env!("CARGO_BIN_EXE_tend-fixture");

/// Polls `cond` until it holds or `within` passes. Never a bare sleep-and-hope.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A test's own directory with a config in it.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `svc.toml`; `{fixture}` in the text becomes the fixture's path.
    pub fn config(&self, text: &str) -> PathBuf {
        let p = self.path("svc.toml");
        std::fs::write(&p, text.replace("{fixture}", FIXTURE)).expect("write config");
        p
    }

    /// `tend <args>` with stdout and stderr going to files in the test dir.
    pub fn spawn(&self, args: &[&str]) -> Tend {
        let out = std::fs::File::create(self.path("tend.out")).expect("out");
        let err = std::fs::File::create(self.path("tend.err")).expect("err");
        let child = Command::new(TEND)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn tend");
        Tend {
            child,
            err: self.path("tend.err"),
        }
    }

    /// Runs `tend <args>` to completion (bounded) and returns (code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut t = self.spawn(args);
        let status = t.wait_exit(Duration::from_secs(60)).expect("tend finished");
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(self.path("tend.out")).unwrap_or_default(),
            t.stderr(),
        )
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// The pids a fixture wrote with --pid-file, by role.
    pub fn pids(&self, file: &str) -> Vec<(String, i32)> {
        self.read(file)
            .lines()
            .filter_map(|l| {
                let (role, pid) = l.split_once(' ')?;
                Some((role.to_owned(), pid.trim().parse().ok()?))
            })
            .collect()
    }
}

pub struct Tend {
    pub child: Child,
    err: PathBuf,
}

impl Tend {
    /// A `tend` started some other way (e.g. under `unshare`) whose stderr goes to `err`.
    pub fn from_child(child: Child, err: PathBuf) -> Self {
        Self { child, err }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn wait_stderr(&self, needle: &str, within: Duration) -> bool {
        wait_until(within, || self.stderr().contains(needle))
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(within, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("signal tend");
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `pid` is a live process. A zombie counts as dead: it runs nothing and only
/// waits for its parent (or init) to reap it.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("?");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

pub fn file_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// A loopback port that was free a moment ago (bound, then released), for a program under
/// test to listen on, or, left alone, for a client to find nothing listening.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// One request as [`HttpSink`] received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
}

/// Reads one HTTP/1.1 request, head and `Content-Length` body, from `s` (plain TCP or a TLS
/// stream); `None` if it ends, or fails, before the head is complete.
pub fn read_request(s: &mut impl std::io::Read) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
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
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(Received { head, body })
}

/// A loopback HTTP server that answers every request `204 No Content` and keeps what it
/// received (a webhook receiver).
pub struct HttpSink {
    pub port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

/// Binds a loopback port and hands every connection to it to `handle`, one at a time, on a
/// thread of its own that ends with the test process (the listener is never closed
/// before). A client that stalls is cut off after 5 s of silence. Returns the port.
pub fn serve(handle: impl Fn(std::net::TcpStream) + Send + 'static) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            handle(s);
        }
    });
    port
}

impl HttpSink {
    pub fn start() -> Self {
        use std::io::Write as _;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = seen.clone();
        let port = serve(move |mut s| {
            let Some(received) = read_request(&mut s) else {
                return;
            };
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            keep.lock().unwrap().push(received);
        });
        Self { port, seen }
    }

    pub fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// The JSON bodies received so far.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.received()
            .iter()
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect()
    }
}
