//! Plans: what a verb does, as data, and the one function that carries a plan out.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::runner::{RunError, Runner, display_argv};

/// One step of a verb's plan. Plans are built by the pure functions of
/// [`crate::systemd`] and [`crate::launchd`]; [`apply`] carries them out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create `path` and any missing parents. The mode and owner apply to `path` itself,
    /// also when it already exists (so a reinstall with a new account fixes ownership).
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Unix permission bits, e.g. `0o755`.
        mode: u32,
        /// A user name to `chown` the directory to (its primary group too); `None` keeps
        /// the installing user.
        owner: Option<String>,
    },
    /// Write `contents` to `path`, replacing any existing file. Implementations should
    /// write a temporary file in the same directory and rename it, so the OS manager never
    /// reads half a file.
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Its full contents.
        contents: String,
        /// Unix permission bits, e.g. `0o644`.
        mode: u32,
    },
    /// Remove `path`; a file that is already gone is fine.
    RemoveFile {
        /// The file.
        path: PathBuf,
    },
    /// Run a command through the [`Runner`].
    Run {
        /// The command and its arguments.
        argv: Vec<String>,
        /// A failure is expected in some states and only reported, not fatal (e.g.
        /// `launchctl bootout` of a job that is not loaded).
        may_fail: bool,
    },
}

impl Step {
    /// A command that must succeed.
    pub(crate) fn run<S: AsRef<str>>(argv: &[S]) -> Self {
        Self::Run {
            argv: argv.iter().map(|s| s.as_ref().to_owned()).collect(),
            may_fail: false,
        }
    }

    /// A command whose failure is tolerated.
    pub(crate) fn try_run<S: AsRef<str>>(argv: &[S]) -> Self {
        Self::Run {
            argv: argv.iter().map(|s| s.as_ref().to_owned()).collect(),
            may_fail: true,
        }
    }
}

impl fmt::Display for Step {
    /// One line for `--dry-run` output, e.g. `write /etc/systemd/system/web.service (0644)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateDir { path, mode, owner } => {
                write!(f, "mkdir -p {} ({mode:04o}", path.display())?;
                if let Some(o) = owner {
                    write!(f, ", owner {o}")?;
                }
                f.write_str(")")
            }
            Self::WriteFile {
                path,
                contents,
                mode,
            } => write!(
                f,
                "write {} ({mode:04o}, {} bytes)",
                path.display(),
                contents.len()
            ),
            Self::RemoveFile { path } => write!(f, "remove {}", path.display()),
            Self::Run { argv, may_fail } => {
                write!(f, "run {}", display_argv(argv))?;
                if *may_fail {
                    f.write_str(" (failure tolerated)")?;
                }
                Ok(())
            }
        }
    }
}

/// The file operations a plan needs. The CLI implements it with `std::fs` plus the Unix
/// bits (`set_permissions`, `chown`), which is why this crate does not: it stays free of
/// `cfg(unix)`.
pub trait Files {
    /// [`Step::CreateDir`].
    ///
    /// # Errors
    ///
    /// Any I/O error, including an unknown owner.
    fn create_dir(&self, path: &Path, mode: u32, owner: Option<&str>) -> io::Result<()>;
    /// [`Step::WriteFile`].
    ///
    /// # Errors
    ///
    /// Any I/O error.
    fn write_file(&self, path: &Path, contents: &str, mode: u32) -> io::Result<()>;
    /// [`Step::RemoveFile`]. May return `NotFound`; [`apply`] ignores it.
    ///
    /// # Errors
    ///
    /// Any I/O error.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
}

/// What [`apply`] did, apart from succeeding.
#[derive(Debug, Default)]
pub struct Applied {
    /// Failures of [`Step::Run`] steps marked `may_fail`, for a verbose report.
    pub tolerated: Vec<RunError>,
}

