//! The output side of the runtime: one stream of typed events, and the subscribers that
//! turn them into stderr lines, `<name>.tend.log`, the Event Log, sd_notify, alerts, the
//! status file and metrics.
//!
//! Producers (the supervisor, the watch, the log pipeline, the hosts) call [`Bus::emit`]:
//! it queues the event and returns. One delivery thread per process hands each event to
//! the bus's [`Subscriber`]s, which choose by variant. So no producer ever calls a
//! consumer, or holds a lock a consumer needs (a full log disk once froze the supervisor
//! that way: the log pipeline reported its trouble into a sink that wrote to the same
//! disk), and a subscriber that emits back only queues behind the current event.
//!
//! Every event has exactly one wording, its `Display`; what is not a line (a status
//! snapshot, a metrics sample, an alert) says what it is in a few words.

use std::cell::OnceCell;
use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use tend_core::{Exit, GiveUp, Notice};
use tend_health::Alert;
use tend_health::metrics::ServiceMetrics;
use tend_health::notify::DeliveryFailure;
use tend_logs::LogEvent;

use crate::report::{describe_exit, human};
use crate::status::Snapshot;

#[cfg(test)]
mod tests;

/// Something tend tells the operator or the OS about one service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// A step of the supervision (started, exited, restarting, gave up, stopped), with what
    /// the program said last where that explains it (`; last stderr: ...`), as one suffix.
    Step { notice: Notice, last_words: String },
    /// The operator asked tend to stop or reload: a signal, a console event, an SCM
    /// control. `by` names it (`SIGTERM`, `Ctrl+C`).
    Requested { by: &'static str, stop: bool },
    /// `tend stop --user` / `tend reload --user` set the named event (Windows only: the
    /// variant exists everywhere so the wording is tested everywhere).
    #[cfg_attr(not(windows), allow(dead_code))]
    UserRequest { stop: bool },
    /// A reload: what it changed, or why it did not.
    Reload(Reload),
    /// `[health]`, the recovery after trouble.
    Health(Health),
    /// `[limits]`.
    Limits(Limits),
    /// The `on_give_up` hook.
    Hook(Hook),
    /// The `/metrics` listener.
    Listener(Listener),
    /// The log pipeline's own trouble (a full disk, a failed rotation); the pipeline goes
    /// on and counts what it lost.
    Logs(LogEvent),
    /// At exit: rotated files the compressor did not get to.
    LogsNotCompressed(usize),
    /// A warning of the config about this machine (tend-config's wording, with the file
    /// and line).
    ConfigWarning(String),
    /// tend itself could not do something it had to.
    Failed(Failure),
    /// A state file could not be written, or its last state not within `within` at exit.
    NotWritten {
        file: Record,
        path: PathBuf,
        error: Option<String>,
    },
    /// An alert could not be delivered (tend-health's wording).
    AlertFailed(DeliveryFailure),
    /// At exit: alerts still queued after waiting `after`.
    AlertsUndelivered { left: usize, after: Duration },
    /// Events were dropped because the delivery thread was behind; said once, with the
    /// next event that goes out.
    Dropped(u64),
    /// An alert for `[notify]`.
    Alert(Box<Alert>),
    /// What `tend status` shows: the newest replaces one not delivered yet.
    Status(Arc<Snapshot>),
    /// What `[metrics]` shows: the newest replaces one not delivered yet.
    Metrics(Arc<ServiceMetrics>),
}

/// Reload news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reload {
    /// This supervisor has no loader (nothing to read again).
    Unsupported,
    /// The new config was invalid, or could not be applied; the running one stays.
    Rejected(String),
    /// The new config is the running one.
    Unchanged,
    /// One change, as tend-core's reload plan words it.
    Changed(String),
}

/// Health news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    /// `health.silence` without captured output.
    SilenceNeedsCapture,
    /// A failed check below the threshold: the trouble building up.
    CheckFailed {
        in_a_row: u32,
        of: u32,
        text: String,
    },
    /// The program became healthy; `again`: after being unhealthy.
    Healthy { detail: String, again: bool },
    /// A verdict: `setting` chose the reaction (`restart`: the program is restarted).
    Unhealthy {
        reason: String,
        setting: &'static str,
        restart: bool,
    },
    /// Without `[health]`: the program ran `after` (restart.reset_after) since its last
    /// failure.
    Recovered { after: Duration },
}

