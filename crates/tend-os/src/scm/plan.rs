//! What `tend install` asks of the Windows Service Control Manager, as plain data.
//!
//! Built from a [`ServiceSpec`] by a pure function so the mapping (accounts, start modes,
//! failure actions, exit codes) is unit-tested on every OS; [`super::Scm`] applies it
//! through [`super::ScmApi`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use tend_core::{Account, Hardening, ServiceSpec, StartMode};

/// Service-specific exit codes `tend service` reports to the SCM (visible in `sc query` as
/// `SERVICE_EXIT_CODE` with `WIN32_EXIT_CODE` 1066): tend's exit codes ([`crate::exit`]),
/// so one table (docs/cli.md) explains both.
pub mod exit {
    use crate::exit::{INVALID, OS as OS_FAILED, PROGRAM_FAILED, service_specific};
    /// The program failed: tend gave up after too many restarts.
    pub const GAVE_UP: u32 = service_specific(PROGRAM_FAILED);
    /// The installed config is invalid (or missing).
    pub const CONFIG: u32 = service_specific(INVALID);
    /// An operating-system operation failed.
    pub const OS: u32 = service_specific(OS_FAILED);
}

/// How the SCM starts the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartType {
    /// SERVICE_AUTO_START.
    Auto,
    /// SERVICE_DEMAND_START.
    Demand,
    /// SERVICE_DISABLED.
    Disabled,
}

/// SERVICE_SID_TYPE_*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidType {
    /// No service SID in the token.
    None,
    /// The service SID is added to the token (needed by `NT SERVICE\<name>`).
    Unrestricted,
    /// The service SID is added and the token is write-restricted: the service can write
    /// only where its service SID, Everyone or the write-restricted SID may write.
    Restricted,
}

/// What `hardening = "strict"` leaves a service's token: bypass traverse checking, which
/// every program needs to open a path below a directory it cannot list. A service that
/// needs more (impersonation, global objects) is not a candidate for `strict`.
pub const STRICT_PRIVILEGES: [&str; 1] = ["SeChangeNotifyPrivilege"];

/// One SCM failure action (all of tend's are "restart the service after `delay`").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    /// How long the SCM waits before it starts tend again.
    pub delay: Duration,
}

/// Everything `tend install` configures on the SCM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScmPlan {
    /// The service name (the config's `name`).
    pub name: String,
    /// What the Services console shows.
    pub display_name: String,
    /// SERVICE_CONFIG_DESCRIPTION.
    pub description: String,
    /// tend.exe's absolute path; the SCM runs `"<exe>" service <name>`.
    pub exe: PathBuf,
    /// The arguments after the executable: `service <name>`.
    pub args: Vec<String>,
    /// How the SCM starts the service.
    pub start: StartType,
    /// SERVICE_CONFIG_DELAYED_AUTO_START_INFO.
    pub delayed: bool,
    /// Services (or `+group`s) that must run first.
    pub dependencies: Vec<String>,
    /// `None` = LocalSystem.
    pub account: Option<String>,
    /// Name of the environment variable holding the account's password.
    pub password_env: Option<String>,
    /// SERVICE_CONFIG_SERVICE_SID_INFO. Virtual accounts (`NT SERVICE\<name>`) need the
    /// service SID to exist; `hardening = "strict"` makes it restricted.
    pub sid_type: SidType,
    /// SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO: the only privileges the service's token
    /// keeps. Empty: all of the account's privileges (no restriction).
    pub required_privileges: Vec<String>,
    /// SERVICE_CONFIG_PRESHUTDOWN_INFO: how long shutdown waits for tend's stop.
    pub preshutdown_timeout: Duration,
    /// The outer safety net: restart tend itself if it crashes or stops with an error.
    pub failure_actions: Vec<Restart>,
    /// After how long without a failure the SCM starts counting failures from zero.
    pub failure_reset: Duration,
    /// Also apply failure actions when tend stops with a non-zero exit code (gave up), not
    /// only when it crashes.
    pub failure_actions_on_non_crash: bool,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The account's password variable is not set.
    #[error(
        "service.password_env: the environment variable `{0}` is not set; set it to the account's password for this `tend install`"
    )]
    PasswordMissing(String),
    /// A `depends_on` entry names no service.
    #[error(
        "service.depends_on[{index}]: there is no service named `{name}` on this machine; install it first or remove it from depends_on (nothing was installed)"
    )]
    MissingDependency {
        /// Its index in `depends_on`.
        index: usize,
        /// The name.
        name: String,
    },
}