/// A step of a plan failed; the steps before it were carried out, the rest were not.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A command failed.
    #[error("step {index} ({step}): {source}")]
    Run {
        /// 1-based position in the plan.
        index: usize,
        /// The step, as [`Step`]'s `Display`.
        step: String,
        /// What went wrong.
        #[source]
        source: RunError,
    },
    /// A file operation failed.
    #[error("step {index} ({step}): {source}")]
    Io {
        /// 1-based position in the plan.
        index: usize,
        /// The step, as [`Step`]'s `Display`.
        step: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
}

/// Carries out `steps` in order and stops at the first failure (a tolerated command
/// failure is collected in [`Applied::tolerated`] instead).
///
/// # Errors
///
/// The first step that failed, with its position and the underlying error.
pub fn apply(
    steps: &[Step],
    runner: &dyn Runner,
    files: &dyn Files,
) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    for (i, step) in steps.iter().enumerate() {
        let io_err = |source| ApplyError::Io {
            index: i + 1,
            step: step.to_string(),
            source,
        };
        match step {
            Step::CreateDir { path, mode, owner } => files
                .create_dir(path, *mode, owner.as_deref())
                .map_err(io_err)?,
            Step::WriteFile {
                path,
                contents,
                mode,
            } => files.write_file(path, contents, *mode).map_err(io_err)?,
            Step::RemoveFile { path } => match files.remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(e)),
                _ => {}
            },
            Step::Run { argv, may_fail } => {
                let args: Vec<&str> = argv.iter().map(String::as_str).collect();
                match runner.run(&args) {
                    Ok(_) => {}
                    Err(e) if *may_fail => applied.tolerated.push(e),
                    Err(source) => {
                        return Err(ApplyError::Run {
                            index: i + 1,
                            step: step.to_string(),
                            source,
                        });
                    }
                }
            }
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeRunner, MemFiles, Reply};

    #[test]
    fn apply_runs_in_order_and_tolerates_only_may_fail() {
        let steps = vec![
            Step::CreateDir {
                path: "/etc/tend".into(),
                mode: 0o755,
                owner: None,
            },
            Step::WriteFile {
                path: "/etc/tend/web.toml".into(),
                contents: "name = \"web\"\n".into(),
                mode: 0o644,
            },
            Step::try_run(&["launchctl", "bootout", "system/dev.tend.web"]),
            Step::RemoveFile {
                path: "/nonexistent".into(),
            },
            Step::run(&["launchctl", "bootstrap", "system", "/x.plist"]),
        ];
        let runner = FakeRunner::new();
        runner.reply(
            &["launchctl", "bootout", "system/dev.tend.web"],
            Reply::exit(3, "Boot-out failed: 3: No such process"),
        );
        let files = MemFiles::new();
        let applied = apply(&steps, &runner, &files).unwrap();
        assert_eq!(applied.tolerated.len(), 1);
        assert_eq!(runner.calls().len(), 2);
        assert_eq!(
            files.file("/etc/tend/web.toml"),
            Some(("name = \"web\"\n".to_owned(), 0o644))
        );
        assert!(files.has_dir("/etc/tend"));

        runner.reply(
            &["launchctl", "bootstrap", "system", "/x.plist"],
            Reply::exit(5, "Bootstrap failed: 5: Input/output error"),
        );
        let err = apply(&steps, &runner, &files).unwrap_err();
        assert_eq!(
            err.to_string(),
            "step 5 (run launchctl bootstrap system /x.plist): `launchctl bootstrap system /x.plist` failed (exit code 5): Bootstrap failed: 5: Input/output error"
        );
    }

    #[test]
    fn display_is_one_readable_line() {
        let s = Step::CreateDir {
            path: "/var/log/tend/web".into(),
            mode: 0o755,
            owner: Some("ann".into()),
        };
        assert_eq!(
            s.to_string(),
            "mkdir -p /var/log/tend/web (0755, owner ann)"
        );
        let s = Step::try_run(&["launchctl", "bootout", "gui/501/dev.tend.web"]);
        assert_eq!(
            s.to_string(),
            "run launchctl bootout gui/501/dev.tend.web (failure tolerated)"
        );
    }
}
