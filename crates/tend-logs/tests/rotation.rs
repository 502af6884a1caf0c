//! Rotation by size and by time, and the rotated names.

mod common;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use tend_core::RotateEvery;
use tend_logs::{FsOp, LogEvent, LogKind, Options, Stream, rotated_files};

#[test]
fn size_rotation_keeps_every_line_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 64 * 1024;
    let logs = open(s);
    let data = numbered(50_000);
    assert!(data.len() > 4 * 1024 * 1024);
    feed_pipe(&logs, Stream::Out, data.clone());

    assert!(
        history(dir.path(), LogKind::Out) == data,
        "history differs from input"
    );
    let rotated = rotated_files(dir.path(), NAME, LogKind::Out).unwrap();
    assert!(rotated.len() >= 60, "{} rotated files", rotated.len());
    for f in &rotated {
        // Rotated at a line boundary before exceeding, and not much earlier.
        assert!(f.size <= 64 * 1024 && f.size > 64 * 1024 - 200, "{f:?}");
        assert!(read(&f.path).ends_with(b"\n"));
    }
    assert_eq!(logs.stats().rotations, rotated.len() as u64);
    assert_eq!(logs.stats().out.bytes_written, data.len() as u64);
}

#[test]
fn compressed_rotation_keeps_every_line_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 64 * 1024;
    s.compress = true;
    let logs = open(s);
    let data = numbered(40_000);
    feed_pipe(&logs, Stream::Err, data.clone());
    wait_until("compression done", || logs.stats().compress_pending == 0);

    let rotated = rotated_files(dir.path(), NAME, LogKind::Err).unwrap();
    assert!(rotated.len() >= 40);
    assert!(rotated.iter().all(|f| f.compressed), "{rotated:?}");
    // Every .gz decompresses to exactly what was rotated: together with the active file
    // they give back the input byte for byte.
    assert!(
        history(dir.path(), LogKind::Err) == data,
        "history differs from input"
    );
    let names = file_names(dir.path());
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("svc.err.2") && n.ends_with(".log")),
        "{names:?}"
    );
    assert_eq!(logs.stats().compress_failures, 0);
}

#[test]
fn a_line_bigger_than_max_size_goes_alone_into_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 100;
    let logs = open(s);
    let big = format!("{}\n", "x".repeat(300));
    feed(&logs, Stream::Out, format!("a\n{big}b\n").as_bytes());

    let rotated = rotated_files(dir.path(), NAME, LogKind::Out).unwrap();
    let contents: Vec<Vec<u8>> = rotated.iter().map(|f| read(&f.path)).collect();
    assert_eq!(contents, [b"a\n".to_vec(), big.into_bytes()]);
    assert_eq!(read(&LogKind::Out.active_path(dir.path(), NAME)), b"b\n");
}

#[test]
fn rotations_in_the_same_millisecond_get_numbered_names_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 10;
    let clock = clock("2026-11-21T14:05:09.123+01:00");
    let logs = open_at(s, &clock);
    let data = b"line-0001\nline-0002\nline-0003\nline-0004\n";
    feed(&logs, Stream::Out, data);

    let names = file_names(dir.path());
    assert_eq!(
        names,
        [
            "svc.err.log",
            "svc.out.2026-11-21T14-05-09.123-1.log",
            "svc.out.2026-11-21T14-05-09.123-2.log",
            "svc.out.2026-11-21T14-05-09.123.log",
            "svc.out.log",
            "svc.tend.log",
        ]
    );
    // Ordered by time then number (not by string), the files replay the input.
    assert_eq!(history(dir.path(), LogKind::Out), data);
}

#[test]
fn a_clock_going_back_does_not_break_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 10;
    let clock = clock("2026-11-21T12:00:00.000+01:00");
    let logs = open_at(s, &clock);
    feed(&logs, Stream::Out, b"line-0001\nline-0002\n");
    clock.set(at("2026-11-21T11:00:00.000+01:00"));
    feed(&logs, Stream::Out, b"line-0003\n");
    let rotated = rotated_files(dir.path(), NAME, LogKind::Out).unwrap();
    assert_eq!(rotated.len(), 2);
    assert!(
        rotated[1]
            .path
            .ends_with("svc.out.2026-11-21T12-00-00.000-1.log")
    );
    assert_eq!(
        history(dir.path(), LogKind::Out),
        b"line-0001\nline-0002\nline-0003\n"
    );
}

