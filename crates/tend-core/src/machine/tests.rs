use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn restart_spec(policy: RestartPolicy, limit: u32) -> RestartSpec {
    RestartSpec {
        policy,
        limit,
        limit_window: secs(60),
        delay: secs(1),
        max_delay: secs(60),
        multiplier: 2.0,
        reset_after: secs(300),
        ..RestartSpec::default()
    }
}

fn machine(policy: RestartPolicy, limit: u32) -> Machine {
    Machine::new(restart_spec(policy, limit), StopSpec::default())
}

/// Starts the program at `now` and returns the actions of the `Spawned` step.
fn start(m: &mut Machine, now: Instant, pid: u32) -> Vec<Action> {
    let a = m.step(Event::Start, now);
    assert_eq!(a, vec![Action::Spawn]);
    m.step(Event::Spawned { pid }, now)
}

fn notices(actions: &[Action]) -> Vec<&Notice> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn timer(actions: &[Action]) -> Option<Instant> {
    actions.iter().find_map(|a| match a {
        Action::SetTimer(t) => Some(*t),
        _ => None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Success,
    FailCode,
    Signal,
    SpawnFail,
    /// Stopped for being unhealthy; it then exits cleanly (code 0 after SIGTERM).
    UnhealthyClean,
    /// Stopped for being unhealthy; it ignores the stop and is killed at the deadline.
    UnhealthyKilled,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    /// No earlier restarts.
    Fresh,
    /// `limit` restarts already in the window.
    Reached,
    /// limit = 0 and many earlier restarts.
    Disabled,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    RestartAfter(u64),
    Stopped,
    FailedExit,
    FailedUnhealthy,
    GaveUp,
}

/// Drives a machine into the given limit state and ends the next run with `kind`.
fn decide(policy: RestartPolicy, kind: Kind, limit: Limit) -> Outcome {
    let lim = if limit == Limit::Disabled { 0 } else { 3 };
    let mut m = machine(policy, lim);
    let t0 = Instant::now();
    let mut now = t0;
    start(&mut m, now, 1);
    let prior = match limit {
        Limit::Fresh => 0,
        Limit::Reached => 3,
        Limit::Disabled => 10,
    };
    // Earlier failed runs, each restarted at once when its timer fires.
    for i in 0..prior {
        now += secs(1);
        let a = m.step(
            Event::Exited {
                exit: Exit::Code(9),
            },
            now,
        );
        let due = timer(&a).unwrap_or_else(|| panic!("restart {i} not scheduled: {a:?}"));
        now = due;
        assert_eq!(m.step(Event::Timer, now), vec![Action::Spawn]);
        m.step(Event::Spawned { pid: 2 + i }, now);
    }
    now += secs(1);
    let a = match kind {
        Kind::SpawnFail => {
            // The same history, but the next attempt cannot even start.
            let mut m2 = machine(policy, lim);
            m2.ledger = m.ledger.clone();
            m2.phase = Phase::Starting;
            let a = m2.step(
                Event::SpawnFailed {
                    error: "no such file".into(),
                },
                now,
            );
            m = m2;
            a
        }
        Kind::Success => m.step(
            Event::Exited {
                exit: Exit::Code(0),
            },
            now,
        ),
        Kind::FailCode => m.step(
            Event::Exited {
                exit: Exit::Code(2),
            },
            now,
        ),
        Kind::Signal => m.step(
            Event::Exited {
                exit: Exit::Signal(9),
            },
            now,
        ),
        Kind::UnhealthyClean | Kind::UnhealthyKilled => {
            let a = m.step(
                Event::Unhealthy {
                    reason: "HTTP 503".into(),
                },
                now,
            );
            assert!(a.contains(&Action::SignalStop), "{a:?}");
            let exit = if kind == Kind::UnhealthyKilled {
                let deadline = timer(&a).expect("stop deadline");
                now = deadline;
                assert_eq!(m.step(Event::Timer, now).last(), Some(&Action::KillTree));
                Exit::Signal(9)
            } else {
                Exit::Code(0)
            };
            m.step(Event::Exited { exit }, now)
        }
    };
    match m.phase() {
        Phase::Backoff { until } => Outcome::RestartAfter(until.duration_since(now).as_secs()),
        Phase::Stopped => Outcome::Stopped,
        Phase::Failed(FailReason::Exited(_)) => Outcome::FailedExit,
        Phase::Failed(FailReason::Unhealthy { reason, .. }) => {
            assert_eq!(reason, "HTTP 503");
            Outcome::FailedUnhealthy
        }
        Phase::Failed(FailReason::GaveUp(g)) => {
            assert!(a.iter().any(|x| matches!(x, Action::RunGiveUpHook(_))));
            let unhealthy = matches!(kind, Kind::UnhealthyClean | Kind::UnhealthyKilled);
            assert_eq!(g.unhealthy.is_some(), unhealthy, "{g:?}");
            Outcome::GaveUp
        }
        other => panic!("unexpected phase {other:?} after {a:?}"),
    }
}

#[test]
fn policy_by_exit_by_limit_matrix() {
    use Kind::*;
    use Limit::*;
    use Outcome::*;
    use RestartPolicy::*;
    // (policy, exit kind, limit state, expected). Delays: fresh = first restart = 1s;
    // disabled after 10 restarts = capped at 60s (1,2,4,..., 2^10 > 60).
    let table = [
        (Always, Success, Fresh, RestartAfter(1)),
        (Always, FailCode, Fresh, RestartAfter(1)),
        (Always, Signal, Fresh, RestartAfter(1)),
        (Always, SpawnFail, Fresh, RestartAfter(1)),
        (Always, Success, Reached, GaveUp),
        (Always, FailCode, Reached, GaveUp),
        (Always, Signal, Reached, GaveUp),
        (Always, SpawnFail, Reached, GaveUp),
        (Always, Success, Disabled, RestartAfter(60)),
        (Always, FailCode, Disabled, RestartAfter(60)),
        (Always, Signal, Disabled, RestartAfter(60)),
        (Always, SpawnFail, Disabled, RestartAfter(60)),
        (OnFailure, Success, Fresh, Stopped),
        (OnFailure, FailCode, Fresh, RestartAfter(1)),
        (OnFailure, Signal, Fresh, RestartAfter(1)),
        (OnFailure, SpawnFail, Fresh, RestartAfter(1)),
        (OnFailure, Success, Reached, Stopped),
        (OnFailure, FailCode, Reached, GaveUp),
        (OnFailure, Signal, Reached, GaveUp),
        (OnFailure, SpawnFail, Reached, GaveUp),
        (OnFailure, Success, Disabled, Stopped),
        (OnFailure, FailCode, Disabled, RestartAfter(60)),
        (OnFailure, Signal, Disabled, RestartAfter(60)),
        (OnFailure, SpawnFail, Disabled, RestartAfter(60)),
        (Never, Success, Fresh, Stopped),
        (Never, FailCode, Fresh, FailedExit),
        (Never, Signal, Fresh, FailedExit),
        (Never, SpawnFail, Fresh, FailedExit),
        // An unhealthy run is a failed run whatever its exit code: a clean exit after the
        // stop signal still counts, backs off and gives up exactly like a crash.
        (Always, UnhealthyClean, Fresh, RestartAfter(1)),
        (Always, UnhealthyKilled, Fresh, RestartAfter(1)),
        (Always, UnhealthyClean, Reached, GaveUp),
        (Always, UnhealthyClean, Disabled, RestartAfter(60)),
        (OnFailure, UnhealthyClean, Fresh, RestartAfter(1)),
        (OnFailure, UnhealthyKilled, Fresh, RestartAfter(1)),
        (OnFailure, UnhealthyClean, Reached, GaveUp),
        (OnFailure, UnhealthyKilled, Reached, GaveUp),
        (OnFailure, UnhealthyClean, Disabled, RestartAfter(60)),
        (Never, UnhealthyClean, Fresh, FailedUnhealthy),
        (Never, UnhealthyKilled, Fresh, FailedUnhealthy),
    ];
    for (policy, kind, limit, want) in table {
        assert_eq!(
            decide(policy, kind, limit),
            want,
            "{policy:?} x {kind:?} x {limit:?}"
        );
    }
}

#[test]
fn success_exit_codes_are_configurable() {
    let mut spec = restart_spec(RestartPolicy::OnFailure, 5);
    spec.success_exit_codes = vec![0, 3];
    let mut m = Machine::new(spec, StopSpec::default());
    let t0 = Instant::now();
    start(&mut m, t0, 1);
    m.step(
        Event::Exited {
            exit: Exit::Code(3),
        },
        t0 + secs(1),
    );
    assert_eq!(m.phase(), &Phase::Stopped);
}

#[test]
fn crash_loop_backs_off_exactly_then_gives_up_once() {
    let mut m = machine(RestartPolicy::OnFailure, 5);
    let t0 = Instant::now();
    let mut now = t0;
    start(&mut m, now, 100);
    let mut delays = Vec::new();
    let mut hooks = 0;
    for pid in 101..120 {
        let a = m.step(
            Event::Exited {
                exit: Exit::Code(1),
            },
            now,
        );
        hooks += a
            .iter()
            .filter(|x| matches!(x, Action::RunGiveUpHook(_)))
            .count();
        let Some(due) = timer(&a) else { break };
        delays.push(due.duration_since(now).as_secs());
        // A timer that fires early (stale) must not start anything.
        assert!(
            m.step(Event::Timer, due - Duration::from_millis(1))
                .is_empty()
        );
        now = due;
        assert_eq!(m.step(Event::Timer, now), vec![Action::Spawn]);
        m.step(Event::Spawned { pid }, now);
    }
    assert_eq!(delays, [1, 2, 4, 8, 16]);
    assert_eq!(hooks, 1);
    assert_eq!(m.restarts_total(), 5);
    match m.phase() {
        Phase::Failed(FailReason::GaveUp(g)) => {
            assert_eq!(g.restarts, 5);
            assert_eq!(g.window, secs(60));
            assert_eq!(g.last_exit, Exit::Code(1));
        }
        p => panic!("{p:?}"),
    }
    // Settled: nothing more happens on its own.
    assert!(m.is_settled());
    assert!(m.step(Event::Timer, now + secs(1000)).is_empty());
}

#[test]
fn backoff_is_capped_at_max_delay() {
    let mut spec = restart_spec(RestartPolicy::Always, 0);
    spec.max_delay = secs(10);
    let mut m = Machine::new(spec, StopSpec::default());
    let mut now = Instant::now();
    start(&mut m, now, 1);
    let mut delays = Vec::new();
    for pid in 2..9 {
        let a = m.step(
            Event::Exited {
                exit: Exit::Code(1),
            },
            now,
        );
        let due = timer(&a).expect("scheduled");
        delays.push(due.duration_since(now).as_secs());
        now = due;
        m.step(Event::Timer, now);
        m.step(Event::Spawned { pid }, now);
    }
    assert_eq!(delays, [1, 2, 4, 8, 10, 10, 10]);
}

#[test]
fn healthy_uptime_resets_backoff_and_counter() {
    let mut m = machine(RestartPolicy::OnFailure, 3);
    let mut now = Instant::now();
    start(&mut m, now, 1);
    for pid in 2..4 {
        let a = m.step(
            Event::Exited {
                exit: Exit::Code(1),
            },
            now,
        );
        now = timer(&a).expect("scheduled");
        m.step(Event::Timer, now);
        m.step(Event::Spawned { pid }, now);
    }
    assert_eq!(m.restarts_in_window(now), 2);
    // This run lasts reset_after: the next failure starts over at the first delay.
    now += secs(300);
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(1),
        },
        now,
    );
    assert_eq!(timer(&a), Some(now + secs(1)));
    assert_eq!(m.restarts_in_window(now), 1);
    assert_eq!(m.restarts_total(), 3);
}

