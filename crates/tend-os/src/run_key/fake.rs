//! [`FakeRunKey`]: an in-memory user registry, disk and process table for the Run-entry
//! backend, recording every change and answering from a small model of tend's processes.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tend_core::ServiceName;

use super::{Host, Spawned, stderr_file};
use crate::testing::{FakeClock, lock};
use crate::{Error, Layout};

/// The pid of the tend a fake `spawn` starts.
pub const FAKE_TEND_PID: u32 = 7070;

/// What the tend started by `tend start --user` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spawn {
    /// Supervises: writes `running` into its status file at once.
    Runs,
    /// Cannot start the program: writes `failed` with this reason.
    Fails(String),
    /// Exits at once with this exit status, having written this to its stderr file.
    Exits {
        /// As `ExitStatus` displays it.
        status: String,
        /// Its stderr.
        stderr: String,
    },
    /// Runs but never writes its status file.
    Silent,
}

/// An in-memory [`Host`] for [`super::RunEntry`].
///
/// `calls()` lists every change in order (`write <path>`, `set_run_value <value> =
/// <command>`, `spawn <name>`, `set_event <event>`, `terminate <pid>`, ...); reads are not
/// listed. A call whose record starts with a prefix given to [`FakeRunKey::fail`] fails
/// with that OS error code. The clock only moves when the backend sleeps.
#[derive(Debug)]
pub struct FakeRunKey {
    calls: Mutex<Vec<String>>,
    failures: Mutex<Vec<(String, i32)>>,
    files: Mutex<BTreeMap<PathBuf, String>>,
    registry: Mutex<BTreeMap<String, String>>,
    alive: Mutex<BTreeSet<u32>>,
    spawn: Mutex<Spawn>,
    obeys_stop: Mutex<bool>,
    exe: PathBuf,
    clock: FakeClock,
}

impl Default for FakeRunKey {
    fn default() -> Self {
        Self::new()
    }
}

/// A status file's text as a supervisor writes it (the fields the install side reads).
#[must_use]
pub fn status_text(state: &str, pid: u32, failed_reason: Option<&str>) -> String {
    serde_json::json!({
        "state": state,
        "supervisor_pid": pid,
        "failed_reason": failed_reason,
        "updated_at": "2026-01-01T00:00:00Z",
    })
    .to_string()
}

impl FakeRunKey {
    /// No Run values, an empty disk, no tend running; a started tend supervises and obeys
    /// the stop event.
    #[must_use]
    pub fn new() -> Self {
        Self {
            calls: Mutex::default(),
            failures: Mutex::default(),
            files: Mutex::default(),
            registry: Mutex::default(),
            alive: Mutex::default(),
            spawn: Mutex::new(Spawn::Runs),
            obeys_stop: Mutex::new(true),
            exe: PathBuf::from(r"C:\Program Files\tend\tend.exe"),
            clock: FakeClock::new(),
        }
    }

    /// Every change so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// Forgets the calls so far.
    pub fn clear_calls(&self) {
        lock(&self.calls).clear();
    }

    /// Calls whose record starts with `prefix` fail with the OS error `code`.
    pub fn fail(&self, prefix: &str, code: i32) -> &Self {
        lock(&self.failures).push((prefix.to_owned(), code));
        self
    }

    /// What the next started tend does.
    pub fn on_spawn(&self, spawn: Spawn) -> &Self {
        *lock(&self.spawn) = spawn;
        self
    }

    /// Whether a running tend exits when its stop event is set.
    pub fn obeys_stop(&self, obeys: bool) -> &Self {
        *lock(&self.obeys_stop) = obeys;
        self
    }

    /// A tend with `pid` runs and wrote `status_file`.
    pub fn running(&self, status_file: impl Into<PathBuf>, pid: u32) -> &Self {
        self.put_file(status_file, &status_text("running", pid, None));
        lock(&self.alive).insert(pid);
        self
    }

    /// Whether a tend with `pid` runs.
    #[must_use]
    pub fn is_alive(&self, pid: u32) -> bool {
        lock(&self.alive).contains(&pid)
    }

    /// A file on the fake disk.
    pub fn put_file(&self, path: impl Into<PathBuf>, text: &str) -> &Self {
        lock(&self.files).insert(path.into(), text.to_owned());
        self
    }

