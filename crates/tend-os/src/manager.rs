//! The one seam of the install side: [`ServiceManager`], implemented once per OS service
//! manager (systemd, launchd, the Windows SCM, the Windows per-user Run entry).
//!
//! Every verb returns what it did as a [`Report`] (lines for stdout, warnings, what
//! changed) instead of printing, so a backend is tested by what it reports and the CLI
//! decides how to show it. A verb that fails half-way returns a [`Failure`]: the error and
//! the report of what did happen before it.

use std::io;
use std::path::{Path, PathBuf};

use tend_core::{ServiceName, ServiceSpec};

use crate::Backend;
use crate::exit;
use crate::plan::ApplyError;
use crate::runner::RunError;

/// What `tend install` hands a backend.
#[derive(Debug, Clone, Copy)]
pub struct Install<'a> {
    /// The validated config.
    pub spec: &'a ServiceSpec,
    /// The config file's text, as the operator wrote it (the copy is made from it).
    pub original: &'a str,
    /// What a reinstall does to a running service: `false` (`tend install`) applies the
    /// change as the backend can (a reload); `true` (`tend apply`, which decides by the
    /// reload rules and then reloads or restarts itself) leaves the running tend alone.
    pub leave_running: bool,
}

/// `tend install`'s check of what the service's account (and sandbox) can reach: a
/// property of the manager (given when it is made), as the CLI's `--no-access-check` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Refuse to install (the default).
    Check,
    /// Install anyway, with each problem as a warning (`--no-access-check`).
    Warn,
    /// Do not look (tests whose files are in memory).
    Skip,
}

