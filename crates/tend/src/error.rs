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
    /// An operating-system operation failed (I/O, spawning, signals).
    pub(crate) const OS: u8 = 5;
}

/// Everything the CLI can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Config(#[from] tend_config::ConfigError),
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
        ExitCode::from(match self {
            Self::Config(_) => code::INVALID,
            Self::Io { .. } => code::OS,
        })
    }
}
