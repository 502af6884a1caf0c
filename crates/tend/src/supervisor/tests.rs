//! The runtime's decisions, carried out against a fake program on a paused clock: no
//! process is started and no test waits in real time. Each test scripts what the program's
//! runs do and when the operator acts, then checks what the supervisor did and when, to
//! the millisecond of virtual time.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tend_core::{Exit, ServiceSpec, StopSpec};
use tokio::sync::{Notify, mpsc};

use super::program::{ProcessTree, Run, Spawner};
use super::{Control, Outcome, Supervisor};
use crate::events::Bus;
use crate::proc::Launch;

/// What one run of the fake program does.
#[derive(Debug, Clone, Copy)]
enum Script {
    /// Exits on its own after this long.
    ExitsAfter(Duration, i32),
    /// Runs until stopped; the graceful step ends it after this long (`None`: ignores it).
    Serves(Option<Duration>),
    /// Cannot be started.
    WontStart,
}

const MS: fn(u64) -> Duration = Duration::from_millis;

/// What the supervisor did to the program, with the virtual time since the start.
type Log = Rc<RefCell<Vec<(u128, String)>>>;

struct Fake {
    scripts: VecDeque<Script>,
    /// When the scripts run out.
    then: Script,
    log: Log,
    t0: tokio::time::Instant,
    pid: u32,
}

struct Ctl {
    stop: Notify,
    kill: Notify,
}

struct FakeTree {
    pid: u32,
    ctl: Rc<Ctl>,
    log: Log,
    t0: tokio::time::Instant,
}

fn say(log: &Log, t0: tokio::time::Instant, what: String) {
    log.borrow_mut().push((t0.elapsed().as_millis(), what));
}

impl Spawner for Fake {
    fn spawn(&mut self, _: &Launch<'_>) -> Result<Run, String> {
        let script = self.scripts.pop_front().unwrap_or(self.then);
        if let Script::WontStart = script {
            say(&self.log, self.t0, "spawn failed".into());
            return Err("`prog` does not exist".into());
        }
        self.pid += 1;
        let pid = self.pid;
        say(&self.log, self.t0, format!("spawn {pid}"));
        let ctl = Rc::new(Ctl {
            stop: Notify::new(),
            kill: Notify::new(),
        });
        let c = ctl.clone();
        let exit = async move {
            let natural = async {
                match script {
                    Script::ExitsAfter(d, code) => {
                        tokio::time::sleep(d).await;
                        Exit::Code(code)
                    }
                    _ => std::future::pending().await,
                }
            };
            let graceful = async {
                c.stop.notified().await;
                match script {
                    Script::Serves(Some(d)) => {
                        tokio::time::sleep(d).await;
                        Exit::Code(0)
                    }
                    _ => std::future::pending().await,
                }
            };
            let exit = tokio::select! {
                e = natural => e,
                e = graceful => e,
                () = c.kill.notified() => Exit::Signal(9),
            };
            super::program::Ended {
                exit,
                core_dumped: false,
            }
        };
        Ok(Run {
            pid,
            exit: Box::pin(exit),
            tree: Box::new(FakeTree {
                pid,
                ctl,
                log: self.log.clone(),
                t0: self.t0,
            }),
            output: None,
        })
    }
}

impl ProcessTree for FakeTree {
    fn signal_stop(&self, _: &StopSpec) -> std::io::Result<()> {
        say(&self.log, self.t0, format!("stop {}", self.pid));
        self.ctl.stop.notify_one();
        Ok(())
    }

    fn kill(&self) -> std::io::Result<()> {
        say(&self.log, self.t0, format!("kill {}", self.pid));
        self.ctl.kill.notify_one();
        Ok(())
    }
}

fn spec(extra: &str) -> ServiceSpec {
    let text = format!("name = \"svc\"\ncommand = [\"prog\"]\n{extra}");
    tend_config::parse(&text, Path::new("svc.toml"), &Default::default())
        .expect("a valid config")
        .spec
}

/// What one test observed.
struct Seen {
    outcome: Outcome,
    /// The supervisor's actions on the program, and when (ms of virtual time).
    log: Vec<(u128, String)>,
    /// Its event lines.
    lines: Vec<String>,
}

impl Seen {
    /// Only the entries that start with `what` ("spawn", "stop", "kill").
    fn at(&self, what: &str) -> Vec<u128> {
        self.log
            .iter()
            .filter(|(_, w)| w.starts_with(what))
            .map(|(t, _)| *t)
            .collect()
    }
}

/// Supervises `spec` against `scripts` (then `then` for every later run) on a paused
/// clock; `operator` acts meanwhile through the control channel.
fn supervise<F, Fut>(spec: ServiceSpec, scripts: &[Script], then: Script, operator: F) -> Seen
where
    F: FnOnce(mpsc::UnboundedSender<Control>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    supervise_with(spec, scripts, then, None, operator)
}

