//! Capturing pipes: framing, modes, prefixes, readers that never block, live reconfigure.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tend_core::LogMode;
use tend_logs::{LogKind, Stream};

#[test]
fn combined_mode_keeps_each_streams_order_and_tags_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.mode = LogMode::Combined;
    s.stream_tags = true;
    let logs = open(s);
    let make = |c: char| -> Vec<u8> {
        (0..30_000)
            .flat_map(|i| format!("{c}{i:06}\n").into_bytes())
            .collect()
    };
    let (l1, l2) = (Arc::clone(&logs), Arc::clone(&logs));
    let (out, err) = (make('o'), make('e'));
    let t1 = std::thread::spawn(move || feed_pipe(&l1, Stream::Out, out));
    let t2 = std::thread::spawn(move || feed_pipe(&l2, Stream::Err, err));
    t1.join().unwrap();
    t2.join().unwrap();

    let all = read(&LogKind::Combined.active_path(dir.path(), NAME));
    let (mut next_o, mut next_e) = (0, 0);
    for line in all.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = std::str::from_utf8(line).unwrap();
        if let Some(rest) = line.strip_prefix("out ") {
            assert_eq!(rest, format!("o{next_o:06}"));
            next_o += 1;
        } else if let Some(rest) = line.strip_prefix("err ") {
            assert_eq!(rest, format!("e{next_e:06}"));
            next_e += 1;
        } else {
            panic!("untagged line {line:?}");
        }
    }
    assert_eq!((next_o, next_e), (30_000, 30_000));
    assert!(!LogKind::Out.active_path(dir.path(), NAME).exists());
}

#[test]
fn timestamps_and_tags_prefix_each_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.mode = LogMode::Combined;
    s.stream_tags = true;
    s.timestamps = true;
    let clock = clock("2026-11-21T14:05:09.123+01:00");
    let logs = open_at(s.clone(), &clock);
    feed(&logs, Stream::Err, b"one\ntwo\n");
    assert_eq!(
        read(&LogKind::Combined.active_path(dir.path(), NAME)),
        b"2026-11-21T14:05:09.123+01:00 err one\n2026-11-21T14:05:09.123+01:00 err two\n"
    );

    // Tags are for combined mode only.
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.stream_tags = true;
    s.timestamps = true;
    let logs = open_at(s, &clock);
    feed(&logs, Stream::Out, b"x\n");
    assert_eq!(
        read(&LogKind::Out.active_path(dir.path(), NAME)),
        b"2026-11-21T14:05:09.123+01:00 x\n"
    );
}

#[test]
fn invalid_utf8_and_control_bytes_are_kept_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(spec(dir.path()));
    let data = b"\xff\xfe\xc3(\x00\r\n\x1b[31mred\x1b[0m\n\xe2\x82\n".to_vec();
    feed(&logs, Stream::Out, &data);
    assert_eq!(read(&LogKind::Out.active_path(dir.path(), NAME)), data);
}

#[test]
fn long_lines_are_split_with_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_line = 10;
    let logs = open(s);
    feed(
        &logs,
        Stream::Out,
        b"0123456789abcdefghij-tail\nshort\n0123456789\n",
    );
    assert_eq!(
        read(&LogKind::Out.active_path(dir.path(), NAME)),
        b"0123456789 [continued]\nabcdefghij [continued]\n-tail\nshort\n0123456789\n"
    );
    assert_eq!(tend_logs::CONTINUED_MARKER, " [continued]");
}

#[test]
fn a_huge_line_without_newline_is_written_in_pieces_as_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_line = 64 * 1024;
    let logs = open(s);
    let (r, mut w) = std::io::pipe().unwrap();
    let reader = logs.capture(Stream::Out, r).unwrap();
    let chunk = vec![b'y'; 1024 * 1024];
    for _ in 0..20 {
        w.write_all(&chunk).unwrap();
    }
    let active = LogKind::Out.active_path(dir.path(), NAME);
    // Pieces reach the file while the line is still going: nothing waits for a newline.
    wait_until("pieces of the unfinished line", || {
        std::fs::metadata(&active).is_ok_and(|m| m.len() > 19 * 1024 * 1024)
    });
    drop(w);
    reader.join().unwrap();
    let all = read(&active);
    let pieces: Vec<&[u8]> = all
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(pieces.len(), 320);
    for p in &pieces[..319] {
        assert_eq!(p.len(), 64 * 1024 + " [continued]".len());
        assert!(p.ends_with(b" [continued]"));
    }
    assert_eq!(pieces[319], vec![b'y'; 64 * 1024]);
}

