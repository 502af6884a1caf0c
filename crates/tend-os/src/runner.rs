//! The one seam through which `systemctl` and `launchctl` are run.

use std::io;
use std::process::{Command, Stdio};

/// What a successful command printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutput {
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded (systemctl reports e.g. "Created symlink" here).
    pub stderr: String,
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started (not installed, not executable).
    #[error("cannot run `{}`: {source}", display_argv(argv))]
    Spawn {
        /// The command.
        argv: Vec<String>,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The program ran and exited unsuccessfully.
    #[error("`{}` failed ({}){}", display_argv(argv), exit_text(*code), stderr_suffix(stderr))]
    Failed {
        /// The command.
        argv: Vec<String>,
        /// Its exit code; `None` when it was killed by a signal.
        code: Option<i32>,
        /// What it printed on stdout.
        stdout: String,
        /// What it printed on stderr.
        stderr: String,
    },
}

impl RunError {
    /// The command that failed.
    #[must_use]
    pub fn argv(&self) -> &[String] {
        match self {
            Self::Spawn { argv, .. } | Self::Failed { argv, .. } => argv,
        }
    }
}

fn exit_text(code: Option<i32>) -> String {
    code.map_or_else(
        || "killed by a signal".to_owned(),
        |c| format!("exit code {c}"),
    )
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

/// Runs a command and captures its output.
///
/// Every call to `systemctl` / `launchctl` goes through this trait so that tests (here and
/// in the CLI) can substitute [`crate::testing::FakeRunner`] and assert the exact argv.
pub trait Runner {
    /// Runs `argv[0]` with the remaining arguments, no shell, stdin from `/dev/null`.
    ///
    /// # Errors
    ///
    /// [`RunError::Spawn`] when it cannot start; [`RunError::Failed`] (with both outputs)
    /// when it exits with a non-zero code or is killed.
    fn run(&self, argv: &[&str]) -> Result<RunOutput, RunError>;
}

/// The real runner: `std::process::Command`, waiting for the command to finish.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&self, argv: &[&str]) -> Result<RunOutput, RunError> {
        let owned = || argv.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let Some((program, args)) = argv.split_first() else {
            return Err(RunError::Spawn {
                argv: Vec::new(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
            });
        };
        let out = Command::new(program)
            .args(args)
            // systemctl would otherwise ask for a password on a terminal (polkit) or page
            // its output; tend's verbs must never block on input.
            .stdin(Stdio::null())
            .env("SYSTEMD_PAGER", "")
            .output()
            .map_err(|source| RunError::Spawn {
                argv: owned(),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            Ok(RunOutput { stdout, stderr })
        } else {
            Err(RunError::Failed {
                argv: owned(),
                code: out.status.code(),
                stdout,
                stderr,
            })
        }
    }
}

/// A command line for messages: arguments with spaces or quotes are single-quoted, as a
/// shell user would type them.
#[must_use]
pub fn display_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_alphanumeric() || "-_./:=@%+,".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let argv = ["launchctl", "bootstrap", "system", "/a b/x's.plist", ""]
            .map(String::from)
            .to_vec();
        assert_eq!(
            display_argv(&argv),
            r"launchctl bootstrap system '/a b/x'\''s.plist' ''"
        );
    }

    #[test]
    fn failed_error_names_command_code_and_stderr() {
        let e = RunError::Failed {
            argv: vec!["systemctl".into(), "start".into(), "web.service".into()],
            code: Some(5),
            stdout: String::new(),
            stderr: "Unit web.service not found.\n".into(),
        };
        assert_eq!(
            e.to_string(),
            "`systemctl start web.service` failed (exit code 5): Unit web.service not found."
        );
    }

    #[test]
    fn captures_output_and_failure() {
        // The test binary itself is a program that exists on every host (also under Wine):
        // `--list` prints the tests and exits 0, an unknown flag exits non-zero.
        let me = std::env::current_exe().unwrap();
        let me = me.to_str().unwrap();
        let out = SystemRunner.run(&[me, "--list"]).unwrap();
        assert!(
            out.stdout.contains("captures_output_and_failure"),
            "{out:?}"
        );
        match SystemRunner.run(&[me, "--no-such-flag"]).unwrap_err() {
            RunError::Failed {
                code, stderr, argv, ..
            } => {
                assert_ne!(code, Some(0));
                assert!(stderr.contains("no-such-flag"), "{stderr}");
                assert_eq!(argv[1], "--no-such-flag");
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn spawn_error_for_a_missing_program() {
        let e = SystemRunner
            .run(&["/nonexistent/tend-os-test-program"])
            .unwrap_err();
        assert!(matches!(e, RunError::Spawn { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/tend-os-test-program"));
        assert!(SystemRunner.run(&[]).is_err());
    }
}