#[test]
fn hourly_rotation_at_local_hour_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.rotate_every = RotateEvery::Hourly;
    let clock = clock("2026-11-21T10:59:59.500+01:00");
    let logs = open_at(s, &clock);
    feed(&logs, Stream::Out, b"ten\n");
    clock.advance(Duration::from_millis(400));
    feed(&logs, Stream::Out, b"still ten\n");
    assert!(
        rotated_files(dir.path(), NAME, LogKind::Out)
            .unwrap()
            .is_empty()
    );

    clock.advance(Duration::from_millis(200)); // 11:00:00.100
    feed(&logs, Stream::Out, b"eleven\n");
    let rotated = rotated_files(dir.path(), NAME, LogKind::Out).unwrap();
    assert_eq!(rotated.len(), 1);
    assert!(
        rotated[0]
            .path
            .ends_with("svc.out.2026-11-21T11-00-00.100.log")
    );
    assert_eq!(read(&rotated[0].path), b"ten\nstill ten\n");
    assert_eq!(
        read(&LogKind::Out.active_path(dir.path(), NAME)),
        b"eleven\n"
    );

    // A quiet file is rotated by the tick at the boundary, without a write.
    clock.set(at("2026-11-21T12:00:00.001+01:00"));
    logs.tick();
    let rotated = rotated_files(dir.path(), NAME, LogKind::Out).unwrap();
    assert_eq!(rotated.len(), 2);
    assert_eq!(read(&rotated[1].path), b"eleven\n");
    assert_eq!(read(&LogKind::Out.active_path(dir.path(), NAME)), b"");

    // Empty files are never rotated.
    clock.set(at("2026-11-21T15:00:00.000+01:00"));
    logs.tick();
    feed(&logs, Stream::Out, b"fifteen\n");
    assert_eq!(
        rotated_files(dir.path(), NAME, LogKind::Out).unwrap().len(),
        2
    );
    assert!(
        rotated_files(dir.path(), NAME, LogKind::Err)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn daily_rotation_at_local_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.rotate_every = RotateEvery::Daily;
    // 23:30 local is already the next day in UTC: the boundary must be local midnight.
    let clock = clock("2026-11-21T23:30:00.000-05:00");
    let logs = open_at(s, &clock);
    feed(&logs, Stream::Err, b"late\n");
    clock.set(at("2026-11-21T23:59:59.999-05:00"));
    feed(&logs, Stream::Err, b"later\n");
    assert!(
        rotated_files(dir.path(), NAME, LogKind::Err)
            .unwrap()
            .is_empty()
    );
    clock.set(at("2026-11-22T00:00:00.000-05:00"));
    feed(&logs, Stream::Err, b"tomorrow\n");
    clock.set(at("2026-11-22T23:00:00.000-05:00"));
    feed(&logs, Stream::Err, b"same day\n");

    let rotated = rotated_files(dir.path(), NAME, LogKind::Err).unwrap();
    assert_eq!(rotated.len(), 1);
    assert!(
        rotated[0]
            .path
            .ends_with("svc.err.2026-11-22T00-00-00.000.log")
    );
    assert_eq!(read(&rotated[0].path), b"late\nlater\n");
    assert_eq!(
        read(&LogKind::Err.active_path(dir.path(), NAME)),
        b"tomorrow\nsame day\n"
    );
}

#[test]
fn failed_rename_keeps_writing_and_is_retried_at_the_next_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 20;
    let locked = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&locked);
    let events = Events::default();
    let options = Options {
        events: Some(events.sink()),
        faults: Some(Arc::new(move |op, _: &std::path::Path| {
            if op == FsOp::Rename && flag.load(Ordering::SeqCst) {
                Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "held by another process",
                ))
            } else {
                Ok(())
            }
        })),
        ..Options::default()
    };
    let logs = open_with(s, options);
    feed(&logs, Stream::Out, b"line-0001\nline-0002\n");
    feed(&logs, Stream::Out, b"line-0003\n");
    feed(&logs, Stream::Out, b"line-0004\n");
    let active = LogKind::Out.active_path(dir.path(), NAME);
    assert_eq!(
        read(&active),
        b"line-0001\nline-0002\nline-0003\nline-0004\n"
    );
    let stats = logs.stats();
    assert_eq!(stats.rotations, 0);
    assert_eq!(stats.rotation_failures, 2);
    assert!(
        stats
            .last_error
            .unwrap()
            .contains("held by another process")
    );
    let rotate_events = events
        .all()
        .into_iter()
        .filter(|e| matches!(e, LogEvent::RotateFailed { .. }))
        .count();
    assert_eq!(rotate_events, 1, "one event per run of failures");

    locked.store(false, Ordering::SeqCst);
    feed(&logs, Stream::Out, b"line-0005\n");
    let rotated = rotated_files(dir.path(), NAME, LogKind::Out).unwrap();
    assert_eq!(rotated.len(), 1);
    assert_eq!(
        read(&rotated[0].path),
        b"line-0001\nline-0002\nline-0003\nline-0004\n"
    );
    assert_eq!(read(&active), b"line-0005\n");
    assert_eq!(logs.stats().dropped_bytes(), 0);
}

