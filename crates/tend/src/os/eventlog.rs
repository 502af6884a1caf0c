//! Which of tend's lines goes to the Windows Event Log with which level and ID: the
//! runtime's side of the Event Log (`tend service` on Windows). The IDs, the levels and
//! the writing itself are tend-os's ([`tend_os::scm::eventlog`]).

use tend_os::scm::eventlog::{Level, event_id};

/// The level and ID of one of tend's lines in the Event Log, from what kind of line it is.
/// The exit that ends a requested stop is routine, the same exit without one is a crash or
/// a health restart: the notice's cause says which.
pub(crate) fn event_level(kind: &crate::report::Kind) -> (Level, u32) {
    use crate::report::Kind;
    use tend_core::{Exit, ExitCause, Notice};
    let n = match kind {
        Kind::Notice(n) => n,
        Kind::Info => return (Level::Information, event_id::INFO),
        Kind::Warning => return (Level::Warning, event_id::TROUBLE),
        Kind::Failure => return (Level::Error, event_id::TEND_FAILED),
    };
    match n {
        Notice::Started { .. } => (Level::Information, event_id::STARTED),
        Notice::SpawnFailed { .. } => (Level::Error, event_id::SPAWN_FAILED),
        Notice::Exited {
            cause: ExitCause::Requested,
            ..
        } => (Level::Information, event_id::EXITED),
        Notice::Exited { .. } => (Level::Warning, event_id::EXITED),
        Notice::Restarting { .. } => (Level::Warning, event_id::RESTARTING),
        Notice::NotRestarting { exit, .. } => {
            if *exit == Exit::Code(0) {
                (Level::Information, event_id::NOT_RESTARTING)
            } else {
                (Level::Error, event_id::NOT_RESTARTING)
            }
        }
        Notice::GaveUp(_) => (Level::Error, event_id::GAVE_UP),
        Notice::Stopping { .. } => (Level::Information, event_id::STOPPING),
        // The graceful step did not work in time.
        Notice::Killing { .. } => (Level::Warning, event_id::KILLED),
        Notice::Stopped => (Level::Information, event_id::STOPPED),
    }
}

/// A reporter sink that sends every line to the service's Event Log source, with the
/// level and ID [`event_level`] gives it.
#[cfg(windows)]
pub(crate) fn sink(
    events: std::sync::Arc<tend_os::scm::eventlog::EventLog>,
) -> crate::report::LineSink {
    std::sync::Arc::new(move |text: &str, kind: &crate::report::Kind| {
        let (level, id) = event_level(kind);
        events.report(level, id, text);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_levels_mean_something() {
        use crate::report::Kind;
        use Level::{Error, Information, Warning};
        use std::time::Duration;
        use tend_core::{Exit, ExitCause, GiveUp, Notice, RestartPolicy};
        let exited_as = |code, cause| Notice::Exited {
            pid: 7,
            exit: Exit::Code(code),
            uptime: Duration::from_secs(3),
            cause,
        };
        let exited = |code| exited_as(code, ExitCause::OnItsOwn);
        let stopped_exit = |code| exited_as(code, ExitCause::Requested);
        let stopping = Notice::Stopping {
            pid: 7,
            timeout: Duration::from_secs(10),
        };
        let restarting = Notice::Restarting {
            delay: Duration::from_secs(1),
            in_window: 1,
            limit: 5,
        };
        let gave_up = Notice::GaveUp(GiveUp {
            restarts: 5,
            window: Duration::from_secs(60),
            last_exit: Exit::Code(3),
            unhealthy: None,
        });
        let not_restarting = |code| Notice::NotRestarting {
            exit: Exit::Code(code),
            policy: RestartPolicy::Never,
        };
        let started = Notice::Started { pid: 7 };
        // Sequences as the supervisor reports them, each with the levels it must get.
        type Step<'a> = (Kind, &'a str, Level);
        let cases: Vec<(&str, Vec<Step>)> = vec![
            (
                "a requested stop is information from start to end",
                vec![
                    (Kind::Notice(started.clone()), "started pid 7", Information),
                    (Kind::Notice(stopping.clone()), "stopping", Information),
                    (Kind::Notice(stopped_exit(0)), "pid 7 exited", Information),
                    (Kind::Notice(Notice::Stopped), "stopped", Information),
                ],
            ),
            (
                "a crash and its restart are warnings, the new start is information",
                vec![
                    (Kind::Notice(started.clone()), "started", Information),
                    (Kind::Notice(exited(3)), "pid 7 exited with code 3", Warning),
                    (Kind::Notice(restarting.clone()), "restarting", Warning),
                    (Kind::Notice(started.clone()), "started", Information),
                    (Kind::Notice(exited(0)), "exited on its own", Warning),
                ],
            ),
            (
                "a stop whose graceful step timed out warns about the kill only",
                vec![
                    (Kind::Notice(stopping.clone()), "stopping", Information),
                    (
                        Kind::Notice(Notice::Killing {
                            pid: 7,
                            after: Duration::from_secs(10),
                        }),
                        "killing",
                        Warning,
                    ),
                    (Kind::Notice(stopped_exit(1)), "exited", Information),
                    (Kind::Notice(Notice::Stopped), "stopped", Information),
                    (Kind::Notice(exited(2)), "a later crash", Warning),
                    (
                        Kind::Notice(exited_as(0, ExitCause::Unhealthy)),
                        "stopped for being unhealthy",
                        Warning,
                    ),
                ],
            ),
            (
                "giving up and failures of tend itself are errors",
                vec![
                    (Kind::Notice(gave_up), "gave up", Error),
                    (Kind::Notice(not_restarting(3)), "not restarting", Error),
                    (
                        Kind::Notice(not_restarting(0)),
                        "not restarting",
                        Information,
                    ),
                    (
                        Kind::Notice(Notice::SpawnFailed {
                            error: "missing".into(),
                        }),
                        "cannot start the program",
                        Error,
                    ),
                    (Kind::Failure, "cannot kill the process tree: denied", Error),
                    (
                        Kind::Failure,
                        "cannot signal the program: no console",
                        Error,
                    ),
                ],
            ),
            (
                "plain lines: reloads are information, trouble a warning",
                vec![
                    (Kind::Info, "reloaded: no changes", Information),
                    (Kind::Info, "SCM stop received: stopping", Information),
                    (
                        Kind::Warning,
                        "reload rejected, the running config stays: x",
                        Warning,
                    ),
                    (Kind::Warning, "logs: cannot write `x`: disk full", Warning),
                ],
            ),
        ];
        for (what, seq) in cases {
            for (kind, text, want) in seq {
                let (got, _) = event_level(&kind);
                assert_eq!(got, want, "{what}: {text}");
            }
        }
    }
}
