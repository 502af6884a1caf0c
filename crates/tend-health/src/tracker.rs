//! The health decision: a pure state machine, fed what happened and when.
//!
//! Like `tend_core::Machine`, [`HealthTracker`] never reads a clock and never does I/O: the
//! runtime passes `now`, runs the probes it is told to run, and acts on the returned
//! [`Step`]. That keeps every rule (grace, consecutive failures, silence) testable with
//! made-up instants.
//!
//! Rules:
//! - After each start the state is `Starting`, and the start period begins.
//! - A passing probe makes the program `Healthy` at once, even inside the start period, and
//!   ends the start period early (from then on every failure counts).
//! - A failing probe inside the start period does not count. After it, `failures`
//!   consecutive failures make the program `Unhealthy`; one pass resets the count.
//! - Silence: no output for `silence` makes the program `Unhealthy`, measured from the later
//!   of the start and the last output, and never before the start period ends. Output
//!   clears it.
//! - Without a probe (silence only), the program is `Healthy` once the start period ends.
//! - Entering `Unhealthy` yields one [`Verdict`] (restart or log); staying there yields no
//!   more, so `on_unhealthy = "log"` reports each episode once.

use std::time::{Duration, Instant};

use crate::fmt::duration as human;
use crate::probe::ProbeOutcome;
use crate::spec::{HealthSpec, Reaction};

/// The first probe after a start runs this soon (or after `interval`, if shorter), so a
/// program that is up quickly is reported healthy quickly.
pub const FIRST_PROBE_AFTER: Duration = Duration::from_secs(1);

/// The program's health as tend reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthState {
    /// Just started (or not running): no verdict yet.
    Starting,
    /// The last check passed (or, without a probe, the start period is over and the
    /// program is not silent).
    Healthy,
    /// In trouble.
    Unhealthy {
        /// Why, readable.
        reason: String,
    },
}

impl HealthState {
    /// Short lowercase name for status output and metrics.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy { .. } => "unhealthy",
        }
    }

    fn same_kind(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// What tend should do about a program in trouble (health or limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Restart it; the run counts as failed for the backoff and the restart limit.
    Restart {
        /// Why, readable.
        reason: String,
    },
    /// Only report it.
    LogOnly {
        /// Why, readable.
        reason: String,
    },
}

impl Verdict {
    pub(crate) fn new(reaction: Reaction, reason: String) -> Self {
        match reaction {
            Reaction::Restart => Self::Restart { reason },
            Reaction::Log => Self::LogOnly { reason },
        }
    }

    /// Why.
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Self::Restart { reason } | Self::LogOnly { reason } => reason,
        }
    }
}

/// A change of [`HealthState`] kind (a new reason alone is not a change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Before.
    pub from: HealthState,
    /// After.
    pub to: HealthState,
    /// `to` is `Healthy` and the program was unhealthy, or exited unexpectedly, since it was
    /// last healthy: the `recovered` alert.
    pub recovered: bool,
}

/// What one input led to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Step {
    /// The state changed.
    pub change: Option<Change>,
    /// Act on this (at most one per unhealthy episode).
    pub verdict: Option<Verdict>,
}

/// Ties a probe's result to the run it was started in, so a result that arrives after a
/// restart cannot judge the new run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTicket {
    run: u64,
}

/// The health state machine for one service.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    has_probe: bool,
    interval: Duration,
    start_period: Duration,
    failures: u32,
    silence: Option<Duration>,
    reaction: Reaction,

    /// Counts starts; tickets from an older run are stale.
    run: u64,
    running: bool,
    started: Option<Instant>,
    in_flight: bool,
    last_probe_end: Option<Instant>,
    last_outcome: Option<ProbeOutcome>,
    /// A probe passed in this run: the start period is over.
    passed: bool,
    consecutive: u32,
    probe_fault: Option<String>,
    last_output: Option<Instant>,
    silence_fault: Option<String>,
    /// Without a probe: the start period ended.
    grace_over: bool,
    /// Unhealthy or crashed since last healthy (for `recovered`).
    troubled: bool,
    state: HealthState,
}

