//! The threads that read the program's pipes, kept from one run to the next.
//!
//! Every run has two pipes, and each needs a blocking reader of its own (a grandchild may
//! hold a pipe open after the run, and its reader must not hold up anything). A thread per
//! pipe per run meant two thread starts and two thread ends per restart: a stack mapping,
//! its guard page, a signal stack and TLS each way, CPU taken while the next program loads
//! (bench/README.md, issue 16). So a reader whose pipe reached its end waits here for the
//! next run's pipe, for [`IDLE`] at most, and a new thread starts only when no reader is
//! free: the one a stray grandchild still holds stays busy, and the count never drops below
//! what the old thread-per-pipe code had.

use std::any::Any;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread;
use std::time::Duration;

/// How long a free reader waits for the next run before its thread ends. Restarts without
/// delay reuse it; a service that stays stopped holds no idle thread for long.
pub(crate) const IDLE: Duration = Duration::from_secs(30);

/// One pipe's reading, on whichever thread took it. Like a [`std::thread::JoinHandle`]:
/// ask whether it finished, or wait for it.
#[derive(Debug)]
pub struct Reader {
    done: Arc<Done>,
}

type Outcome = Result<(), Box<dyn Any + Send>>;

#[derive(Debug, Default)]
struct Done {
    outcome: Mutex<Option<Outcome>>,
    cv: Condvar,
}

impl Done {
    fn finish(&self, outcome: Outcome) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        self.cv.notify_all();
    }
}

impl Reader {
    /// Whether the pipe was read to its end (or its reading failed), and the pipe closed.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.done
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Waits until [`is_finished`](Self::is_finished).
    ///
    /// # Errors
    ///
    /// The panic's payload if the reading panicked, as [`std::thread::JoinHandle::join`].
    pub fn join(self) -> thread::Result<()> {
        let mut outcome = self
            .done
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(o) = outcome.take() {
                return o;
            }
            outcome = self
                .done
                .cv
                .wait(outcome)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

type Work = Box<dyn FnOnce() + Send>;

struct Job {
    work: Work,
    done: Arc<Done>,
}

/// The free readers of one service's logs.
pub(crate) struct Pool {
    /// Thread name of the readers.
    name: String,
    /// Free readers, each waiting on its own channel; the newest is taken first.
    free: Mutex<Vec<(u64, Sender<Job>)>>,
    next_id: AtomicU64,
}

impl Pool {
    pub(crate) fn new(name: String) -> Arc<Self> {
        Arc::new(Self {
            name,
            free: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// Runs `work` on a free reader, or on a new thread when none is free.
    pub(crate) fn run(self: &Arc<Self>, work: Work) -> io::Result<Reader> {
        let done = Arc::new(Done::default());
        let mut job = Job {
            work,
            done: Arc::clone(&done),
        };
        loop {
            let free = self
                .free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some((_, reader)) = free else { break };
            match reader.send(job) {
                Ok(()) => return Ok(Reader { done }),
                // Its thread is gone (it cannot be: a free reader only ends after taking
                // itself off this list, under its lock): the job goes to the next one.
                Err(mpsc::SendError(j)) => job = j,
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let pool = Arc::downgrade(self);
        thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || reader(&pool, id, job))?;
        Ok(Reader { done })
    }
}

/// A reader thread: its first job, then whatever comes while it is free.
fn reader(pool: &Weak<Pool>, id: u64, mut job: Job) {
    loop {
        let outcome = catch_unwind(AssertUnwindSafe(job.work));
        let panicked = outcome.is_err();
        job.done.finish(outcome);
        if panicked {
            return;
        }
        // Free: a channel of its own, whose sender the pool holds. The pool dropped (the
        // service's logs are gone) drops the sender, and this thread ends at once.
        let (tx, rx) = mpsc::channel();
        {
            let Some(p) = pool.upgrade() else { return };
            p.free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((id, tx));
        }
        job = match rx.recv_timeout(IDLE) {
            Ok(next) => next,
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                let Some(p) = pool.upgrade() else {
                    // The logs are gone. A job sent just before cannot be (it holds the logs,
                    // and so the pool); if one is here anyway, it is run, not dropped.
                    match rx.try_recv() {
                        Ok(next) => {
                            job = next;
                            continue;
                        }
                        Err(_) => return,
                    }
                };
                let mut free = p.free.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(i) = free.iter().position(|(k, _)| *k == id) {
                    free.remove(i);
                    return;
                }
                drop(free);
                // Taken between the timeout and the lock: its job is on the way.
                match rx.recv() {
                    Ok(next) => next,
                    Err(_) => return,
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|t| {
                        std::fs::read_to_string(t.path().join("comm"))
                            .is_ok_and(|c| c.trim_end() == name)
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    #[test]
    fn a_free_reader_takes_the_next_job_and_a_busy_one_does_not() {
        let pool = Pool::new("tend-t-reuse".into());
        let first = pool.run(Box::new(|| {})).unwrap();
        first.join().unwrap();
        // Its thread is free once it says so; wait for that with a deadline.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pool.free.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never free");
            thread::yield_now();
        }
        let (hold_tx, hold_rx) = mpsc::channel::<()>();
        let busy = pool
            .run(Box::new(move || {
                let _ = hold_rx.recv();
            }))
            .unwrap();
        assert!(
            pool.free.lock().unwrap().is_empty(),
            "the free one was taken"
        );
        // The one busy, a second job gets a thread of its own.
        let second = pool.run(Box::new(|| {})).unwrap();
        second.join().unwrap();
        assert!(!busy.is_finished());
        hold_tx.send(()).unwrap();
        busy.join().unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(threads_named("tend-t-reuse"), 2);
        }
        // The pool gone, its free readers end.
        drop(pool);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while cfg!(target_os = "linux") && threads_named("tend-t-reuse") > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "free readers outlived their pool"
            );
            thread::yield_now();
        }
    }

    #[test]
    fn a_panic_is_the_join_s_error_and_its_thread_is_not_reused() {
        let pool = Pool::new("tend-t-panic".into());
        let r = pool.run(Box::new(|| panic!("boom"))).unwrap();
        let e = r.join().unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"boom"));
        assert!(pool.free.lock().unwrap().is_empty());
        let ok = pool.run(Box::new(|| {})).unwrap();
        ok.join().unwrap();
    }
}
