//! What a verb's argument names: a config file or an installed service. One rule for every
//! verb that takes either (docs/cli.md, "Config file or service name"), so that the same
//! word never changes meaning with what happens to be in the current directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use tend_core::ServiceName;
use tend_os::Layout;

use crate::error::CliError;
use crate::place::Scope;

/// A verb's argument, read by the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A config file (as for `tend run`).
    Config(PathBuf),
    /// The name of an installed service.
    Name(String),
}

impl Target {
    /// The rule: an argument that has a path separator (`/`; also `\` on Windows) or ends
    /// in `.toml` is a config file; anything else is a service name, whether or not a file
    /// of that name exists in the current directory (`./api` names that file).
    pub(crate) fn parse(arg: &OsStr) -> Self {
        let text = arg.to_string_lossy();
        let separator = text.contains('/') || (cfg!(windows) && text.contains('\\'));
        let toml = Path::new(arg)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        if separator || toml {
            Self::Config(PathBuf::from(arg))
        } else {
            Self::Name(text.into_owned())
        }
    }

    /// The service name: the argument itself, or the `name` of the config file it names.
    pub(crate) fn service_name(&self) -> Result<ServiceName, CliError> {
        match self {
            Self::Name(n) => crate::place::service_name(n),
            Self::Config(path) => Ok(tend_config::load(
                path,
                &tend_config::LoadOptions::default(),
            )?
            .spec
            .name),
        }
    }
}

/// The installed service `name` and where its files are; [`CliError::NotInstalled`] (exit
/// code 3) when it has no config copy.
pub(crate) fn installed(name: &str, scope: Scope) -> Result<(ServiceName, Layout), CliError> {
    let name = crate::place::service_name(name)?;
    let place = crate::place::place(scope, &name)?;
    if !place.config.exists() {
        return Err(CliError::NotInstalled(name.to_string()));
    }
    Ok((name, place))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        let config = |s: &str| Target::Config(PathBuf::from(s));
        let name = |s: &str| Target::Name(s.to_owned());
        let cases = [
            ("api", name("api")),
            ("api-v2.service", name("api-v2.service")),
            ("api.toml", config("api.toml")),
            ("api.TOML", config("api.TOML")),
            ("./api", config("./api")),
            ("conf/api", config("conf/api")),
            ("/etc/tend/api.toml", config("/etc/tend/api.toml")),
            ("../api", config("../api")),
        ];
        for (arg, want) in cases {
            assert_eq!(Target::parse(OsStr::new(arg)), want, "{arg}");
        }
        // A backslash is a separator only where it is one.
        let want = if cfg!(windows) {
            config(r"conf\api")
        } else {
            name(r"conf\api")
        };
        assert_eq!(Target::parse(OsStr::new(r"conf\api")), want);
    }
}
