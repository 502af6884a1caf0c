//! The bus under load and misuse: a subscriber that blocks, one that emits back, a full
//! queue. Each test has a delivery thread of its own ([`Bus::isolated`]), so blocking it
//! holds up no other test.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tend_core::{Exit, GiveUp, Notice};

use super::*;

const WAIT: Duration = Duration::from_secs(10);

/// Records what it gets; the first event blocks it until the test lets go.
struct Recorder {
    seen: Mutex<Vec<Event>>,
    /// `Some` until the first event: it then says so on `started` and waits on `gate`.
    gate: Mutex<Option<(Sender<()>, Receiver<()>)>>,
}

impl Recorder {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            seen: Mutex::default(),
            gate: Mutex::default(),
        })
    }

    /// Blocks at its next event; returns (started, release): the first says the delivery
    /// thread is stuck in it, dropping the second lets it go.
    fn blocking() -> (Arc<Self>, Receiver<()>, Sender<()>) {
        let (started_tx, started) = mpsc::channel();
        let (release, gate) = mpsc::channel();
        let r = Self::new();
        *r.gate.lock().unwrap() = Some((started_tx, gate));
        (r, started, release)
    }

    fn seen(&self) -> Vec<Event> {
        self.seen.lock().unwrap().clone()
    }
}

impl Subscriber for Recorder {
    fn deliver(&self, e: &Delivered<'_>) {
        let gate = self.gate.lock().unwrap().take();
        if let Some((started, gate)) = gate {
            let _ = started.send(());
            let _ = gate.recv();
        }
        self.seen.lock().unwrap().push(e.event.clone());
    }
}

fn line(i: usize) -> Event {
    Event::Reload(Reload::Changed(i.to_string()))
}

fn snapshot(state: &str) -> Arc<Snapshot> {
    // The fields of the first version are all a document needs (see unix_host).
    Arc::new(
        serde_json::from_value(serde_json::json!({
            "service": "svc", "state": state, "supervisor_pid": 1,
            "restarts_total": 0, "restarts_in_window": 0, "restart_limit": 0,
            "log_files": [], "config": "svc.toml", "config_generation": 1,
            "updated_at": "2026-12-07T10:00:00.000+00:00",
        }))
        .unwrap(),
    )
}

#[test]
fn a_subscriber_that_blocks_does_not_block_emit() {
    let bus = Bus::isolated();
    let (stuck, started, release) = Recorder::blocking();
    bus.subscribe(stuck.clone());
    bus.emit(line(0));
    started
        .recv_timeout(WAIT)
        .expect("the subscriber got the first event");
    // The delivery thread is stuck: emitting more than the queue holds returns at once.
    let t0 = Instant::now();
    for i in 1..=QUEUE * 2 {
        bus.emit(line(i));
    }
    bus.emit(Event::Status(snapshot("running")));
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // And flushing says it did not get through, within its deadline.
    assert!(!bus.flush(Duration::from_millis(50)));
    drop(release);
    assert!(bus.flush(WAIT));
    assert!(stuck.seen().len() > QUEUE / 2);
}

#[test]
fn drops_are_counted_and_said_once() {
    let bus = Bus::isolated();
    let (stuck, started, release) = Recorder::blocking();
    bus.subscribe(stuck.clone());
    bus.emit(line(0));
    started
        .recv_timeout(WAIT)
        .expect("the subscriber got the first event");
    let emitted = QUEUE + 500;
    for i in 1..emitted {
        bus.emit(line(i));
    }
    drop(release);
    assert!(bus.flush(WAIT));
    let seen = stuck.seen();
    let drops: Vec<u64> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Dropped(n) => Some(*n),
            _ => None,
        })
        .collect();
    let lines = seen.len() - drops.len();
    assert_eq!(drops.len(), 1, "said once: {drops:?}");
    assert_eq!(
        lines as u64 + drops[0],
        emitted as u64,
        "every line counted"
    );
    // The one being delivered left the queue: the queue held the next QUEUE.
    assert_eq!(drops[0], (emitted - 1 - QUEUE) as u64);
    // The note goes out with the first line after the drops (ahead of it), and says why.
    let at = seen
        .iter()
        .position(|e| matches!(e, Event::Dropped(_)))
        .unwrap();
    assert_eq!(at, 1, "{:?}", &seen[..3]);
    assert_eq!(
        seen[at].to_string(),
        format!(
            "{} event line(s) were dropped: stderr or a log sink was too slow",
            drops[0]
        )
    );
    // A later line is no news of drops.
    bus.emit(line(emitted));
    assert!(bus.flush(WAIT));
    assert_eq!(stuck.seen().len(), seen.len() + 1);
}

