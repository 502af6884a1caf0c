use super::*;
use Observed::{Done, Failed, Interrupted};

/// Every step against every observation: the whole table, so a change to one row is seen.
#[test]
fn every_step_and_observation() {
    use End::{Abandoned, Broken, RolledBack, Upgraded};
    use Next::{Do, Finish};
    use Step::*;
    let table: [(Step, [Next; 3]); 9] = [
        // step          Done              Failed             Interrupted
        (Staged, [Do(Stop), Finish(Abandoned), Finish(Abandoned)]),
        (Stop, [Do(Swap), Do(UndoStop), Do(UndoStop)]),
        (Swap, [Do(Start), Do(UndoStop), Do(UndoStop)]),
        (Start, [Do(Verify), Do(UndoStop), Do(UndoStop)]),
        (Verify, [Finish(Upgraded), Do(UndoStop), Do(UndoStop)]),
        (UndoStop, [Do(UndoSwap), Do(UndoSwap), Do(UndoStop)]),
        (UndoSwap, [Do(UndoStart), Finish(Broken), Do(UndoSwap)]),
        (UndoStart, [Do(UndoVerify), Finish(Broken), Do(UndoStart)]),
        (
            UndoVerify,
            [Finish(RolledBack), Finish(Broken), Do(UndoVerify)],
        ),
    ];
    for (step, want) in table {
        for (obs, want) in [Done, Failed, Interrupted].into_iter().zip(want) {
            assert_eq!(next(step, obs), want, "{step:?} {obs:?}");
        }
    }
}

/// Runs the machine from `from` with the observations a test scripts for each step (Done
/// when not scripted) and returns the steps it took and how it ended.
fn run(from: Step, script: &[(Step, Observed)]) -> (Vec<Step>, End) {
    let mut steps = vec![from];
    let mut step = from;
    let mut used = vec![false; script.len()];
    loop {
        let obs = script
            .iter()
            .enumerate()
            .find(|(i, (s, _))| *s == step && !used[*i])
            .map_or(Done, |(i, (_, o))| {
                used[i] = true;
                *o
            });
        match next(step, obs) {
            Next::Do(s) => {
                steps.push(s);
                step = s;
            }
            Next::Finish(end) => return (steps, end),
        }
        assert!(steps.len() < 20, "no end: {steps:?}");
    }
}

