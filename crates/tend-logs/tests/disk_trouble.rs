//! Disk trouble: failing writes, a vanished directory. Output is dropped and counted, the
//! pipe keeps being drained, and a marker line records the loss once writing works again.

mod common;

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use tend_logs::{FsOp, LogEvent, LogKind, Options, Stream};

#[test]
fn failed_writes_are_counted_and_marked_when_writing_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let full = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&full);
    let events = Events::default();
    let options = Options {
        events: Some(events.sink()),
        faults: Some(Arc::new(move |op, _: &Path| {
            if flag.load(Ordering::SeqCst) && matches!(op, FsOp::Write | FsOp::Open) {
                Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "disk full (injected)",
                ))
            } else {
                Ok(())
            }
        })),
        ..Options::default()
    };
    let logs = open_with(spec(dir.path()), options);
    let out = LogKind::Out.active_path(dir.path(), NAME);
    let (r, mut w) = std::io::pipe().unwrap();
    let reader = logs.capture(Stream::Out, r).unwrap();
    w.write_all(b"before\n").unwrap();
    wait_until("first line", || read(&out) == b"before\n");

    full.store(true, Ordering::SeqCst);
    // Far more than a pipe buffer: this only returns if the reader keeps draining the pipe
    // while nothing can be written.
    let lost_line = [b'z'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
    for _ in 0..10_000 {
        w.write_all(&lost_line).unwrap();
    }
    wait_until("all lost bytes counted", || {
        logs.stats().out.dropped_bytes == 1_000_000
    });
    assert_eq!(read(&out), b"before\n");
    assert!(
        logs.stats()
            .last_error
            .unwrap()
            .contains("disk full (injected)")
    );

    full.store(false, Ordering::SeqCst);
    w.write_all(b"after\n").unwrap();
    wait_until("writing resumed", || read(&out).ends_with(b"after\n"));
    assert_eq!(
        read(&out),
        b"before\n[tend: 1000000 bytes of log output lost: disk full (injected)]\nafter\n"
    );
    drop(w);
    reader.join().unwrap();
    assert_eq!(
        events.all(),
        [
            LogEvent::WriteFailed {
                path: out.clone(),
                error: "disk full (injected)".into()
            },
            LogEvent::WriteResumed {
                path: out,
                lost_bytes: 1_000_000
            },
        ]
    );
}

#[test]
fn the_loss_marker_is_timestamped_like_the_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.timestamps = true;
    let full = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&full);
    let clock = clock("2026-11-21T14:05:09.123+01:00");
    let c: Arc<dyn tend_logs::Clock> = clock.clone();
    let options = Options {
        clock: c,
        faults: Some(Arc::new(move |op, _: &Path| {
            if flag.load(Ordering::SeqCst) && op == FsOp::Write {
                Err(io::Error::other("EIO"))
            } else {
                Ok(())
            }
        })),
        ..Options::default()
    };
    let logs = open_with(s, options);
    feed(&logs, Stream::Err, b"lost\n");
    // Each write while failing tries to recover, including the marker; a marker that
    // cannot be written is not counted as lost output.
    feed(&logs, Stream::Err, b"lost too\n");
    full.store(false, Ordering::SeqCst);
    feed(&logs, Stream::Err, b"kept\n");
    let ts = "2026-11-21T14:05:09.123+01:00 ";
    assert_eq!(
        read(&LogKind::Err.active_path(dir.path(), NAME)),
        format!("{ts}[tend: 74 bytes of log output lost: EIO]\n{ts}kept\n").into_bytes()
    );
    assert_eq!(logs.stats().err.dropped_bytes, 74);
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Windows cannot delete the directory of an open file"
)]
fn a_deleted_log_directory_is_recreated() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("logs");
    let logs = open(spec(&dir));
    let out = LogKind::Out.active_path(&dir, NAME);
    let (r, mut w) = std::io::pipe().unwrap();
    let reader = logs.capture(Stream::Out, r).unwrap();
    w.write_all(b"one\n").unwrap();
    wait_until("first line", || read(&out) == b"one\n");

    std::fs::remove_dir_all(&dir).unwrap();
    // Lines written right after the deletion may go to the deleted file (Unix keeps it
    // writable); within a second the writer notices and starts a new one.
    let mut i = 0;
    wait_until("the directory is back with new output", || {
        i += 1;
        w.write_all(format!("line {i}\n").as_bytes()).unwrap();
        read(&out).starts_with(b"line ")
    });
    drop(w);
    reader.join().unwrap();
    assert!(read(&out).ends_with(format!("line {i}\n").as_bytes()));
}
