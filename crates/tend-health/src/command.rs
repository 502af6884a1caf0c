//! Running a short-lived command (a health check, an alert hook) with a hard time bound.
//!
//! Unix: the command leads its own process group, and the group is SIGKILLed when the command
//! times out and again after it exits, so a `check.sh` that starts `curl` cannot leave it
//! behind (the same rule tend applies to the program and its hooks). Windows: `kill_on_drop`
//! terminates the command itself; what it started is not tracked (that would need a Job
//! Object per probe, too heavy every few seconds), so a Windows check should not start
//! long-lived children.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tend_core::{CommandSpec, Program};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

/// How much of each output stream is kept (the end of it: the last line explains a failure).
const TAIL: usize = 4 * 1024;
/// How long output is still read after the command exited (a grandchild may hold the pipe).
const DRAIN: Duration = Duration::from_millis(250);

/// A command ready to run: what `command = [...]` says plus where and with what environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCommand {
    /// The program: an absolute path, or a bare name looked up in `PATH` when it runs.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory (the service's).
    pub working_dir: Option<PathBuf>,
    /// Variables added to tend's environment (the service's `env`).
    pub env: Vec<(String, String)>,
}

impl PreparedCommand {
    /// A config command, run like the service's own `command`: in `working_dir`, with `env`.
    #[must_use]
    pub fn new(spec: &CommandSpec, working_dir: &Path, env: &[(String, String)]) -> Self {
        let program = match &spec.program {
            Program::Path(p) => p.clone().into_os_string(),
            Program::Search(name) => OsString::from(name),
        };
        Self {
            program,
            args: spec.args.clone(),
            working_dir: Some(working_dir.to_owned()),
            env: env.to_vec(),
        }
    }

    /// The program as the operator wrote it, for messages.
    #[must_use]
    pub fn display(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }
}

/// A command that ran to its end.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) status: ExitStatus,
    /// The last non-empty output line (stderr preferred), trimmed, at most 200 characters.
    pub(crate) last_line: Option<String>,
    pub(crate) took: Duration,
}

/// Why a command did not run to its end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error("cannot run `{program}`: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("timed out after {}", crate::fmt::duration(*.0))]
    TimedOut(Duration),
    #[error("cannot wait for `{program}`: {source}")]
    Wait { program: String, source: io::Error },
}

/// Runs `cmd` with `extra_env` on top of its own, feeding `stdin` (or `/dev/null`), and kills
/// it after `timeout`.
pub(crate) async fn run(
    cmd: &PreparedCommand,
    extra_env: &[(String, String)],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Ran, RunError> {
    let mut c = tokio::process::Command::new(&cmd.program);
    c.args(&cmd.args)
        .envs(cmd.env.iter().chain(extra_env).map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Whatever path leaves this function, the command does not outlive it.
        .kill_on_drop(true);
    if let Some(dir) = &cmd.working_dir {
        c.current_dir(dir);
    }
    #[cfg(unix)]
    c.process_group(0);
    #[cfg(windows)]
    {
        // No console window popping up every interval when tend runs from a desktop session.
        const CREATE_NO_WINDOW: u32 = 0x0800_0000;
        c.creation_flags(CREATE_NO_WINDOW);
    }
    let began = Instant::now();
    let mut child = c.spawn().map_err(|source| RunError::Spawn {
        program: cmd.display(),
        source,
    })?;
    let group = Group::of(&child);
    let input = child.stdin.take();
    let out = child.stdout.take().map(|s| tokio::spawn(read_tail(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(read_tail(s)));
    let waited = tokio::time::timeout(timeout, async {
        if let (Some(mut pipe), Some(data)) = (input, stdin) {
            // A command that does not read its input closes the pipe: not an error.
            let _ = pipe.write_all(&data).await;
            drop(pipe);
        }
        child.wait().await
    })
    .await;
    group.kill();
    let status = match waited {
        Ok(Ok(status)) => status,
        Ok(Err(source)) => {
            return Err(RunError::Wait {
                program: cmd.display(),
                source,
            });
        }
        Err(_) => {
            let _ = child.start_kill();
            // After SIGKILL / TerminateProcess the exit is immediate; reap it so no zombie
            // stays until the next probe, but never wait long for that.
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            return Err(RunError::TimedOut(timeout));
        }
    };
    let took = began.elapsed();
    let err_tail = collect(err).await;
    let out_tail = collect(out).await;
    Ok(Ran {
        status,
        last_line: last_line(&err_tail).or_else(|| last_line(&out_tail)),
        took,
    })
}

/// The command's process group (Unix), killed as a whole.
struct Group(#[cfg(unix)] Option<u32>);

impl Group {
    fn of(child: &tokio::process::Child) -> Self {
        #[cfg(unix)]
        {
            Self(child.id())
        }
        #[cfg(not(unix))]
        {
            let _ = child;
            Self()
        }
    }

    fn kill(&self) {
        #[cfg(unix)]
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // ESRCH (group already empty) is the normal case after a clean exit.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

async fn read_tail(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut keep = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n) = r.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        keep.extend_from_slice(&chunk[..n]);
        if keep.len() > 2 * TAIL {
            keep.drain(..keep.len() - TAIL);
        }
    }
    keep
}

async fn collect(task: Option<tokio::task::JoinHandle<Vec<u8>>>) -> Vec<u8> {
    let Some(mut task) = task else {
        return Vec::new();
    };
    match tokio::time::timeout(DRAIN, &mut task).await {
        Ok(Ok(bytes)) => bytes,
        _ => {
            task.abort();
            Vec::new()
        }
    }
}

fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let mut out: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    Some(out)
}

/// "exited with code 1", "killed by signal 9".
pub(crate) fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(sig) = status.signal() {
            return format!("killed by signal {sig}");
        }
    }
    format!("ended with {status}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines() {
        assert_eq!(last_line(b""), None);
        assert_eq!(last_line(b"\n  \n"), None);
        assert_eq!(last_line(b"one\ntwo\n\n").as_deref(), Some("two"));
        assert_eq!(last_line(b"  spaced  ").as_deref(), Some("spaced"));
        let long = "x".repeat(300);
        assert_eq!(last_line(long.as_bytes()).unwrap().chars().count(), 201);
    }
}