#[test]
fn whole_runs() {
    use Step::*;
    let all_undo = [UndoStop, UndoSwap, UndoStart, UndoVerify];
    type Case = (&'static str, Step, Vec<(Step, Observed)>, Vec<Step>, End);
    let cases: Vec<Case> = vec![
        (
            "a good build",
            Staged,
            vec![],
            vec![Staged, Stop, Swap, Start, Verify],
            End::Upgraded,
        ),
        (
            "exits at start",
            Staged,
            vec![(Verify, Failed)],
            [&[Staged, Stop, Swap, Start, Verify][..], &all_undo].concat(),
            End::RolledBack,
        ),
        (
            "start refused",
            Staged,
            vec![(Start, Failed)],
            [&[Staged, Stop, Swap, Start][..], &all_undo].concat(),
            End::RolledBack,
        ),
        (
            "the old one fails too",
            Staged,
            vec![(Verify, Failed), (UndoVerify, Failed)],
            [&[Staged, Stop, Swap, Start, Verify][..], &all_undo].concat(),
            End::Broken,
        ),
        (
            "killed while swapping: found by the next tend",
            Swap,
            vec![(Swap, Interrupted)],
            [&[Swap][..], &all_undo].concat(),
            End::RolledBack,
        ),
        (
            "killed while verifying the old one: verified again",
            UndoVerify,
            vec![(UndoVerify, Interrupted)],
            vec![UndoVerify, UndoVerify],
            End::RolledBack,
        ),
        (
            "killed before the service was touched",
            Staged,
            vec![(Staged, Interrupted)],
            vec![Staged],
            End::Abandoned,
        ),
    ];
    for (what, from, script, steps, end) in cases {
        assert_eq!(run(from, &script), (steps, end), "{what}");
    }
}

#[test]
fn step_spellings_round_trip() {
    for (s, name) in Step::ALL {
        assert_eq!(s.as_str(), name);
        assert_eq!(Step::parse(name), Some(s));
    }
    assert_eq!(Step::parse("swop"), None);
    assert!(Step::UndoSwap.is_undo() && !Step::Swap.is_undo());
}

fn running(pid: u32, restarts: u64, health: Option<&str>) -> Sample {
    Sample {
        state: "running".into(),
        pid: Some(pid),
        restarts,
        health: health.map(str::to_owned),
        health_reason: health
            .filter(|h| *h != "healthy")
            .map(|_| "HTTP 503".to_owned()),
        last_exit: None,
    }
}

fn exited(state: &str, restarts: u64) -> Sample {
    Sample {
        state: state.into(),
        pid: None,
        restarts,
        health: None,
        health_reason: None,
        last_exit: Some((
            "exited with code 3".into(),
            vec!["panic: no database".into()],
        )),
    }
}

const S: fn(u64) -> Duration = Duration::from_secs;

/// Feeds samples at the given seconds and returns the verdicts.
fn watch(rules: Rules, samples: &[(u64, Option<Sample>)]) -> Vec<Verdict> {
    let mut w = Watch::default();
    samples
        .iter()
        .map(|(at, s)| {
            let v = verdict(rules, &mut w, s.as_ref(), S(*at));
            if v == Verdict::RunCommand {
                w.command_passed = true;
            }
            v
        })
        .collect()
}

#[test]
fn verdicts() {
    let plain = Rules {
        verify: S(10),
        health: false,
        command: false,
    };
    let health = Rules {
        health: true,
        ..plain
    };
    let command = Rules {
        command: true,
        ..health
    };
    let fail = |why: &str, lines: &[&str]| {
        Verdict::Fail(why.into(), lines.iter().map(|l| (*l).to_owned()).collect())
    };
    use Verdict::{Pass, RunCommand, Wait};
    type Case = (
        &'static str,
        Rules,
        Vec<(u64, Option<Sample>)>,
        Vec<Verdict>,
    );
    let cases: Vec<Case> = vec![
        (
            "runs for the whole window",
            plain,
            vec![
                (0, None),
                (1, Some(running(7, 0, None))),
                (10, Some(running(7, 0, None))),
            ],
            vec![Wait, Wait, Pass],
        ),
        (
            "no status within the window",
            plain,
            vec![(10, None)],
            vec![fail(
                "tend did not report the program running within 10s",
                &[],
            )],
        ),
        (
            "exits at start: backoff, with its stderr",
            plain,
            vec![(1, Some(exited("backoff", 1)))],
            vec![fail(
                "the program exited with code 3 during verification",
                &["panic: no database"],
            )],
        ),
        (
            "exits and is restarted between two samples",
            plain,
            vec![
                (1, Some(running(7, 0, None))),
                (
                    2,
                    Some(Sample {
                        last_exit: Some(("exited with code 3".into(), vec![])),
                        ..running(8, 1, None)
                    }),
                ),
            ],
            vec![
                Wait,
                fail(
                    "the program exited with code 3 and was restarted during verification",
                    &[],
                ),
            ],
        ),
        (
            "never healthy",
            health,
            vec![
                (1, Some(running(7, 0, Some("starting")))),
                (10, Some(running(7, 0, Some("unhealthy")))),
            ],
            vec![
                Wait,
                fail(
                    "the program did not become healthy within 10s (last: HTTP 503)",
                    &[],
                ),
            ],
        ),
        (
            "healthy, then unhealthy",
            health,
            vec![
                (1, Some(running(7, 0, Some("healthy")))),
                (2, Some(running(7, 0, Some("unhealthy")))),
            ],
            vec![
                Wait,
                fail(
                    "the program became unhealthy during verification: HTTP 503",
                    &[],
                ),
            ],
        ),
        (
            "healthy: the command runs once, then the window ends",
            command,
            vec![
                (1, Some(running(7, 0, Some("starting")))),
                (2, Some(running(7, 0, Some("healthy")))),
                (3, Some(running(7, 0, Some("healthy")))),
                (10, Some(running(7, 0, Some("healthy")))),
            ],
            vec![Wait, RunCommand, Wait, Pass],
        ),
        (
            "still starting at the end",
            plain,
            vec![(
                10,
                Some(Sample {
                    state: "starting".into(),
                    ..running(7, 0, None)
                }),
            )],
            vec![fail(
                "the program was `starting`, not running, at the end of verification",
                &[],
            )],
        ),
    ];
    for (what, rules, samples, want) in cases {
        assert_eq!(watch(rules, &samples), want, "{what}");
    }
}

#[test]
fn at_the_services_start_only_staged_is_abandoned() {
    for (step, _) in Step::ALL {
        let want = if step == Step::Staged {
            End::Abandoned
        } else {
            End::RolledBack
        };
        assert_eq!(at_start(step), want, "{step:?}");
    }
}