/// An OS service manager: the verbs on an installed service, for one scope.
pub trait ServiceManager {
    /// Which manager this is.
    fn backend(&self) -> Backend;
    /// `tend install`: every check before anything changes; a reinstall updates what
    /// differs and says what.
    ///
    /// # Errors
    ///
    /// [`Failure`]: why, and what was done before.
    fn install(&self, install: &Install<'_>) -> Result<Report, Failure>;
    /// The lines of the service definition (unit file, plist) an install of `install`
    /// would change, without changing anything (`tend apply` compares before it acts).
    /// `None` where the backend cannot tell without installing; then only the config copy
    /// is compared.
    ///
    /// # Errors
    ///
    /// The definition cannot be rendered or read.
    fn definition_diff(&self, install: &Install<'_>) -> Result<Option<Vec<String>>, Error> {
        let _ = install;
        Ok(None)
    }
    /// `tend uninstall`: stop, remove the definition and the config copy; logs stay.
    ///
    /// # Errors
    ///
    /// [`Failure`]: why, and what was done before.
    fn uninstall(&self, name: &ServiceName) -> Result<Report, Failure>;
    /// `tend start`: returns once tend runs.
    ///
    /// # Errors
    ///
    /// [`Failure`]: why, and what was done before.
    fn start(&self, name: &ServiceName) -> Result<Report, Failure>;
    /// `tend stop`: returns once tend has exited.
    ///
    /// # Errors
    ///
    /// [`Failure`]: why, and what was done before.
    fn stop(&self, name: &ServiceName) -> Result<Report, Failure>;
    /// `tend restart`.
    ///
    /// # Errors
    ///
    /// [`Failure`]: why, and what was done before.
    fn restart(&self, name: &ServiceName) -> Result<Report, Failure>;
    /// `tend reload`: tend re-reads its config copy.
    ///
    /// # Errors
    ///
    /// [`Failure`]: why, and what was done before.
    fn reload(&self, name: &ServiceName) -> Result<Report, Failure>;
    /// The program the service's definition runs: the tend binary of its host (the first
    /// word of `ExecStart=`, of the SCM's command line). `tend upgrade --self` moves only
    /// the services that run the binary it replaces. `None` where this manager does not
    /// tell (launchd, the Run entry): then the service is taken to run it.
    ///
    /// # Errors
    ///
    /// The definition cannot be read.
    fn host_program(&self, name: &ServiceName) -> Result<Option<std::path::PathBuf>, Error> {
        let _ = name;
        Ok(None)
    }
    /// The last lines the service's host (tend itself, not the program) wrote where the
    /// manager keeps them (systemd's journal), since `since`: the words of a tend that
    /// could not start. Empty where the manager keeps none (the SCM, launchd's file is
    /// the layout's `stdio_log`).
    fn host_words(&self, name: &ServiceName, since: std::time::SystemTime) -> Vec<String> {
        let _ = (name, since);
        Vec::new()
    }
    /// What the OS manager says about the service (`tend status`).
    ///
    /// # Errors
    ///
    /// The manager cannot be asked (no systemd, no user manager, no SCM).
    fn status(&self, name: &ServiceName) -> Result<Status, Error>;
    /// Why the service of that name is installed but not by tend (a distribution's unit, a
    /// hand-written file): then tend leaves it alone and has no supervisor to ask. `None`
    /// when it is tend's, not installed, or the manager cannot tell.
    fn not_ours(&self, name: &ServiceName) -> Option<String> {
        let _ = name;
        None
    }
    /// `tend doctor`: the checks `install` makes (the account, what the service's account
    /// and sandbox can reach), without installing, and how what is installed compares with
    /// what `install` would write now. The same code as `install`'s checks, so the two
    /// never disagree. A backend that does not check something says so
    /// ([`Preflight::default`]: nothing known).
    ///
    /// # Errors
    ///
    /// The config cannot be rendered for this manager, or a file cannot be read.
    fn preflight(&self, install: &Install<'_>) -> Result<Preflight, Error> {
        let _ = install;
        Ok(Preflight::default())
    }
    /// `tend import --install --replace`, before anything changes: what the service
    /// `name`, installed by another tool, is now (its files, its settings, whether it runs
    /// and starts at boot): all a [`ServiceManager::put_back`] needs. Nothing is changed.
    ///
    /// # Errors
    ///
    /// There is no such service ([`Error::NotInstalled`]); it is tend's own, or cannot be
    /// taken over ([`Error::Invalid`]); this manager cannot take services over yet.
    fn record_foreign(&self, name: &ServiceName) -> Result<crate::Foreign, Error> {
        let _ = name;
        Err(unsupported(self.backend()))
    }
    /// Takes the foreign service over for tend's service `into`: stops it and, when `into`
    /// is its name, frees the name for tend's install (systemd: its unit files go; the
    /// SCM: its entry is repointed to tend, keeping the service's registry key); for
    /// another name, only keeps it from starting at boot.
    ///
    /// # Errors
    ///
    /// [`Failure`]: why, and what was done before (a [`ServiceManager::put_back`] undoes it).
    fn take_over(&self, foreign: &crate::Foreign, into: &ServiceName) -> Result<Report, Failure> {
        let _ = (foreign, into);
        Err(unsupported(self.backend()).into())
    }
    /// Undoes a take-over (also a partial one): removes tend's service `into` if it is
    /// there, puts the foreign service back exactly as recorded, and starts it if it ran.
    /// Each step is harmless when already done, so a put-back can be repeated.
    ///
    /// # Errors
    ///
    /// [`Failure`]: why, and what was done before.
    fn put_back(&self, foreign: &crate::Foreign, into: &ServiceName) -> Result<Report, Failure> {
        let _ = (foreign, into);
        Err(unsupported(self.backend()).into())
    }
}

/// The error of a take-over on a manager that has none yet.
pub(crate) fn unsupported(backend: crate::Backend) -> Error {
    Error::Invalid(format!(
        "--replace is not supported for {} services yet (systemd and the Windows SCM are); install tend's beside it (--install --name NEW, without --replace), then stop the old one yourself",
        backend.name()
    ))
}

/// What [`ServiceManager::preflight`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// The account the config names: `None` when there is nothing to look up (a built-in
    /// or virtual account, the caller's own for `--user`); otherwise whether it exists,
    /// with why not.
    pub account: Option<Result<(), String>>,
    /// Windows: whether the LSA lists "Log on as a service" (`SeServiceLogonRight`) for
    /// the named user account itself (`false`: not itself; a group it is in may still
    /// grant it); `Err`: why it could not be read (Wine has no LSA). `None`: no user
    /// account, or not Windows.
    pub logon_right: Option<Result<bool, String>>,
    /// What the service's account and sandbox would not reach (empty: everything), each
    /// naming the config key, the path, why and the fix; `Err` says why it was not
    /// looked at.
    pub access: Result<Vec<String>, String>,
    /// The installed service against what `install` would write now.
    pub drift: Drift,
}

