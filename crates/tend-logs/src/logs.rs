//! [`ServiceLogs`]: the per-service entry point that ties readers, files and housekeeping
//! together.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::thread;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use tend_core::{LogFormat, LogMode, LogSpec};

use crate::clock::{Clock, SystemClock, until_next_boundary};
use crate::error::{LogError, LogEvent};
use crate::frame::{Framed, LineBuf, Prefixer, effective_max_line, frame, frame_into};
use crate::json;
use crate::maintain;
use crate::naming::LogKind;
use crate::readers::{Pool, Reader};
use crate::sink::{Cx, Effects, Sink};
use crate::state::FsState;

pub use crate::state::{FaultHook, FsOp, StreamStats};
use crate::transcode::{Transcoder, encoding_for};

thread_local! {
    /// The input buffer of this reader thread's last pipe, for its next one.
    // It is `const`: clippy 1.96 misreads the expansion for windows-gnu's TLS.
    #[allow(clippy::missing_const_for_thread_local)]
    static SPARE_INPUT: Cell<Option<LineBuf>> = const { Cell::new(None) };
}

/// Receives [`LogEvent`]s. Wrap an `mpsc::Sender`, a tokio channel or a logger.
pub type EventSink = Arc<dyn Fn(LogEvent) + Send + Sync>;

/// Which output stream of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Out,
    /// Standard error.
    Err,
}

impl Stream {
    fn index(self) -> usize {
        match self {
            Self::Out => OUT,
            Self::Err => ERR,
        }
    }

    /// `stdout` or `stderr`, without the allocation of `to_string` (the JSON format needs
    /// it on every read).
    fn name(self) -> &'static str {
        match self {
            Self::Out => "stdout",
            Self::Err => "stderr",
        }
    }

    fn tag(self) -> &'static [u8] {
        match self {
            Self::Out => b"out ",
            Self::Err => b"err ",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const OUT: usize = 0;
const ERR: usize = 1;
const TEND: usize = 2;

/// How [`ServiceLogs::open_with`] differs from the defaults.
#[derive(Clone)]
pub struct Options {
    /// Source of local time (default: [`SystemClock`]).
    pub clock: Arc<dyn Clock>,
    /// Where [`LogEvent`]s go (default: nowhere).
    pub events: Option<EventSink>,
    /// Fault injection for tests (default: none).
    pub faults: Option<FaultHook>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            events: None,
            faults: None,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("events", &self.events.is_some())
            .field("faults", &self.faults.is_some())
            .finish_non_exhaustive()
    }
}

/// A snapshot of the pipeline's counters, for `tend status` and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Standard output.
    pub out: StreamStats,
    /// Standard error.
    pub err: StreamStats,
    /// The supervisor's own log.
    pub supervisor: StreamStats,
    /// Successful rotations.
    pub rotations: u64,
    /// Failed rotation attempts (each retry counts).
    pub rotation_failures: u64,
    /// Rotated files retention could not delete.
    pub delete_failures: u64,
    /// Rotated files that could not be compressed.
    pub compress_failures: u64,
    /// Rotated files waiting to be compressed.
    pub compress_pending: usize,
    /// Rotated files left uncompressed because [`COMPRESS_BACKLOG`] files were already
    /// waiting (each one counted once; they are compressed once the backlog is gone).
    pub compress_skipped: u64,
    /// The most recent error, with the operation and path.
    pub last_error: Option<String>,
    /// The active log files.
    pub active_files: Vec<PathBuf>,
}

impl LogStats {
    /// Dropped bytes of all streams.
    #[must_use]
    pub fn dropped_bytes(&self) -> u64 {
        self.out.dropped_bytes + self.err.dropped_bytes + self.supervisor.dropped_bytes
    }
}

/// The files currently in use and the spec they were opened with. Replaced as a whole on
/// reconfigure, so a reader sees one consistent set per chunk.
pub(crate) struct Layout {
    pub(crate) spec: LogSpec,
    out: Arc<Sink>,
    /// The same sink as `out` in combined mode.
    err: Arc<Sink>,
    tend: Arc<Sink>,
}

