//! Table-driven tests of the health rules with made-up instants.

use std::time::{Duration, Instant};

use super::*;
use crate::http::HttpUrl;
use crate::spec::{CheckSpec, HttpCheck};

/// One input at a time offset (milliseconds after the base instant).
#[derive(Debug, Clone, Copy)]
enum In {
    Start,
    /// Exited; `true` = unexpectedly.
    Exit(bool),
    Pass,
    Fail(&'static str),
    Output,
    Poll,
}

fn spec(probe: bool) -> HealthSpec {
    HealthSpec {
        check: probe.then(|| {
            CheckSpec::Http(HttpCheck {
                url: HttpUrl::parse("http://127.0.0.1:1/").unwrap(),
                tls: Default::default(),
            })
        }),
        ..HealthSpec::default()
    }
}

/// Renders a step as text so cases can state expectations compactly:
/// `starting->healthy`, `healthy->unhealthy; restart: <reason>`, `... (recovered)`.
fn show(step: &Step) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &step.change {
        let mut s = format!("{}->{}", c.from.name(), c.to.name());
        if c.recovered {
            s.push_str(" (recovered)");
        }
        parts.push(s);
    }
    match &step.verdict {
        Some(Verdict::Restart { reason }) => parts.push(format!("restart: {reason}")),
        Some(Verdict::LogOnly { reason }) => parts.push(format!("log: {reason}")),
        None => {}
    }
    parts.join("; ")
}

/// Feeds `(ms, input, expected)` rows; the shown step must equal `expected` exactly (empty:
/// nothing happened).
fn run(name: &str, mut t: HealthTracker, rows: &[(u64, In, &str)]) -> HealthTracker {
    let base = base();
    for (i, (ms, input, want)) in rows.iter().enumerate() {
        let now = base + Duration::from_millis(*ms);
        let step = match *input {
            In::Start => t.program_started(now),
            In::Exit(unexpected) => {
                t.program_exited(unexpected);
                Step::default()
            }
            In::Pass | In::Fail(_) => {
                let ticket = t.probe_begun();
                let outcome = match *input {
                    In::Pass => ProbeOutcome::Healthy {
                        detail: "HTTP 200 after 1 ms".into(),
                        took: Duration::from_millis(1),
                    },
                    In::Fail(reason) => ProbeOutcome::Unhealthy {
                        reason: reason.into(),
                        took: Duration::from_millis(1),
                    },
                    _ => unreachable!(),
                };
                t.probe_finished(ticket, &outcome, now)
            }
            In::Output => t.output_seen(now),
            In::Poll => t.poll(now),
        };
        assert_eq!(show(&step), *want, "{name}: row {i} ({input:?} at {ms} ms)");
    }
    t
}

const S: u64 = 1000;

/// The instant every test's times are relative to.
fn base() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

type Case = (&'static str, HealthTracker, Vec<(u64, In, &'static str)>);

