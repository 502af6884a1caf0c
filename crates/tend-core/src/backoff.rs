//! Exponential backoff and the sliding-window restart ledger.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::RestartSpec;

/// The delay before restart number `consecutive` (1-based) since the last healthy run:
/// `delay * multiplier^(consecutive - 1)`, capped at `max_delay`.
#[must_use]
pub fn delay_for(spec: &RestartSpec, consecutive: u32) -> Duration {
    if spec.delay.is_zero() {
        return Duration::ZERO;
    }
    let exp = consecutive.saturating_sub(1).min(1024);
    let exp = i32::try_from(exp).unwrap_or(i32::MAX);
    let secs = spec.delay.as_secs_f64() * spec.multiplier.powi(exp);
    // Also covers overflow to infinity and NaN: anything not below the cap is the cap.
    if secs.is_finite() && secs < spec.max_delay.as_secs_f64() {
        Duration::from_secs_f64(secs)
    } else {
        spec.max_delay.max(spec.delay)
    }
}

/// What the machine remembers about past restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Restarts since the last healthy run (drives the backoff).
    pub consecutive: u32,
    /// When each restart within the limit window was decided, oldest first.
    pub window: VecDeque<Instant>,
    /// Restarts over the whole life of this supervisor.
    pub total: u64,
}

impl Ledger {
    /// Forget the backoff and the window (a healthy run, or an operator's start).
    pub fn reset(&mut self) {
        self.consecutive = 0;
        self.window.clear();
    }

    /// Drops restarts that left the window. A zero window keeps nothing: no limit applies.
    pub fn prune(&mut self, spec: &RestartSpec, now: Instant) {
        while let Some(&t) = self.window.front() {
            if now.saturating_duration_since(t) >= spec.limit_window || spec.limit_window.is_zero()
            {
                self.window.pop_front();
            } else {
                break;
            }
        }
    }

    /// Restarts counted against the limit at `now`.
    #[must_use]
    pub fn in_window(&self, spec: &RestartSpec, now: Instant) -> u32 {
        let n = self
            .window
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < spec.limit_window)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Whether one more restart would exceed the limit.
    #[must_use]
    pub fn exhausted(&self, spec: &RestartSpec, now: Instant) -> bool {
        limit_enabled(spec) && self.in_window(spec, now) >= spec.limit
    }

    /// Records a restart decided at `now` and returns its backoff delay.
    pub fn record(&mut self, spec: &RestartSpec, now: Instant) -> Duration {
        self.consecutive = self.consecutive.saturating_add(1);
        self.total += 1;
        if limit_enabled(spec) {
            self.window.push_back(now);
        }
        delay_for(spec, self.consecutive)
    }
}

/// `limit = 0` or `limit_window = "0s"` means tend never gives up.
#[must_use]
pub fn limit_enabled(spec: &RestartSpec) -> bool {
    spec.limit > 0 && !spec.limit_window.is_zero()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(delay: u64, max: u64, mult: f64) -> RestartSpec {
        RestartSpec {
            delay: Duration::from_secs(delay),
            max_delay: Duration::from_secs(max),
            multiplier: mult,
            ..RestartSpec::default()
        }
    }

    #[test]
    fn exact_sequence_capped() {
        let s = spec(1, 60, 2.0);
        let got: Vec<u64> = (1..=9).map(|n| delay_for(&s, n).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn zero_delay_stays_zero() {
        let s = spec(0, 60, 2.0);
        assert!((1..100).all(|n| delay_for(&s, n).is_zero()));
    }

    #[test]
    fn multiplier_one_is_constant_and_huge_counts_do_not_overflow() {
        let s = spec(3, 60, 1.0);
        assert_eq!(delay_for(&s, 50), Duration::from_secs(3));
        let s = spec(1, 60, 10.0);
        assert_eq!(delay_for(&s, u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn max_below_delay_uses_delay() {
        let s = spec(10, 5, 2.0);
        assert_eq!(delay_for(&s, 3), Duration::from_secs(10));
    }

    #[test]
    fn window_slides() {
        let s = RestartSpec {
            limit: 2,
            limit_window: Duration::from_secs(60),
            ..RestartSpec::default()
        };
        let t0 = Instant::now();
        let mut l = Ledger::default();
        l.record(&s, t0);
        l.record(&s, t0 + Duration::from_secs(30));
        assert!(l.exhausted(&s, t0 + Duration::from_secs(59)));
        assert!(!l.exhausted(&s, t0 + Duration::from_secs(60)));
        l.prune(&s, t0 + Duration::from_secs(60));
        assert_eq!(l.window.len(), 1);
        assert_eq!(l.total, 2);
    }
}
