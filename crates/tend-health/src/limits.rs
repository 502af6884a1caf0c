//! The resource-limit decision: pure, fed with [`Sample`]s and the instants they were taken.
//!
//! - Memory: the tree's memory must stay above `memory` for `memory_for` (every sample in
//!   between above it) before tend acts; a spike shorter than that is not punished.
//! - CPU: the average over the last `cpu_for`, computed from cumulative CPU time, must
//!   exceed `cpu_percent` (100 = one core). No decision until a full window of samples
//!   exists in the current run.
//!
//! Each breach yields one [`Verdict`]; it re-arms once the value is back under the limit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::fmt::{bytes, duration as human};
use crate::sample::{CpuCounter, Sample};
use crate::spec::LimitsSpec;
use crate::tracker::Verdict;

/// The limits state machine for one service.
#[derive(Debug, Clone)]
pub struct LimitTracker {
    spec: LimitsSpec,
    running: bool,
    memory_above_since: Option<Instant>,
    memory_tripped: bool,
    last_memory: Option<u64>,
    cpu: CpuCounter,
    /// (when, monotonic CPU time of this run): the averaging window plus one base sample.
    window: VecDeque<(Instant, Duration)>,
    cpu_tripped: bool,
    last_cpu_percent: Option<f64>,
}

impl LimitTracker {
    /// A tracker for `[limits]`.
    #[must_use]
    pub fn new(spec: &LimitsSpec) -> Self {
        Self {
            spec: spec.clone(),
            running: false,
            memory_above_since: None,
            memory_tripped: false,
            last_memory: None,
            cpu: CpuCounter::default(),
            window: VecDeque::new(),
            cpu_tripped: false,
            last_cpu_percent: None,
        }
    }

    /// A new run began: forget the previous run's samples.
    pub fn program_started(&mut self) {
        *self = Self {
            running: true,
            ..Self::new(&self.spec)
        };
    }

    /// The run ended: samples are no longer meaningful.
    pub fn program_exited(&mut self) {
        self.running = false;
        self.window.clear();
        self.memory_above_since = None;
    }

    /// The tree's memory at the last sample.
    #[must_use]
    pub fn memory_bytes(&self) -> Option<u64> {
        self.last_memory
    }

    /// The CPU average over `cpu_for` at the last sample (percent of one core), once a full
    /// window exists.
    #[must_use]
    pub fn cpu_percent(&self) -> Option<f64> {
        self.last_cpu_percent
    }

    /// One sample taken at `now`. Returns a verdict when a limit is newly breached (memory
    /// first if both are).
    pub fn observe(&mut self, sample: &Sample, now: Instant) -> Option<Verdict> {
        if !self.running {
            return None;
        }
        self.last_memory = Some(sample.memory_bytes);
        let memory = self.check_memory(sample.memory_bytes, now);
        let cpu = self.check_cpu(sample.cpu_time, now);
        memory.or(cpu)
    }

    fn check_memory(&mut self, used: u64, now: Instant) -> Option<Verdict> {
        let limit = self.spec.memory?;
        if used <= limit {
            self.memory_above_since = None;
            self.memory_tripped = false;
            return None;
        }
        let since = *self.memory_above_since.get_or_insert(now);
        let above_for = now.saturating_duration_since(since);
        if self.memory_tripped || above_for < self.spec.memory_for {
            return None;
        }
        self.memory_tripped = true;
        Some(Verdict::new(
            self.spec.action,
            format!(
                "memory {} above the {} limit for {} (limits.memory)",
                bytes(used),
                bytes(limit),
                human(above_for)
            ),
        ))
    }

    fn check_cpu(&mut self, raw: Duration, now: Instant) -> Option<Verdict> {
        let total = self.cpu.observe(raw);
        self.window.push_back((now, total));
        let percent = self.average(now)?;
        self.last_cpu_percent = Some(percent);
        let limit = self.spec.cpu_percent?;
        if percent <= limit {
            self.cpu_tripped = false;
            return None;
        }
        if self.cpu_tripped {
            return None;
        }
        self.cpu_tripped = true;
        Some(Verdict::new(
            self.spec.action,
            format!(
                "CPU {percent:.0}% of one core on average over {}, above the {limit}% limit \
                 (limits.cpu_percent)",
                human(self.spec.cpu_for)
            ),
        ))
    }

