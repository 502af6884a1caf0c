//! A value written to disk by a thread of its own: the status file, the crash records and
//! the metrics text file are rewritten after events, and that file I/O must never be on the
//! supervisor's thread.

/// Writes the newest of a stream of values on a thread of its own, so that file I/O (a
/// rename can take milliseconds, a stalled disk forever) never delays a restart or a stop on
/// the supervisor's thread. Only the newest value matters: it replaces one not written yet,
/// so a writer that is stuck holds one value, not every value published meanwhile (a
/// restart loop on a stalled disk would otherwise grow without bound).
pub(crate) struct Background<T> {
    slot: std::sync::Arc<Slot<T>>,
    /// Starts the thread, at the first value: a writer that never gets one (the crash
    /// records of a program that has not crashed) costs no thread and no stack, which is
    /// most of what an idle tend is (bench/README.md, "Lazy writer threads").
    start: std::sync::Mutex<Option<Starter>>,
    /// Set once the thread runs: after that a publish is one atomic load more than before
    /// (the status file's writer publishes on every state change of the supervisor).
    running: std::sync::OnceLock<Running>,
}

type Starter = Box<dyn Fn() -> Option<Running> + Send>;

struct Running {
    thread: std::thread::JoinHandle<()>,
    /// Disconnected when the thread ends (its sender is dropped with it): what
    /// [`Background::finish`] waits on, with a deadline a join does not have.
    ended: std::sync::mpsc::Receiver<()>,
}

/// The value waiting for the writer, and whether more may come.
struct Slot<T> {
    state: std::sync::Mutex<Pending<T>>,
    changed: std::sync::Condvar,
}

struct Pending<T> {
    value: Option<T>,
    closed: bool,
}

impl<T> Slot<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending<T>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next value to write, not before `not_before` unless closed (then at once, so
    /// the last value is on disk before tend exits); `None` once closed and everything is
    /// written.
    fn next(&self, not_before: std::time::Instant) -> Option<T> {
        let mut p = self.lock();
        loop {
            if p.value.is_some() {
                let now = std::time::Instant::now();
                if p.closed || now >= not_before {
                    return p.value.take();
                }
                // Values published meanwhile replace this one: a burst is one write.
                p = self
                    .changed
                    .wait_timeout(p, not_before - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
                continue;
            }
            if p.closed {
                return None;
            }
            p = self
                .changed
                .wait(p)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_one();
    }
}

/// How long [`Background::finish`] waits for the last write. A healthy disk takes
/// milliseconds; a stalled one (a hung network mount) would otherwise keep tend from ever
/// exiting after the program stopped.
pub(crate) const FINISH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl<T: Send + 'static> Background<T> {
    /// The writer `name` (its thread starts with the first value); `write` stores one
    /// value; `on_error` is told about a failure once per run of failures. At most one write per `every`: a value published
    /// sooner after the last write waits (and is replaced by newer ones) until `every` has
    /// passed. A single event is written at once; a crash loop of hundreds of restarts a
    /// second costs one write per `every` instead of one per event (bench/README.md).
    pub(crate) fn spawn(
        name: &str,
        every: std::time::Duration,
        write: impl Fn(&T) -> std::io::Result<()> + Send + Sync + 'static,
        on_error: impl Fn(String) + Send + Sync + 'static,
    ) -> Self {
        let slot = std::sync::Arc::new(Slot {
            state: std::sync::Mutex::new(Pending {
                value: None,
                closed: false,
            }),
            changed: std::sync::Condvar::new(),
        });
        let queue = slot.clone();
        let name = name.to_owned();
        let write = std::sync::Arc::new(write);
        let on_error = std::sync::Arc::new(on_error);
        let start: Starter = Box::new(move || {
            let (ended_tx, ended) = std::sync::mpsc::channel::<()>();
            let (queue, write, told) = (queue.clone(), write.clone(), on_error.clone());
            let spawned = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    let _ended = ended_tx;
                    let mut broken = false;
                    let mut not_before = std::time::Instant::now();
                    while let Some(value) = queue.next(not_before) {
                        let result = write(&value);
                        not_before = std::time::Instant::now() + every;
                        match result {
                            Ok(()) => broken = false,
                            Err(e) if !broken => {
                                broken = true;
                                told(e.to_string());
                            }
                            Err(_) => {}
                        }
                    }
                });
            match spawned {
                Ok(thread) => Some(Running { thread, ended }),
                Err(e) => {
                    on_error(format!("cannot start the thread that writes it: {e}"));
                    None
                }
            }
        });
        Self {
            slot,
            start: std::sync::Mutex::new(Some(start)),
            running: std::sync::OnceLock::new(),
        }
    }

    /// Hands over a value, replacing one not written yet; never waits for the write.
    pub(crate) fn publish(&self, value: T) {
        self.publish_later(value);
        self.start();
    }

    /// [`publish`](Self::publish), except that a thread not started yet is left to
    /// [`start`](Self::start): for a caller with something more urgent to do first. Starting
    /// a thread (its stack mapped, the clone) took 0.1–0.3 ms of the first restart when the
    /// first crash record started its writer before the program was started again.
    pub(crate) fn publish_later(&self, value: T) {
        let mut p = self.slot.lock();
        if p.closed {
            return;
        }
        // A value already waiting means the writer waits for its time to write, and takes
        // the newest then: no need to wake it (a crash loop would wake each writer at every
        // restart only for it to go back to sleep).
        let waiting = p.value.replace(value).is_some();
        drop(p);
        if !waiting {
            self.slot.changed.notify_one();
        }
    }

    /// Writes what is queued and stops the thread (at exit, so the last value is on disk),
    /// waiting at most `within`. `false`: the write did not return in time; the thread is
    /// left to finish (or hang) on its own, and ends with the process.
    pub(crate) fn finish(mut self, within: std::time::Duration) -> bool {
        // A value handed over with `publish_later` and not started for yet.
        self.start();
        self.slot.close();
        // Never started: nothing was published, or the thread could not start (which was
        // told); then the value waiting is not written.
        let Some(r) = self.running.take() else {
            return self.slot.lock().value.is_none();
        };
        match r.ended.recv_timeout(within) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
            // Disconnected: the thread is past its last write.
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = r.thread.join();
                true
            }
        }
    }
}