/// Fails on the first `depends_on` entry naming a service that does not exist (the SCM
/// would accept it, and the service would then never start). `exists` asks the SCM; load
/// order groups (`+group`) are not services and are not checked.
pub fn check_dependencies(deps: &[String], exists: impl Fn(&str) -> bool) -> Result<(), PlanError> {
    for (index, name) in deps.iter().enumerate() {
        if !name.starts_with('+') && !exists(name) {
            return Err(PlanError::MissingDependency {
                index,
                name: name.clone(),
            });
        }
    }
    Ok(())
}

/// What the SCM says about the settings `ChangeServiceConfig2` holds, for an installed
/// service; `None` where it cannot be read (a new service, or Wine, which cannot read most).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// SERVICE_CONFIG_DELAYED_AUTO_START_INFO.
    pub delayed: Option<bool>,
    /// SERVICE_CONFIG_SERVICE_SID_INFO.
    pub sid_type: Option<SidType>,
    /// SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO.
    pub required_privileges: Option<Vec<String>>,
}

/// One `ChangeServiceConfig2` call beyond those made on every install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// SERVICE_CONFIG_DELAYED_AUTO_START_INFO.
    Delayed(bool),
    /// SERVICE_CONFIG_SERVICE_SID_INFO.
    SidType(SidType),
    /// SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO (empty: no restriction).
    RequiredPrivileges(Vec<String>),
}

/// The settings to change: what the plan wants and the service does not have. A default
/// (not delayed, no service SID, no privilege list) is written only over something else,
/// so a plain install never asks for what it does not need (and Wine, which lacks some of
/// these calls, warns only when a setting that matters cannot be made).
pub fn settings(plan: &ScmPlan, installed: &Installed) -> Vec<Setting> {
    let mut out = Vec::new();
    let delayed = plan.start == StartType::Auto && plan.delayed;
    if installed.delayed.unwrap_or(false) != delayed {
        out.push(Setting::Delayed(delayed));
    }
    if installed.sid_type.unwrap_or(SidType::None) != plan.sid_type {
        out.push(Setting::SidType(plan.sid_type));
    }
    if installed.required_privileges.clone().unwrap_or_default() != plan.required_privileges {
        out.push(Setting::RequiredPrivileges(
            plan.required_privileges.clone(),
        ));
    }
    out
}

