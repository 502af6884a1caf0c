//! Reading logs back: last lines across rotated (compressed) files, following rotations.

mod common;

use std::fs;

use common::*;
use tend_logs::tail::{Follower, last_lines};
use tend_logs::{LogKind, Stream};

#[test]
fn last_lines_reach_back_into_rotated_and_compressed_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 30; // three 10-byte lines per file
    s.compress = true;
    let logs = open(s);
    let lines: Vec<String> = (0..10).map(|i| format!("line-{i:04}\n")).collect();
    feed(&logs, Stream::Out, lines.concat().as_bytes());
    wait_until("compression done", || logs.stats().compress_pending == 0);
    // Files: [0,1,2] [3,4,5] [6,7,8] and the active [9].
    let tail =
        |n| String::from_utf8(last_lines(dir.path(), NAME, LogKind::Out, n).unwrap()).unwrap();
    assert_eq!(tail(0), "");
    assert_eq!(tail(1), lines[9]);
    assert_eq!(tail(2), lines[8..].concat());
    assert_eq!(tail(5), lines[5..].concat());
    assert_eq!(tail(100), lines.concat());
    assert_eq!(last_lines(dir.path(), NAME, LogKind::Err, 5).unwrap(), b"");
    assert_eq!(
        last_lines(&dir.path().join("none"), NAME, LogKind::Combined, 5).unwrap(),
        b""
    );
}

#[test]
fn follower_reads_across_rotations_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 200;
    let logs = open(s);
    let mut follower = Follower::new(LogKind::Supervisor.active_path(dir.path(), NAME));
    let mut seen = Vec::new();
    let mut expected = Vec::new();
    for i in 0..300 {
        let line = format!("event {i}");
        logs.supervisor_line(line.as_bytes());
        expected.push(line);
        // Poll at irregular points so rotations fall between polls too (but never two
        // rotations between polls, which `tail -F` cannot follow either).
        if i % 3 != 1 {
            follower.poll(&mut seen).unwrap();
        }
    }
    follower.poll(&mut seen).unwrap();
    assert!(logs.stats().rotations > 50);
    let got: Vec<String> = String::from_utf8(seen)
        .unwrap()
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.to_owned())
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn follower_from_end_only_shows_new_output_and_waits_for_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    let mut missing = Follower::new(&path);
    let mut out = Vec::new();
    assert_eq!(missing.poll(&mut out).unwrap(), 0);
    fs::write(&path, "old\n").unwrap();
    let mut from_end = Follower::from_end(&path);
    assert_eq!(missing.poll(&mut out).unwrap(), 4);
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all_ext(b"new\n");
    let mut new = Vec::new();
    from_end.poll(&mut new).unwrap();
    assert_eq!(new, b"new\n");
    // Truncation (copy-truncate by some other tool) starts over from the beginning.
    fs::write(&path, "t\n").unwrap();
    let mut after = Vec::new();
    from_end.poll(&mut after).unwrap();
    assert_eq!(after, b"t\n");
}

trait WriteAllExt {
    fn write_all_ext(self, b: &[u8]);
}

impl WriteAllExt for fs::File {
    fn write_all_ext(mut self, b: &[u8]) {
        std::io::Write::write_all(&mut self, b).unwrap();
    }
}
