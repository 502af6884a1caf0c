//! The log pipeline end to end: `tend run` capturing a real program, and `tend logs`.
#![cfg(unix)]

mod common;

use std::io::Read as _;
use std::time::Duration;

use common::{Env, wait_until};
use tend_logs::{LogKind, rotated_files};

/// Every line of one stream, in order: rotated files (decompressed) oldest first, then the
/// active file.
fn all_lines(dir: &std::path::Path, name: &str, kind: LogKind) -> Vec<Vec<u8>> {
    let mut bytes = Vec::new();
    for f in rotated_files(dir, name, kind).expect("list rotated files") {
        let raw = std::fs::read(&f.path).expect("read rotated file");
        if f.compressed {
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut bytes)
                .expect("gunzip");
        } else {
            bytes.extend_from_slice(&raw);
        }
    }
    bytes.extend(std::fs::read(kind.active_path(dir, name)).unwrap_or_default());
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn small_max_size_keeps_every_line_once_and_in_order_across_rotations() {
    let env = Env::new();
    let n = 40_000; // 100-byte lines: 4 MB, ~60 rotations at 64 KiB
    let cfg = env.config(&format!(
        r#"
name = "gen"
command = ["{{fixture}}", "--generate", "{n}"]
[restart]
policy = "never"
[logs]
timestamps = false
max_size = "64KiB"
keep = 0
max_age = "0s"
max_total = "0"
compress = true
"#
    ));
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let dir = env.path("logs");
    // Compression runs in the background and may still be finishing: wait for it.
    assert!(wait_until(Duration::from_secs(30), || {
        std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .unwrap_or(false)
    }));
    let rotated = rotated_files(&dir, "gen", LogKind::Out).unwrap();
    assert!(
        rotated.len() > 30,
        "expected many rotations, got {}",
        rotated.len()
    );
    // How many rotated files are compressed by now depends on the machine's load: the
    // compressor runs at the lowest priority and tend gives it up at exit (the next start
    // finishes it). tend-logs' rotation tests check compression and that catch-up
    // deterministically; here every line must be read back, whether plain or gzipped.
    let lines = all_lines(&dir, "gen", LogKind::Out);
    assert_eq!(lines.len(), n, "no line lost or duplicated");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line.len(), 99, "line {i} intact");
        let num: usize = std::str::from_utf8(&line[..12]).unwrap().parse().unwrap();
        assert_eq!(num, i, "order kept");
    }
}

#[test]
fn a_program_that_exits_mid_line_gets_its_last_line_written() {
    let env = Env::new();
    let cfg = env.config(
        "name = \"mid\"\ncommand = [\"{fixture}\", \"--print\", \"1\", \"--partial\", \"no newline here\"]\n[restart]\npolicy = \"never\"\n[logs]\ntimestamps = false\n",
    );
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.read("logs/mid.out.log"), "no newline hereline 1\n");
}

#[test]
fn tend_logs_prints_the_last_lines_of_each_stream() {
    let env = Env::new();
    let cfg = env.config(
        "name = \"tl\"\ncommand = [\"{fixture}\", \"--print\", \"50\", \"--print-err\", \"5\"]\n[restart]\npolicy = \"never\"\n[logs]\ntimestamps = false\n",
    );
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = env.run(&["logs", cfg.to_str().unwrap(), "-n", "3", "--out"]);
    assert_eq!(code, 0);
    assert_eq!(out, "line 48\nline 49\nline 50\n");
    let (_, out, _) = env.run(&["logs", cfg.to_str().unwrap(), "-n", "2", "--err"]);
    assert_eq!(out, "err 4\nerr 5\n");
    let (_, out, _) = env.run(&["logs", cfg.to_str().unwrap(), "-n", "1", "--tend"]);
    assert!(
        out.contains("not restarting after exited with code 0"),
        "{out}"
    );
    let (code, _, err) = env.run(&["logs", "no-such-service"]);
    assert_eq!(code, 3, "an unknown service name is 'not installed': {err}");
}