#[test]
fn order_is_kept_per_producer() {
    let bus = Bus::isolated();
    let r = Recorder::new();
    bus.subscribe(r.clone());
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    bus.emit(Event::Reload(Reload::Changed(format!("{p} {i}"))));
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    assert!(bus.flush(WAIT));
    let mut next = [0usize; 3];
    for e in r.seen() {
        let Event::Reload(Reload::Changed(text)) = e else {
            panic!("{e:?}")
        };
        let (p, i) = text.split_once(' ').unwrap();
        let (p, i): (usize, usize) = (p.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[p], "producer {p}");
        next[p] += 1;
    }
    assert_eq!(next, [500; 3]);
}

#[test]
fn a_subscriber_that_emits_back_cannot_deadlock() {
    // As `.tend.log` does: its write into the log pipeline fails, and the pipeline says so
    // on the same bus, from the delivery thread, in the middle of a delivery.
    struct Echo {
        bus: Bus,
        seen: Mutex<Vec<String>>,
    }
    impl Subscriber for Echo {
        fn deliver(&self, e: &Delivered<'_>) {
            self.seen.lock().unwrap().push(e.text().to_owned());
            if let Event::Reload(Reload::Changed(_)) = e.event {
                self.bus.emit(Event::Logs(tend_logs::LogEvent::WriteFailed {
                    path: "svc.tend.log".into(),
                    error: "disk full".into(),
                }));
                self.bus.emit(Event::Status(snapshot("running")));
                // Waiting for the bus from inside it returns at once.
                assert!(self.bus.flush(WAIT));
            }
        }
    }
    let bus = Bus::isolated();
    let echo = Arc::new(Echo {
        bus: bus.clone(),
        seen: Mutex::default(),
    });
    bus.subscribe(echo.clone());
    let (done_tx, done) = mpsc::channel();
    let producer = bus.clone();
    std::thread::spawn(move || {
        producer.emit(line(1));
        let _ = done_tx.send(producer.flush(WAIT));
    });
    assert_eq!(done.recv_timeout(WAIT * 2), Ok(true), "no deadlock");
    assert!(bus.flush(WAIT));
    let seen = echo.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "reloaded: 1",
            "logs: cannot write log file svc.tend.log: disk full; dropping output until it works again",
            "status: running",
        ]
    );
}

