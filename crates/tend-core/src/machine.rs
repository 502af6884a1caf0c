//! The supervision state machine.
//!
//! `Machine::step(event, now)` is the only way state changes. It never reads a clock and
//! never touches a process: the runtime passes `now`, carries out the returned [`Action`]s
//! in order, and feeds what happened back as new [`Event`]s. There is at most one timer at
//! a time (the backoff deadline or the stop deadline); a stale [`Event::Timer`] is
//! harmless because each phase re-checks its own deadline against `now`.
//!
//! Phases: `Idle -> Starting -> Running -> (Backoff -> Starting)* -> Stopping -> Stopped`,
//! with `Failed` when tend gives up or the policy says a failed exit is final.
//!
//! An [`Event::Unhealthy`] (a health check, the hang watchdog or a resource limit said so)
//! stops a running program gracefully, and its exit then counts as a *failed run*: it goes
//! through the same restart decision as a crash (policy, backoff, restart limit), so a
//! program that is unhealthy after every start is throttled and given up on, not restarted
//! forever.

use std::time::{Duration, Instant};

use crate::backoff::{Ledger, limit_enabled};
use crate::{RestartPolicy, RestartSpec, StopSpec};

/// How a run of the program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this Unix signal.
    Signal(i32),
    /// It could not be started at all.
    SpawnFailed(String),
}

impl Exit {
    /// Whether the exit counts as success under `success_exit_codes`.
    #[must_use]
    pub fn is_success(&self, spec: &RestartSpec) -> bool {
        matches!(self, Self::Code(c) if spec.success_exit_codes.contains(c))
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(c) => write!(f, "code {c}"),
            Self::Signal(s) => write!(f, "signal {s}"),
            Self::SpawnFailed(e) => write!(f, "failed to start: {e}"),
        }
    }
}

/// Something that happened, as seen by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The operator wants the program up (first start, `tend start`).
    Start,
    /// The operator wants the program down (SIGTERM/Ctrl+C to tend, SCM Stop). A second
    /// `Stop` while a graceful stop is pending kills the tree at once.
    Stop,
    /// The operator wants a fresh run (graceful stop, then start without backoff).
    Restart,
    /// The program was started.
    Spawned {
        /// Its process id.
        pid: u32,
    },
    /// The program could not be started (missing file, not executable, bad working_dir).
    SpawnFailed {
        /// What went wrong, readable.
        error: String,
    },
    /// The program's main process ended.
    Exited {
        /// How.
        exit: Exit,
    },
    /// The timer armed by [`Action::SetTimer`] fired.
    Timer,
    /// The program is in trouble and must be restarted (a failed health check, the silence
    /// watchdog, a resource limit). Acted on only while it runs: it is stopped gracefully
    /// and the run counts as failed once it exits.
    Unhealthy {
        /// Why, readable.
        reason: String,
    },
}

/// What the runtime must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start the program; answer with `Spawned` or `SpawnFailed` before any other event.
    Spawn,
    /// Ask the whole process tree to stop (the configured signal / console event).
    SignalStop,
    /// Kill the whole process tree. Also sent after the main process exited on its own, to
    /// clear leftovers so nothing outlives the run it belonged to.
    KillTree,
    /// Arm the single timer for this instant, replacing any armed one.
    SetTimer(Instant),
    /// Disarm the timer.
    ClearTimer,
    /// Tell the operator (stderr, supervisor log, Event Log, status).
    Notify(Notice),
    /// Run the `on_give_up` hook once.
    RunGiveUpHook(GiveUp),
}

/// Facts for the give-up hook and notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiveUp {
    /// Restarts within the window when tend gave up.
    pub restarts: u32,
    /// The window.
    pub window: Duration,
    /// The exit that was one too many.
    pub last_exit: Exit,
    /// Why that run failed when it was stopped for being unhealthy (its exit alone would
    /// look like a requested stop).
    pub unhealthy: Option<String>,
}

