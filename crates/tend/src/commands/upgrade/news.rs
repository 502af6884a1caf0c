//! What a change tells besides the terminal (docs/upgrade.md, "Alerts, logs and metrics").
//!
//! The service's own supervisor is stopped and started during a change, so the tend that
//! does the change tells it: each line it prints also goes to the service's
//! `<name>.tend.log` and, on Windows, to the service's Event Log source (IDs 1400 to 1403);
//! how the change ended is an alert through the service's `[notify]` (`upgraded`,
//! `rolled_back`), and a line of the store's `results.jsonl`, which the service's metrics
//! count (`tend_upgrades_total`). None of it may fail the change: a line that cannot be
//! written is skipped, an alert that cannot be delivered is said on stderr.

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use tend_core::ServiceSpec;
use tend_core::upgrade::End;
use tend_health::{Alert, AlertKind, Notifier, NotifierConfig, ReleaseChange};

use super::Outcome;

/// How long the end waits for its alert to be delivered: the command exits right after, and
/// a webhook's tries (3, with 1 s and 2 s between) fit.
const ALERT_WAIT: Duration = Duration::from_secs(20);

/// How long an end told by the service's own start waits for its alert: the service is
/// starting, and its manager is waiting.
pub(super) const AT_START_ALERT_WAIT: Duration = Duration::from_secs(3);

/// The news of one service's change.
pub(super) struct News {
    spec: ServiceSpec,
    alert_wait: Duration,
    /// Off for `--check`.
    on: bool,
    #[cfg(windows)]
    events: Option<tend_os::scm::eventlog::EventLog>,
}

impl News {
    pub(super) fn new(spec: &ServiceSpec, system: bool, on: bool) -> Self {
        // The Event Log source is the system service's (registered by `tend install`).
        let _ = system;
        Self {
            spec: spec.clone(),
            alert_wait: ALERT_WAIT,
            on,
            #[cfg(windows)]
            events: (system && on)
                .then(|| tend_os::scm::eventlog::EventLog::open(spec.name.as_str()))
                .flatten(),
        }
    }

    /// The longest the end waits for its alert.
    pub(super) fn alert_wait(mut self, wait: Duration) -> Self {
        self.alert_wait = wait;
        self
    }

    /// One printed line, to the service's `<name>.tend.log` (and Event Log), worded as
    /// printed.
    pub(super) fn line(&self, text: &str) {
        if !self.on {
            return;
        }
        let path = tend_logs::LogKind::Supervisor
            .active_path(&self.spec.logs.dir, self.spec.name.as_str());
        let now = chrono::Local::now().fixed_offset();
        let bytes = tend_logs::supervisor_line_bytes(
            &self.spec.logs,
            self.spec.name.as_str(),
            text.trim_start().as_bytes(),
            &now,
        );
        // Appends only: the supervisor's own writer may have the file open too, and rotates
        // it by renaming. Never creates it: a file made by this (root) process could keep
        // the service's own account from writing its log; a service that never ran has none.
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path) {
            let _ = f.write_all(&bytes);
        }
        #[cfg(windows)]
        if let Some(ev) = &self.events {
            let (level, id) = event_of(text);
            ev.report(level, id, text.trim_start());
        }
    }

    /// How the change ended: the alert (if `[notify]` wants it), sent and waited for.
    pub(super) fn end(&self, out: &Outcome, line: &str) {
        if !self.on {
            return;
        }
        let Some(alert) = alert_of(out, line, SystemTime::now()) else {
            return;
        };
        let Some(notify) = self.spec.notify.as_ref().filter(|n| n.is_enabled()) else {
            return;
        };
        if !notify.events.contains(&alert.event) {
            return;
        }
        let config = NotifierConfig::new(
            self.spec.name.as_str(),
            notify,
            &self.spec.working_dir,
            &self.spec.env,
        );
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "warning: cannot send the alert: {e}");
                return;
            }
        };
        rt.block_on(async {
            let notifier = Notifier::spawn(config, |failure| {
                let _ = writeln!(std::io::stderr(), "warning: {failure}");
            });
            notifier.send(alert);
            let left = notifier.shutdown(self.alert_wait).await;
            if left > 0 {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: the `{}` alert was not delivered within {}s",
                    out.end_alert_word(),
                    self.alert_wait.as_secs()
                );
            }
        });
    }
}

impl Outcome {
    fn end_alert_word(&self) -> &'static str {
        alert_kind(self).map_or("none", AlertKind::as_str)
    }
}

/// Which alert a change's end is: `upgraded` when `tend upgrade` put the new release in place
/// and it passed; `rolled_back` when a release failed and the one before was put back (or
/// could not be: broken), and when `tend rollback` went back by hand. An abandoned change
/// touched nothing: no alert.
pub(super) fn alert_kind(out: &Outcome) -> Option<AlertKind> {
    match (out.op.as_str(), out.end) {
        (_, End::Abandoned) => None,
        ("upgrade", End::Upgraded) => Some(AlertKind::Upgraded),
        _ => Some(AlertKind::RolledBack),
    }
}

/// The alert of a change's end: its reason is the line the change printed last (the same
/// words as the terminal, the `.tend.log` and the Event Log), with the release ids and, for
/// a failed release, its last stderr lines.
pub(super) fn alert_of(out: &Outcome, line: &str, now: SystemTime) -> Option<Alert> {
    let event = alert_kind(out)?;
    let mut a = Alert::new(event, now);
    a.reason = Some(line.to_owned());
    a.release = Some(ReleaseChange {
        from: out.from.clone(),
        to: out.to.clone(),
    });
    if out.end != End::Upgraded {
        a.last_stderr.clone_from(&out.stderr);
    }
    Some(a)
}

