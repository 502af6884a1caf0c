//! The file-system state that the log writers (`sink`), housekeeping (`maintain`) and the
//! pipeline (`logs`) share: fault hooks for tests, counters, the last error, and the locks
//! that keep rotation, retention and compression from racing. It sits below all three so
//! that none of them imports another's internals.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Consulted before each file-system operation of the write path; an `Err` is treated as if
/// the OS had returned it. For tests (here and in the supervisor) that need a full disk or a
/// file locked by another process without having one.
pub type FaultHook = Arc<dyn Fn(FsOp, &Path) -> io::Result<()> + Send + Sync>;

/// The operation a [`FaultHook`] is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsOp {
    /// Opening (and creating) an active log file, including its directory.
    Open,
    /// One `write` call on an active log file.
    Write,
    /// Renaming the active file for a rotation.
    Rename,
    /// Deleting a rotated file for retention.
    Remove,
    /// Compressing a rotated file, before it starts (on the housekeeping thread).
    Compress,
}

/// Counters of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Bytes written to log files for this stream, prefixes and markers included.
    pub bytes_written: u64,
    /// Bytes that could not be written (disk trouble), counted like `bytes_written`.
    pub dropped_bytes: u64,
    /// When output was last read from the stream (for a silence watchdog); for the
    /// supervisor's log, when a line was last logged.
    pub last_output: Option<SystemTime>,
    /// With `encoding`: bytes the encoding could not map, written as U+FFFD.
    pub replaced_bytes: u64,
}

/// Aligned to its own cache lines: the stdout and stderr readers update their counters on
/// every read, from two CPUs, and must not invalidate each other's line.
#[repr(align(128))]
pub(crate) struct StreamCounters {
    pub(crate) bytes: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) replaced: AtomicU64,
    /// Milliseconds since the epoch; `i64::MIN` for never.
    pub(crate) last_output_ms: AtomicI64,
}

impl StreamCounters {
    pub(crate) fn new() -> Self {
        Self {
            bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            replaced: AtomicU64::new(0),
            last_output_ms: AtomicI64::new(i64::MIN),
        }
    }

    pub(crate) fn snapshot(&self) -> StreamStats {
        let ms = self.last_output_ms.load(Ordering::Relaxed);
        StreamStats {
            bytes_written: self.bytes.load(Ordering::Relaxed),
            dropped_bytes: self.dropped.load(Ordering::Relaxed),
            replaced_bytes: self.replaced.load(Ordering::Relaxed),
            last_output: (ms != i64::MIN).then(|| {
                let d = Duration::from_millis(ms.unsigned_abs());
                if ms >= 0 {
                    UNIX_EPOCH + d
                } else {
                    UNIX_EPOCH - d
                }
            }),
        }
    }
}

pub(crate) struct Counters {
    pub(crate) streams: [StreamCounters; 3],
    pub(crate) rotations: AtomicU64,
    pub(crate) rotation_failures: AtomicU64,
    pub(crate) delete_failures: AtomicU64,
    pub(crate) compress_failures: AtomicU64,
    /// Rotated files left uncompressed because the backlog was full.
    pub(crate) compress_skipped: AtomicU64,
}

/// The file-system side of one service's logs.
pub(crate) struct FsState {
    pub(crate) name: String,
    pub(crate) faults: Option<FaultHook>,
    pub(crate) counters: Counters,
    pub(crate) last_error: Mutex<Option<String>>,
    fs_lock: Mutex<()>,
    /// Rotated files queued for compression.
    pending: Mutex<HashSet<PathBuf>>,
    /// Set by `ServiceLogs::close`: compression stops at the next chunk and leaves the
    /// rotated file as it is (complete; compressed at the next start).
    pub(crate) closing: AtomicBool,
}

impl FsState {
    pub(crate) fn new(name: &str, faults: Option<FaultHook>) -> Self {
        Self {
            name: name.to_owned(),
            faults,
            counters: Counters {
                streams: [
                    StreamCounters::new(),
                    StreamCounters::new(),
                    StreamCounters::new(),
                ],
                rotations: AtomicU64::new(0),
                rotation_failures: AtomicU64::new(0),
                delete_failures: AtomicU64::new(0),
                compress_failures: AtomicU64::new(0),
                compress_skipped: AtomicU64::new(0),
            },
            last_error: Mutex::new(None),
            fs_lock: Mutex::new(()),
            pending: Mutex::new(HashSet::new()),
            closing: AtomicBool::new(false),
        }
    }

    pub(crate) fn fault(&self, op: FsOp, path: &Path) -> io::Result<()> {
        self.faults.as_ref().map_or(Ok(()), |h| h(op, path))
    }

    pub(crate) fn set_error(&self, msg: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(msg);
    }

    /// Held while a rotated name is chosen and taken, and by retention and compression.
    pub(crate) fn fs_guard(&self) -> MutexGuard<'_, ()> {
        self.fs_lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn pending_guard(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
