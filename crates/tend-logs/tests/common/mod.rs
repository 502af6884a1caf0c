//! Helpers shared by the integration tests. Each test has its own temp dir; nothing sleeps
//! and hopes: waits are for a condition, with a deadline.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use flate2::read::GzDecoder;
use tend_core::{LogMode, LogSpec, RotateEvery};
use tend_logs::{LogEvent, LogKind, ManualClock, Options, ServiceLogs, Stream, rotated_files};

pub const NAME: &str = "svc";

/// Everything off: plain append, so each test turns on only what it is about.
pub fn spec(dir: &Path) -> LogSpec {
    LogSpec {
        dir: dir.to_path_buf(),
        mode: LogMode::Separate,
        timestamps: false,
        stream_tags: false,
        max_size: 0,
        rotate_every: RotateEvery::Never,
        keep: 0,
        max_age: Duration::ZERO,
        max_total: 0,
        compress: false,
        max_line: 64 * 1024,
        format: tend_core::LogFormat::Text,
        encoding: None,
        eventlog: tend_core::EventLogLines::Off,
    }
}

pub fn at(rfc3339: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap()
}

pub fn clock(rfc3339: &str) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(at(rfc3339)))
}

/// Collects events for assertions.
#[derive(Clone, Default)]
pub struct Events(pub Arc<Mutex<Vec<LogEvent>>>);

impl Events {
    pub fn sink(&self) -> tend_logs::EventSink {
        let store = Arc::clone(&self.0);
        Arc::new(move |e| store.lock().unwrap().push(e))
    }

    pub fn all(&self) -> Vec<LogEvent> {
        self.0.lock().unwrap().clone()
    }
}

/// Logs that, when the test is done with them, close (a compression backlog is given up,
/// as at tend's exit) and wait for their housekeeping thread to end: a compression still
/// running would write into the temp dir while it is being removed and leave it behind.
/// Declared after the temp dir, so dropped before it.
pub struct Logs(Option<Arc<ServiceLogs>>);

impl std::ops::Deref for Logs {
    type Target = Arc<ServiceLogs>;

    fn deref(&self) -> &Arc<ServiceLogs> {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        let Some(logs) = self.0.take() else { return };
        let end = logs.housekeeper_end();
        logs.close(Duration::ZERO);
        drop(logs);
        let ended = end.wait(Duration::from_secs(60));
        if !std::thread::panicking() {
            assert!(
                ended,
                "the housekeeper outlived the test: a ServiceLogs was kept"
            );
        }
    }
}

pub fn open(spec: LogSpec) -> Logs {
    open_with(spec, Options::default())
}

pub fn open_with(spec: LogSpec, options: Options) -> Logs {
    Logs(Some(ServiceLogs::open_with(NAME, spec, options).unwrap()))
}

pub fn open_at(spec: LogSpec, clock: &Arc<ManualClock>) -> Logs {
    let clock: Arc<dyn tend_logs::Clock> = clock.clone();
    open_with(
        spec,
        Options {
            clock,
            ..Options::default()
        },
    )
}

/// Runs one reader over `data` to its end: deterministic, one read per 64 KiB.
pub fn feed(logs: &Arc<ServiceLogs>, stream: Stream, data: &[u8]) {
    logs.capture(stream, Cursor::new(data.to_vec()))
        .unwrap()
        .join()
        .unwrap();
}

pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    // Generous: compression runs on a thread at the lowest priority, which a loaded machine
    // (parallel tests on two cores) starves for seconds. Passing runs never wait this long.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_default()
}

pub fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Rotated files (decompressed), oldest first, then the active file: the whole history.
pub fn history(dir: &Path, kind: LogKind) -> Vec<u8> {
    let mut out = Vec::new();
    for f in rotated_files(dir, NAME, kind).unwrap() {
        out.extend(if f.compressed {
            gunzip(&f.path)
        } else {
            read(&f.path)
        });
    }
    out.extend(read(&kind.active_path(dir, NAME)));
    out
}

pub fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Numbered lines of varying length (so they straddle reads and rotations anywhere).
pub fn numbered(count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        out.extend_from_slice(format!("{i:08} {}\n", "x".repeat(i * 7 % 150)).as_bytes());
    }
    out
}

/// Writes `data` into a real pipe in uneven pieces from another thread while a reader
/// captures it; returns when everything was captured.
pub fn feed_pipe(logs: &Arc<ServiceLogs>, stream: Stream, data: Vec<u8>) {
    let (r, mut w) = std::io::pipe().unwrap();
    let reader = logs.capture(stream, r).unwrap();
    let writer = std::thread::spawn(move || {
        let mut rest = data.as_slice();
        let mut step = 1usize;
        while !rest.is_empty() {
            step = (step * 7919 + 13) % 9000 + 1;
            let n = step.min(rest.len());
            w.write_all(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
    });
    writer.join().unwrap();
    reader.join().unwrap();
}
