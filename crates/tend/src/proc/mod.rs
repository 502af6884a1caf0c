//! Starting the program and reaching its whole process tree.
//!
//! Unix: the program leads a new process group, so one `killpg` reaches it and every
//! descendant that did not leave the group. Windows: the program runs in a Job Object with
//! KILL_ON_JOB_CLOSE, so nothing outlives tend. The supervisor only sees [`Tree`].

#[cfg(target_os = "linux")]
mod linux;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::Tree;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{
    Tree, detach_from_console, hide_program_consoles, raise_console_event,
    raise_console_events_in_process,
};

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tend_core::{CommandSpec, Program};

/// Where the program's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// Straight to tend's own stdout/stderr.
    Inherit,
    /// Into pipes that tend reads.
    Capture,
}

/// A started program, to wait for.
pub(crate) enum Child {
    /// Started by std's `Command` (Windows, macOS, a Linux without pidfds).
    Std(tokio::process::Child),
    /// Started by tend's own spawn, watched on a pidfd.
    #[cfg(target_os = "linux")]
    Pidfd(linux::Child),
}

impl Child {
    /// Waits for the exit (and reaps it).
    pub(crate) async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self {
            Self::Std(c) => c.wait().await,
            #[cfg(target_os = "linux")]
            Self::Pidfd(c) => c.wait().await,
        }
    }
}

/// A started program.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) tree: Tree,
    pub(crate) stdout: Option<std::io::PipeReader>,
    pub(crate) stderr: Option<std::io::PipeReader>,
}

/// What to start, fully resolved except for the program lookup.
pub(crate) struct Launch<'a> {
    pub(crate) command: &'a CommandSpec,
    pub(crate) working_dir: &'a Path,
    pub(crate) env: &'a [(String, String)],
    pub(crate) output: Output,
    /// `[diagnostics] dumps`: on Unix the program's soft core size limit is raised to its
    /// hard limit (the program's alone: tend's own stays as it was). On Windows the dump is
    /// Windows Error Reporting's, set up by install.
    pub(crate) core_dumps: bool,
}

/// Finds the program, checking up front what the OS would only report vaguely (a missing
/// working directory and a missing program both come back as "not found" from spawn).
pub(crate) fn resolve(launch: &Launch<'_>) -> Result<PathBuf, String> {
    // `is_dir()` would turn "permission denied" into "not a directory": keep the OS's word.
    match std::fs::metadata(launch.working_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "working_dir `{}` is not a directory",
                launch.working_dir.display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "working_dir `{}`: {e}",
                launch.working_dir.display()
            ));
        }
    }
    match &launch.command.program {
        Program::Path(p) => match std::fs::metadata(p) {
            Ok(m) if m.is_file() => Ok(p.clone()),
            Ok(_) => Err(format!("`{}` is not a file", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("`{}` does not exist", p.display()))
            }
            Err(e) => Err(format!("`{}`: {e}", p.display())),
        },
        Program::Search(name) => {
            let path = launch
                .env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| std::ffi::OsString::from(v))
                .or_else(|| std::env::var_os("PATH"));
            tend_config::find_in_path(name, path.as_deref())
                .ok_or_else(|| format!("`{name}` was not found in PATH"))
        }
    }
}

/// Variables of tend's own environment that the program must not inherit: systemd's
/// notification socket and watchdog are addressed to tend (the unit's main process), and a
/// program that answered on them would speak for tend. The config's `env` can still set
/// them explicitly.
const NOT_INHERITED: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// The common part of building the command.
fn command(
    launch: &Launch<'_>,
    program: &Path,
) -> std::io::Result<(tokio::process::Command, Pipes)> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&launch.command.args)
        .current_dir(launch.working_dir);
    for var in NOT_INHERITED {
        cmd.env_remove(var);
    }
    cmd.envs(launch.env.iter().map(|(k, v)| (k, v)))
        // A service has no input; a terminal's input must not be shared with it either.
        .stdin(Stdio::null())
        .kill_on_drop(false);
    let (pipes, ends) = pipes(launch.output)?;
    if let Some((out_w, err_w)) = ends {
        cmd.stdout(out_w).stderr(err_w);
    }
    Ok((cmd, pipes))
}

