//! The seams of the SCM backend: [`ScmApi`] (the Service Control Manager's calls) and
//! [`Host`] (everything else an install touches on Windows: files, DACLs, accounts, the
//! Event Log source, the clock).
//!
//! [`super::Scm`] reaches the machine only through these two traits, so its install,
//! update, uninstall and start/stop sequences are tested on every OS with
//! [`crate::testing::FakeScm`], which records each call and answers from a script. The
//! real implementations (windows-service and windows-sys) are in `real.rs`, Windows only.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::acl::Ace;
use super::error::ScmError;
use super::plan::{ScmPlan, SidType, StartType};

/// The access rights tend asks for when it opens a service (SERVICE_*), so that a caller
/// without Administrator rights is refused at the same call as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights(u32);

impl Rights {
    /// SERVICE_QUERY_CONFIG.
    pub const QUERY_CONFIG: Self = Self(0x0001);
    /// SERVICE_CHANGE_CONFIG.
    pub const CHANGE_CONFIG: Self = Self(0x0002);
    /// SERVICE_QUERY_STATUS.
    pub const QUERY_STATUS: Self = Self(0x0004);
    /// SERVICE_START.
    pub const START: Self = Self(0x0010);
    /// SERVICE_STOP.
    pub const STOP: Self = Self(0x0020);
    /// SERVICE_PAUSE_CONTINUE (also needed for SERVICE_CONTROL_PARAMCHANGE).
    pub const PAUSE_CONTINUE: Self = Self(0x0040);
    /// DELETE.
    pub const DELETE: Self = Self(0x0001_0000);

    const NAMES: [(Self, &'static str); 7] = [
        (Self::QUERY_CONFIG, "QUERY_CONFIG"),
        (Self::CHANGE_CONFIG, "CHANGE_CONFIG"),
        (Self::QUERY_STATUS, "QUERY_STATUS"),
        (Self::START, "START"),
        (Self::STOP, "STOP"),
        (Self::PAUSE_CONTINUE, "PAUSE_CONTINUE"),
        (Self::DELETE, "DELETE"),
    ];

    /// The Win32 access mask.
    #[must_use]
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every right of `other` is in `self`.
    #[must_use]
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Rights {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Display for Rights {
    /// `QUERY_STATUS|START`, in a fixed order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(r, _)| self.contains(*r))
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&names.join("|"))
    }
}

/// A service's state as the SCM reports it (SERVICE_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// SERVICE_STOPPED.
    Stopped,
    /// SERVICE_START_PENDING.
    StartPending,
    /// SERVICE_STOP_PENDING.
    StopPending,
    /// SERVICE_RUNNING.
    Running,
    /// SERVICE_CONTINUE_PENDING.
    ContinuePending,
    /// SERVICE_PAUSE_PENDING.
    PausePending,
    /// SERVICE_PAUSED.
    Paused,
}

impl State {
    /// The SCM's word for it, as `sc query` prints it.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::Stopped => "STOPPED",
            Self::StartPending => "START_PENDING",
            Self::StopPending => "STOP_PENDING",
            Self::Running => "RUNNING",
            Self::ContinuePending => "CONTINUE_PENDING",
            Self::PausePending => "PAUSE_PENDING",
            Self::Paused => "PAUSED",
        }
    }
}

/// How a stopped service last exited (SERVICE_STATUS's two exit code fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// A Win32 error code (0: success).
    Win32(u32),
    /// A service-specific code ([`super::exit`]), reported with `WIN32_EXIT_CODE` 1066.
    ServiceSpecific(u32),
}

/// What `QueryServiceStatus` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The state.
    pub state: State,
    /// The service process, while it runs.
    pub pid: Option<u32>,
    /// How it last exited.
    pub exit: ExitCode,
}