#[test]
fn just_short_of_reset_after_keeps_growing() {
    let mut m = machine(RestartPolicy::OnFailure, 0);
    let mut now = Instant::now();
    start(&mut m, now, 1);
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(1),
        },
        now,
    );
    now = timer(&a).expect("scheduled");
    m.step(Event::Timer, now);
    m.step(Event::Spawned { pid: 2 }, now);
    now += secs(299);
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(1),
        },
        now,
    );
    assert_eq!(timer(&a), Some(now + secs(2)));
}

#[test]
fn zero_delay_restarts_without_timer() {
    let mut spec = restart_spec(RestartPolicy::Always, 0);
    spec.delay = Duration::ZERO;
    let mut m = Machine::new(spec, StopSpec::default());
    let now = Instant::now();
    start(&mut m, now, 1);
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(0),
        },
        now,
    );
    assert_eq!(timer(&a), None);
    assert_eq!(a.last(), Some(&Action::Spawn));
    assert_eq!(m.phase(), &Phase::Starting);
}

#[test]
fn leftovers_are_killed_after_every_exit() {
    let mut m = machine(RestartPolicy::Always, 0);
    let now = Instant::now();
    start(&mut m, now, 1);
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(0),
        },
        now,
    );
    assert!(a.contains(&Action::KillTree));
}

