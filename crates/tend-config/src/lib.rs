//! tend's config file: TOML in, a validated [`tend_core::ServiceSpec`] out.
//!
//! Validation never stops at the first mistake: it walks the whole document and returns
//! every problem with its TOML key path, the line it is on where that can be found, and a
//! hint on how to fix it. Unknown keys are errors (a typo must not silently fall back to a
//! default). Relative paths resolve against the config file's directory, never against the
//! current directory, so a config means the same thing wherever tend is started from.
//!
//! Checks that depend on the machine (does the program exist, is the working directory
//! there) are *warnings*: `tend run` must still start and let the restart policy deal with
//! a program that appears later. `tend install` promotes them to errors.

mod envfile;
mod lines;
mod units;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use envfile::{EnvVars, parse_env_file};
pub use units::{parse_duration, parse_size};
pub use validate::find_in_path;

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The config cannot be used.
    Error,
    /// The config can be used, but something on this machine looks wrong.
    Warning,
}

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The TOML key path, e.g. `restart.max_delay`; empty for whole-file problems.
    pub key: String,
    /// 1-based line in the config file, where it could be found.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    /// Formats the problem as `error: <file>:<line>: <key>: <message>`.
    #[must_use]
    pub fn display_in<'a>(&'a self, file: &'a Path) -> impl fmt::Display + 'a {
        DisplayIn { p: self, file }
    }
}

struct DisplayIn<'a> {
    p: &'a Problem,
    file: &'a Path,
}

impl fmt::Display for DisplayIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.p.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.file.display())?;
        if let Some(line) = self.p.line {
            write!(f, ":{line}")?;
        }
        if !self.p.key.is_empty() {
            write!(f, ": {}", self.p.key)?;
        }
        write!(f, ": {}", self.p.message)
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file has problems; every one is listed (warnings included).
    #[error("config `{}` has {} error(s)", path.display(), count_errors(problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Everything found, in file order.
        problems: Vec<Problem>,
    },
}

fn count_errors(problems: &[Problem]) -> usize {
    problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count()
}

/// Where `[logs] dir` points when the config does not say.
#[derive(Debug, Clone, Default)]
pub enum LogDirDefault {
    /// `<config dir>/logs` (for `tend run`).
    #[default]
    NextToConfig,
    /// This directory.
    Fixed(PathBuf),
    /// `<this directory>/<name>` (the platform log root of installed services).
    Under(PathBuf),
}

/// Options for [`load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Default for `[logs] dir`.
    pub log_dir: LogDirDefault,
}

/// A valid config and the warnings found along the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated spec.
    pub spec: tend_core::ServiceSpec,
    /// Machine-dependent warnings (missing program, missing working directory, ...).
    pub warnings: Vec<Problem>,
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let path = std::path::absolute(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    parse(&text, &path, opts)
}

/// Validates config text as if it were read from `path` (which must be absolute; its
/// directory anchors relative paths).
pub fn parse(text: &str, path: &Path, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let (spec, problems) = validate::validate(text, path, opts);
    match spec {
        Some(spec) if count_errors(&problems) == 0 => Ok(Loaded {
            spec,
            warnings: problems,
        }),
        _ => Err(ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        }),
    }
}
