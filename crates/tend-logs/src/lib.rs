//! tend's log pipeline: captures a service's output pipes into log files, byte for byte,
//! and rotates, retains and compresses them. `docs/logs.md` describes the files a user sees;
//! this is the API the supervisor uses.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use tend_core::LogSpec;
//! # use tend_logs::{LogEvent, ServiceLogs, Stream};
//! # fn demo(mut child: std::process::Child) -> Result<(), tend_logs::LogError> {
//! let spec = LogSpec::with_dir("/var/log/tend".into());
//! let events = Arc::new(|e: LogEvent| eprintln!("{e}"));
//! let logs = ServiceLogs::open("web", spec, Some(events))?;
//! logs.capture(Stream::Out, child.stdout.take().unwrap())?; // not joined before a restart
//! logs.capture(Stream::Err, child.stderr.take().unwrap())?;
//! logs.supervisor_line(b"started pid 1234");
//! println!("{:?}", logs.stats());
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! - One [`ServiceLogs`] per service. Each [`ServiceLogs::capture`] hands its pipe to a
//!   plain thread that reads 64 KiB at a time until end of file, then waits (30 s at most)
//!   to take the next run's pipe, so a restart starts no thread (`readers.rs`). Several
//!   generations of readers (a grandchild keeping an old pipe open) may write into the
//!   same files at once.
//! - Each active file has a single writer behind a mutex; rotation is close-rename-reopen
//!   by that writer, never copy-and-truncate.
//! - Without timestamps a read's complete lines are written as they are, in one `write`;
//!   with them, one prefixed copy is built in a reused buffer. Nothing stays in user-space
//!   buffers across reads except an unfinished line, which is at most `max_line` bytes.
//! - One housekeeping thread per service compresses rotated files and rotates quiet files
//!   at hour/day boundaries, so neither ever blocks a reader.
//! - Running never fails: disk trouble is counted ([`LogStats`]), reported ([`LogEvent`])
//!   and marked in the log once writing works again. Only opening can fail ([`LogError`]).
//! - Time comes from a [`Clock`], so tests move it instead of sleeping.

mod clock;
mod error;
mod follow;
mod frame;
mod json;
mod logs;
mod maintain;
mod naming;
mod readers;
mod sink;
mod state;
pub mod tail;
mod transcode;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{LogError, LogEvent};
pub use logs::{
    COMPRESS_BACKLOG, EventSink, FaultHook, FsOp, HousekeeperEnd, LogStats, Options, ServiceLogs,
    Stream, StreamStats, supervisor_line_bytes,
};
pub use naming::{LogKind, RotatedFile, rotated_files};
pub use readers::Reader;
pub use transcode::encoding_for;

/// Appended (before the newline) to each piece of a line cut at `max_line` bytes, except
/// the last piece.
pub const CONTINUED_MARKER: &str = " [continued]";