impl Default for Preflight {
    fn default() -> Self {
        Self {
            account: None,
            logon_right: None,
            access: Err("this service manager does not check it".to_owned()),
            drift: Drift::Unknown("this service manager does not compare it".to_owned()),
        }
    }
}

/// How the installed service compares with what `install` would write for the config now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// Nothing is installed under the name.
    NotInstalled,
    /// Compared: the lines (or, for the SCM, the settings) that differ, `- installed` /
    /// `+ would be written`; both empty when they match.
    Compared {
        /// tend's config copy against the config given.
        config: Vec<String>,
        /// The unit, plist or SCM entry against the one the config renders to.
        definition: Vec<String>,
    },
    /// It could not be compared, and why.
    Unknown(String),
}

/// What a verb did: lines for stdout, warnings and problems for stderr, and what changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// What happened, one line each (stdout).
    pub lines: Vec<String>,
    /// What the operator should know but did not stop the verb (stderr, `warning: ...`).
    pub warnings: Vec<String>,
    /// Lines that explain a refusal in detail, each already located (`file:line: error:
    /// ...`); shown before the warnings and the error itself.
    pub problems: Vec<String>,
    /// What the verb changed on the machine.
    pub changed: Changed,
}

impl Report {
    /// Adds a line.
    pub fn say(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// Adds a warning.
    pub fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }

    /// `uninstall` done: the service is gone, its logs (in `logs`, the installed config's
    /// `[logs] dir`) stay, and the operator is told where.
    pub(crate) fn uninstalled(&mut self, name: &ServiceName, logs: &Path) {
        self.changed = Changed::Uninstalled;
        self.say(format!(
            "uninstalled service `{name}`; its logs remain in `{}`",
            logs.display()
        ));
    }

    /// The report of a verb that failed now, with `error`.
    #[must_use]
    pub fn fail(self, error: Error) -> Failure {
        Failure {
            error,
            report: Box::new(self),
        }
    }
}

/// Runs a verb that reports into a [`Report`] as it goes, and returns the report, or the
/// failure with what the verb reported before it: how a backend implements the trait's
/// verbs with `?` inside.
///
/// # Errors
///
/// What `verb` returned, with its report.
pub fn reported(verb: impl FnOnce(&mut Report) -> Result<(), Error>) -> Result<Report, Failure> {
    let mut r = Report::default();
    match verb(&mut r) {
        Ok(()) => Ok(r),
        Err(e) => Err(r.fail(e)),
    }
}

/// What a verb changed on the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Changed {
    /// Nothing: already so, or refused before anything changed.
    #[default]
    Nothing,
    /// A new service was installed.
    Installed,
    /// An installed service was updated.
    Updated,
    /// The service was removed (also: a leftover config copy).
    Uninstalled,
    /// tend was started.
    Started,
    /// tend was stopped.
    Stopped,
    /// tend was restarted.
    Restarted,
    /// tend was asked to re-read its config.
    Reloaded,
}

/// A verb that failed: why, and what it reported before (what did happen).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Failure {
    /// Why it failed.
    #[source]
    pub error: Error,
    /// What it did before.
    pub report: Box<Report>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Report::default().fail(error)
    }
}

