//! The verbs that act on an installed service: install, uninstall, start, stop, restart,
//! reload, and `service` (what the OS service manager runs).
//!
//! Each verb resolves its target, picks the manager of the scope ([`crate::os::manager`]:
//! systemd, launchd, the Windows SCM or the Windows per-user Run entry), calls it, prints
//! its report, and lets the error's type choose the exit code.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use tend_core::ServiceName;
use tend_os::{Access, Failure, Install, Report, ServiceManager};

use crate::error::CliError;
use crate::os;
use crate::place::{self, Scope};

/// `tend install [--user] [--no-access-check] <config>`.
pub(crate) fn install(
    config: &Path,
    scope: Scope,
    check_access: bool,
) -> Result<ExitCode, CliError> {
    // Rights first: a config that is fine is no use to an install that cannot happen.
    check_rights("install", scope)?;
    let loaded = tend_config::load(config, &place::load_options(scope)?)?;
    // What `tend run` would retry, an installed service must not start with: a missing
    // program or working directory at install time is an error.
    if !loaded.warnings.is_empty() {
        let mut err = std::io::stderr().lock();
        for w in &loaded.warnings {
            let _ = writeln!(err, "{}", w.display_in(&loaded.spec.config_path));
        }
        return Err(CliError::Invalid(format!(
            "not installing `{}`: fix the problems above first (nothing was changed)",
            loaded.spec.name
        )));
    }
    if scope == Scope::System {
        // Not fatal: access can be granted after install; but say it now, not at start.
        let mut err = std::io::stderr().lock();
        for (key, msg) in super::validate::account_warnings(&loaded.spec) {
            let _ = writeln!(
                err,
                "warning: {}: {key}: {msg}",
                loaded.spec.config_path.display()
            );
        }
    }
    let original = std::fs::read_to_string(config)
        .map_err(|e| CliError::io(format!("cannot read `{}`", config.display()), e))?;
    let access = if check_access {
        Access::Check
    } else {
        Access::Warn
    };
    let manager = os::manager(scope, access)?;
    let install = Install {
        spec: &loaded.spec,
        original: &original,
        leave_running: false,
    };
    {
        // doctor's checks that install does not make itself (the free space against the
        // retention, the health port, the clock, the logon right): said, never refused.
        let preflight = manager.preflight(&install).ok();
        let mut err = std::io::stderr().lock();
        for (id, msg) in super::doctor::at_install(&loaded.spec, config, scope, preflight.as_ref())
        {
            let _ = writeln!(err, "warning: doctor: {id}: {msg}");
        }
    }
    print(manager.install(&install))
}

pub(crate) fn uninstall(name: &ServiceName, scope: Scope) -> Result<ExitCode, CliError> {
    verb(name, scope, "uninstall", |m, n| m.uninstall(n))
}

pub(crate) fn start(name: &ServiceName, scope: Scope) -> Result<ExitCode, CliError> {
    verb(name, scope, "start", |m, n| m.start(n))
}

pub(crate) fn stop(name: &ServiceName, scope: Scope) -> Result<ExitCode, CliError> {
    verb(name, scope, "stop", |m, n| m.stop(n))
}

pub(crate) fn restart(name: &ServiceName, scope: Scope) -> Result<ExitCode, CliError> {
    verb(name, scope, "restart", |m, n| m.restart(n))
}

pub(crate) fn reload(name: &ServiceName, scope: Scope) -> Result<ExitCode, CliError> {
    verb(name, scope, "reload", |m, n| m.reload(n))
}

/// Runs one verb on a checked name and prints what it reported, also when it failed
/// half-way (the lines say what did happen).
fn verb(
    name: &ServiceName,
    scope: Scope,
    what: &str,
    f: impl FnOnce(&dyn ServiceManager, &ServiceName) -> Result<Report, Failure>,
) -> Result<ExitCode, CliError> {
    check_rights(what, scope)?;
    let manager = os::manager(scope, Access::Check)?;
    print(f(manager.as_ref(), name))
}

/// Prints the report (of what did happen, also before a failure) and maps the error to
/// its exit code.
fn print(result: Result<Report, Failure>) -> Result<ExitCode, CliError> {
    match result {
        Ok(r) => {
            os::print(&r);
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            os::print(&f.report);
            Err(f.error.into())
        }
    }
}

/// System services need root; checked before the config is even read. (On Windows the
/// SCM says "access denied" itself, with advice.)
pub(crate) fn check_rights(verb: &str, scope: Scope) -> Result<(), CliError> {
    #[cfg(unix)]
    if scope == Scope::System && !nix::unistd::geteuid().is_root() {
        return Err(tend_os::unix::need_root(verb).into());
    }
    let _ = (verb, scope);
    Ok(())
}

/// `tend service [--user] <name>`.
pub(crate) fn service(name: &str, scope: Scope, detached: bool) -> Result<ExitCode, CliError> {
    #[cfg(windows)]
    return match scope {
        Scope::System => crate::service_host::run(name),
        Scope::User => crate::run_key_host::run(name, detached),
    };
    #[cfg(unix)]
    {
        // Only Windows starts itself again without a console window.
        let _ = detached;
        // launchd has no step before the program (systemd runs `upgrade-recover` as
        // `ExecStartPre=`): the host ends an interrupted upgrade itself, when it may read the
        // store (a daemon without `UserName`, i.e. root); its lines go to launchd's log file.
        if scope.backend() == tend_os::Backend::Launchd {
            super::upgrade::recover_at_start_with(name, scope, &|line: &str| {
                let _ = writeln!(std::io::stderr(), "{line}");
            });
        }
        crate::unix_host::run(name, scope)
    }
}