#[test]
fn graceful_stop_then_kill_at_deadline() {
    let mut m = machine(RestartPolicy::Always, 0);
    let t0 = Instant::now();
    start(&mut m, t0, 7);
    let a = m.step(Event::Stop, t0 + secs(1));
    assert_eq!(
        a,
        vec![
            Action::Notify(Notice::Stopping {
                pid: 7,
                timeout: secs(10)
            }),
            Action::SignalStop,
            Action::SetTimer(t0 + secs(11)),
        ]
    );
    assert!(m.step(Event::Timer, t0 + secs(5)).is_empty());
    let a = m.step(Event::Timer, t0 + secs(11));
    assert_eq!(a.last(), Some(&Action::KillTree));
    assert!(
        m.step(Event::Timer, t0 + secs(12)).is_empty(),
        "kill is sent once"
    );
    let a = m.step(
        Event::Exited {
            exit: Exit::Signal(9),
        },
        t0 + secs(11),
    );
    assert!(notices(&a).contains(&&Notice::Stopped));
    assert_eq!(m.phase(), &Phase::Stopped);
    assert_eq!(m.restarts_total(), 0, "a requested stop is not a restart");
}

#[test]
fn program_that_stops_in_time_is_not_killed() {
    let mut m = machine(RestartPolicy::Always, 0);
    let t0 = Instant::now();
    start(&mut m, t0, 7);
    m.step(Event::Stop, t0);
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(0),
        },
        t0 + secs(1),
    );
    assert!(a.contains(&Action::ClearTimer));
    assert!(
        !notices(&a)
            .iter()
            .any(|n| matches!(n, Notice::Killing { .. }))
    );
    assert_eq!(m.phase(), &Phase::Stopped);
}

