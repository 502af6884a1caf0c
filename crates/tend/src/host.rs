//! One way to supervise a service, shared by `tend run` (foreground) and `tend service`
//! (under the OS service manager): the same core, logs, status file and policies.
//!
//! [`boot`] is the one bootstrap: load the config, make the event bus, start the runtime,
//! open the logs, supervise, and hand back how it ended. What differs per OS manager is an
//! [`Adapter`]: it turns the OS's requests (signals, SCM controls, named events, console
//! events) into [`Control`]s, subscribes what turns the supervisor's events into the OS's
//! form (sd_notify, the Event Log), sets the OS's states (the SCM's), and maps the end to
//! the OS's exit form. The adapters: `commands/run.rs` (console), `unix_host.rs` (systemd,
//! launchd), `service_host.rs` (SCM), `run_key_host.rs` (the Windows per-user Run entry).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tend_core::{EventLogLines, ServiceSpec};
use tend_health::OutputClock;
use tend_health::metrics::LogStreamMetrics;
use tend_logs::{LogEvent, ServiceLogs, Stream};
use tokio::sync::mpsc;

use crate::error::CliError;
use crate::events::{Bus, Delivered, Event, Failure, Subscriber};
use crate::os::stderr_events::{self, Forwarder};
use crate::supervisor::{Capture, Control, Loader, Outcome, Pipe, RunTail, Supervisor};

/// Where a host finds its service.
pub(crate) struct Boot {
    /// The config to load: `tend run`'s argument or the installed copy.
    pub(crate) config: PathBuf,
    /// How to load it (where `[logs] dir` defaults to).
    pub(crate) load: tend_config::LoadOptions,
    /// Where the status file goes; `None`: next to the logs (`tend run`).
    pub(crate) state_dir: Option<PathBuf>,
    /// Whether tend's own lines also go to stderr (a terminal, the journal).
    pub(crate) to_stderr: bool,
}

/// What a host does for its OS manager around the one bootstrap. Every step but
/// [`listen`](Adapter::listen) is optional.
pub(crate) trait Adapter {
    /// The config could not be loaded: say so where this OS looks (the journal's status,
    /// the status file, the Event Log). The error is returned from [`boot`] too.
    fn config_failed(&mut self, _e: &tend_config::ConfigError) {}
    /// Who takes tend's events besides stderr, `<name>.tend.log`, the status file, alerts
    /// and metrics: the OS's own forms (sd_notify, the Event Log).
    fn subscribers(&mut self) -> Vec<Arc<dyn Subscriber>> {
        Vec::new()
    }
    /// The config's warnings (things about this machine, not the file): by default as
    /// tend's events.
    fn warnings(&mut self, loaded: &tend_config::Loaded, events: &Bus) {
        for w in &loaded.warnings {
            events.emit(Event::ConfigWarning(
                w.display_in(&loaded.spec.config_path).to_string(),
            ));
        }
    }
    /// The spec is known (the SCM's stop wait hint comes from it).
    fn loaded(&mut self, _spec: &ServiceSpec) {}
    /// On the runtime, before the program starts: begin turning the OS's requests into
    /// `controls`, so an early stop is graceful.
    fn listen(
        &mut self,
        controls: mpsc::UnboundedSender<Control>,
        events: &Bus,
    ) -> Result<(), CliError>;
    /// Everything is in place; supervision begins (the SCM's RUNNING).
    fn supervising(&mut self) {}
    /// Where the program's stderr lines go with `[logs] eventlog = "stderr"` (the Event
    /// Log of a Windows service); `None` where there is no such place.
    fn stderr_events(&mut self) -> Option<crate::os::stderr_events::Write> {
        None
    }
}

/// Loads, supervises until the machine settles, and says how it ended: the one bootstrap
/// of every host.
pub(crate) fn boot(b: Boot, a: &mut dyn Adapter) -> Result<Outcome, CliError> {
    let loaded = match tend_config::load(&b.config, &b.load) {
        Ok(l) => l,
        Err(e) => {
            a.config_failed(&e);
            return Err(e.into());
        }
    };
    let events = Bus::new();
    if b.to_stderr {
        events.subscribe(Arc::new(crate::events::Stderr {
            name: loaded.spec.name.to_string(),
        }));
    }
    for s in a.subscribers() {
        events.subscribe(s);
    }
    a.warnings(&loaded, &events);
    let spec = Arc::new(loaded.spec);
    a.loaded(&spec);
    let state_dir = b.state_dir.unwrap_or_else(|| spec.logs.dir.clone());
    // The OS manager or `tend install` creates it; if it is missing anyway, the status
    // writer says so.
    let _ = std::fs::create_dir_all(&state_dir);
    let rt = runtime().map_err(|e| CliError::io("cannot start the runtime", e))?;
    rt.block_on(async {
        let (tx, rx) = mpsc::unbounded_channel();
        a.listen(tx, &events)?;
        let host = Host {
            spec: spec.clone(),
            events: events.clone(),
            state_dir,
            stderr_events: a.stderr_events(),
        };
        let logs = host.open_logs()?;
        let reload = loader(b.config.clone(), b.load.clone(), events.clone());
        a.supervising();
        Ok(host.supervise(logs, reload, rx).await)
    })
}

