//! The verbs that act on an installed service: install, uninstall, start, stop, restart,
//! reload, and `service` (what the OS service manager runs).
//!
//! Each takes a [`Scope`]: the system's service manager (root / Administrator), or the
//! user's own (`--user`). The backends: the Windows SCM (`os::windows`), the Windows
//! per-user Run entry (`os::user_windows`), systemd and launchd (`os::unix`).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::error::CliError;
use crate::os::Report;
use crate::place::{self, Scope};

/// `tend install [--user] [--no-access-check] <config>`.
pub(crate) fn install(
    config: &Path,
    scope: Scope,
    check_access: bool,
) -> Result<ExitCode, CliError> {
    // Rights first: a config that is fine is no use to an install that cannot happen.
    imp::check_rights("install", scope)?;
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
    let mut r = Report::default();
    let result = imp::install(&loaded.spec, &original, scope, check_access, &mut r);
    r.print();
    result.map(|()| ExitCode::SUCCESS)
}

pub(crate) fn uninstall(name: &str, scope: Scope) -> Result<ExitCode, CliError> {
    verb(name, scope, imp::uninstall)
}

pub(crate) fn start(name: &str, scope: Scope) -> Result<ExitCode, CliError> {
    verb(name, scope, imp::start)
}

pub(crate) fn stop(name: &str, scope: Scope) -> Result<ExitCode, CliError> {
    verb(name, scope, imp::stop)
}

pub(crate) fn restart(name: &str, scope: Scope) -> Result<ExitCode, CliError> {
    verb(name, scope, imp::restart)
}

pub(crate) fn reload(name: &str, scope: Scope) -> Result<ExitCode, CliError> {
    verb(name, scope, imp::reload)
}

/// Runs one verb on a checked name and prints what it reported, also when it failed
/// half-way (the lines say what did happen).
fn verb(
    name: &str,
    scope: Scope,
    f: fn(&tend_core::ServiceName, Scope, &mut Report) -> Result<(), CliError>,
) -> Result<ExitCode, CliError> {
    let name = place::service_name(name)?;
    let mut r = Report::default();
    let result = f(&name, scope, &mut r);
    r.print();
    result.map(|()| ExitCode::SUCCESS)
}

/// `tend service [--user] <name>`.
pub(crate) fn service(name: &str, scope: Scope, detached: bool) -> Result<ExitCode, CliError> {
    #[cfg(windows)]
    return match scope {
        Scope::System => crate::service_host::run(name),
        Scope::User => crate::os::user_windows::serve(name, detached),
    };
    #[cfg(unix)]
    {
        // Only Windows starts itself again without a console window.
        let _ = detached;
        crate::unix_host::run(name, scope)
    }
}

#[cfg(windows)]
mod imp {
    use tend_core::{ServiceName, ServiceSpec};

    use super::{CliError, Report, Scope};
    use crate::os::{user_windows, windows};

    /// The SCM says "access denied" itself, with advice (see `os::windows`).
    pub(super) fn check_rights(_verb: &str, _scope: Scope) -> Result<(), CliError> {
        Ok(())
    }

    pub(super) fn install(
        spec: &ServiceSpec,
        original: &str,
        scope: Scope,
        check_access: bool,
        r: &mut Report,
    ) -> Result<(), CliError> {
        match scope {
            Scope::System => windows::install(spec, original, check_access),
            Scope::User => user_windows::install(spec, original, r),
        }
    }

    pub(super) fn uninstall(
        name: &ServiceName,
        scope: Scope,
        r: &mut Report,
    ) -> Result<(), CliError> {
        match scope {
            Scope::System => windows::uninstall(name.as_str()),
            Scope::User => user_windows::uninstall(name, r),
        }
    }

    pub(super) fn start(name: &ServiceName, scope: Scope, r: &mut Report) -> Result<(), CliError> {
        match scope {
            Scope::System => windows::start(name.as_str()),
            Scope::User => user_windows::start(name, r),
        }
    }

    pub(super) fn stop(name: &ServiceName, scope: Scope, r: &mut Report) -> Result<(), CliError> {
        match scope {
            Scope::System => windows::stop(name.as_str()),
            Scope::User => user_windows::stop(name, r),
        }
    }

    pub(super) fn restart(
        name: &ServiceName,
        scope: Scope,
        r: &mut Report,
    ) -> Result<(), CliError> {
        stop(name, scope, r)?;
        start(name, scope, r)
    }

    pub(super) fn reload(name: &ServiceName, scope: Scope, r: &mut Report) -> Result<(), CliError> {
        match scope {
            Scope::System => {
                let _ = r;
                crate::os::windows::reload(name.as_str())
            }
            Scope::User => user_windows::reload(name, r),
        }
    }
}

#[cfg(unix)]
mod imp {
    use tend_core::{ServiceName, ServiceSpec};

    use super::{CliError, Report, Scope};
    use crate::os::unix::with_real;

    /// System services need root; checked before the config is even read.
    pub(super) fn check_rights(verb: &str, scope: Scope) -> Result<(), CliError> {
        if scope == Scope::User || nix::unistd::geteuid().is_root() {
            return Ok(());
        }
        Err(crate::os::unix::need_root(verb))
    }

    pub(super) fn install(
        spec: &ServiceSpec,
        original: &str,
        scope: Scope,
        check_access: bool,
        r: &mut Report,
    ) -> Result<(), CliError> {
        let mut u = crate::os::unix::real(scope)?;
        if !check_access {
            u.access = crate::os::unix::Access::Warn;
        }
        u.install(spec, original, r)
    }

    pub(super) fn uninstall(
        name: &ServiceName,
        scope: Scope,
        r: &mut Report,
    ) -> Result<(), CliError> {
        with_real(scope, |u| u.uninstall(name, r))
    }

    pub(super) fn start(name: &ServiceName, scope: Scope, r: &mut Report) -> Result<(), CliError> {
        with_real(scope, |u| u.start(name, r))
    }

    pub(super) fn stop(name: &ServiceName, scope: Scope, r: &mut Report) -> Result<(), CliError> {
        with_real(scope, |u| u.stop(name, r))
    }

    pub(super) fn restart(
        name: &ServiceName,
        scope: Scope,
        r: &mut Report,
    ) -> Result<(), CliError> {
        with_real(scope, |u| u.restart(name, r))
    }

    pub(super) fn reload(name: &ServiceName, scope: Scope, r: &mut Report) -> Result<(), CliError> {
        with_real(scope, |u| u.reload(name, r))
    }
}
