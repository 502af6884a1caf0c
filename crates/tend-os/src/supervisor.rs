//! What the install side reads of a running tend: its status file (written by the
//! supervisor, `tend status`'s source), as far as a verb needs it to say why a start failed
//! or whether tend still runs. The file's full format belongs to the supervisor; fields are
//! only added to it, so reading a few of them is safe.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// The fields of a status file that the install side reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Snapshot {
    /// idle, starting, running, backoff, stopping, stopped, failed.
    pub state: String,
    /// The supervising tend's pid.
    pub supervisor_pid: u32,
    /// Why the service is failed, when it is.
    pub failed_reason: Option<String>,
    /// When the snapshot was written (RFC 3339).
    pub updated_at: String,
}

/// The snapshot in `file`; `None` when there is none or it cannot be read.
#[must_use]
pub fn read(file: &Path) -> Option<Snapshot> {
    parse(&std::fs::read_to_string(file).ok()?)
}

/// The snapshot in a status file's text; `None` when it is not one.
#[must_use]
pub fn parse(text: &str) -> Option<Snapshot> {
    serde_json::from_str(text).ok()
}

/// How long ago an RFC 3339 time was; `None` for a time in the future or unreadable.
#[must_use]
pub fn since(rfc3339: &str) -> Option<Duration> {
    let t: SystemTime = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?.into();
    SystemTime::now().duration_since(t).ok()
}