/// The exit code of a supervision that ended (docs/cli.md): 0 stopped, 1 failed.
pub(crate) fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Stopped => crate::error::code::OK,
        Outcome::Failed => crate::error::code::PROGRAM_FAILED,
    }
}

/// What a host needs besides the spec.
pub(crate) struct Host {
    pub(crate) spec: Arc<ServiceSpec>,
    pub(crate) events: Bus,
    /// Where the status file goes.
    pub(crate) state_dir: PathBuf,
    /// See [`Adapter::stderr_events`].
    pub(crate) stderr_events: Option<crate::os::stderr_events::Write>,
}

/// Hands each run's pipes to the log pipeline.
struct LogCapture {
    logs: Arc<ServiceLogs>,
    bus: Bus,
    /// Stamped on every chunk the program writes, for the silence watchdog.
    output: Arc<OutputClock>,
    /// Reader threads still alive, drained (bounded) at exit so the end of the output is
    /// written before tend goes.
    readers: Arc<std::sync::Mutex<Vec<tend_logs::Reader>>>,
    /// See [`Stamped::waiting`].
    waiting: Arc<AtomicUsize>,
    /// `[logs] eventlog = "stderr"`: stderr chunks offered to the Event Log's writer.
    events: Option<Arc<Forwarder>>,
}

/// `<name>.tend.log`: every line, through the log pipeline (which stamps it).
struct TendLog(Arc<ServiceLogs>);

impl Subscriber for TendLog {
    fn deliver(&self, e: &Delivered<'_>) {
        if e.event.level().is_some() {
            self.0.supervisor_line(e.text().as_bytes());
        }
    }
}

/// A pipe that stamps `clock` whenever the program wrote something. Wrapping the reader
/// here keeps tend-logs unaware of health checks. Per read (not per line): a clock read
/// and an atomic store, the tail's copy, and on Unix two atomic stores for [`Drained`];
/// when the pipe is empty, one more `read` (`EAGAIN`), a nudge of the tail and a `poll`.
///
/// [`Drained`]: crate::supervisor::Drained
struct Stamped {
    /// The read end; the run's tail may ask it whether it is empty (Unix, [`Drained`]).
    ///
    /// [`Drained`]: crate::supervisor::Drained
    pipe: Arc<std::io::PipeReader>,
    clock: Arc<OutputClock>,
    /// Readers waiting in `read` or `poll` right now (not writing what they read): at exit,
    /// a pipe whose reader waits and that stays quiet is held by a stray process, not busy.
    /// (A reader not started yet is counted by the drain itself: `Reader::is_started`.)
    waiting: Arc<AtomicUsize>,
    /// The run's output end, for the exit line, status, alerts and crash records (a copy
    /// of at most the last few KiB of each read).
    tail: Option<(Arc<RunTail>, Pipe)>,
    /// The stderr pipe's copy for the Event Log (never waits).
    events: Option<Arc<Forwarder>>,
    /// Unix: the pipe is read without blocking, and this is what the run's tail knows of it.
    #[cfg(unix)]
    drained: Option<Arc<crate::supervisor::Drained>>,
}

impl Stamped {
    /// Reads the pipe; on Unix, with `drained`, without blocking, waiting in `poll` while
    /// it is empty (so `drained` can say so).
    fn read_pipe(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(unix)]
        if let Some(d) = &self.drained {
            loop {
                d.reading();
                match (&*self.pipe).read(buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        d.pushed();
                        // All read is in the tail: an exit waiting for it may go on.
                        if let Some((t, _)) = &self.tail {
                            t.nudge();
                        }
                        self.waiting.fetch_add(1, Ordering::SeqCst);
                        let r = wait_readable(&self.pipe);
                        self.waiting.fetch_sub(1, Ordering::SeqCst);
                        r?;
                    }
                    other => return other,
                }
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let n = (&*self.pipe).read(buf);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        n
    }
}

