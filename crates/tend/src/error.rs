//! CLI errors and the exit codes they map to (documented in docs/cli.md).

use std::process::ExitCode;

/// The documented exit codes: tend-os holds the one table, shared with `tend service` and
/// the OS managers' restart rules.
pub(crate) use tend_os::exit as code;

/// Everything the CLI can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Config(#[from] tend_config::ConfigError),
    /// Input that is wrong in a way the config file cannot show (a name taken by another
    /// service, an account that does not exist, a program missing at install).
    #[error("{0}")]
    Invalid(String),
    #[error("service `{0}` is not installed")]
    NotInstalled(String),
    /// What an OS service manager refused or failed at, typed by tend-os.
    #[error(transparent)]
    Service(tend_os::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<tend_os::Error> for CliError {
    /// A config error stays one, so that its problems are printed with their places.
    fn from(e: tend_os::Error) -> Self {
        match e {
            tend_os::Error::Config(c) => Self::Config(*c),
            e => Self::Service(e),
        }
    }
}

impl From<tend_os::here::ScopeError> for CliError {
    fn from(e: tend_os::here::ScopeError) -> Self {
        if e.exit_code() == code::INVALID {
            Self::Invalid(e.to_string())
        } else {
            Self::io(
                e.to_string(),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        }
    }
}

impl CliError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// The documented exit code (see [`code`]).
    pub(crate) fn code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Invalid(_) => code::INVALID,
            Self::NotInstalled(_) => code::NOT_INSTALLED,
            Self::Service(e) => e.exit_code(),
            Self::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied
                    || source.raw_os_error() == Some(5) =>
            {
                code::PERMISSION
            }
            Self::Io { .. } => code::OS,
        }
    }
}