/// What `QueryServiceConfig` says about an installed service: what `tend install`
/// compares its plan with, and what `tend status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledConfig {
    /// The display name.
    pub display_name: String,
    /// The whole command line the SCM runs (executable and arguments).
    pub command_line: String,
    /// The account, as the SCM spells it (`LocalSystem` for LocalSystem).
    pub account: Option<String>,
    /// The dependencies (services, and `+group`s).
    pub dependencies: Vec<String>,
    /// How it starts; `None` for a boot or system start driver's, which tend never writes.
    pub start: Option<StartType>,
}

/// A `ChangeServiceConfig` of only the fields given (the others are SERVICE_NO_CHANGE), the
/// command line as one string: how a take-over points a foreign service at tend and a
/// put-back writes back exactly what was there (`tend import --install --replace`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawChange {
    /// The whole command line (ImagePath), as is.
    pub command_line: Option<String>,
    /// The display name.
    pub display_name: Option<String>,
    /// The start type.
    pub start: Option<StartType>,
    /// The dependencies (services, and `+group`s); `Some(empty)` removes them all.
    pub dependencies: Option<Vec<String>>,
    /// The account (no password is given: a user account keeps the one the SCM has).
    pub account: Option<String>,
}

impl fmt::Display for RawChange {
    /// The fields that change, for the fake's record and messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        if let Some(c) = &self.command_line {
            v.push(format!("command {c}"));
        }
        if let Some(d) = &self.display_name {
            v.push(format!("display {d:?}"));
        }
        if let Some(s) = self.start {
            v.push(format!("start {s:?}"));
        }
        if let Some(d) = &self.dependencies {
            v.push(format!("depends [{}]", d.join(", ")));
        }
        if let Some(a) = &self.account {
            v.push(format!("account {a}"));
        }
        f.write_str(&v.join(" "))
    }
}

/// The SCM controls tend sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SERVICE_CONTROL_STOP.
    Stop,
    /// SERVICE_CONTROL_PARAMCHANGE, which `tend service` turns into a reload.
    ParamChange,
}

/// One `ChangeServiceConfig2` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config2 {
    /// SERVICE_CONFIG_DESCRIPTION.
    Description(String),
    /// SERVICE_CONFIG_PRESHUTDOWN_INFO.
    PreshutdownTimeout(Duration),
    /// SERVICE_CONFIG_DELAYED_AUTO_START_INFO.
    Delayed(bool),
    /// SERVICE_CONFIG_SERVICE_SID_INFO.
    SidType(SidType),
    /// SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO (empty: no restriction).
    RequiredPrivileges(Vec<String>),
    /// SERVICE_CONFIG_FAILURE_ACTIONS: restart after each delay; the count starts again
    /// after `reset` without a failure.
    FailureActions {
        /// After how long without a failure the count starts again.
        reset: Duration,
        /// One restart per failure, after these delays.
        restarts: Vec<Duration>,
    },
    /// SERVICE_CONFIG_FAILURE_ACTIONS_FLAG: also act on a non-zero exit, not only a crash.
    FailureActionsOnNonCrash(bool),
    /// SERVICE_CONFIG_FAILURE_ACTIONS as recorded from another tool's service (any action
    /// kind, the reboot message and the command), for a put-back.
    RecordedFailureActions(crate::takeover::ScmFailureActions),
}

impl fmt::Display for Config2 {
    /// The call and its value, for the fake's record and for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Description(d) => write!(f, "description {d:?}"),
            Self::PreshutdownTimeout(t) => write!(f, "preshutdown {}s", t.as_secs()),
            Self::Delayed(d) => write!(f, "delayed {d}"),
            Self::SidType(t) => write!(f, "sid {t:?}"),
            Self::RequiredPrivileges(p) => write!(f, "privileges [{}]", p.join(", ")),
            Self::FailureActions { reset, restarts } => write!(
                f,
                "failure actions restart after [{}]s, reset {}s",
                restarts
                    .iter()
                    .map(|d| d.as_secs().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                reset.as_secs()
            ),
            Self::FailureActionsOnNonCrash(b) => write!(f, "failure actions on non-crash {b}"),
            Self::RecordedFailureActions(a) => write!(
                f,
                "failure actions [{}], reset {}",
                a.actions
                    .iter()
                    .map(|x| format!("{} after {}ms", x.kind, x.delay_ms))
                    .collect::<Vec<_>>()
                    .join(", "),
                a.reset_secs.map_or("never".to_owned(), |s| format!("{s}s"))
            ),
        }
    }
}