#[test]
fn tend_logs_follow_crosses_rotations_without_gaps() {
    let env = Env::new();
    let cfg = env.config(
        r#"
name = "fl"
command = ["{fixture}", "--print-every", "2ms"]
[logs]
timestamps = false
max_size = "4KiB"
keep = 0
compress = false
"#,
    );
    let _tend = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(wait_until(Duration::from_secs(10), || env
        .path("logs/fl.out.log")
        .exists()));
    let out = std::fs::File::create(env.path("follow.out")).unwrap();
    let mut follow = std::process::Command::new(common::TEND)
        .args(["logs", cfg.to_str().unwrap(), "-n", "0", "-f", "--out"])
        .stdout(out)
        .spawn()
        .unwrap();
    // ~400 lines of ~9 bytes each is nearly one rotation; wait for several.
    let seen = || {
        env.read("follow.out")
            .lines()
            .filter_map(|l| l.strip_prefix("tick ")?.parse::<u64>().ok())
            .collect::<Vec<_>>()
    };
    assert!(wait_until(Duration::from_secs(30), || {
        rotated_files(&env.path("logs"), "fl", LogKind::Out).map_or(0, |r| r.len()) >= 3
            && seen().len() > 1500
    }));
    let _ = follow.kill();
    let _ = follow.wait();
    let ticks = seen();
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "gap or repeat while following: {:?}",
            pair
        );
    }
}

#[test]
fn tend_logs_follow_with_grep_shows_the_last_matches_then_only_matches_without_gaps() {
    let env = Env::new();
    let cfg = env.config(
        r#"
name = "fg"
command = ["{fixture}", "--print-every", "2ms"]
[logs]
timestamps = false
max_size = "4KiB"
keep = 0
compress = false
"#,
    );
    let c = cfg.to_str().unwrap();
    let _tend = env.spawn(&["run", c]);
    // Matching lines before the follow starts: it shows the last two of them first.
    assert!(wait_until(Duration::from_secs(10), || env
        .read("logs/fg.out.log")
        .contains("tick 30\n")));
    let out = std::fs::File::create(env.path("follow.out")).unwrap();
    let mut follow = std::process::Command::new(common::TEND)
        .args([
            "logs",
            c,
            "-n",
            "2",
            "-f",
            "--out",
            "--grep",
            "^tick [0-9]*0$",
        ])
        .stdout(out)
        .spawn()
        .unwrap();
    // Whole lines only: the follower may be killed half-way through writing one.
    let seen = || {
        let text = env.read("follow.out");
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole.lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert!(
        wait_until(Duration::from_secs(30), || {
            rotated_files(&env.path("logs"), "fg", LogKind::Out).map_or(0, |r| r.len()) >= 2
                && seen().len() >= 40
        }),
        "{:?}",
        seen()
    );
    let _ = follow.kill();
    let _ = follow.wait();
    let lines = seen();
    let mut ticks: Vec<u64> = lines
        .iter()
        .map(|l| {
            l.strip_prefix("tick ")
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("not a tick line: {l:?}"))
        })
        .collect();
    assert!(ticks.iter().all(|t| t % 10 == 0), "only matches: {ticks:?}");
    assert!(
        ticks[0] >= 20,
        "the last matches first, not the first: {ticks:?}"
    );
    // A line written while the follow starts may show twice, never not at all.
    ticks.dedup();
    for pair in ticks.windows(2) {
        assert_eq!(pair[1], pair[0] + 10, "a gap while following: {ticks:?}");
    }
}

