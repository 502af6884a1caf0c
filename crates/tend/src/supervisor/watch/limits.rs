//! `[limits]`: sampling the program's tree and checking its memory and CPU.

use std::time::Instant;

use tend_core::health::LimitsSpec;
use tend_health::LimitTracker;

use super::{Sampler, Watch};
use crate::events::{self, Event};
use crate::proc::Tree;

/// `[limits]` at work.
pub(super) struct Limits {
    pub(super) spec: LimitsSpec,
    pub(super) tracker: LimitTracker,
    pub(super) next_sample: Option<Instant>,
    /// The last sample failed: the failure was said, and is not said again at every
    /// sample until one succeeds.
    pub(super) failing: bool,
}

impl Watch {
    pub(super) fn set_limits(&mut self, spec: Option<&LimitsSpec>) {
        self.limits = spec.map(|spec| Limits {
            spec: spec.clone(),
            tracker: LimitTracker::new(spec),
            next_sample: None,
            failing: false,
        });
        if self.limits.is_some() && self.sampler.is_none() {
            let sampler = Sampler::for_service(&self.name);
            if !sampler.available() {
                self.events.emit(Event::Limits(events::Limits::Unsupported));
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
                // Status must not go on showing the last good numbers as current; the
                // next good sample is a new base.
                self.dirty |= self.memory_bytes.is_some();
                self.memory_bytes = None;
                self.cpu_percent = None;
                self.cpu_base = None;
                // Once per run of failures: a source that is gone stays gone, and a line
                // every `sample_every` would bury everything else.
                if !std::mem::replace(&mut l.failing, true) {
                    self.events
                        .emit(Event::Limits(events::Limits::Unmeasurable {
                            source: self
                                .sampler
                                .as_ref()
                                .map_or_else(String::new, Sampler::describe),
                            error: e.to_string(),
                        }));
                }
                return None;
            }
        };
        if std::mem::replace(&mut l.failing, false) {
            self.events
                .emit(Event::Limits(events::Limits::MeasurableAgain));
        }
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::{Sampler, Watch};
    use crate::events::Bus;

    #[test]
    fn a_tree_that_cannot_be_measured_is_said_once_not_at_every_sample() {
        let text = "name = \"svc\"\ncommand = [\"prog\"]\n[limits]\nmemory = \"1GiB\"\n";
        let spec = tend_config::parse(text, std::path::Path::new("svc.toml"), &Default::default())
            .expect("a valid config")
            .spec;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let bus = Bus::new();
        bus.subscribe(crate::events::lines(move |text, _| {
            seen.lock().unwrap().push(text.to_owned());
        }));
        let mut watch = Watch::new(&spec, bus.clone());
        let dir = tempfile::tempdir().unwrap();
        // A cgroup that is gone: every sample fails.
        watch.sampler = Some(Sampler::Cgroup(tend_health::sample::linux::Cgroup::at(
            dir.path().join("gone"),
        )));
        watch.running = true;
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(watch.sample(None, t0 + Duration::from_secs(5 * i)), None);
        }
        bus.flush(Duration::from_secs(5));
        let said = |what: &str| {
            lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(what))
                .count()
        };
        assert_eq!(
            said("cannot measure the program's tree"),
            1,
            "{:?}",
            lines.lock().unwrap()
        );
        // It comes back: said once, and a new failure is news again.
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        std::fs::write(dir.path().join("gone/memory.current"), "4096\n").unwrap();
        std::fs::write(dir.path().join("gone/cpu.stat"), "usage_usec 10\n").unwrap();
        watch.sample(None, t0 + Duration::from_secs(30));
        assert_eq!(watch.memory_bytes(), Some(4096));
        std::fs::remove_dir_all(dir.path().join("gone")).unwrap();
        watch.sample(None, t0 + Duration::from_secs(35));
        // What status shows is not the last good sample passed off as current.
        assert_eq!(watch.memory_bytes(), None);
        assert_eq!(watch.cpu_percent(), None);
        bus.flush(Duration::from_secs(5));
        assert_eq!(
            said("can be measured again"),
            1,
            "{:?}",
            lines.lock().unwrap()
        );
        assert_eq!(said("cannot measure the program's tree"), 2);
    }
}
