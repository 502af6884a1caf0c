//! `tend service [--user] <name>` on Linux and macOS: what systemd or launchd starts.
//!
//! It reads the installed config copy (where [`tend_os::Layout`] puts it for the scope),
//! keeps its status file and logs where the layout says, and supervises exactly as
//! `tend run` does ([`crate::host::Host`]). What it adds is talking to the OS manager:
//!
//! - `READY=1` when the first notice of the supervisor arrives: the program was started,
//!   or its first start failed and tend's restart policy took over. Either way tend is
//!   supervising, which is what systemd waits for (`Type=notify`): a program that cannot
//!   start is tend's to retry and report, not a reason to fail `systemctl start` after
//!   `TimeoutStartSec=` (which systemd would then count as a failure of tend itself);
//! - `STATUS=<what just happened>` for every supervisor notice (`systemctl status` shows it);
//! - `STOPPING=1` as soon as SIGTERM or SIGINT arrives;
//! - `WATCHDOG=1` every half `$WATCHDOG_USEC`, when the unit has `WatchdogSec=` (e.g. from a
//!   drop-in). The pets come from the same single-threaded runtime as the supervision, so
//!   a supervisor that hangs stops petting and systemd restarts tend.
//!
//! SIGHUP (`systemctl reload`, `launchctl kill SIGHUP`) reloads the config copy.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use crate::error::CliError;
use crate::events::{Bus, Delivered, Event, Subscriber};
use crate::host::{Adapter, Boot};
use crate::place::{self, Scope};
use crate::sd_notify::{self, Notifier};
use crate::supervisor::Control;

/// systemd or launchd: signals in (SIGTERM stops, SIGHUP reloads), sd_notify out.
struct Managed {
    name: tend_core::ServiceName,
    place: tend_os::Layout,
    notifier: Option<Arc<Notifier>>,
    watchdog: Option<std::time::Duration>,
}

impl Adapter for Managed {
    fn config_failed(&mut self, e: &tend_config::ConfigError) {
        let why = crate::host::config_error_text(e);
        if let Some(n) = &self.notifier {
            let _ = n.status(&format!("cannot load the config: {why}"));
        }
        // `tend status` and `tend start` show this rather than the last run's give-up
        // reason; a status file that cannot be written changes nothing about the exit.
        let file = crate::status::path(&self.place.state_dir, self.name.as_str());
        let _ = std::fs::create_dir_all(&self.place.state_dir);
        let last = crate::status::read(&file).ok().flatten();
        if let Some(snap) = config_failed(last, &self.name, &self.place.config, &why) {
            let _ = crate::status::write(&file, &snap);
        }
    }

    fn subscribers(&mut self) -> Vec<Arc<dyn Subscriber>> {
        self.notifier
            .clone()
            .map(|n| {
                Arc::new(SdNotify {
                    notifier: n,
                    ready: AtomicBool::new(false),
                }) as Arc<dyn Subscriber>
            })
            .into_iter()
            .collect()
    }

    fn listen(
        &mut self,
        controls: mpsc::UnboundedSender<Control>,
        events: &Bus,
    ) -> Result<(), CliError> {
        let stopping = self.notifier.clone();
        crate::host::forward_signals(controls, events.clone(), move |sig| {
            if let Some(n) = &stopping {
                let _ = n.notify(&format!(
                    "STOPPING=1\n{}",
                    sd_notify::status_message(&format!("stopping ({sig})"))
                ));
            }
        })?;
        if let (Some(n), Some(every)) = (self.notifier.clone(), self.watchdog) {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let _ = n.notify("WATCHDOG=1");
                }
            });
        }
        Ok(())
    }
}