/// The Service Control Manager: the calls tend makes, each a thin wrapper of one Win32
/// call (or one of windows-service's).
///
/// `Manager` is an open SCM connection, `Service` an open service handle with the
/// [`Rights`] it was opened with; both close when dropped.
pub trait ScmApi {
    /// An open SCM connection.
    type Manager;
    /// An open service.
    type Service;

    /// `OpenSCManager`: `create` adds SC_MANAGER_CREATE_SERVICE to CONNECT.
    ///
    /// # Errors
    ///
    /// The SCM's answer (access denied without Administrator rights, for `create`).
    fn connect(&self, create: bool) -> Result<Self::Manager, ScmError>;
    /// `OpenService`.
    ///
    /// # Errors
    ///
    /// The SCM's answer ([`ScmError::no_such_service`] when there is none).
    fn open(
        &self,
        mgr: &Self::Manager,
        name: &str,
        rights: Rights,
    ) -> Result<Self::Service, ScmError>;
    /// `CreateService` from the plan (and the account's password, if any).
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn create(
        &self,
        mgr: &Self::Manager,
        plan: &ScmPlan,
        password: Option<&str>,
        rights: Rights,
    ) -> Result<Self::Service, ScmError>;
    /// `ChangeServiceConfig` to the plan.
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn change_config(
        &self,
        svc: &Self::Service,
        plan: &ScmPlan,
        password: Option<&str>,
    ) -> Result<(), ScmError>;
    /// `ChangeServiceConfig` of the fields of `change` only ([`RawChange`]).
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn change_raw(&self, svc: &Self::Service, change: &RawChange) -> Result<(), ScmError>;
    /// `ChangeServiceConfig2` for one setting.
    ///
    /// # Errors
    ///
    /// The SCM's answer (error 124 where Windows or Wine does not support the setting).
    fn configure(&self, svc: &Self::Service, setting: &Config2) -> Result<(), ScmError>;
    /// `QueryServiceConfig`.
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn query_config(&self, svc: &Self::Service) -> Result<InstalledConfig, ScmError>;
    /// `QueryServiceConfig2`: SERVICE_CONFIG_DELAYED_AUTO_START_INFO.
    ///
    /// # Errors
    ///
    /// The SCM's answer (Wine cannot read it).
    fn query_delayed(&self, svc: &Self::Service) -> Result<bool, ScmError>;
    /// `QueryServiceConfig2`: SERVICE_CONFIG_SERVICE_SID_INFO.
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn query_sid_type(&self, svc: &Self::Service) -> Result<SidType, ScmError>;
    /// `QueryServiceConfig2`: SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO (empty: none set).
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn query_required_privileges(&self, svc: &Self::Service) -> Result<Vec<String>, ScmError>;
    /// `QueryServiceConfig2`: SERVICE_CONFIG_DESCRIPTION (empty: none set).
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn query_description(&self, svc: &Self::Service) -> Result<String, ScmError>;
    /// `QueryServiceConfig2`: SERVICE_CONFIG_FAILURE_ACTIONS, every action kind.
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn query_failure_actions(
        &self,
        svc: &Self::Service,
    ) -> Result<crate::takeover::ScmFailureActions, ScmError>;
    /// `QueryServiceConfig2`: SERVICE_CONFIG_FAILURE_ACTIONS_FLAG.
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn query_failure_actions_on_non_crash(&self, svc: &Self::Service) -> Result<bool, ScmError>;
    /// `QueryServiceConfig2`: SERVICE_CONFIG_PRESHUTDOWN_INFO.
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn query_preshutdown(&self, svc: &Self::Service) -> Result<Duration, ScmError>;
    /// `QueryServiceStatus`.
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn query_status(&self, svc: &Self::Service) -> Result<ServiceStatus, ScmError>;
    /// `StartService` with no arguments.
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn start(&self, svc: &Self::Service) -> Result<(), ScmError>;
    /// `ControlService`.
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn control(&self, svc: &Self::Service, control: Control) -> Result<(), ScmError>;
    /// `DeleteService` (the service goes once its last handle closes).
    ///
    /// # Errors
    ///
    /// The SCM's answer.
    fn delete(&self, svc: &Self::Service) -> Result<(), ScmError>;
}

