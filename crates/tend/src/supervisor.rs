//! The runtime around [`tend_core::Machine`]: it owns the child, the timer and the hooks,
//! turns what happens into events, and carries out the machine's actions. No restart, stop
//! or backoff decision is made here; the health and limit decisions are tend-health's, run
//! by [`watch`], and reach the machine as [`Event::Unhealthy`].

mod last_words;
mod program;
#[cfg(test)]
mod tests;
mod watch;

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tend_core::last_lines::{self, Bound};
use tend_core::{
    Action, Event, Exit, ExitCause, FailReason, GiveUp, Machine, Notice, Phase, ServiceSpec,
};
use tend_health::metrics::ServiceMetrics;
use tend_health::{Alert, AlertKind, OutputClock};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::events::{self, Bus, Failure, Hook, Record, Reload};
use crate::proc::{self, Launch, Output};
use crate::report::describe_exit;
use crate::status::{self, Snapshot};
use crate::status_file::StatusFile;

#[cfg(unix)]
pub(crate) use last_words::Drained;
use last_words::LastWords;
pub(crate) use last_words::{Pipe, RunTail};
use program::{ExitFuture, OsSpawner, ProcessTree, Spawner};
use watch::Watch;
pub(crate) use watch::{LogMetrics, UpgradeMetrics};

/// The runtime's clock: tokio's, so that tests with a paused clock move everything the
/// supervisor decides by (in production it is the same monotonic clock as `Instant::now`).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// What the operator (signals, SCM, control socket) asks of a running supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Graceful stop; a second one kills the tree at once.
    Stop,
    /// Re-read the config: apply what can be applied live, restart the program gracefully
    /// for what cannot, and keep everything as it is if the new config is invalid.
    Reload,
}

/// Reads the config again for a reload: the validated spec, or every problem as one message.
pub(crate) type Loader = Box<dyn Fn() -> Result<ServiceSpec, String>>;

/// How supervision ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Stopped on request, or a clean exit the policy does not restart.
    Stopped,
    /// Gave up, or a failed exit under a policy that does not restart.
    Failed,
}

/// Receives the program's output pipes after each spawn (the log pipeline).
pub(crate) trait Capture {
    /// Takes the pipes of the run with main process `pid`; returns the end of its output as
    /// it is read.
    fn attach(
        &self,
        pid: u32,
        stdout: std::io::PipeReader,
        stderr: std::io::PipeReader,
    ) -> Option<Arc<RunTail>>;
    /// Applies new `[logs]` settings live and returns the files now in use (a new `dir`
    /// moves them); on error nothing changed.
    fn reconfigure(&self, spec: &tend_core::LogSpec) -> Result<Vec<std::path::PathBuf>, String>;
}

/// How long an exit waits for the end of the program's output so the exit line can say the
/// program's last words: until the tail is whole (Unix: the pipes are empty and nothing
/// read is still on its way, `Drained`; elsewhere: the readers reached end of file). That
/// is normally microseconds; a process that escaped the tree and still holds a pipe costs
/// at most this, once per exit.
const LAST_WORDS_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

pub(crate) struct Supervisor {
    spec: Arc<ServiceSpec>,
    machine: Machine,
    /// Where everything the supervisor has to say goes: lines, alerts, status, metrics.
    events: Bus,
    capture: Option<Box<dyn Capture>>,
    spawner: Box<dyn Spawner>,
    /// The current run's main process, until it exits.
    child: Option<ExitFuture>,
    /// Outlives the child: leftovers of a run are killed after its main process exited.
    tree: Option<Box<dyn ProcessTree>>,
    timer: Option<Instant>,
    hooks: JoinSet<()>,
    /// The status file, if there is one: snapshots are built only then.
    status: Option<Arc<StatusFile>>,
    /// The active log files, for status.
    log_files: Vec<std::path::PathBuf>,
    /// Reads the config again on reload.
    loader: Option<Loader>,
    /// Bumped by each applied reload.
    generation: u64,
    /// Why the last reload was rejected, until one succeeds.
    last_reload_error: Option<String>,
    /// Health checks, limits, alerts, metrics.
    watch: Watch,
    /// The end of the current run's output.
    tail: Option<Arc<RunTail>>,
    /// What the last run said, once it exited: its last words.
    last_words: LastWords,
    /// Whether the last run's death by signal left a core dump.
    core_dumped: bool,
    /// Why the current run is being stopped for being unhealthy, until its exit.
    unhealthy: Option<String>,
    /// Crash records, when there is a state dir to keep them in.
    crashes: Option<crate::crashes::Journal>,
    /// Exits nobody asked for, by decoded reason, for `tend_crashes_total`.
    crash_counts: std::collections::BTreeMap<String, u64>,
}

