//! Throughput of the log pipeline against `generator | cat > file`.
//!
//! ```text
//! cargo run --release -p tend-logs --example throughput -- [MiB] [--timestamps] [--rotate] [--dir DIR]
//! ```
//!
//! A generator thread writes 100-byte numbered lines into a pipe; the same generator feeds
//! `cat > file` (the baseline) and a `ServiceLogs` reader. Afterwards the log files are
//! read back in order and every line number is checked: nothing lost, duplicated or
//! reordered. A benchmark, not a test: the numbers depend on the machine.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tend_core::{LogMode, LogSpec, RotateEvery};
use tend_logs::{LogKind, ServiceLogs, Stream, rotated_files};

const LINE: usize = 100;

/// Writes `lines` numbered lines of exactly 100 bytes to `w` in 64 KiB writes.
fn generate(mut w: impl Write, lines: u64) -> io::Result<()> {
    let per_buf = 64 * 1024 / LINE;
    let mut buf = Vec::with_capacity(per_buf * LINE);
    let mut template = [b'.'; LINE];
    template[LINE - 1] = b'\n';
    let mut n = 0;
    while n < lines {
        buf.clear();
        for _ in 0..per_buf.min(usize::try_from(lines - n).unwrap_or(usize::MAX)) {
            let mut line = template;
            let mut v = n;
            for i in (0..16).rev() {
                line[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
            buf.extend_from_slice(&line);
            n += 1;
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Checks that `data` holds lines 0.. in order; returns how many.
fn verify(data: &[u8], prefix_len: usize, expect_from: u64) -> u64 {
    let mut next = expect_from;
    for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let body = &line[prefix_len..];
        let num: u64 = std::str::from_utf8(&body[..16]).unwrap().parse().unwrap();
        assert_eq!(num, next, "line out of sequence");
        assert_eq!(body.len(), LINE - 1, "line {num} changed length");
        next += 1;
    }
    next
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

fn run_cat(dir: &Path, lines: u64) -> Duration {
    let out = File::create(dir.join("cat.out")).unwrap();
    let start = Instant::now();
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(out)
        .spawn()
        .expect("cat");
    let stdin = child.stdin.take().unwrap();
    generate(stdin, lines).unwrap();
    child.wait().unwrap();
    let d = start.elapsed();
    fs::remove_file(dir.join("cat.out")).unwrap();
    d
}

fn run_tend(dir: &Path, lines: u64, timestamps: bool, rotate: bool) -> Duration {
    let spec = LogSpec {
        dir: dir.to_path_buf(),
        mode: LogMode::Separate,
        timestamps,
        stream_tags: false,
        max_size: if rotate { 10 * 1024 * 1024 } else { 0 },
        rotate_every: RotateEvery::Never,
        keep: 0,
        max_age: Duration::ZERO,
        max_total: 0,
        compress: false,
        max_line: 64 * 1024,
        format: tend_core::LogFormat::Text,
        encoding: None,
        eventlog: tend_core::EventLogLines::Off,
    };
    let logs = ServiceLogs::open("bench", spec, None).unwrap();
    let (r, w) = io::pipe().unwrap();
    let start = Instant::now();
    let reader = logs.capture(Stream::Out, r).unwrap();
    let gen_thread = std::thread::spawn(move || generate(w, lines).unwrap());
    gen_thread.join().unwrap();
    reader.join().unwrap();
    start.elapsed()
}

fn verify_tend(dir: &Path, lines: u64, timestamps: bool) {
    let prefix = if timestamps { 30 } else { 0 };
    let mut next = 0;
    let mut files: Vec<_> = rotated_files(dir, "bench", LogKind::Out)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    files.push(LogKind::Out.active_path(dir, "bench"));
    for f in &files {
        let mut data = Vec::new();
        File::open(f).unwrap().read_to_end(&mut data).unwrap();
        next = verify(&data, prefix, next);
        fs::remove_file(f).unwrap();
    }
    assert_eq!(next, lines, "lines missing");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mib: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1024);
    let timestamps = args.iter().any(|a| a == "--timestamps");
    let rotate = args.iter().any(|a| a == "--rotate");
    let base = args
        .iter()
        .position(|a| a == "--dir")
        .map(|i| args[i + 1].clone());
    let tmp = match &base {
        Some(b) => tempfile::tempdir_in(b).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let lines = mib * 1024 * 1024 / LINE as u64;
    let bytes = lines * LINE as u64;
    println!(
        "{mib} MiB of {LINE}-byte lines into {} (timestamps {timestamps}, rotate at 10 MiB {rotate})",
        tmp.path().display()
    );
    let mut best_cat = Duration::MAX;
    let mut best_tend = Duration::MAX;
    for round in 0..3 {
        let c = run_cat(tmp.path(), lines);
        let t = run_tend(tmp.path(), lines, timestamps, rotate);
        verify_tend(tmp.path(), lines, timestamps);
        println!(
            "round {round}: cat {:8.0} MiB/s   tend-logs {:8.0} MiB/s",
            mib_per_s(bytes, c),
            mib_per_s(bytes, t)
        );
        best_cat = best_cat.min(c);
        best_tend = best_tend.min(t);
    }
    println!(
        "best:    cat {:8.0} MiB/s   tend-logs {:8.0} MiB/s   ratio {:.0}% (sequence verified)",
        mib_per_s(bytes, best_cat),
        mib_per_s(bytes, best_tend),
        100.0 * best_cat.as_secs_f64() / best_tend.as_secs_f64()
    );
}
