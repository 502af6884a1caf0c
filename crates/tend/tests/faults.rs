//! Faults of the machine under tend: a full log disk. Real processes, a real tiny tmpfs.
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, TEND, Tend, wait_until};
use nix::sys::signal::Signal;

/// Whether this test process may make mount namespaces (root, as in CI).
fn can_mount() -> bool {
    nix::unistd::geteuid().is_root()
        && Command::new("unshare")
            .args(["-m", "true"])
            .status()
            .is_ok_and(|s| s.success())
}

/// `tend run CFG` in a mount namespace of its own, where `dir` is a 64 KiB tmpfs that a
/// filler file leaves almost no room in. `unshare` and the shell exec into tend, so the
/// child's pid is tend's.
fn run_on_full_disk(env: &Env, cfg: &Path, dir: &Path) -> Tend {
    std::fs::create_dir_all(dir).unwrap();
    let out = std::fs::File::create(env.path("tend.out")).unwrap();
    let err = std::fs::File::create(env.path("tend.err")).unwrap();
    let script = r#"mount -t tmpfs -o size=64k tmpfs "$1" && head -c 61440 /dev/zero > "$1/filler" && exec "$2" run "$3""#;
    let child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(dir)
        .arg(TEND)
        .arg(cfg)
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    Tend::from_child(child, env.path("tend.err"))
}

/// `path` as tend's mount namespace sees it.
fn inside(pid: u32, path: &Path) -> PathBuf {
    Path::new(&format!("/proc/{pid}/root")).join(path.strip_prefix("/").unwrap())
}

#[test]
fn a_full_log_disk_never_stops_supervision_and_writing_resumes_when_space_returns() {
    if !can_mount() {
        eprintln!("skipped: needs root and unshare -m (CI runs it)");
        return;
    }
    let env = Env::new();
    let logs = env.path("logs");
    // A program that prints and exits over and over, faster than the disk can take.
    let cfg = env.config(&format!(
        r#"
name = "full"
command = ["{{fixture}}", "--print", "300", "--exit-after", "50ms", "--exit", "1"]
[restart]
policy = "always"
delay = "20ms"
max_delay = "20ms"
limit = 0
[stop]
timeout = "2s"
[logs]
dir = "{}"
max_size = "4KiB"
keep = 2
"#,
        logs.display()
    ));
    let mut tend = run_on_full_disk(&env, &cfg, &logs);
    let pid = tend.child.id();
    // The case that used to freeze tend: a failed write to tend's own log, reported
    // through the reporter that was writing it.
    let own_log = logs.join("full.tend.log");
    let own_trouble = format!("cannot write log file {}", own_log.display());
    assert!(
        tend.wait_stderr(&own_trouble, Duration::from_secs(30)),
        "disk trouble of tend's own log is reported: {}",
        tend.stderr()
    );
    let starts = |t: &Tend| t.stderr().matches(": started pid").count();
    let before = starts(&tend);
    assert!(
        wait_until(Duration::from_secs(20), || starts(&tend) >= before + 10),
        "tend keeps restarting the program on a full disk ({} starts before, {} now): {}",
        before,
        starts(&tend),
        tend.stderr()
    );
    // Once per episode and file (out, err, tend's own), not once per line or per start.
    let reports = tend.stderr().matches("cannot write log file").count();
    assert!(reports <= 3, "disk trouble said {reports} times");

    // Space comes back: tend writes again, and says what was lost.
    std::fs::remove_file(inside(pid, &logs.join("filler"))).unwrap();
    assert!(
        tend.wait_stderr("is writable again", Duration::from_secs(20)),
        "writing resumes: {}",
        tend.stderr()
    );
    let out_log = inside(pid, &logs.join("full.out.log"));
    let grew = std::fs::metadata(&out_log).map(|m| m.len()).unwrap_or(0);
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::metadata(&out_log).is_ok_and(|m| m.len() != grew)
        }),
        "the program's output is written again"
    );

    // And a stop is answered within the stop timeout.
    let asked = Instant::now();
    tend.signal(Signal::SIGTERM);
    let status = tend.wait_exit(Duration::from_secs(6));
    assert!(
        status.is_some(),
        "tend answers SIGTERM within the stop timeout: {}",
        tend.stderr()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );
}