    /// Average CPU percent between the newest sample and the newest one at least `cpu_for`
    /// older (the base); older samples are dropped. `None` while the window is not full.
    fn average(&mut self, now: Instant) -> Option<f64> {
        let (_, total) = *self.window.back()?;
        let cutoff = now.checked_sub(self.spec.cpu_for)?;
        // Keep the newest sample at or before the cutoff as the base, drop what is older.
        while self.window.len() > 2 && self.window[1].0 <= cutoff {
            self.window.pop_front();
        }
        let (base_at, base_total) = *self.window.front()?;
        if base_at > cutoff || self.window.len() < 2 {
            return None;
        }
        let span = now.saturating_duration_since(base_at);
        if span.is_zero() {
            return None;
        }
        let used = total.saturating_sub(base_total);
        Some(used.as_secs_f64() / span.as_secs_f64() * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Reaction;

    const MIB: u64 = 1024 * 1024;

    fn sample(memory_mib: u64, cpu_ms: u64) -> Sample {
        Sample {
            memory_bytes: memory_mib * MIB,
            cpu_time: Duration::from_millis(cpu_ms),
            processes: Some(1),
        }
    }

    fn show(v: Option<Verdict>) -> String {
        match v {
            None => String::new(),
            Some(Verdict::Restart { reason }) => format!("restart: {reason}"),
            Some(Verdict::LogOnly { reason }) => format!("log: {reason}"),
        }
    }

    /// Rows of (seconds after start, memory MiB, cumulative CPU ms, expected verdict text).
    fn run(name: &str, spec: &LimitsSpec, rows: &[(u64, u64, u64, &str)]) -> LimitTracker {
        let base = Instant::now();
        let mut t = LimitTracker::new(spec);
        t.program_started();
        for (i, (s, mem, cpu, want)) in rows.iter().enumerate() {
            let got = show(t.observe(&sample(*mem, *cpu), base + Duration::from_secs(*s)));
            assert_eq!(got, *want, "{name}: row {i} at {s}s");
        }
        t
    }

    fn memory_spec(action: Reaction) -> LimitsSpec {
        LimitsSpec {
            memory: Some(512 * MIB),
            action,
            ..LimitsSpec::default()
        }
    }

    #[test]
    fn memory() {
        let restart = memory_spec(Reaction::Restart);
        type Row = (u64, u64, u64, &'static str);
        let cases: [(&str, &LimitsSpec, Vec<Row>); 4] = [
            (
                "a short spike is not acted on",
                &restart,
                vec![
                    (0, 100, 0, ""),
                    (5, 900, 0, ""),
                    (10, 900, 0, ""),
                    (30, 900, 0, ""),
                    (34, 100, 0, ""),
                    (40, 900, 0, ""),
                    (65, 900, 0, ""),
                ],
            ),
            (
                "above the limit for memory_for acts once",
                &restart,
                vec![
                    (0, 600, 0, ""),
                    (5, 600, 0, ""),
                    (29, 600, 0, ""),
                    (
                        30,
                        600,
                        0,
                        "restart: memory 600.0 MiB above the 512.0 MiB limit for 30s (limits.memory)",
                    ),
                    (35, 700, 0, ""),
                ],
            ),
            (
                "exactly at the limit is not above it",
                &restart,
                vec![(0, 512, 0, ""), (60, 512, 0, "")],
            ),
            (
                "log re-arms after dropping below",
                &memory_spec(Reaction::Log),
                vec![
                    (0, 600, 0, ""),
                    (
                        30,
                        600,
                        0,
                        "log: memory 600.0 MiB above the 512.0 MiB limit for 30s (limits.memory)",
                    ),
                    (60, 600, 0, ""),
                    (65, 100, 0, ""),
                    (70, 600, 0, ""),
                    (
                        100,
                        600,
                        0,
                        "log: memory 600.0 MiB above the 512.0 MiB limit for 30s (limits.memory)",
                    ),
                ],
            ),
        ];
        for (name, spec, rows) in &cases {
            run(name, spec, rows);
        }
        let zero = LimitsSpec {
            memory_for: Duration::ZERO,
            ..restart
        };
        run(
            "memory_for = 0 acts on the first sample above",
            &zero,
            &[(
                0,
                513,
                0,
                "restart: memory 513.0 MiB above the 512.0 MiB limit for 0ms (limits.memory)",
            )],
        );
    }

    fn cpu_spec() -> LimitsSpec {
        LimitsSpec {
            cpu_percent: Some(90.0),
            cpu_for: Duration::from_secs(20),
            ..LimitsSpec::default()
        }
    }

    #[test]
    fn cpu() {
        // Cumulative CPU ms: a 100% core adds 1000 ms per second.
        let spec = cpu_spec();
        let t = run(
            "busy for a full window",
            &spec,
            &[
                (0, 1, 0, ""),
                (10, 1, 10_000, ""),
                (19, 1, 19_000, ""),
                (
                    20,
                    1,
                    20_000,
                    "restart: CPU 100% of one core on average over 20s, above the 90% limit (limits.cpu_percent)",
                ),
                (25, 1, 25_000, ""),
            ],
        );
        assert_eq!(t.cpu_percent().map(f64::round), Some(100.0));

        run(
            "a burst inside the window averages out",
            &spec,
            &[
                (0, 1, 0, ""),
                (5, 1, 5_000, ""),
                (10, 1, 5_000, ""),
                (20, 1, 5_100, ""),
                (25, 1, 10_100, ""),
            ],
        );

        let t = run(
            "two busy cores",
            &LimitsSpec {
                cpu_percent: Some(150.0),
                ..spec.clone()
            },
            &[
                (0, 1, 0, ""),
                (
                    20,
                    1,
                    40_000,
                    "restart: CPU 200% of one core on average over 20s, above the 150% limit (limits.cpu_percent)",
                ),
            ],
        );
        assert_eq!(t.cpu_percent().map(f64::round), Some(200.0));

        // A process of the group exits: the summed CPU time drops. That is not negative
        // usage; the window keeps counting from there.
        let t = run(
            "CPU time that drops is not negative usage",
            &spec,
            &[(0, 1, 10_000, ""), (10, 1, 2_000, ""), (20, 1, 3_000, "")],
        );
        assert_eq!(t.cpu_percent().map(f64::round), Some(5.0));
    }

    #[test]
    fn a_restart_needs_a_new_full_window() {
        let base = Instant::now();
        let at = |s: u64| base + Duration::from_secs(s);
        let mut t = LimitTracker::new(&cpu_spec());
        assert_eq!(t.observe(&sample(1, 0), at(0)), None, "not running yet");
        t.program_started();
        assert_eq!(t.observe(&sample(1, 0), at(0)), None);
        assert!(t.observe(&sample(1, 20_000), at(20)).is_some());
        t.program_exited();
        t.program_started();
        assert_eq!(t.cpu_percent(), None);
        assert_eq!(t.observe(&sample(1, 0), at(21)), None);
        assert_eq!(t.observe(&sample(1, 10_000), at(31)), None, "half a window");
        assert_eq!(t.memory_bytes(), Some(MIB));
    }
}