#[test]
fn second_stop_kills_at_once() {
    let mut m = machine(RestartPolicy::Always, 0);
    let t0 = Instant::now();
    start(&mut m, t0, 7);
    m.step(Event::Stop, t0);
    let a = m.step(Event::Stop, t0 + secs(1));
    assert_eq!(a.last(), Some(&Action::KillTree));
    assert!(m.step(Event::Stop, t0 + secs(2)).is_empty());
}

#[test]
fn stop_during_backoff_stops_at_once() {
    let mut m = machine(RestartPolicy::Always, 0);
    let t0 = Instant::now();
    start(&mut m, t0, 7);
    m.step(
        Event::Exited {
            exit: Exit::Code(1),
        },
        t0,
    );
    let a = m.step(Event::Stop, t0);
    assert_eq!(a[0], Action::ClearTimer);
    assert_eq!(m.phase(), &Phase::Stopped);
    assert!(m.step(Event::Timer, t0 + secs(5)).is_empty());
}

#[test]
fn stop_before_start_and_when_settled() {
    let mut m = machine(RestartPolicy::Always, 0);
    let t0 = Instant::now();
    assert!(m.step(Event::Stop, t0).is_empty());
    assert_eq!(m.phase(), &Phase::Stopped);
    assert!(m.step(Event::Stop, t0).is_empty());
}

#[test]
fn operator_restart_is_graceful_and_not_counted() {
    let mut m = machine(RestartPolicy::OnFailure, 1);
    let t0 = Instant::now();
    start(&mut m, t0, 7);
    let a = m.step(Event::Restart, t0 + secs(1));
    assert!(a.contains(&Action::SignalStop));
    let a = m.step(
        Event::Exited {
            exit: Exit::Signal(15),
        },
        t0 + secs(2),
    );
    assert_eq!(a.last(), Some(&Action::Spawn));
    m.step(Event::Spawned { pid: 8 }, t0 + secs(2));
    assert_eq!(m.restarts_total(), 0);
    assert!(matches!(m.phase(), Phase::Running { pid: 8, .. }));
}

