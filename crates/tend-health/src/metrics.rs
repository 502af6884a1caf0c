//! Prometheus metrics: text exposition rendering (pure), an atomically replaced textfile for
//! node_exporter / windows_exporter, and an optional `/metrics` listener.
//!
//! Series, all labelled `service` (the log ones also `stream`):
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `tend_up` | gauge | 1 while the program runs |
//! | `tend_restarts_total` | counter | restarts since this supervisor started |
//! | `tend_last_exit_code` | gauge | exit code of the last run (absent before the first exit) |
//! | `tend_healthy` | gauge | 1 healthy, 0 otherwise (absent without `[health]`) |
//! | `tend_memory_bytes` | gauge | memory of the whole tree (absent when not sampled) |
//! | `tend_cpu_seconds_total` | counter | CPU time of the whole tree |
//! | `tend_log_bytes_total` | counter | bytes written to the logs, per stream |
//! | `tend_log_dropped_bytes_total` | counter | bytes that could not be written, per stream |
//! | `tend_start_time_seconds` | gauge | when the current run started, Unix time (absent while it does not run) |
//! | `tend_crashes_total` | counter | exits nobody asked for, by `reason` (`exit`, a signal name, an NTSTATUS name, `go-panic`, `unhealthy`) |
//! | `tend_gave_up` | gauge | 1 once tend gave up on the program (restart limit), else 0 |
//! | `tend_health_check_duration_seconds` | gauge | how long the last health check took (absent without checks) |
//! | `tend_health_check_success` | gauge | whether the last health check passed (absent without checks) |
//! | `tend_upgrades_total` | counter | `tend upgrade`s of the service by `result` (`upgraded`, `rolled_back`, `broken`), as `tend upgrade` counted them (absent before the first) |
//! | `tend_build_info` | gauge | always 1; labels `version`, `commit`, `target`, `profile` (no `service`) |

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::http::{RequestError, read_request};

/// One log stream's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStreamMetrics {
    /// `out`, `err` (or `combined`).
    pub stream: String,
    /// Bytes written.
    pub bytes_total: u64,
    /// Bytes dropped (disk full, write errors).
    pub dropped_bytes_total: u64,
}

/// What one service exposes. `None` leaves the series out rather than inventing a value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceMetrics {
    /// The service name.
    pub service: String,
    /// The program runs.
    pub up: bool,
    /// Restarts so far.
    pub restarts_total: u64,
    /// The last run's exit code (128+N for a death by signal N, as shells report it).
    pub last_exit_code: Option<i64>,
    /// Healthy or not; `None` without `[health]`.
    pub healthy: Option<bool>,
    /// Memory of the tree at the last sample.
    pub memory_bytes: Option<u64>,
    /// Monotonic CPU seconds of the tree (see `sample::CpuCounter`).
    pub cpu_seconds_total: Option<f64>,
    /// Per log stream.
    pub logs: Vec<LogStreamMetrics>,
    /// When the current run started (Unix time, seconds); `None` while it does not run.
    pub start_time_seconds: Option<f64>,
    /// Exits nobody asked for, by reason (a bounded set of labels), since tend started.
    pub crashes: Vec<(String, u64)>,
    /// tend gave up on the program.
    pub gave_up: bool,
    /// The last health check: how long it took and whether it passed.
    pub last_check: Option<(f64, bool)>,
    /// `tend upgrade`s of the service by result, ever (from its release store).
    pub upgrades: Vec<(String, u64)>,
}

/// Which tend is running, for `tend_build_info` (the usual Prometheus `*_build_info` gauge:
/// join on it to see which version each target runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// The version, e.g. `0.1.0`.
    pub version: String,
    /// The git commit it was built from.
    pub commit: String,
    /// The Rust target triple.
    pub target: String,
    /// `release` or `debug`.
    pub profile: String,
}

static BUILD_INFO: OnceLock<BuildInfo> = OnceLock::new();

/// Sets the build that every later [`render`] reports as `tend_build_info`; the first call
/// wins. It is a constant of the process, so the binary sets it once at start instead of
/// every producer of [`ServiceMetrics`] carrying it.
pub fn set_build_info(info: BuildInfo) {
    let _ = BUILD_INFO.set(info);
}