/// A readable event for the operator. The runtime formats it.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The program runs with this pid.
    Started {
        /// pid
        pid: u32,
    },
    /// The program could not be started.
    SpawnFailed {
        /// error
        error: String,
    },
    /// The main process ended after running for `uptime`.
    Exited {
        /// pid
        pid: u32,
        /// how
        exit: Exit,
        /// how long it ran
        uptime: Duration,
        /// why the run ended: asked for, stopped for being unhealthy, or on its own
        cause: ExitCause,
    },
    /// A restart is scheduled.
    Restarting {
        /// after this delay
        delay: Duration,
        /// restarts in the current window, this one included
        in_window: u32,
        /// the limit (0 = none)
        limit: u32,
    },
    /// The policy does not restart after this exit. (After an unhealthy run, the reason
    /// is in the machine's [`FailReason::Unhealthy`].)
    NotRestarting {
        /// the exit
        exit: Exit,
        /// the policy that decided
        policy: RestartPolicy,
    },
    /// Too many restarts: tend gave up.
    GaveUp(GiveUp),
    /// A graceful stop began.
    Stopping {
        /// pid
        pid: u32,
        /// how long the program gets
        timeout: Duration,
    },
    /// The graceful stop timed out, or a second stop was requested: the tree is killed.
    Killing {
        /// pid
        pid: u32,
        /// time since the stop began
        after: Duration,
    },
    /// Stopped on request.
    Stopped,
}

/// Why a run ended, as the machine knows it (the exit code alone does not say: a
/// requested stop and a crash may both exit with 0 or 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// It exited (or was killed by something else) while running: a crash, or a clean exit
    /// the program chose.
    OnItsOwn,
    /// tend stopped it because it was unhealthy (`health`, `limits`).
    Unhealthy,
    /// tend stopped it because someone asked: the operator, the OS, a reload, a restart.
    Requested,
}

/// Why the machine ended in `Failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailReason {
    /// The restart limit was reached.
    GaveUp(GiveUp),
    /// The program failed and the policy does not restart it.
    Exited(Exit),
    /// The program was stopped for being unhealthy and the policy does not restart it.
    Unhealthy {
        /// Why it was stopped.
        reason: String,
        /// How it then exited.
        exit: Exit,
    },
}

/// What happens when a stop completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterStop {
    /// Stay stopped.
    Halt,
    /// Start again at once (operator restart, config change).
    Restart,
    /// The program was stopped for being unhealthy: its exit is a failed run, decided like
    /// a crash (policy, backoff, restart limit).
    Fail(String),
}

/// Where the machine is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Never started.
    Idle,
    /// A spawn was requested; waiting for `Spawned`/`SpawnFailed`.
    Starting,
    /// The program runs.
    Running {
        /// pid
        pid: u32,
        /// since when
        since: Instant,
    },
    /// Waiting to restart.
    Backoff {
        /// when the next start is due
        until: Instant,
    },
    /// A stop is in progress.
    Stopping {
        /// pid
        pid: u32,
        /// when the run began (for uptime)
        since: Instant,
        /// when the stop began
        began: Instant,
        /// when the tree gets killed
        deadline: Instant,
        /// whether the kill was sent
        killed: bool,
        /// what then
        then: AfterStop,
    },
    /// Down, on request or after a clean exit the policy does not restart.
    Stopped,
    /// Down for good: gave up, or a failed exit under a policy that does not restart.
    Failed(FailReason),
}

impl Phase {
    /// Short lowercase name for status output.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Starting => "starting",
            Self::Running { .. } => "running",
            Self::Backoff { .. } => "backoff",
            Self::Stopping { .. } => "stopping",
            Self::Stopped => "stopped",
            Self::Failed(_) => "failed",
        }
    }
}

/// The last run's end, kept for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastExit {
    /// How it ended.
    pub exit: Exit,
    /// When.
    pub at: Instant,
    /// After how long.
    pub uptime: Duration,
}

/// The supervision state machine for one service.
#[derive(Debug, Clone)]
pub struct Machine {
    restart: RestartSpec,
    stop: StopSpec,
    phase: Phase,
    ledger: Ledger,
    last_exit: Option<LastExit>,
}

impl Machine {
    /// A machine in `Idle`.
    #[must_use]
    pub fn new(restart: RestartSpec, stop: StopSpec) -> Self {
        Self {
            restart,
            stop,
            phase: Phase::Idle,
            ledger: Ledger::default(),
            last_exit: None,
        }
    }

    /// The current phase.
    #[must_use]
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Whether nothing more will happen without an operator event.
    #[must_use]
    pub fn is_settled(&self) -> bool {
        matches!(self.phase, Phase::Stopped | Phase::Failed(_))
    }

    /// Restarts over the machine's life.
    #[must_use]
    pub fn restarts_total(&self) -> u64 {
        self.ledger.total
    }