#[test]
fn stop_during_operator_restart_cancels_the_restart() {
    let mut m = machine(RestartPolicy::Always, 0);
    let t0 = Instant::now();
    start(&mut m, t0, 7);
    m.step(Event::Restart, t0);
    assert!(m.step(Event::Stop, t0).is_empty());
    m.step(
        Event::Exited {
            exit: Exit::Code(0),
        },
        t0,
    );
    assert_eq!(m.phase(), &Phase::Stopped);
}

#[test]
fn operator_start_after_give_up_is_a_fresh_chance() {
    let mut m = machine(RestartPolicy::OnFailure, 1);
    let mut now = Instant::now();
    start(&mut m, now, 1);
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(1),
        },
        now,
    );
    now = timer(&a).expect("scheduled");
    m.step(Event::Timer, now);
    m.step(Event::Spawned { pid: 2 }, now);
    m.step(
        Event::Exited {
            exit: Exit::Code(1),
        },
        now,
    );
    assert!(matches!(m.phase(), Phase::Failed(FailReason::GaveUp(_))));
    assert_eq!(m.step(Event::Start, now), vec![Action::Spawn]);
    m.step(Event::Spawned { pid: 3 }, now);
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(1),
        },
        now,
    );
    assert_eq!(timer(&a), Some(now + secs(1)), "backoff starts over");
}

#[test]
fn spawn_failure_is_reported_and_retried() {
    let mut m = machine(RestartPolicy::OnFailure, 5);
    let t0 = Instant::now();
    m.step(Event::Start, t0);
    let a = m.step(
        Event::SpawnFailed {
            error: "`./x` not found".into(),
        },
        t0,
    );
    assert!(matches!(notices(&a)[0], Notice::SpawnFailed { .. }));
    assert!(
        !a.contains(&Action::KillTree),
        "nothing ran, nothing to kill"
    );
    assert_eq!(timer(&a), Some(t0 + secs(1)));
    assert_eq!(
        m.last_exit().map(|l| &l.exit),
        Some(&Exit::SpawnFailed("`./x` not found".into()))
    );
}

#[test]
fn stale_events_are_ignored() {
    let mut m = machine(RestartPolicy::Always, 0);
    let t0 = Instant::now();
    assert!(
        m.step(
            Event::Exited {
                exit: Exit::Code(1)
            },
            t0
        )
        .is_empty()
    );
    assert!(m.step(Event::Spawned { pid: 1 }, t0).is_empty());
    assert!(m.step(Event::Timer, t0).is_empty());
    start(&mut m, t0, 1);
    assert!(m.step(Event::Start, t0).is_empty(), "already up");
}

#[test]
fn live_policy_update_applies_to_next_decision() {
    let mut m = machine(RestartPolicy::Always, 0);
    let t0 = Instant::now();
    start(&mut m, t0, 1);
    let mut spec = restart_spec(RestartPolicy::Always, 0);
    spec.delay = secs(7);
    m.update_policy(spec, StopSpec::default());
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(1),
        },
        t0,
    );
    assert_eq!(timer(&a), Some(t0 + secs(7)));
}

fn unhealthy(reason: &str) -> Event {
    Event::Unhealthy {
        reason: reason.into(),
    }
}

#[test]
fn unhealthy_program_is_stopped_gracefully_then_restarted_as_a_failed_run() {
    let mut m = machine(RestartPolicy::OnFailure, 5);
    let t0 = Instant::now();
    start(&mut m, t0, 7);
    let a = m.step(
        unhealthy("health check failed 3 times in a row"),
        t0 + secs(40),
    );
    assert_eq!(
        a,
        vec![
            Action::Notify(Notice::Stopping {
                pid: 7,
                timeout: secs(10)
            }),
            Action::SignalStop,
            Action::SetTimer(t0 + secs(50)),
        ]
    );
    // The program honours the stop signal and exits 0: still a failed run.
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(0),
        },
        t0 + secs(41),
    );
    assert_eq!(
        a,
        vec![
            Action::Notify(Notice::Exited {
                pid: 7,
                exit: Exit::Code(0),
                uptime: secs(41),
                cause: ExitCause::Unhealthy,
            }),
            Action::ClearTimer,
            Action::KillTree,
            Action::Notify(Notice::Restarting {
                delay: secs(1),
                in_window: 1,
                limit: 5
            }),
            Action::SetTimer(t0 + secs(42)),
        ]
    );
    assert_eq!(
        m.phase(),
        &Phase::Backoff {
            until: t0 + secs(42)
        }
    );
    assert_eq!(m.restarts_total(), 1);
    assert_eq!(m.last_exit().map(|l| &l.exit), Some(&Exit::Code(0)));
}