impl Layout {
    fn open(
        name: &str,
        spec: LogSpec,
        faults: Option<&FaultHook>,
        now: &DateTime<FixedOffset>,
        reuse: Option<&Self>,
    ) -> Result<Self, LogError> {
        std::fs::create_dir_all(&spec.dir).map_err(|source| LogError::CreateDir {
            path: spec.dir.clone(),
            source,
        })?;
        // A sink whose path does not change is kept: two handles with separate size
        // accounting on one file would rotate it under each other.
        let get = |kind: LogKind| -> Result<Arc<Sink>, LogError> {
            let path = kind.active_path(&spec.dir, name);
            if let Some(old) = reuse.and_then(|l| l.sinks().into_iter().find(|s| s.path == path)) {
                return Ok(old);
            }
            Ok(Arc::new(Sink::open(&spec.dir, name, kind, faults, now)?))
        };
        let (out, err) = match spec.mode {
            LogMode::Separate => (get(LogKind::Out)?, get(LogKind::Err)?),
            LogMode::Combined => {
                let both = get(LogKind::Combined)?;
                (Arc::clone(&both), both)
            }
        };
        let tend = get(LogKind::Supervisor)?;
        Ok(Self {
            spec,
            out,
            err,
            tend,
        })
    }

    fn sinks(&self) -> Vec<Arc<Sink>> {
        let mut v = vec![Arc::clone(&self.out)];
        if !Arc::ptr_eq(&self.out, &self.err) {
            v.push(Arc::clone(&self.err));
        }
        v.push(Arc::clone(&self.tend));
        v
    }

    fn sink(&self, stat: usize) -> &Sink {
        match stat {
            OUT => &self.out,
            ERR => &self.err,
            _ => &self.tend,
        }
    }
}

/// Rotated files that may wait for compression at once. A file rotated while this many
/// wait is left uncompressed for now (counted, and said once per backlog) and picked up
/// when the queue is empty again. So output that is faster than the compressor never makes
/// a rotation wait, and the files that retention does not count yet (a file waiting for
/// compression counts once compressed, see `maintain::retention`) stay few.
pub const COMPRESS_BACKLOG: usize = 4;

enum Job {
    Compress(PathBuf),
    /// Recompute when to wake up (the rotation period may have changed).
    Wake,
}

/// State shared by the readers, the housekeeping thread and the [`ServiceLogs`] handle: the
/// file-system state the writers and housekeeping share, plus what only this module uses.
pub(crate) struct Shared {
    fs: FsState,
    clock: Arc<dyn Clock>,
    events: Option<EventSink>,
    /// Compression jobs not finished yet, including the retention run after each: what
    /// [`LogStats::compress_pending`] reports, so "0" means the directory is settled.
    compress_jobs: AtomicUsize,
    /// Files skipped for a full backlog since the queue was last empty: the queue is
    /// refilled from the directory once it is empty, and the skip is said once meanwhile.
    backlog: AtomicBool,
    /// Compressions given up because the logs were closing: left for the next start.
    abandoned: AtomicUsize,
    layout: RwLock<Arc<Layout>>,
}

impl std::ops::Deref for Shared {
    type Target = FsState;

    fn deref(&self) -> &FsState {
        &self.fs
    }
}

