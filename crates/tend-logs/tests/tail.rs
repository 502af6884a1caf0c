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

/// Writes `data` into a pipe that the logs capture, in chunks of uneven sizes, polling the
/// follower between chunks, so that anywhere from none to dozens of rotations (and
/// compressions) fall between two polls; then polls once more after everything is on disk.
fn follow_while_writing(
    logs: &std::sync::Arc<tend_logs::ServiceLogs>,
    follower: &mut Follower,
    data: &[u8],
) -> Vec<u8> {
    use std::io::Write as _;
    let (r, mut w) = std::io::pipe().unwrap();
    let reader = logs.capture(Stream::Out, r).unwrap();
    let mut seen = Vec::new();
    let mut rest = data;
    let mut step = 1usize;
    while !rest.is_empty() {
        step = (step * 7919 + 13) % 20_000 + 1;
        let n = step.min(rest.len());
        w.write_all(&rest[..n]).unwrap();
        rest = &rest[n..];
        follower.poll(&mut seen).unwrap();
    }
    drop(w);
    reader.join().unwrap();
    wait_until("compression done", || logs.stats().compress_pending == 0);
    follower.poll(&mut seen).unwrap();
    seen
}

/// Asserts two texts are equal, showing only where they part (they are large).
fn assert_same(got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let at = got.iter().zip(want).take_while(|(a, b)| a == b).count();
    let from = at.saturating_sub(120);
    panic!(
        "they part at byte {at} of {} (want {}):\n got: {:?}\nwant: {:?}",
        got.len(),
        want.len(),
        String::from_utf8_lossy(&got[from..(at + 120).min(got.len())]),
        String::from_utf8_lossy(&want[from..(at + 120).min(want.len())]),
    );
}

#[test]
fn family_follower_reads_every_line_once_however_many_rotations_fall_between_polls() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 512;
    s.compress = true;
    let logs = open(s);
    // Started before the first file exists: everything from the first file on.
    let mut follower = Follower::family(dir.path(), NAME, LogKind::Out, 10);
    let data = numbered(6000);
    let seen = follow_while_writing(&logs, &mut follower, &data);
    assert!(logs.stats().rotations > 500, "{:?}", logs.stats());
    assert_same(&seen, &history(dir.path(), LogKind::Out));
    assert_same(&seen, &data);
}

#[test]
fn family_follower_tells_identical_files_apart() {
    // Every file starts with the same bytes (a program that logs the same line over and
    // over, no timestamps), so only identity and order can tell them apart.
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 100;
    s.compress = true;
    let logs = open(s);
    feed(&logs, Stream::Out, b"before\n");
    let mut follower = Follower::family(dir.path(), NAME, LogKind::Out, 1);
    let data = b"GET /health 200\n".repeat(3000);
    let seen = follow_while_writing(&logs, &mut follower, &data);
    assert!(logs.stats().rotations > 300, "{:?}", logs.stats());
    assert_eq!(seen.len(), b"before\n".len() + data.len());
    assert!(seen.starts_with(b"before\n"));
}

#[test]
fn family_follower_starts_with_the_last_lines_and_goes_on_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 300;
    s.compress = true;
    let logs = open(s);
    let data = numbered(400);
    // Split at a line's end: a capture that ends mid-line ends that line.
    let mid = data.len() / 2
        + data[data.len() / 2..]
            .iter()
            .position(|b| *b == b'\n')
            .unwrap()
        + 1;
    let (first, second) = data.split_at(mid);
    feed(&logs, Stream::Out, first);
    wait_until("compression done", || logs.stats().compress_pending == 0);
    // The last lines come from the rotated (compressed) files when the active one has
    // fewer: 50 lines is several files.
    let mut follower = Follower::family(dir.path(), NAME, LogKind::Out, 50);
    let seen = follow_while_writing(&logs, &mut follower, second);
    let tail_of_first = last_n_lines(first, 50);
    assert_same(&seen, &[tail_of_first, second].concat());
}