/// The `tend_build_info` family on its own.
#[must_use]
pub fn render_build_info(info: &BuildInfo) -> String {
    format!(
        "# HELP tend_build_info Which tend is running: version, commit, target and profile (always 1).\n\
         # TYPE tend_build_info gauge\n\
         tend_build_info{} 1\n",
        labels(&[
            ("version", &info.version),
            ("commit", &info.commit),
            ("target", &info.target),
            ("profile", &info.profile),
        ])
    )
}

/// The content type of the text format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// (labels already rendered as `{...}`, value)
    samples: Vec<(String, String)>,
}

/// Renders the text exposition format: per metric family one `# HELP`, one `# TYPE`, then
/// its samples; families without samples are left out. `tend_build_info` comes last, once
/// [`set_build_info`] was called.
#[must_use]
pub fn render(services: &[ServiceMetrics]) -> String {
    let mut families = [
        family(
            "tend_up",
            "gauge",
            "Whether the program is running (1) or not (0).",
        ),
        family(
            "tend_restarts_total",
            "counter",
            "Restarts of the program since tend started supervising it.",
        ),
        family(
            "tend_last_exit_code",
            "gauge",
            "Exit code of the program's last run (128+N after a death by signal N).",
        ),
        family(
            "tend_healthy",
            "gauge",
            "Whether the health checks pass (1) or not (0).",
        ),
        family(
            "tend_memory_bytes",
            "gauge",
            "Memory of the program's whole process tree, in bytes.",
        ),
        family(
            "tend_cpu_seconds_total",
            "counter",
            "CPU time (user + system) of the program's whole process tree, in seconds.",
        ),
        family(
            "tend_log_bytes_total",
            "counter",
            "Bytes of program output written to the log files.",
        ),
        family(
            "tend_log_dropped_bytes_total",
            "counter",
            "Bytes of program output that could not be written to the log files.",
        ),
        family(
            "tend_start_time_seconds",
            "gauge",
            "When the program's current run started, in seconds since the Unix epoch.",
        ),
        family(
            "tend_crashes_total",
            "counter",
            "Exits of the program nobody asked for, by decoded reason.",
        ),
        family(
            "tend_gave_up",
            "gauge",
            "Whether tend gave up on the program after too many restarts (1) or not (0).",
        ),
        family(
            "tend_health_check_duration_seconds",
            "gauge",
            "How long the last health check took, in seconds.",
        ),
        family(
            "tend_health_check_success",
            "gauge",
            "Whether the last health check passed (1) or not (0).",
        ),
        family(
            "tend_upgrades_total",
            "counter",
            "Upgrades of the service (tend upgrade), by result: upgraded, rolled_back, broken.",
        ),
    ];
    for s in services {
        let svc = labels(&[("service", &s.service)]);
        let mut push = |i: usize, labels: &str, value: String| {
            families[i].samples.push((labels.to_owned(), value));
        };
        push(0, &svc, u8::from(s.up).to_string());
        push(1, &svc, s.restarts_total.to_string());
        if let Some(code) = s.last_exit_code {
            push(2, &svc, code.to_string());
        }
        if let Some(h) = s.healthy {
            push(3, &svc, u8::from(h).to_string());
        }
        if let Some(m) = s.memory_bytes {
            push(4, &svc, m.to_string());
        }
        if let Some(c) = s.cpu_seconds_total {
            push(5, &svc, float(c));
        }
        for log in &s.logs {
            let l = labels(&[("service", &s.service), ("stream", &log.stream)]);
            push(6, &l, log.bytes_total.to_string());
            push(7, &l, log.dropped_bytes_total.to_string());
        }
        if let Some(t) = s.start_time_seconds {
            push(8, &svc, float(t));
        }
        for (reason, n) in &s.crashes {
            let l = labels(&[("service", &s.service), ("reason", reason)]);
            push(9, &l, n.to_string());
        }
        push(10, &svc, u8::from(s.gave_up).to_string());
        if let Some((took, ok)) = s.last_check {
            push(11, &svc, float(took));
            push(12, &svc, u8::from(ok).to_string());
        }
        for (result, n) in &s.upgrades {
            let l = labels(&[("service", &s.service), ("result", result)]);
            push(13, &l, n.to_string());
        }
    }
    let mut out = String::new();
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (labels, value) in &f.samples {
            let _ = writeln!(out, "{}{labels} {value}", f.name);
        }
    }
    if let Some(info) = BUILD_INFO.get() {
        out.push_str(&render_build_info(info));
    }
    out
}