/// A fault hook that holds every compression until released: the compressor is "slow".
fn held_compression() -> (Arc<AtomicBool>, tend_logs::FaultHook) {
    let hold = Arc::new(AtomicBool::new(true));
    let h = hold.clone();
    let hook: tend_logs::FaultHook = Arc::new(move |op, _| {
        if op == FsOp::Compress {
            while h.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(())
    });
    (hold, hook)
}

#[test]
fn a_compression_backlog_is_bounded_said_and_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 64 * 1024;
    s.compress = true;
    let (hold, hook) = held_compression();
    let events = Events::default();
    let logs = open_with(
        s,
        Options {
            events: Some(events.sink()),
            faults: Some(hook),
            ..Options::default()
        },
    );
    let data = numbered(20_000);
    // Rotations go on at full speed while the compressor is stuck.
    feed_pipe(&logs, Stream::Out, data.clone());
    let rotated = rotated_files(dir.path(), NAME, LogKind::Out).unwrap();
    assert!(rotated.len() >= 20, "{} rotated files", rotated.len());
    let stats = logs.stats();
    assert_eq!(stats.compress_pending, tend_logs::COMPRESS_BACKLOG);
    assert_eq!(
        stats.compress_skipped,
        (rotated.len() - tend_logs::COMPRESS_BACKLOG) as u64
    );
    let said: Vec<_> = events
        .all()
        .into_iter()
        .filter(|e| matches!(e, LogEvent::CompressBacklog { .. }))
        .collect();
    assert_eq!(said.len(), 1, "said once per backlog: {said:?}");

    // Once the compressor catches up, the skipped files are compressed too, and nothing
    // was lost on the way.
    hold.store(false, Ordering::SeqCst);
    wait_until("compression done", || logs.stats().compress_pending == 0);
    let rotated = rotated_files(dir.path(), NAME, LogKind::Out).unwrap();
    assert!(rotated.iter().all(|f| f.compressed), "{rotated:?}");
    assert!(
        history(dir.path(), LogKind::Out) == data,
        "history differs from input"
    );
}

#[test]
fn close_gives_up_compression_at_once_and_the_next_open_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 64 * 1024;
    s.compress = true;
    let (hold, hook) = held_compression();
    let logs = open_with(
        s.clone(),
        Options {
            faults: Some(hook),
            ..Options::default()
        },
    );
    let data = numbered(4_000);
    feed_pipe(&logs, Stream::Out, data.clone());
    let queued = logs.stats().compress_pending;
    assert!(queued >= 3, "{queued} queued");
    // close() while the compressor is stuck: it does not wait for it, and says how many
    // rotated files are left uncompressed.
    assert_eq!(logs.close(Duration::from_millis(10)), queued);
    // Released only after close() asked it to stop: the stuck compression must give up
    // instead of finishing, and the queued ones must not start.
    hold.store(false, Ordering::SeqCst);
    wait_until("the compressor let go", || {
        logs.stats().compress_pending == 0
    });
    assert_eq!(logs.close(Duration::ZERO), queued, "every one given up");
    let names = file_names(dir.path());
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".gz") || n.ends_with(".tmp")),
        "{names:?}"
    );
    assert!(
        history(dir.path(), LogKind::Out) == data,
        "history differs from input"
    );
    drop(logs);

    let logs = open(s);
    wait_until("compression done", || logs.stats().compress_pending == 0);
    let rotated = rotated_files(dir.path(), NAME, LogKind::Out).unwrap();
    assert!(rotated.iter().all(|f| f.compressed), "{rotated:?}");
    assert!(
        history(dir.path(), LogKind::Out) == data,
        "history differs from input"
    );
}