#[test]
fn a_partial_last_line_is_completed_at_eof() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.timestamps = true;
    let clock = clock("2026-11-21T14:05:09.123+00:00");
    let logs = open_at(s, &clock);
    let (r, mut w) = std::io::pipe().unwrap();
    let reader = logs.capture(Stream::Err, r).unwrap();
    w.write_all(b"done\nexiting mid-li").unwrap();
    w.write_all(b"ne").unwrap();
    drop(w);
    reader.join().unwrap();
    assert_eq!(
        read(&LogKind::Err.active_path(dir.path(), NAME)),
        b"2026-11-21T14:05:09.123+00:00 done\n2026-11-21T14:05:09.123+00:00 exiting mid-line\n"
    );
}

#[test]
fn a_pipe_held_open_elsewhere_blocks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(spec(dir.path()));
    let out = LogKind::Out.active_path(dir.path(), NAME);
    let (r, w) = std::io::pipe().unwrap();
    // A grandchild that inherited the write end and keeps it open.
    let mut grandchild = w.try_clone().unwrap();
    let first = logs.capture(Stream::Out, r).unwrap();
    let mut w = w;
    w.write_all(b"gen1\n").unwrap();
    wait_until("gen1 visible while the pipe is open", || {
        read(&out) == b"gen1\n"
    });
    drop(w); // the program exited

    // The other stream and the next generation work while the old reader still waits.
    feed(&logs, Stream::Err, b"err works\n");
    assert_eq!(
        read(&LogKind::Err.active_path(dir.path(), NAME)),
        b"err works\n"
    );
    feed(&logs, Stream::Out, b"gen2\n");
    assert_eq!(read(&out), b"gen1\ngen2\n");
    assert!(!first.is_finished());

    // The old generation's leftover writer still lands in the same file.
    grandchild.write_all(b"from grandchild\n").unwrap();
    wait_until("grandchild output", || {
        read(&out) == b"gen1\ngen2\nfrom grandchild\n"
    });
    drop(grandchild);
    first.join().unwrap();
}

#[test]
fn supervisor_lines_are_always_timestamped() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 100;
    let clock = clock("2026-11-21T14:05:09.123+01:00");
    let logs = open_at(s, &clock);
    logs.supervisor_line(b"started pid 42");
    logs.supervisor_line(b"exited 1\nrestarting\n");
    let ts = "2026-11-21T14:05:09.123+01:00 ";
    let tend = LogKind::Supervisor.active_path(dir.path(), NAME);
    // Same rotation policy: the third line did not fit any more.
    assert_eq!(
        history(dir.path(), LogKind::Supervisor),
        format!("{ts}started pid 42\n{ts}exited 1\n{ts}restarting\n").into_bytes()
    );
    assert_eq!(read(&tend), format!("{ts}restarting\n").into_bytes());
    assert_eq!(
        tend_logs::rotated_files(dir.path(), NAME, LogKind::Supervisor)
            .unwrap()
            .len(),
        1
    );
    assert!(logs.stats().supervisor.last_output.is_some());
}

#[test]
fn json_format_writes_one_object_per_line_with_the_runs_pid() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.format = tend_core::LogFormat::Json;
    let clock = clock("2026-11-21T14:05:09.123+01:00");
    let logs = open_at(s, &clock);
    let pipe = std::io::Cursor::new(b"one\n\"two\" \xff\nunfinished".to_vec());
    logs.capture_of(Some(42), Stream::Err, pipe)
        .unwrap()
        .join()
        .unwrap();
    logs.supervisor_line(b"started");
    let head = |stream: &str, pid: &str| {
        format!(
            r#"{{"time":"2026-11-21T14:05:09.123+01:00","stream":"{stream}","service":"svc",{pid}"line":"#
        )
    };
    let err = head("stderr", r#""pid":42,"#);
    // The bad byte is U+FFFD and counted; quotes are escaped; the unfinished line ends.
    let want: String = [r#""one""#, r#""\"two\" �""#, r#""unfinished""#]
        .map(|line| format!("{err}{line}}}\n"))
        .concat();
    assert_eq!(
        String::from_utf8(read(&LogKind::Err.active_path(dir.path(), NAME))).unwrap(),
        want
    );
    assert_eq!(logs.stats().err.replaced_bytes, 1);
    assert_eq!(
        String::from_utf8(read(&LogKind::Supervisor.active_path(dir.path(), NAME))).unwrap(),
        format!("{}\"started\"}}\n", head("tend", ""))
    );
}

#[test]
fn an_encoding_is_decoded_and_what_it_cannot_map_is_counted_and_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.encoding = Some("gbk".into());
    let events = Events::default();
    let logs = open_with(
        s,
        tend_logs::Options {
            events: Some(events.sink()),
            ..tend_logs::Options::default()
        },
    );
    // "你好" in GBK, then two bytes GBK cannot map, on two lines.
    feed(&logs, Stream::Out, b"\xc4\xe3\xba\xc3\n\xffx\n\xffy\n");
    assert_eq!(
        String::from_utf8(read(&LogKind::Out.active_path(dir.path(), NAME))).unwrap(),
        "你好\n\u{fffd}x\n\u{fffd}y\n"
    );
    assert_eq!(logs.stats().out.replaced_bytes, 2);
    let said = events
        .all()
        .into_iter()
        .filter(|e| matches!(e, tend_logs::LogEvent::Unmappable { .. }))
        .count();
    assert_eq!(said, 1);
}