/// `[limits]` news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Limits {
    /// This OS has no sampler.
    Unsupported,
    /// Sampling failed (said once per run of failures).
    Unmeasurable { source: String, error: String },
    /// Sampling works again.
    MeasurableAgain,
}

/// `on_give_up` news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hook {
    CannotStart(String),
    Running { pid: u32 },
    Ended(Exit),
    Failed(String),
    Killed { after: Duration },
}

/// `/metrics` listener news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Listener {
    Serving(std::net::SocketAddr),
    CannotListen {
        addr: std::net::SocketAddr,
        error: String,
    },
}

/// Something tend itself could not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    Signal(String),
    Kill(String),
    Capture {
        stream: String,
        error: String,
    },
    ForwardStderr(String),
    /// The wait for a named event (`tend stop --user`) failed (Windows only).
    #[cfg_attr(not(windows), allow(dead_code))]
    UserRequests {
        what: &'static str,
        event: String,
        error: String,
    },
}

/// A file tend keeps up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record {
    Status,
    Crashes,
    MetricsTextfile,
}

/// How bad an event is, for subscribers that show lines (the Event Log's level and ID,
/// sd_notify's notices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// A step of the supervision.
    Notice,
    /// Worth knowing, nothing wrong (reloaded, healthy, metrics served).
    Info,
    /// Something is wrong and tend copes (a rejected reload, an unhealthy check, disk
    /// trouble with the logs, an alert that could not be delivered).
    Warning,
    /// tend itself could not do something it had to (signal or kill the tree, capture the
    /// output, run a hook, write a state file).
    Failure,
}

impl Event {
    /// The line's level; `None` for what is not a line (alerts, status, metrics).
    pub(crate) fn level(&self) -> Option<Level> {
        Some(match self {
            Self::Step { .. } => Level::Notice,
            Self::Requested { .. }
            | Self::UserRequest { .. }
            | Self::Reload(Reload::Unsupported | Reload::Unchanged | Reload::Changed(_))
            | Self::Health(
                Health::Healthy { .. } | Health::Recovered { .. } | Health::SilenceNeedsCapture,
            )
            | Self::Limits(Limits::MeasurableAgain)
            | Self::Hook(Hook::Running { .. } | Hook::Ended(_))
            | Self::Listener(Listener::Serving(_)) => Level::Info,
            Self::Reload(Reload::Rejected(_))
            | Self::Health(Health::CheckFailed { .. } | Health::Unhealthy { .. })
            | Self::Limits(Limits::Unsupported)
            | Self::Hook(Hook::Killed { .. })
            | Self::Logs(_)
            | Self::LogsNotCompressed(_)
            | Self::ConfigWarning(_)
            | Self::AlertFailed(_)
            | Self::AlertsUndelivered { .. }
            | Self::Dropped(_) => Level::Warning,
            Self::Limits(Limits::Unmeasurable { .. })
            | Self::Hook(Hook::CannotStart(_) | Hook::Failed(_))
            | Self::Listener(Listener::CannotListen { .. })
            | Self::Failed(_)
            | Self::NotWritten { .. } => Level::Failure,
            Self::Alert(_) | Self::Status(_) | Self::Metrics(_) => return None,
        })
    }

