//! Where an installed service's files are, for each scope (`--user` or not) on each OS.
//!
//! One table for install, `tend service`, status and uninstall, so they cannot disagree:
//!
//! | | config copy | state (status file) | logs |
//! |---|---|---|---|
//! | Windows | `%ProgramData%\tend\services\<name>.toml` | `%ProgramData%\tend\state\<name>` | `%ProgramData%\tend\logs\<name>` |
//! | Windows `--user` | `%LOCALAPPDATA%\tend\services\<name>.toml` | `%LOCALAPPDATA%\tend\state\<name>` | `%LOCALAPPDATA%\tend\logs\<name>` |
//! | Linux, macOS (either scope) | [`tend_os::Layout`] | [`tend_os::Layout`] | [`tend_os::Layout`] |
//!
//! (`[logs] dir` in the config overrides the log directory.)

use std::path::PathBuf;

use tend_core::ServiceName;

use crate::error::CliError;

/// System-wide (root / Administrator) or the current user's own service (`--user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    System,
    User,
}

impl Scope {
    pub(crate) fn from_user_flag(user: bool) -> Self {
        if user { Self::User } else { Self::System }
    }

    /// ` --user` or nothing, for the commands that messages suggest.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Self::System => "",
            Self::User => " --user",
        }
    }
}

/// The files of one installed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    /// tend's copy of the config, which `tend service` reads.
    pub(crate) config: PathBuf,
    /// Where the status file goes.
    pub(crate) state_dir: PathBuf,
    /// The default `[logs] dir`.
    pub(crate) log_dir: PathBuf,
}

/// A service name from the command line, checked like a config's `name` (so a name can
/// never reach outside the directories above, e.g. `../x`).
pub(crate) fn service_name(name: &str) -> Result<ServiceName, CliError> {
    ServiceName::new(name)
        .map_err(|e| CliError::Invalid(format!("`{name}` is not a valid service name: {e}")))
}

/// The files of service `name` in `scope`.
pub(crate) fn place(scope: Scope, name: &ServiceName) -> Result<Place, CliError> {
    imp::place(scope, name)
}

/// The directory holding the config copies of `scope` (one `<name>.toml` per service).
pub(crate) fn config_dir(scope: Scope) -> Result<PathBuf, CliError> {
    let p = imp::place(scope, &placeholder())?;
    Ok(p.config.parent().map(PathBuf::from).unwrap_or_default())
}

/// How installed configs of `scope` are loaded: `[logs] dir` defaults to the scope's log
/// directory for the service.
pub(crate) fn load_options(scope: Scope) -> Result<tend_config::LoadOptions, CliError> {
    // Every log directory in the table is `<root>/<name>`.
    let p = imp::place(scope, &placeholder())?;
    let root = p.log_dir.parent().map(PathBuf::from).unwrap_or_default();
    Ok(tend_config::LoadOptions {
        log_dir: tend_config::LogDirDefault::Under(root),
    })
}

fn placeholder() -> ServiceName {
    ServiceName::new("x").expect("a constant valid name")
}

#[cfg(unix)]
mod imp {
    use super::{CliError, Place, Scope, ServiceName};

    pub(super) fn place(scope: Scope, name: &ServiceName) -> Result<Place, CliError> {
        let os_scope = crate::os::unix::os_scope(scope)?;
        let l = tend_os::Layout::new(crate::os::unix::backend(), &os_scope, name);
        Ok(Place {
            config: l.config,
            state_dir: l.state_dir,
            log_dir: l.log_dir,
        })
    }
}

#[cfg(windows)]
mod imp {
    use super::{CliError, Place, Scope, ServiceName};
    use crate::paths;

    pub(super) fn place(scope: Scope, name: &ServiceName) -> Result<Place, CliError> {
        let n = name.as_str();
        Ok(match scope {
            Scope::System => Place {
                config: paths::installed_config(n),
                state_dir: paths::state_dir(n),
                log_dir: paths::log_dir(n),
            },
            Scope::User => {
                let root = crate::os::user_windows::local_app_data()?.join("tend");
                Place {
                    config: root.join("services").join(format!("{n}.toml")),
                    state_dir: root.join("state").join(n),
                    log_dir: root.join("logs").join(n),
                }
            }
        })
    }
}
