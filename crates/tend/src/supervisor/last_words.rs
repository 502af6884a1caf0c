//! What a run said last: the end of its stderr and stdout and, for a Go program, its
//! panic. Fed by the threads that read the pipes (a copy of at most a few KiB of each
//! read, and a prefix compare per stderr line), kept after the run's exit for the exit
//! line, `status`, alerts and crash records.

#[cfg(unix)]
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use tend_core::crash::{GoCrash, GoCrashScanner};
use tend_core::last_lines::LastLines;

/// How much of each stream's end is kept: a crash record shows up to 20 lines of stderr.
const STDERR_BYTES: usize = 4096;
const STDOUT_BYTES: usize = 2048;

/// The output of one run, as it is read.
#[derive(Debug)]
pub(crate) struct RunTail {
    err: Mutex<(LastLines, GoCrashScanner)>,
    out: Mutex<LastLines>,
    err_ended: AtomicBool,
    out_ended: AtomicBool,
    end: tokio::sync::Notify,
    /// Unix: each pipe's [`Drained`], to tell without waiting that the tail is whole.
    #[cfg(unix)]
    drained: Mutex<Vec<Arc<Drained>>>,
}

/// Unix: whether everything the program wrote on one pipe is in the tail, told without
/// waiting for the pipe's end.
///
/// Why: at an exit the supervisor waited for both readers to reach the end of their pipes
/// before saying why the program ended. On a busy two-CPU machine a third of the restarts
/// waited (a median of 25 µs, 200 µs at the 99th percentile: bench/README.md, issue 16)
/// for reader threads to be scheduled only to read an end of file. The program is gone
/// once its exit is seen, so all it wrote is either still in the pipe or already read:
/// with the pipe empty and its reader holding nothing it has not put in the tail, there is
/// nothing to wait for. (A grandchild holding the pipe no longer delays the exit line by
/// [`LAST_WORDS_WAIT`](super::LAST_WORDS_WAIT) either.)
#[cfg(unix)]
#[derive(Debug)]
pub(crate) struct Drained {
    /// The read end (non-blocking), owned by its reader: a pipe nobody reads (its reader
    /// ended, or never started) closes, and the program gets EPIPE instead of blocking.
    pipe: std::sync::Weak<std::io::PipeReader>,
    /// Everything the reader took out of the pipe is in the tail. False from just before
    /// each `read` until what it returned is pushed, so a read that just emptied the pipe
    /// is never taken for a quiet one.
    whole: AtomicBool,
}

#[cfg(unix)]
impl Drained {
    pub(crate) fn new(pipe: &Arc<std::io::PipeReader>) -> Self {
        Self {
            pipe: Arc::downgrade(pipe),
            whole: AtomicBool::new(true),
        }
    }

    /// The reader is about to take bytes out of the pipe.
    pub(crate) fn reading(&self) {
        self.whole.store(false, Ordering::SeqCst);
    }

    /// What the reader took out is in the tail (or it took nothing).
    pub(crate) fn pushed(&self) {
        self.whole.store(true, Ordering::SeqCst);
    }

    /// Nothing in the pipe and nothing read but not pushed. The pipe is asked first: a
    /// byte that left the pipe after that can only be one nobody must wait for (the
    /// program was gone before this was asked), and one that left it before is either
    /// pushed or makes `whole` false until it is.
    /// A pipe already closed by its reader has nothing more to give.
    #[allow(unsafe_code)]
    fn now(&self) -> bool {
        use std::os::fd::AsRawFd as _;
        let Some(pipe) = self.pipe.upgrade() else {
            return true;
        };
        let mut queued: nix::libc::c_int = 0;
        // SAFETY: FIONREAD on an open pipe (kept open by `pipe`) writes one int.
        let r = unsafe { nix::libc::ioctl(pipe.as_raw_fd(), nix::libc::FIONREAD, &raw mut queued) };
        r == 0 && queued == 0 && self.whole.load(Ordering::SeqCst)
    }
}

impl Default for RunTail {
    fn default() -> Self {
        Self {
            err: Mutex::new((LastLines::keeping(STDERR_BYTES), GoCrashScanner::new())),
            out: Mutex::new(LastLines::keeping(STDOUT_BYTES)),
            err_ended: AtomicBool::new(false),
            out_ended: AtomicBool::new(false),
            end: tokio::sync::Notify::new(),
            #[cfg(unix)]
            drained: Mutex::new(Vec::new()),
        }
    }
}

/// Which pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pipe {
    Out,
    Err,
}

impl RunTail {
    /// What the program wrote next on `pipe`.
    pub(crate) fn push(&self, pipe: Pipe, bytes: &[u8]) {
        match pipe {
            Pipe::Err => {
                let mut err = self.err.lock().unwrap_or_else(PoisonError::into_inner);
                err.0.push(bytes);
                err.1.push(bytes);
            }
            Pipe::Out => self
                .out
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(bytes),
        }
    }

    /// `pipe` reached its end (or failed): nothing more will come from it.
    pub(crate) fn ended(&self, pipe: Pipe) {
        let flag = match pipe {
            Pipe::Err => &self.err_ended,
            Pipe::Out => &self.out_ended,
        };
        if !flag.swap(true, Ordering::SeqCst) && self.both_ended() {
            // A stored permit: a waiter that comes later returns at once.
            self.end.notify_one();
        }
    }

    fn both_ended(&self) -> bool {
        self.err_ended.load(Ordering::SeqCst) && self.out_ended.load(Ordering::SeqCst)
    }