    /// Whether the bus keeps only the newest of it (and its kind), never dropping it: state
    /// and alerts are not lines (see [`Pending`]).
    fn is_state(&self) -> bool {
        matches!(self, Self::Alert(_) | Self::Status(_) | Self::Metrics(_))
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Step { notice, last_words } => write!(f, "{}{last_words}", step(notice)),
            Self::Requested { by, stop: true } => write!(f, "{by} received: stopping"),
            Self::Requested { by, stop: false } => {
                write!(f, "{by} received: reloading the config")
            }
            Self::UserRequest { stop } => {
                let what = if *stop { "stop" } else { "reload" };
                write!(f, "{what} requested (tend {what} --user)")
            }
            Self::Reload(r) => match r {
                Reload::Unsupported => {
                    f.write_str("reload requested, but this supervisor cannot reload")
                }
                Reload::Rejected(e) => write!(f, "reload rejected, the running config stays: {e}"),
                Reload::Unchanged => f.write_str("reloaded: no changes"),
                Reload::Changed(c) => write!(f, "reloaded: {c}"),
            },
            Self::Health(h) => match h {
                Health::SilenceNeedsCapture => f.write_str(
                    "health.silence needs the program's output captured; without it the \
                     watchdog cannot see output",
                ),
                Health::CheckFailed { in_a_row, of, text } => {
                    write!(
                        f,
                        "health check failed ({in_a_row} of {of} in a row): {text}"
                    )
                }
                Health::Healthy {
                    detail,
                    again: true,
                } => write!(f, "healthy again: {detail}"),
                Health::Healthy {
                    detail,
                    again: false,
                } => write!(f, "healthy: {detail}"),
                Health::Unhealthy {
                    reason,
                    setting,
                    restart: true,
                } => write!(
                    f,
                    "unhealthy: {reason}; restarting the program ({setting} = \"restart\")"
                ),
                Health::Unhealthy {
                    reason,
                    setting,
                    restart: false,
                } => write!(f, "unhealthy: {reason} (left running: {setting} = \"log\")"),
                Health::Recovered { after } => write!(
                    f,
                    "recovered: running for {} since the last failure",
                    human(*after)
                ),
            },
            Self::Limits(l) => match l {
                Limits::Unsupported => f.write_str(
                    "[limits] is ignored: the process tree cannot be measured on this OS",
                ),
                Limits::Unmeasurable { source, error } => write!(
                    f,
                    "cannot measure the program's tree ({source}): {error}; [limits] are not \
                     checked until it can"
                ),
                Limits::MeasurableAgain => {
                    f.write_str("the program's tree can be measured again: [limits] are checked")
                }
            },
            Self::Hook(h) => match h {
                Hook::CannotStart(e) => write!(f, "on_give_up hook: cannot start: {e}"),
                Hook::Running { pid } => write!(f, "running on_give_up hook (pid {pid})"),
                Hook::Ended(exit) => write!(f, "on_give_up hook {}", describe_exit(exit)),
                Hook::Failed(e) => write!(f, "on_give_up hook: {e}"),
                Hook::Killed { after } => write!(
                    f,
                    "on_give_up hook still running after {}: killed",
                    human(*after)
                ),
            },
            Self::Listener(Listener::Serving(addr)) => {
                write!(f, "metrics: serving http://{addr}/metrics")
            }
            Self::Listener(Listener::CannotListen { addr, error }) => write!(
                f,
                "metrics: cannot listen on {addr}: {error}; /metrics is not served"
            ),
            Self::Logs(e) => write!(f, "logs: {e}"),
            Self::LogsNotCompressed(n) => write!(
                f,
                "logs: {n} rotated file(s) not compressed yet; they will be at the next start"
            ),
            Self::ConfigWarning(w) => f.write_str(w),
            Self::Failed(e) => match e {
                Failure::Signal(e) => write!(f, "cannot signal the program: {e}"),
                Failure::Kill(e) => write!(f, "cannot kill the process tree: {e}"),
                Failure::Capture { stream, error } => {
                    write!(f, "cannot capture {stream}: {error}")
                }
                Failure::ForwardStderr(e) => {
                    write!(f, "cannot start forwarding stderr to the Event Log: {e}")
                }
                Failure::UserRequests { what, event, error } => write!(
                    f,
                    "cannot wait for {what} requests any more (event `{event}`): {error}; \
                     `tend {what} --user` will not reach this tend"
                ),
            },
            Self::NotWritten { file, path, error } => {
                let path = path.display();
                match (file, error) {
                    (Record::Status, Some(e)) => {
                        write!(f, "cannot write status file `{path}`: {e}")
                    }
                    (Record::Crashes, Some(e)) => {
                        write!(f, "cannot write the crash records `{path}`: {e}")
                    }
                    (Record::MetricsTextfile, Some(e)) => {
                        write!(f, "cannot write the metrics textfile `{path}`: {e}")
                    }
                    (Record::Status, None) => write!(
                        f,
                        "the last state was not written to status file `{path}` within {}: \
                         the disk does not answer",
                        human(crate::background::FINISH_WAIT)
                    ),
                    (Record::Crashes, None) => write!(
                        f,
                        "the last crash record was not written to `{path}` within {}: the \
                         disk does not answer",
                        human(crate::background::FINISH_WAIT)
                    ),
                    (Record::MetricsTextfile, None) => write!(
                        f,
                        "the last metrics were not written to the textfile `{path}` within \
                         {}: the disk does not answer",
                        human(crate::background::FINISH_WAIT)
                    ),
                }
            }
            Self::AlertFailed(e) => e.fmt(f),
            Self::AlertsUndelivered { left, after } => write!(
                f,
                "{left} alert(s) still undelivered after {}: dropped",
                human(*after)
            ),
            Self::Dropped(n) => write!(
                f,
                "{n} event line(s) were dropped: stderr or a log sink was too slow"
            ),
            Self::Alert(a) => write!(f, "alert: {}", a.event),
            Self::Status(s) => write!(f, "status: {}", s.state),
            Self::Metrics(m) => write!(f, "metrics of {}", m.service),
        }
    }
}

