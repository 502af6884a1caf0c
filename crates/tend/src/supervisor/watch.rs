//! The watching around the program: health checks, the hang watchdog, resource sampling and
//! limits, alerts and metrics (`[health]`, `[limits]`, `[notify]`, `[metrics]`).
//!
//! The decisions are tend-health's pure trackers; this is the glue that feeds them from the
//! supervisor's single event loop and turns their verdicts into events (lines, alerts,
//! metrics samples) and, for a restart, a reason the supervisor hands to the machine as
//! `Event::Unhealthy`. Nothing here may stall the loop: probes run as spawned tasks whose
//! results come back through a channel, and what is said goes onto the bus, whose
//! subscribers (the notifier's task, the textfile's thread) take it from there. Without
//! these sections nothing here arms a timer, so an idle tend stays at zero wakeups.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tend_core::health::NotifySpec;
use tend_core::reload::ReloadPlan;
use tend_core::{Exit, ServiceSpec};
use tend_health::metrics::LogStreamMetrics;
use tend_health::{Alert, AlertKind, CpuCounter, Notifier, NotifierConfig, OutputClock, Verdict};
use tokio::sync::mpsc;

use crate::events::{self, Bus, Delivered, Event, Subscriber};

mod health;
mod limits;
mod metrics;
mod sample;

use health::Health;
pub(super) use health::ProbeDone;
use limits::Limits;
use metrics::{Metrics, MetricsOut};
use sample::Sampler;

/// The metrics textfile is rewritten at least this often (log and CPU counters move without
/// a state change), and status and metrics are refreshed at most this often for changes that
/// are only numbers (a new memory sample, another passing probe).
const REFRESH: Duration = Duration::from_secs(10);

/// How long tend waits for queued alerts when it exits.
const ALERT_DRAIN: Duration = Duration::from_secs(5);

/// Live counters of the log pipeline, for metrics (read from the listener's task too).
pub(crate) type LogMetrics = Arc<dyn Fn() -> Vec<LogStreamMetrics> + Send + Sync>;

/// `tend upgrade`s of the service by result, from its release store (read at each
/// publish and scrape: the upgrading tend is another process).
pub(crate) type UpgradeMetrics = Arc<dyn Fn() -> Vec<(String, u64)> + Send + Sync>;

