//! An alert: what happened, and the generic JSON that tells it (the `generic` webhook body
//! and the stdin of `notify.command`).
//!
//! Apart from [`crate::notify`] (delivery) and [`crate::webhook`] (the chat presets), which
//! both read it, so neither depends on the other for it.

use std::time::SystemTime;

use crate::spec::AlertKind;

/// Something to tell the operator about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// What happened.
    pub event: AlertKind,
    /// When.
    pub time: SystemTime,
    /// The exit code, for `crashed` and `gave_up` after an exit.
    pub exit_code: Option<i32>,
    /// The Unix signal that killed the program, instead of an exit code.
    pub signal: Option<i32>,
    /// Why, readable: the health reason, the spawn error, the limit.
    pub reason: Option<String>,
    /// Restarts so far (lifetime total of this supervisor).
    pub restarts: u64,
    /// The last lines the program wrote to stderr before it exited (bounded), for
    /// `crashed`, `restarting` and `gave_up`: usually why it died.
    pub last_stderr: Vec<String>,
    /// For `upgraded` and `rolled_back`: the release that ran before and the one put in
    /// place (or tried).
    pub release: Option<ReleaseChange>,
}

/// The releases of an `upgraded` or `rolled_back` alert (ids of `tend history`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseChange {
    /// The release that ran before the change.
    pub from: String,
    /// The release the change put in place (`upgraded`), or that failed (`rolled_back`).
    pub to: String,
}

impl Alert {
    /// An alert with no details yet.
    #[must_use]
    pub fn new(event: AlertKind, time: SystemTime) -> Self {
        Self {
            event,
            time,
            exit_code: None,
            signal: None,
            reason: None,
            restarts: 0,
            last_stderr: Vec::new(),
            release: None,
        }
    }
}

/// The JSON payload of an alert.
#[must_use]
pub fn payload(service: &str, host: &str, alert: &Alert) -> serde_json::Value {
    serde_json::json!({
        "service": service,
        "host": host,
        "event": alert.event.as_str(),
        "time": rfc3339(alert.time),
        "restarts": alert.restarts,
        "exit_code": alert.exit_code,
        "signal": alert.signal,
        "reason": alert.reason,
        "last_stderr": alert.last_stderr,
        "from_release": alert.release.as_ref().map(|r| &r.from),
        "to_release": alert.release.as_ref().map(|r| &r.to),
        "text": summary(service, host, alert),
    })
}

/// One line for chat-style receivers: `web on box1: crashed (exit code 1)`.
pub(crate) fn summary(service: &str, host: &str, alert: &Alert) -> String {
    let mut s = format!("{service} on {host}: {}", alert.event);
    if let Some(code) = alert.exit_code {
        s.push_str(&format!(" (exit code {code})"));
    }
    if let Some(sig) = alert.signal {
        s.push_str(&format!(" (signal {sig})"));
    }
    if let Some(reason) = &alert.reason {
        s.push_str(": ");
        s.push_str(reason);
    }
    if let Some(last) = alert.last_stderr.last() {
        s.push_str("; last stderr: ");
        s.push_str(last);
    }
    s
}

/// RFC 3339 local time with milliseconds and offset, as in tend's status and logs.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}