impl Shared {
    fn layout(&self) -> Arc<Layout> {
        Arc::clone(&self.layout.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn emit(&self, events: Vec<LogEvent>) {
        if let Some(cb) = &self.events {
            for e in events {
                cb(e);
            }
        }
    }

    fn mark_output(&self, stat: usize, now: &DateTime<FixedOffset>) {
        self.counters.streams[stat]
            .last_output_ms
            .store(now.timestamp_millis(), Ordering::Relaxed);
    }

    fn write(
        &self,
        layout: &Layout,
        stat: usize,
        data: &[u8],
        now: &DateTime<FixedOffset>,
        enqueue: &mut dyn FnMut(Job),
    ) {
        let mut fx = Effects::default();
        layout.sink(stat).write(
            &mut Cx {
                shared: self,
                spec: &layout.spec,
                now,
                stat,
                fx: &mut fx,
            },
            data,
        );
        self.settle(layout, fx, now, enqueue);
    }

    /// Work that follows a rotation, done after the file lock is released: compression is
    /// queued, retention runs, events go out.
    fn settle(
        &self,
        layout: &Layout,
        mut fx: Effects,
        now: &DateTime<FixedOffset>,
        enqueue: &mut dyn FnMut(Job),
    ) {
        if !fx.rotated.is_empty() {
            let mut kinds: Vec<LogKind> = Vec::new();
            for (path, kind) in fx.rotated.drain(..) {
                if layout.spec.compress {
                    self.queue_compress(path, enqueue, &mut fx.events);
                }
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            for kind in kinds {
                maintain::retention(self, &layout.spec, kind, now, &mut fx.events);
            }
        }
        if !fx.events.is_empty() {
            self.emit(fx.events);
        }
    }

    fn queue_compress(
        &self,
        path: PathBuf,
        enqueue: &mut dyn FnMut(Job),
        events: &mut Vec<LogEvent>,
    ) {
        if self.closing.load(Ordering::SeqCst) {
            self.abandoned.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let mut pending = self.pending_guard();
        if pending.contains(&path) {
            return;
        }
        if pending.len() >= COMPRESS_BACKLOG {
            drop(pending);
            self.counters
                .compress_skipped
                .fetch_add(1, Ordering::Relaxed);
            if !self.backlog.swap(true, Ordering::SeqCst) {
                events.push(LogEvent::CompressBacklog {
                    path,
                    waiting: COMPRESS_BACKLOG,
                });
            }
            return;
        }
        pending.insert(path.clone());
        drop(pending);
        self.compress_jobs.fetch_add(1, Ordering::SeqCst);
        enqueue(Job::Compress(path));
    }

    fn tick(&self, enqueue: &mut dyn FnMut(Job)) {
        let layout = self.layout();
        let now = self.clock.now();
        for sink in layout.sinks() {
            let stat = match sink.kind {
                LogKind::Supervisor => TEND,
                LogKind::Err => ERR,
                LogKind::Out | LogKind::Combined => OUT,
            };
            let mut fx = Effects::default();
            sink.tick(&mut Cx {
                shared: self,
                spec: &layout.spec,
                now: &now,
                stat,
                fx: &mut fx,
            });
            self.settle(&layout, fx, &now, enqueue);
        }
    }

    /// Crash clean-up, compression of leftovers and retention for every family in use.
    fn maintain(&self, layout: &Layout, enqueue: &mut dyn FnMut(Job)) {
        let now = self.clock.now();
        let mut events = Vec::new();
        for sink in layout.sinks() {
            let plain = maintain::recover(self, &layout.spec.dir, sink.kind);
            if layout.spec.compress {
                for p in plain {
                    self.queue_compress(p, enqueue, &mut events);
                }
            }
            maintain::retention(self, &layout.spec, sink.kind, &now, &mut events);
        }
        self.emit(events);
    }

    fn next_wake(&self) -> Duration {
        let every = self.layout().spec.rotate_every;
        // Woken a little after the boundary so the tick sees the new period; at least once
        // a minute so clock steps and time-zone changes are caught up with.
        until_next_boundary(&self.clock.now().naive_local(), every)
            .map_or(Duration::from_secs(60), |d| d + Duration::from_millis(5))
            .clamp(Duration::from_millis(10), Duration::from_secs(60))
    }
}

/// Says when a [`ServiceLogs`]' housekeeping thread has ended: see
/// [`ServiceLogs::housekeeper_end`].
#[derive(Clone, Debug, Default)]
pub struct HousekeeperEnd(Arc<(Mutex<bool>, Condvar)>);

impl HousekeeperEnd {
    /// Waits at most `within` for the thread to end; whether it did.
    #[must_use]
    pub fn wait(&self, within: Duration) -> bool {
        let (ended, cv) = &*self.0;
        let guard = ended.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = cv
            .wait_timeout_while(guard, within, |e| !*e)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// Says the end when dropped, so a panicking housekeeper says it too.
struct EndOnDrop(HousekeeperEnd);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        let (ended, cv) = &*self.0.0;
        *ended.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_all();
    }
}

/// Compresses rotated files and rotates quiet files at hour/day boundaries. Ends when the
/// [`ServiceLogs`] (its job sender) is gone and the queue is empty.
fn housekeeper(shared: &Shared, rx: &Receiver<Job>) {
    background();
    let mut local: VecDeque<Job> = VecDeque::new();
    loop {
        let job = match local.pop_front() {
            Some(j) => Some(j),
            None => match rx.recv_timeout(shared.next_wake()) {
                Ok(j) => Some(j),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        if let Some(Job::Compress(path)) = job {
            compress_job(shared, &path, Some(&mut |j| local.push_back(j)));
        }
        shared.tick(&mut |j| local.push_back(j));
    }
    while let Some(job) = local.pop_front() {
        if let Job::Compress(path) = job {
            compress_job(shared, &path, None);
        }
    }
}

/// Puts the calling thread (housekeeping: compression, retention, rotation of quiet files at
/// a boundary) behind everything else for the CPU (and on Windows the disk): compression
/// must never slow the program or the readers that keep its pipes empty. On a machine that
/// stays busy the backlog waits (it is bounded, and said), but a line is never late.
/// Best effort: a refusal changes nothing else.
fn background() {
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    // SAFETY: plain syscalls on this thread's own id; setpriority with PRIO_PROCESS and a
    // thread id sets that thread's nice value on Linux (threads have their own). gettid
    // as a raw syscall: the static musl build has no usable gettid() wrapper (calling it
    // jumped to address 0).
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        if let Ok(tid) = libc::id_t::try_from(tid) {
            libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        }
    }
    #[cfg(windows)]
    #[allow(unsafe_code)]
    // SAFETY: GetCurrentThread is a pseudo handle for this thread, valid for the call;
    // background mode lowers this thread's CPU, I/O and memory priority.
    unsafe {
        use windows_sys::Win32::System::Threading::{
            GetCurrentThread, SetThreadPriority, THREAD_MODE_BACKGROUND_BEGIN,
        };
        SetThreadPriority(GetCurrentThread(), THREAD_MODE_BACKGROUND_BEGIN);
    }
}

/// Compresses one file (or gives up at once when closing). While running (`refill` is how
/// to queue more), retention follows, and the last job of a backlog queues what was skipped.
fn compress_job(shared: &Shared, path: &Path, refill: Option<&mut dyn FnMut(Job)>) {
    let mut events = Vec::new();
    let done = if shared.closing.load(Ordering::SeqCst) {
        shared.pending_guard().remove(path);
        false
    } else {
        maintain::compress(shared, path, &mut events)
    };
    if !done {
        shared.abandoned.fetch_add(1, Ordering::SeqCst);
    } else if refill.is_some() {
        // Now that its real size is known the budget can be enforced.
        let layout = shared.layout();
        let now = shared.clock.now();
        for sink in layout.sinks() {
            maintain::retention(shared, &layout.spec, sink.kind, &now, &mut events);
        }
    }
    if let Some(enqueue) = refill
        && shared.compress_jobs.load(Ordering::SeqCst) == 1
        && !shared.closing.load(Ordering::SeqCst)
        && shared.backlog.swap(false, Ordering::SeqCst)
    {
        // The backlog is gone: queue what was skipped meanwhile, oldest first. Before this
        // job counts as done, so that `compress_pending` is not 0 while files still wait.
        shared.maintain(&shared.layout(), enqueue);
    }
    shared.compress_jobs.fetch_sub(1, Ordering::SeqCst);
    shared.emit(events);
}

/// The log pipeline of one service: its log files, the threads that read its output pipes
/// into them and the housekeeping (rotation by time, retention, compression).
///
/// Cheap to share: hand out clones of the `Arc` that [`ServiceLogs::open`] returns.
pub struct ServiceLogs {
    shared: Arc<Shared>,
    jobs: Sender<Job>,
    housekept: HousekeeperEnd,
    /// The pipes' readers, kept from one run to the next.
    readers: Arc<Pool>,
    reconfiguring: Mutex<()>,
}

impl fmt::Debug for ServiceLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceLogs")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

fn check_name(name: &str) -> Result<(), LogError> {
    let bad = |reason| {
        Err(LogError::BadName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return bad("it contains a path separator or is a relative path");
    }
    Ok(())
}

impl ServiceLogs {
    /// Creates the log directory, opens the active files, cleans up after a crash
    /// (unfinished `.gz.tmp` files), queues uncompressed rotated files for compression and
    /// applies retention.
    pub fn open(
        name: &str,
        spec: LogSpec,
        events: Option<EventSink>,
    ) -> Result<Arc<Self>, LogError> {
        Self::open_with(
            name,
            spec,
            Options {
                events,
                ..Options::default()
            },
        )
    }

    /// [`ServiceLogs::open`] with an injected clock and/or fault hook.
    pub fn open_with(name: &str, spec: LogSpec, options: Options) -> Result<Arc<Self>, LogError> {
        check_name(name)?;
        let now = options.clock.now();
        let layout = Layout::open(name, spec, options.faults.as_ref(), &now, None)?;
        let shared = Arc::new(Shared {
            fs: FsState::new(name, options.faults),
            clock: options.clock,
            events: options.events,
            compress_jobs: AtomicUsize::new(0),
            backlog: AtomicBool::new(false),
            abandoned: AtomicUsize::new(0),
            layout: RwLock::new(Arc::new(layout)),
        });
        let (tx, rx) = mpsc::channel();
        let thread = format!("tend-logs-{name}");
        let worker = Arc::clone(&shared);
        let housekept = HousekeeperEnd::default();
        let ended = housekept.clone();
        thread::Builder::new()
            .name(thread.clone())
            .spawn(move || {
                // Declared first, dropped last: the end is said once this thread's hold
                // on the files (`worker`) is gone too.
                let _ended = EndOnDrop(ended);
                housekeeper(&worker, &rx);
                drop(worker);
            })
            .map_err(|source| LogError::Spawn { thread, source })?;
        let logs = Arc::new(Self {
            shared,
            jobs: tx,
            housekept,
            readers: Pool::new(format!("tend-logs-{name}-reader")),
            reconfiguring: Mutex::new(()),
        });
        logs.shared
            .maintain(&logs.shared.layout(), &mut |j| logs.send(j));
        Ok(logs)
    }

    fn send(&self, job: Job) {
        // The housekeeper only exits after this sender is dropped, so this cannot fail.
        let _ = self.jobs.send(job);
    }

    /// Reads `pipe` until end of file on a thread of its own and writes what it reads into
    /// the stream's log file. The thread is a free reader of an earlier pipe of these logs
    /// when there is one, a new one otherwise.
    ///
    /// Returns at once. The supervisor does not need to join the reader before restarting
    /// the program: if a grandchild keeps the pipe open, the reader simply goes on and
    /// writes alongside the next generation's.
    pub fn capture<R: Read + Send + 'static>(
        self: &Arc<Self>,
        stream: Stream,
        pipe: R,
    ) -> Result<Reader, LogError> {
        self.capture_of(None, stream, pipe)
    }

    /// [`capture`](Self::capture) of the run with main process `pid` (for the `pid` field
    /// of `format = "json"`).
    pub fn capture_of<R: Read + Send + 'static>(
        self: &Arc<Self>,
        pid: Option<u32>,
        stream: Stream,
        pipe: R,
    ) -> Result<Reader, LogError> {
        self.capture_on(pid, stream, pipe, None)
    }

    /// [`capture_of`](Self::capture_of) of a pipe whose fd is `ready` (`pipe` wraps it and
    /// keeps it open): on Linux a free reader is only woken when the pipe has something to
    /// read or is at its end, not to be handed it.
    #[cfg(unix)]
    pub fn capture_fd<R: Read + Send + 'static>(
        self: &Arc<Self>,
        pid: Option<u32>,
        stream: Stream,
        pipe: R,
        ready: std::os::fd::RawFd,
    ) -> Result<Reader, LogError> {
        self.capture_on(pid, stream, pipe, Some(ready))
    }

    fn capture_on<R: Read + Send + 'static>(
        self: &Arc<Self>,
        pid: Option<u32>,
        stream: Stream,
        pipe: R,
        ready: Option<crate::readers::Fd>,
    ) -> Result<Reader, LogError> {
        let logs = Arc::clone(self);
        let pipe = self.decoded(stream, pipe);
        self.readers
            .run_when(Box::new(move || logs.pump(pid, stream, pipe)), ready)
            .map_err(|source| LogError::Spawn {
                thread: format!("tend-logs-{}-reader", self.shared.name),
                source,
            })
    }

    /// `pipe` as it is, or (with `encoding`) decoded into UTF-8.
    fn decoded<R: Read + Send + 'static>(
        self: &Arc<Self>,
        stream: Stream,
        pipe: R,
    ) -> Box<dyn Read + Send> {
        let layout = self.shared.layout();
        let Some(label) = layout.spec.encoding.clone() else {
            return Box::new(pipe);
        };
        let Some(encoding) = encoding_for(&label) else {
            return Box::new(pipe);
        };
        let logs = Arc::clone(self);
        let mut said = false;
        let on_bad = move |bytes| {
            logs.shared.counters.streams[stream.index()]
                .replaced
                .fetch_add(bytes, Ordering::Relaxed);
            // Once per run and stream: the count says the rest.
            if !std::mem::replace(&mut said, true) {
                logs.shared.emit(vec![LogEvent::Unmappable {
                    stream: stream.to_string(),
                    encoding: label.clone(),
                }]);
            }
        };
        Box::new(Transcoder::new(pipe, encoding, Box::new(on_bad)))
    }

    fn pump(&self, pid: Option<u32>, stream: Stream, pipe: Box<dyn Read + Send>) {
        let mut input = SPARE_INPUT.take().unwrap_or_else(LineBuf::new);
        self.pump_into(&mut input, pid, stream, pipe);
        input.recycle();
        SPARE_INPUT.set(Some(input));
    }

    fn pump_into(
        &self,
        input: &mut LineBuf,
        pid: Option<u32>,
        stream: Stream,
        mut pipe: Box<dyn Read + Send>,
    ) {
        let stat = stream.index();
        let mut prefixer = Prefixer::new();
        let mut out = Vec::new();
        let mut json_head = Vec::new();
        loop {
            let eof = match input.read_from(&mut pipe) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A pipe that errors will not recover; whatever was read is still written.
                Err(_) => true,
            };
            // The usual end of a run: nothing left to write, so no clock read (chrono's
            // first local time on a thread reads /etc/localtime; a run that printed nothing
            // never needs it).
            if eof && input.data().is_empty() {
                return;
            }
            let now = self.shared.clock.now();
            if !eof {
                self.shared.mark_output(stat, &now);
            }
            let layout = self.shared.layout();
            let spec = &layout.spec;
            let max_line = effective_max_line(spec.max_line);
            let (consumed, framed): (usize, &[u8]) = if spec.format == LogFormat::Json {
                json::head(
                    &mut json_head,
                    prefixer.stamp(&now),
                    stream.name(),
                    &self.shared.name,
                    pid,
                );
                out.clear();
                let (n, replaced) =
                    json::frame_into(&mut out, input.data(), &json_head, max_line, eof);
                if replaced > 0 {
                    self.shared.counters.streams[stat]
                        .replaced
                        .fetch_add(replaced, Ordering::Relaxed);
                }
                (n, &out)
            } else {
                let tag = if spec.mode == LogMode::Combined && spec.stream_tags {
                    stream.tag()
                } else {
                    b""
                };
                let prefix = prefixer.prefix(spec.timestamps, tag, &now);
                match frame(input.data(), prefix, max_line, eof, &mut out) {
                    Framed::Passthrough(n) => (n, &input.data()[..n]),
                    Framed::Built(n) => (n, &out),
                }
            };
            if !framed.is_empty() {
                self.shared
                    .write(&layout, stat, framed, &now, &mut |j| self.send(j));
            }
            input.consume(consumed);
            if eof {
                return;
            }
        }
    }

