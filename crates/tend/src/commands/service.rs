//! The verbs that act on an installed service: install, uninstall, start, stop, restart,
//! and `service` (what the OS service manager runs).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::error::CliError;

/// `tend install <config>`.
pub(crate) fn install(config: &Path) -> Result<ExitCode, CliError> {
    let loaded = tend_config::load(config, &crate::paths::installed_load_options())?;
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
    let original = std::fs::read_to_string(config)
        .map_err(|e| CliError::io(format!("cannot read `{}`", config.display()), e))?;
    imp::install(&loaded.spec, &original)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn uninstall(name: &str) -> Result<ExitCode, CliError> {
    imp::uninstall(name)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn start(name: &str) -> Result<ExitCode, CliError> {
    imp::start(name)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn stop(name: &str) -> Result<ExitCode, CliError> {
    imp::stop(name)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn restart(name: &str) -> Result<ExitCode, CliError> {
    imp::stop(name)?;
    imp::start(name)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn service(name: &str) -> Result<ExitCode, CliError> {
    #[cfg(windows)]
    return crate::service_host::run(name);
    #[cfg(not(windows))]
    return Err(unsupported("service", name));
}

#[cfg(windows)]
use crate::os::windows as imp;

#[cfg(not(windows))]
mod imp {
    use super::{CliError, unsupported};
    pub(super) fn install(spec: &tend_core::ServiceSpec, _: &str) -> Result<(), CliError> {
        Err(unsupported("install", spec.name.as_str()))
    }
    pub(super) fn uninstall(name: &str) -> Result<(), CliError> {
        Err(unsupported("uninstall", name))
    }
    pub(super) fn start(name: &str) -> Result<(), CliError> {
        Err(unsupported("start", name))
    }
    pub(super) fn stop(name: &str) -> Result<(), CliError> {
        Err(unsupported("stop", name))
    }
}

#[cfg(not(windows))]
fn unsupported(verb: &str, name: &str) -> CliError {
    CliError::Invalid(format!(
        "`tend {verb} {name}`: installed services are supported on Windows so far (systemd and launchd are coming); use `tend run <config>` here"
    ))
}