/// What an SCM install touches besides the SCM.
pub trait Host {
    /// The tend.exe the service will run.
    ///
    /// # Errors
    ///
    /// The OS cannot say.
    fn current_exe(&self) -> io::Result<PathBuf>;
    /// An environment variable (the account's password).
    fn env(&self, var: &str) -> Option<String>;
    /// Whether `account` exists (`LookupAccountName`).
    ///
    /// # Errors
    ///
    /// It does not, with the OS's words.
    fn lookup_account(&self, account: &str) -> io::Result<()>;
    /// The user rights granted to `account` itself (`SeServiceLogonRight`, ...), as the
    /// LSA lists them (`LsaEnumerateAccountRights`): rights it has through a group it is
    /// in are not listed.
    ///
    /// # Errors
    ///
    /// They cannot be read (no LSA, no right to ask), with the OS's words.
    fn account_rights(&self, account: &str) -> io::Result<Vec<String>>;
    /// The DACL of `path` (`None`: a null DACL, which grants everything).
    ///
    /// # Errors
    ///
    /// It cannot be read.
    fn read_dacl(&self, path: &Path) -> io::Result<Option<Vec<Ace>>>;
    /// Replaces the DACL of `path` with the (protected) one in `sddl`.
    ///
    /// # Errors
    ///
    /// The OS refused.
    fn set_dacl(&self, path: &Path, sddl: &str) -> io::Result<()>;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// A file's text; `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// It exists and cannot be read.
    fn read(&self, path: &Path) -> io::Result<Option<String>>;
    /// Creates a directory and its parents.
    ///
    /// # Errors
    ///
    /// The OS refused.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Replaces a file atomically ([`crate::write_atomic`]).
    ///
    /// # Errors
    ///
    /// The OS refused.
    fn write(&self, path: &Path, text: &str) -> io::Result<()>;
    /// Removes a file.
    ///
    /// # Errors
    ///
    /// The OS refused (NotFound when there is none).
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    ///
    /// # Errors
    ///
    /// The OS refused (NotFound when there is none).
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Registers the service's Event Log source.
    ///
    /// # Errors
    ///
    /// The registry refused.
    fn register_event_source(&self, name: &str) -> io::Result<()>;
    /// Removes the service's Event Log source.
    ///
    /// # Errors
    ///
    /// The registry refused.
    fn remove_event_source(&self, name: &str) -> io::Result<()>;
    /// Who holds the Windows Error Reporting LocalDumps key of a program file name.
    ///
    /// # Errors
    ///
    /// The registry refused.
    fn local_dumps_owner(&self, exe: &str) -> io::Result<super::dumps::Owner>;
    /// Creates or updates a LocalDumps key, marked as `service`'s.
    ///
    /// # Errors
    ///
    /// The registry refused (the error names the key).
    fn set_local_dumps(&self, dumps: &super::dumps::LocalDumps, service: &str) -> io::Result<()>;
    /// Removes the LocalDumps key of a program file name.
    ///
    /// # Errors
    ///
    /// The registry refused (the error names the key).
    fn remove_local_dumps(&self, exe: &str) -> io::Result<()>;
    /// Now, for waits.
    fn now(&self) -> Instant;
    /// Waits between two looks at the SCM (it has no change notification that works
    /// under Wine).
    fn sleep(&self, d: Duration);
}
