//! What a run said last: the end of its stderr and stdout and, for a Go program, its
//! panic. Fed by the threads that read the pipes (a copy of at most a few KiB of each
//! read, and a prefix compare per stderr line), kept after the run's exit for the exit
//! line, `status`, alerts and crash records.

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
}

impl Default for RunTail {
    fn default() -> Self {
        Self {
            err: Mutex::new((LastLines::keeping(STDERR_BYTES), GoCrashScanner::new())),
            out: Mutex::new(LastLines::keeping(STDOUT_BYTES)),
            err_ended: AtomicBool::new(false),
            out_ended: AtomicBool::new(false),
            end: tokio::sync::Notify::new(),
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

    /// Waits (at most `within`) until everything the program wrote has been read.
    pub(super) async fn settle(&self, within: std::time::Duration) {
        if !self.both_ended() {
            let _ = tokio::time::timeout(within, self.end.notified()).await;
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