/// The program's output pipes for `output`: the read ends tend keeps, and the write ends
/// the program gets (none: it inherits tend's stdout and stderr). std pipes rather than
/// tokio's: the readers are plain blocking threads that outlive the child (a grandchild
/// may hold the write end), and these fds are close-on-exec so other programs never
/// inherit them.
fn pipes(
    output: Output,
) -> std::io::Result<(Pipes, Option<(std::io::PipeWriter, std::io::PipeWriter)>)> {
    if output == Output::Inherit {
        return Ok((Pipes::default(), None));
    }
    let (out_r, out_w) = std::io::pipe()?;
    let (err_r, err_w) = std::io::pipe()?;
    let read = Pipes {
        stdout: Some(out_r),
        stderr: Some(err_r),
    };
    Ok((read, Some((out_w, err_w))))
}

#[derive(Default)]
struct Pipes {
    stdout: Option<std::io::PipeReader>,
    stderr: Option<std::io::PipeReader>,
}

/// Describes a spawn error in the operator's terms.
fn spawn_error(program: &Path, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            format!(
                "`{}` is not executable (permission denied)",
                program.display()
            )
        }
        std::io::ErrorKind::NotFound => format!(
            "`{}` could not be executed (missing file or interpreter)",
            program.display()
        ),
        _ => format!("cannot execute `{}`: {e}", program.display()),
    }
}

/// Starts the program as the leader of its own tree.
pub(crate) fn spawn(launch: &Launch<'_>) -> Result<Spawned, String> {
    #[cfg(target_os = "linux")]
    if linux::available() {
        // A program named by its path is started without looking first: the exec says
        // whether it can be, and only then does `resolve` look, to say why not in the
        // operator's terms (two `stat`s fewer on every restart).
        if let Program::Path(program) = &launch.command.program {
            return spawn_linux(launch, program).map_err(|e| match resolve(launch) {
                Err(why) => why,
                Ok(_) => e,
            });
        }
        let program = resolve(launch)?;
        return spawn_linux(launch, &program);
    }
    let program = resolve(launch)?;
    let (mut cmd, pipes) =
        command(launch, &program).map_err(|e| format!("cannot create pipes: {e}"))?;
    #[cfg(unix)]
    let spawned = platform_spawn(&mut cmd, launch.core_dumps);
    // Windows Error Reporting writes the dump, as install set it up: nothing to do here.
    #[cfg(windows)]
    let spawned = {
        let _ = launch.core_dumps;
        platform_spawn(&mut cmd)
    };
    let (child, tree) = spawned.map_err(|e| spawn_error(&program, &e))?;
    // The command still holds the pipes' write ends; drop them now so the readers see EOF
    // when the program's tree is gone.
    drop(cmd);
    let pid = child.id().unwrap_or_default();
    Ok(Spawned {
        child: Child::Std(child),
        pid,
        tree,
        stdout: pipes.stdout,
        stderr: pipes.stderr,
    })
}

/// [`spawn`] by tend's own vfork-style spawn: the same program, arguments, directory,
/// environment and output as the `Command` of [`command`], in a fraction of the time.
#[cfg(target_os = "linux")]
fn spawn_linux(launch: &Launch<'_>, program: &Path) -> Result<Spawned, String> {
    let (pipes, ends) = pipes(launch.output).map_err(|e| format!("cannot create pipes: {e}"))?;
    let (stdout, stderr) = ends.map_or((None, None), |(o, e)| (Some(o.into()), Some(e.into())));
    let plan = linux::Plan {
        program,
        args: &launch.command.args,
        working_dir: launch.working_dir,
        env: launch.env,
        not_inherited: &NOT_INHERITED,
        stdout,
        stderr,
        core_dumps: launch.core_dumps,
    };
    let (child, tree) = linux::spawn(plan).map_err(|e| spawn_error(program, &e))?;
    Ok(Spawned {
        pid: child.id(),
        child: Child::Pidfd(child),
        tree,
        stdout: pipes.stdout,
        stderr: pipes.stderr,
    })
}

#[cfg(unix)]
use unix::spawn as platform_spawn;
#[cfg(windows)]
use windows::spawn as platform_spawn;

/// Whether the supervisor that wrote a status snapshot (its pid, its `updated_at`) still
/// runs. On Windows, where a pid is reused at once, the process must also be a tend that
/// was started before the snapshot was written.
pub(crate) fn supervisor_alive(pid: u32, updated_at: &str) -> bool {
    #[cfg(windows)]
    {
        windows::is_supervisor(pid, updated_at)
    }
    #[cfg(not(windows))]
    {
        let _ = updated_at;
        pid_alive(pid)
    }
}

/// Whether a process with this pid exists (and, on Unix, is not a zombie).
pub(crate) fn pid_alive(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        // A zombie has exited; only its entry waits to be reaped.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X"),
            Err(_) => false,
        }
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
    }
    #[cfg(windows)]
    {
        windows::pid_alive(pid)
    }
}
