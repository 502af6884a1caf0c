//! The supervisor's status file: a small JSON document, replaced atomically after every
//! state change, that `tend status` reads. It is the contract between a running supervisor
//! and everything that asks about it (CLI, scripts, monitoring), so fields are only added.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// What a running (or finished) supervisor last said about its service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    /// The service name.
    pub(crate) service: String,
    /// idle, starting, running, backoff, stopping, stopped, failed.
    pub(crate) state: String,
    /// The program's main pid while it runs.
    pub(crate) pid: Option<u32>,
    /// tend's own pid.
    pub(crate) supervisor_pid: u32,
    /// When the current run started (RFC 3339).
    pub(crate) started_at: Option<String>,
    /// Restarts since the supervisor started.
    pub(crate) restarts_total: u64,
    /// Restarts counted against `restart.limit` right now.
    pub(crate) restarts_in_window: u32,
    /// `restart.limit` (0 = none).
    pub(crate) restart_limit: u32,
    /// How the last run ended.
    pub(crate) last_exit: Option<LastExit>,
    /// When the next restart is due, during backoff (RFC 3339).
    pub(crate) next_restart_at: Option<String>,
    /// Why the service is failed, when it is.
    pub(crate) failed_reason: Option<String>,
    /// The active log files.
    pub(crate) log_files: Vec<PathBuf>,
    /// The config file in use.
    pub(crate) config: PathBuf,
    /// Bumped by each successful reload.
    pub(crate) config_generation: u64,
    /// The last reload error, if the last reload failed.
    pub(crate) last_reload_error: Option<String>,
    /// When this snapshot was written (RFC 3339).
    pub(crate) updated_at: String,
    /// `[health]`: the program's health; absent without the section. (Fields from here on
    /// were added later: `default` lets an older tend's file still be read.)
    #[serde(default)]
    pub(crate) health: Option<HealthStatus>,
    /// `[limits]`: memory of the program's whole tree at the last sample, in bytes.
    #[serde(default)]
    pub(crate) memory_bytes: Option<u64>,
    /// `[limits]`: CPU use of the tree between the last two samples, in percent of one
    /// core (200 = two busy cores).
    #[serde(default)]
    pub(crate) cpu_percent: Option<f64>,
    /// The newest crash record (`tend crashes` has them all).
    #[serde(default)]
    pub(crate) last_crash: Option<crate::crashes::LastCrash>,
}

/// What `[health]` says about the program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HealthStatus {
    /// starting, healthy, unhealthy; stopped while the program does not run.
    pub(crate) state: String,
    /// Why it is unhealthy.
    pub(crate) reason: Option<String>,
    /// Counted failed checks in a row in this run.
    pub(crate) consecutive_failures: u32,
    /// The latest check of this run, counted or not.
    pub(crate) last_probe: Option<ProbeStatus>,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProbeStatus {
    /// It passed.
    pub(crate) healthy: bool,
    /// What it found, e.g. "HTTP 503 after 12 ms".
    pub(crate) text: String,
    /// How long it took, in milliseconds.
    pub(crate) took_ms: u64,
    /// When it finished (RFC 3339).
    pub(crate) at: Option<String>,
}

/// The end of the last run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LastExit {
    /// Exit code, if it exited.
    pub(crate) code: Option<i32>,
    /// Signal number, if a signal ended it.
    pub(crate) signal: Option<i32>,
    /// Why it could not start, if it could not.
    pub(crate) spawn_error: Option<String>,
    /// Readable form, e.g. "exited with code 3".
    pub(crate) description: String,
    /// When (RFC 3339).
    pub(crate) at: String,
    /// How long the run lasted, in seconds.
    pub(crate) after_secs: f64,
    /// The last lines it wrote to stderr (at most 5, 600 bytes), oldest first: usually why
    /// it died.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) stderr: Vec<String>,
}

/// RFC 3339 local time with milliseconds.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// Converts a monotonic instant into wall-clock time, relative to now.
pub(crate) fn wall(at: Instant) -> SystemTime {
    let now = Instant::now();
    let sys = SystemTime::now();
    if at <= now {
        sys - now.duration_since(at)
    } else {
        sys + at.duration_since(now)
    }
}

/// `<state dir>/<name>.status.json`.
pub(crate) fn path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("{name}.status.json"))
}

/// Writes the snapshot with [`tend_os::replace_atomic`], so readers see either the old or the
/// new document, never half of one. Not flushed to disk: it is rewritten at every start and
/// state change, and the next start writes it again after a power loss (crash records,
/// which are history, are).
pub(crate) fn write(file: &Path, snap: &Snapshot) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // One buffer, one write: serde_json on a bare File makes a syscall per token.
    let mut buf = serde_json::to_vec_pretty(snap).map_err(std::io::Error::other)?;
    buf.push(b'\n');
    tend_os::replace_atomic(file, &buf)
}

/// How often at most the status file is rewritten.
pub(crate) const STATUS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Reads a snapshot; `Ok(None)` if there is none.
pub(crate) fn read(file: &Path) -> std::io::Result<Option<Snapshot>> {
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::other(format!("`{}` is not a status file: {e}", file.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
