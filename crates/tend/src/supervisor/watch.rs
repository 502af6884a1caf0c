//! The watching around the program: health checks, the hang watchdog, resource sampling and
//! limits, alerts and metrics (`[health]`, `[limits]`, `[notify]`, `[metrics]`).
//!
//! The decisions are tend-health's pure trackers; this is the glue that feeds them from the
//! supervisor's single event loop and turns their verdicts into lines, alerts and, for a
//! restart, a reason the supervisor hands to the machine as `Event::Unhealthy`. Nothing
//! here may stall the loop: probes run as spawned tasks whose results come back through a
//! channel, alerts are queued to the notifier's task, and files (the metrics textfile) are
//! written by a thread of their own. Without these sections nothing here arms a timer, so
//! an idle tend stays at zero wakeups.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tend_core::health::{HealthSpec, LimitsSpec, MetricsSpec, NotifySpec, Reaction};
use tend_core::reload::ReloadPlan;
use tend_core::{Exit, ServiceSpec};
use tend_health::metrics::{LogStreamMetrics, MetricsServer, ServiceMetrics};
use tend_health::tracker::{ProbeTicket, Step};
use tend_health::{
    Alert, AlertKind, CpuCounter, HealthState, HealthTracker, LimitTracker, Notifier,
    NotifierConfig, OutputClock, Probe, ProbeOutcome, Sample, SampleError, Verdict,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::proc::Tree;
use crate::report::{Reporter, human};
use crate::status::{self, HealthStatus, ProbeStatus};

/// While the silence watchdog holds the program unhealthy and it is left running
/// (`on_unhealthy = "log"`), how often the output clock is looked at to notice that output
/// resumed. Only in that state: a healthy or stopped program arms no such timer.
const SILENCE_RECHECK: Duration = Duration::from_secs(1);

/// The metrics textfile is rewritten at least this often (log and CPU counters move without
/// a state change), and status and metrics are refreshed at most this often for changes that
/// are only numbers (a new memory sample, another passing probe).
const REFRESH: Duration = Duration::from_secs(10);

/// How long tend waits for queued alerts when it exits.
const ALERT_DRAIN: Duration = Duration::from_secs(5);

/// Live counters of the log pipeline, for metrics (read from the listener's task too).
pub(crate) type LogMetrics = Arc<dyn Fn() -> Vec<LogStreamMetrics> + Send + Sync>;

/// A probe's result on its way back to the loop.
pub(super) struct ProbeDone {
    /// The [`Health::generation`] it was started in: a reload replaces the tracker, whose
    /// tickets would otherwise be mistaken for the new one's.
    generation: u64,
    ticket: ProbeTicket,
    outcome: ProbeOutcome,
    at: SystemTime,
}

/// `[health]` at work.
struct Health {
    spec: HealthSpec,
    tracker: HealthTracker,
    probe: Option<Probe>,
    generation: u64,
    in_flight: Option<JoinHandle<()>>,
    /// When the latest probe result arrived (wall clock, for status).
    last_probe_at: Option<SystemTime>,
    /// Set while the silence watchdog holds a program that is left running unhealthy.
    recheck_at: Option<Instant>,
}

/// `[limits]` at work.
struct Limits {
    spec: LimitsSpec,
    tracker: LimitTracker,
    next_sample: Option<Instant>,
}

/// How the program's tree is measured.
enum Sampler {
    /// This OS has no sampler (macOS).
    #[cfg(not(any(target_os = "linux", windows)))]
    None,
    /// The program's process group, by scanning /proc (a new one per run).
    #[cfg(target_os = "linux")]
    Group(Option<tend_health::sample::linux::ProcessGroup>),
    /// tend's own systemd unit cgroup: the kernel sums the whole tree.
    #[cfg(target_os = "linux")]
    Cgroup(tend_health::sample::linux::Cgroup),
    /// The program's Job Object, through [`Tree::sample`].
    #[cfg(windows)]
    Job,
}

impl Sampler {
    /// The best source for service `name`: its unit's cgroup when tend runs as that systemd
    /// unit, otherwise the program's process group / job.
    fn for_service(name: &str) -> Self {
        #[cfg(target_os = "linux")]
        {
            match tend_health::sample::linux::Cgroup::own_service(&format!("{name}.service")) {
                Ok(Some(c)) => Self::Cgroup(c),
                _ => Self::Group(None),
            }
        }
        #[cfg(windows)]
        {
            let _ = name;
            Self::Job
        }
        #[cfg(not(any(target_os = "linux", windows)))]
        {
            let _ = name;
            Self::None
        }
    }

    fn available(&self) -> bool {
        #[cfg(not(any(target_os = "linux", windows)))]
        {
            false
        }
        #[cfg(any(target_os = "linux", windows))]
        {
            true
        }
    }

    /// A new run began with main process `pid`.
    fn program_started(&mut self, pid: u32, cpu: &mut CpuCounter) {
        match self {
            #[cfg(target_os = "linux")]
            Self::Group(g) => {
                // tend starts the program as a group leader: its pid is the group id.
                *g = Some(tend_health::sample::linux::ProcessGroup::new(pid));
                cpu.tree_changed();
            }
            // The cgroup's counter outlives the program's runs: no new baseline.
            #[cfg(target_os = "linux")]
            Self::Cgroup(_) => {}
            #[cfg(windows)]
            Self::Job => {
                let _ = pid;
                cpu.tree_changed();
            }
            #[cfg(not(any(target_os = "linux", windows)))]
            Self::None => {
                let _ = (pid, cpu);
            }
        }
    }

    fn sample(&self, tree: Option<&Tree>) -> Option<Result<Sample, SampleError>> {
        let _ = tree;
        match self {
            #[cfg(target_os = "linux")]
            Self::Group(g) => g
                .as_ref()
                .map(tend_health::sample::linux::ProcessGroup::sample),
            #[cfg(target_os = "linux")]
            Self::Cgroup(c) => Some(c.sample()),
            #[cfg(windows)]
            Self::Job => tree.map(Tree::sample),
            #[cfg(not(any(target_os = "linux", windows)))]
            Self::None => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            #[cfg(target_os = "linux")]
            Self::Group(_) => "the program's process group (/proc)".into(),
            #[cfg(target_os = "linux")]
            Self::Cgroup(c) => format!("the service's cgroup ({})", c.dir().display()),
            #[cfg(windows)]
            Self::Job => "the program's Job Object".into(),
            #[cfg(not(any(target_os = "linux", windows)))]
            Self::None => "nothing (not available on this OS)".into(),
        }
    }
}

/// `[metrics]` at work.
struct Metrics {
    spec: MetricsSpec,
    server: Option<JoinHandle<()>>,
    textfile: Option<status::Background<String>>,
    last_textfile: Option<Instant>,
}

/// Everything around the program besides starting and stopping it.
pub(super) struct Watch {
    name: String,
    reporter: Reporter,
    /// Stamped by the log reader threads on every chunk of output.
    output: Arc<OutputClock>,
    log_metrics: Option<LogMetrics>,
    health: Option<Health>,
    limits: Option<Limits>,
    notifier: Option<Notifier>,
    metrics: Option<Metrics>,
    /// What the `/metrics` listener serves (logs are read at scrape time).
    shared: Arc<Mutex<ServiceMetrics>>,
    pub(super) probe_rx: mpsc::UnboundedReceiver<ProbeDone>,
    probe_tx: mpsc::UnboundedSender<ProbeDone>,
    sampler: Option<Sampler>,
    /// Bumped for every new health tracker.
    health_generation: u64,
    cpu: CpuCounter,
    /// (when, monotonic CPU total) at the previous sample of this run, for the CPU percent.
    cpu_base: Option<(Instant, Duration)>,
    memory_bytes: Option<u64>,
    cpu_percent: Option<f64>,
    running: bool,
    /// The program crashed or was unhealthy since it last ran well: the next good run is
    /// a recovery. (With `[health]`, the tracker keeps its own flag.)
    troubled: bool,
    /// Without `[health]`: when the current run counts as recovered (it lasted
    /// `restart.reset_after` after trouble). Only armed when alerts go somewhere.
    recover_at: Option<Instant>,
    reset_after: Duration,
    /// Lifetime restarts, for alerts (kept current by the supervisor).
    pub(super) restarts_total: u64,
    /// When status and metrics were last published.
    last_publish: Option<Instant>,
    /// Something status shows changed in a way worth publishing at once (a health state,
    /// a verdict), not just a number.
    dirty: bool,
    working_dir: std::path::PathBuf,
    env: Vec<(String, String)>,
}

impl Watch {
    pub(super) fn new(spec: &ServiceSpec, reporter: Reporter) -> Self {
        let (probe_tx, probe_rx) = mpsc::unbounded_channel();
        let mut w = Self {
            name: spec.name.to_string(),
            reporter,
            output: Arc::new(OutputClock::new()),
            log_metrics: None,
            health: None,
            limits: None,
            notifier: None,
            metrics: None,
            shared: Arc::new(Mutex::new(ServiceMetrics {
                service: spec.name.to_string(),
                ..ServiceMetrics::default()
            })),
            probe_rx,
            probe_tx,
            sampler: None,
            health_generation: 0,
            cpu: CpuCounter::default(),
            cpu_base: None,
            memory_bytes: None,
            cpu_percent: None,
            running: false,
            troubled: false,
            recover_at: None,
            reset_after: spec.restart.reset_after,
            restarts_total: 0,
            last_publish: None,
            dirty: false,
            working_dir: spec.working_dir.clone(),
            env: spec.env.clone(),
        };
        w.set_health(spec.health.as_ref());
        w.set_limits(spec.limits.as_ref());
        w
    }

    /// The clock the log readers must stamp (see `host::LogCapture`).
    pub(super) fn set_output_clock(&mut self, clock: Arc<OutputClock>) {
        self.output = clock;
    }

    pub(super) fn set_log_metrics(&mut self, logs: LogMetrics) {
        self.log_metrics = Some(logs);
    }

    /// Starts what needs the runtime: the alert sender and the metrics listener.
    pub(super) fn start(&mut self, spec: &ServiceSpec) {
        if spec.health.as_ref().is_some_and(|h| h.silence.is_some()) && self.log_metrics.is_none() {
            self.reporter.line(
                "health.silence needs the program's output captured; without it the watchdog \
                 cannot see output",
            );
        }
        self.set_notify(spec.notify.as_ref());
        self.set_metrics(spec.metrics.as_ref());
    }

    fn set_health(&mut self, spec: Option<&HealthSpec>) {
        // Never reused, even across a removal and a re-adding of the section.
        self.health_generation += 1;
        let generation = self.health_generation;
        if let Some(old) = self.health.take()
            && let Some(task) = old.in_flight
        {
            task.abort();
        }
        self.health = spec.map(|spec| Health {
            tracker: HealthTracker::new(spec),
            probe: spec
                .check
                .as_ref()
                .map(|c| Probe::new(c, &self.working_dir, &self.env)),
            spec: spec.clone(),
            generation,
            in_flight: None,
            last_probe_at: None,
            recheck_at: None,
        });
    }

    fn set_limits(&mut self, spec: Option<&LimitsSpec>) {
        self.limits = spec.map(|spec| Limits {
            spec: spec.clone(),
            tracker: LimitTracker::new(spec),
            next_sample: None,
        });
        if self.limits.is_some() && self.sampler.is_none() {
            let sampler = Sampler::for_service(&self.name);
            if !sampler.available() {
                self.reporter
                    .line("[limits] is ignored: the process tree cannot be measured on this OS");
            }
            self.sampler = Some(sampler);
        }
        if self.limits.is_none() {
            self.memory_bytes = None;
            self.cpu_percent = None;
        }
    }

    fn set_notify(&mut self, spec: Option<&NotifySpec>) {
        // Dropping the old notifier lets it deliver what it already queued, in the
        // background: a reload must not lose an alert that is on its way.
        self.notifier = spec.filter(|s| s.is_enabled()).map(|spec| {
            let reporter = self.reporter.clone();
            Notifier::spawn(
                NotifierConfig::new(&self.name, spec, &self.working_dir, &self.env),
                move |failure| reporter.line(&failure.to_string()),
            )
        });
    }

    /// Applies `[metrics]`. The listener is kept when its address is unchanged: binding the
    /// same port again while the old socket is open fails ("address already in use"), and
    /// scrapers must not see a gap for a change they did not cause.
    fn set_metrics(&mut self, spec: Option<&MetricsSpec>) {
        let (mut kept, old_listen) = match self.metrics.take() {
            Some(old) => {
                if let Some(writer) = old.textfile {
                    writer.finish();
                }
                (old.server, old.spec.listen)
            }
            None => (None, None),
        };
        if spec.map(|s| s.listen) != Some(old_listen)
            && let Some(server) = kept.take()
        {
            server.abort();
        }
        let Some(spec) = spec else { return };
        let server = match kept {
            Some(server) => Some(server),
            None => spec.listen.and_then(|addr| self.serve_metrics(addr)),
        };
        let textfile = spec.textfile.clone().map(|dir| {
            let name = self.name.clone();
            let reporter = self.reporter.clone();
            status::Background::spawn(
                "tend-metrics",
                move |text: &String| {
                    tend_health::metrics::write_textfile(&dir, &name, text)
                        .map(|_| ())
                        .map_err(|e| {
                            std::io::Error::new(
                                e.kind(),
                                format!(
                                    "cannot write the metrics textfile `{}`: {e}",
                                    tend_health::metrics::textfile_path(&dir, &name).display()
                                ),
                            )
                        })
                },
                move |e| reporter.line(&e),
            )
        });
        self.metrics = Some(Metrics {
            spec: spec.clone(),
            server,
            textfile,
            last_textfile: None,
        });
    }

    /// Binds the `/metrics` listener and serves it on a task of its own.
    fn serve_metrics(&self, addr: std::net::SocketAddr) -> Option<tokio::task::JoinHandle<()>> {
        match MetricsServer::bind_now(addr) {
            Ok(server) => {
                let shown = server.local_addr().map_or(addr, |a| a);
                self.reporter
                    .line(&format!("metrics: serving http://{shown}/metrics"));
                let shared = self.shared.clone();
                let logs = self.log_metrics.clone();
                Some(tokio::spawn(server.serve(move || {
                    let mut m = shared
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone();
                    if let Some(logs) = &logs {
                        m.logs = logs();
                    }
                    tend_health::metrics::render(&[m])
                })))
            }
            Err(e) => {
                // Metrics are an add-on: supervising goes on without the listener.
                self.reporter.line(&format!(
                    "metrics: cannot listen on {addr}: {e}; /metrics is not served"
                ));
                None
            }
        }
    }

    /// Applies a reload's changes to the sections here; `pid`: the program's, if it runs.
    pub(super) fn reconfigure(
        &mut self,
        new: &ServiceSpec,
        plan: &ReloadPlan,
        pid: Option<u32>,
        now: Instant,
    ) {
        self.working_dir = new.working_dir.clone();
        self.env = new.env.clone();
        self.reset_after = new.restart.reset_after;
        if plan.health_changed {
            self.set_health(new.health.as_ref());
            // A new check gets a fresh start period, as after a start.
            if self.running
                && let Some(h) = &mut self.health
            {
                let step = h.tracker.program_started(now);
                let _ = self.health_steps(vec![step], now);
            }
        }
        if plan.limits_changed {
            self.set_limits(new.limits.as_ref());
            if self.running
                && let Some(l) = &mut self.limits
            {
                l.tracker.program_started();
                l.next_sample = Some(now + l.spec.sample_every);
                // A sampler made just now does not know the running tree yet.
                if let (Some(s), Some(pid)) = (&mut self.sampler, pid) {
                    s.program_started(pid, &mut self.cpu);
                }
                // The first sample is the base; the CPU the program used before it is not
                // spread over a short span.
                self.cpu_base = None;
            }
        }
        if plan.notify_changed {
            self.set_notify(new.notify.as_ref());
        }
        if plan.metrics_changed {
            self.set_metrics(new.metrics.as_ref());
        }
    }

    /// The program runs with main process `pid` since `now`.
    pub(super) fn program_started(&mut self, pid: u32, now: Instant) {
        self.running = true;
        if let Some(h) = &mut self.health {
            h.recheck_at = None;
            // Without a probe and without a start period the program is healthy at once;
            // a start never yields a verdict.
            let step = h.tracker.program_started(now);
            let _ = self.health_steps(vec![step], now);
        }
        if let Some(l) = &mut self.limits {
            l.tracker.program_started();
            l.next_sample = Some(now + l.spec.sample_every);
        }
        if let Some(s) = &mut self.sampler {
            s.program_started(pid, &mut self.cpu);
        }
        self.cpu_base = match self.sampler {
            #[cfg(target_os = "linux")]
            Some(Sampler::Cgroup(_)) => None,
            Some(_) => Some((now, self.cpu.total())),
            None => None,
        };
        self.memory_bytes = None;
        self.cpu_percent = None;
        self.recover_at = (self.troubled && self.health.is_none() && self.notifier.is_some())
            .then(|| now + self.reset_after);
    }

    /// The run ended; `unexpected`: a crash or a stop because of a verdict.
    pub(super) fn program_exited(&mut self, unexpected: bool) {
        self.running = false;
        self.troubled |= unexpected;
        self.recover_at = None;
        if let Some(h) = &mut self.health {
            h.tracker.program_exited(unexpected);
            h.recheck_at = None;
            if let Some(task) = h.in_flight.take() {
                // Its result would be discarded anyway; a check command is killed with it.
                task.abort();
            }
        }
        if let Some(l) = &mut self.limits {
            l.tracker.program_exited();
            l.next_sample = None;
        }
        self.memory_bytes = None;
        self.cpu_percent = None;
        self.cpu_base = None;
    }

    // ---- timers (each `None` when there is nothing to wait for) ----

    pub(super) fn next_probe_at(&self) -> Option<Instant> {
        self.health
            .as_ref()
            .filter(|h| h.probe.is_some())
            .and_then(|h| h.tracker.next_probe_at())
    }

    /// The health deadline (silence, end of the start period), the silence re-check, or
    /// (without `[health]`) the recovery timer.
    pub(super) fn next_check_at(&self) -> Option<Instant> {
        let h = self.health.as_ref();
        [
            h.and_then(|h| h.tracker.next_deadline()),
            h.and_then(|h| h.recheck_at),
            self.recover_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn next_sample_at(&self) -> Option<Instant> {
        self.sampler
            .as_ref()
            .filter(|s| s.available())
            .and(self.limits.as_ref()?.next_sample)
    }

    pub(super) fn next_refresh_at(&self) -> Option<Instant> {
        let m = self.metrics.as_ref()?;
        m.textfile.as_ref()?;
        Some(m.last_textfile.map_or_else(super::now, |t| t + REFRESH))
    }

    // ---- handlers; each returns a reason to restart the program, if it must be ----

    /// Starts the probe that is due, as a task of its own: a slow check never holds up the
    /// loop (a stop, an exit, a restart).
    pub(super) fn begin_probe(&mut self) {
        let Some(h) = &mut self.health else { return };
        let Some(probe) = h.probe.clone() else {
            return;
        };
        let ticket = h.tracker.probe_begun();
        let (tx, generation, timeout) = (self.probe_tx.clone(), h.generation, h.spec.timeout);
        h.in_flight = Some(tokio::spawn(async move {
            let outcome = probe.run(timeout).await;
            let _ = tx.send(ProbeDone {
                generation,
                ticket,
                outcome,
                at: SystemTime::now(),
            });
        }));
    }

    pub(super) fn probe_finished(&mut self, done: ProbeDone, now: Instant) -> Option<String> {
        let last_output = self.output.last();
        let h = self.health.as_mut()?;
        if done.generation != h.generation {
            return None;
        }
        h.in_flight = None;
        let before = h.tracker.consecutive_failures();
        let mut steps = Vec::new();
        if let Some(at) = last_output {
            steps.push(h.tracker.output_seen(at));
        }
        steps.push(h.tracker.probe_finished(done.ticket, &done.outcome, now));
        if h.tracker.last_outcome() == Some(&done.outcome) {
            h.last_probe_at = Some(done.at);
        }
        let after = h.tracker.consecutive_failures();
        // Failures below the threshold, so the log shows the trouble building up (the one
        // that crosses it is reported with the verdict).
        if after > before && !matches!(h.tracker.state(), HealthState::Unhealthy { .. }) {
            self.reporter.line(&format!(
                "health check failed ({after} of {} in a row): {}",
                h.spec.failures,
                done.outcome.text()
            ));
        }
        self.health_steps(steps, now)
    }

    /// A time from [`next_check_at`](Self::next_check_at) came.
    pub(super) fn check(&mut self, now: Instant) -> Option<String> {
        if self.recover_at.is_some_and(|t| now >= t) {
            self.recovered_by_uptime();
        }
        let last_output = self.output.last();
        let h = self.health.as_mut()?;
        let mut steps = Vec::new();
        if let Some(at) = last_output {
            steps.push(h.tracker.output_seen(at));
        }
        steps.push(h.tracker.poll(now));
        self.health_steps(steps, now)
    }

    fn recovered_by_uptime(&mut self) {
        self.recover_at = None;
        if !self.troubled || !self.running {
            return;
        }
        self.troubled = false;
        let text = format!(
            "recovered: running for {} since the last failure",
            human(self.reset_after)
        );
        self.reporter.line(&text);
        let mut alert = Alert::new(AlertKind::Recovered, SystemTime::now());
        alert.reason = Some(text);
        self.send(alert);
    }

    /// Acts on what the tracker decided: lines, alerts, and the restart reason.
    fn health_steps(&mut self, steps: Vec<Step>, now: Instant) -> Option<String> {
        let mut restart = None;
        for step in steps {
            let Some(h) = &self.health else { break };
            if let Some(change) = &step.change {
                self.dirty = true;
                match &change.to {
                    HealthState::Healthy => {
                        let detail = h
                            .tracker
                            .last_outcome()
                            .map_or(
                                "start period over (health.silence watches the output)",
                                |o| o.text(),
                            )
                            .to_owned();
                        if change.recovered {
                            self.reporter.line(&format!("healthy again: {detail}"));
                            let mut alert = Alert::new(AlertKind::Recovered, SystemTime::now());
                            alert.reason = Some(detail);
                            self.send(alert);
                        } else {
                            self.reporter.line(&format!("healthy: {detail}"));
                        }
                    }
                    // Reported with the verdict below.
                    HealthState::Unhealthy { .. } | HealthState::Starting => {}
                }
            }
            if let Some(v) = step.verdict
                && let Some(reason) = self.verdict(v, "health.on_unhealthy")
            {
                restart = Some(reason);
            }
        }
        if let Some(h) = &mut self.health {
            let silent_and_left_running = h.spec.silence.is_some()
                && h.spec.on_unhealthy == Reaction::Log
                && matches!(h.tracker.state(), HealthState::Unhealthy { .. })
                && h.tracker.next_deadline().is_none();
            h.recheck_at = silent_and_left_running.then(|| now + SILENCE_RECHECK);
        }
        restart
    }

    /// Reports a verdict (line and `unhealthy` alert); returns the reason if the program
    /// must be restarted. `setting` names the key that chose the reaction.
    fn verdict(&mut self, v: Verdict, setting: &str) -> Option<String> {
        self.dirty = true;
        let (line, restart) = match &v {
            Verdict::Restart { reason } => (
                format!("unhealthy: {reason}; restarting the program ({setting} = \"restart\")"),
                true,
            ),
            Verdict::LogOnly { reason } => (
                format!("unhealthy: {reason} (left running: {setting} = \"log\")"),
                false,
            ),
        };
        self.reporter.line(&line);
        let mut alert = Alert::new(AlertKind::Unhealthy, SystemTime::now());
        alert.reason = Some(v.reason().to_owned());
        self.send(alert);
        restart.then(|| v.reason().to_owned())
    }

    /// Measures the tree (a small blocking read: two files for a cgroup, a `/proc` scan for
    /// a process group, a job query on Windows) and checks the limits.
    pub(super) fn sample(&mut self, tree: Option<&Tree>, now: Instant) -> Option<String> {
        let l = self.limits.as_mut()?;
        l.next_sample = self.running.then(|| now + l.spec.sample_every);
        let result = self.sampler.as_ref()?.sample(tree)?;
        let sample = match result {
            Ok(s) => s,
            Err(e) => {
                self.reporter.line(&format!(
                    "cannot measure the program's tree ({}): {e}",
                    self.sampler
                        .as_ref()
                        .map_or_else(String::new, Sampler::describe)
                ));
                return None;
            }
        };
        let total = self.cpu.observe(sample.cpu_time);
        if let Some((at, base)) = self.cpu_base {
            let span = now.saturating_duration_since(at);
            if !span.is_zero() {
                self.cpu_percent =
                    Some(total.saturating_sub(base).as_secs_f64() / span.as_secs_f64() * 100.0);
            }
        }
        self.cpu_base = Some((now, total));
        // The first sample of a run is news for status; later ones are only numbers.
        self.dirty |= self.memory_bytes.is_none();
        self.memory_bytes = Some(sample.memory_bytes);
        let verdict = l.tracker.observe(&sample, now);
        verdict.and_then(|v| self.verdict(v, "limits.action"))
    }

    /// Queues an alert (never waits).
    pub(super) fn send(&self, mut alert: Alert) {
        if let Some(n) = &self.notifier {
            alert.restarts = self.restarts_total;
            n.send(alert);
        }
    }

    /// The program crashed (a failed exit not asked for, or it could not start).
    pub(super) fn crashed(&mut self, exit: &Exit, last_stderr: Vec<String>) {
        let mut alert = Alert::new(AlertKind::Crashed, SystemTime::now());
        set_exit(&mut alert, exit);
        alert.last_stderr = last_stderr;
        self.send(alert);
    }

    // ---- what status and metrics show ----

    /// Whether status and metrics should be published after a handler ran: at once for a
    /// change of state, at most every [`REFRESH`] for new numbers only.
    pub(super) fn publish_due(&mut self, now: Instant) -> bool {
        std::mem::take(&mut self.dirty)
            || self
                .last_publish
                .is_none_or(|t| now.saturating_duration_since(t) >= REFRESH)
    }

    pub(super) fn health_status(&self) -> Option<HealthStatus> {
        let h = self.health.as_ref()?;
        let (state, reason) = match h.tracker.state() {
            HealthState::Unhealthy { reason } => ("unhealthy", Some(reason.clone())),
            s => (s.name(), None),
        };
        Some(HealthStatus {
            state: if self.running { state } else { "stopped" }.to_owned(),
            reason,
            consecutive_failures: h.tracker.consecutive_failures(),
            last_probe: h.tracker.last_outcome().map(|o| ProbeStatus {
                healthy: o.is_healthy(),
                text: o.text().to_owned(),
                took_ms: u64::try_from(o.took().as_millis()).unwrap_or(u64::MAX),
                at: h.last_probe_at.map(status::rfc3339),
            }),
        })
    }

    pub(super) fn memory_bytes(&self) -> Option<u64> {
        self.memory_bytes
    }

    pub(super) fn cpu_percent(&self) -> Option<f64> {
        self.cpu_percent
    }

    /// Publishes `base` (what the machine knows) with what is known here: to the
    /// listener's copy and the textfile.
    pub(super) fn publish_metrics(&mut self, mut base: ServiceMetrics, now: Instant) {
        self.last_publish = Some(now);
        base.healthy = self
            .health
            .as_ref()
            .map(|h| self.running && h.tracker.state() == &HealthState::Healthy);
        base.memory_bytes = self.memory_bytes;
        base.cpu_seconds_total = self.limits.as_ref().map(|_| self.cpu.total().as_secs_f64());
        let Some(m) = &mut self.metrics else { return };
        *self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = base.clone();
        if let Some(writer) = &m.textfile {
            if let Some(logs) = &self.log_metrics {
                base.logs = logs();
            }
            writer.publish(tend_health::metrics::render(&[base]));
            m.last_textfile = Some(now);
        }
    }

    /// At exit: waits (bounded) for queued alerts, stops the listener, writes the last
    /// textfile.
    pub(super) async fn finish(&mut self) {
        if let Some(h) = &mut self.health
            && let Some(task) = h.in_flight.take()
        {
            task.abort();
        }
        if let Some(n) = self.notifier.take() {
            let left = n.shutdown(ALERT_DRAIN).await;
            if left > 0 {
                self.reporter.line(&format!(
                    "{left} alert(s) still undelivered after {}: dropped",
                    human(ALERT_DRAIN)
                ));
            }
        }
        if let Some(m) = self.metrics.take() {
            if let Some(server) = m.server {
                server.abort();
            }
            if let Some(writer) = m.textfile {
                writer.finish();
            }
        }
    }
}

/// Fills in the exit of `exit` (code, signal, or the spawn error as the reason).
pub(super) fn set_exit(alert: &mut Alert, exit: &Exit) {
    match exit {
        Exit::Code(c) => alert.exit_code = Some(*c),
        Exit::Signal(s) => alert.signal = Some(*s),
        Exit::SpawnFailed(e) => alert.reason = Some(format!("cannot start the program: {e}")),
    }
}
