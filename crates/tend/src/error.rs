//! CLI errors and the exit codes they map to (documented in docs/cli.md).

use std::process::ExitCode;

/// Documented exit codes.
pub(crate) mod code {
    /// Success.
    pub(crate) const OK: u8 = 0;
    /// The supervised program failed: tend gave up, or it failed under `policy = "never"`.
    pub(crate) const PROGRAM_FAILED: u8 = 1;
    /// The config is invalid or the command line is wrong.
    pub(crate) const INVALID: u8 = 2;
    /// The service is not installed.
    pub(crate) const NOT_INSTALLED: u8 = 3;
    /// tend lacks a permission (not Administrator / root).
    pub(crate) const PERMISSION: u8 = 4;
    /// An operating-system operation failed (I/O, spawning, signals).
    pub(crate) const OS: u8 = 5;
}

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
    /// The verb needs rights tend does not have (system scope without root or
    /// Administrator); the message says what to do instead.
    #[error("{0}")]
    #[cfg_attr(
        windows,
        allow(dead_code, reason = "the SCM's access denied arrives as Io")
    )]
    Permission(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
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
            Self::Permission(_) => code::PERMISSION,
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