/// Everything around the program besides starting and stopping it.
pub(super) struct Watch {
    name: String,
    events: Bus,
    /// Stamped by the log reader threads on every chunk of output.
    output: Arc<OutputClock>,
    log_metrics: Option<LogMetrics>,
    upgrade_metrics: Option<UpgradeMetrics>,
    health: Option<Health>,
    limits: Option<Limits>,
    /// The alerts' subscriber; `alerts_on` while it has a notifier.
    alerts: Arc<AlertsOut>,
    alerts_on: bool,
    metrics: Option<Metrics>,
    /// The metrics' subscriber: the listener's copy and the textfile.
    metrics_out: Arc<MetricsOut>,
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
    pub(super) fn new(spec: &ServiceSpec, events: Bus) -> Self {
        let (probe_tx, probe_rx) = mpsc::unbounded_channel();
        let alerts = Arc::new(AlertsOut::default());
        events.subscribe(alerts.clone());
        let metrics_out = MetricsOut::new(spec.name.as_str());
        events.subscribe(metrics_out.clone());
        let mut w = Self {
            name: spec.name.to_string(),
            events,
            output: Arc::new(OutputClock::new()),
            log_metrics: None,
            upgrade_metrics: None,
            health: None,
            limits: None,
            alerts,
            alerts_on: false,
            metrics: None,
            metrics_out,
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
        self.metrics_out.set_logs(logs.clone());
        self.log_metrics = Some(logs);
    }

    pub(super) fn set_upgrade_metrics(&mut self, upgrades: UpgradeMetrics) {
        self.metrics_out.set_upgrades(upgrades.clone());
        self.upgrade_metrics = Some(upgrades);
    }

    /// Starts what needs the runtime: the alert sender and the metrics listener.
    pub(super) fn start(&mut self, spec: &ServiceSpec) {
        if spec.health.as_ref().is_some_and(|h| h.silence.is_some()) && self.log_metrics.is_none() {
            self.events
                .emit(Event::Health(events::Health::SilenceNeedsCapture));
        }
        self.set_notify(spec.notify.as_ref());
        self.set_metrics(spec.metrics.as_ref());
    }

    fn set_notify(&mut self, spec: Option<&NotifySpec>) {
        // Dropping the old notifier lets it deliver what it already queued, in the
        // background: a reload must not lose an alert that is on its way.
        let notifier = spec.filter(|s| s.is_enabled()).map(|spec| {
            let events = self.events.clone();
            Notifier::spawn(
                NotifierConfig::new(&self.name, spec, &self.working_dir, &self.env),
                move |failure| events.emit(Event::AlertFailed(failure)),
            )
        });
        self.alerts_on = notifier.is_some();
        drop(self.alerts.replace(notifier));
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
                let _ = self.health_steps([step], now);
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
            let _ = self.health_steps([step], now);
        }
        if let Some(l) = &mut self.limits {
            l.tracker.program_started();
            l.next_sample = Some(now + l.spec.sample_every);
        }
        if let Some(s) = &mut self.sampler {
            s.program_started(pid, &mut self.cpu);
        }
        // A counter that outlives the runs (a unit's cgroup) has no base at a start: its
        // first sample is one.
        self.cpu_base = self
            .sampler
            .as_ref()
            .filter(|s| !s.spans_runs())
            .map(|_| (now, self.cpu.total()));
        self.memory_bytes = None;
        self.cpu_percent = None;
        self.recover_at = (self.troubled && self.health.is_none() && self.alerts_on)
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

    // ---- handlers; each returns a reason to restart the program, if it must be ----

    /// A time from [`next_check_at`](Self::next_check_at) came.
    pub(super) fn check(&mut self, now: Instant) -> Option<String> {
        if self.recover_at.is_some_and(|t| now >= t) {
            self.recovered_by_uptime();
        }
        let last_output = self.output.last();
        let h = self.health.as_mut()?;
        // In this order: output seen since the last check may end a silence first.
        let seen = last_output.map(|at| h.tracker.output_seen(at));
        let polled = h.tracker.poll(now);
        self.health_steps([seen, Some(polled)].into_iter().flatten(), now)
    }

    fn recovered_by_uptime(&mut self) {
        self.recover_at = None;
        if !self.troubled || !self.running {
            return;
        }
        self.troubled = false;
        let said = Event::Health(events::Health::Recovered {
            after: self.reset_after,
        });
        let mut alert = Alert::new(AlertKind::Recovered, SystemTime::now());
        alert.reason = Some(said.to_string());
        self.events.emit(said);
        self.send(alert);
    }

    /// Reports a verdict (line and `unhealthy` alert); returns the reason if the program
    /// must be restarted. `setting` names the key that chose the reaction.
    fn verdict(&mut self, v: Verdict, setting: &'static str) -> Option<String> {
        self.dirty = true;
        let restart = matches!(v, Verdict::Restart { .. });
        self.events.emit(Event::Health(events::Health::Unhealthy {
            reason: v.reason().to_owned(),
            setting,
            restart,
        }));
        let mut alert = Alert::new(AlertKind::Unhealthy, SystemTime::now());
        alert.reason = Some(v.reason().to_owned());
        self.send(alert);
        restart.then(|| v.reason().to_owned())
    }

    /// Whether alerts go anywhere: build them only then.
    pub(super) fn alerts_on(&self) -> bool {
        self.alerts_on
    }

    /// Emits an alert (never waits), when alerts go anywhere.
    pub(super) fn send(&self, mut alert: Alert) {
        if self.alerts_on {
            alert.restarts = self.restarts_total;
            self.events.emit(Event::Alert(Box::new(alert)));
        }
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

    pub(super) fn memory_bytes(&self) -> Option<u64> {
        self.memory_bytes
    }

    pub(super) fn cpu_percent(&self) -> Option<f64> {
        self.cpu_percent
    }

    /// At exit: waits (bounded) for queued alerts, stops the listener, writes the last
    /// textfile.
    pub(super) async fn finish(&mut self, delivered: bool) {
        if let Some(h) = &mut self.health
            && let Some(task) = h.in_flight.take()
        {
            task.abort();
        }
        if let Some(n) = self.alerts.replace(None) {
            // A subscriber stuck on an older event kept the newest alerts on the bus:
            // nothing else is left to deliver them, so they are handed over here.
            if !delivered {
                for alert in self.events.take_alerts() {
                    n.send(alert);
                }
            }
            let left = n.shutdown(ALERT_DRAIN).await;
            if left > 0 {
                self.events.emit(Event::AlertsUndelivered {
                    left,
                    after: ALERT_DRAIN,
                });
            }
        }
        if let Some(m) = self.metrics.take()
            && let Some(server) = m.server
        {
            server.abort();
        }
        self.metrics_out.finish(&self.events);
    }
}

/// The alerts' subscriber: hands each [`Event::Alert`] to tend-health's notifier, whose
/// task delivers it (bounded queue, oldest dropped, retries). The notifier is made on the
/// runtime (it spawns a task) and swapped here on a reload.
#[derive(Default)]
pub(super) struct AlertsOut {
    notifier: Mutex<Option<Notifier>>,
}

impl AlertsOut {
    /// Puts in `new` and returns the old notifier. Dropped, the old one still delivers
    /// what it queued, in the background: a reload must not lose an alert on its way.
    fn replace(&self, new: Option<Notifier>) -> Option<Notifier> {
        std::mem::replace(
            &mut *self
                .notifier
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            new,
        )
    }
}

impl Subscriber for AlertsOut {
    fn deliver(&self, e: &Delivered<'_>) {
        if let Event::Alert(alert) = e.event
            && let Some(n) = self
                .notifier
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
        {
            // Only queues: the notifier's task does the sending.
            n.send((**alert).clone());
        }
    }
}

/// Fills in the exit of `exit` (code, signal, or the spawn error as the reason).
pub(super) fn set_exit(alert: &mut Alert, exit: &Exit) {
    match exit {
        Exit::Code(c) => alert.exit_code = Some(*c),
        Exit::Signal(s) => alert.signal = Some(*s),
        Exit::SpawnFailed(e) => alert.reason = Some(events::spawn_failed(e)),
    }
}
