//! The threads that read the program's pipes, kept from one run to the next.
//!
//! Every run has two pipes, and each needs a thread of its own that may wait on it for as
//! long as it stays open (a grandchild may hold a pipe open after the run, and its reader
//! must not hold up anything). A thread per
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
    /// Its reader began the work (a job given to a free reader with its pipe begins only
    /// once the pipe has something to read or is at its end).
    started: std::sync::atomic::AtomicBool,
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
    /// Whether a thread took up the reading (it may have finished since).
    #[must_use]
    pub fn is_started(&self) -> bool {
        self.done.started.load(Ordering::SeqCst)
    }

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
    /// Free readers, each waiting at its own mailbox; the newest is taken first.
    free: Mutex<Vec<(u64, Arc<Mailbox>)>>,
    next_id: AtomicU64,
    /// How long a free reader waits ([`IDLE`]; shorter in tests).
    idle: Duration,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The service's logs are gone: its free readers end now, not after IDLE.
        for (_, mailbox) in self
            .free
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            mailbox.close();
        }
    }
}

impl Pool {
    pub(crate) fn new(name: String) -> Arc<Self> {
        Self::idling(name, IDLE)
    }

    fn idling(name: String, idle: Duration) -> Arc<Self> {
        Arc::new(Self {
            name,
            free: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            idle,
        })
    }

    /// [`run_when`](Self::run_when) of work that waits for no pipe.
    #[cfg(test)]
    pub(crate) fn run(self: &Arc<Self>, work: Work) -> io::Result<Reader> {
        self.run_when(work, None)
    }

    /// Runs `work` on a free reader, or on a new thread when none is free. With `ready`,
    /// the pipe `work` reads: on Linux a free reader then begins only once the pipe has
    /// something to read or is at its end, instead of being woken to be handed it (a
    /// restart would wake each reader twice: for the pipe, then at its end). `ready` must
    /// stay open until `work` has run (`work` owns the pipe).
    pub(crate) fn run_when(self: &Arc<Self>, work: Work, ready: Option<Fd>) -> io::Result<Reader> {
        let done = Arc::new(Done::default());
        let job = Job {
            work,
            done: Arc::clone(&done),
        };
        let free = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some((_, mailbox)) = free {
            // Off the free list, so this reader is ours: it takes the job even if its wait
            // just timed out (it looks for itself on the list first, and waits on).
            mailbox.deliver(job, ready);
            return Ok(Reader { done });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let pool = Arc::downgrade(self);
        let idle = self.idle;
        thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || reader(&pool, idle, id, job))?;
        Ok(Reader { done })
    }
}

/// A reader thread: its first job, then whatever comes while it is free.
fn reader(pool: &Weak<Pool>, idle: Duration, id: u64, mut job: Job) {
    let mut mailbox: Option<Arc<Mailbox>> = None;
    loop {
        job.done.started.store(true, Ordering::SeqCst);
        let outcome = catch_unwind(AssertUnwindSafe(job.work));
        let panicked = outcome.is_err();
        job.done.finish(outcome);
        if panicked {
            return;
        }
        // Free: made once per thread, kept while it is reused.
        let m = match &mailbox {
            Some(m) => Arc::clone(m),
            None => match Mailbox::new() {
                Ok(m) => Arc::clone(mailbox.insert(Arc::new(m))),
                // Cannot wait for a next job: the next run starts a thread instead.
                Err(_) => return,
            },
        };
        {
            let Some(p) = pool.upgrade() else { return };
            p.free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((id, Arc::clone(&m)));
        }
        job = match m.wait(Some(idle)) {
            Waited::Job(next) => next,
            Waited::Closed => return,
            Waited::Idle => {
                let Some(p) = pool.upgrade() else {
                    // The logs are gone. A job given just before cannot be (it holds the
                    // logs, and so the pool); if one is here anyway, it is run, not dropped.
                    match m.take() {
                        Some(next) => {
                            job = next;
                            continue;
                        }
                        None => return,
                    }
                };
                let mut free = p.free.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(i) = free.iter().position(|(k, _)| *k == id) {
                    free.remove(i);
                    return;
                }
                drop(free);
                drop(p);
                // Taken between the timeout and the lock: its job is on the way.
                match m.wait(None) {
                    Waited::Job(next) => next,
                    Waited::Closed | Waited::Idle => return,
                }
            }
        };
    }
}