#[test]
fn tend_logs_follow_prints_every_line_in_order_however_fast_files_rotate() {
    let env = Env::new();
    let n = 100_000; // 100-byte lines at 4 KiB: about 2,500 rotations in a second or two.
    let cfg = env.config(&format!(
        r#"
name = "fast"
command = ["{{fixture}}", "--generate", "{n}"]
[restart]
policy = "never"
[logs]
timestamps = false
max_size = "4KiB"
keep = 0
max_age = "0s"
max_total = "0"
"#
    ));
    // The follower is following before the program writes: it has shown the one line
    // already in the file when the run starts.
    std::fs::create_dir_all(env.path("logs")).unwrap();
    std::fs::write(env.path("logs/fast.out.log"), "ready\n").unwrap();
    let out = std::fs::File::create(env.path("follow.out")).unwrap();
    let mut follow = std::process::Command::new(common::TEND)
        .args(["logs", cfg.to_str().unwrap(), "-n", "1", "-f", "--out"])
        .stdout(out)
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || env.read("follow.out")
            == "ready\n"),
        "the follower started"
    );
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let seen = || {
        env.read("follow.out")
            .lines()
            .skip(1)
            .filter_map(|l| l.get(..12)?.parse::<usize>().ok())
            .collect::<Vec<_>>()
    };
    // Every line is 100 bytes: the file's length says when all have arrived, without
    // parsing it over and over.
    let want_len = "ready\n".len() as u64 + 100 * n as u64;
    let complete = wait_until(Duration::from_secs(120), || {
        std::fs::metadata(env.path("follow.out")).is_ok_and(|m| m.len() >= want_len)
    });
    let _ = follow.kill();
    let _ = follow.wait();
    let lines = seen();
    let gaps: Vec<String> = std::iter::once(None)
        .chain(lines.iter().map(Some))
        .zip(lines.iter())
        .filter(|(prev, next)| prev.map_or(0, |p| p + 1) != **next)
        .map(|(prev, next)| format!("{prev:?} -> {next}"))
        .take(10)
        .collect();
    assert!(
        complete,
        "the follower printed {} of {n} lines; gaps: {gaps:?}",
        lines.len()
    );
    assert_eq!(lines.len(), n, "no line repeated");
    for (i, num) in lines.iter().enumerate() {
        assert_eq!(*num, i, "line {i} in order");
    }
}

