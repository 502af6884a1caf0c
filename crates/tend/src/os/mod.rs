//! What the OS service manager says about a service, per platform.

#[cfg(windows)]
pub(crate) mod eventlog;
pub(crate) mod scm_plan;
#[cfg(windows)]
pub(crate) mod windows;
#[cfg(windows)]
mod winreg;

use serde::Serialize;

/// The OS service manager's view of a service.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OsStatus {
    /// Whether the OS knows the service.
    pub(crate) installed: bool,
    /// Whether it is running (or starting/stopping) as far as the OS knows.
    pub(crate) active: bool,
    /// The OS's own state word (e.g. RUNNING, active).
    pub(crate) state: String,
    /// When it starts (auto, manual, ...), if known.
    pub(crate) start: Option<String>,
    /// The service process (tend's own pid).
    pub(crate) pid: Option<u32>,
}

impl OsStatus {
    pub(crate) fn describe(&self) -> String {
        let mut s = self.state.clone();
        if let Some(pid) = self.pid {
            s.push_str(&format!(" (pid {pid})"));
        }
        if let Some(start) = &self.start {
            s.push_str(&format!(", start {start}"));
        }
        s
    }
}

/// Asks the OS service manager; `None` where tend has no backend (yet).
pub(crate) fn query(name: &str) -> Option<OsStatus> {
    #[cfg(windows)]
    return windows::query(name);
    #[cfg(not(windows))]
    {
        let _ = name;
        None
    }
}
