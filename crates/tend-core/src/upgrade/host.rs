//! The decisions of `tend upgrade --self` (docs/upgrade.md, "tend itself"), pure: which step
//! comes next when tend replaces its own binary, the one every installed service's host
//! runs.
//!
//! Services are moved one at a time, so a bad tend is found on the first service and the
//! others never run it:
//!
//! ```text
//! Staged ─► Swap ─► Restart(0) ─► Restart(1) ─► … ─► Upgraded
//!   │        │         │              │
//!   ▼        └─────────┴──────┬───────┘   (failed, or interrupted)
//! Abandoned                   ▼
//!                         UndoSwap ─► UndoRestart(0) ─► … UndoRestart(moved-1) ─► RolledBack
//!                            │                    (any of them failed) ─────────► Broken
//!                            └──► Broken
//! ```
//!
//! `Restart(i)` stops service `i`'s host (the old tend, gracefully), starts it (the new one)
//! and verifies it as `tend upgrade` verifies a release. When it fails, every service that
//! was restarted so far, the failed one included (`moved`), is restarted again once the old
//! binary is back. A service whose undo fails does not stop the others' undo: each is
//! restarted on the old tend, and the change ends [`End::Broken`] if any did not pass.
//!
//! As for a service's upgrade, an interrupted forward step is undone (whether the new tend
//! would have passed is unknown; the old one is known to work), and an interrupted undo
//! step is done again (each is idempotent).

use super::{End, Observed};

/// The step the journal names: the one about to be done (or being done when tend died).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "step", content = "service")]
pub enum HostStep {
    /// The new binary is complete in the store; nothing was touched.
    Staged,
    /// Put the new binary in place of the old one (running hosts keep the old one mapped).
    Swap,
    /// Restart service `i`'s host on the new binary and verify it.
    Restart(usize),
    /// Put the old binary back.
    UndoSwap,
    /// Restart service `i`'s host on the old binary again and verify it.
    UndoRestart(usize),
}

impl HostStep {
    /// The journal's and the test hook's spelling: `swap`, `restart`, `undo-swap`, …
    /// (the service's index is not part of it: `TEND_UPGRADE_PAUSE=restart` pauses before
    /// the first restart).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staged => "staged",
            Self::Swap => "swap",
            Self::Restart(_) => "restart",
            Self::UndoSwap => "undo-swap",
            Self::UndoRestart(_) => "undo-restart",
        }
    }

    /// Whether this step undoes the change.
    #[must_use]
    pub fn is_undo(self) -> bool {
        matches!(self, Self::UndoSwap | Self::UndoRestart(_))
    }
}

/// What the change carries from step to step (kept in the journal with the step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct HostRun {
    /// How many services are to be moved (the running ones, in order).
    pub services: usize,
    /// How many were restarted on the new binary, the failed one included: the ones an
    /// undo restarts again.
    pub moved: usize,
    /// An undo restart failed: the change ends broken whatever the others do.
    pub undo_failed: bool,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostNext {
    /// Write this step to the journal, then do it.
    Do(HostStep),
    /// Remove the journal: the change ended so.
    Finish(End),
}

/// The step after `step`, given what became of it; `run` records what an undo will need.
#[must_use]
pub fn next(step: HostStep, observed: Observed, run: &mut HostRun) -> HostNext {
    use HostNext::{Do, Finish};
    use HostStep::{Restart, Staged, Swap, UndoRestart, UndoSwap};
    use Observed::{Done, Failed, Interrupted};
    match (step, observed) {
        (Staged, Done) => Do(Swap),
        (Staged, Failed | Interrupted) => Finish(End::Abandoned),
        (Swap, Done) if run.services == 0 => Finish(End::Upgraded),
        (Swap, Done) => Do(Restart(0)),
        (Restart(i), Done) => {
            run.moved = moved(run, i);
            if i + 1 < run.services {
                Do(Restart(i + 1))
            } else {
                Finish(End::Upgraded)
            }
        }
        // A swap that failed or was cut short may have left either binary in place: put
        // the old one back (a no-op when it is still there).
        (Swap, Failed | Interrupted) => Do(UndoSwap),
        (Restart(i), Failed | Interrupted) => {
            run.moved = moved(run, i);
            Do(UndoSwap)
        }
        (UndoSwap, Done) if run.moved == 0 => Finish(End::RolledBack),
        (UndoSwap, Done) => Do(UndoRestart(0)),
        (UndoSwap, Failed) => Finish(End::Broken),
        (UndoRestart(i), Done | Failed) => {
            run.undo_failed |= observed == Failed;
            if i + 1 < run.moved {
                Do(UndoRestart(i + 1))
            } else if run.undo_failed {
                Finish(End::Broken)
            } else {
                Finish(End::RolledBack)
            }
        }
        // An undo step cut short is done again: each is idempotent.
        (s @ (UndoSwap | UndoRestart(_)), Interrupted) => Do(s),
    }
}

/// How many services were moved once service `i` was: never more than there are (a
/// journal edited by hand must not make an undo restart services that do not exist).
fn moved(run: &HostRun, i: usize) -> usize {
    run.moved.max(i + 1).min(run.services)
}

#[cfg(test)]
mod tests {
    use super::*;
    use End::{Abandoned, Broken, RolledBack, Upgraded};
    use HostNext::{Do, Finish};
    use HostStep::*;
    use Observed::{Done, Failed, Interrupted};

