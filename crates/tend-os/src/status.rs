//! What the OS service manager says about an installed service.

use std::path::PathBuf;

/// The OS manager's view of the service (not tend's own view of the program: for that,
/// `tend status` reads tend's status file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OsStatus {
    /// The OS knows the service: systemd loaded a unit file for it (`LoadState` is not
    /// `not-found`), or the plist exists / launchd has the job loaded.
    pub installed: bool,
    /// The process state.
    pub state: RunState,
    /// Whether it starts at boot (systemd `UnitFileState`). `None` when the backend cannot
    /// tell: launchd has no such state apart from the plist's `RunAtLoad` and its
    /// disabled-overrides database, so the CLI should report the config's `start` there.
    pub enabled: Option<bool>,
    /// tend's process id while it runs.
    pub pid: Option<u32>,
    /// tend's exit code the last time it exited (`Some(1)`: tend gave up on the program).
    pub last_exit: Option<i32>,
    /// The file the OS loaded the service from (systemd `FragmentPath`, launchd `path`).
    /// The CLI compares it with [`crate::Layout::definition`] to refuse overwriting a
    /// service that tend did not install.
    pub definition: Option<PathBuf>,
    /// The backend's own words, for display: `active (running)`, `running`.
    pub raw_state: String,
    /// How often the OS manager restarted tend since the unit was last started by hand
    /// (systemd `NRestarts`); `None` where the backend does not count.
    pub restarts: Option<u32>,
    /// Why tend's last run ended, in the backend's words (systemd `Result`: `exit-code`,
    /// `signal`, `core-dump`, `timeout`, `start-limit-hit`, ...); `None` for success.
    pub result: Option<String>,
    /// The signal that killed tend the last time, if one did.
    pub last_signal: Option<i32>,
}

impl OsStatus {
    /// Whether tend is up (or coming up, reloading, stopping).
    #[must_use]
    pub fn active(&self) -> bool {
        matches!(
            self.state,
            RunState::Running
                | RunState::Starting
                | RunState::Restarting
                | RunState::Reloading
                | RunState::Stopping
        )
    }

    /// A service the OS does not know.
    #[must_use]
    pub fn not_installed() -> Self {
        Self {
            installed: false,
            state: RunState::Stopped,
            enabled: None,
            pid: None,
            last_exit: None,
            definition: None,
            raw_state: "not installed".to_owned(),
            restarts: None,
            result: None,
            last_signal: None,
        }
    }
}

/// tend's process state as the OS manager sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Running (systemd `active`, launchd `running`).
    Running,
    /// Starting: systemd `activating` (tend has not yet reported `READY=1`), launchd
    /// `spawn scheduled`.
    Starting,
    /// tend failed and the OS manager will start it again (systemd `activating
    /// (auto-restart)`, waiting out `RestartSec=`).
    Restarting,
    /// systemd `reloading`.
    Reloading,
    /// systemd `deactivating`.
    Stopping,
    /// Not running, and the last run did not fail.
    Stopped,
    /// Not running after a failure (systemd `failed`; launchd: not running with a non-zero
    /// last exit code).
    Failed,
    /// A state this crate does not know, verbatim.
    Other(String),
}
