//! How tend talks to the operator: its own event lines (never mixed into the program's
//! output) and CLI error messages.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use tend_core::{Exit, GiveUp, Notice};

use crate::error::CliError;

/// Where supervisor lines go besides stderr (the `<name>.tend.log` file, the Windows Event
/// Log, sd_notify). Kept as a callback so the supervisor does not care. Every line comes
/// with its [`Kind`]: sinks choose by kind (the Event Log's ID and level, sd_notify's
/// notices), never by wording.
///
/// Sinks run on the output thread only, never on the thread that reported the line; a sink
/// may report lines itself (the log pipeline reports its own disk trouble): those are queued
/// behind the current one.
pub(crate) type LineSink = Arc<dyn Fn(&str, &Kind) + Send + Sync>;

/// What a line of tend's is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A step of the supervision (started, exited, restarting, gave up, stopped).
    Notice(Notice),
    /// Worth knowing, nothing wrong (reloaded, healthy, metrics served).
    Info,
    /// Something is wrong and tend copes (a rejected reload, an unhealthy check, disk
    /// trouble with the logs, an alert that could not be delivered).
    Warning,
    /// tend itself could not do something it had to (signal or kill the tree, capture the
    /// output, run a hook).
    Failure,
}

/// Lines waiting for the output thread. Past this the newest are dropped and counted: a
/// stalled stderr or log disk must never stall supervision.
const QUEUE: usize = 4096;

/// Writes tend's own event lines: `2026-11-21T14:05:09.123+01:00 tend[demo]: started pid 42`.
///
/// Reporting only queues the line: one output thread per process writes stderr and calls
/// the sinks. So no producer ever calls a consumer, or holds a lock a consumer needs (a
/// sink that reports back, as the log pipeline does on a full disk, cannot deadlock), and a
/// slow consumer costs a counted drop, said once, never a blocked supervisor.
#[derive(Clone)]
pub(crate) struct Reporter {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    to_stderr: bool,
    sinks: Mutex<Vec<LineSink>>,
}

enum Msg {
    Line {
        from: Arc<Shared>,
        at: chrono::DateTime<chrono::Local>,
        text: String,
        kind: Kind,
    },
    Flush(mpsc::SyncSender<()>),
}

struct Output {
    /// Unbounded, with the bound kept by `queued`: a bounded std channel allocates and
    /// touches all its slots up front, which was 4096 x 128 bytes = 512 KiB resident in
    /// every tend process (half of its private memory) for a queue that is nearly always
    /// empty. This one allocates as lines come, in blocks of 31.
    tx: mpsc::Sender<Msg>,
    /// Lines queued and not written yet, at most [`QUEUE`].
    queued: AtomicUsize,
    /// Lines dropped because the queue was full, said with the next line that goes out.
    dropped: AtomicU64,
    thread: std::thread::ThreadId,
}

/// The one output thread of the process, started with the first reporter.
fn output() -> &'static Output {
    static OUTPUT: OnceLock<Output> = OnceLock::new();
    OUTPUT.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("tend-output".into())
            .stack_size(256 * 1024)
            .spawn(move || deliver(&rx))
            .map_or_else(|_| std::thread::current().id(), |h| h.thread().id());
        Output {
            tx,
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            thread,
        }
    })
}