#[test]
fn probe_rules() {
    let restart = HealthTracker::new(&spec(true));
    let log = HealthTracker::new(&HealthSpec {
        on_unhealthy: Reaction::Log,
        failures: 1,
        ..spec(true)
    });
    let no_grace = HealthTracker::new(&HealthSpec {
        start_period: Duration::ZERO,
        ..spec(true)
    });
    let cases: Vec<Case> = vec![
        (
            "healthy inside the start period is reported at once",
            restart.clone(),
            vec![(0, In::Start, ""), (S, In::Pass, "starting->healthy")],
        ),
        (
            "failures inside the start period do not count",
            restart.clone(),
            vec![
                (0, In::Start, ""),
                (S, In::Fail("HTTP 503 after 2 ms"), ""),
                (11 * S, In::Fail("HTTP 503 after 2 ms"), ""),
                (21 * S, In::Fail("HTTP 503 after 2 ms"), ""),
                (29 * S, In::Fail("HTTP 503 after 2 ms"), ""),
                (30 * S, In::Fail("HTTP 503 after 2 ms"), ""),
                (40 * S, In::Fail("HTTP 503 after 2 ms"), ""),
                (
                    50 * S,
                    In::Fail("HTTP 503 after 4 ms"),
                    "starting->unhealthy; restart: health check failed 3 times in a row: HTTP 503 after 4 ms",
                ),
            ],
        ),
        (
            "a pass ends the start period: later failures count at once",
            restart.clone(),
            vec![
                (0, In::Start, ""),
                (S, In::Pass, "starting->healthy"),
                (2 * S, In::Fail("connect refused (127.0.0.1:1)"), ""),
                (3 * S, In::Fail("connect refused (127.0.0.1:1)"), ""),
                (
                    4 * S,
                    In::Fail("connect refused (127.0.0.1:1)"),
                    "healthy->unhealthy; restart: health check failed 3 times in a row: connect refused (127.0.0.1:1)",
                ),
            ],
        ),
        (
            "one pass resets the consecutive count",
            restart.clone(),
            vec![
                (0, In::Start, ""),
                (S, In::Pass, "starting->healthy"),
                (2 * S, In::Fail("x"), ""),
                (3 * S, In::Fail("x"), ""),
                (4 * S, In::Pass, ""),
                (5 * S, In::Fail("x"), ""),
                (6 * S, In::Fail("x"), ""),
                (
                    7 * S,
                    In::Fail("timed out after 2s"),
                    "healthy->unhealthy; restart: health check failed 3 times in a row: timed out after 2s",
                ),
                // Staying unhealthy gives no second verdict.
                (8 * S, In::Fail("x"), ""),
            ],
        ),
        (
            "log mode reports each episode once and recovers",
            log.clone(),
            vec![
                (0, In::Start, ""),
                (S, In::Pass, "starting->healthy"),
                (
                    2 * S,
                    In::Fail("HTTP 500 after 1 ms"),
                    "healthy->unhealthy; log: health check failed: HTTP 500 after 1 ms",
                ),
                (3 * S, In::Fail("HTTP 500 after 1 ms"), ""),
                (4 * S, In::Pass, "unhealthy->healthy (recovered)"),
                (
                    5 * S,
                    In::Fail("HTTP 502 after 1 ms"),
                    "healthy->unhealthy; log: health check failed: HTTP 502 after 1 ms",
                ),
            ],
        ),
        (
            "never healthy: unhealthy after the start period and failures",
            no_grace.clone(),
            vec![
                (0, In::Start, ""),
                (S, In::Fail("x"), ""),
                (2 * S, In::Fail("x"), ""),
                (
                    3 * S,
                    In::Fail("x"),
                    "starting->unhealthy; restart: health check failed 3 times in a row: x",
                ),
            ],
        ),
        (
            "a restart starts over: Starting, new grace, count reset",
            restart.clone(),
            vec![
                (0, In::Start, ""),
                (S, In::Pass, "starting->healthy"),
                (2 * S, In::Fail("x"), ""),
                (3 * S, In::Fail("x"), ""),
                (
                    4 * S,
                    In::Fail("x"),
                    "healthy->unhealthy; restart: health check failed 3 times in a row: x",
                ),
                (5 * S, In::Exit(true), ""),
                (6 * S, In::Start, ""),
                (7 * S, In::Fail("x"), ""),
                (8 * S, In::Fail("x"), ""),
                (9 * S, In::Fail("x"), ""),
                (10 * S, In::Pass, "starting->healthy (recovered)"),
            ],
        ),
        (
            "recovered after a crash, not after a requested stop",
            restart.clone(),
            vec![
                (0, In::Start, ""),
                (S, In::Pass, "starting->healthy"),
                (2 * S, In::Exit(true), ""),
                (3 * S, In::Start, ""),
                (4 * S, In::Pass, "starting->healthy (recovered)"),
                (5 * S, In::Exit(false), ""),
                (6 * S, In::Start, ""),
                (7 * S, In::Pass, "starting->healthy"),
            ],
        ),
    ];
    for (name, tracker, rows) in cases {
        run(name, tracker, &rows);
    }
}

#[test]
fn the_reason_follows_the_latest_failure_without_a_new_verdict() {
    let t = run(
        "log",
        HealthTracker::new(&HealthSpec {
            on_unhealthy: Reaction::Log,
            start_period: Duration::ZERO,
            ..spec(true)
        }),
        &[
            (0, In::Start, ""),
            (S, In::Fail("a"), ""),
            (2 * S, In::Fail("b"), ""),
            (
                3 * S,
                In::Fail("c"),
                "starting->unhealthy; log: health check failed 3 times in a row: c",
            ),
            (4 * S, In::Fail("d"), ""),
        ],
    );
    assert_eq!(
        t.state(),
        &HealthState::Unhealthy {
            reason: "health check failed 4 times in a row: d".into()
        }
    );
    assert_eq!(t.consecutive_failures(), 4);
    assert_eq!(t.last_outcome().map(ProbeOutcome::text), Some("d"));
}

#[test]
fn stale_probe_results_are_ignored() {
    let base = Instant::now();
    let mut t = HealthTracker::new(&HealthSpec {
        start_period: Duration::ZERO,
        failures: 1,
        ..spec(true)
    });
    let _ = t.program_started(base);
    let old = t.probe_begun();
    t.program_exited(true);
    let _ = t.program_started(base + Duration::from_secs(1));
    let fail = ProbeOutcome::Unhealthy {
        reason: "from the old run".into(),
        took: Duration::ZERO,
    };
    let step = t.probe_finished(old, &fail, base + Duration::from_secs(2));
    assert_eq!(step, Step::default());
    assert_eq!(t.state(), &HealthState::Starting);
    // And while stopped, nothing counts either.
    let ticket = t.probe_begun();
    t.program_exited(false);
    assert_eq!(
        t.probe_finished(ticket, &fail, base + Duration::from_secs(3)),
        Step::default()
    );
}

