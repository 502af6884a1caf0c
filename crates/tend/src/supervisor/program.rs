//! The supervisor's view of the program: start a run, learn when its main process exits,
//! stop or kill its tree. [`OsSpawner`] does it with real processes (`proc`); the unit
//! tests of the runtime drive the supervisor through a fake and a paused clock, so every
//! decision it carries out (crash, backoff, second stop kills, reload restart) is checked
//! without a process.

use std::future::Future;
use std::io;
use std::pin::Pin;

use tend_core::{Exit, StopSpec};

use crate::proc::{self, Launch, Tree};

/// How the program's main process ended: resolves once, when it exits.
pub(crate) type ExitFuture = Pin<Box<dyn Future<Output = Ended>>>;

/// How a run's main process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ended {
    pub(crate) exit: Exit,
    /// A signal ended it and the kernel wrote a core dump (Unix).
    pub(crate) core_dumped: bool,
}

/// Starts runs of the program.
pub(crate) trait Spawner {
    /// Starts one run; the error says why it could not start, in the operator's terms.
    fn spawn(&mut self, launch: &Launch<'_>) -> Result<Run, String>;
}

/// One started run.
pub(crate) struct Run {
    pub(crate) pid: u32,
    pub(crate) exit: ExitFuture,
    /// The run's whole tree; it outlives the main process (leftovers are killed after its
    /// exit).
    pub(crate) tree: Box<dyn ProcessTree>,
    /// Its stdout and stderr, when they are captured.
    pub(crate) output: Option<(std::io::PipeReader, std::io::PipeReader)>,
}

/// A run's whole process tree.
pub(crate) trait ProcessTree {
    /// The graceful step: `stop.signal` to the tree (Unix), Ctrl+C or Ctrl+Break to its
    /// console (Windows).
    fn signal_stop(&self, stop: &StopSpec) -> io::Result<()>;
    /// Kills everything in the tree.
    fn kill(&self) -> io::Result<()>;
    /// The OS tree, for resource sampling; a fake has none.
    fn os(&self) -> Option<&Tree> {
        None
    }
}

impl ProcessTree for Tree {
    fn signal_stop(&self, stop: &StopSpec) -> io::Result<()> {
        Tree::signal_stop(self, stop)
    }

    fn kill(&self) -> io::Result<()> {
        Tree::kill(self)
    }

    fn os(&self) -> Option<&Tree> {
        Some(self)
    }
}

/// Real processes.
pub(crate) struct OsSpawner;

impl Spawner for OsSpawner {
    fn spawn(&mut self, launch: &Launch<'_>) -> Result<Run, String> {
        let s = proc::spawn(launch)?;
        let mut child = s.child;
        Ok(Run {
            pid: s.pid,
            exit: Box::pin(async move {
                let status = child.wait().await;
                Ended {
                    core_dumped: core_dumped(&status),
                    exit: super::exit_of(status),
                }
            }),
            tree: Box::new(s.tree),
            output: s.stdout.zip(s.stderr),
        })
    }
}

#[cfg(unix)]
fn core_dumped(status: &io::Result<std::process::ExitStatus>) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.as_ref().is_ok_and(ExitStatusExt::core_dumped)
}

#[cfg(not(unix))]
fn core_dumped(_: &io::Result<std::process::ExitStatus>) -> bool {
    false
}
