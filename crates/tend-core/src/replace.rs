//! The decisions of `tend import --install --replace`, pure: which step comes next after
//! what the last one did (or after finding the journal of an interrupted run).
//!
//! A replacement takes a service another tool installed (`foreign`) over and puts tend's
//! (`into`, the same name or a new one) in its place:
//!
//! ```text
//! Backup ─► TakeOver ─► Install ─► Start ─► Verify ─► Replaced
//!   │          │           │         │        │
//!   ▼          └───────────┴────┬────┴────────┘  (failed, or interrupted)
//! Abandoned                     ▼
//!                           PutBack ─► UndoVerify ─► PutBackDone
//!                              │            │
//!                              └────────────┴──► Broken
//! ```
//!
//! The backup (what the foreign service was: its definition's files, its SCM settings,
//! whether it ran and started at boot) is complete on disk before `TakeOver` changes
//! anything, so every later step can be undone from it. An interrupted forward step is
//! undone, never finished: the foreign service is known to work. An interrupted undo step
//! is done again (putting back what is already back is harmless).

use crate::upgrade::Observed;

/// The step the journal names: the one about to be done (or being done when tend died).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Record the foreign service (nothing is changed yet).
    Backup,
    /// Stop the foreign service and take its name (or disable it, for a new name).
    TakeOver,
    /// Install tend's service.
    Install,
    /// Start tend's service.
    Start,
    /// Watch the program run under tend.
    Verify,
    /// Remove tend's service and put the foreign one back as it was.
    PutBack,
    /// Watch the foreign service run again (when it ran before).
    UndoVerify,
}

impl Step {
    /// Every step with its journal spelling, in flow order.
    pub const ALL: [(Self, &'static str); 7] = [
        (Self::Backup, "backup"),
        (Self::TakeOver, "take-over"),
        (Self::Install, "install"),
        (Self::Start, "start"),
        (Self::Verify, "verify"),
        (Self::PutBack, "put-back"),
        (Self::UndoVerify, "undo-verify"),
    ];

    /// Its journal spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("?", |(_, n)| n)
    }

    /// Whether this step undoes the replacement.
    #[must_use]
    pub fn is_undo(self) -> bool {
        matches!(self, Self::PutBack | Self::UndoVerify)
    }
}

/// How a replacement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum End {
    /// tend's service runs and passed verification.
    Replaced,
    /// Nothing was changed.
    Abandoned,
    /// tend's service failed (or the run was interrupted); the foreign one is back and runs
    /// (or is back stopped, as it was).
    PutBack,
    /// The foreign service could not be put back, or does not run again.
    Broken,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Write this step to the journal, then do it.
    Do(Step),
    /// Remove the journal: the replacement ended so.
    Finish(End),
}

/// The step after `step`, given what became of it. `was_active`: the foreign service ran
/// before (only then is its run watched after the put-back).
#[must_use]
pub fn next(step: Step, observed: Observed, was_active: bool) -> Next {
    use Observed::{Done, Failed, Interrupted};
    use Step::{Backup, Install, PutBack, Start, TakeOver, UndoVerify, Verify};
    match (step, observed) {
        (Backup, Done) => Next::Do(TakeOver),
        // Nothing was touched: the (maybe partial) backup is all there is.
        (Backup, Failed | Interrupted) => Next::Finish(End::Abandoned),
        (TakeOver, Done) => Next::Do(Install),
        (Install, Done) => Next::Do(Start),
        (Start, Done) => Next::Do(Verify),
        (Verify, Done) => Next::Finish(End::Replaced),
        // A take-over that failed half-way may have stopped or changed the foreign service:
        // put it back from the backup, as for any later step.
        (TakeOver | Install | Start | Verify, Failed | Interrupted) => Next::Do(PutBack),
        (PutBack, Done) if was_active => Next::Do(UndoVerify),
        (PutBack, Done) => Next::Finish(End::PutBack),
        (UndoVerify, Done) => Next::Finish(End::PutBack),
        (PutBack | UndoVerify, Failed) => Next::Finish(End::Broken),
        (s @ (PutBack | UndoVerify), Interrupted) => Next::Do(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Observed::{Done, Failed, Interrupted};

    /// The flow as a table: every step, every observation.
    #[test]
    fn next_step_table() {
        use End as E;
        use Next::{Do, Finish};
        use Step as S;
        let table = [
            (S::Backup, Done, true, Do(S::TakeOver)),
            (S::Backup, Failed, true, Finish(E::Abandoned)),
            (S::Backup, Interrupted, true, Finish(E::Abandoned)),
            (S::TakeOver, Done, true, Do(S::Install)),
            (S::TakeOver, Failed, true, Do(S::PutBack)),
            (S::TakeOver, Interrupted, false, Do(S::PutBack)),
            (S::Install, Done, true, Do(S::Start)),
            (S::Install, Failed, true, Do(S::PutBack)),
            (S::Start, Done, true, Do(S::Verify)),
            (S::Start, Failed, true, Do(S::PutBack)),
            (S::Start, Interrupted, true, Do(S::PutBack)),
            (S::Verify, Done, true, Finish(E::Replaced)),
            (S::Verify, Failed, true, Do(S::PutBack)),
            (S::Verify, Interrupted, true, Do(S::PutBack)),
            (S::PutBack, Done, true, Do(S::UndoVerify)),
            (S::PutBack, Done, false, Finish(E::PutBack)),
            (S::PutBack, Failed, true, Finish(E::Broken)),
            (S::PutBack, Interrupted, true, Do(S::PutBack)),
            (S::UndoVerify, Done, true, Finish(E::PutBack)),
            (S::UndoVerify, Failed, true, Finish(E::Broken)),
            (S::UndoVerify, Interrupted, true, Do(S::UndoVerify)),
        ];
        for (step, obs, active, want) in table {
            assert_eq!(next(step, obs, active), want, "{step:?} {obs:?} {active}");
        }
    }

    #[test]
    fn spellings_and_undo_steps() {
        for (s, n) in Step::ALL {
            assert_eq!(s.as_str(), n);
        }
        assert!(Step::PutBack.is_undo() && Step::UndoVerify.is_undo());
        assert!(!Step::Verify.is_undo() && !Step::TakeOver.is_undo());
    }
}