    /// Each row: the step, the run before, what became of it, the next, the run after.
    #[test]
    fn every_step() {
        let r = |services, moved, undo_failed| HostRun {
            services,
            moved,
            undo_failed,
        };
        let table: Vec<(HostStep, HostRun, Observed, HostNext, HostRun)> = vec![
            (Staged, r(2, 0, false), Done, Do(Swap), r(2, 0, false)),
            (
                Staged,
                r(2, 0, false),
                Failed,
                Finish(Abandoned),
                r(2, 0, false),
            ),
            (
                Staged,
                r(2, 0, false),
                Interrupted,
                Finish(Abandoned),
                r(2, 0, false),
            ),
            (Swap, r(2, 0, false), Done, Do(Restart(0)), r(2, 0, false)),
            (Swap, r(0, 0, false), Done, Finish(Upgraded), r(0, 0, false)),
            // A step past the list (a journal edited by hand): no more moved than exist.
            (
                Restart(5),
                r(2, 1, false),
                Failed,
                Do(UndoSwap),
                r(2, 2, false),
            ),
            (Swap, r(2, 0, false), Failed, Do(UndoSwap), r(2, 0, false)),
            (
                Swap,
                r(2, 0, false),
                Interrupted,
                Do(UndoSwap),
                r(2, 0, false),
            ),
            (
                Restart(0),
                r(2, 0, false),
                Done,
                Do(Restart(1)),
                r(2, 1, false),
            ),
            (
                Restart(1),
                r(2, 1, false),
                Done,
                Finish(Upgraded),
                r(2, 2, false),
            ),
            (
                Restart(0),
                r(2, 0, false),
                Failed,
                Do(UndoSwap),
                r(2, 1, false),
            ),
            (
                Restart(1),
                r(2, 1, false),
                Interrupted,
                Do(UndoSwap),
                r(2, 2, false),
            ),
            (
                UndoSwap,
                r(2, 0, false),
                Done,
                Finish(RolledBack),
                r(2, 0, false),
            ),
            (
                UndoSwap,
                r(2, 2, false),
                Done,
                Do(UndoRestart(0)),
                r(2, 2, false),
            ),
            (
                UndoSwap,
                r(2, 2, false),
                Failed,
                Finish(Broken),
                r(2, 2, false),
            ),
            (
                UndoSwap,
                r(2, 2, false),
                Interrupted,
                Do(UndoSwap),
                r(2, 2, false),
            ),
            (
                UndoRestart(0),
                r(2, 2, false),
                Done,
                Do(UndoRestart(1)),
                r(2, 2, false),
            ),
            (
                UndoRestart(0),
                r(2, 2, false),
                Failed,
                Do(UndoRestart(1)),
                r(2, 2, true),
            ),
            (
                UndoRestart(1),
                r(2, 2, false),
                Done,
                Finish(RolledBack),
                r(2, 2, false),
            ),
            (
                UndoRestart(1),
                r(2, 2, true),
                Done,
                Finish(Broken),
                r(2, 2, true),
            ),
            (
                UndoRestart(1),
                r(2, 2, false),
                Failed,
                Finish(Broken),
                r(2, 2, true),
            ),
            (
                UndoRestart(1),
                r(2, 2, false),
                Interrupted,
                Do(UndoRestart(1)),
                r(2, 2, false),
            ),
        ];
        for (step, before, obs, want, after) in table {
            let mut run = before;
            assert_eq!(
                next(step, obs, &mut run),
                want,
                "{step:?} {before:?} {obs:?}"
            );
            assert_eq!(run, after, "{step:?} {before:?} {obs:?}");
        }
    }

    /// Runs the machine from Staged with the observations scripted per step (Done when
    /// not scripted): the steps taken and the end.
    fn run(services: usize, script: &[(HostStep, Observed)]) -> (Vec<HostStep>, End) {
        let mut run = HostRun {
            services,
            ..HostRun::default()
        };
        let (mut step, mut steps) = (Staged, vec![Staged]);
        loop {
            let obs = script
                .iter()
                .find(|(s, _)| *s == step)
                .map_or(Done, |(_, o)| *o);
            match next(step, obs, &mut run) {
                Do(s) => {
                    steps.push(s);
                    step = s;
                }
                Finish(end) => return (steps, end),
            }
            assert!(steps.len() < 30, "no end: {steps:?}");
        }
    }

    #[test]
    fn whole_runs() {
        type Case = (
            &'static str,
            usize,
            Vec<(HostStep, Observed)>,
            Vec<HostStep>,
            End,
        );
        let cases: Vec<Case> = vec![
            (
                "a good tend, three services one after the other",
                3,
                vec![],
                vec![Staged, Swap, Restart(0), Restart(1), Restart(2)],
                Upgraded,
            ),
            (
                "no service runs: the swap is all",
                0,
                vec![],
                vec![Staged, Swap],
                Upgraded,
            ),
            (
                "a bad tend fails the first service: the others never run it",
                3,
                vec![(Restart(0), Failed)],
                vec![Staged, Swap, Restart(0), UndoSwap, UndoRestart(0)],
                RolledBack,
            ),
            (
                "the second fails: both moved ones go back",
                3,
                vec![(Restart(1), Failed)],
                vec![
                    Staged,
                    Swap,
                    Restart(0),
                    Restart(1),
                    UndoSwap,
                    UndoRestart(0),
                    UndoRestart(1),
                ],
                RolledBack,
            ),
            (
                "one undo fails, the other still goes back: broken",
                3,
                vec![(Restart(1), Failed), (UndoRestart(0), Failed)],
                vec![
                    Staged,
                    Swap,
                    Restart(0),
                    Restart(1),
                    UndoSwap,
                    UndoRestart(0),
                    UndoRestart(1),
                ],
                Broken,
            ),
            (
                "the swap fails: the old binary is put back, nothing restarted",
                2,
                vec![(Swap, Failed)],
                vec![Staged, Swap, UndoSwap],
                RolledBack,
            ),
        ];
        for (what, services, script, steps, end) in cases {
            assert_eq!(run(services, &script), (steps, end), "{what}");
        }
    }
}
