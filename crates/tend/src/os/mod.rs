//! The OS service managers: what they say about a service, and the install backends.

// Which of tend's lines the service runtime writes to the Event Log, and how; tested
// everywhere, used on Windows.
#[cfg(any(windows, test))]
pub(crate) mod eventlog;
// `[logs] eventlog = "stderr"`: only a Windows service has somewhere to send the lines,
// but the host that would forward them is the same everywhere.
pub(crate) mod stderr_events;

use std::io::Write as _;

use tend_os::{Access, ServiceManager};

use crate::error::CliError;
use crate::place::Scope;

/// The OS service manager's view of a service (`tend status`).
pub(crate) use tend_os::Status as OsStatus;

/// What a verb did: lines for stdout, warnings and problems for stderr.
pub(crate) use tend_os::Report;

/// The service manager of this OS for `scope`: systemd or launchd, the Windows SCM or the
/// Windows per-user Run entry. `access` is what `install` does about paths the service
/// will not reach.
pub(crate) fn manager(scope: Scope, access: Access) -> Result<Box<dyn ServiceManager>, CliError> {
    #[cfg(unix)]
    {
        Ok(tend_os::unix::native(scope.os_scope()?, access))
    }
    #[cfg(windows)]
    {
        Ok(match scope.os_scope()? {
            tend_os::Scope::System(system) => Box::new(tend_os::scm::Scm::real(system, access)),
            tend_os::Scope::User(user) => Box::new(tend_os::run_key::RunEntry::new(
                tend_os::run_key::RealHost {
                    supervisor_alive: crate::proc::supervisor_alive,
                    pid_alive: crate::proc::pid_alive,
                },
                user,
            )),
        })
    }
}

/// Asks the OS service manager; `None` where it cannot be asked (no systemd running, no
/// user manager, no SCM).
pub(crate) fn query(name: &str, scope: Scope) -> Option<OsStatus> {
    let name = crate::place::service_name(name).ok()?;
    manager(scope, Access::Check).ok()?.status(&name).ok()
}

/// Why `name` is not a service tend installed (a distribution's unit, a hand-written file),
/// or `None` when it is tend's, or not installed at all, or the OS cannot tell.
pub(crate) fn not_tend_service(name: &str, scope: Scope) -> Option<String> {
    let name = crate::place::service_name(name).ok()?;
    manager(scope, Access::Check).ok()?.not_ours(&name)
}

/// Prints a verb's report: problems and warnings first (they come before what was done,
/// as a compiler's would), then what was done.
pub(crate) fn print(r: &Report) {
    let mut err = std::io::stderr().lock();
    for p in &r.problems {
        let _ = writeln!(err, "{p}");
    }
    for w in &r.warnings {
        let _ = writeln!(err, "warning: {w}");
    }
    drop(err);
    let mut out = std::io::stdout().lock();
    for l in &r.lines {
        let _ = writeln!(out, "{l}");
    }
}