#[test]
fn family_follower_under_retention_never_repeats_and_keeps_order() {
    // keep = 2: files are deleted soon after rotation, some before the follower gets to
    // them. What it prints must still be in order and never twice.
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 256;
    s.keep = 2;
    s.compress = true;
    let logs = open(s);
    let mut follower = Follower::family(dir.path(), NAME, LogKind::Out, 0);
    let data = numbered(4000);
    let seen = follow_while_writing(&logs, &mut follower, &data);
    let nums: Vec<usize> = String::from_utf8(seen)
        .unwrap()
        .lines()
        .map(|l| l[..8].parse().unwrap())
        .collect();
    assert!(nums.windows(2).all(|w| w[0] < w[1]), "in order, no repeats");
    assert_eq!(nums.last(), Some(&3999), "the end is there");
}

fn last_n_lines(data: &[u8], n: usize) -> &[u8] {
    let body = &data[..data.len() - 1];
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map_or(0, |(i, _)| i + 1);
    &data[start..]
}

#[test]
fn family_follower_keeps_up_with_a_writer_on_another_thread() {
    // The writer rotates (and compresses) on its own thread while the follower polls as
    // fast as it can: every race between a rename, a new active file, a compression and a
    // directory listing gets its chance. Nothing may be skipped or repeated.
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.max_size = 600;
    s.compress = true;
    let logs = open(s);
    let mut follower = Follower::family(dir.path(), NAME, LogKind::Out, 0);
    let data = numbered(30_000);
    let writer = {
        let logs = logs.clone();
        let data = data.clone();
        std::thread::spawn(move || feed_pipe(&logs, Stream::Out, data))
    };
    let mut seen = Vec::new();
    while !writer.is_finished() {
        follower.poll(&mut seen).unwrap();
    }
    writer.join().unwrap();
    // Everything is on disk now (plain or compressed, compression may still be going on):
    // the follower gets the rest.
    wait_until("the follower has it all", || {
        follower.poll(&mut seen).unwrap();
        seen.len() >= data.len()
    });
    assert!(logs.stats().rotations > 1000, "{:?}", logs.stats());
    assert_same(&seen, &data);
}

#[test]
fn matching_lines_filter_and_reach_back_to_since_across_rotated_files() {
    // One line a minute, 30-byte timestamps, files of about 4 lines, compressed.
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path());
    s.timestamps = true;
    s.max_size = 200;
    s.compress = true;
    let clock = clock("2026-12-07T10:00:00.000+00:00");
    let logs = open_at(s, &clock);
    for i in 0..40 {
        let level = if i % 5 == 0 { "ERROR" } else { "info" };
        feed(
            &logs,
            Stream::Out,
            format!("{level} event {i:02}\n").as_bytes(),
        );
        clock.advance(std::time::Duration::from_secs(60));
    }
    wait_until("compression done", || logs.stats().compress_pending == 0);
    assert!(logs.stats().rotations > 5, "{:?}", logs.stats());
    let text = |n, grep: &str, since: Option<&str>| {
        let keep = |l: &[u8]| String::from_utf8_lossy(l).contains(grep);
        let since = since.map(at);
        String::from_utf8(
            tend_logs::tail::matching_lines(dir.path(), NAME, LogKind::Out, n, &keep, since)
                .unwrap(),
        )
        .unwrap()
    };
    let events = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
            .collect()
    };
    // The last 3 errors, from the rotated (compressed) files too, oldest first.
    assert_eq!(events(&text(3, "ERROR", None)), ["25", "30", "35"]);
    // Everything since 10:33 (event 33 was written at 10:33).
    assert_eq!(
        events(&text(100, "", Some("2026-12-07T10:33:00.000+00:00"))),
        ["33", "34", "35", "36", "37", "38", "39"]
    );
    // Both: errors since 10:12, all of them.
    assert_eq!(
        events(&text(100, "ERROR", Some("2026-12-07T10:12:00.000+00:00"))),
        ["15", "20", "25", "30", "35"]
    );
    assert_eq!(text(10, "nothing like this", None), "");
}
