//! Where an installed service's files are: [`tend_os::Layout`], the one table for every
//! backend and both scopes, for the CLI's `--user` flag.

use std::path::{Path, PathBuf};

use tend_core::ServiceName;
use tend_os::{Backend, Layout};

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

    /// `system` or `user`, as the JSON documents (`apply`, `list`, DSC) name the scope.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
        }
    }

    /// ` --user` or nothing, for the commands that messages suggest.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Self::System => "",
            Self::User => " --user",
        }
    }

    /// This OS's service manager for the scope.
    pub(crate) fn backend(self) -> Backend {
        Backend::native(self == Self::User)
    }

    /// tend-os's scope: the flag with what the layout needs to know about this machine
    /// and user.
    pub(crate) fn os_scope(self) -> Result<tend_os::Scope, CliError> {
        tend_os::here::scope(self == Self::User).map_err(CliError::from)
    }
}

/// A service name from the command line, checked like a config's `name` (so a name can
/// never reach outside the directories above, e.g. `../x`).
pub(crate) fn service_name(name: &str) -> Result<ServiceName, CliError> {
    ServiceName::new(name)
        .map_err(|e| CliError::Invalid(format!("`{name}` is not a valid service name: {e}")))
}

/// The files of service `name` in `scope`.
pub(crate) fn place(scope: Scope, name: &ServiceName) -> Result<Layout, CliError> {
    Ok(Layout::new(scope.backend(), &scope.os_scope()?, name))
}

/// The release store of tend's own binary (`tend upgrade --self`): `.tend` beside the
/// services' stores (`<state root>/.releases/.tend`); no service is named with a dot.
pub(crate) fn host_releases_dir(scope: Scope) -> Result<PathBuf, CliError> {
    let any = service_name("tend")?;
    let dir = place(scope, &any)?.releases_dir();
    Ok(dir
        .parent()
        .map_or_else(|| dir.clone(), Path::to_path_buf)
        .join(".tend"))
}

/// The directory holding the config copies of `scope` (one `<name>.toml` per service).
pub(crate) fn config_dir(scope: Scope) -> Result<PathBuf, CliError> {
    Ok(place(scope, &placeholder())?.config_dir())
}

/// How installed configs of `scope` are loaded: `[logs] dir` defaults to the scope's log
/// directory for the service.
pub(crate) fn load_options(scope: Scope) -> Result<tend_config::LoadOptions, CliError> {
    Ok(tend_config::LoadOptions {
        log_dir: tend_config::LogDirDefault::Under(place(scope, &placeholder())?.log_root()),
    })
}

fn placeholder() -> ServiceName {
    ServiceName::new("x").expect("a constant valid name")
}

/// The names of the services tend has a config copy of in `scope`, sorted.
pub(crate) fn installed_names(scope: Scope) -> Result<Vec<String>, CliError> {
    let dir = config_dir(scope)?;
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let p = e.path();
                if p.extension()? != "toml" {
                    return None;
                }
                Some(p.file_stem()?.to_string_lossy().into_owned())
            })
            // A file that is not a service's copy (its name could be no service's) is not
            // tend's.
            .filter(|n| service_name(n).is_ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(CliError::io(format!("cannot list `{}`", dir.display()), e)),
    };
    names.sort();
    Ok(names)
}