fn family(name: &'static str, kind: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind,
        help,
        samples: Vec::new(),
    }
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Escapes a label value: backslash, double quote and line feed, as the format requires.
#[must_use]
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// `<dir>/tend_<service>.prom`.
#[must_use]
pub fn textfile_path(dir: &Path, service: &str) -> PathBuf {
    dir.join(format!("tend_{service}.prom"))
}

/// Replaces `<dir>/tend_<service>.prom` with [`tend_os::write_atomic`]: the text goes to a
/// temporary file whose name does not end in `.prom` (the collectors ignore it), which is
/// then renamed over the target, so an exporter never reads half a file. A small blocking
/// write; on Windows the rename fails while an exporter holds the file open without
/// sharing delete, and the next write tries again.
///
/// # Errors
/// When the temporary file cannot be written or renamed.
pub fn write_textfile(dir: &Path, service: &str, text: &str) -> io::Result<PathBuf> {
    let target = textfile_path(dir, service);
    tend_os::write_atomic(&target, text.as_bytes(), None)?;
    Ok(target)
}

pub use tend_core::health::validate_listen;

/// Connections served at once; more are closed at once (a scraper needs one).
const MAX_CONNECTIONS: usize = 8;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A bound `/metrics` listener.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
}

impl MetricsServer {
    /// Binds `addr` (already checked by [`validate_listen`]).
    ///
    /// # Errors
    /// When the address cannot be bound (in use, not local).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
        })
    }

    /// Binds `addr` at once, without awaiting: for a caller that is not async itself (the
    /// supervisor applying a reload) but runs inside the tokio runtime that will serve it.
    ///
    /// # Errors
    /// When the address cannot be bound (in use, not local).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn bind_now(addr: SocketAddr) -> io::Result<Self> {
        let std = std::net::TcpListener::bind(addr)?;
        std.set_nonblocking(true)?;
        Ok(Self {
            listener: TcpListener::from_std(std)?,
        })
    }

    /// The bound address (the real port when bound to port 0).
    ///
    /// # Errors
    /// As the OS reports.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `GET /metrics` with whatever `render` returns, forever (spawn it; abort the
    /// task to stop). `render` is called once per scrape.
    pub async fn serve<F>(self, render: F)
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        let render = Arc::new(render);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of descriptors or an aborted handshake: transient; do not spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let render = render.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let _ = answer(stream, render.as_ref()).await;
            });
        }
    }
}

async fn answer(
    mut stream: TcpStream,
    render: &(dyn Fn() -> String + Send + Sync),
) -> io::Result<()> {
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await {
        Ok(Ok(r)) => r,
        Ok(Err(RequestError::Malformed)) => {
            return respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                "bad request\n",
                true,
            )
            .await;
        }
        Ok(Err(RequestError::Io)) | Err(_) => return Ok(()),
    };
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n",
            true,
        )
        .await;
    }
    match request.path.as_str() {
        "/metrics" => respond(&mut stream, "200 OK", CONTENT_TYPE, &render(), !head_only).await,
        "/" => {
            respond(
                &mut stream,
                "200 OK",
                "text/plain",
                "tend: metrics are at /metrics\n",
                !head_only,
            )
            .await
        }
        _ => {
            respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                "not found\n",
                !head_only,
            )
            .await
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
    with_body: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    if with_body {
        out.push_str(body);
    }
    stream.write_all(out.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("x\ny"), "x\\ny");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(3.0), "3");
    }

    #[test]
    fn empty_families_are_left_out() {
        let text = render(&[ServiceMetrics {
            service: "web".into(),
            ..ServiceMetrics::default()
        }]);
        assert!(text.contains("tend_up{service=\"web\"} 0\n"));
        assert!(!text.contains("tend_healthy"), "{text}");
        assert!(!text.contains("tend_log_bytes_total"), "{text}");
        assert!(!text.contains("tend_upgrades_total"), "{text}");
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn build_info_is_one_gauge_with_escaped_labels() {
        let text = render_build_info(&BuildInfo {
            version: "1.2.3".into(),
            commit: "abc\"def".into(),
            target: "x86_64-unknown-linux-musl".into(),
            profile: "release".into(),
        });
        assert_eq!(
            text,
            "# HELP tend_build_info Which tend is running: version, commit, target and profile (always 1).\n\
             # TYPE tend_build_info gauge\n\
             tend_build_info{version=\"1.2.3\",commit=\"abc\\\"def\",target=\"x86_64-unknown-linux-musl\",profile=\"release\"} 1\n"
        );
    }
}