/// A pipe's fd, where there are fds.
#[cfg(unix)]
pub(crate) type Fd = std::os::fd::RawFd;
#[cfg(not(unix))]
pub(crate) type Fd = std::convert::Infallible;

/// Where a free reader waits for its next job.
struct Mailbox {
    slot: Mutex<Slot>,
    wake: Wake,
}

#[derive(Default)]
struct Slot {
    job: Option<Job>,
    /// The pipe the job waits for, still in the poll set (Linux).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    ready: Option<Fd>,
    /// The pool is gone: no job will come.
    closed: bool,
}

enum Waited {
    Job(Job),
    Closed,
    Idle,
}

impl Mailbox {
    fn new() -> io::Result<Self> {
        Ok(Self {
            slot: Mutex::new(Slot::default()),
            wake: Wake::new()?,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn deliver(&self, job: Job, ready: Option<Fd>) {
        let mut slot = self.lock();
        slot.job = Some(job);
        // In the slot before the pipe is watched: the wake-up finds it there.
        #[cfg(target_os = "linux")]
        if let Some(fd) = ready
            && self.wake.when_readable(fd)
        {
            slot.ready = Some(fd);
            return;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = ready;
        drop(slot);
        self.wake.now();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.now();
    }

    fn take(&self) -> Option<Job> {
        let mut slot = self.lock();
        #[cfg(target_os = "linux")]
        if let Some(fd) = slot.ready.take() {
            self.wake.forget(fd);
        }
        slot.job.take()
    }

    /// The next job, or `Idle` after `idle` without one. A job given meanwhile ends the
    /// idle time: it waits for its pipe however long that takes.
    fn wait(&self, idle: Option<Duration>) -> Waited {
        let deadline = idle.map(|d| std::time::Instant::now() + d);
        loop {
            let given = {
                let mut slot = self.lock();
                if slot.closed && slot.job.is_none() {
                    return Waited::Closed;
                }
                // A job whose pipe is watched waits for the pipe.
                if slot.ready.is_none()
                    && let Some(job) = slot.job.take()
                {
                    return Waited::Job(job);
                }
                slot.job.is_some()
            };
            let left = match deadline {
                _ if given => None,
                Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => {
                        // Out of time, but a job already given is not left behind.
                        return self.take().map_or(Waited::Idle, Waited::Job);
                    }
                },
                None => None,
            };
            if self.wake.sleep(left) == Woke::ByPipe
                && let Some(job) = self.take()
            {
                return Waited::Job(job);
            }
        }
    }
}

#[derive(PartialEq, Eq)]
enum Woke {
    /// The watched pipe has something to read or is at its end.
    ByPipe,
    /// Told, timed out, or interrupted: look at the slot again.
    Other,
}

/// Linux: the free reader sleeps in `epoll_wait` on an eventfd (to be told) and on the
/// next job's pipe, added by the pool with `EPOLLONESHOT`.
#[cfg(target_os = "linux")]
struct Wake {
    epoll: std::os::fd::OwnedFd,
    told: std::os::fd::OwnedFd,
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
impl Wake {
    /// The eventfd's tag in the epoll set (a pipe's is its fd, never negative).
    const TOLD: u64 = u64::MAX;

    fn new() -> io::Result<Self> {
        use std::os::fd::FromRawFd as _;
        // SAFETY: plain system calls; each fd returned is checked and then owned once.
        unsafe {
            let epoll = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            if epoll < 0 {
                return Err(io::Error::last_os_error());
            }
            let epoll = std::os::fd::OwnedFd::from_raw_fd(epoll);
            let told = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
            if told < 0 {
                return Err(io::Error::last_os_error());
            }
            let told = std::os::fd::OwnedFd::from_raw_fd(told);
            let w = Self { epoll, told };
            w.ctl(
                libc::EPOLL_CTL_ADD,
                w.raw_told(),
                libc::EPOLLIN as u32,
                Self::TOLD,
            )?;
            Ok(w)
        }
    }

    fn raw_told(&self) -> Fd {
        use std::os::fd::AsRawFd as _;
        self.told.as_raw_fd()
    }

    fn ctl(&self, op: libc::c_int, fd: Fd, events: u32, tag: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd as _;
        let mut ev = libc::epoll_event { events, u64: tag };
        // SAFETY: epoll_ctl on this epoll fd with a valid event struct.
        let r = unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &raw mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn when_readable(&self, fd: Fd) -> bool {
        // EPOLLIN for data; the end of the pipe (EPOLLHUP) is always reported.
        let tag = u64::try_from(fd).unwrap_or(0);
        self.ctl(
            libc::EPOLL_CTL_ADD,
            fd,
            (libc::EPOLLIN | libc::EPOLLONESHOT) as u32,
            tag,
        )
        .is_ok()
    }

    fn forget(&self, fd: Fd) {
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
    }

    fn now(&self) {
        let one: u64 = 1;
        // SAFETY: an 8-byte write from a valid u64 to our eventfd. It cannot fail short of
        // the counter's overflow, which a wake per job never reaches.
        unsafe { libc::write(self.raw_told(), (&raw const one).cast(), 8) };
    }

    fn sleep(&self, left: Option<Duration>) -> Woke {
        use std::os::fd::AsRawFd as _;
        let ms = left.map_or(-1, |d| {
            // Rounded up: a wait that ends a hair early would just wait again.
            libc::c_int::try_from(d.as_millis().saturating_add(1)).unwrap_or(libc::c_int::MAX)
        });
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: epoll_wait into one valid event struct.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &raw mut ev, 1, ms) };
        if n != 1 {
            return Woke::Other;
        }
        if ev.u64 == Self::TOLD {
            let mut count: u64 = 0;
            // SAFETY: an 8-byte read into a valid u64 from our non-blocking eventfd.
            unsafe { libc::read(self.raw_told(), (&raw mut count).cast(), 8) };
            return Woke::Other;
        }
        Woke::ByPipe
    }
}

/// Elsewhere: a condition variable, told at each change of the slot.
#[cfg(not(target_os = "linux"))]
#[derive(Default)]
struct Wake {
    told: Mutex<bool>,
    cv: Condvar,
}

#[cfg(not(target_os = "linux"))]
impl Wake {
    #[allow(clippy::unnecessary_wraps)]
    fn new() -> io::Result<Self> {
        Ok(Self::default())
    }

    fn now(&self) {
        *self.told.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_one();
    }

    fn sleep(&self, left: Option<Duration>) -> Woke {
        let mut told = self.told.lock().unwrap_or_else(PoisonError::into_inner);
        if !*told {
            told = match left {
                Some(d) => {
                    self.cv
                        .wait_timeout(told, d)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.cv.wait(told).unwrap_or_else(PoisonError::into_inner),
            };
        }
        *told = false;
        Woke::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

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

    /// Waits, with a deadline, until a reader of `pool` is free.
    fn wait_free(pool: &Pool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pool.free.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never free");
            thread::yield_now();
        }
    }

    #[test]
    fn a_free_reader_takes_the_next_job_and_a_busy_one_does_not() {
        let pool = Pool::new("tend-t-reuse".into());
        let first = pool.run(Box::new(|| {})).unwrap();
        first.join().unwrap();
        // Its thread is free once it says so.
        wait_free(&pool);
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

    /// Whether `fd` has something to read or is at its end, right now.
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn readable(fd: std::os::fd::RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll of one valid pollfd, without waiting.
        unsafe { libc::poll(&raw mut p, 1, 0) == 1 }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_free_reader_starts_a_pipe_s_job_only_when_the_pipe_needs_it() {
        use std::io::{Read as _, Write as _};
        use std::os::fd::AsRawFd as _;
        let pool = Pool::new("tend-t-ready".into());
        pool.run(Box::new(|| {})).unwrap().join().unwrap();
        wait_free(&pool);
        for last in [false, true] {
            let (mut r, mut w) = std::io::pipe().unwrap();
            let fd = r.as_raw_fd();
            let mailbox = Arc::clone(&pool.free.lock().unwrap().last().unwrap().1);
            let (said_tx, said_rx) = mpsc::channel();
            let job = pool
                .run_when(
                    Box::new(move || {
                        // Woken by the pipe, not by the hand-over: something is there.
                        let ready = readable(r.as_raw_fd());
                        let mut got = Vec::new();
                        r.read_to_end(&mut got).unwrap();
                        said_tx.send((ready, got)).unwrap();
                    }),
                    Some(fd),
                )
                .unwrap();
            assert!(
                pool.free.lock().unwrap().is_empty(),
                "the free reader took it"
            );
            // Nothing in the pipe and a writer still holding it: the job cannot begin. It
            // waits in the slot with its pipe watched (not handed straight to the reader,
            // which a scheduler slow to run the reader could hide from `is_started`).
            assert!(!job.is_started(), "begun before its pipe had anything");
            {
                let slot = mailbox.lock();
                assert!(slot.job.is_some(), "not waiting in the slot");
                assert_eq!(slot.ready, Some(fd), "its pipe is not watched");
            }
            if last {
                // A pipe at its end with nothing in it wakes the reader too.
                drop(w);
            } else {
                w.write_all(b"line\n").unwrap();
                drop(w);
            }
            job.join().unwrap();
            let (ready, got) = said_rx.recv().unwrap();
            assert!(ready, "the job ran before its pipe had anything");
            assert_eq!(got, if last { &b""[..] } else { &b"line\n"[..] });
            wait_free(&pool);
        }
        assert_eq!(threads_named("tend-t-ready"), 1, "one thread did all three");
    }

    #[test]
    fn a_free_reader_ends_after_its_idle_time_and_the_next_job_gets_a_new_one() {
        let pool = Pool::idling("tend-t-idle".into(), Duration::from_millis(50));
        pool.run(Box::new(|| {})).unwrap().join().unwrap();
        wait_free(&pool);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !pool.free.lock().unwrap().is_empty()
            || (cfg!(target_os = "linux") && threads_named("tend-t-idle") > 0)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "a free reader outlived its idle time"
            );
            thread::yield_now();
        }
        let (tx, rx) = mpsc::channel();
        pool.run(Box::new(move || tx.send(()).unwrap()))
            .unwrap()
            .join()
            .unwrap();
        rx.try_recv().expect("the job ran on a new reader");
        #[cfg(target_os = "linux")]
        assert_eq!(threads_named("tend-t-idle"), 1, "a new thread took it");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_job_waiting_for_its_pipe_outlasts_the_readers_idle_time() {
        use std::io::{Read as _, Write as _};
        use std::os::fd::AsRawFd as _;
        let idle = Duration::from_millis(20);
        let pool = Pool::idling("tend-t-outlast".into(), idle);
        pool.run(Box::new(|| {})).unwrap().join().unwrap();
        wait_free(&pool);
        let (mut r, mut w) = std::io::pipe().unwrap();
        let fd = r.as_raw_fd();
        let (tx, rx) = mpsc::channel();
        let job = pool
            .run_when(
                Box::new(move || {
                    let mut got = Vec::new();
                    r.read_to_end(&mut got).unwrap();
                    tx.send(got).unwrap();
                }),
                Some(fd),
            )
            .unwrap();
        // Well past the idle time with the pipe quiet: the job must not have begun (it
        // did, blocking in `read`, when the idle deadline still ran with a job given).
        // Nothing to wait for here but time; a slow machine can only make this pass.
        thread::sleep(idle * 10);
        assert!(
            !job.is_started(),
            "begun at the idle deadline, not by its pipe"
        );
        w.write_all(b"late\n").unwrap();
        drop(w);
        job.join().unwrap();
        assert_eq!(rx.recv().unwrap(), b"late\n");
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