impl HealthTracker {
    /// A tracker for `[health]`, waiting for the first start.
    #[must_use]
    pub fn new(spec: &HealthSpec) -> Self {
        Self {
            has_probe: spec.check.is_some(),
            interval: spec.interval,
            start_period: spec.start_period,
            failures: spec.failures.max(1),
            silence: spec.silence,
            reaction: spec.on_unhealthy,
            run: 0,
            running: false,
            started: None,
            in_flight: false,
            last_probe_end: None,
            last_outcome: None,
            passed: false,
            consecutive: 0,
            probe_fault: None,
            last_output: None,
            silence_fault: None,
            grace_over: false,
            troubled: false,
            state: HealthState::Starting,
        }
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> &HealthState {
        &self.state
    }

    /// Counted consecutive probe failures in this run.
    #[must_use]
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    /// The latest probe result of this run, counted or not (for status).
    #[must_use]
    pub fn last_outcome(&self) -> Option<&ProbeOutcome> {
        self.last_outcome.as_ref()
    }

    /// The program (re)started at `now`: back to `Starting`, a new start period.
    pub fn program_started(&mut self, now: Instant) -> Step {
        self.update(|s| {
            s.run += 1;
            s.running = true;
            s.started = Some(now);
            s.in_flight = false;
            s.last_probe_end = None;
            s.last_outcome = None;
            s.passed = false;
            s.consecutive = 0;
            s.probe_fault = None;
            s.last_output = None;
            s.silence_fault = None;
            s.grace_over = s.start_period.is_zero();
        })
    }

    /// The program's run ended. `unexpected`: it was not stopped on purpose (a crash, or a
    /// restart because of a verdict), so becoming healthy again is a recovery. The state
    /// quietly returns to `Starting`; no probe is due until the next start.
    pub fn program_exited(&mut self, unexpected: bool) {
        self.running = false;
        self.in_flight = false;
        self.troubled |= unexpected;
        self.state = HealthState::Starting;
    }

    /// When the next probe should start: `None` without a probe, while one is in flight, or
    /// while the program is not running. Probes are spaced `interval` from the end of the
    /// previous one, so a slow probe never overlaps the next.
    #[must_use]
    pub fn next_probe_at(&self) -> Option<Instant> {
        if !self.has_probe || !self.running || self.in_flight {
            return None;
        }
        match self.last_probe_end {
            Some(end) => Some(end + self.interval),
            None => self
                .started
                .map(|s| s + self.interval.min(FIRST_PROBE_AFTER)),
        }
    }

    /// A probe starts now; hand its result back with this ticket.
    pub fn probe_begun(&mut self) -> ProbeTicket {
        self.in_flight = true;
        ProbeTicket { run: self.run }
    }

    /// A probe finished at `now`. Results from an earlier run are ignored.
    pub fn probe_finished(
        &mut self,
        ticket: ProbeTicket,
        outcome: &ProbeOutcome,
        now: Instant,
    ) -> Step {
        if ticket.run != self.run || !self.running {
            return Step::default();
        }
        self.update(|s| {
            s.in_flight = false;
            s.last_probe_end = Some(now);
            s.last_outcome = Some(outcome.clone());
            match outcome {
                ProbeOutcome::Healthy { .. } => {
                    s.passed = true;
                    s.consecutive = 0;
                    s.probe_fault = None;
                }
                ProbeOutcome::Unhealthy { reason, .. } => {
                    if s.in_grace(now) {
                        return;
                    }
                    s.consecutive += 1;
                    if s.consecutive >= s.failures {
                        s.probe_fault = Some(if s.failures == 1 {
                            format!("health check failed: {reason}")
                        } else {
                            format!(
                                "health check failed {} times in a row: {reason}",
                                s.consecutive
                            )
                        });
                    }
                }
            }
        })
    }

    /// The program last wrote to stdout or stderr at `at`. Only the latest time matters, so
    /// the runtime may feed it lazily (e.g. from an [`OutputClock`](crate::OutputClock)
    /// right before [`poll`](Self::poll)); a time already known, or from before this run
    /// started, changes nothing.
    pub fn output_seen(&mut self, at: Instant) -> Step {
        let stale =
            self.started.is_none_or(|s| at < s) || self.last_output.is_some_and(|l| at <= l);
        if !self.running || stale {
            return Step::default();
        }
        self.update(|s| {
            s.last_output = Some(at);
            s.silence_fault = None;
        })
    }

    /// The earliest instant at which [`poll`](Self::poll) has something to decide (silence,
    /// or the end of the start period without a probe). Arm a timer for it.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.running {
            return None;
        }
        let silence = self
            .silence_deadline()
            .filter(|_| self.silence_fault.is_none());
        let grace = self
            .started
            .map(|s| s + self.start_period)
            .filter(|_| !self.has_probe && !self.grace_over);
        match (silence, grace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: checks the silence watchdog and the end of the start period.
    pub fn poll(&mut self, now: Instant) -> Step {
        if !self.running {
            return Step::default();
        }
        self.update(|s| {
            if let Some(started) = s.started
                && now >= started + s.start_period
            {
                s.grace_over = true;
            }
            if s.silence_fault.is_none()
                && let Some(deadline) = s.silence_deadline()
                && now >= deadline
            {
                let since = s.last_output.or(s.started).unwrap_or(now);
                s.silence_fault = Some(format!(
                    "no output on stdout or stderr for {} (health.silence)",
                    human(now.saturating_duration_since(since))
                ));
            }
        })
    }

    fn in_grace(&self, now: Instant) -> bool {
        !self.passed && self.started.is_some_and(|s| now < s + self.start_period)
    }

    fn silence_deadline(&self) -> Option<Instant> {
        let silence = self.silence?;
        let started = self.started?;
        let last = self.last_output.unwrap_or(started).max(started);
        Some((last + silence).max(started + self.start_period))
    }

    fn derive(&self) -> HealthState {
        if let Some(reason) = self.probe_fault.as_ref().or(self.silence_fault.as_ref()) {
            return HealthState::Unhealthy {
                reason: reason.clone(),
            };
        }
        let ok = if self.has_probe {
            self.passed
        } else {
            self.grace_over
        };
        if ok {
            HealthState::Healthy
        } else {
            HealthState::Starting
        }
    }

    /// Applies `f`, then works out the new state, the change and the verdict.
    fn update(&mut self, f: impl FnOnce(&mut Self)) -> Step {
        let before = self.state.clone();
        f(self);
        let after = self.derive();
        self.state = after.clone();
        let mut step = Step::default();
        if before.same_kind(&after) {
            return step;
        }
        let recovered = after == HealthState::Healthy && self.troubled;
        match &after {
            HealthState::Healthy => self.troubled = false,
            HealthState::Unhealthy { reason } => {
                self.troubled = true;
                step.verdict = Some(Verdict::new(self.reaction, reason.clone()));
            }
            HealthState::Starting => {}
        }
        step.change = Some(Change {
            from: before,
            to: after,
            recovered,
        });
        step
    }
}

#[cfg(test)]
mod tests;