    /// Restarts counted against the limit at `now`.
    #[must_use]
    pub fn restarts_in_window(&self, now: Instant) -> u32 {
        if limit_enabled(&self.restart) {
            self.ledger.in_window(&self.restart, now)
        } else {
            self.ledger.consecutive
        }
    }

    /// How the last run ended.
    #[must_use]
    pub fn last_exit(&self) -> Option<&LastExit> {
        self.last_exit.as_ref()
    }

    /// Applies live-changeable settings (reload). Takes effect from the next decision.
    pub fn update_policy(&mut self, restart: RestartSpec, stop: StopSpec) {
        self.restart = restart;
        self.stop = stop;
    }

    /// Feeds one event at `now` and returns what to do.
    pub fn step(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.on_start(&mut out),
            Event::Stop => self.on_stop(now, &mut out),
            Event::Restart => self.on_restart(now, &mut out),
            Event::Spawned { pid } => self.on_spawned(pid, now, &mut out),
            Event::SpawnFailed { error } => {
                if self.phase == Phase::Starting {
                    out.push(Action::Notify(Notice::SpawnFailed {
                        error: error.clone(),
                    }));
                    self.decide(
                        Exit::SpawnFailed(error),
                        None,
                        Duration::ZERO,
                        now,
                        &mut out,
                    );
                }
            }
            Event::Exited { exit } => self.on_exited(exit, now, &mut out),
            Event::Timer => self.on_timer(now, &mut out),
            Event::Unhealthy { reason } => {
                // Only a running program can be unhealthy. During a stop the program is on
                // its way down already (an operator's stop or restart wins), and a verdict
                // arriving in any other phase is about a run that is over.
                if let Phase::Running { pid, since } = self.phase {
                    self.begin_stop(pid, since, AfterStop::Fail(reason), now, &mut out);
                }
            }
        }
        out
    }

    fn spawn(&mut self, out: &mut Vec<Action>) {
        self.phase = Phase::Starting;
        out.push(Action::Spawn);
    }

    fn on_start(&mut self, out: &mut Vec<Action>) {
        match &mut self.phase {
            Phase::Idle | Phase::Stopped | Phase::Failed(_) => {
                // An operator's start is a fresh chance: forget earlier failures.
                self.ledger.reset();
                self.spawn(out);
            }
            Phase::Stopping { then, .. } => *then = AfterStop::Restart,
            Phase::Backoff { .. } => {
                out.push(Action::ClearTimer);
                self.spawn(out);
            }
            Phase::Starting | Phase::Running { .. } => {}
        }
    }

    fn on_restart(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Running { pid, since } => {
                self.begin_stop(pid, since, AfterStop::Restart, now, out)
            }
            _ => self.on_start(out),
        }
    }

    fn on_stop(&mut self, now: Instant, out: &mut Vec<Action>) {
        match &mut self.phase {
            Phase::Idle | Phase::Starting => self.phase = Phase::Stopped,
            Phase::Running { pid, since } => {
                let (pid, since) = (*pid, *since);
                self.begin_stop(pid, since, AfterStop::Halt, now, out);
            }
            Phase::Backoff { .. } => {
                out.push(Action::ClearTimer);
                out.push(Action::Notify(Notice::Stopped));
                self.phase = Phase::Stopped;
            }
            Phase::Stopping {
                pid,
                began,
                killed,
                then,
                ..
            } => {
                if *then != AfterStop::Halt {
                    // A restart in progress (operator's, or after an unhealthy verdict)
                    // becomes a plain stop: the operator wants the program down.
                    *then = AfterStop::Halt;
                } else if !*killed {
                    // A second stop request means "now": do not make the operator wait.
                    *killed = true;
                    let after = now.saturating_duration_since(*began);
                    out.push(Action::Notify(Notice::Killing { pid: *pid, after }));
                    out.push(Action::ClearTimer);
                    out.push(Action::KillTree);
                }
            }
            Phase::Stopped | Phase::Failed(_) => {}
        }
    }

    fn begin_stop(
        &mut self,
        pid: u32,
        since: Instant,
        then: AfterStop,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let deadline = now + self.stop.timeout;
        self.phase = Phase::Stopping {
            pid,
            since,
            began: now,
            deadline,
            killed: false,
            then,
        };
        out.push(Action::Notify(Notice::Stopping {
            pid,
            timeout: self.stop.timeout,
        }));
        out.push(Action::SignalStop);
        out.push(Action::SetTimer(deadline));
    }

    fn on_spawned(&mut self, pid: u32, now: Instant, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Starting => {
                self.phase = Phase::Running { pid, since: now };
                out.push(Action::Notify(Notice::Started { pid }));
            }
            // A stop won the race with the spawn: stop what was just started.
            Phase::Stopped => {
                self.begin_stop(pid, now, AfterStop::Halt, now, out);
            }
            _ => {}
        }
    }

    fn on_exited(&mut self, exit: Exit, now: Instant, out: &mut Vec<Action>) {
        match self.phase.clone() {
            Phase::Running { pid, since } => {
                let uptime = now.saturating_duration_since(since);
                out.push(Action::Notify(Notice::Exited {
                    pid,
                    exit: exit.clone(),
                    uptime,
                    cause: ExitCause::OnItsOwn,
                }));
                out.push(Action::KillTree);
                self.decide(exit, None, uptime, now, out);
            }
            Phase::Stopping {
                pid, since, then, ..
            } => {
                let uptime = now.saturating_duration_since(since);
                out.push(Action::Notify(Notice::Exited {
                    pid,
                    exit: exit.clone(),
                    uptime,
                    cause: match then {
                        AfterStop::Fail(_) => ExitCause::Unhealthy,
                        AfterStop::Halt | AfterStop::Restart => ExitCause::Requested,
                    },
                }));
                out.push(Action::ClearTimer);
                out.push(Action::KillTree);
                match then {
                    AfterStop::Halt => {
                        self.record_exit(exit, uptime, now);
                        self.phase = Phase::Stopped;
                        out.push(Action::Notify(Notice::Stopped));
                    }
                    AfterStop::Restart => {
                        self.record_exit(exit, uptime, now);
                        self.spawn(out);
                    }
                    AfterStop::Fail(reason) => {
                        self.decide(exit, Some(reason), uptime, now, out);
                    }
                }
            }
            _ => {}
        }
    }

    fn record_exit(&mut self, exit: Exit, uptime: Duration, now: Instant) {
        self.last_exit = Some(LastExit {
            exit,
            at: now,
            uptime,
        });
    }

    /// The restart decision after a run ended on its own, could not start, or was stopped
    /// for being `unhealthy` (then it failed, whatever its exit code says).
    fn decide(
        &mut self,
        exit: Exit,
        unhealthy: Option<String>,
        uptime: Duration,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.record_exit(exit.clone(), uptime, now);
        if uptime >= self.restart.reset_after {
            self.ledger.reset();
        }
        let success = unhealthy.is_none() && exit.is_success(&self.restart);
        let restart = match self.restart.policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Never => false,
        };
        if !restart {
            out.push(Action::Notify(Notice::NotRestarting {
                exit: exit.clone(),
                policy: self.restart.policy,
            }));
            self.phase = match unhealthy {
                _ if success => Phase::Stopped,
                Some(reason) => Phase::Failed(FailReason::Unhealthy { reason, exit }),
                None => Phase::Failed(FailReason::Exited(exit)),
            };
            return;
        }
        self.ledger.prune(&self.restart, now);
        if self.ledger.exhausted(&self.restart, now) {
            let gave_up = GiveUp {
                restarts: self.ledger.in_window(&self.restart, now),
                window: self.restart.limit_window,
                last_exit: exit,
                unhealthy,
            };
            out.push(Action::Notify(Notice::GaveUp(gave_up.clone())));
            out.push(Action::RunGiveUpHook(gave_up.clone()));
            self.phase = Phase::Failed(FailReason::GaveUp(gave_up));
            return;
        }
        let delay = self.ledger.record(&self.restart, now);
        out.push(Action::Notify(Notice::Restarting {
            delay,
            in_window: self.restarts_in_window(now),
            limit: if limit_enabled(&self.restart) {
                self.restart.limit
            } else {
                0
            },
        }));
        if delay.is_zero() {
            self.spawn(out);
        } else {
            let until = now + delay;
            self.phase = Phase::Backoff { until };
            out.push(Action::SetTimer(until));
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        match &mut self.phase {
            Phase::Backoff { until } if now >= *until => self.spawn(out),
            Phase::Stopping {
                pid,
                began,
                deadline,
                killed,
                ..
            } if !*killed && now >= *deadline => {
                *killed = true;
                out.push(Action::Notify(Notice::Killing {
                    pid: *pid,
                    after: now.saturating_duration_since(*began),
                }));
                out.push(Action::KillTree);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