impl Supervisor {
    pub(crate) fn new(
        spec: Arc<ServiceSpec>,
        events: Bus,
        capture: Option<Box<dyn Capture>>,
    ) -> Self {
        let machine = Machine::new(spec.restart.clone(), spec.stop.clone());
        let watch = Watch::new(&spec, events.clone());
        Self {
            spec,
            machine,
            watch,
            events,
            capture,
            spawner: Box::new(OsSpawner),
            child: None,
            tree: None,
            timer: None,
            hooks: JoinSet::new(),
            status: None,
            log_files: Vec::new(),
            loader: None,
            generation: 1,
            last_reload_error: None,
            tail: None,
            last_words: LastWords::default(),
            core_dumped: false,
            unhealthy: None,
            crashes: None,
            crash_counts: std::collections::BTreeMap::new(),
        }
    }

    /// Keeps a status snapshot at `file`, rewritten after every change.
    pub(crate) fn with_status(
        mut self,
        file: std::path::PathBuf,
        log_files: Vec<std::path::PathBuf>,
    ) -> Self {
        let dir = file.parent().map(std::path::Path::to_path_buf);
        self.status = Some(StatusFile::start(file, &self.events));
        if let Some(dir) = dir {
            let (events, path) = (
                self.events.clone(),
                crate::crashes::path(&dir, self.spec.name.as_str()),
            );
            let said = path.clone();
            self.crashes = Some(crate::crashes::Journal::open(path, move |e| {
                events.emit(events::Event::NotWritten {
                    file: Record::Crashes,
                    path: said.clone(),
                    error: Some(e),
                });
            }));
        }
        self.log_files = log_files;
        self
    }

    /// The clock the log capture stamps on output (the silence watchdog reads it), and the
    /// log counters for metrics.
    pub(crate) fn with_output(mut self, clock: Arc<OutputClock>, logs: LogMetrics) -> Self {
        self.watch.set_output_clock(clock);
        self.watch.set_log_metrics(logs);
        self
    }

    /// The counts of `tend upgrade`s by result, for metrics.
    pub(crate) fn with_upgrades(mut self, upgrades: UpgradeMetrics) -> Self {
        self.watch.set_upgrade_metrics(upgrades);
        self
    }

    /// Starts the program with `spawner` instead of real processes (tests).
    #[cfg(test)]
    pub(crate) fn with_spawner(mut self, spawner: Box<dyn Spawner>) -> Self {
        self.spawner = spawner;
        self
    }

    /// Enables reload: `loader` reads and validates the config again.
    pub(crate) fn with_loader(mut self, loader: Loader) -> Self {
        self.loader = Some(loader);
        self
    }