pub(crate) fn run(name: &str, scope: Scope) -> Result<ExitCode, CliError> {
    let name = place::service_name(name)?;
    let place = place::place(scope, &name)?;
    let notifier = match Notifier::from_env() {
        None => None,
        Some(Ok(n)) => Some(Arc::new(n)),
        Some(Err(e)) => {
            let _ = writeln!(
                std::io::stderr(),
                "tend[{name}]: cannot use NOTIFY_SOCKET, not notifying the service manager: {e}"
            );
            None
        }
    };
    let watchdog = sd_notify::watchdog_interval(
        std::env::var_os("WATCHDOG_USEC").as_deref(),
        std::env::var_os("WATCHDOG_PID").as_deref(),
    );
    let boot = Boot {
        config: place.config.clone(),
        load: place::load_options(scope)?,
        state_dir: Some(place.state_dir.clone()),
        // systemd puts stderr in the journal, where tend's own lines belong (`journalctl
        // -u`); launchd puts it in a file meant for early errors only, and the lines are
        // in `<name>.tend.log` anyway.
        to_stderr: scope.backend() == tend_os::Backend::Systemd,
    };
    let mut managed = Managed {
        name,
        place,
        notifier,
        watchdog,
    };
    // A config error exits 2 and an outcome 0 (stays stopped) or 1 (gave up): systemd and
    // launchd restart neither (see tend_os::exit::PROGRAM_FAILED).
    let outcome = crate::host::boot(boot, &mut managed)?;
    Ok(ExitCode::from(crate::host::exit_code(&outcome)))
}

/// The status snapshot of a tend that could not load its config: `failed`, with the
/// config error as the reason. The last snapshot's other fields (restart counts, the
/// program's last exit) are kept as history; its run is over.
fn config_failed(
    last: Option<crate::status::Snapshot>,
    name: &tend_core::ServiceName,
    config: &std::path::Path,
    why: &str,
) -> Option<crate::status::Snapshot> {
    let now = crate::status::rfc3339(std::time::SystemTime::now());
    let mut snap = match last {
        Some(s) => s,
        // Fields added to the snapshot later have defaults, so the ones of the first
        // version are all a new document needs.
        None => serde_json::from_value(serde_json::json!({
            "service": name.as_str(), "state": "failed", "supervisor_pid": 0,
            "restarts_total": 0, "restarts_in_window": 0, "restart_limit": 0,
            "log_files": [], "config": config, "config_generation": 0, "updated_at": now,
        }))
        .ok()?,
    };
    snap.state = "failed".to_owned();
    snap.pid = None;
    snap.supervisor_pid = std::process::id();
    snap.next_restart_at = None;
    snap.failed_reason = Some(format!(
        "the installed config is invalid: {why}; fix it and run `tend install` again"
    ));
    snap.config = config.to_owned();
    snap.updated_at = now;
    Some(snap)
}

/// sd_notify: each supervision step as `STATUS=`, `READY=1` with the first.
struct SdNotify {
    notifier: Arc<Notifier>,
    ready: AtomicBool,
}

impl Subscriber for SdNotify {
    fn deliver(&self, e: &Delivered<'_>) {
        if !matches!(e.event, Event::Step { .. }) {
            return;
        }
        let status = sd_notify::status_message(e.text());
        let msg = if self.ready.swap(true, Ordering::Relaxed) {
            status
        } else {
            format!("READY=1\n{status}")
        };
        let _ = self.notifier.notify(&msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_error_replaces_the_last_runs_give_up_reason() {
        let name = tend_core::ServiceName::new("web").unwrap();
        let cfg = std::path::Path::new("/etc/tend/web.toml");
        let fresh = config_failed(None, &name, cfg, "web.toml:3: error: command: missing").unwrap();
        assert_eq!(fresh.state, "failed");
        assert_eq!(
            fresh.failed_reason.as_deref(),
            Some(
                "the installed config is invalid: web.toml:3: error: command: missing; fix it and run `tend install` again"
            )
        );
        let mut gave_up = fresh.clone();
        gave_up.failed_reason = Some("gave up after 5 restarts".into());
        gave_up.restarts_total = 5;
        gave_up.pid = Some(42);
        let now = config_failed(Some(gave_up), &name, cfg, "bad").unwrap();
        assert!(
            now.failed_reason
                .unwrap()
                .contains("config is invalid: bad")
        );
        assert_eq!(now.restarts_total, 5, "history is kept");
        assert_eq!(now.pid, None);
        assert_eq!(now.supervisor_pid, std::process::id());
    }
}
