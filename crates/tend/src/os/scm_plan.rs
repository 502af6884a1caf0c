//! What `tend install` asks of the Windows Service Control Manager, as plain data.
//!
//! Built from a [`ServiceSpec`] by a pure function so the mapping (accounts, start modes,
//! failure actions, exit codes) is unit-tested on every OS; `os/windows.rs` only applies it.
#![allow(dead_code, reason = "applied on Windows only; tested everywhere")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tend_core::{Account, ServiceSpec, StartMode};

/// Service-specific exit codes `tend service` reports to the SCM (visible in `sc query` as
/// `SERVICE_EXIT_CODE` with `WIN32_EXIT_CODE` 1066). The same numbers as tend's CLI exit
/// codes, so one table (docs/cli.md) explains both.
pub(crate) mod exit {
    /// The program failed: tend gave up after too many restarts.
    pub(crate) const GAVE_UP: u32 = 1;
    /// The installed config is invalid (or missing).
    pub(crate) const CONFIG: u32 = 2;
    /// An operating-system operation failed.
    pub(crate) const OS: u32 = 5;
}

/// How the SCM starts the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartType {
    /// SERVICE_AUTO_START.
    Auto,
    /// SERVICE_DEMAND_START.
    Demand,
    /// SERVICE_DISABLED.
    Disabled,
}

/// One SCM failure action (all of tend's are "restart the service after `delay`").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Restart {
    pub(crate) delay: Duration,
}

/// Everything `tend install` configures on the SCM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScmPlan {
    pub(crate) name: String,
    pub(crate) display_name: String,
    pub(crate) description: String,
    /// tend.exe's absolute path; the SCM runs `"<exe>" service <name>`.
    pub(crate) exe: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) start: StartType,
    /// SERVICE_CONFIG_DELAYED_AUTO_START_INFO.
    pub(crate) delayed: bool,
    pub(crate) dependencies: Vec<String>,
    /// `None` = LocalSystem.
    pub(crate) account: Option<String>,
    /// Name of the environment variable holding the account's password.
    pub(crate) password_env: Option<String>,
    /// Virtual accounts (`NT SERVICE\<name>`) need the service SID to exist.
    pub(crate) unrestricted_sid: bool,
    pub(crate) preshutdown_timeout: Duration,
    /// The outer safety net: restart tend itself if it crashes or stops with an error.
    pub(crate) failure_actions: Vec<Restart>,
    pub(crate) failure_reset: Duration,
    /// Also apply failure actions when tend stops with a non-zero exit code (gave up), not
    /// only when it crashes.
    pub(crate) failure_actions_on_non_crash: bool,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PlanError {
    #[error(
        "service.password_env: the environment variable `{0}` is not set; set it to the account's password for this `tend install`"
    )]
    PasswordMissing(String),
}

/// The account name the SCM gets for an [`Account`].
pub(crate) fn account_name(account: &Account, service: &str) -> Option<String> {
    match account {
        Account::Isolated => Some(format!(r"NT SERVICE\{service}")),
        Account::System => None,
        Account::LocalService => Some(r"NT AUTHORITY\LocalService".to_owned()),
        Account::NetworkService => Some(r"NT AUTHORITY\NetworkService".to_owned()),
        Account::User { name, .. } => {
            // `user` alone means a local account: the SCM wants `.\user`.
            if name.contains('\\') || name.contains('@') {
                Some(name.clone())
            } else {
                Some(format!(r".\{name}"))
            }
        }
    }
}