/// Waits until `pipe` has something to read or is at its end (interrupted: returns, and
/// the caller reads again).
#[cfg(unix)]
#[allow(unsafe_code)]
fn wait_readable(pipe: &std::io::PipeReader) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let mut p = nix::libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: nix::libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll of one valid pollfd on an open pipe.
    if unsafe { nix::libc::poll(&raw mut p, 1, -1) } < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// Makes the read end of a pipe non-blocking.
#[cfg(unix)]
fn non_blocking(pipe: &std::io::PipeReader) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(pipe, FcntlArg::F_GETFL)?);
    fcntl(pipe, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

impl Read for Stamped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.read_pipe(buf);
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                if let Some((t, pipe)) = &self.tail
                    && e.kind() != std::io::ErrorKind::Interrupted
                {
                    t.ended(*pipe);
                }
                return Err(e);
            }
        };
        if n > 0 {
            self.clock.touch();
            if let Some(f) = &self.events {
                f.offer(&buf[..n]);
            }
        }
        if let Some((t, pipe)) = &self.tail {
            if n == 0 {
                t.ended(*pipe);
            } else {
                t.push(*pipe, &buf[..n]);
            }
        }
        #[cfg(unix)]
        if let Some(d) = &self.drained {
            d.pushed();
        }
        Ok(n)
    }
}

impl Capture for LogCapture {
    fn reconfigure(&self, spec: &tend_core::LogSpec) -> Result<Vec<PathBuf>, String> {
        self.logs
            .reconfigure(spec.clone())
            .map_err(|e| e.to_string())?;
        if let Some(f) = &self.events {
            f.set(spec.eventlog == EventLogLines::Stderr);
        }
        Ok(self.logs.stats().active_files)
    }

    fn attach(
        &self,
        pid: u32,
        stdout: std::io::PipeReader,
        stderr: std::io::PipeReader,
    ) -> Option<Arc<RunTail>> {
        let tail = Arc::new(RunTail::default());
        for (stream, pipe) in [(Stream::Out, stdout), (Stream::Err, stderr)] {
            #[cfg(unix)]
            let fd = std::os::fd::AsRawFd::as_raw_fd(&pipe);
            let pipe = Arc::new(pipe);
            // Read without blocking, so the exit need not wait for the pipe's end to know
            // the tail is whole (supervisor::Drained). A pipe that cannot be made so is
            // read as before, and the exit waits for its end.
            #[cfg(unix)]
            let drained = non_blocking(&pipe).ok().map(|()| {
                let d = Arc::new(crate::supervisor::Drained::new(&pipe));
                tail.watch(Arc::clone(&d));
                d
            });
            // The reader thread is never joined: a grandchild holding the pipe must not
            // hold up a restart. If no thread can be started the pipe is dropped (the
            // tail's `Drained` does not keep it open) and the program sees EPIPE, which is
            // loud rather than a silent hang.
            let pipe = Stamped {
                pipe,
                #[cfg(unix)]
                drained,
                clock: self.output.clone(),
                waiting: self.waiting.clone(),
                tail: Some((
                    tail.clone(),
                    match stream {
                        Stream::Err => Pipe::Err,
                        Stream::Out => Pipe::Out,
                    },
                )),
                events: match stream {
                    Stream::Err => self.events.clone(),
                    Stream::Out => None,
                },
            };
            // The reader is woken when the pipe needs reading, not to be handed it.
            #[cfg(unix)]
            let captured = self.logs.capture_fd(Some(pid), stream, pipe, fd);
            #[cfg(not(unix))]
            let captured = self.logs.capture_of(Some(pid), stream, pipe);
            match captured {
                Ok(handle) => {
                    let mut readers = self
                        .readers
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    readers.retain(|h| !h.is_finished());
                    readers.push(handle);
                }
                Err(e) => self.bus.emit(Event::Failed(Failure::Capture {
                    stream: stream.to_string(),
                    error: e.to_string(),
                })),
            }
        }
        Some(tail)
    }
}

/// `tend upgrade`s of the service by result, as the upgrading tend published them into the
/// state directory (`release::results`); none for a service never upgraded, or run by
/// `tend run`.
fn upgrade_metrics(state_dir: &std::path::Path) -> crate::supervisor::UpgradeMetrics {
    let state_dir = state_dir.to_owned();
    Arc::new(move || crate::release::results::published(&state_dir))
}