/// A supervision step as one readable line.
pub(crate) fn step(n: &Notice) -> String {
    match n {
        Notice::Started { pid } => format!("started pid {pid}"),
        Notice::SpawnFailed { error } => spawn_failed(error),
        Notice::Exited {
            pid, exit, uptime, ..
        } => {
            format!("pid {pid} {} after {}", describe_exit(exit), human(*uptime))
        }
        Notice::Restarting {
            delay,
            in_window,
            limit,
        } => {
            let when = if delay.is_zero() {
                "restarting now".to_owned()
            } else {
                format!("restarting in {}", human(*delay))
            };
            if *limit > 0 {
                format!("{when} (restart {in_window} of {limit})")
            } else {
                format!("{when} (restart {in_window})")
            }
        }
        Notice::NotRestarting { exit, policy } => format!(
            "not restarting after {} (restart.policy = \"{}\")",
            describe_exit(exit),
            policy.as_str()
        ),
        Notice::GaveUp(g) => format!("{}; fix the program, then start it again", gave_up(g)),
        Notice::Stopping { pid, timeout } => {
            format!("stopping pid {pid} (timeout {})", human(*timeout))
        }
        Notice::Killing { pid, after } => {
            format!(
                "pid {pid} still running after {}: killing its process tree",
                human(*after)
            )
        }
        Notice::Stopped => "stopped".to_owned(),
    }
}

/// The one wording of a start that failed, for the step and the `crashed` alert's reason.
pub(crate) fn spawn_failed(error: &str) -> String {
    format!("cannot start the program: {error}")
}

/// The one wording of a give-up, for the step, `status` and the `gave_up` alert:
/// `gave up after 3 restarts in 1m (last: exited with code 3)`.
pub(crate) fn gave_up(g: &GiveUp) -> String {
    format!(
        "gave up after {} restarts in {} (last: {})",
        g.restarts,
        human(g.window),
        // A run stopped for being unhealthy exits the way a requested stop does; the
        // reason is what the operator needs.
        g.unhealthy.as_ref().map_or_else(
            || describe_exit(&g.last_exit),
            |reason| format!("unhealthy: {reason}")
        )
    )
}

/// An event on its way to a subscriber.
pub(crate) struct Delivered<'a> {
    /// When it was emitted (for alerts, status and metrics: when it was delivered).
    pub(crate) at: chrono::DateTime<chrono::Local>,
    pub(crate) event: &'a Event,
    /// Rendered once, by the first subscriber that asks: the others share it.
    text: &'a OnceCell<String>,
}