    /// Starts the program and supervises it until the machine settles (stopped on request,
    /// completed, or gave up), then waits for hooks still running.
    pub(crate) async fn run(mut self, mut controls: mpsc::UnboundedReceiver<Control>) -> Outcome {
        self.watch.start(&self.spec);
        self.feed(Event::Start);
        let mut controls_open = true;
        while !self.machine.is_settled() {
            let timer = self.timer.map(tokio::time::Instant::from_std);
            // The watch's timers: each is armed only when its section is configured and the
            // program runs, so without them the loop sleeps until something happens. Not
            // while it is being stopped either: a verdict is in, or the operator decided.
            let running = matches!(self.machine.phase(), Phase::Running { .. });
            let when =
                |at: Option<Instant>| at.filter(|_| running).map(tokio::time::Instant::from_std);
            let probe_at = when(self.watch.next_probe_at());
            let check_at = when(self.watch.next_check_at());
            let sample_at = when(self.watch.next_sample_at());
            let refresh_at = self
                .watch
                .next_refresh_at()
                .map(tokio::time::Instant::from_std);
            let event = tokio::select! {
                ctl = controls.recv(), if controls_open => match ctl {
                    Some(Control::Stop) => Event::Stop,
                    Some(Control::Reload) => {
                        self.reload();
                        continue;
                    }
                    None => {
                        controls_open = false;
                        continue;
                    }
                },
                ended = wait(&mut self.child) => {
                    self.child = None;
                    self.last_words = match self.tail.take() {
                        Some(tail) => {
                            tail.settle(LAST_WORDS_WAIT).await;
                            tail.words()
                        }
                        None => LastWords::default(),
                    };
                    self.core_dumped = ended.core_dumped;
                    Event::Exited { exit: ended.exit }
                },
                () = sleep_until(timer), if timer.is_some() => {
                    self.timer = None;
                    Event::Timer
                },
                () = sleep_until(probe_at), if probe_at.is_some() => {
                    self.watch.begin_probe();
                    continue;
                },
                Some(done) = self.watch.probe_rx.recv() => {
                    // A result that arrives while the program is being stopped judges a
                    // run that is ending anyway.
                    if matches!(self.machine.phase(), Phase::Running { .. }) {
                        let restart = self.watch.probe_finished(done, now());
                        self.after_watch(restart);
                    }
                    continue;
                },
                () = sleep_until(check_at), if check_at.is_some() => {
                    let restart = self.watch.check(now());
                    self.after_watch(restart);
                    continue;
                },
                () = sleep_until(sample_at), if sample_at.is_some() => {
                    let tree = self.tree.as_ref().and_then(|t| t.os());
                    let restart = self.watch.sample(tree, now());
                    self.after_watch(restart);
                    continue;
                },
                () = sleep_until(refresh_at), if refresh_at.is_some() => {
                    self.emit_state();
                    continue;
                },
            };
            self.feed(event);
        }
        // The give-up hook is bounded by hook_timeout; wait for it so it is not cut short.
        while self.hooks.join_next().await.is_some() {}
        // What was emitted reaches its subscribers (the metrics sample, the `gave_up`
        // alert), then each writer writes its newest value at once. Bounded throughout: a
        // stuck subscriber or a disk that stopped answering must not keep tend from exiting.
        let delivered = self.events.flush(crate::background::FINISH_WAIT);
        if let Some(s) = self.status.take() {
            s.finish(self.snapshot(), &self.events);
        }
        if let Some(j) = self.crashes.take() {
            let path = j.path().to_owned();
            if !j.finish() {
                self.events.emit(events::Event::NotWritten {
                    file: Record::Crashes,
                    path,
                    error: None,
                });
            }
        }
        // Queued alerts (the `gave_up` that ended this) get a bounded chance to go out.
        self.watch.finish(delivered).await;
        match self.machine.phase() {
            Phase::Failed(_) => Outcome::Failed,
            _ => Outcome::Stopped,
        }
    }

