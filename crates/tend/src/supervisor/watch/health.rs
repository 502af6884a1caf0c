//! `[health]`: probes and the silence watchdog, fed from the supervisor's loop.

use std::time::{Duration, Instant, SystemTime};

use tend_core::health::{HealthSpec, Reaction};
use tend_health::tracker::{ProbeTicket, Step};
use tend_health::{Alert, AlertKind, HealthState, HealthTracker, Probe, ProbeOutcome};
use tokio::task::JoinHandle;

use super::Watch;
use crate::events::{self, Event};
use crate::status::{self, HealthStatus, ProbeStatus};

/// While the silence watchdog holds the program unhealthy and it is left running
/// (`on_unhealthy = "log"`), how often the output clock is looked at to notice that output
/// resumed. Only in that state: a healthy or stopped program arms no such timer.
const SILENCE_RECHECK: Duration = Duration::from_secs(1);

/// A probe's result on its way back to the loop.
pub(in crate::supervisor) struct ProbeDone {
    /// The [`Health::generation`] it was started in: a reload replaces the tracker, whose
    /// tickets would otherwise be mistaken for the new one's.
    generation: u64,
    ticket: ProbeTicket,
    outcome: ProbeOutcome,
    at: SystemTime,
}

/// `[health]` at work.
pub(super) struct Health {
    pub(super) spec: HealthSpec,
    pub(super) tracker: HealthTracker,
    pub(super) probe: Option<Probe>,
    pub(super) generation: u64,
    pub(super) in_flight: Option<JoinHandle<()>>,
    /// When the latest probe result arrived (wall clock, for status).
    pub(super) last_probe_at: Option<SystemTime>,
    /// Set while the silence watchdog holds a program that is left running unhealthy.
    pub(super) recheck_at: Option<Instant>,
}

impl Watch {
    pub(super) fn set_health(&mut self, spec: Option<&HealthSpec>) {
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

    pub(in crate::supervisor) fn next_probe_at(&self) -> Option<Instant> {
        self.health
            .as_ref()
            .filter(|h| h.probe.is_some())
            .and_then(|h| h.tracker.next_probe_at())
    }

    /// Starts the probe that is due, as a task of its own: a slow check never holds up the
    /// loop (a stop, an exit, a restart).
    pub(in crate::supervisor) fn begin_probe(&mut self) {
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

    pub(in crate::supervisor) fn probe_finished(
        &mut self,
        done: ProbeDone,
        now: Instant,
    ) -> Option<String> {
        let last_output = self.output.last();
        let h = self.health.as_mut()?;
        if done.generation != h.generation {
            return None;
        }
        h.in_flight = None;
        let before = h.tracker.consecutive_failures();
        let seen = last_output.map(|at| h.tracker.output_seen(at));
        let probed = h.tracker.probe_finished(done.ticket, &done.outcome, now);
        if h.tracker.last_outcome() == Some(&done.outcome) {
            h.last_probe_at = Some(done.at);
        }
        let after = h.tracker.consecutive_failures();
        // Failures below the threshold, so the log shows the trouble building up (the one
        // that crosses it is reported with the verdict).
        if after > before && !matches!(h.tracker.state(), HealthState::Unhealthy { .. }) {
            self.events.emit(Event::Health(events::Health::CheckFailed {
                in_a_row: after,
                of: h.spec.failures,
                text: done.outcome.text().to_owned(),
            }));
        }
        self.health_steps([seen, Some(probed)].into_iter().flatten(), now)
    }

    /// Acts on what the tracker decided: lines, alerts, and the restart reason.
    pub(super) fn health_steps(
        &mut self,
        steps: impl IntoIterator<Item = Step>,
        now: Instant,
    ) -> Option<String> {
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
                        let alert = change.recovered.then(|| {
                            let mut a = Alert::new(AlertKind::Recovered, SystemTime::now());
                            a.reason = Some(detail.clone());
                            a
                        });
                        self.events.emit(Event::Health(events::Health::Healthy {
                            detail,
                            again: change.recovered,
                        }));
                        if let Some(alert) = alert {
                            self.send(alert);
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

    pub(in crate::supervisor) fn health_status(&self) -> Option<HealthStatus> {
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
}
