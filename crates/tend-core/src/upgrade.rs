//! The decisions of `tend upgrade` and `tend rollback`, pure: which step comes next after
//! what the last one did (or after finding the journal of an interrupted run), and whether
//! a release under verification passes. The CLI writes the step to its journal before it
//! does it, so the journal always names the step that may have been cut short.
//!
//! A change goes from release `from` (running) to release `to`:
//!
//! ```text
//! Staged ─► Stop ─► Swap ─► Start ─► Verify ─► Upgraded
//!   │         │       │       │        │
//!   ▼         └───────┴───┬───┴────────┘  (failed, or interrupted)
//! Abandoned               ▼
//!            UndoStop ─► UndoSwap ─► UndoStart ─► UndoVerify ─► RolledBack
//!                          │            │             │
//!                          └────────────┴─────────────┴──► Broken
//! ```
//!
//! An interrupted step before `Verify` passed is undone, never finished: whether the new
//! release would have passed is unknown, and the old one is known to work. An interrupted
//! undo step is done again (each is idempotent: stop a stopped service, copy the same file,
//! start a running one).
//!
//! A swap is one step whatever the release's form: a program file is a copy renamed over
//! the old one; a directory is up to two renames, and [`app::moves`] says which are left
//! after a crash, so `Swap` and `UndoSwap` stay single, idempotent steps.
//!
//! The service's own start (systemd `ExecStartPre=`) ends an interrupted change too, but
//! cannot stop, start or verify the service it is starting: [`at_start`] says what it does.

use std::time::Duration;

pub mod app;
pub mod host;

/// The step the journal names: the one about to be done (or being done when tend died).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The new release is complete in the release store; the service is untouched.
    Staged,
    /// Stop the service gracefully.
    Stop,
    /// Put release `to` in place (the service is stopped).
    Swap,
    /// Start the service.
    Start,
    /// Watch release `to` run.
    Verify,
    /// `to` failed: stop it.
    UndoStop,
    /// Put release `from` back.
    UndoSwap,
    /// Start `from` again.
    UndoStart,
    /// Watch `from` run again.
    UndoVerify,
}

impl Step {
    /// Every step with its journal spelling, in flow order.
    pub const ALL: [(Self, &'static str); 9] = [
        (Self::Staged, "staged"),
        (Self::Stop, "stop"),
        (Self::Swap, "swap"),
        (Self::Start, "start"),
        (Self::Verify, "verify"),
        (Self::UndoStop, "undo-stop"),
        (Self::UndoSwap, "undo-swap"),
        (Self::UndoStart, "undo-start"),
        (Self::UndoVerify, "undo-verify"),
    ];

    /// Its journal spelling (also the test hook's: `TEND_UPGRADE_PAUSE=swap`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("?", |(_, n)| n)
    }

    /// The step of a spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(s, _)| *s)
    }

    /// Whether this step undoes the change (release `from` is the one being put back).
    #[must_use]
    pub fn is_undo(self) -> bool {
        matches!(
            self,
            Self::UndoStop | Self::UndoSwap | Self::UndoStart | Self::UndoVerify
        )
    }
}

/// What became of the step last named by the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// It was done (for a verification: the release passed).
    Done,
    /// It was tried and failed (for a verification: the release failed).
    Failed,
    /// tend died during it: it may be half done (found in the journal by the next tend).
    Interrupted,
}

/// How a change ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum End {
    /// Release `to` runs and passed verification.
    Upgraded,
    /// Nothing was changed: the change stopped before the service was touched.
    Abandoned,
    /// `to` failed (or the change was interrupted); `from` runs again and passed.
    RolledBack,
    /// Neither release could be brought back to a verified run: `from` is in place but did
    /// not pass (or could not be put back). The operator must look.
    Broken,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Write this step to the journal, then do it.
    Do(Step),
    /// Remove the journal: the change ended so.
    Finish(End),
}

/// The step after `step`, given what became of it.
#[must_use]
pub fn next(step: Step, observed: Observed) -> Next {
    use Observed::{Done, Failed, Interrupted};
    use Step::{Staged, Start, Stop, Swap, UndoStart, UndoStop, UndoSwap, UndoVerify, Verify};
    match (step, observed) {
        (Staged, Done) => Next::Do(Stop),
        // The service was never touched: dropping the staged release is the whole undo.
        (Staged, Failed | Interrupted) => Next::Finish(End::Abandoned),
        (Stop, Done) => Next::Do(Swap),
        (Swap, Done) => Next::Do(Start),
        (Start, Done) => Next::Do(Verify),
        (Verify, Done) => Next::Finish(End::Upgraded),
        // A failed or cut-short forward step: undo all of it, from the stop on (a stop
        // that failed may have left the old release running or not; stop, swap and start
        // are each harmless when already so).
        (Stop | Swap | Start | Verify, Failed | Interrupted) => Next::Do(UndoStop),
        // A stop that fails still leaves a program whose file may be replaced (Unix), and a
        // start of the old release is what matters now.
        (UndoStop, Done | Failed) => Next::Do(UndoSwap),
        (UndoSwap, Done) => Next::Do(UndoStart),
        (UndoStart, Done) => Next::Do(UndoVerify),
        (UndoVerify, Done) => Next::Finish(End::RolledBack),
        (UndoSwap | UndoStart | UndoVerify, Failed) => Next::Finish(End::Broken),
        // An undo step cut short is done again: each is idempotent.
        (s, Interrupted) => Next::Do(s),
    }
}

