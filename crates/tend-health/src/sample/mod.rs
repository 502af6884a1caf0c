//! Measuring the program's whole process tree: memory and cumulative CPU time.
//!
//! Thin OS glue; the decisions live in [`crate::limits`]. Which source to use is the
//! runtime's choice, because only it knows how the tree is held:
//!
//! | source | OS | cost per sample | memory means |
//! |---|---|---|---|
//! | `linux::ProcessGroup` | Linux | a scan of `/proc/*/stat` (one small read per process on the machine) | sum of RSS of the group's processes |
//! | `linux::Cgroup` | Linux, cgroup v2 | three small file reads, whatever the tree's size | `memory.current` minus `inactive_file`: the cgroup's working set (RSS + kernel memory + page cache in active use) |
//! | `windows::sample_job` | Windows | one job query, then one open + query per process in the job | sum of working sets |
//!
//! Elsewhere (macOS) there is no sampler yet; `[limits]` should be refused there at config
//! time.

#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(windows)]
pub mod windows;

use std::io;
use std::time::Duration;

/// The tree at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Resident memory of the whole tree, in bytes (see the table above for what counts).
    pub memory_bytes: u64,
    /// CPU time (user + system) the source has accounted so far. Cumulative but not
    /// guaranteed monotonic (a process scan loses the CPU time of processes that exited);
    /// feed it through a [`CpuCounter`] for a counter.
    pub cpu_time: Duration,
    /// Processes counted, where the source knows.
    pub processes: Option<u32>,
}

/// Why a sample could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// Reading an accounting file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// the file
        path: String,
        /// the error
        source: io::Error,
    },
    /// An accounting file did not have the expected shape.
    #[error("unexpected content in {path}: {detail}")]
    Parse {
        /// the file
        path: String,
        /// what was wrong
        detail: String,
    },
    /// An OS call failed.
    #[error("{call} failed: {source}")]
    Os {
        /// the call
        call: &'static str,
        /// the error
        source: io::Error,
    },
}

/// Turns a cumulative CPU time that may drop (a process scan forgets processes that exited
/// and were not reaped inside the tree) into a monotonic total, for `tend_cpu_seconds_total`
/// and CPU averages. Only increases count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuCounter {
    last: Option<Duration>,
    total: Duration,
}

impl CpuCounter {
    /// Adds the increase since the previous observation and returns the total. The first
    /// observation is the baseline (adds nothing) unless [`tree_changed`](Self::tree_changed)
    /// said the source starts from zero.
    pub fn observe(&mut self, raw: Duration) -> Duration {
        if let Some(last) = self.last {
            self.total += raw.saturating_sub(last);
        }
        self.last = Some(raw);
        self.total
    }

    /// A new tree started whose accounting begins at zero (a new process group or job, so
    /// call it at every spawn); its first observation then counts in full. Not for a
    /// cgroup, whose counter outlives the program's runs.
    pub fn tree_changed(&mut self) {
        self.last = Some(Duration::ZERO);
    }

    /// The total so far.
    #[must_use]
    pub fn total(&self) -> Duration {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_counter_is_monotonic() {
        let ms = Duration::from_millis;
        let mut c = CpuCounter::default();
        assert_eq!(
            c.observe(ms(500)),
            ms(0),
            "first observation is the baseline"
        );
        assert_eq!(c.observe(ms(700)), ms(200));
        assert_eq!(c.observe(ms(100)), ms(200), "a drop adds nothing");
        assert_eq!(c.observe(ms(150)), ms(250));
        c.tree_changed();
        assert_eq!(c.observe(ms(40)), ms(290), "a new tree counts from zero");
        assert_eq!(c.total(), ms(290));
    }
}