    /// Steps the machine with `event` and everything that carrying out its actions causes,
    /// then emits the new state.
    fn feed(&mut self, event: Event) {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let now = now();
            let actions = self.machine.step(event, now);
            // Alerts raised by these actions carry the count including this step's restart.
            self.watch.restarts_total = self.machine.restarts_total();
            for action in actions {
                if let Some(next) = self.apply(action, now) {
                    queue.push_back(next);
                }
            }
        }
        // After the step's actions, so a restart never waits for the thread of the first
        // crash record.
        if let Some(j) = &mut self.crashes {
            j.start_writer();
        }
        self.emit_state();
    }

    /// After a health check, a deadline or a sample: restart the program if it must be,
    /// otherwise emit what changed.
    fn after_watch(&mut self, restart: Option<String>) {
        match restart {
            Some(reason) => {
                self.unhealthy = Some(reason.clone());
                self.feed(Event::Unhealthy { reason });
            }
            None => {
                if self.watch.publish_due(now()) {
                    self.emit_state();
                }
            }
        }
    }

    /// What the runtime keeps of a step: the watch's view of the run, and the crash record
    /// of an exit nobody asked for. (What is *said* of it are events: [`Self::alert_for`]
    /// and the step itself.)
    fn track(&mut self, n: &Notice, now: Instant) {
        match n {
            Notice::Started { pid } => self.watch.program_started(*pid, now),
            Notice::Exited {
                pid,
                exit,
                uptime,
                cause,
            } => {
                if *cause != ExitCause::Requested {
                    self.record_crash(*pid, exit, *uptime, *cause);
                }
                let unexpected = self.crashed(exit, *cause) || *cause == ExitCause::Unhealthy;
                self.watch.program_exited(unexpected);
            }
            Notice::SpawnFailed { .. } => self.watch.program_exited(true),
            _ => {}
        }
    }

    /// A failed exit nobody asked for.
    fn crashed(&self, exit: &Exit, cause: ExitCause) -> bool {
        cause == ExitCause::OnItsOwn && !exit.is_success(&self.spec.restart)
    }

    /// The alert a step stands for; built only when alerts go somewhere.
    fn alert_for(&self, n: &Notice) -> Option<Alert> {
        if !self.watch.alerts_on() {
            return None;
        }
        let (kind, exit) = match n {
            Notice::Exited { exit, cause, .. } if self.crashed(exit, *cause) => {
                (AlertKind::Crashed, Some(exit.clone()))
            }
            Notice::SpawnFailed { error } => {
                (AlertKind::Crashed, Some(Exit::SpawnFailed(error.clone())))
            }
            Notice::Restarting { .. } => (
                AlertKind::Restarting,
                self.machine.last_exit().map(|l| l.exit.clone()),
            ),
            Notice::GaveUp(g) => (AlertKind::GaveUp, Some(g.last_exit.clone())),
            _ => return None,
        };
        let mut alert = Alert::new(kind, SystemTime::now());
        if let Some(exit) = &exit {
            watch::set_exit(&mut alert, exit);
        }
        match n {
            // A crash says why in one line when it can (a Go panic); otherwise its exit.
            Notice::Exited { .. } => {
                if let Some(why) = self.last_words.go_summary() {
                    alert.reason = Some(why);
                }
            }
            Notice::Restarting { .. } => alert.reason = Some(crate::events::step(n)),
            Notice::GaveUp(g) => alert.reason = Some(crate::events::gave_up(g)),
            _ => {}
        }
        if !matches!(n, Notice::SpawnFailed { .. }) {
            alert.last_stderr = self.last_words.stderr.lines(Bound::STATUS);
        }
        Some(alert)
    }

    fn reload(&mut self) {
        let Some(loader) = &self.loader else {
            self.events.emit(events::Event::Reload(Reload::Unsupported));
            return;
        };
        let result = loader().and_then(|new| {
            tend_core::reload::diff(&self.spec, &new)
                .map(|plan| (new, plan))
                .map_err(|e| e.to_string())
        });
        let (new, plan) = match result {
            Ok(ok) => ok,
            Err(e) => {
                self.events
                    .emit(events::Event::Reload(Reload::Rejected(e.clone())));
                self.last_reload_error = Some(e);
                self.emit_state();
                return;
            }
        };
        // Logs first: it is the only step that can fail, so a failure leaves nothing
        // half-applied.
        if plan.logs_changed
            && let Some(capture) = &self.capture
        {
            match capture.reconfigure(&new.logs) {
                // Status must name the files the output goes to now, not the old ones.
                Ok(files) => self.log_files = files,
                Err(e) => {
                    let e = format!("cannot apply the new [logs]: {e}");
                    self.events
                        .emit(events::Event::Reload(Reload::Rejected(e.clone())));
                    self.last_reload_error = Some(e);
                    self.emit_state();
                    return;
                }
            }
        }
        if plan.policy_changed {
            self.machine
                .update_policy(new.restart.clone(), new.stop.clone());
        }
        let pid = match self.machine.phase() {
            Phase::Running { pid, .. } => Some(*pid),
            _ => None,
        };
        self.watch.reconfigure(&new, &plan, pid, now());
        if plan.is_empty() {
            self.events.emit(events::Event::Reload(Reload::Unchanged));
        }
        for c in plan.changes.iter().chain(&plan.not_applied) {
            self.events
                .emit(events::Event::Reload(Reload::Changed(c.to_string())));
        }
        self.spec = Arc::new(new);
        self.generation += 1;
        self.last_reload_error = None;
        if plan.restart_program && matches!(self.machine.phase(), Phase::Running { .. }) {
            self.feed(Event::Restart);
        } else {
            self.emit_state();
        }
    }

    /// Emits the state: the status snapshot and the metrics sample, each built only when
    /// something takes it. On the bus the newest replaces one not delivered yet.
    fn emit_state(&mut self) {
        self.watch.restarts_total = self.machine.restarts_total();
        if self.status.is_some() {
            self.events
                .emit(events::Event::Status(Arc::new(self.snapshot())));
        }
        // Built only when `[metrics]` is on: a name and the crash counts are allocations
        // on every state change otherwise.
        let base = || ServiceMetrics {
            service: self.spec.name.to_string(),
            up: matches!(
                self.machine.phase(),
                Phase::Running { .. } | Phase::Stopping { .. }
            ),
            restarts_total: self.machine.restarts_total(),
            last_exit_code: self.machine.last_exit().and_then(|l| match l.exit {
                Exit::Code(c) => Some(i64::from(c)),
                // As shells report a death by signal N.
                Exit::Signal(s) => Some(128 + i64::from(s)),
                Exit::SpawnFailed(_) => None,
            }),
            start_time_seconds: match self.machine.phase() {
                Phase::Running { since, .. } | Phase::Stopping { since, .. } => {
                    status::wall(*since)
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs_f64())
                }
                _ => None,
            },
            crashes: self
                .crash_counts
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            gave_up: matches!(self.machine.phase(), Phase::Failed(FailReason::GaveUp(_))),
            ..ServiceMetrics::default()
        };
        self.watch.emit_metrics(base, now());
    }

    /// What the machine knows, in wall-clock terms.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let now = now();
        let (pid, since) = match self.machine.phase() {
            Phase::Running { pid, since } | Phase::Stopping { pid, since, .. } => {
                (Some(*pid), Some(*since))
            }
            _ => (None, None),
        };
        let next_restart_at = match self.machine.phase() {
            Phase::Backoff { until } => Some(status::rfc3339(status::wall(*until))),
            _ => None,
        };
        let failed_reason = match self.machine.phase() {
            Phase::Failed(FailReason::GaveUp(g)) => Some(crate::events::gave_up(g)),
            Phase::Failed(FailReason::Exited(e)) => Some(format!(
                "{} and restart.policy = \"{}\"",
                describe_exit(e),
                self.spec.restart.policy.as_str()
            )),
            Phase::Failed(FailReason::Unhealthy { reason, .. }) => Some(format!(
                "stopped for being unhealthy ({reason}) and restart.policy = \"{}\"",
                self.spec.restart.policy.as_str()
            )),
            _ => None,
        };
        let last_exit = self.machine.last_exit().map(|l| status::LastExit {
            code: match l.exit {
                Exit::Code(c) => Some(c),
                _ => None,
            },
            signal: match l.exit {
                Exit::Signal(s) => Some(s),
                _ => None,
            },
            spawn_error: match &l.exit {
                Exit::SpawnFailed(e) => Some(e.clone()),
                _ => None,
            },
            description: describe_exit(&l.exit),
            at: status::rfc3339(status::wall(l.at)),
            after_secs: l.uptime.as_secs_f64(),
            stderr: self.last_words.stderr.lines(Bound::STATUS),
        });
        Snapshot {
            service: self.spec.name.to_string(),
            state: self.machine.phase().name().to_owned(),
            pid,
            supervisor_pid: std::process::id(),
            started_at: since.map(|s| status::rfc3339(status::wall(s))),
            restarts_total: self.machine.restarts_total(),
            restarts_in_window: self.machine.restarts_in_window(now),
            restart_limit: if tend_core::backoff::limit_enabled(&self.spec.restart) {
                self.spec.restart.limit
            } else {
                0
            },
            last_exit,
            next_restart_at,
            failed_reason,
            log_files: self.log_files.clone(),
            config: self.spec.config_path.clone(),
            config_generation: self.generation,
            last_reload_error: self.last_reload_error.clone(),
            updated_at: status::rfc3339(std::time::SystemTime::now()),
            health: self.watch.health_status(),
            memory_bytes: self.watch.memory_bytes(),
            cpu_percent: self.watch.cpu_percent(),
            last_crash: self
                .crashes
                .as_ref()
                .and_then(crate::crashes::Journal::latest),
        }
    }

    fn apply(&mut self, action: Action, now: Instant) -> Option<Event> {
        match action {
            Action::Spawn => Some(self.spawn()),
            Action::SignalStop => {
                if let Some(tree) = &self.tree
                    && let Err(e) = tree.signal_stop(&self.spec.stop)
                {
                    self.events
                        .emit(events::Event::Failed(Failure::Signal(e.to_string())));
                }
                None
            }
            Action::KillTree => {
                if let Some(tree) = &self.tree
                    && let Err(e) = tree.kill()
                {
                    self.events
                        .emit(events::Event::Failed(Failure::Kill(e.to_string())));
                }
                None
            }
            Action::SetTimer(at) => {
                self.timer = Some(at);
                None
            }
            Action::ClearTimer => {
                self.timer = None;
                None
            }
            Action::Notify(n) => {
                // The step first: what tracking it says (`healthy` after `started`)
                // follows it.
                self.events.emit(events::Event::Step {
                    notice: n.clone(),
                    last_words: self.last_words_for(&n),
                });
                self.track(&n, now);
                if let Some(alert) = self.alert_for(&n) {
                    self.watch.send(alert);
                }
                None
            }
            Action::RunGiveUpHook(g) => {
                self.run_give_up_hook(&g);
                None
            }
        }
    }

    /// Keeps a crash record of a run that ended without being asked to.
    fn record_crash(
        &mut self,
        pid: u32,
        exit: &Exit,
        uptime: std::time::Duration,
        cause: ExitCause,
    ) {
        // The metric's reason: a small, fixed set of words, never a free text.
        let reason = if self.last_words.go.is_some() {
            "go-panic".to_owned()
        } else if cause == ExitCause::Unhealthy {
            "unhealthy".to_owned()
        } else {
            match exit {
                Exit::Signal(s) => crate::report::signal_name(*s),
                Exit::Code(c) => {
                    #[allow(clippy::cast_sign_loss)]
                    let raw = *c as u32;
                    match tend_core::crash::ntstatus_name(raw) {
                        Some(name) if cfg!(windows) => {
                            name.split_whitespace().next().unwrap_or(name).to_owned()
                        }
                        _ => "exit".to_owned(),
                    }
                }
                Exit::SpawnFailed(_) => "spawn-failed".to_owned(),
            }
        };
        *self.crash_counts.entry(reason).or_insert(0) += 1;
        let Some(journal) = &mut self.crashes else {
            return;
        };
        let core = matches!(exit, Exit::Signal(_)) && self.core_dumped;
        let described = format!(
            "{}{}",
            describe_exit(exit),
            if core { " (core dumped)" } else { "" }
        );
        let stderr = self.last_words.stderr.lines(Bound::CRASH);
        let summary = match (self.last_words.go_summary(), &self.unhealthy, cause) {
            (Some(go), _, _) => go,
            (None, Some(reason), ExitCause::Unhealthy) => {
                format!("stopped for being unhealthy: {reason}")
            }
            _ => match stderr.last() {
                Some(last) => format!("{described}: {last}"),
                None => described.clone(),
            },
        };
        journal.add(crate::crashes::CrashRecord {
            at: status::rfc3339(SystemTime::now()),
            after_secs: uptime.as_secs_f64(),
            pid,
            cause: match cause {
                ExitCause::Unhealthy => "unhealthy",
                _ => "on-its-own",
            }
            .to_owned(),
            exit: described,
            code: match exit {
                Exit::Code(c) => Some(*c),
                _ => None,
            },
            signal: match exit {
                Exit::Signal(s) => Some(*s),
                _ => None,
            },
            core_dumped: core,
            summary,
            stderr,
            stdout: self.last_words.stdout.lines(Bound::CRASH_STDOUT),
        });
    }

    /// What the exit, give-up and not-restarting lines add: the program's last stderr lines,
    /// unless someone asked for the stop (then they say nothing about a failure).
    fn last_words_for(&self, n: &Notice) -> String {
        let relevant = match n {
            Notice::Exited { cause, .. } => *cause != ExitCause::Requested,
            Notice::GaveUp(_) | Notice::NotRestarting { .. } => true,
            _ => false,
        };
        if !relevant {
            return String::new();
        }
        let core = match n {
            Notice::Exited {
                exit: Exit::Signal(_),
                ..
            } if self.core_dumped => " (core dumped)",
            _ => "",
        };
        // A Go crash says why in one line; otherwise the last lines say what they say.
        if let Some(go) = self.last_words.go_summary() {
            return format!("{core}; {go}");
        }
        let lines = self.last_words.stderr.lines(Bound::LINE);
        if lines.is_empty() {
            return core.to_owned();
        }
        format!("{core}; last stderr: {}", last_lines::one_line(&lines))
    }

    fn spawn(&mut self) -> Event {
        let launch = Launch {
            command: &self.spec.command,
            working_dir: &self.spec.working_dir,
            env: &self.spec.env,
            output: if self.capture.is_some() {
                Output::Capture
            } else {
                Output::Inherit
            },
            core_dumps: self.spec.diagnostics.dumps,
        };
        match self.spawner.spawn(&launch) {
            Ok(run) => {
                self.tail = None;
                self.unhealthy = None;
                if let (Some(capture), Some((out, err))) = (&self.capture, run.output) {
                    self.tail = capture.attach(run.pid, out, err);
                }
                self.child = Some(run.exit);
                self.tree = Some(run.tree);
                Event::Spawned { pid: run.pid }
            }
            Err(error) => {
                self.tail = None;
                self.last_words = LastWords::default();
                self.core_dumped = false;
                Event::SpawnFailed { error }
            }
        }
    }

    fn run_give_up_hook(&mut self, g: &GiveUp) {
        let Some(command) = &self.spec.restart.on_give_up else {
            return;
        };
        let mut env = self.spec.env.clone();
        env.push(("TEND_SERVICE".into(), self.spec.name.to_string()));
        env.push(("TEND_RESTARTS".into(), g.restarts.to_string()));
        match &g.last_exit {
            Exit::Code(c) => env.push(("TEND_EXIT_CODE".into(), c.to_string())),
            Exit::Signal(s) => env.push(("TEND_SIGNAL".into(), s.to_string())),
            Exit::SpawnFailed(e) => env.push(("TEND_SPAWN_ERROR".into(), e.clone())),
        }
        let launch = Launch {
            command,
            working_dir: &self.spec.working_dir,
            env: &env,
            output: Output::Inherit,
            core_dumps: false,
        };
        let timeout = self.spec.restart.hook_timeout;
        let events = self.events.clone();
        match proc::spawn(&launch) {
            Err(e) => events.emit(events::Event::Hook(Hook::CannotStart(e.to_string()))),
            Ok(mut s) => {
                events.emit(events::Event::Hook(Hook::Running { pid: s.pid }));
                self.hooks.spawn(async move {
                    match tokio::time::timeout(timeout, s.child.wait()).await {
                        Ok(Ok(status)) => {
                            events.emit(events::Event::Hook(Hook::Ended(exit_of(Ok(status)))));
                        }
                        Ok(Err(e)) => events.emit(events::Event::Hook(Hook::Failed(e.to_string()))),
                        Err(_) => {
                            let _ = s.tree.kill();
                            let _ = s.child.wait().await;
                            events.emit(events::Event::Hook(Hook::Killed { after: timeout }));
                        }
                    }
                    // Whatever the hook started is not allowed to linger.
                    let _ = s.tree.kill();
                });
            }
        }
    }
}

async fn wait(child: &mut Option<ExitFuture>) -> program::Ended {
    match child {
        Some(exit) => exit.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub(crate) fn exit_of(status: std::io::Result<ExitStatus>) -> Exit {
    match status {
        Ok(status) => {
            if let Some(code) = status.code() {
                return Exit::Code(code);
            }
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(sig) = status.signal() {
                    return Exit::Signal(sig);
                }
            }
            Exit::Code(-1)
        }
        // waitpid failing is not something the program did; record it as a failed exit so
        // the policy still decides.
        Err(_) => Exit::Code(-1),
    }
}