/// How the service's start ends a change a killed tend left at `step`, at the file level:
/// [`End::Abandoned`] (the service was never touched: only the staged release is dropped)
/// or [`End::RolledBack`] (release `from` is put back in place and the start goes on with
/// it, unverified: it is the one known to work). The same rule as [`next`] after an
/// interruption, without the steps the start cannot take.
#[must_use]
pub fn at_start(step: Step) -> End {
    match next(step, Observed::Interrupted) {
        Next::Finish(End::Abandoned) => End::Abandoned,
        _ => End::RolledBack,
    }
}

/// What `tend upgrade` watches of a release under verification: the supervisor's status
/// file, reduced to what the verdict needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The supervisor's state (`running`, `backoff`, `failed`, ...).
    pub state: String,
    /// The program's pid while it runs.
    pub pid: Option<u32>,
    /// Restarts since the supervisor started.
    pub restarts: u64,
    /// `[health]`: `starting`, `healthy`, `unhealthy`; `None` without the section.
    pub health: Option<String>,
    /// Why the program is unhealthy, when it is.
    pub health_reason: Option<String>,
    /// How the last run ended (`exited with code 3`), with its last stderr lines.
    pub last_exit: Option<(String, Vec<String>)>,
}

/// What is known of a verification so far.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Watch {
    /// The program's pid and restart count first seen running: any other later means it
    /// exited (and was restarted).
    pub first: Option<(u32, u64)>,
    /// Whether it was healthy (with `[health]`) at least once.
    pub healthy_once: bool,
    /// Whether `verify_command` passed.
    pub command_passed: bool,
}

/// What the verification concludes from one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Keep watching.
    Wait,
    /// Run `verify_command` now: the program runs (and is healthy with `[health]`).
    RunCommand,
    /// The release passed.
    Pass,
    /// The release failed: why, and its last stderr lines when it exited.
    Fail(String, Vec<String>),
}

/// The rules of a verification (`[upgrade]` and whether `[health]` is configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// `[upgrade] verify`.
    pub verify: Duration,
    /// `[health]` is configured: the program must become healthy.
    pub health: bool,
    /// `[upgrade] verify_command` is configured.
    pub command: bool,
}

/// The verdict on `sample` (`None`: the new supervisor has not written its status yet),
/// `elapsed` after the start was asked for. Updates `watch` with what the sample shows.
#[must_use]
pub fn verdict(
    rules: Rules,
    watch: &mut Watch,
    sample: Option<&Sample>,
    elapsed: Duration,
) -> Verdict {
    let over = elapsed >= rules.verify;
    let Some(s) = sample else {
        return if over {
            Verdict::Fail(
                format!(
                    "tend did not report the program running within {}",
                    crate::fmt::duration(rules.verify)
                ),
                Vec::new(),
            )
        } else {
            Verdict::Wait
        };
    };
    let exited = |why: &str| {
        let (desc, lines) = s
            .last_exit
            .clone()
            .unwrap_or_else(|| ("it stopped".to_owned(), Vec::new()));
        Verdict::Fail(format!("the program {desc} {why}"), lines)
    };
    match s.state.as_str() {
        "failed" | "backoff" | "stopped" | "idle" => {
            return exited("during verification");
        }
        "running" => {}
        // starting, stopping: not yet (or no longer) running.
        _ => {
            return if over {
                Verdict::Fail(
                    format!(
                        "the program was `{}`, not running, at the end of verification",
                        s.state
                    ),
                    Vec::new(),
                )
            } else {
                Verdict::Wait
            };
        }
    }
    let Some(pid) = s.pid else {
        return Verdict::Wait;
    };
    match watch.first {
        None => watch.first = Some((pid, s.restarts)),
        Some((p, r)) if p != pid || r != s.restarts => {
            return exited("and was restarted during verification");
        }
        Some(_) => {}
    }
    if rules.health {
        match s.health.as_deref() {
            Some("healthy") => watch.healthy_once = true,
            Some("unhealthy") if watch.healthy_once => {
                return Verdict::Fail(
                    format!(
                        "the program became unhealthy during verification: {}",
                        s.health_reason.as_deref().unwrap_or("no reason given")
                    ),
                    Vec::new(),
                );
            }
            _ => {}
        }
    }
    let ready = !rules.health || watch.healthy_once;
    if ready && rules.command && !watch.command_passed {
        return Verdict::RunCommand;
    }
    if !over {
        return Verdict::Wait;
    }
    if !ready {
        let why = s
            .health_reason
            .as_deref()
            .map(|r| format!(" (last: {r})"))
            .unwrap_or_default();
        return Verdict::Fail(
            format!(
                "the program did not become healthy within {}{why}",
                crate::fmt::duration(rules.verify)
            ),
            Vec::new(),
        );
    }
    Verdict::Pass
}

#[cfg(test)]
mod tests;