/// The Event Log level and ID of a printed line: the end lines by how it ended, a failed
/// step as a warning, every other step as information.
#[cfg(any(windows, test))]
fn event_of(text: &str) -> (tend_os::scm::eventlog::Level, u32) {
    use tend_os::scm::eventlog::{Level, event_id};
    let t = text.trim_start();
    if t.starts_with("BROKEN ") {
        (Level::Error, event_id::UPGRADE_BROKEN)
    } else if t.starts_with("ROLLED BACK ") {
        (Level::Warning, event_id::ROLLED_BACK)
    } else if t.starts_with("upgraded `") || t.starts_with("rolled back `") {
        (Level::Information, event_id::UPGRADED)
    } else if t.contains(" FAILED: ") || t.starts_with('|') {
        (Level::Warning, event_id::UPGRADE_STEP)
    } else {
        (Level::Information, event_id::UPGRADE_STEP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tend_os::scm::eventlog::{Level, event_id};

    fn outcome(op: &str, end: End) -> Outcome {
        Outcome {
            service: "api".into(),
            op: op.into(),
            end,
            from: "A".into(),
            to: "B".into(),
            downtime_ms: Some(500),
            reason: Some("the program exited with code 3 during verification".into()),
            stderr: vec!["api: panic: cannot open database".into()],
            steps: Vec::new(),
        }
    }

    #[test]
    fn which_alert_each_end_is() {
        let kind = |op, end| alert_kind(&outcome(op, end));
        assert_eq!(kind("upgrade", End::Upgraded), Some(AlertKind::Upgraded));
        assert_eq!(
            kind("upgrade", End::RolledBack),
            Some(AlertKind::RolledBack)
        );
        assert_eq!(kind("upgrade", End::Broken), Some(AlertKind::RolledBack));
        assert_eq!(kind("upgrade", End::Abandoned), None);
        // By hand: the service went back.
        assert_eq!(kind("rollback", End::Upgraded), Some(AlertKind::RolledBack));
        assert_eq!(
            kind("rollback", End::RolledBack),
            Some(AlertKind::RolledBack)
        );
        assert_eq!(kind("rollback", End::Abandoned), None);
    }

    #[test]
    fn a_rolled_back_alert_carries_the_line_the_ids_and_the_last_stderr() {
        let line = "ROLLED BACK `api`: release B failed: the program exited with code 3 during \
                    verification; release A runs again and passed verification; downtime 0.5s";
        let a = alert_of(
            &outcome("upgrade", End::RolledBack),
            line,
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(a.event, AlertKind::RolledBack);
        assert_eq!(a.reason.as_deref(), Some(line));
        assert_eq!(
            a.release,
            Some(ReleaseChange {
                from: "A".into(),
                to: "B".into()
            })
        );
        assert_eq!(a.last_stderr, ["api: panic: cannot open database"]);
        let p = tend_health::notify::payload("api", "box1", &a);
        assert_eq!(p["event"], "rolled_back");
        assert_eq!(p["from_release"], "A");
        assert_eq!(p["to_release"], "B");

        let a = alert_of(
            &outcome("upgrade", End::Upgraded),
            "upgraded `api`",
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        assert!(
            a.last_stderr.is_empty(),
            "a passed release has no failure to show"
        );
    }

    #[test]
    fn event_log_levels_and_ids() {
        assert_eq!(
            event_of("  swap        `/opt/api/api` is release B (0.0s)"),
            (Level::Information, event_id::UPGRADE_STEP)
        );
        assert_eq!(
            event_of("  verify      FAILED: the program exited with code 3"),
            (Level::Warning, event_id::UPGRADE_STEP)
        );
        assert_eq!(
            event_of("              | api: panic: cannot open database"),
            (Level::Warning, event_id::UPGRADE_STEP)
        );
        assert_eq!(
            event_of("upgraded `api`: release B runs and passed verification; downtime 0.5s"),
            (Level::Information, event_id::UPGRADED)
        );
        assert_eq!(
            event_of("ROLLED BACK `api`: release B failed"),
            (Level::Warning, event_id::ROLLED_BACK)
        );
        assert_eq!(
            event_of("BROKEN `api`: release B failed"),
            (Level::Error, event_id::UPGRADE_BROKEN)
        );
    }

    #[test]
    fn lines_go_to_the_tend_log_as_the_supervisor_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "name = \"api\"\ncommand = [\"prog\"]\n[logs]\ndir = '{}'\n",
            dir.path().display()
        );
        let spec = tend_config::parse(&text, std::path::Path::new("api.toml"), &Default::default())
            .expect("a valid config")
            .spec;
        // The supervisor made it: a line is only ever appended.
        std::fs::write(dir.path().join("api.tend.log"), b"").unwrap();
        let news = News::new(&spec, false, true);
        news.line("  stop        stopped (0.3s)");
        news.line("upgraded `api`: release B runs and passed verification");
        let text = std::fs::read_to_string(dir.path().join("api.tend.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        // `<RFC 3339 time> <line>`, the indentation of the terminal dropped.
        assert!(lines[0].ends_with(" stop        stopped (0.3s)"), "{text}");
        assert!(lines[0].starts_with("20"), "{text}");
        assert!(lines[1].ends_with(" upgraded `api`: release B runs and passed verification"));
    }
}
