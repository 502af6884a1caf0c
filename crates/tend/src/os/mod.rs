//! The OS service managers: what they say about a service, and the install backends.

pub(crate) mod acl;
#[cfg(windows)]
pub(crate) mod eventlog;
pub(crate) mod installed;
pub(crate) mod scm_plan;
#[cfg(unix)]
pub(crate) mod unix;
#[cfg(windows)]
pub(crate) mod user_windows;
#[cfg(windows)]
pub(crate) mod windows;
#[cfg(windows)]
mod winreg;

use std::io::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::place::Scope;

/// The OS service manager's view of a service. Fields are only added (`tend status --json`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OsStatus {
    /// Whether the OS knows the service.
    pub(crate) installed: bool,
    /// Whether it is running (or starting/stopping) as far as the OS knows.
    pub(crate) active: bool,
    /// The OS's own state word (e.g. RUNNING, active (running)).
    pub(crate) state: String,
    /// When it starts (auto, manual, ...; systemd: enabled or disabled), if known.
    pub(crate) start: Option<String>,
    /// The service process (tend's own pid).
    pub(crate) pid: Option<u32>,
    /// Who manages it: `scm`, `systemd`, `launchd`, or `run-key` (Windows `--user`).
    pub(crate) manager: Option<String>,
    /// The OS says the last run failed (systemd `failed`, launchd: a non-zero exit).
    pub(crate) failed: bool,
    /// tend's exit code the last time it exited, if the OS knows it.
    pub(crate) last_exit: Option<i32>,
    /// The file the OS reads the service from (unit file, plist), if known.
    pub(crate) definition: Option<PathBuf>,
}

impl OsStatus {
    /// The OS manager is restarting tend itself (systemd `activating (auto-restart)`): tend
    /// crashed or could not start, so no supervisor is running.
    pub(crate) fn restarting(&self) -> bool {
        self.state.contains("(auto-restart)")
    }

    pub(crate) fn describe(&self) -> String {
        let mut s = self.state.clone();
        if let Some(pid) = self.pid {
            s.push_str(&format!(" (pid {pid})"));
        }
        if let Some(start) = &self.start {
            s.push_str(&format!(", start {start}"));
        }
        if let Some(code) = self.last_exit.filter(|&c| c != 0 && !self.active) {
            s.push_str(&format!(", last exit code {code}"));
        }
        s
    }
}

/// Asks the OS service manager; `None` where it cannot be asked (no systemd running, no
/// user manager).
pub(crate) fn query(name: &str, scope: Scope) -> Option<OsStatus> {
    #[cfg(windows)]
    return match scope {
        Scope::System => windows::query(name),
        Scope::User => user_windows::query(name),
    };
    #[cfg(unix)]
    {
        let name = crate::place::service_name(name).ok()?;
        let (s, config_start) = unix::with_real(scope, |u| {
            let s = u.query(&name)?;
            let start = if s.installed && s.enabled.is_none() {
                u.installed_start(&name)
            } else {
                None
            };
            Ok((s, start))
        })
        .ok()?;
        let mut os = from_unix(&s, scope.backend());
        if os.start.is_none() {
            os.start = config_start.map(str::to_owned);
        }
        Some(os)
    }
}

/// Why `name` is not a service tend installed (a distribution's unit, a hand-written file),
/// or `None` when it is tend's, or not installed at all, or the OS cannot tell.
pub(crate) fn not_tend_service(name: &str, scope: Scope) -> Option<String> {
    #[cfg(windows)]
    {
        let _ = (name, scope);
        None
    }
    #[cfg(unix)]
    {
        let name = crate::place::service_name(name).ok()?;
        unix::with_real(scope, |u| Ok(u.foreign(&name))).ok()?
    }
}

/// systemd's words, with what it knows about its own restarts of tend when it is in a
/// restart loop (`activating (auto-restart)`): how many, and how the last run ended.
#[cfg(unix)]
fn unix_state(s: &tend_os::OsStatus) -> String {
    if s.state != tend_os::RunState::Restarting {
        return s.raw_state.clone();
    }
    let how = match (s.last_exit, s.last_signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => s.result.clone().unwrap_or_else(|| "unknown".to_owned()),
    };
    let times = s
        .restarts
        .map(|n| format!(", restarted {n} time{}", if n == 1 { "" } else { "s" }))
        .unwrap_or_default();
    format!(
        "{}: tend failed ({how}) and systemd starts it again{times}",
        s.raw_state
    )
}

#[cfg(unix)]
fn from_unix(s: &tend_os::OsStatus, backend: tend_os::Backend) -> OsStatus {
    OsStatus {
        installed: s.installed,
        active: s.active(),
        state: unix_state(s),
        start: s
            .enabled
            .map(|e| if e { "enabled" } else { "disabled" }.to_owned()),
        pid: s.pid,
        manager: Some(backend.name().to_owned()),
        failed: s.state == tend_os::RunState::Failed,
        last_exit: s.last_exit,
        definition: s.definition.clone(),
    }
}

/// What a verb did: lines for stdout, warnings for stderr. Collected rather than printed
/// where they happen, so the backends' tests can assert them.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) lines: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

impl Report {
    pub(crate) fn say(&mut self, line: String) {
        self.lines.push(line);
    }

    pub(crate) fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    /// Warnings first (they come before what was done, as a compiler's would).
    pub(crate) fn print(&self) {
        let mut err = std::io::stderr().lock();
        for w in &self.warnings {
            let _ = writeln!(err, "warning: {w}");
        }
        drop(err);
        let mut out = std::io::stdout().lock();
        for l in &self.lines {
            let _ = writeln!(out, "{l}");
        }
    }
}
