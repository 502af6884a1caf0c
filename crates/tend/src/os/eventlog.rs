//! Which of tend's lines goes to the Windows Event Log with which level and ID: the
//! runtime's side of the Event Log (`tend service` on Windows). The IDs, the levels and
//! the writing itself are tend-os's ([`tend_os::scm::eventlog`]).

use tend_os::scm::eventlog::{Level, event_id};

use crate::events::{self, Event};

/// The level and ID of one of tend's lines in the Event Log, from what event it is;
/// `None` for what is not a line. The exit that ends a requested stop is routine, the same
/// exit without one is a crash or a health restart: the step's cause says which.
pub(crate) fn event_level(event: &Event) -> Option<(Level, u32)> {
    use tend_core::{Exit, ExitCause, Notice};
    let n = match (event, event.level()?) {
        (Event::Step { notice, .. }, _) => notice,
        (_, events::Level::Info | events::Level::Notice) => {
            return Some((Level::Information, event_id::INFO));
        }
        (_, events::Level::Warning) => return Some((Level::Warning, event_id::TROUBLE)),
        (_, events::Level::Failure) => return Some((Level::Error, event_id::TEND_FAILED)),
    };
    Some(match n {
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
    })
}

/// The Event Log as a subscriber: every line to the service's source, with the level and
/// ID [`event_level`] gives it.
#[cfg(windows)]
pub(crate) fn subscriber(
    log: std::sync::Arc<tend_os::scm::eventlog::EventLog>,
) -> std::sync::Arc<dyn crate::events::Subscriber> {
    struct EventLogOut(std::sync::Arc<tend_os::scm::eventlog::EventLog>);
    impl crate::events::Subscriber for EventLogOut {
        fn deliver(&self, e: &crate::events::Delivered<'_>) {
            if let Some((level, id)) = event_level(e.event) {
                self.0.report(level, id, e.text());
            }
        }
    }
    std::sync::Arc::new(EventLogOut(log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_levels_mean_something() {
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
        let step = |notice: Notice| Event::Step {
            notice,
            last_words: String::new(),
        };
        // Sequences as the supervisor reports them, each with the levels it must get.
        type Step<'a> = (Event, &'a str, Level);
        let cases: Vec<(&str, Vec<Step>)> = vec![
            (
                "a requested stop is information from start to end",
                vec![
                    (step(started.clone()), "started pid 7", Information),
                    (step(stopping.clone()), "stopping", Information),
                    (step(stopped_exit(0)), "pid 7 exited", Information),
                    (step(Notice::Stopped), "stopped", Information),
                ],
            ),
            (
                "a crash and its restart are warnings, the new start is information",
                vec![
                    (step(started.clone()), "started", Information),
                    (step(exited(3)), "pid 7 exited with code 3", Warning),
                    (step(restarting.clone()), "restarting", Warning),
                    (step(started.clone()), "started", Information),
                    (step(exited(0)), "exited on its own", Warning),
                ],
            ),
            (
                "a stop whose graceful step timed out warns about the kill only",
                vec![
                    (step(stopping.clone()), "stopping", Information),
                    (
                        step(Notice::Killing {
                            pid: 7,
                            after: Duration::from_secs(10),
                        }),
                        "killing",
                        Warning,
                    ),
                    (step(stopped_exit(1)), "exited", Information),
                    (step(Notice::Stopped), "stopped", Information),
                    (step(exited(2)), "a later crash", Warning),
                    (
                        step(exited_as(0, ExitCause::Unhealthy)),
                        "stopped for being unhealthy",
                        Warning,
                    ),
                ],
            ),
            (
                "giving up and failures of tend itself are errors",
                vec![
                    (step(gave_up), "gave up", Error),
                    (step(not_restarting(3)), "not restarting", Error),
                    (step(not_restarting(0)), "not restarting", Information),
                    (
                        step(Notice::SpawnFailed {
                            error: "missing".into(),
                        }),
                        "cannot start the program",
                        Error,
                    ),
                    (
                        Event::Failed(events::Failure::Kill("denied".into())),
                        "cannot kill the process tree: denied",
                        Error,
                    ),
                    (
                        Event::Failed(events::Failure::Signal("no console".into())),
                        "cannot signal the program: no console",
                        Error,
                    ),
                ],
            ),
            (
                "plain lines: reloads are information, trouble a warning",
                vec![
                    (
                        Event::Reload(events::Reload::Unchanged),
                        "reloaded: no changes",
                        Information,
                    ),
                    (
                        Event::Requested {
                            by: "SCM stop",
                            stop: true,
                        },
                        "SCM stop received: stopping",
                        Information,
                    ),
                    (
                        Event::Reload(events::Reload::Rejected("x".into())),
                        "reload rejected, the running config stays: x",
                        Warning,
                    ),
                    (
                        Event::Logs(tend_logs::LogEvent::WriteFailed {
                            path: "x".into(),
                            error: "disk full".into(),
                        }),
                        "logs: cannot write log file x: disk full; dropping output until it works again",
                        Warning,
                    ),
                ],
            ),
        ];
        for (what, seq) in cases {
            for (event, text, want) in seq {
                let (got, _) = event_level(&event).expect("a line");
                assert_eq!(got, want, "{what}: {text}");
                // The wording the level goes with is the event's own.
                if !matches!(event, Event::Step { .. }) {
                    assert_eq!(event.to_string(), text, "{what}");
                }
            }
        }
        // What is not a line is not in the Event Log.
        assert_eq!(
            event_level(&Event::Alert(Box::new(tend_health::Alert::new(
                tend_health::AlertKind::Crashed,
                std::time::SystemTime::now()
            )))),
            None
        );
    }
}