impl Host {
    /// Opens the logs. Failing here (the log directory cannot be created) stops tend before
    /// the program starts: better a clear error now than a service that runs blind.
    pub(crate) fn open_logs(&self) -> Result<Arc<ServiceLogs>, CliError> {
        // The pipeline's trouble is one more event; it is said on the delivery thread, so
        // the `.tend.log` subscriber writing into this same pipeline cannot deadlock it.
        let bus = self.events.clone();
        let events: tend_logs::EventSink = Arc::new(move |e: LogEvent| bus.emit(Event::Logs(e)));
        let logs = ServiceLogs::open(
            self.spec.name.as_str(),
            self.spec.logs.clone(),
            Some(events),
        )
        .map_err(|e| {
            // The OS error's kind chooses the exit code (4 for a permission): keep it.
            let kind = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .map_or(std::io::ErrorKind::Other, std::io::Error::kind);
            CliError::io(
                format!("cannot open the logs of `{}`", self.spec.name),
                std::io::Error::new(kind, e),
            )
        })?;
        self.events.subscribe(Arc::new(TendLog(logs.clone())));
        Ok(logs)
    }

    /// Supervises until the machine settles. Must run on a current-thread runtime on the
    /// thread that will spawn the program (see `proc::unix`: PR_SET_PDEATHSIG).
    pub(crate) async fn supervise(
        self,
        logs: Arc<ServiceLogs>,
        loader: Loader,
        controls: mpsc::UnboundedReceiver<Control>,
    ) -> Outcome {
        let status_file = crate::status::path(&self.state_dir, self.spec.name.as_str());
        let output = Arc::new(OutputClock::new());
        let readers = Arc::new(std::sync::Mutex::new(Vec::new()));
        let waiting = Arc::new(AtomicUsize::new(0));
        let events = self.stderr_events.clone().and_then(|write| {
            let on = self.spec.logs.eventlog == EventLogLines::Stderr;
            let decode = stderr_events::decoder(self.spec.logs.encoding.as_deref());
            Forwarder::start(on, decode, write)
                .map_err(|e| {
                    self.events
                        .emit(Event::Failed(Failure::ForwardStderr(e.to_string())));
                })
                .ok()
        });
        let capture = LogCapture {
            logs: logs.clone(),
            bus: self.events.clone(),
            output: output.clone(),
            readers: readers.clone(),
            waiting: waiting.clone(),
            events,
        };
        let counters = logs.clone();
        let log_metrics: crate::supervisor::LogMetrics = Arc::new(move || {
            let stats = counters.stats();
            [("out", stats.out), ("err", stats.err)]
                .into_iter()
                .map(|(stream, s)| LogStreamMetrics {
                    stream: stream.to_owned(),
                    bytes_total: s.bytes_written,
                    dropped_bytes_total: s.dropped_bytes,
                })
                .collect()
        });
        let sup = Supervisor::new(
            self.spec.clone(),
            self.events.clone(),
            Some(Box::new(capture)),
        )
        .with_status(status_file, logs.stats().active_files)
        .with_output(output.clone(), log_metrics)
        .with_upgrades(upgrade_metrics(&self.state_dir))
        .with_loader(loader);
        // Once start-up is over (the program started, its readers run, the first status is
        // written), what only it needed goes back: code pages, freed heap.
        crate::memory::after_startup_soon(std::time::Duration::from_secs(1));
        let outcome = sup.run(controls).await;
        drain(&readers, &output, &waiting).await;
        let pending = logs.close(std::time::Duration::from_secs(10));
        if pending > 0 {
            self.events.emit(Event::LogsNotCompressed(pending));
        }
        outcome
    }
}