impl Delivered<'_> {
    /// The event's wording.
    pub(crate) fn text(&self) -> &str {
        self.text.get_or_init(|| self.event.to_string())
    }
}

/// Takes events of one bus, on the delivery thread only (never on the thread that
/// emitted them). It chooses by variant and ignores the rest. It may block (a slow disk):
/// that delays the other subscribers and, past the queue's bound, costs counted drops of
/// lines, never supervision. It may emit: that queues behind the current event.
pub(crate) trait Subscriber: Send + Sync {
    fn deliver(&self, e: &Delivered<'_>);
}

/// Lines waiting for the delivery thread. Past this the newest are dropped and counted: a
/// stalled stderr or log disk must never stall supervision.
const QUEUE: usize = 4096;

/// Alerts waiting for delivery per bus; past this the oldest goes, as in tend-health's
/// notifier: the latest news (`gave_up`) is the one that must get through.
const ALERTS: usize = 64;

/// The outbound events of one service. Cloned into every producer.
#[derive(Clone)]
pub(crate) struct Bus {
    shared: Arc<Shared>,
}

struct Shared {
    out: &'static Output,
    /// Replaced, never locked during a delivery: the delivery thread clones the list.
    subscribers: Mutex<Vec<Arc<dyn Subscriber>>>,
    pending: Mutex<Pending>,
}

/// State and alerts waiting for the delivery thread. They are not lines in the queue:
/// the queue can be full of lines (stderr stalled) and a line may be dropped, but the last
/// status (`stopped`, `failed`) and a `gave_up` alert must not. So the newest snapshot and
/// the newest metrics sample replace older ones here, alerts keep the newest [`ALERTS`],
/// and one marker in the queue (never counted, never dropped: at most one per bus is
/// queued) tells the delivery thread to take them. Memory stays bounded whatever the
/// rate, and a full queue never loses the last state.
#[derive(Default)]
struct Pending {
    alerts: std::collections::VecDeque<Alert>,
    status: Option<Arc<Snapshot>>,
    metrics: Option<Arc<ServiceMetrics>>,
    /// A marker is in the queue.
    marked: bool,
}

enum Msg {
    Line {
        from: Arc<Shared>,
        at: chrono::DateTime<chrono::Local>,
        event: Event,
    },
    Pending(Arc<Shared>),
    Flush(mpsc::SyncSender<()>),
}

/// A delivery thread and its queue: one per process ([`output`]); tests make their own.
pub(crate) struct Output {
    /// Unbounded, with the bound kept by `queued`: a bounded std channel allocates and
    /// touches all its slots up front, which was 4096 x 128 bytes = 512 KiB resident in
    /// every tend process (half of its private memory) for a queue that is nearly always
    /// empty. This one allocates as events come, in blocks of 31.
    tx: mpsc::Sender<Msg>,
    /// Lines queued and not delivered yet, at most [`QUEUE`].
    queued: AtomicUsize,
    /// Lines dropped because the queue was full, said with the next line that goes out.
    dropped: AtomicU64,
    thread: OnceLock<std::thread::ThreadId>,
    /// A flush is waiting: the delivery thread cuts its linger short. (Sends never touch
    /// this; only a flush, which is rare and waited for, pays a wake-up.)
    hurry: (std::sync::Mutex<bool>, std::sync::Condvar),
}

/// The one delivery thread of the process, started with the first bus.
fn output() -> &'static Output {
    static OUTPUT: OnceLock<&'static Output> = OnceLock::new();
    OUTPUT.get_or_init(Output::start)
}