#[test]
fn probe_schedule() {
    let base = Instant::now();
    let at = |s: f64| base + Duration::from_secs_f64(s);
    let mut t = HealthTracker::new(&spec(true));
    assert_eq!(t.next_probe_at(), None, "not running");
    let _ = t.program_started(at(0.0));
    assert_eq!(
        t.next_probe_at(),
        Some(at(1.0)),
        "first probe soon after the start"
    );
    let ticket = t.probe_begun();
    assert_eq!(t.next_probe_at(), None, "one probe at a time");
    let ok = ProbeOutcome::Healthy {
        detail: "ok".into(),
        took: Duration::from_millis(500),
    };
    let _ = t.probe_finished(ticket, &ok, at(1.5));
    assert_eq!(t.next_probe_at(), Some(at(11.5)), "interval from the end");
    t.program_exited(false);
    assert_eq!(t.next_probe_at(), None);

    let mut quick = HealthTracker::new(&HealthSpec {
        interval: Duration::from_millis(200),
        ..spec(true)
    });
    let _ = quick.program_started(at(0.0));
    assert_eq!(quick.next_probe_at(), Some(at(0.2)), "interval below 1s");

    let mut none = HealthTracker::new(&spec(false));
    let _ = none.program_started(at(0.0));
    assert_eq!(none.next_probe_at(), None, "no probe configured");
}

#[test]
fn silence_watchdog() {
    let at = |s: u64| base() + Duration::from_secs(s);
    let mut t = HealthTracker::new(&HealthSpec {
        silence: Some(Duration::from_secs(60)),
        ..spec(false)
    });
    let _ = t.program_started(at(0));
    assert_eq!(
        t.next_deadline(),
        Some(at(30)),
        "end of the start period first"
    );
    t = run(
        "silence",
        t,
        &[
            (29 * S, In::Poll, ""),
            (30 * S, In::Poll, "starting->healthy"),
            (50 * S, In::Output, ""),
            (100 * S, In::Poll, ""),
            (
                110 * S,
                In::Poll,
                "healthy->unhealthy; restart: no output on stdout or stderr for 1m (health.silence)",
            ),
            (115 * S, In::Poll, ""),
            (120 * S, In::Output, "unhealthy->healthy (recovered)"),
        ],
    );
    assert_eq!(t.next_deadline(), Some(at(180)));
    t.program_exited(false);
    assert_eq!(t.next_deadline(), None);
}

#[test]
fn silence_never_trips_inside_the_start_period() {
    let base = Instant::now();
    let mut t = HealthTracker::new(&HealthSpec {
        silence: Some(Duration::from_secs(10)),
        ..spec(true)
    });
    let _ = t.program_started(base);
    assert_eq!(t.next_deadline(), Some(base + Duration::from_secs(30)));
    assert_eq!(show(&t.poll(base + Duration::from_secs(29))), "");
    let step = t.poll(base + Duration::from_secs(30));
    assert_eq!(
        show(&step),
        "starting->unhealthy; restart: no output on stdout or stderr for 30s (health.silence)"
    );
    assert_eq!(t.next_deadline(), None, "already tripped");
}

#[test]
fn probe_and_silence_combine() {
    let t = run(
        "both",
        HealthTracker::new(&HealthSpec {
            silence: Some(Duration::from_secs(60)),
            failures: 1,
            on_unhealthy: Reaction::Log,
            ..spec(true)
        }),
        &[
            (0, In::Start, ""),
            (S, In::Pass, "starting->healthy"),
            (
                40 * S,
                In::Fail("HTTP 500 after 1 ms"),
                "healthy->unhealthy; log: health check failed: HTTP 500 after 1 ms",
            ),
            // Silence trips too, but the program is already unhealthy: no second verdict.
            (61 * S, In::Poll, ""),
            // Output clears the silence, the probe fault remains.
            (62 * S, In::Output, ""),
            (63 * S, In::Pass, "unhealthy->healthy (recovered)"),
        ],
    );
    assert_eq!(t.state(), &HealthState::Healthy);
}

#[test]
fn output_times_may_be_fed_lazily() {
    let at = |s: u64| base() + Duration::from_secs(s);
    let mut t = HealthTracker::new(&HealthSpec {
        silence: Some(Duration::from_secs(60)),
        start_period: Duration::ZERO,
        ..spec(false)
    });
    let _ = t.program_started(at(100));
    assert_eq!(show(&t.output_seen(at(50))), "", "output of an earlier run");
    assert_eq!(t.next_deadline(), Some(at(160)));
    let _ = t.output_seen(at(130));
    let _ = t.output_seen(at(130));
    let _ = t.output_seen(at(120));
    assert_eq!(
        t.next_deadline(),
        Some(at(190)),
        "the same or an older stamp changes nothing"
    );
    let step = t.poll(at(190));
    assert!(step.verdict.is_some(), "{step:?}");
    assert_eq!(
        show(&t.output_seen(at(130))),
        "",
        "an old stamp does not clear the silence"
    );
    assert_eq!(
        show(&t.output_seen(at(191))),
        "unhealthy->healthy (recovered)"
    );
}