/// After the last run: the tree is gone (killed after its main process exited), so the
/// pipes reach EOF and the readers write the last bytes. A process that escaped the tree
/// (a daemonising grandchild) may hold a pipe open for ever, so the wait ends once every
/// reader left waits on a pipe that has been quiet for a moment (a reader still writing
/// to a slow disk is waited for), and in any case after a few seconds: the stop ends when
/// the tree is gone, not when a stray holder lets go.
async fn drain(
    readers: &std::sync::Mutex<Vec<tend_logs::Reader>>,
    output: &OutputClock,
    waiting: &AtomicUsize,
) {
    use std::time::{Duration, Instant};
    const QUIET: Duration = Duration::from_millis(200);
    const AT_MOST: Duration = Duration::from_secs(5);
    let began = Instant::now();
    let readers = std::mem::take(
        &mut *readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    // An async wait, so the runtime's other tasks (signal forwarding, the metrics
    // listener) stay responsive on this one thread meanwhile.
    loop {
        let open = readers.iter().filter(|r| !r.is_finished()).count();
        // A reader not started yet waits for its pipe too (a free reader takes up the
        // next run's pipe only when it has something to read).
        let unstarted = readers.iter().filter(|r| !r.is_started()).count();
        let now = Instant::now();
        let quiet = now.duration_since(output.last().unwrap_or(began).max(began)) >= QUIET;
        if open == 0
            || now.duration_since(began) >= AT_MOST
            || (quiet && waiting.load(Ordering::SeqCst) + unstarted >= open)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for r in readers {
        if r.is_finished() {
            let _ = r.join();
        }
    }
}

/// A current-thread runtime: one thread is all an event-driven supervisor needs, and the
/// program must be spawned from the thread that stays alive (PR_SET_PDEATHSIG).
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A [`Loader`] that reads `path` with `opts` again and reports every problem in one line.
pub(crate) fn loader(path: PathBuf, opts: tend_config::LoadOptions, events: Bus) -> Loader {
    Box::new(move || match tend_config::load(&path, &opts) {
        Ok(l) => {
            for w in &l.warnings {
                events.emit(Event::ConfigWarning(
                    w.display_in(&l.spec.config_path).to_string(),
                ));
            }
            Ok(l.spec)
        }
        Err(e) => Err(config_error_text(&e)),
    })
}

/// A config error on one line, each problem with its place in the file (what a rejected
/// reload, the journal, `tend status` and `tend start` show); any other error with its
/// causes.
pub(crate) fn config_error_text(e: &tend_config::ConfigError) -> String {
    match e {
        tend_config::ConfigError::Invalid { path, problems } => problems
            .iter()
            .filter(|p| p.severity == tend_config::Severity::Error)
            .map(|p| p.display_in(path).to_string())
            .collect::<Vec<_>>()
            .join("; "),
        other => crate::report::chain(other),
    }
}

/// Turns the process's own stop and reload signals into [`Control`]s, shared by `tend run`
/// and the Unix service host. `on_stop` is told which signal asked for the stop (the
/// systemd host sends `STOPPING=1` from it). Handlers are installed before the program
/// starts, so an early Ctrl+C stops it gracefully instead of killing tend.
#[cfg(unix)]
pub(crate) fn forward_signals(
    tx: mpsc::UnboundedSender<Control>,
    events: Bus,
    on_stop: impl Fn(&str) + Send + 'static,
) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mk = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| CliError::io(format!("cannot handle {name}"), e))
    };
    let mut term = mk(SignalKind::terminate(), "SIGTERM")?;
    let mut int = mk(SignalKind::interrupt(), "SIGINT")?;
    let mut hup = mk(SignalKind::hangup(), "SIGHUP")?;
    tokio::spawn(async move {
        loop {
            let (ctl, sig) = tokio::select! {
                _ = term.recv() => (Control::Stop, "SIGTERM"),
                _ = int.recv() => (Control::Stop, "SIGINT"),
                _ = hup.recv() => (Control::Reload, "SIGHUP"),
            };
            let stop = ctl == Control::Stop;
            events.emit(Event::Requested { by: sig, stop });
            if stop {
                on_stop(sig);
            }
            if tx.send(ctl).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// Windows console events (Ctrl+C, Ctrl+Break, console close) as stop requests.
#[cfg(windows)]
pub(crate) fn forward_signals(
    tx: mpsc::UnboundedSender<Control>,
    events: Bus,
    on_stop: impl Fn(&str) + Send + 'static,
) -> Result<(), CliError> {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
    let mut c = ctrl_c().map_err(|e| CliError::io("cannot handle Ctrl+C", e))?;
    let mut b = ctrl_break().map_err(|e| CliError::io("cannot handle Ctrl+Break", e))?;
    let mut close = ctrl_close().map_err(|e| CliError::io("cannot handle console close", e))?;
    tokio::spawn(async move {
        loop {
            let what = tokio::select! {
                _ = c.recv() => "Ctrl+C",
                _ = b.recv() => "Ctrl+Break",
                _ = close.recv() => "console close",
            };
            events.emit(Event::Requested {
                by: what,
                stop: true,
            });
            on_stop(what);
            if tx.send(Control::Stop).is_err() {
                break;
            }
        }
    });
    Ok(())
}