    /// Writes one line (or several, if it contains newlines) to the supervisor's own log
    /// `<name>.tend.log`, always timestamped. A trailing newline is optional.
    pub fn supervisor_line(&self, line: &[u8]) {
        let now = self.shared.clock.now();
        self.shared.mark_output(TEND, &now);
        let layout = self.shared.layout();
        let out = supervisor_line_bytes(&layout.spec, &self.shared.name, line, &now);
        self.shared
            .write(&layout, TEND, &out, &now, &mut |j| self.send(j));
    }

    /// Applies a new spec to the running pipeline. Size, time, retention, compression and
    /// line settings apply from the next chunk on; a new `dir` or `mode` opens the new files
    /// (the old ones are closed once no reader is writing to them, and stay where they are).
    /// On error nothing changes.
    pub fn reconfigure(&self, spec: LogSpec) -> Result<(), LogError> {
        let _one_at_a_time = self
            .reconfiguring
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let old = self.shared.layout();
        let now = self.shared.clock.now();
        let layout = Arc::new(Layout::open(
            &self.shared.name,
            spec,
            self.shared.faults.as_ref(),
            &now,
            Some(&old),
        )?);
        *self
            .shared
            .layout
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::clone(&layout);
        self.send(Job::Wake);
        self.shared.maintain(&layout, &mut |j| self.send(j));
        Ok(())
    }