/// The account name the SCM gets for an [`Account`].
pub fn account_name(account: &Account, service: &str) -> Option<String> {
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
pub fn plan(
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
        sid_type: match (svc.hardening, &svc.account) {
            (Hardening::Strict, _) => SidType::Restricted,
            (Hardening::Basic, Account::Isolated) => SidType::Unrestricted,
            (Hardening::Basic, _) => SidType::None,
        },
        required_privileges: match svc.hardening {
            Hardening::Strict => STRICT_PRIVILEGES.map(str::to_owned).to_vec(),
            Hardening::Basic => Vec::new(),
        },
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
pub fn changes(old: &ScmPlan, new: &ScmPlan) -> Vec<String> {
    // Delayed means something only for an auto start.
    let describe = |p: &ScmPlan| {
        format!(
            "{:?}{}",
            p.start,
            if p.start == StartType::Auto && p.delayed {
                " (delayed)"
            } else {
                ""
            }
        )
    };
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
    cmp("start", describe(old), describe(new));
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
    cmp(
        "service SID",
        format!("{:?}", old.sid_type),
        format!("{:?}", new.sid_type),
    );
    let privileges = |p: &ScmPlan| {
        if p.required_privileges.is_empty() {
            "all of the account's".to_owned()
        } else {
            p.required_privileges.join(", ")
        }
    };
    cmp("privileges", privileges(old), privileges(new));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tend_core::InstallSpec;

    fn spec(service: InstallSpec) -> ServiceSpec {
        crate::testing::windows_spec(service, "C:/logs")
    }

    const EXE: &str = r"C:\Program Files\tend\tend.exe";

    #[test]
    fn defaults_isolated_auto_with_failure_actions() {
        let (p, pw) = plan(&spec(InstallSpec::default()), Path::new(EXE), |_| None).unwrap();
        assert_eq!(pw, None);
        assert_eq!(p.args, ["service", "api"]);
        assert_eq!(p.account.as_deref(), Some(r"NT SERVICE\api"));
        assert_eq!(p.sid_type, SidType::Unrestricted);
        assert!(p.required_privileges.is_empty());
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
            assert_eq!(p.sid_type, SidType::None);
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

    #[test]
    fn hardening_strict_restricts_the_sid_and_drops_privileges() {
        for account in [
            Account::Isolated,
            Account::System,
            Account::LocalService,
            Account::NetworkService,
        ] {
            let s = spec(InstallSpec {
                account: account.clone(),
                hardening: Hardening::Strict,
                ..InstallSpec::default()
            });
            let (p, _) = plan(&s, Path::new(EXE), |_| None).unwrap();
            assert_eq!(p.sid_type, SidType::Restricted, "{account:?}");
            assert_eq!(p.required_privileges, ["SeChangeNotifyPrivilege"]);
        }
        let (basic, _) = plan(&spec(InstallSpec::default()), Path::new(EXE), |_| None).unwrap();
        let strict = plan(
            &spec(InstallSpec {
                hardening: Hardening::Strict,
                ..InstallSpec::default()
            }),
            Path::new(EXE),
            |_| None,
        )
        .unwrap()
        .0;
        assert_eq!(
            changes(&basic, &strict),
            [
                "service SID: Unrestricted -> Restricted",
                "privileges: all of the account's -> SeChangeNotifyPrivilege"
            ]
        );
    }

    #[test]
    fn settings_change_only_what_differs() {
        let base = |start, hardening, account| {
            plan(
                &spec(InstallSpec {
                    start,
                    hardening,
                    account,
                    ..InstallSpec::default()
                }),
                Path::new(EXE),
                |_| None,
            )
            .unwrap()
            .0
        };
        let new = Installed::default();
        let strict_priv = || STRICT_PRIVILEGES.map(str::to_owned).to_vec();
        let cases = [
            // A plain auto service on a new install: nothing to ask (it used to warn
            // "cannot set delayed auto-start" where the call is not supported).
            (
                base(StartMode::Auto, Hardening::Basic, Account::System),
                new.clone(),
                vec![],
            ),
            (
                base(StartMode::DelayedAuto, Hardening::Basic, Account::System),
                new.clone(),
                vec![Setting::Delayed(true)],
            ),
            // delayed-auto -> auto: the flag is cleared.
            (
                base(StartMode::Auto, Hardening::Basic, Account::System),
                Installed {
                    delayed: Some(true),
                    ..Installed::default()
                },
                vec![Setting::Delayed(false)],
            ),
            (
                base(StartMode::Auto, Hardening::Basic, Account::Isolated),
                new.clone(),
                vec![Setting::SidType(SidType::Unrestricted)],
            ),
            (
                base(StartMode::Manual, Hardening::Strict, Account::Isolated),
                new.clone(),
                vec![
                    Setting::SidType(SidType::Restricted),
                    Setting::RequiredPrivileges(strict_priv()),
                ],
            ),
            // strict -> basic: back to the defaults, as far as they can be read.
            (
                base(StartMode::Manual, Hardening::Basic, Account::System),
                Installed {
                    delayed: Some(false),
                    sid_type: Some(SidType::Restricted),
                    required_privileges: Some(strict_priv()),
                },
                vec![
                    Setting::SidType(SidType::None),
                    Setting::RequiredPrivileges(vec![]),
                ],
            ),
            // Already as planned: nothing.
            (
                base(StartMode::Manual, Hardening::Strict, Account::Isolated),
                Installed {
                    delayed: None,
                    sid_type: Some(SidType::Restricted),
                    required_privileges: Some(strict_priv()),
                },
                vec![],
            ),
        ];
        for (i, (p, installed, want)) in cases.into_iter().enumerate() {
            assert_eq!(settings(&p, &installed), want, "case {i}");
        }
    }

    #[test]
    fn dependencies_must_exist() {
        let exists = |n: &str| n.eq_ignore_ascii_case("Tcpip");
        assert_eq!(check_dependencies(&[], exists), Ok(()));
        assert_eq!(
            check_dependencies(&["Tcpip".into(), "+NetworkProvider".into()], exists),
            Ok(())
        );
        let err = check_dependencies(&["tcpip".into(), "NoSuchSvc".into()], exists).unwrap_err();
        assert_eq!(
            err,
            PlanError::MissingDependency {
                index: 1,
                name: "NoSuchSvc".into()
            }
        );
        let msg = err.to_string();
        assert!(msg.starts_with("service.depends_on[1]:"), "{msg}");
        assert!(msg.contains("`NoSuchSvc`"), "{msg}");
    }
}