#[test]
fn a_bare_word_is_a_service_name_even_when_a_file_of_that_name_is_here() {
    // One rule for every verb (docs/cli.md): a path separator or `.toml` makes a config
    // file; a file called `svc` in the current directory does not turn `svc` into one.
    let env = Env::new();
    let cfg = env.config(
        r#"
name = "svc"
command = ["{fixture}", "--partial", "hello"]
[restart]
policy = "never"
"#,
    );
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    std::fs::copy(&cfg, env.path("svc")).unwrap();
    // `./svc` is the file: its logs.
    let (code, out, err) = env.run(&["logs", "./svc", "--out"]);
    assert!(
        code == 0 && out.trim_end().ends_with(" hello"),
        "{code} {out:?} {err}"
    );
    // `svc` is a service name, whatever is in the directory: and it is not installed.
    let (code, _, err) = env.run(&["logs", "svc", "--out"]);
    assert_ne!(code, 0, "a name, not the file: {err}");
    assert!(err.contains("svc"), "{err}");
    let (_, out, _) = env.run(&["status", "svc", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_ne!(v["state"], "stopped", "not the file's status: {out}");
}

/// Runs a fixture that writes `hex` to stdout under `[logs] encoding = enc` and returns the
/// out log and tend's stderr.
fn run_encoded(enc: &str, hex: &str) -> (String, String) {
    let env = Env::new();
    let cfg = env.config(&format!(
        r#"
name = "enc"
command = ["{{fixture}}", "--raw-out", "{hex}"]
[restart]
policy = "never"
[logs]
timestamps = false
encoding = "{enc}"
"#
    ));
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(env.path("logs/enc.out.log")).unwrap();
    (
        String::from_utf8(bytes).expect("the log file is UTF-8"),
        err,
    )
}

#[test]
fn gbk_and_utf16_output_is_written_as_utf8() {
    // "你好，世界" in GBK, and "你好" in UTF-16LE with its byte order mark.
    let (text, err) = run_encoded("gbk", "c4e3bac3a3accac0bde70a");
    assert_eq!(text, "你好，世界\n", "{err}");
    let (text, err) = run_encoded("utf-16le", "fffe604f7d590a00");
    assert_eq!(text, "你好\n", "{err}");
    assert!(!err.contains("U+FFFD"), "{err}");
}

#[test]
fn bytes_an_encoding_cannot_map_are_replaced_counted_and_said() {
    let (text, err) = run_encoded("utf-8", "6f6bff0a");
    assert_eq!(text, "ok\u{fffd}\n");
    assert!(
        err.contains("the program's stdout is not all valid utf-8"),
        "said once: {err}"
    );
}

#[test]
fn without_encoding_bytes_stay_as_they_are() {
    let env = Env::new();
    let cfg = env.config(
        r#"
name = "raw"
command = ["{fixture}", "--raw-out", "c4e3ff0a"]
[restart]
policy = "never"
[logs]
timestamps = false
"#,
    );
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(env.path("logs/raw.out.log")).unwrap(),
        b"\xc4\xe3\xff\n"
    );
}

#[test]
fn tend_logs_grep_and_since_pick_lines_and_say_what_is_wrong() {
    let env = Env::new();
    let cfg = env.config(
        r#"
name = "picky"
command = ["{fixture}", "--print", "30"]
[restart]
policy = "never"
"#,
    );
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let c = cfg.to_str().unwrap();
    // line 1, line 10..19, line 21.. : the last 3 with a "1" in them.
    let (code, out, err) = env.run(&["logs", c, "--out", "--grep", "line 1[0-9]$", "-n", "3"]);
    assert_eq!(code, 0, "{err}");
    let tails: Vec<&str> = out.lines().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(tails, ["line 17", "line 18", "line 19"], "{out}");
    // Everything was written within the last hour, and nothing in the future.
    let (_, out, _) = env.run(&["logs", c, "--out", "--since", "1h", "-n", "100"]);
    assert_eq!(out.lines().count(), 30, "{out}");
    let (_, out, _) = env.run(&["logs", c, "--out", "--since", "2099-01-01T00:00:00+00:00"]);
    assert_eq!(out, "");
    // Bad input names the argument and how to fix it.
    let (code, _, err) = env.run(&["logs", c, "--since", "soonish"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--since `soonish`") && err.contains("10m"),
        "{err}"
    );
    let (code, _, err) = env.run(&["logs", c, "--grep", "(unclosed"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--grep `(unclosed` is not a regular expression"),
        "{err}"
    );
}

#[test]
fn json_format_keeps_every_line_as_one_object_across_rotations() {
    let env = Env::new();
    let n = 30_000;
    let cfg = env.config(&format!(
        r#"
name = "js"
command = ["{{fixture}}", "--generate", "{n}"]
[restart]
policy = "never"
[logs]
format = "json"
max_size = "64KiB"
keep = 0
max_age = "0s"
max_total = "0"
compress = false
"#
    ));
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let dir = env.path("logs");
    let lines = all_lines(&dir, "js", LogKind::Out);
    assert_eq!(lines.len(), n, "no line lost or duplicated");
    let mut pids = std::collections::HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap_or_else(|e| {
            panic!(
                "line {i} is not JSON ({e}): {}",
                String::from_utf8_lossy(line)
            )
        });
        assert_eq!(v["service"], "js");
        assert_eq!(v["stream"], "stdout");
        assert!(chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).is_ok());
        let text = v["line"].as_str().unwrap();
        assert_eq!(text[..12].parse::<usize>().unwrap(), i, "in order");
        pids.insert(v["pid"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 1, "one run, one pid");
    assert!(
        rotated_files(&dir, "js", LogKind::Out).unwrap().len() > 10,
        "it rotated"
    );
    // tend's own lines are JSON too.
    let own = std::fs::read_to_string(env.path("logs/js.tend.log")).unwrap();
    for l in own.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["stream"], "tend");
    }
    // --since reads the time of a JSON line.
    let (_, out, _) = env.run(&[
        "logs",
        cfg.to_str().unwrap(),
        "--out",
        "--since",
        "1h",
        "-n",
        "5",
    ]);
    assert_eq!(out.lines().count(), 5, "{out}");
}