#[test]
fn unhealthy_program_that_ignores_the_stop_is_killed_then_counted() {
    let mut m = machine(RestartPolicy::Always, 0);
    let t0 = Instant::now();
    start(&mut m, t0, 7);
    m.step(unhealthy("no output for 5m"), t0);
    let a = m.step(Event::Timer, t0 + secs(10));
    assert_eq!(a.last(), Some(&Action::KillTree));
    let a = m.step(
        Event::Exited {
            exit: Exit::Signal(9),
        },
        t0 + secs(10),
    );
    assert_eq!(timer(&a), Some(t0 + secs(11)));
    assert_eq!(m.restarts_total(), 1);
}

#[test]
fn unhealthy_outside_a_running_program_is_ignored() {
    let t0 = Instant::now();
    let idle = machine(RestartPolicy::Always, 0);
    let mut starting = machine(RestartPolicy::Always, 0);
    starting.step(Event::Start, t0);
    let mut backoff = machine(RestartPolicy::Always, 0);
    start(&mut backoff, t0, 1);
    backoff.step(
        Event::Exited {
            exit: Exit::Code(1),
        },
        t0,
    );
    let mut stopping = machine(RestartPolicy::Always, 0);
    start(&mut stopping, t0, 1);
    stopping.step(Event::Stop, t0);
    let mut restarting = machine(RestartPolicy::Always, 0);
    start(&mut restarting, t0, 1);
    restarting.step(Event::Restart, t0);
    let mut already = machine(RestartPolicy::Always, 0);
    start(&mut already, t0, 1);
    already.step(unhealthy("first"), t0);
    let mut stopped = machine(RestartPolicy::Always, 0);
    stopped.step(Event::Stop, t0);
    let mut failed = machine(RestartPolicy::Never, 0);
    start(&mut failed, t0, 1);
    failed.step(
        Event::Exited {
            exit: Exit::Code(1),
        },
        t0,
    );
    let cases = [
        ("idle", idle),
        ("starting", starting),
        ("backoff", backoff),
        ("stopping on request", stopping),
        ("operator restart", restarting),
        ("already stopping for being unhealthy", already),
        ("stopped", stopped),
        ("failed", failed),
    ];
    for (what, mut m) in cases {
        let before = m.phase().clone();
        assert!(m.step(unhealthy("late"), t0 + secs(1)).is_empty(), "{what}");
        assert_eq!(m.phase(), &before, "{what}");
    }
}

#[test]
fn operator_stop_during_an_unhealthy_stop_is_a_plain_stop() {
    let mut m = machine(RestartPolicy::Always, 0);
    let t0 = Instant::now();
    start(&mut m, t0, 7);
    m.step(unhealthy("HTTP 503"), t0);
    assert!(m.step(Event::Stop, t0).is_empty(), "no second signal yet");
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(0),
        },
        t0 + secs(1),
    );
    assert!(notices(&a).contains(&&Notice::Stopped));
    assert_eq!(m.phase(), &Phase::Stopped);
    assert_eq!(m.restarts_total(), 0, "a requested stop is not a restart");
    // A further stop kills at once, as for any stop.
    let mut m = machine(RestartPolicy::Always, 0);
    start(&mut m, t0, 7);
    m.step(unhealthy("HTTP 503"), t0);
    m.step(Event::Stop, t0);
    assert_eq!(m.step(Event::Stop, t0).last(), Some(&Action::KillTree));
}