    /// Unix: `pipe`'s drained state, told by its reader. Both pipes' make the check.
    #[cfg(unix)]
    pub(crate) fn watch(&self, pipe: Arc<Drained>) {
        self.drained
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pipe);
    }

    /// Unix: both pipes are empty and their readers have put all they read in the tail.
    #[cfg(unix)]
    fn drained(&self) -> bool {
        let d = self.drained.lock().unwrap_or_else(PoisonError::into_inner);
        d.len() == 2 && d.iter().all(|p| p.now())
    }

    #[cfg(not(unix))]
    #[allow(clippy::unused_self)]
    fn drained(&self) -> bool {
        false
    }

    /// A reader emptied its pipe and put all it read in the tail: a `settle` waiting now
    /// looks again (it stores no permit, so a later `settle` is not misled). Unix.
    #[cfg(unix)]
    pub(crate) fn nudge(&self) {
        self.end.notify_waiters();
    }

    /// Waits (at most `within`) until everything the program wrote has been read. Call
    /// it only once the program has exited.
    pub(super) async fn settle(&self, within: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Registered before the checks, so a nudge or an end between them is not lost.
            let woken = self.end.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.both_ended() || self.drained() {
                return;
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return;
            }
        }
    }

    /// What the run said, so far.
    pub(super) fn words(&self) -> LastWords {
        let err = self.err.lock().unwrap_or_else(PoisonError::into_inner);
        LastWords {
            stderr: err.0.clone(),
            stdout: self
                .out
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            go: err.1.found().cloned(),
        }
    }
}

/// What the last run said before it exited.
#[derive(Debug, Clone, Default)]
pub(crate) struct LastWords {
    pub(crate) stderr: LastLines,
    pub(crate) stdout: LastLines,
    /// A Go program's panic or fatal error, found in its stderr.
    pub(crate) go: Option<GoCrash>,
}

impl LastWords {
    /// The Go crash as one line: `panic: ... (at main.main() /app/main.go:12)`.
    pub(crate) fn go_summary(&self) -> Option<String> {
        self.go.as_ref().map(|g| match &g.frame {
            Some(frame) => format!("{} (at {frame})", g.message),
            None => g.message.clone(),
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::Write as _;
    use std::sync::Arc;

    use super::{Drained, Pipe, RunTail};

    #[test]
    fn the_tail_is_whole_only_with_both_pipes_empty_and_nothing_read_unpushed() {
        let (out_r, _out_w) = std::io::pipe().unwrap();
        let (err_r, mut err_w) = std::io::pipe().unwrap();
        let tail = RunTail::default();
        let (out_r, err_r) = (Arc::new(out_r), Arc::new(err_r));
        let out = Arc::new(Drained::new(&out_r));
        let err = Arc::new(Drained::new(&err_r));
        tail.watch(Arc::clone(&out));
        assert!(!tail.drained(), "one pipe is not both");
        tail.watch(Arc::clone(&err));
        assert!(tail.drained(), "nothing written, nothing read");
        err_w.write_all(b"last words\n").unwrap();
        assert!(!tail.drained(), "bytes still in the pipe");
        // The reader takes them out: until they are pushed, the tail is not whole.
        err.reading();
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(&mut &*err_r, &mut buf).unwrap();
        assert!(!tail.drained(), "read, not pushed yet");
        tail.push(Pipe::Err, &buf[..n]);
        err.pushed();
        assert!(tail.drained());
        assert_eq!(
            tail.words()
                .stderr
                .lines(tend_core::last_lines::Bound::STATUS),
            vec!["last words".to_owned()]
        );
        // A pipe its reader closed has nothing more to give, even mid-read.
        out.reading();
        assert!(!tail.drained());
        drop(out_r);
        assert!(tail.drained(), "closed by its reader");
    }

    #[test]
    fn settle_returns_when_a_reader_empties_its_pipe_not_only_at_its_end() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Both pipes stay open (a grandchild holds them): no end of file ever comes.
        let (out_r, _out_w) = std::io::pipe().unwrap();
        let (err_r, mut err_w) = std::io::pipe().unwrap();
        let (out_r, err_r) = (Arc::new(out_r), Arc::new(err_r));
        let tail = Arc::new(RunTail::default());
        tail.watch(Arc::new(Drained::new(&out_r)));
        let err = Arc::new(Drained::new(&err_r));
        tail.watch(Arc::clone(&err));
        err_w.write_all(b"dying words\n").unwrap();
        // The reader empties the pipe only once `settle` waits (it is polled first, and
        // the reader yields once more): settle must be woken by the nudge, not find the
        // tail whole at its first look.
        let reader = async {
            tokio::task::yield_now().await;
            assert!(!tail.drained(), "settle looked before the reader read");
            err.reading();
            let mut buf = [0u8; 64];
            let n = std::io::Read::read(&mut &*err_r, &mut buf).unwrap();
            tail.push(Pipe::Err, &buf[..n]);
            err.pushed();
            tail.nudge();
        };
        let began = std::time::Instant::now();
        rt.block_on(async {
            tokio::join!(tail.settle(std::time::Duration::from_secs(30)), reader);
        });
        assert!(
            began.elapsed() < std::time::Duration::from_secs(20),
            "settle waited for its limit: the nudge did not wake it"
        );
        assert_eq!(
            tail.words()
                .stderr
                .lines(tend_core::last_lines::Bound::STATUS),
            vec!["dying words".to_owned()]
        );
    }
}
