//! Test doubles for the [`Runner`] and [`Files`] seams, and for the Windows SCM
//! ([`FakeScm`], the [`crate::scm::ScmApi`] and [`crate::scm::Host`] seams) and the Run
//! entry ([`FakeRunKey`], [`crate::run_key::Host`]), public so the
//! CLI's tests can use them too. Small and dependency-free, so they are always compiled rather than hidden
//! behind a feature.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::plan::Files;
use crate::runner::{RunError, RunOutput, Runner};

pub use crate::run_key::fake::{FAKE_TEND_PID, FakeRunKey, Spawn, status_text};
pub use crate::scm::fake::{FAKE_PID, FakeScm, FakeService, running, stopped};

/// A scripted answer of [`FakeRunner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Exit code 0 with this stdout.
    Success(String),
    /// A non-zero exit.
    Exit {
        /// The exit code.
        code: i32,
        /// Its stdout.
        stdout: String,
        /// Its stderr.
        stderr: String,
    },
    /// The program could not be started.
    SpawnError(io::ErrorKind),
}

impl Reply {
    /// Success with this stdout.
    #[must_use]
    pub fn ok(stdout: &str) -> Self {
        Self::Success(stdout.to_owned())
    }

    /// A failure with this exit code and stderr.
    #[must_use]
    pub fn exit(code: i32, stderr: &str) -> Self {
        Self::Exit {
            code,
            stdout: String::new(),
            stderr: stderr.to_owned(),
        }
    }
}

/// A [`Runner`] that records every argv and answers from a script: the reply registered
/// for exactly that argv, otherwise success with empty output.
#[derive(Debug, Default)]
pub struct FakeRunner {
    calls: Mutex<Vec<Vec<String>>>,
    replies: Mutex<Vec<(Vec<String>, Reply)>>,
}

impl FakeRunner {
    /// A runner where every command succeeds silently.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `argv` with `reply` from now on (a later registration for the same argv
    /// wins).
    pub fn reply(&self, argv: &[&str], reply: Reply) -> &Self {
        let argv = argv.iter().map(|s| (*s).to_owned()).collect();
        lock(&self.replies).push((argv, reply));
        self
    }

    /// Every argv run so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<Vec<String>> {
        lock(&self.calls).clone()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock has already failed; keep the data.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fakes' clock: it only moves when the backend sleeps, so a wait that runs out takes
/// no time.
#[derive(Debug)]
pub(crate) struct FakeClock {
    start: Instant,
    slept: Mutex<Duration>,
}

impl FakeClock {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            slept: Mutex::default(),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.start + self.slept()
    }

    pub(crate) fn sleep(&self, d: Duration) {
        *lock(&self.slept) += d;
    }

    /// How long the backend slept, in all.
    pub(crate) fn slept(&self) -> Duration {
        *lock(&self.slept)
    }
}

impl Runner for FakeRunner {
    fn run(&self, argv: &[&str]) -> Result<RunOutput, RunError> {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        lock(&self.calls).push(argv.clone());
        let reply = lock(&self.replies)
            .iter()
            .rev()
            .find(|(a, _)| *a == argv)
            .map(|(_, r)| r.clone());
        match reply.unwrap_or_else(|| Reply::ok("")) {
            Reply::Success(stdout) => Ok(RunOutput {
                stdout,
                stderr: String::new(),
            }),
            Reply::Exit {
                code,
                stdout,
                stderr,
            } => Err(RunError::Failed {
                argv,
                code: Some(code),
                stdout,
                stderr,
            }),
            Reply::SpawnError(kind) => Err(RunError::Spawn {
                argv,
                source: io::Error::new(kind, "scripted spawn error"),
            }),
        }
    }
}

/// An in-memory [`Files`]: records directories (with mode and owner) and files (with
/// contents and mode).
#[derive(Debug, Default)]
pub struct MemFiles {
    dirs: Mutex<BTreeMap<PathBuf, (u32, Option<String>)>>,
    files: Mutex<BTreeMap<PathBuf, (String, u32)>>,
    removed: Mutex<BTreeSet<PathBuf>>,
}

impl MemFiles {
    /// Empty.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A file's contents and mode.
    #[must_use]
    pub fn file(&self, path: impl AsRef<Path>) -> Option<(String, u32)> {
        lock(&self.files).get(path.as_ref()).cloned()
    }

    /// Whether a directory was created.
    #[must_use]
    pub fn has_dir(&self, path: impl AsRef<Path>) -> bool {
        lock(&self.dirs).contains_key(path.as_ref())
    }

    /// A created directory's mode and owner.
    #[must_use]
    pub fn dir(&self, path: impl AsRef<Path>) -> Option<(u32, Option<String>)> {
        lock(&self.dirs).get(path.as_ref()).cloned()
    }

    /// Whether a file was removed.
    #[must_use]
    pub fn was_removed(&self, path: impl AsRef<Path>) -> bool {
        lock(&self.removed).contains(path.as_ref())
    }
}

impl Files for MemFiles {
    fn create_dir(&self, path: &Path, mode: u32, owner: Option<&str>) -> io::Result<()> {
        lock(&self.dirs).insert(path.to_owned(), (mode, owner.map(str::to_owned)));
        Ok(())
    }

    fn write_file(&self, path: &Path, contents: &str, mode: u32) -> io::Result<()> {
        lock(&self.files).insert(path.to_owned(), (contents.to_owned(), mode));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        lock(&self.removed).insert(path.to_owned());
        match lock(&self.files).remove(path) {
            Some(_) => Ok(()),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}

/// A Windows service's spec as the SCM and Run-entry tests install it: `api`, running
/// `C:/app/api.exe`, logs in `logs`.
#[cfg(test)]
pub(crate) fn windows_spec(service: tend_core::InstallSpec, logs: &str) -> tend_core::ServiceSpec {
    use tend_core::{LogSpec, Program, RestartSpec, ServiceName, StopSpec};
    tend_core::ServiceSpec {
        name: ServiceName::new("api").unwrap(),
        display_name: "API server".into(),
        description: None,
        config_path: "C:/app/api.toml".into(),
        base_dir: "C:/app".into(),
        command: tend_core::CommandSpec {
            program: Program::Path("C:/app/api.exe".into()),
            args: vec![],
        },
        working_dir: "C:/app".into(),
        env: vec![],
        restart: RestartSpec::default(),
        stop: StopSpec::default(),
        logs: LogSpec::with_dir(logs.into()),
        service,
        health: None,
        limits: None,
        notify: None,
        metrics: None,
        diagnostics: tend_core::DiagnosticsSpec::default(),
        upgrade: tend_core::UpgradeSpec::default(),
    }
}
