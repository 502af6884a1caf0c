//! Errors that stop the log pipeline from starting, and the events it reports while running.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why [`crate::ServiceLogs`] could not be opened or reconfigured. Once running, the
/// pipeline does not fail: trouble is reported as [`LogEvent`]s and in [`crate::LogStats`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The service name cannot be part of a file name.
    #[error("{name:?} cannot be used as a log file name: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The log directory could not be created.
    #[error("cannot create log directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A log file could not be opened for appending.
    #[error("cannot open log file {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A thread (pipe reader or housekeeping) could not be started.
    #[error("cannot start thread {thread}: {source}")]
    Spawn {
        /// The thread's name.
        thread: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Something the supervisor should tell the user about. Delivered through the
/// [`crate::EventSink`] callback, never while a log file lock is held, so the callback may
/// call back into [`crate::ServiceLogs`] (e.g. [`crate::ServiceLogs::supervisor_line`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogEvent {
    /// Writing to a log file failed; output for it is dropped (and counted) until a write
    /// works again. Sent once per outage.
    WriteFailed {
        /// The active log file.
        path: PathBuf,
        /// The OS error.
        error: String,
    },
    /// Writing works again after [`LogEvent::WriteFailed`]; a loss marker line was written.
    WriteResumed {
        /// The active log file.
        path: PathBuf,
        /// Log bytes that could not be written during the outage.
        lost_bytes: u64,
    },
    /// Renaming the active file for a rotation failed (on Windows, typically another process
    /// has it open). Writing continues into the active file; the next rotation trigger
    /// retries. Sent once per run of failures.
    RotateFailed {
        /// The active log file.
        path: PathBuf,
        /// The OS error.
        error: String,
    },
    /// Retention could not delete a rotated file; it is tried again at the next rotation.
    DeleteFailed {
        /// The rotated file.
        path: PathBuf,
        /// The OS error.
        error: String,
    },
    /// A rotated file could not be compressed; it stays uncompressed.
    CompressFailed {
        /// The rotated file.
        path: PathBuf,
        /// The error.
        error: String,
    },
    /// A rotated file was left uncompressed because `waiting` files already wait for
    /// compression: the output is faster than the compressor. Counted
    /// ([`crate::LogStats::compress_skipped`]); the skipped files are compressed once the
    /// queue is empty. Sent once per backlog.
    CompressBacklog {
        /// The first rotated file left uncompressed.
        path: PathBuf,
        /// The bound, [`crate::COMPRESS_BACKLOG`].
        waiting: usize,
    },
    /// With `encoding`: the program wrote bytes the encoding cannot map. They are written
    /// as U+FFFD and counted ([`crate::StreamStats::replaced_bytes`]). Sent once per run of
    /// the program and stream.
    Unmappable {
        /// `stdout` or `stderr`.
        stream: String,
        /// The configured encoding.
        encoding: String,
    },
}

impl fmt::Display for LogEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WriteFailed { path, error } => {
                write!(
                    f,
                    "cannot write log file {}: {error}; dropping output until it works again",
                    path.display()
                )
            }
            Self::WriteResumed { path, lost_bytes } => {
                write!(
                    f,
                    "log file {} is writable again; {lost_bytes} bytes of output were lost",
                    path.display()
                )
            }
            Self::RotateFailed { path, error } => {
                write!(
                    f,
                    "cannot rotate log file {}: {error}; still writing to it",
                    path.display()
                )
            }
            Self::DeleteFailed { path, error } => {
                write!(f, "cannot delete old log file {}: {error}", path.display())
            }
            Self::CompressFailed { path, error } => {
                write!(f, "cannot compress log file {}: {error}", path.display())
            }
            Self::CompressBacklog { path, waiting } => write!(
                f,
                "compression is behind ({waiting} rotated files waiting): {} and later \
                 files stay uncompressed until it has caught up",
                path.display()
            ),
            Self::Unmappable { stream, encoding } => write!(
                f,
                "the program's {stream} is not all valid {encoding}: what cannot be mapped is \
                 written as U+FFFD and counted"
            ),
        }
    }
}
