//! Unix: process groups and signals.

use std::io;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tend_core::StopSignal;

/// The program's process group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tree {
    pgid: Pid,
}

fn signal_of(s: StopSignal) -> Signal {
    match s {
        StopSignal::Int => Signal::SIGINT,
        StopSignal::Term => Signal::SIGTERM,
        StopSignal::Hup => Signal::SIGHUP,
        StopSignal::Quit => Signal::SIGQUIT,
        StopSignal::Usr1 => Signal::SIGUSR1,
        StopSignal::Usr2 => Signal::SIGUSR2,
    }
}

impl Tree {
    /// The group led by `pid`.
    #[cfg(target_os = "linux")]
    pub(super) fn of(pid: nix::libc::pid_t) -> Self {
        Self {
            pgid: Pid::from_raw(pid),
        }
    }

    /// Sends the graceful stop signal to the whole group.
    pub(crate) fn signal_stop(&self, stop: &tend_core::StopSpec) -> io::Result<()> {
        send(self.pgid, signal_of(stop.signal))
    }

    /// SIGKILL to the whole group. A group that is already gone is fine.
    pub(crate) fn kill(&self) -> io::Result<()> {
        send(self.pgid, Signal::SIGKILL)
    }
}

fn send(pgid: Pid, sig: Signal) -> io::Result<()> {
    match killpg(pgid, sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

pub(super) fn spawn(
    cmd: &mut tokio::process::Command,
    core_dumps: bool,
) -> io::Result<(tokio::process::Child, Tree)> {
    let parent = nix::unistd::getpid();
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, getrlimit, setrlimit, _exit); it
    // allocates nothing and touches no locks.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            // If tend dies, even by SIGKILL, the kernel kills the program. The signal is tied
            // to the *thread* that forked, which is why tend spawns only from its
            // single-threaded runtime's main thread.
            #[cfg(target_os = "linux")]
            {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
                // tend may have died between fork and prctl: then nobody would ever kill us.
                if nix::unistd::getppid() != parent {
                    nix::libc::_exit(1);
                }
            }
            #[cfg(not(target_os = "linux"))]
            let _ = parent;
            if core_dumps {
                // Up to the hard limit, which an unprivileged process may do: systemd's
                // default is 0 soft, unlimited hard; the unit says LimitCORE=infinity.
                use nix::sys::resource::{Resource, getrlimit, setrlimit};
                let (_, hard) = getrlimit(Resource::RLIMIT_CORE).map_err(io::Error::from)?;
                setrlimit(Resource::RLIMIT_CORE, hard, hard).map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = child.id().unwrap_or_default();
    let pgid = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
    Ok((child, Tree { pgid }))
}