fn supervise_with<F, Fut>(
    spec: ServiceSpec,
    scripts: &[Script],
    then: Script,
    reload_to: Option<ServiceSpec>,
    operator: F,
) -> Seen
where
    F: FnOnce(mpsc::UnboundedSender<Control>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let bus = Bus::new();
    let seen = lines.clone();
    bus.subscribe(crate::events::lines(move |text, _| {
        seen.lock().unwrap().push(text.to_owned());
    }));
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let outcome = rt.block_on(async {
        let fake = Fake {
            scripts: scripts.iter().copied().collect(),
            then,
            log: log.clone(),
            t0: tokio::time::Instant::now(),
            pid: 100,
        };
        let mut sup =
            Supervisor::new(Arc::new(spec), bus.clone(), None).with_spawner(Box::new(fake));
        if let Some(new) = reload_to {
            sup = sup.with_loader(Box::new(move || Ok(new.clone())));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (outcome, ()) = tokio::join!(sup.run(rx), operator(tx));
        outcome
    });
    assert!(bus.flush(Duration::from_secs(5)));
    let log = log.borrow().clone();
    let lines = lines.lock().unwrap().clone();
    Seen {
        outcome,
        log,
        lines,
    }
}

async fn at(t: Duration) {
    tokio::time::sleep(t).await;
}

#[test]
fn a_crash_loop_backs_off_exponentially_and_gives_up_at_the_limit() {
    let seen = supervise(
        spec("[restart]\ndelay = \"1s\"\nmultiplier = 2.0\nlimit = 3\nlimit_window = \"1m\""),
        &[],
        Script::ExitsAfter(MS(100), 1),
        |_| async {},
    );
    assert_eq!(seen.outcome, Outcome::Failed);
    // Runs of 100 ms, then 1 s, 2 s, 4 s of backoff.
    assert_eq!(seen.at("spawn"), [0, 1100, 3200, 7300], "{:?}", seen.log);
    assert!(
        seen.at("kill").len() <= 4,
        "leftovers of each run are killed, nothing more"
    );
    assert!(
        seen.lines
            .iter()
            .any(|l| l.starts_with("gave up after 3 restarts in 1m")),
        "{:?}",
        seen.lines
    );
}

#[test]
fn a_clean_exit_is_not_restarted_under_on_failure() {
    let seen = supervise(
        spec("[restart]\npolicy = \"on-failure\""),
        &[Script::ExitsAfter(MS(500), 0)],
        Script::WontStart,
        |_| async {},
    );
    assert_eq!(seen.outcome, Outcome::Stopped);
    assert_eq!(seen.at("spawn"), [0]);
}

#[test]
fn a_graceful_stop_sends_the_graceful_step_and_does_not_kill_a_program_that_obeys() {
    let seen = supervise(
        spec("[stop]\ntimeout = \"5s\""),
        &[],
        Script::Serves(Some(MS(300))),
        |tx| async move {
            at(Duration::from_secs(2)).await;
            tx.send(Control::Stop).unwrap();
        },
    );
    assert_eq!(seen.outcome, Outcome::Stopped);
    assert_eq!(seen.at("stop"), [2000]);
    // The leftovers sweep after the exit, at 2.3 s, is the only kill.
    assert_eq!(seen.at("kill"), [2300], "{:?}", seen.log);
    assert_eq!(seen.at("spawn"), [0]);
}

#[test]
fn a_program_that_ignores_the_graceful_step_is_killed_at_the_timeout() {
    let seen = supervise(
        spec("[stop]\ntimeout = \"5s\""),
        &[],
        Script::Serves(None),
        |tx| async move {
            at(Duration::from_secs(1)).await;
            tx.send(Control::Stop).unwrap();
        },
    );
    assert_eq!(seen.outcome, Outcome::Stopped);
    assert_eq!(seen.at("stop"), [1000]);
    assert_eq!(seen.at("kill").first(), Some(&6000), "{:?}", seen.log);
}

#[test]
fn a_second_stop_kills_at_once() {
    let seen = supervise(
        spec("[stop]\ntimeout = \"30s\""),
        &[],
        Script::Serves(None),
        |tx| async move {
            at(Duration::from_secs(1)).await;
            tx.send(Control::Stop).unwrap();
            at(Duration::from_millis(1500)).await;
            tx.send(Control::Stop).unwrap();
        },
    );
    assert_eq!(seen.outcome, Outcome::Stopped);
    assert_eq!(seen.at("kill").first(), Some(&2500), "{:?}", seen.log);
}

#[test]
fn a_program_that_cannot_start_is_retried_by_the_policy_then_given_up() {
    let seen = supervise(
        spec("[restart]\ndelay = \"500ms\"\nmultiplier = 1.0\nlimit = 2\nlimit_window = \"1m\""),
        &[],
        Script::WontStart,
        |_| async {},
    );
    assert_eq!(seen.outcome, Outcome::Failed);
    assert_eq!(seen.at("spawn failed"), [0, 500, 1000], "{:?}", seen.log);
    assert!(
        seen.lines
            .iter()
            .any(|l| l.contains("`prog` does not exist")),
        "{:?}",
        seen.lines
    );
}

#[test]
fn a_reload_that_changes_the_program_restarts_it_gracefully() {
    let mut new = spec("");
    new.command.args.push("--new".into());
    let seen = supervise_with(
        spec(""),
        &[],
        Script::Serves(Some(MS(100))),
        Some(new),
        |tx| async move {
            at(Duration::from_secs(2)).await;
            tx.send(Control::Reload).unwrap();
            at(Duration::from_secs(2)).await;
            tx.send(Control::Stop).unwrap();
        },
    );
    assert_eq!(seen.outcome, Outcome::Stopped);
    // Stopped gracefully at 2 s, started again as soon as it exited: no backoff, as for
    // a crash.
    assert_eq!(seen.at("stop").first(), Some(&2000), "{:?}", seen.log);
    assert_eq!(seen.at("spawn"), [0, 2100], "{:?}", seen.log);
    assert!(
        seen.lines.iter().any(|l| l.starts_with("reloaded:")),
        "{:?}",
        seen.lines
    );
}

#[test]
fn a_reload_that_changes_nothing_leaves_the_program_alone() {
    let seen = supervise_with(
        spec(""),
        &[],
        Script::Serves(Some(MS(100))),
        Some(spec("")),
        |tx| async move {
            at(Duration::from_secs(2)).await;
            tx.send(Control::Reload).unwrap();
            at(Duration::from_secs(2)).await;
            tx.send(Control::Stop).unwrap();
        },
    );
    assert_eq!(seen.at("spawn"), [0]);
    assert!(
        seen.lines.iter().any(|l| l == "reloaded: no changes"),
        "{:?}",
        seen.lines
    );
}

#[test]
fn the_state_goes_out_as_events_and_the_last_one_is_on_disk() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().unwrap();
    let file = crate::status::path(dir.path(), "svc");
    let bus = Bus::new();
    let said = Arc::new(Mutex::new(Vec::new()));
    struct Record(Arc<Mutex<Vec<crate::events::Event>>>);
    impl crate::events::Subscriber for Record {
        fn deliver(&self, e: &crate::events::Delivered<'_>) {
            self.0.lock().unwrap().push(e.event.clone());
        }
    }
    bus.subscribe(Arc::new(Record(said.clone())));
    let spec = spec("[restart]\ndelay = \"1s\"\nlimit = 2\nlimit_window = \"1m\"");
    let outcome = rt.block_on(async {
        let fake = Fake {
            scripts: VecDeque::new(),
            then: Script::ExitsAfter(MS(100), 1),
            log: Rc::new(RefCell::new(Vec::new())),
            t0: tokio::time::Instant::now(),
            pid: 100,
        };
        let sup = Supervisor::new(Arc::new(spec), bus.clone(), None)
            .with_spawner(Box::new(fake))
            .with_status(file.clone(), Vec::new());
        let (_tx, rx) = mpsc::unbounded_channel();
        sup.run(rx).await
    });
    assert_eq!(outcome, Outcome::Failed);
    assert!(bus.flush(Duration::from_secs(5)));
    let said = said.lock().unwrap().clone();
    let gave_up = said
        .iter()
        .find_map(|e| match e {
            crate::events::Event::Step {
                notice: tend_core::Notice::GaveUp(g),
                ..
            } => Some(crate::events::gave_up(g)),
            _ => None,
        })
        .expect("a give-up step");
    let last_status = said
        .iter()
        .rev()
        .find_map(|e| match e {
            crate::events::Event::Status(s) => Some(s.clone()),
            _ => None,
        })
        .expect("status events");
    assert_eq!(last_status.state, "failed");
    // One wording: the step, the status and the file say the same.
    assert_eq!(last_status.failed_reason.as_deref(), Some(gave_up.as_str()));
    let on_disk = crate::status::read(&file).unwrap().expect("a status file");
    assert_eq!(on_disk.state, "failed");
    assert_eq!(on_disk.failed_reason, last_status.failed_reason);
    // Without `[notify]` no alert is built.
    assert!(
        !said
            .iter()
            .any(|e| matches!(e, crate::events::Event::Alert(_)))
    );
}