impl Output {
    /// Starts a delivery thread that lives as long as the process.
    fn start() -> &'static Self {
        let (tx, rx) = mpsc::channel::<Msg>();
        let me: &'static Self = Box::leak(Box::new(Self {
            tx,
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            thread: OnceLock::new(),
            hurry: (std::sync::Mutex::new(false), std::sync::Condvar::new()),
        }));
        let started = std::thread::Builder::new()
            .name("tend-output".into())
            .stack_size(256 * 1024)
            .spawn(move || deliver(me, &rx));
        // Without a thread nothing is delivered; `flush` then returns at once.
        let id = started.map_or_else(|_| std::thread::current().id(), |h| h.thread().id());
        let _ = me.thread.set(id);
        me
    }

    /// Waits [`LINGER`], or less if a flush asks for it.
    fn linger(&self) {
        let mut hurry = self
            .hurry
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*hurry {
            hurry = self
                .hurry
                .1
                .wait_timeout(hurry, LINGER)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        *hurry = false;
    }

    /// Waits (at most `within`) until every event emitted so far has been delivered.
    /// `false`: it was not (a subscriber is stuck). Returns at once on the delivery thread.
    fn flush(&self, within: Duration) -> bool {
        if self.thread.get() == Some(&std::thread::current().id()) {
            return true;
        }
        let (tx, rx) = mpsc::sync_channel(1);
        // Queued behind every event so far, whatever the bound (it is only for lines).
        if self.tx.send(Msg::Flush(tx)).is_err() {
            return false;
        }
        // A lingering delivery thread would take it only when its linger ends.
        *self
            .hurry
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.hurry.1.notify_one();
        rx.recv_timeout(within).is_ok()
    }
}

/// How long the delivery thread stays up after delivering in a busy time, taking what
/// comes meanwhile.
///
/// Why: a message sent to a thread parked in `recv` costs the sender a futex wake (on a VM,
/// an inter-processor interrupt) and the thread a wake-up. A crash loop emits ~5 messages
/// per restart, and the supervisor woke this thread twice per restart, once right before
/// starting the next program. While the thread lingers, a send is a queue push and
/// nothing more; lines reach their subscribers at most this much later. Measured on a crash
/// loop (bench/README.md, issue 16, one 3 s sample each way): the supervisor's CPU per
/// restart 172 -> 136 µs, this thread's 67 -> 49 µs, their context switches 11.5 -> 3.1.
/// Messages 2 to 10 ms apart cost two wake-ups each (the sleep's end, then the next send).
const LINGER: Duration = Duration::from_millis(2);

/// A message this soon after the thread last parked means a busy time: linger. A service
/// whose events come once a second or less keeps one wake-up per event.
const BUSY: Duration = Duration::from_millis(10);

fn deliver(out: &Output, rx: &mpsc::Receiver<Msg>) {
    let mut parked_at: Option<std::time::Instant> = None;
    while let Ok(msg) = rx.recv() {
        let busy = parked_at.is_some_and(|t| t.elapsed() < BUSY);
        handle(out, msg);
        loop {
            while let Ok(msg) = rx.try_recv() {
                handle(out, msg);
            }
            if !busy {
                break;
            }
            out.linger();
            // Nothing came meanwhile: park. (The channel never closes: `Output` is static.)
            match rx.try_recv() {
                Ok(msg) => handle(out, msg),
                Err(_) => break,
            }
        }
        parked_at = Some(std::time::Instant::now());
    }
}

fn handle(out: &Output, msg: Msg) {
    match msg {
        Msg::Line { from, at, event } => {
            out.queued.fetch_sub(1, Ordering::Relaxed);
            let dropped = out.dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                fan_out(&from, at, &Event::Dropped(dropped));
            }
            fan_out(&from, at, &event);
        }
        Msg::Pending(from) => {
            let p = std::mem::take(&mut *from.pending());
            let at = chrono::Local::now();
            for a in p.alerts {
                fan_out(&from, at, &Event::Alert(Box::new(a)));
            }
            if let Some(s) = p.status {
                fan_out(&from, at, &Event::Status(s));
            }
            if let Some(m) = p.metrics {
                fan_out(&from, at, &Event::Metrics(m));
            }
        }
        Msg::Flush(done) => {
            let _ = done.send(());
        }
    }
}

fn fan_out(from: &Shared, at: chrono::DateTime<chrono::Local>, event: &Event) {
    // Cloned out so that a subscriber subscribing, or emitting, never waits on this lock.
    let subscribers = from
        .subscribers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let text = OnceCell::new();
    let d = Delivered {
        at,
        event,
        text: &text,
    };
    for s in &subscribers {
        s.deliver(&d);
    }
}

