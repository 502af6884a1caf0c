//! Crash records: on every exit nobody asked for (a crash, a clean exit on its own, a stop
//! for being unhealthy), what the operator asks at 3 a.m.: when, after how long, how it
//! died (decoded: `0xC0000005 STATUS_ACCESS_VIOLATION`, `SIGSEGV (core dumped)`, a Go
//! panic's message), and the last lines of stderr and stdout. The newest [`KEEP`] are kept
//! in `<state dir>/<name>.crashes.json`, written by a thread of their own (no file I/O on
//! the restart path); `tend crashes` lists them and `tend status` shows the newest.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::background::Background;

/// Records kept per service, newest last.
pub(crate) const KEEP: usize = 10;

/// One exit nobody asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CrashRecord {
    /// When it exited (RFC 3339).
    pub(crate) at: String,
    /// How long the run lasted, in seconds.
    pub(crate) after_secs: f64,
    /// The main process.
    pub(crate) pid: u32,
    /// `on-its-own` (a crash, or an exit it chose) or `unhealthy` (tend stopped it).
    pub(crate) cause: String,
    /// How it ended, decoded: `exited with code 0xC0000005 STATUS_ACCESS_VIOLATION`,
    /// `was killed by SIGSEGV (core dumped)`.
    pub(crate) exit: String,
    /// The exit code, if it exited.
    pub(crate) code: Option<i32>,
    /// The signal, if one ended it.
    pub(crate) signal: Option<i32>,
    /// Whether the kernel wrote a core dump.
    #[serde(default)]
    pub(crate) core_dumped: bool,
    /// Why, in one line: a Go panic's message and top frame, the health reason, or the
    /// exit and its last stderr line.
    pub(crate) summary: String,
    /// The last lines of stderr, oldest first.
    pub(crate) stderr: Vec<String>,
    /// The last lines of stdout, oldest first.
    pub(crate) stdout: Vec<String>,
}

/// The newest record in one line, for the status snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LastCrash {
    /// When (RFC 3339).
    pub(crate) at: String,
    /// How it ended, decoded.
    pub(crate) exit: String,
    /// Why, in one line.
    pub(crate) summary: String,
}

impl From<&CrashRecord> for LastCrash {
    fn from(r: &CrashRecord) -> Self {
        Self {
            at: r.at.clone(),
            exit: r.exit.clone(),
            summary: r.summary.clone(),
        }
    }
}

/// Where a service's crash records are.
pub(crate) fn path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("{name}.crashes.json"))
}

/// The records in `file`, oldest first; none if there is no file. A damaged file reads as
/// none rather than failing `status`.
pub(crate) fn read(file: &Path) -> std::io::Result<Vec<CrashRecord>> {
    match std::fs::read(file) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn write(file: &Path, records: &[CrashRecord]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut buf = serde_json::to_vec_pretty(records).map_err(std::io::Error::other)?;
    buf.push(b'\n');
    tend_os::write_atomic(file, &buf, None)
}

/// The records of a running supervisor, and the thread that writes them. The records are
/// shared with the writer, which copies them when it writes (at most once a second), not
/// at every crash: a crash loop would otherwise copy the whole history at every restart.
pub(crate) struct Journal {
    file: PathBuf,
    records: Arc<Mutex<Vec<CrashRecord>>>,
    writer: Background<()>,
    /// A record came since the last `start_writer`.
    added: bool,
}

fn lock(records: &Mutex<Vec<CrashRecord>>) -> std::sync::MutexGuard<'_, Vec<CrashRecord>> {
    records.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Journal {
    /// Continues the records in `file` (a supervisor that restarts keeps its history);
    /// `on_error` gets the OS error of a failed write, once per run of failures.
    pub(crate) fn open(file: PathBuf, on_error: impl Fn(String) + Send + Sync + 'static) -> Self {
        let records = Arc::new(Mutex::new(read(&file).unwrap_or_default()));
        let path = file.clone();
        let shared = Arc::clone(&records);
        // A crash loop restarts hundreds of times a second: its history is written at
        // most once a second (and at exit), each write flushed to disk.
        let writer = Background::spawn(
            "tend-crashes",
            std::time::Duration::from_secs(1),
            move |(): &()| {
                let records = lock(&shared).clone();
                write(&file, &records)
            },
            on_error,
        );
        Self {
            file: path,
            records,
            writer,
            added: false,
        }
    }

    /// Adds a record (the oldest beyond [`KEEP`] goes) and queues the write.
    pub(crate) fn add(&mut self, record: CrashRecord) {
        {
            let mut records = lock(&self.records);
            records.push(record);
            if records.len() > KEEP {
                let extra = records.len() - KEEP;
                records.drain(..extra);
            }
        }
        // The thread, if this is the first record, is started by `start_writer`: after the
        // restart, not before it.
        self.writer.publish_later(());
        self.added = true;
    }

    /// Starts the writer's thread if it has not started and a record was added since the
    /// last call (a thread that could not start is tried again after the next record).
    /// Called after every supervision step: a bool, unless a record came.
    pub(crate) fn start_writer(&mut self) {
        if std::mem::take(&mut self.added) {
            self.writer.start();
        }
    }

    /// Where the records are.
    pub(crate) fn path(&self) -> &Path {
        &self.file
    }

    /// The newest record, in one line.
    pub(crate) fn latest(&self) -> Option<LastCrash> {
        lock(&self.records).last().map(LastCrash::from)
    }

    /// Writes what is queued (at exit), waiting for the disk at most
    /// [`FINISH_WAIT`](crate::background::FINISH_WAIT); `false` if it did not answer.
    pub(crate) fn finish(self) -> bool {
        self.writer.finish(crate::background::FINISH_WAIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> CrashRecord {
        CrashRecord {
            at: format!("2026-12-07T03:00:{i:02}.000+00:00"),
            after_secs: 1.5,
            pid: 100 + u32::try_from(i).unwrap(),
            cause: "on-its-own".into(),
            exit: "exited with code 2".into(),
            code: Some(2),
            signal: None,
            core_dumped: false,
            summary: format!("panic: {i}"),
            stderr: vec!["x".into()],
            stdout: vec![],
        }
    }

    #[test]
    fn keeps_the_newest_and_carries_on_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path(), "api");
        let mut j = Journal::open(file.clone(), |e| panic!("{e}"));
        for i in 0..KEEP + 3 {
            j.add(record(i));
        }
        assert!(j.finish());
        let on_disk = read(&file).unwrap();
        assert_eq!(on_disk.len(), KEEP);
        assert_eq!(on_disk.first().unwrap().summary, "panic: 3");
        assert_eq!(
            on_disk.last().unwrap().summary,
            format!("panic: {}", KEEP + 2)
        );
        // A new supervisor continues the history.
        let mut again = Journal::open(file.clone(), |e| panic!("{e}"));
        assert_eq!(
            again.latest().unwrap().summary,
            format!("panic: {}", KEEP + 2)
        );
        again.add(record(99));
        assert!(again.finish());
        assert_eq!(read(&file).unwrap().last().unwrap().pid, 199);
        // No file, or a damaged one, is no history.
        assert!(read(&dir.path().join("none.json")).unwrap().is_empty());
        std::fs::write(&file, "{").unwrap();
        assert!(read(&file).unwrap().is_empty());
    }
}