    /// A file's text.
    #[must_use]
    pub fn file(&self, path: impl AsRef<Path>) -> Option<String> {
        lock(&self.files).get(path.as_ref()).cloned()
    }

    /// A Run value.
    #[must_use]
    pub fn value(&self, value: &str) -> Option<String> {
        lock(&self.registry).get(value).cloned()
    }

    /// How long the backend slept, in all.
    #[must_use]
    pub fn slept(&self) -> Duration {
        self.clock.slept()
    }

    fn call(&self, record: String) -> io::Result<()> {
        let failure = lock(&self.failures)
            .iter()
            .find(|(p, _)| record.starts_with(p.as_str()))
            .map(|(_, c)| *c);
        lock(&self.calls).push(record);
        failure.map_or(Ok(()), |c| Err(io::Error::from_raw_os_error(c)))
    }
}

/// A spawned fake tend.
struct Child {
    pid: u32,
    exit: Option<String>,
}

impl Spawned for Child {
    fn id(&self) -> u32 {
        self.pid
    }

    fn exited(&mut self) -> Option<String> {
        self.exit.clone()
    }
}

impl Host for FakeRunKey {
    fn current_exe(&self) -> io::Result<PathBuf> {
        Ok(self.exe.clone())
    }

    fn read(&self, path: &Path) -> io::Result<Option<String>> {
        Ok(lock(&self.files).get(path).cloned())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.call(format!("mkdir {}", path.display()))
    }

    fn write(&self, path: &Path, text: &str) -> io::Result<()> {
        self.call(format!("write {}", path.display()))?;
        lock(&self.files).insert(path.to_owned(), text.to_owned());
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.call(format!("remove {}", path.display()))?;
        match lock(&self.files).remove(path) {
            Some(_) => Ok(()),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn run_value(&self, value: &str) -> io::Result<Option<String>> {
        Ok(lock(&self.registry).get(value).cloned())
    }

    fn set_run_value(&self, value: &str, command: &str) -> io::Result<()> {
        self.call(format!("set_run_value {value} = {command}"))?;
        lock(&self.registry).insert(value.to_owned(), command.to_owned());
        Ok(())
    }

    fn delete_run_value(&self, value: &str) -> io::Result<()> {
        self.call(format!("delete_run_value {value}"))?;
        lock(&self.registry).remove(value);
        Ok(())
    }

    fn supervisor_alive(&self, pid: u32, _updated_at: &str) -> bool {
        self.is_alive(pid)
    }

    fn spawn(&self, name: &ServiceName, layout: &Layout) -> Result<Box<dyn Spawned>, Error> {
        self.call(format!("spawn {name}"))
            .map_err(|e| Error::io(format!("cannot start tend for `{name}`"), e))?;
        let pid = FAKE_TEND_PID;
        let status = layout.status_file(name);
        let exit = match lock(&self.spawn).clone() {
            Spawn::Runs => {
                self.put_file(status, &status_text("running", pid, None));
                lock(&self.alive).insert(pid);
                None
            }
            Spawn::Fails(why) => {
                self.put_file(status, &status_text("failed", pid, Some(&why)));
                lock(&self.alive).insert(pid);
                None
            }
            Spawn::Exits { status, stderr } => {
                self.put_file(stderr_file(layout), &stderr);
                Some(status)
            }
            Spawn::Silent => {
                lock(&self.alive).insert(pid);
                None
            }
        };
        Ok(Box::new(Child { pid, exit }))
    }

    fn set_event(&self, event: &str) -> io::Result<()> {
        self.call(format!("set_event {event}"))?;
        if lock(&self.alive).is_empty() {
            // ERROR_FILE_NOT_FOUND: no tend created the event.
            return Err(io::Error::from_raw_os_error(2));
        }
        if event.ends_with("-stop") && *lock(&self.obeys_stop) {
            lock(&self.alive).clear();
        }
        Ok(())
    }

    fn wait_exit(&self, pid: u32, within: Duration) -> bool {
        let _ = self.call(format!("wait_exit {pid} {}s", within.as_secs()));
        !self.is_alive(pid)
    }

    fn terminate(&self, pid: u32) -> io::Result<()> {
        self.call(format!("terminate {pid}"))?;
        lock(&self.alive).remove(&pid);
        Ok(())
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn sleep(&self, d: Duration) {
        self.clock.sleep(d);
    }
}