/// Why a verb failed, typed so that the exit code follows from it ([`Error::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service is not installed (exit code 3).
    #[error("service `{0}` is not installed")]
    NotInstalled(String),
    /// Input the operator must change: a config the service could not run with, a name
    /// taken by another service, a disabled service (exit code 2). The message says what
    /// to do.
    #[error("{0}")]
    Invalid(String),
    /// The verb needs rights tend does not have: root, Administrator (exit code 4).
    #[error("{0}")]
    Permission(String),
    /// A config could not be loaded (exit code 2).
    #[error(transparent)]
    Config(Box<tend_config::ConfigError>),
    /// A file or OS operation failed (exit code 5, or 4 for access denied).
    #[error("{what}: {source}")]
    Io {
        /// What tend was doing, with the service and the path.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `systemctl`/`launchctl` could not run or failed (exit code 5).
    #[error("{what}: {source}")]
    Run {
        /// What tend was doing.
        what: String,
        /// The command and its answer.
        #[source]
        source: Box<RunError>,
    },
    /// A step of a plan failed (exit code 5, or 4 for a file tend may not write).
    #[error("{what}: {source}")]
    Apply {
        /// The verb and the service.
        what: String,
        /// The step and why.
        #[source]
        source: Box<ApplyError>,
    },
    /// The service did not do what a verb waited for, and the OS call itself succeeded:
    /// tend stopped while starting, or exited at once (exit code 5). The message says why
    /// and where to look.
    #[error("{0}")]
    Failed(String),
    /// A Windows Service Control Manager call failed (exit code 5, or 4 for access
    /// denied).
    #[error("{what}: {source}")]
    Scm {
        /// What tend asked, of which service.
        what: String,
        /// The SCM's answer.
        #[source]
        source: crate::scm::ScmError,
    },
}

impl From<tend_config::ConfigError> for Error {
    fn from(e: tend_config::ConfigError) -> Self {
        Self::Config(Box::new(e))
    }
}

impl Error {
    /// An I/O error with what tend was doing.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    /// The documented exit code ([`crate::exit`]).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotInstalled(_) => exit::NOT_INSTALLED,
            Self::Invalid(_) | Self::Config(_) => exit::INVALID,
            Self::Permission(_) => exit::PERMISSION,
            Self::Io { source, .. } => io_code(source),
            Self::Apply { source, .. } => match source.as_ref() {
                ApplyError::Io { source, .. } => io_code(source),
                ApplyError::Run { .. } => exit::OS,
            },
            Self::Scm { source, .. } if source.access_denied() => exit::PERMISSION,
            Self::Run { .. } | Self::Scm { .. } | Self::Failed(_) => exit::OS,
        }
    }
}

/// Access denied is a missing right (4); anything else the OS's failure (5).
/// `raw_os_error() == 5` is Windows' ERROR_ACCESS_DENIED, whatever kind std maps it to.
pub(crate) fn io_code(e: &io::Error) -> u8 {
    if e.kind() == io::ErrorKind::PermissionDenied || (cfg!(windows) && e.raw_os_error() == Some(5))
    {
        exit::PERMISSION
    } else {
        exit::OS
    }
}

/// What the OS service manager says about a service, in one shape for every backend
/// (`tend status`, `tend status --json` as `os`). Fields are only added.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// Whether the OS knows the service.
    pub installed: bool,
    /// Whether it is running (or starting/stopping) as far as the OS knows.
    pub active: bool,
    /// The OS's own state word (e.g. RUNNING, active (running)).
    pub state: String,
    /// When it starts (auto, manual, ...; systemd: enabled or disabled), if known.
    pub start: Option<String>,
    /// The service process (tend's own pid).
    pub pid: Option<u32>,
    /// Who manages it: `scm`, `systemd`, `launchd`, or `run-key` (Windows `--user`).
    pub manager: Option<String>,
    /// The OS says the last run failed (systemd `failed`, launchd: a non-zero exit).
    pub failed: bool,
    /// tend's exit code the last time it exited, if the OS knows it.
    pub last_exit: Option<i32>,
    /// The file the OS reads the service from (unit file, plist), if known.
    pub definition: Option<PathBuf>,
}

impl Status {
    /// A service the OS does not know, for `manager`.
    #[must_use]
    pub fn not_installed(manager: Backend) -> Self {
        Self {
            installed: false,
            active: false,
            state: "not installed".into(),
            start: None,
            pid: None,
            manager: Some(manager.name().into()),
            failed: false,
            last_exit: None,
            definition: None,
        }
    }

    /// The OS manager is restarting tend itself (systemd `activating (auto-restart)`): tend
    /// crashed or could not start, so no supervisor is running.
    #[must_use]
    pub fn restarting(&self) -> bool {
        self.state.contains("(auto-restart)")
    }

    /// One line for `tend status`: the state, pid, start mode and a failed exit code.
    #[must_use]
    pub fn describe(&self) -> String {
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

/// An error and its sources on one line, each said once (as the CLI prints errors).
#[must_use]
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    msg
}