/// Waits (at most `within`) until every event emitted so far has been delivered. Called
/// before tend exits, so its last words are not lost.
pub(crate) fn flush(within: Duration) -> bool {
    output().flush(within)
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Bus {
    /// A service's bus, delivered by the process's delivery thread.
    pub(crate) fn new() -> Self {
        Self::on(output())
    }

    /// A bus with a delivery thread of its own (tests that block a subscriber must not
    /// hold up every other test's events).
    #[cfg(test)]
    pub(crate) fn isolated() -> Self {
        Self::on(Output::start())
    }

    fn on(out: &'static Output) -> Self {
        Self {
            shared: Arc::new(Shared {
                out,
                subscribers: Mutex::default(),
                pending: Mutex::default(),
            }),
        }
    }

    /// Adds a subscriber; it gets the events emitted from now on.
    pub(crate) fn subscribe(&self, s: Arc<dyn Subscriber>) {
        self.shared
            .subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(s);
    }

    /// Queues `event` for the subscribers and returns at once: never waits for a consumer,
    /// never calls one.
    pub(crate) fn emit(&self, event: Event) {
        if event.is_state() {
            self.pend(event);
            return;
        }
        let out = self.shared.out;
        if out.queued.fetch_add(1, Ordering::Relaxed) >= QUEUE {
            out.queued.fetch_sub(1, Ordering::Relaxed);
            out.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let msg = Msg::Line {
            from: self.shared.clone(),
            at: chrono::Local::now(),
            event,
        };
        if out.tx.send(msg).is_err() {
            out.queued.fetch_sub(1, Ordering::Relaxed);
            out.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn pend(&self, event: Event) {
        let mut p = self.shared.pending();
        match event {
            Event::Alert(a) => {
                if p.alerts.len() >= ALERTS {
                    p.alerts.pop_front();
                }
                p.alerts.push_back(*a);
            }
            Event::Status(s) => p.status = Some(s),
            Event::Metrics(m) => p.metrics = Some(m),
            _ => unreachable!("only state is pending"),
        }
        if std::mem::replace(&mut p.marked, true) {
            return;
        }
        drop(p);
        // The marker is cleared with the take (under the same lock), so an event pended
        // after the take queues a new marker: nothing waits unannounced.
        let _ = self.shared.out.tx.send(Msg::Pending(self.shared.clone()));
    }

    /// Waits (at most `within`) until every event emitted so far has been delivered;
    /// `false` if a subscriber is still busy with an older one.
    pub(crate) fn flush(&self, within: Duration) -> bool {
        self.shared.out.flush(within)
    }

    /// At exit, after a [`flush`](Self::flush) that timed out: the alerts the delivery
    /// thread did not get to, for the caller to hand over itself (nothing else is left to
    /// race with).
    pub(crate) fn take_alerts(&self) -> Vec<Alert> {
        self.shared.pending().alerts.drain(..).collect()
    }
}

/// stderr: every line, as `2026-11-21T14:05:09.123+01:00 tend[demo]: started pid 42` (the
/// terminal of `tend run`, the journal under systemd).
pub(crate) struct Stderr {
    pub(crate) name: String,
}

impl Subscriber for Stderr {
    fn deliver(&self, e: &Delivered<'_>) {
        if e.event.level().is_none() {
            return;
        }
        let now = e.at.format("%Y-%m-%dT%H:%M:%S%.3f%:z");
        // One write per line so lines never interleave with anything else on stderr.
        let line = format!("{now} tend[{}]: {}\n", self.name, e.text());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// A subscriber from a closure, for lines only: `f(text, event)` (tests).
#[cfg(test)]
pub(crate) fn lines(f: impl Fn(&str, &Event) + Send + Sync + 'static) -> Arc<dyn Subscriber> {
    struct Lines<F>(F);
    impl<F: Fn(&str, &Event) + Send + Sync> Subscriber for Lines<F> {
        fn deliver(&self, e: &Delivered<'_>) {
            if e.event.level().is_some() {
                (self.0)(e.text(), e.event);
            }
        }
    }
    Arc::new(Lines(f))
}