#[test]
fn unhealthy_under_policy_never_stays_down_as_failed() {
    let mut m = machine(RestartPolicy::Never, 5);
    let t0 = Instant::now();
    start(&mut m, t0, 7);
    m.step(unhealthy("memory above the limit"), t0);
    let a = m.step(
        Event::Exited {
            exit: Exit::Signal(15),
        },
        t0 + secs(1),
    );
    assert!(notices(&a).contains(&&Notice::NotRestarting {
        exit: Exit::Signal(15),
        policy: RestartPolicy::Never
    }));
    assert_eq!(
        m.phase(),
        &Phase::Failed(FailReason::Unhealthy {
            reason: "memory above the limit".into(),
            exit: Exit::Signal(15)
        })
    );
    assert!(m.is_settled());
}

#[test]
fn unhealthy_after_every_start_backs_off_and_gives_up_once() {
    let mut m = machine(RestartPolicy::OnFailure, 3);
    let mut now = Instant::now();
    start(&mut m, now, 100);
    let mut delays = Vec::new();
    let mut hooks = Vec::new();
    for pid in 101..110 {
        now += secs(2);
        let a = m.step(unhealthy("HTTP 503"), now);
        assert!(a.contains(&Action::SignalStop));
        let a = m.step(
            Event::Exited {
                exit: Exit::Code(0),
            },
            now,
        );
        hooks.extend(a.iter().filter_map(|x| match x {
            Action::RunGiveUpHook(g) => Some(g.clone()),
            _ => None,
        }));
        let Some(due) = timer(&a) else { break };
        delays.push(due.duration_since(now).as_secs());
        now = due;
        assert_eq!(m.step(Event::Timer, now), vec![Action::Spawn]);
        m.step(Event::Spawned { pid }, now);
    }
    assert_eq!(delays, [1, 2, 4]);
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].unhealthy.as_deref(), Some("HTTP 503"));
    assert_eq!(hooks[0].last_exit, Exit::Code(0));
    assert!(matches!(m.phase(), Phase::Failed(FailReason::GaveUp(_))));
}

#[test]
fn a_long_healthy_run_before_the_unhealthy_verdict_resets_the_backoff() {
    let mut m = machine(RestartPolicy::OnFailure, 3);
    let mut now = Instant::now();
    start(&mut m, now, 1);
    for pid in 2..4 {
        let a = m.step(
            Event::Exited {
                exit: Exit::Code(1),
            },
            now,
        );
        now = timer(&a).expect("scheduled");
        m.step(Event::Timer, now);
        m.step(Event::Spawned { pid }, now);
    }
    now += secs(300);
    m.step(unhealthy("HTTP 503"), now);
    let a = m.step(
        Event::Exited {
            exit: Exit::Code(0),
        },
        now,
    );
    assert_eq!(timer(&a), Some(now + secs(1)));
    assert_eq!(m.restarts_in_window(now), 1);
}

#[test]
fn every_exit_says_why_the_run_ended() {
    let t0 = Instant::now();
    let cause_of = |m: &mut Machine, now| {
        m.step(
            Event::Exited {
                exit: Exit::Code(0),
            },
            now,
        )
        .into_iter()
        .find_map(|a| match a {
            Action::Notify(Notice::Exited { cause, .. }) => Some(cause),
            _ => None,
        })
    };
    let running = || {
        let mut m = Machine::new(RestartSpec::default(), StopSpec::default());
        m.step(Event::Start, t0);
        m.step(Event::Spawned { pid: 7 }, t0);
        m
    };
    // On its own, a clean exit included.
    let mut m = running();
    assert_eq!(cause_of(&mut m, t0 + secs(1)), Some(ExitCause::OnItsOwn));
    // Asked for: a stop, and an operator's restart.
    for ask in [Event::Stop, Event::Restart] {
        let mut m = running();
        m.step(ask, t0 + secs(1));
        assert_eq!(cause_of(&mut m, t0 + secs(2)), Some(ExitCause::Requested));
    }
    // Stopped for being unhealthy.
    let mut m = running();
    m.step(
        Event::Unhealthy {
            reason: "HTTP 503".into(),
        },
        t0 + secs(1),
    );
    assert_eq!(cause_of(&mut m, t0 + secs(2)), Some(ExitCause::Unhealthy));
}
