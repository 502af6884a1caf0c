//! One active log file and its single writer: appends, rotation (close, rename, reopen) and
//! surviving disk trouble. Everything here runs under the file's own mutex, which is what
//! makes "the single writer that owns the file" true even with several reader threads.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDateTime, Timelike};
use memchr::{memchr, memrchr};
use tend_core::{LogSpec, RotateEvery};

use crate::clock::{TS_LEN, format_ts, period_key};
use crate::error::{LogError, LogEvent};
use crate::naming::with_suffix;
use crate::naming::{LogKind, rotated_file_name, scan};
use crate::state::{FaultHook, FsOp, FsState};

/// How often a writer checks that its active file is still the one at its path. On Unix a
/// deleted file (or directory) keeps accepting writes that nobody will ever see.
const VANISH_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What a write or tick produced that must be handled once the file lock is released.
#[derive(Default)]
pub(crate) struct Effects {
    pub(crate) events: Vec<LogEvent>,
    /// Files that were just rotated away (uncompressed names), for compression and retention.
    pub(crate) rotated: Vec<(PathBuf, LogKind)>,
}

/// Everything a write needs besides the data.
pub(crate) struct Cx<'a> {
    pub(crate) shared: &'a FsState,
    pub(crate) spec: &'a LogSpec,
    pub(crate) now: &'a DateTime<FixedOffset>,
    /// Index into the per-stream counters.
    pub(crate) stat: usize,
    pub(crate) fx: &'a mut Effects,
}

pub(crate) struct Sink {
    pub(crate) kind: LogKind,
    pub(crate) path: PathBuf,
    dir: PathBuf,
    name: String,
    state: Mutex<State>,
}

struct State {
    /// `None` while failing (the handle is dropped so recovery starts from a clean open).
    file: Option<File>,
    size: u64,
    /// Local time of the oldest data in the file: decides rotation by hour/day.
    first_write: Option<NaiveDateTime>,
    /// The file does not end with a newline (a write failed half-way, or a crash did).
    mid_line: bool,
    failing: bool,
    /// Bytes dropped during the current outage.
    lost: u64,
    lost_error: String,
    next_check: Instant,
    id: Option<(u64, u64)>,
    rotate_failing: bool,
    /// Name key of the last file this writer rotated away.
    last_rotated: Option<(NaiveDateTime, u32)>,
}