    /// Applies rotation by hour/day now. The housekeeping thread does this at each boundary;
    /// callers with an injected clock call it after moving the clock.
    pub fn tick(&self) {
        self.shared.tick(&mut |j| self.send(j));
    }

    /// Asks the OS to put the active files on disk (`fsync`). Output already reaches the OS
    /// after every read, so this is only needed to survive a power loss, e.g. at stop.
    pub fn flush(&self) {
        for sink in self.shared.layout().sinks() {
            sink.sync();
        }
    }

    /// For a clean exit: flushes, then stops compression without waiting for it. A
    /// compression that is running is given up at its next 64 KiB (its `.gz.tmp` is
    /// deleted) and queued ones are not started, so an exit never waits for the compressor:
    /// the rotated files are complete as they are and are compressed at the next open.
    /// Waits at most `within` for the housekeeping thread to let go (milliseconds). Returns
    /// how many rotated files were left uncompressed this way.
    ///
    /// Logs that keep being written to after this (a straggling reader) leave their
    /// rotated files uncompressed too.
    pub fn close(&self, within: std::time::Duration) -> usize {
        self.flush();
        self.shared.closing.store(true, Ordering::SeqCst);
        let end = std::time::Instant::now() + within;
        while self.shared.compress_jobs.load(Ordering::SeqCst) > 0
            && std::time::Instant::now() < end
        {
            // Shutdown only, once: a short poll of the count. (`HousekeeperEnd` says when the
            // thread has ended, which it does only after every handle is gone; here the
            // caller still holds one.)
            thread::sleep(std::time::Duration::from_millis(1));
        }
        self.shared.abandoned.load(Ordering::SeqCst)
            + self.shared.compress_jobs.load(Ordering::SeqCst)
    }