/// Builds the plan. `env` looks up environment variables (the password), injected so the
/// function stays pure.
pub(crate) fn plan(
    spec: &ServiceSpec,
    exe: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(ScmPlan, Option<String>), PlanError> {
    let name = spec.name.to_string();
    let svc = &spec.service;
    let (start, delayed) = match svc.start {
        StartMode::Auto => (StartType::Auto, false),
        StartMode::DelayedAuto => (StartType::Auto, true),
        StartMode::Manual => (StartType::Demand, false),
        StartMode::Disabled => (StartType::Disabled, false),
    };
    let (password_env, password) = match &svc.account {
        Account::User {
            password_env: Some(var),
            ..
        } => {
            let pw = env(var).ok_or_else(|| PlanError::PasswordMissing(var.clone()))?;
            (Some(var.clone()), Some(pw))
        }
        _ => (None, None),
    };
    let plan = ScmPlan {
        display_name: spec.display_name.clone(),
        description: spec
            .description
            .clone()
            .unwrap_or_else(|| format!("{} (supervised by tend)", spec.display_name)),
        exe: exe.to_owned(),
        args: vec!["service".to_owned(), name.clone()],
        start,
        delayed,
        dependencies: svc.depends_on.clone(),
        account: account_name(&svc.account, &name),
        password_env,
        unrestricted_sid: svc.account == Account::Isolated,
        preshutdown_timeout: svc.preshutdown_timeout,
        failure_actions: [5, 30, 60]
            .map(|s| Restart {
                delay: Duration::from_secs(s),
            })
            .to_vec(),
        failure_reset: Duration::from_secs(24 * 3600),
        failure_actions_on_non_crash: true,
        name,
    };
    Ok((plan, password))
}

/// Readable differences between what is installed and what would be, for `tend install`
/// on an installed service.
pub(crate) fn changes(old: &ScmPlan, new: &ScmPlan) -> Vec<String> {
    let mut out = Vec::new();
    let mut cmp = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: {a} -> {b}"));
        }
    };
    cmp(
        "display name",
        old.display_name.clone(),
        new.display_name.clone(),
    );
    cmp(
        "program",
        old.exe.display().to_string(),
        new.exe.display().to_string(),
    );
    cmp(
        "start",
        format!(
            "{:?}{}",
            old.start,
            if old.delayed { " (delayed)" } else { "" }
        ),
        format!(
            "{:?}{}",
            new.start,
            if new.delayed { " (delayed)" } else { "" }
        ),
    );
    cmp(
        "dependencies",
        old.dependencies.join(", "),
        new.dependencies.join(", "),
    );
    cmp(
        "account",
        old.account.clone().unwrap_or_else(|| "LocalSystem".into()),
        new.account.clone().unwrap_or_else(|| "LocalSystem".into()),
    );
    out
}

/// Stable Event Log IDs (documented in docs/windows.md).
pub(crate) mod event_id {
    pub(crate) const STARTED: u32 = 1000;
    pub(crate) const EXITED: u32 = 1001;
    pub(crate) const RESTARTING: u32 = 1002;
    pub(crate) const GAVE_UP: u32 = 1003;
    pub(crate) const STOPPING: u32 = 1004;
    pub(crate) const STOPPED: u32 = 1005;
    pub(crate) const KILLED: u32 = 1006;
    pub(crate) const SPAWN_FAILED: u32 = 1007;
    pub(crate) const NOT_RESTARTING: u32 = 1008;
    pub(crate) const CONFIG_ERROR: u32 = 1100;
    pub(crate) const SERVICE_ERROR: u32 = 1101;
    pub(crate) const INFO: u32 = 1200;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tend_core::{InstallSpec, LogSpec, Program, RestartSpec, ServiceName, StopSpec};

    fn spec(service: InstallSpec) -> ServiceSpec {
        ServiceSpec {
            name: ServiceName::new("api").unwrap(),
            display_name: "API server".into(),
            description: None,
            config_path: "C:/app/api.toml".into(),
            base_dir: "C:/app".into(),
            command: tend_core::CommandSpec {
                program: Program::Path("C:/app/api.exe".into()),
                args: vec![],
            },
            working_dir: "C:/app".into(),
            env: vec![],
            restart: RestartSpec::default(),
            stop: StopSpec::default(),
            logs: LogSpec::with_dir("C:/logs".into()),
            service,
            health: None,
            limits: None,
            notify: None,
            metrics: None,
        }
    }