#[test]
fn stats_report_bytes_last_output_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock("2026-11-21T14:05:09.123+01:00");
    let logs = open_at(spec(dir.path()), &clock);
    assert_eq!(logs.stats().out.last_output, None);
    feed(&logs, Stream::Out, b"hello\n");
    let stats = logs.stats();
    assert_eq!(stats.out.bytes_written, 6);
    assert_eq!(stats.err.bytes_written, 0);
    assert_eq!(
        stats.out.last_output,
        Some(std::time::SystemTime::from(at(
            "2026-11-21T14:05:09.123+01:00"
        )))
    );
    assert_eq!(stats.err.last_output, None);
    assert_eq!(stats.dropped_bytes(), 0);
    assert_eq!(stats.last_error, None);
    assert_eq!(
        stats.active_files,
        ["svc.out.log", "svc.err.log", "svc.tend.log"].map(|n| dir.path().join(n))
    );
}

#[test]
fn reconfigure_applies_live_and_reopens_on_mode_or_dir_change() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock("2026-11-21T14:05:09.123+01:00");
    let s = spec(dir.path());
    let logs = open_at(s.clone(), &clock);
    feed(&logs, Stream::Out, b"plain\n");

    let mut s2 = s.clone();
    s2.timestamps = true;
    s2.max_size = 50;
    logs.reconfigure(s2.clone()).unwrap();
    feed(&logs, Stream::Out, b"stamped\n");
    let out = LogKind::Out.active_path(dir.path(), NAME);
    assert_eq!(
        read(&out),
        b"plain\n2026-11-21T14:05:09.123+01:00 stamped\n"
    );
    feed(&logs, Stream::Out, b"rotates\n");
    assert_eq!(logs.stats().rotations, 1);

    let mut s3 = s2.clone();
    s3.mode = LogMode::Combined;
    s3.timestamps = false;
    s3.dir = dir.path().join("moved");
    logs.reconfigure(s3).unwrap();
    feed(&logs, Stream::Err, b"combined\n");
    logs.supervisor_line(b"hi");
    assert_eq!(read(&dir.path().join("moved/svc.log")), b"combined\n");
    assert!(read(&dir.path().join("moved/svc.tend.log")).ends_with(b" hi\n"));
    assert_eq!(logs.spec().mode, LogMode::Combined);
    assert_eq!(
        logs.stats().active_files,
        [
            dir.path().join("moved/svc.log"),
            dir.path().join("moved/svc.tend.log")
        ]
    );

    // A directory that cannot be created leaves everything as it was.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let mut bad = s2;
    bad.dir = blocker.join("sub");
    assert!(logs.reconfigure(bad).is_err());
    assert_eq!(logs.spec().dir, dir.path().join("moved"));
}

#[test]
fn the_housekeeper_ends_once_the_last_handle_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let logs = tend_logs::ServiceLogs::open(NAME, spec(dir.path()), None).unwrap();
    let end = logs.housekeeper_end();
    let kept = Arc::clone(&logs);
    drop(logs);
    // It cannot end while a handle is kept, however long this waits.
    assert!(!end.wait(Duration::from_millis(20)));
    drop(kept);
    assert!(end.wait(Duration::from_secs(60)), "{end:?}");
}