#[cfg(unix)]
fn file_id(m: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

/// Windows has no stable file identity in std; the vanish check falls back to existence.
#[cfg(not(unix))]
fn file_id(_: &Metadata) -> Option<(u64, u64)> {
    None
}

fn open_append(
    faults: Option<&FaultHook>,
    dir: &Path,
    path: &Path,
) -> io::Result<(File, Metadata)> {
    if let Some(h) = faults {
        h(FsOp::Open, path)?;
    }
    // Also brings back a directory that was deleted under a running service.
    fs::create_dir_all(dir)?;
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

fn ends_mid_line(path: &Path, size: u64) -> bool {
    if size == 0 {
        return false;
    }
    let mut last = [0u8; 1];
    File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(size - 1))?;
            f.read_exact(&mut last)
        })
        .is_ok_and(|()| last[0] != b'\n')
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sink {
    /// Opens (creating) the active file of `kind` for appending.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        kind: LogKind,
        faults: Option<&FaultHook>,
        now: &DateTime<FixedOffset>,
    ) -> Result<Self, LogError> {
        let path = kind.active_path(dir, name);
        let (file, meta) = open_append(faults, dir, &path).map_err(|source| LogError::Open {
            path: path.clone(),
            source,
        })?;
        let size = meta.len();
        // An existing non-empty file (from before a restart of tend) counts as written when
        // it was last modified, so an hourly/daily rotation still happens at the first write
        // in a new period.
        let first_write = (size > 0).then(|| {
            meta.modified()
                .ok()
                .map(|m| {
                    DateTime::<chrono::Utc>::from(m)
                        .with_timezone(now.offset())
                        .naive_local()
                })
                .unwrap_or_else(|| now.naive_local())
        });
        let instant = Instant::now();
        Ok(Self {
            kind,
            dir: dir.to_path_buf(),
            name: name.to_owned(),
            state: Mutex::new(State {
                mid_line: ends_mid_line(&path, size),
                file: Some(file),
                size,
                first_write,
                failing: false,
                lost: 0,
                lost_error: String::new(),
                next_check: instant + VANISH_CHECK_INTERVAL,
                id: file_id(&meta),
                rotate_failing: false,
                last_rotated: None,
            }),
            path,
        })
    }

    /// Appends `data`, which holds only complete lines, rotating by time and size on the
    /// way. Never fails: what cannot be written is counted as dropped.
    pub(crate) fn write(&self, cx: &mut Cx<'_>, data: &[u8]) {
        let mut st = lock(&self.state);
        if !self.ensure_open(&mut st, cx) {
            self.drop_bytes(&mut st, cx, data.len() as u64);
            return;
        }
        self.check_vanished(&mut st, cx);
        if st.file.is_none() {
            self.drop_bytes(&mut st, cx, data.len() as u64);
            return;
        }
        if self.period_over(&st, cx) {
            self.rotate(&mut st, cx);
        }
        let max_size = cx.spec.max_size;
        let mut rest = data;
        while !rest.is_empty() {
            let fits = usize::try_from(max_size.saturating_sub(st.size)).unwrap_or(usize::MAX);
            if max_size == 0 || rest.len() <= fits {
                self.append(&mut st, cx, rest);
                return;
            }
            // Would exceed: write the lines that still fit, then rotate.
            let mut take = memrchr(b'\n', &rest[..fits.min(rest.len())]).map_or(0, |i| i + 1);
            if take == 0 && st.size == 0 {
                // A single line bigger than max_size goes alone into a file.
                take = memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            }
            if take > 0 {
                if !self.append(&mut st, cx, &rest[..take]) {
                    self.drop_bytes(&mut st, cx, (rest.len() - take) as u64);
                    return;
                }
                rest = &rest[take..];
                if rest.is_empty() {
                    return;
                }
            }
            if !self.rotate(&mut st, cx) {
                // Keep the data rather than the size limit; the next write retries.
                self.append(&mut st, cx, rest);
                return;
            }
            if st.file.is_none() {
                self.drop_bytes(&mut st, cx, rest.len() as u64);
                return;
            }
        }
    }

    /// Rotates if the hour/day of the data in the file is over. Called by the housekeeping
    /// thread so a quiet service's file still rotates at the boundary.
    pub(crate) fn tick(&self, cx: &mut Cx<'_>) {
        let mut st = lock(&self.state);
        if st.file.is_some() && !st.failing && self.period_over(&st, cx) {
            self.rotate(&mut st, cx);
        }
    }

    /// Asks the OS to put the file's data on disk.
    pub(crate) fn sync(&self) {
        let st = lock(&self.state);
        if let Some(f) = &st.file {
            // Best effort: a failing disk is already reported by the write path.
            let _ = f.sync_data();
        }
    }

    fn period_over(&self, st: &State, cx: &Cx<'_>) -> bool {
        if cx.spec.rotate_every == RotateEvery::Never || st.size == 0 {
            return false;
        }
        let Some(first) = st.first_write else {
            return false;
        };
        period_key(&first, cx.spec.rotate_every)
            != period_key(&cx.now.naive_local(), cx.spec.rotate_every)
    }

    fn drop_bytes(&self, st: &mut State, cx: &Cx<'_>, n: u64) {
        st.lost += n;
        cx.shared.counters.streams[cx.stat]
            .dropped
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Makes sure there is a working file, writing the loss marker if output was dropped.
    /// False means: drop this data.
    ///
    /// While failing, every write tries again (reopen, then the marker): that costs a few
    /// failing syscalls per read, which the pipe's pace bounds, and loses nothing once the
    /// disk is back.
    fn ensure_open(&self, st: &mut State, cx: &mut Cx<'_>) -> bool {
        if st.file.is_some() && !st.failing {
            return true;
        }
        if st.file.is_none() {
            match open_append(cx.shared.faults.as_ref(), &self.dir, &self.path) {
                Ok((file, meta)) => {
                    st.size = meta.len();
                    st.id = file_id(&meta);
                    st.file = Some(file);
                    if st.size == 0 {
                        st.first_write = None;
                        st.mid_line = false;
                    }
                }
                Err(e) => {
                    self.note_failure(st, cx, &e);
                    return false;
                }
            }
        }
        if st.lost > 0 {
            let marker = self.loss_marker(st, cx);
            let lost = st.lost;
            // The marker is not output: if it cannot be written it is not counted as lost.
            if self.write_out(st, cx, &marker).is_err() {
                return false;
            }
            cx.fx.events.push(LogEvent::WriteResumed {
                path: self.path.clone(),
                lost_bytes: lost,
            });
        } else if st.failing {
            cx.fx.events.push(LogEvent::WriteResumed {
                path: self.path.clone(),
                lost_bytes: 0,
            });
        }
        st.failing = false;
        st.lost = 0;
        true
    }

    fn loss_marker(&self, st: &State, cx: &Cx<'_>) -> Vec<u8> {
        let mut m = Vec::with_capacity(TS_LEN + 80 + st.lost_error.len());
        if st.mid_line {
            m.push(b'\n');
        }
        if cx.spec.timestamps || self.kind == LogKind::Supervisor {
            let mut ts = [0; TS_LEN];
            format_ts(cx.now, &mut ts);
            m.extend_from_slice(&ts);
        }
        m.extend_from_slice(
            format!(
                "[tend: {} bytes of log output lost: {}]\n",
                st.lost, st.lost_error
            )
            .as_bytes(),
        );
        m
    }

    /// Leaves the file in the failing state: no handle, data dropped until recovery.
    fn note_failure(&self, st: &mut State, cx: &mut Cx<'_>, e: &io::Error) {
        st.file = None;
        st.lost_error = e.to_string();
        cx.shared
            .set_error(format!("writing {}: {e}", self.path.display()));
        if !st.failing {
            st.failing = true;
            cx.fx.events.push(LogEvent::WriteFailed {
                path: self.path.clone(),
                error: e.to_string(),
            });
        }
    }

    /// Writes all of `bytes` or enters the failing state and counts the rest as dropped;
    /// false if not everything was written.
    fn append(&self, st: &mut State, cx: &mut Cx<'_>, bytes: &[u8]) -> bool {
        match self.write_out(st, cx, bytes) {
            Ok(()) => true,
            Err(unwritten) => {
                self.drop_bytes(st, cx, unwritten as u64);
                false
            }
        }
    }

    /// Writes all of `bytes` or enters the failing state; on failure, how many bytes were
    /// not written.
    fn write_out(&self, st: &mut State, cx: &mut Cx<'_>, bytes: &[u8]) -> Result<(), usize> {
        let Some(file) = st.file.as_mut() else {
            return Err(bytes.len());
        };
        if st.mid_line && !st.failing {
            // Never glue new output onto a line cut short by a failed write or a crash.
            if file.write_all(b"\n").is_ok() {
                st.size += 1;
                st.mid_line = false;
            }
        }
        let mut written = 0;
        let result = loop {
            if written == bytes.len() {
                break Ok(());
            }
            if let Some(h) = &cx.shared.faults
                && let Err(e) = h(FsOp::Write, &self.path)
            {
                break Err(e);
            }
            match file.write(&bytes[written..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if written > 0 {
            if st.size == 0 || st.first_write.is_none() {
                st.first_write = Some(cx.now.naive_local());
            }
            st.size += written as u64;
            st.mid_line = bytes[written - 1] != b'\n';
            cx.shared.counters.streams[cx.stat]
                .bytes
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        result.map_err(|e| {
            self.note_failure(st, cx, &e);
            bytes.len() - written
        })
    }

    /// Reopens the path if the file behind it was deleted or replaced.
    fn check_vanished(&self, st: &mut State, cx: &mut Cx<'_>) {
        let now = Instant::now();
        if now < st.next_check {
            return;
        }
        st.next_check = now + VANISH_CHECK_INTERVAL;
        let replaced = match fs::metadata(&self.path) {
            Ok(m) => matches!((file_id(&m), st.id), (Some(a), Some(b)) if a != b),
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        };
        if replaced {
            self.reopen(st, cx);
        }
    }

    fn reopen(&self, st: &mut State, cx: &mut Cx<'_>) {
        st.file = None;
        match open_append(cx.shared.faults.as_ref(), &self.dir, &self.path) {
            Ok((file, meta)) => {
                st.size = meta.len();
                st.id = file_id(&meta);
                st.file = Some(file);
                st.mid_line = ends_mid_line(&self.path, st.size);
                if st.size == 0 {
                    st.first_write = None;
                }
            }
            Err(e) => self.note_failure(st, cx, &e),
        }
    }

    /// Close, rename, reopen. False if the rename failed (writing continues into the same
    /// file, which is still open).
    fn rotate(&self, st: &mut State, cx: &mut Cx<'_>) -> bool {
        // Held while the name is chosen and taken: the directory listing behind the choice
        // must not race with compression renaming files of this family.
        let fs_guard = cx.shared.fs_guard();
        let (target, key) = self.rotated_target(cx.now, st.last_rotated);
        let renamed = match &cx.shared.faults {
            Some(h) => h(FsOp::Rename, &self.path),
            None => Ok(()),
        }
        .and_then(|()| fs::rename(&self.path, &target));
        drop(fs_guard);
        match renamed {
            Ok(()) => {
                cx.shared.counters.rotations.fetch_add(1, Ordering::Relaxed);
                st.rotate_failing = false;
                st.last_rotated = Some(key);
                cx.fx.rotated.push((target, self.kind));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.path.exists() => {
                // The active file was deleted from under us: nothing to rotate, just start
                // a new file.
            }
            Err(e) => {
                cx.shared
                    .counters
                    .rotation_failures
                    .fetch_add(1, Ordering::Relaxed);
                cx.shared
                    .set_error(format!("rotating {}: {e}", self.path.display()));
                if !st.rotate_failing {
                    st.rotate_failing = true;
                    cx.fx.events.push(LogEvent::RotateFailed {
                        path: self.path.clone(),
                        error: e.to_string(),
                    });
                }
                return false;
            }
        }
        // The renamed file stays open until the new one is there, so data never has nowhere
        // to go on the success path; on Windows std opens files with FILE_SHARE_DELETE, which
        // is what lets the rename above work while our handle is open.
        st.size = 0;
        st.first_write = None;
        st.mid_line = false;
        self.reopen(st, cx);
        true
    }

    /// A name for the file being closed now that sorts after every existing rotated file and
    /// collides with none, compressed or in compression.
    fn rotated_target(
        &self,
        now: &DateTime<FixedOffset>,
        last: Option<(NaiveDateTime, u32)>,
    ) -> (PathBuf, (NaiveDateTime, u32)) {
        // Compared at the precision of the name: a file named `.491` must count as closed in
        // the same millisecond as `.491700`, or its successor could reuse its name.
        let mut closed = now
            .naive_local()
            .with_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
            .unwrap_or_else(|| now.naive_local());
        let mut seq = 0;
        // If the clock went back (DST end, NTP step) or another rotation happened in the same
        // millisecond, continue after the newest existing name so name order stays time
        // order. What this writer rotated last is that name once it has rotated: the
        // directory is listed only for its first rotation (files of earlier runs), not for
        // every one, which made rotation quadratic in the number of kept files.
        let newest = match last {
            Some(own) => Some(own),
            None => scan(&self.dir, &self.name, self.kind)
                .ok()
                .and_then(|found| found.files.last().map(|f| (f.closed, f.seq))),
        };
        if let Some((newest_closed, newest_seq)) = newest
            && newest_closed >= closed
        {
            closed = newest_closed;
            seq = newest_seq + 1;
        }
        loop {
            let path = self
                .dir
                .join(rotated_file_name(&self.name, self.kind, &closed, seq));
            let taken = [
                path.clone(),
                with_suffix(&path, ".gz"),
                with_suffix(&path, ".gz.tmp"),
            ]
            .iter()
            .any(|p| p.symlink_metadata().is_ok());
            if !taken {
                return (path, (closed, seq));
            }
            seq += 1;
        }
    }
}