#[test]
fn the_newest_state_and_the_alerts_survive_a_full_queue() {
    let bus = Bus::isolated();
    let (stuck, started, release) = Recorder::blocking();
    bus.subscribe(stuck.clone());
    bus.emit(line(0));
    started
        .recv_timeout(WAIT)
        .expect("the subscriber got the first event");
    // Lines fill the queue and then some are dropped...
    for i in 1..QUEUE + 100 {
        bus.emit(line(i));
    }
    // ...while the program crash-loops: many states, alerts over the bound.
    for i in 0..1000 {
        bus.emit(Event::Status(snapshot(&format!("state {i}"))));
        bus.emit(Event::Metrics(Arc::new(ServiceMetrics {
            restarts_total: i,
            ..ServiceMetrics::default()
        })));
    }
    for i in 0..ALERTS + 10 {
        let mut a = Alert::new(
            tend_health::AlertKind::Restarting,
            std::time::SystemTime::now(),
        );
        a.restarts = i as u64;
        bus.emit(Event::Alert(Box::new(a)));
    }
    bus.emit(Event::Alert(Box::new(Alert::new(
        tend_health::AlertKind::GaveUp,
        std::time::SystemTime::now(),
    ))));
    bus.emit(Event::Status(snapshot("failed")));
    drop(release);
    assert!(bus.flush(WAIT));
    let seen = stuck.seen();
    let states: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Status(s) => Some(s.state.as_str()),
            _ => None,
        })
        .collect();
    // Coalesced, not queued: the newest is the last one delivered, and few went.
    assert_eq!(states.last(), Some(&"failed"), "{states:?}");
    assert!(states.len() <= 2, "{states:?}");
    let metrics: Vec<u64> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Metrics(m) => Some(m.restarts_total),
            _ => None,
        })
        .collect();
    assert_eq!(metrics.last(), Some(&999));
    let alerts: Vec<&Alert> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Alert(a) => Some(&**a),
            _ => None,
        })
        .collect();
    // The oldest went; the newest, the give-up, did not.
    assert_eq!(alerts.len(), ALERTS);
    assert_eq!(
        alerts.last().map(|a| a.event),
        Some(tend_health::AlertKind::GaveUp)
    );
    // None of that counted as a dropped line.
    let dropped: u64 = seen
        .iter()
        .filter_map(|e| match e {
            Event::Dropped(n) => Some(*n),
            _ => None,
        })
        .sum();
    let lines = seen
        .iter()
        .filter(|e| matches!(e, Event::Reload(_)))
        .count();
    assert_eq!(lines as u64 + dropped, (QUEUE + 100) as u64);
}

#[test]
fn alerts_left_on_the_bus_can_be_taken_at_exit() {
    let bus = Bus::isolated();
    let (stuck, started, release) = Recorder::blocking();
    bus.subscribe(stuck);
    bus.emit(line(0));
    started
        .recv_timeout(WAIT)
        .expect("the subscriber got the first event");
    bus.emit(Event::Alert(Box::new(Alert::new(
        tend_health::AlertKind::GaveUp,
        std::time::SystemTime::now(),
    ))));
    assert!(!bus.flush(Duration::from_millis(50)));
    let left = bus.take_alerts();
    assert_eq!(left.len(), 1);
    assert!(bus.take_alerts().is_empty(), "taken once");
    drop(release);
    assert!(bus.flush(WAIT));
}

#[test]
fn steps_read_well() {
    let restarting = Event::Step {
        notice: Notice::Restarting {
            delay: Duration::from_secs(2),
            in_window: 3,
            limit: 5,
        },
        last_words: String::new(),
    };
    assert_eq!(restarting.to_string(), "restarting in 2s (restart 3 of 5)");
    let exited = Event::Step {
        notice: Notice::Exited {
            pid: 7,
            exit: Exit::Code(1),
            uptime: Duration::from_millis(3200),
            cause: tend_core::ExitCause::OnItsOwn,
        },
        last_words: "; last stderr: boom".into(),
    };
    assert_eq!(
        exited.to_string(),
        "pid 7 exited with code 1 after 3.2s; last stderr: boom"
    );
}

#[test]
fn a_give_up_has_one_wording() {
    let g = GiveUp {
        restarts: 3,
        window: Duration::from_secs(60),
        last_exit: Exit::Code(3),
        unhealthy: None,
    };
    let words = "gave up after 3 restarts in 1m (last: exited with code 3)";
    assert_eq!(gave_up(&g), words);
    // The step says it, and what to do.
    let step = Event::Step {
        notice: Notice::GaveUp(g),
        last_words: String::new(),
    };
    assert_eq!(
        step.to_string(),
        format!("{words}; fix the program, then start it again")
    );
}

#[test]
fn what_is_not_a_line_is_not_shown_as_one() {
    let bus = Bus::isolated();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    bus.subscribe(super::lines(move |text, _| {
        seen.lock().unwrap().push(text.to_owned());
    }));
    bus.emit(Event::Status(snapshot("running")));
    bus.emit(Event::Alert(Box::new(Alert::new(
        tend_health::AlertKind::Crashed,
        std::time::SystemTime::now(),
    ))));
    bus.emit(Event::Hook(Hook::Running { pid: 9 }));
    assert!(bus.flush(WAIT));
    assert_eq!(*lines.lock().unwrap(), ["running on_give_up hook (pid 9)"]);
}