    /// A handle that says when these logs' housekeeping thread (compression, retention) has
    /// ended, which it does once every [`ServiceLogs`] handle is dropped and the work it had
    /// already taken up is done. For whoever removes the log directory next (tests, an
    /// embedder): until then a compression may still be writing into it.
    #[must_use]
    pub fn housekeeper_end(&self) -> HousekeeperEnd {
        self.housekept.clone()
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> LogStats {
        let c = &self.shared.counters;
        let layout = self.shared.layout();
        LogStats {
            out: c.streams[OUT].snapshot(),
            err: c.streams[ERR].snapshot(),
            supervisor: c.streams[TEND].snapshot(),
            rotations: c.rotations.load(Ordering::Relaxed),
            rotation_failures: c.rotation_failures.load(Ordering::Relaxed),
            delete_failures: c.delete_failures.load(Ordering::Relaxed),
            compress_failures: c.compress_failures.load(Ordering::Relaxed),
            compress_pending: self.shared.compress_jobs.load(Ordering::SeqCst),
            compress_skipped: c.compress_skipped.load(Ordering::Relaxed),
            last_error: self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            active_files: layout.sinks().iter().map(|s| s.path.clone()).collect(),
        }
    }

    /// The spec in force.
    #[must_use]
    pub fn spec(&self) -> LogSpec {
        self.shared.layout().spec.clone()
    }

    /// The service name the files are named after.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.shared.name
    }
}

/// A line of tend's own log (`<name>.tend.log`) framed as the supervisor writes it:
/// timestamped, text or JSON as `[logs] format` says. For another tend process that appends
/// to the same file (`tend upgrade` tells the service's log each step it takes).
#[must_use]
pub fn supervisor_line_bytes(
    spec: &LogSpec,
    name: &str,
    line: &[u8],
    now: &DateTime<FixedOffset>,
) -> Vec<u8> {
    let mut prefixer = Prefixer::new();
    let max_line = effective_max_line(spec.max_line);
    let mut out = Vec::with_capacity(line.len() + 64);
    if spec.format == LogFormat::Json {
        let mut head = Vec::new();
        json::head(&mut head, prefixer.stamp(now), "tend", name, None);
        json::frame_into(&mut out, line, &head, max_line, true);
    } else {
        let prefix = prefixer.prefix(true, b"", now);
        frame_into(&mut out, line, prefix, max_line, true);
    }
    out
}
