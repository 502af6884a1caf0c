//! [`OutputClock`]: when the program last wrote anything, shared between the log reader
//! threads (which stamp it) and the supervisor (which reads it when the silence watchdog's
//! deadline comes). Kept out of the pure tracker because stamping reads the clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A lock-free "last output" timestamp. Stamping costs one clock read and one atomic store,
/// so readers can call [`touch`](Self::touch) for every chunk they read.
#[derive(Debug)]
pub struct OutputClock {
    base: Instant,
    /// Nanoseconds after `base`, plus one; zero means "never".
    stamp: AtomicU64,
}

impl Default for OutputClock {
    fn default() -> Self {
        Self::new()
    }
}

impl OutputClock {
    /// A clock that has seen no output.
    #[must_use]
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            stamp: AtomicU64::new(0),
        }
    }

    /// Output was seen just now.
    pub fn touch(&self) {
        self.touch_at(Instant::now());
    }

    /// Output was seen at `at` (never moves the stamp back).
    pub fn touch_at(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.base).as_nanos();
        let v = u64::try_from(nanos)
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        self.stamp.fetch_max(v, Ordering::Relaxed);
    }

    /// When output was last seen.
    #[must_use]
    pub fn last(&self) -> Option<Instant> {
        match self.stamp.load(Ordering::Relaxed) {
            0 => None,
            v => Some(self.base + Duration::from_nanos(v - 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_only_move_forward() {
        let c = OutputClock::new();
        assert_eq!(c.last(), None);
        let t1 = Instant::now() + Duration::from_secs(5);
        c.touch_at(t1);
        assert_eq!(c.last(), Some(t1));
        c.touch_at(t1 - Duration::from_secs(1));
        assert_eq!(c.last(), Some(t1));
        c.touch();
        assert_eq!(c.last(), Some(t1), "now is before t1");
    }
}