    const EXE: &str = r"C:\Program Files\tend\tend.exe";

    #[test]
    fn defaults_isolated_auto_with_failure_actions() {
        let (p, pw) = plan(&spec(InstallSpec::default()), Path::new(EXE), |_| None).unwrap();
        assert_eq!(pw, None);
        assert_eq!(p.args, ["service", "api"]);
        assert_eq!(p.account.as_deref(), Some(r"NT SERVICE\api"));
        assert!(p.unrestricted_sid);
        assert_eq!((p.start, p.delayed), (StartType::Auto, false));
        assert_eq!(
            p.failure_actions
                .iter()
                .map(|r| r.delay.as_secs())
                .collect::<Vec<_>>(),
            [5, 30, 60]
        );
        assert_eq!(p.failure_reset, Duration::from_secs(86400));
        assert!(p.failure_actions_on_non_crash);
        assert_eq!(p.description, "API server (supervised by tend)");
    }

    #[test]
    fn start_modes() {
        for (mode, want) in [
            (StartMode::Auto, (StartType::Auto, false)),
            (StartMode::DelayedAuto, (StartType::Auto, true)),
            (StartMode::Manual, (StartType::Demand, false)),
            (StartMode::Disabled, (StartType::Disabled, false)),
        ] {
            let s = spec(InstallSpec {
                start: mode,
                ..InstallSpec::default()
            });
            let (p, _) = plan(&s, Path::new(EXE), |_| None).unwrap();
            assert_eq!((p.start, p.delayed), want, "{mode:?}");
        }
    }

    #[test]
    fn accounts() {
        let cases = [
            (Account::System, None),
            (Account::LocalService, Some(r"NT AUTHORITY\LocalService")),
            (
                Account::NetworkService,
                Some(r"NT AUTHORITY\NetworkService"),
            ),
            (
                Account::User {
                    name: r"CORP\svc".into(),
                    password_env: None,
                },
                Some(r"CORP\svc"),
            ),
            (
                Account::User {
                    name: "svc".into(),
                    password_env: None,
                },
                Some(r".\svc"),
            ),
            (
                Account::User {
                    name: "svc@corp.example".into(),
                    password_env: None,
                },
                Some("svc@corp.example"),
            ),
        ];
        for (account, want) in cases {
            let s = spec(InstallSpec {
                account: account.clone(),
                ..InstallSpec::default()
            });
            let (p, _) = plan(&s, Path::new(EXE), |_| None).unwrap();
            assert_eq!(p.account.as_deref(), want, "{account:?}");
            assert!(!p.unrestricted_sid);
        }
    }

    #[test]
    fn password_comes_from_the_named_variable_or_fails() {
        let s = spec(InstallSpec {
            account: Account::User {
                name: r"CORP\svc".into(),
                password_env: Some("PW".into()),
            },
            ..InstallSpec::default()
        });
        let (_, pw) = plan(&s, Path::new(EXE), |v| (v == "PW").then(|| "s3cret".into())).unwrap();
        assert_eq!(pw.as_deref(), Some("s3cret"));
        let err = plan(&s, Path::new(EXE), |_| None).unwrap_err();
        assert_eq!(err, PlanError::PasswordMissing("PW".into()));
        assert!(err.to_string().contains("`PW` is not set"));
    }

    #[test]
    fn changes_are_listed_readably() {
        let (a, _) = plan(&spec(InstallSpec::default()), Path::new(EXE), |_| None).unwrap();
        let (b, _) = plan(
            &spec(InstallSpec {
                start: StartMode::Manual,
                depends_on: vec!["Tcpip".into()],
                ..InstallSpec::default()
            }),
            Path::new(EXE),
            |_| None,
        )
        .unwrap();
        assert!(changes(&a, &a).is_empty());
        assert_eq!(
            changes(&a, &b),
            ["start: Auto -> Demand", "dependencies:  -> Tcpip"]
        );
    }
}
