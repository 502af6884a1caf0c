//! Helpers for tests that run the real `tend` binary against the fixture program.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const TEND: &str = env!("CARGO_BIN_EXE_tend");
pub const FIXTURE: &str = env!("CARGO_BIN_EXE_tend-fixture");

/// Polls `cond` until it holds or `within` passes. Never a bare sleep-and-hope.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A test's own directory with a config in it.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `svc.toml`; `{fixture}` in the text becomes the fixture's path.
    pub fn config(&self, text: &str) -> PathBuf {
        let p = self.path("svc.toml");
        std::fs::write(&p, text.replace("{fixture}", FIXTURE)).expect("write config");
        p
    }

    /// `tend <args>` with stdout and stderr going to files in the test dir.
    pub fn spawn(&self, args: &[&str]) -> Tend {
        let out = std::fs::File::create(self.path("tend.out")).expect("out");
        let err = std::fs::File::create(self.path("tend.err")).expect("err");
        let child = Command::new(TEND)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn tend");
        Tend {
            child,
            err: self.path("tend.err"),
        }
    }

    /// Runs `tend <args>` to completion (bounded) and returns (code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut t = self.spawn(args);
        let status = t.wait_exit(Duration::from_secs(60)).expect("tend finished");
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(self.path("tend.out")).unwrap_or_default(),
            t.stderr(),
        )
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// The pids a fixture wrote with --pid-file, by role.
    pub fn pids(&self, file: &str) -> Vec<(String, i32)> {
        self.read(file)
            .lines()
            .filter_map(|l| {
                let (role, pid) = l.split_once(' ')?;
                Some((role.to_owned(), pid.trim().parse().ok()?))
            })
            .collect()
    }
}

pub struct Tend {
    pub child: Child,
    err: PathBuf,
}

impl Tend {
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn wait_stderr(&self, needle: &str, within: Duration) -> bool {
        wait_until(within, || self.stderr().contains(needle))
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(within, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("signal tend");
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `pid` is a live process. A zombie counts as dead: it runs nothing and only
/// waits for its parent (or init) to reap it.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("?");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

pub fn file_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}