fn deliver(rx: &mpsc::Receiver<Msg>) {
    for msg in rx {
        match msg {
            Msg::Line {
                from,
                at,
                text,
                kind,
            } => {
                output().queued.fetch_sub(1, Ordering::Relaxed);
                let dropped = output().dropped.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    let warn = format!(
                        "{dropped} event line(s) were dropped: stderr or a log sink was too slow"
                    );
                    write_line(&from, at, &warn, &Kind::Warning);
                }
                write_line(&from, at, &text, &kind);
            }
            Msg::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

fn write_line(from: &Shared, at: chrono::DateTime<chrono::Local>, text: &str, kind: &Kind) {
    if from.to_stderr {
        let now = at.format("%Y-%m-%dT%H:%M:%S%.3f%:z");
        // One write per line so lines never interleave with anything else on stderr.
        let line = format!("{now} tend[{}]: {text}\n", from.name);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
    // Cloned out so that a sink adding a sink, or reporting, never waits on this lock.
    let sinks = from
        .sinks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for sink in &sinks {
        sink(text, kind);
    }
}

/// Waits (at most `within`) until every line reported so far has been written. Called
/// before tend exits, so its last words are not lost.
pub(crate) fn flush(within: Duration) {
    let out = output();
    if std::thread::current().id() == out.thread {
        return;
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let deadline = std::time::Instant::now() + within;
    // Queued behind every line so far, whatever the bound (it is only for lines).
    if out.tx.send(Msg::Flush(tx)).is_err() {
        return;
    }
    let _ = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
}

impl Reporter {
    pub(crate) fn new(name: &str, to_stderr: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                name: name.to_owned(),
                to_stderr,
                sinks: Mutex::default(),
            }),
        }
    }

    pub(crate) fn add_sink(&self, sink: LineSink) {
        self.shared
            .sinks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(sink);
    }

    /// Reports one line: worth knowing, nothing wrong.
    pub(crate) fn line(&self, msg: &str) {
        self.emit(msg.to_owned(), Kind::Info);
    }

    /// Reports something wrong that tend copes with.
    pub(crate) fn warn(&self, msg: &str) {
        self.emit(msg.to_owned(), Kind::Warning);
    }

    /// Reports something tend itself could not do.
    pub(crate) fn failure(&self, msg: &str) {
        self.emit(msg.to_owned(), Kind::Failure);
    }

    fn emit(&self, text: String, kind: Kind) {
        let out = output();
        let msg = Msg::Line {
            from: self.shared.clone(),
            at: chrono::Local::now(),
            text,
            kind,
        };
        if out.queued.fetch_add(1, Ordering::Relaxed) >= QUEUE {
            out.queued.fetch_sub(1, Ordering::Relaxed);
            out.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if out.tx.send(msg).is_err() {
            out.queued.fetch_sub(1, Ordering::Relaxed);
            out.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A notice, with `more` said after its own words (the program's last stderr lines).
    pub(crate) fn notice_with(&self, n: &Notice, more: &str) {
        self.emit(format!("{}{more}", describe(n)), Kind::Notice(n.clone()));
    }
}

/// A notice as one readable line.
pub(crate) fn describe(n: &Notice) -> String {
    match n {
        Notice::Started { pid } => format!("started pid {pid}"),
        Notice::SpawnFailed { error } => format!("cannot start the program: {error}"),
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
            let mut s = if delay.is_zero() {
                "restarting now".to_owned()
            } else {
                format!("restarting in {}", human(*delay))
            };
            if *limit > 0 {
                let _ = write!(s, " (restart {in_window} of {limit})");
            } else {
                let _ = write!(s, " (restart {in_window})");
            }
            s
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

/// The one wording of a give-up, for the event line, `status` and the `gave_up` alert:
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

pub(crate) fn describe_exit(exit: &Exit) -> String {
    match exit {
        // As people search for a Windows crash: `0xC0000005 STATUS_ACCESS_VIOLATION`.
        Exit::Code(c) => format!(
            "exited with code {}",
            tend_core::crash::exit_code_text(*c, cfg!(windows))
        ),
        Exit::Signal(s) => format!("was killed by {}", signal_name(*s)),
        Exit::SpawnFailed(e) => format!("could not start ({e})"),
    }
}

/// `SIGKILL` for 9, and so on; the number for anything unusual.
pub(crate) fn signal_name(sig: i32) -> String {
    #[cfg(unix)]
    if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
        return s.as_str().to_owned();
    }
    format!("signal {sig}")
}

/// Durations the way operators read them: `250ms`, `3.2s`, `2m5s`, `1h`.
pub(crate) fn human(d: Duration) -> String {
    tend_core::fmt::duration(d)
}

/// Prints a CLI error, with every source in the chain, to stderr.
pub(crate) fn print_error(e: &CliError) {
    let mut stderr = std::io::stderr().lock();
    if let CliError::Config(tend_config::ConfigError::Invalid { path, problems }) = e {
        for p in problems {
            let _ = writeln!(stderr, "{}", p.display_in(path));
        }
    }
    let _ = writeln!(stderr, "error: {}", chain(e));
}

/// An error and its sources on one line. Many error types already show their source in
/// their own message (`cannot read x: No such file`); a source is appended only when the
/// text so far does not contain it, so nothing is said twice and nothing is lost.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            let _ = write!(msg, ": {text}");
        }
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chains_say_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        // A message that already names its source...
        let e = CliError::io("cannot read `x`", io);
        assert_eq!(chain(&e), "cannot read `x`: no such file");
        // ...and one that does not.
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer: inner");
    }

    #[test]
    fn notices_read_well() {
        assert_eq!(
            describe(&Notice::Restarting {
                delay: Duration::from_secs(2),
                in_window: 3,
                limit: 5
            }),
            "restarting in 2s (restart 3 of 5)"
        );
        assert_eq!(
            describe(&Notice::Exited {
                pid: 7,
                exit: Exit::Code(1),
                uptime: Duration::from_millis(3200),
                cause: tend_core::ExitCause::OnItsOwn,
            }),
            "pid 7 exited with code 1 after 3.2s"
        );
    }
}
