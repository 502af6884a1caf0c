//! `[limits]`: sampling the program's tree and checking its memory and CPU.

use std::time::Instant;

use tend_core::health::LimitsSpec;
use tend_health::LimitTracker;

use super::{Sampler, Watch};
use crate::proc::Tree;

/// `[limits]` at work.
pub(super) struct Limits {
    pub(super) spec: LimitsSpec,
    pub(super) tracker: LimitTracker,
    pub(super) next_sample: Option<Instant>,
}

impl Watch {
    pub(super) fn set_limits(&mut self, spec: Option<&LimitsSpec>) {
        self.limits = spec.map(|spec| Limits {
            spec: spec.clone(),
            tracker: LimitTracker::new(spec),
            next_sample: None,
        });
        if self.limits.is_some() && self.sampler.is_none() {
            let sampler = Sampler::for_service(&self.name);
            if !sampler.available() {
                self.reporter
                    .warn("[limits] is ignored: the process tree cannot be measured on this OS");
            }
            self.sampler = Some(sampler);
        }
        if self.limits.is_none() {
            self.memory_bytes = None;
            self.cpu_percent = None;
        }
    }

    pub(in crate::supervisor) fn next_sample_at(&self) -> Option<Instant> {
        self.sampler
            .as_ref()
            .filter(|s| s.available())
            .and(self.limits.as_ref()?.next_sample)
    }

    /// Measures the tree (a small blocking read: two files for a cgroup, a `/proc` scan for
    /// a process group, a job query on Windows) and checks the limits.
    pub(in crate::supervisor) fn sample(
        &mut self,
        tree: Option<&Tree>,
        now: Instant,
    ) -> Option<String> {
        let l = self.limits.as_mut()?;
        l.next_sample = self.running.then(|| now + l.spec.sample_every);
        let result = self.sampler.as_ref()?.sample(tree)?;
        let sample = match result {
            Ok(s) => s,
            Err(e) => {
                self.reporter.failure(&format!(
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
}