impl<T> Background<T> {
    /// Starts the thread if a value waits for it and it has not started: a writer that
    /// never gets a value never gets a thread.
    pub(crate) fn start(&self) {
        if self.running.get().is_some() {
            return;
        }
        // Nothing to write, or closed (a `finish` already tried: `Drop` must not again).
        {
            let p = self.slot.lock();
            if p.value.is_none() || p.closed {
                return;
            }
        }
        let mut start = self
            .start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(starter) = start.as_ref() else {
            return;
        };
        // The first crash may come when the machine is out of threads or memory: a thread
        // that cannot start now is tried again at the next value (the failure is told).
        if let Some(r) = starter() {
            *start = None;
            let _ = self.running.set(r);
        }
    }
}

impl<T> Drop for Background<T> {
    /// A writer dropped without [`finish`](Background::finish) still writes what it holds,
    /// then its thread ends.
    fn drop(&mut self) {
        self.start();
        self.slot.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::{Duration, Instant};

    /// A writer that records every value it writes.
    fn recording(every: Duration) -> (Background<u32>, Arc<Mutex<Vec<u32>>>) {
        let written = Arc::new(Mutex::new(Vec::new()));
        let w = written.clone();
        let bg = Background::spawn(
            "test",
            every,
            move |v: &u32| {
                w.lock().unwrap().push(*v);
                Ok(())
            },
            |e| panic!("{e}"),
        );
        (bg, written)
    }

    #[test]
    fn a_value_that_waits_for_the_pace_is_written_at_its_end_without_a_wake_up() {
        // `publish` wakes only an idle writer; one pacing itself must still write the
        // newest value when its time comes, with no later publish or finish to wake it.
        let (bg, written) = recording(Duration::from_millis(200));
        bg.publish(1);
        bg.publish(2);
        bg.publish(3);
        let deadline = Instant::now() + Duration::from_secs(10);
        while written.lock().unwrap().last() != Some(&3) {
            assert!(Instant::now() < deadline, "{:?}", written.lock().unwrap());
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(bg.finish(FINISH_WAIT));
        assert!(written.lock().unwrap().len() <= 2);
    }

    #[test]
    fn no_thread_until_the_first_value() {
        let bg = Background::spawn("test", Duration::ZERO, |_: &u32| Ok(()), |e| panic!("{e}"));
        assert!(bg.running.get().is_none());
        assert!(bg.finish(FINISH_WAIT), "nothing to write");
        let (bg, written) = recording(Duration::ZERO);
        bg.publish(7);
        assert!(bg.running.get().is_some());
        assert!(bg.finish(FINISH_WAIT));
        assert_eq!(*written.lock().unwrap(), vec![7]);
    }

    #[test]
    fn a_value_published_later_waits_for_start_and_is_never_lost() {
        let bg = Background::spawn("test", Duration::ZERO, |_: &u32| Ok(()), |e| panic!("{e}"));
        bg.start();
        assert!(bg.running.get().is_none(), "no value, no thread");
        let (bg, written) = recording(Duration::ZERO);
        bg.publish_later(1);
        assert!(bg.running.get().is_none(), "started only by start()");
        bg.start();
        assert!(bg.running.get().is_some());
        assert!(bg.finish(FINISH_WAIT));
        assert_eq!(*written.lock().unwrap(), vec![1]);
        // Never started: finish starts the thread for the value, which is written.
        let (bg, written) = recording(Duration::ZERO);
        bg.publish_later(2);
        assert!(bg.finish(FINISH_WAIT));
        assert_eq!(*written.lock().unwrap(), vec![2]);
        // Dropped instead of finished: still written, by the thread the drop starts.
        let (bg, written) = recording(Duration::ZERO);
        bg.publish_later(3);
        drop(bg);
        let deadline = Instant::now() + Duration::from_secs(30);
        while written.lock().unwrap().is_empty() {
            assert!(
                Instant::now() < deadline,
                "the dropped writer's value was lost"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(*written.lock().unwrap(), vec![3]);
    }

    #[test]
    fn a_value_whose_thread_cannot_start_is_said_not_written_once() {
        let (bg, written) = recording(Duration::ZERO);
        let tries = Arc::new(Mutex::new(0));
        let counted = tries.clone();
        // As when the machine is out of threads.
        *bg.start.lock().unwrap() = Some(Box::new(move || {
            *counted.lock().unwrap() += 1;
            None
        }));
        bg.publish_later(1);
        assert!(
            !bg.finish(FINISH_WAIT),
            "said written, its thread never started"
        );
        assert!(written.lock().unwrap().is_empty());
        assert_eq!(
            *tries.lock().unwrap(),
            1,
            "the drop after finish tried again"
        );
    }

    #[test]
    fn finish_writes_the_newest_value() {
        let (bg, written) = recording(Duration::ZERO);
        bg.publish(1);
        bg.publish(2);
        assert!(bg.finish(FINISH_WAIT));
        assert_eq!(written.lock().unwrap().last(), Some(&2));
    }

    #[test]
    fn a_burst_is_one_write_and_finish_does_not_wait_for_the_pace() {
        let (bg, written) = recording(Duration::from_secs(30));
        for v in 1..=100 {
            bg.publish(v);
        }
        let started = Instant::now();
        assert!(bg.finish(FINISH_WAIT));
        // The first value may have been written at once; everything after it waited for
        // the pace, was replaced by the newest, and went at exit without the 30 s wait.
        assert!(started.elapsed() < Duration::from_secs(10));
        let written = written.lock().unwrap();
        assert!(written.len() <= 2, "{written:?}");
        assert_eq!(written.last(), Some(&100));
    }

    #[test]
    fn finish_does_not_wait_for_ever_on_a_write_that_hangs() {
        // A write that returns only when the test lets it: a stalled disk.
        let (release, stalled) = mpsc::channel::<()>();
        let stalled = Mutex::new(stalled);
        let bg = Background::spawn(
            "test",
            Duration::ZERO,
            move |_: &u32| {
                let _ = stalled.lock().unwrap().recv();
                Ok(())
            },
            |e| panic!("{e}"),
        );
        // Values that come while it is stuck: only the newest is kept.
        struct Counted(#[allow(dead_code)] Arc<()>);
        let live = Arc::new(());
        let (_hold, stuck) = mpsc::channel::<()>();
        let stuck = Mutex::new(stuck);
        let counted = Background::spawn(
            "test",
            Duration::ZERO,
            move |_: &Counted| {
                let _ = stuck.lock().unwrap().recv();
                Ok(())
            },
            |e| panic!("{e}"),
        );
        for _ in 0..1000 {
            counted.publish(Counted(live.clone()));
        }
        // One in the stuck write (or about to be), one waiting: never a queue.
        let kept = Arc::strong_count(&live) - 1;
        assert!(kept <= 2, "{kept} values kept");
        bg.publish(1);
        let asked = Instant::now();
        assert!(
            !bg.finish(Duration::from_millis(100)),
            "the write never returned"
        );
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "{:?}",
            asked.elapsed()
        );
        drop(release);
    }
}
