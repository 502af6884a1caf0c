//! Retention of rotated files (keep, max_age, max_total), compression and crash clean-up.

mod common;

use std::fs;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use flate2::Compression;
use flate2::write::GzEncoder;
use tend_logs::{FsOp, LogEvent, LogKind, Options, Stream, rotated_files};

fn lines(from: usize, to: usize) -> Vec<u8> {
    (from..to)
        .flat_map(|i| format!("line-{i:04}\n").into_bytes())
        .collect()
}

fn rotated_contents(dir: &std::path::Path, kind: LogKind) -> Vec<Vec<u8>> {
    rotated_files(dir, NAME, kind)
        .unwrap()
        .iter()
        .map(|f| {
            if f.compressed {
                gunzip(&f.path)
            } else {
                read(&f.path)
            }
        })
        .collect()
}

#[test]
fn keep_caps_the_number_of_rotated_files_oldest_deleted_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 10; // one 10-byte line per file
    s.keep = 3;
    let logs = open(s.clone());
    feed(&logs, Stream::Out, &lines(1, 9));
    assert_eq!(
        rotated_contents(dir.path(), LogKind::Out),
        [lines(5, 6), lines(6, 7), lines(7, 8)]
    );
    assert_eq!(
        read(&LogKind::Out.active_path(dir.path(), NAME)),
        lines(8, 9)
    );
    drop(logs);

    // Retention also runs at open, with the new setting.
    s.keep = 1;
    let _logs = open(s);
    assert_eq!(rotated_contents(dir.path(), LogKind::Out), [lines(7, 8)]);
    assert_eq!(
        read(&LogKind::Out.active_path(dir.path(), NAME)),
        lines(8, 9)
    );
}

#[test]
fn max_age_deletes_files_closed_too_long_ago() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 10;
    s.max_age = Duration::from_secs(60 * 3600); // 2.5 days
    let clock = clock("2026-11-01T12:00:00.000+01:00");
    let logs = open_at(s.clone(), &clock);
    for day in 0..5 {
        // Each line closes the previous file: files are closed on days 1..=4.
        feed(&logs, Stream::Out, &lines(day, day + 1));
        clock.advance(Duration::from_secs(24 * 3600));
    }
    // Now day 5; the last retention ran on day 4, when day 1's file was 3 days old.
    assert_eq!(
        rotated_contents(dir.path(), LogKind::Out),
        [lines(1, 2), lines(2, 3), lines(3, 4)]
    );
    drop(logs);

    clock.set(at("2026-11-07T12:00:00.000+01:00")); // day 6
    let _logs = open_at(s, &clock);
    assert_eq!(rotated_contents(dir.path(), LogKind::Out), [lines(3, 4)]);
    assert_eq!(
        read(&LogKind::Out.active_path(dir.path(), NAME)),
        lines(4, 5)
    );
}

#[test]
fn max_total_caps_the_bytes_of_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 20; // two lines per file
    s.max_total = 50; // room for two full rotated files
    let logs = open(s);
    feed(&logs, Stream::Err, &lines(0, 12));
    let rotated = rotated_files(dir.path(), NAME, LogKind::Err).unwrap();
    assert!(rotated.iter().map(|f| f.size).sum::<u64>() <= 50);
    assert_eq!(
        rotated_contents(dir.path(), LogKind::Err),
        [lines(6, 8), lines(8, 10)]
    );
    assert_eq!(
        read(&LogKind::Err.active_path(dir.path(), NAME)),
        lines(10, 12)
    );
    // The other stream's files are a separate budget and untouched.
    assert_eq!(read(&LogKind::Out.active_path(dir.path(), NAME)), b"");
}

#[test]
fn retention_counts_compressed_files_after_compression() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 4000;
    s.compress = true;
    s.keep = 2;
    let logs = open(s);
    let data = numbered(1000);
    feed_pipe(&logs, Stream::Out, data.clone());
    wait_until("compression done", || logs.stats().compress_pending == 0);
    let rotated = rotated_files(dir.path(), NAME, LogKind::Out).unwrap();
    assert_eq!(rotated.len(), 2);
    assert!(rotated.iter().all(|f| f.compressed));
    // What is left is exactly the newest part of the input.
    let h = history(dir.path(), LogKind::Out);
    assert!(
        data.ends_with(&h) && h.len() > 4000,
        "{:?}\n{}",
        file_names(dir.path()),
        String::from_utf8_lossy(&h)
            .lines()
            .map(|l| &l[..8])
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(!file_names(dir.path()).iter().any(|n| n.ends_with(".tmp")));
}

#[test]
fn open_cleans_up_after_a_crash_and_compresses_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gz = |bytes: &[u8]| {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        io::Write::write_all(&mut e, bytes).unwrap();
        e.finish().unwrap()
    };
    // Never compressed (crash before the background thread got to it).
    fs::write(d.join("svc.out.2026-11-20T08-00-00.000.log"), "eight\n").unwrap();
    // Compressed and published, but the original was not yet deleted.
    fs::write(d.join("svc.out.2026-11-20T09-00-00.000.log"), "nine\n").unwrap();
    fs::write(
        d.join("svc.out.2026-11-20T09-00-00.000.log.gz"),
        gz(b"nine\n"),
    )
    .unwrap();
    // An unfinished compression.
    fs::write(d.join("svc.out.2026-11-20T10-00-00.000.log"), "ten\n").unwrap();
    fs::write(
        d.join("svc.out.2026-11-20T10-00-00.000.log.gz.tmp"),
        "garbage",
    )
    .unwrap();
    // Not ours.
    fs::write(d.join("other.out.2026-11-20T10-00-00.000.log.gz.tmp"), "x").unwrap();
    fs::write(d.join("svc.out.log"), "active\n").unwrap();

    let mut s = spec(d);
    s.compress = true;
    let logs = open(s);
    wait_until("compression done", || logs.stats().compress_pending == 0);
    assert_eq!(
        file_names(d),
        [
            "other.out.2026-11-20T10-00-00.000.log.gz.tmp",
            "svc.err.log",
            "svc.out.2026-11-20T08-00-00.000.log.gz",
            "svc.out.2026-11-20T09-00-00.000.log.gz",
            "svc.out.2026-11-20T10-00-00.000.log.gz",
            "svc.out.log",
            "svc.tend.log",
        ]
    );
    feed(&logs, Stream::Out, b"more\n");
    assert_eq!(
        history(d, LogKind::Out),
        b"eight\nnine\nten\nactive\nmore\n"
    );
}

#[test]
fn a_file_that_cannot_be_deleted_is_reported_and_writing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 10;
    s.keep = 1;
    let events = Events::default();
    let options = Options {
        events: Some(events.sink()),
        faults: Some(Arc::new(|op, p: &std::path::Path| {
            if op == FsOp::Remove && p.to_string_lossy().ends_with(".log") {
                Err(io::Error::new(io::ErrorKind::PermissionDenied, "in use"))
            } else {
                Ok(())
            }
        })),
        ..Options::default()
    };
    let logs = open_with(s, options);
    feed(&logs, Stream::Out, &lines(0, 4));
    assert_eq!(history(dir.path(), LogKind::Out), lines(0, 4));
    let stats = logs.stats();
    assert!(stats.delete_failures >= 2, "{stats:?}");
    assert!(stats.last_error.unwrap().contains("in use"));
    assert!(
        events
            .all()
            .iter()
            .any(|e| matches!(e, LogEvent::DeleteFailed { .. }))
    );
}
