//! `tend status [<config-or-name>] [--json]`: what the supervisor last reported, merged with
//! what the OS service manager says. Exit codes follow LSB `status`: 0 running, 1 failed,
//! 3 stopped, 4 unknown / not installed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::error::CliError;
use crate::os::{self, OsStatus};
use crate::place::{self, Scope};
use crate::report::human;
use crate::status::{self, Snapshot};

use super::target::Target;

/// LSB status exit codes.
pub(crate) mod lsb {
    pub(crate) const RUNNING: u8 = 0;
    pub(crate) const FAILED: u8 = 1;
    pub(crate) const STOPPED: u8 = 3;
    pub(crate) const UNKNOWN: u8 = 4;
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) service: String,
    /// The supervisor's state (running, starting, backoff, stopping, stopped, failed, idle)
    /// or what the OS says instead: restarting, not-installed, not-a-tend-service, unknown.
    pub(crate) state: String,
    /// The supervisor's last snapshot, if there is one.
    pub(crate) supervisor: Option<Snapshot>,
    /// Whether the supervisor process that wrote the snapshot is still alive.
    pub(crate) supervisor_alive: bool,
    /// What the OS service manager says, for installed services.
    pub(crate) os: Option<OsStatus>,
}

/// A report as `--json` prints it: with `tend`, the build of the tend that answers
/// (`tend --version --json`), so a script sees which version it talks to.
#[derive(Serialize)]
struct WithBuild<'a> {
    #[serde(flatten)]
    report: &'a Report,
    tend: crate::version::BuildInfo,
}

impl<'a> WithBuild<'a> {
    fn new(report: &'a Report) -> Self {
        Self {
            report,
            tend: crate::version::BUILD,
        }
    }
}

pub(crate) fn status(
    target: Option<&Path>,
    json: bool,
    scope: Scope,
) -> Result<ExitCode, CliError> {
    let Some(target) = target else {
        return list_all(json, scope);
    };
    // Before the report: between its take-over and its install, the name is no service
    // at all, and that is when the operator most needs to hear it.
    if let Some(note) = target
        .to_str()
        .and_then(|n| super::unfinished::replacement(n, scope))
    {
        let _ = writeln!(std::io::stderr(), "warning: {note}");
    }
    let report = report_for(target, scope)?;
    let code = exit_code(&report.state);
    if let Some(note) = super::unfinished::upgrade(&report.service, scope) {
        let _ = writeln!(std::io::stderr(), "warning: {note}");
    }
    if let Some(note) = super::unfinished::host(scope) {
        let _ = writeln!(std::io::stderr(), "warning: {note}");
    }

    let mut out = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut out, &WithBuild::new(&report))
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        out.write_all(render(&report).as_bytes())
    }
    .and_then(|()| out.flush());
    // An answer that never reached its reader must not pass for an empty one (a script
    // parsing it sees the reason; a closed pipe, as with `| head`, is not one).
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let _ = writeln!(std::io::stderr(), "error: cannot write the status: {e}");
    }
    Ok(ExitCode::from(code))
}

fn exit_code(state: &str) -> u8 {
    match state {
        "running" | "starting" | "backoff" | "stopping" => lsb::RUNNING,
        // systemd restarting tend itself: nothing supervises the program right now.
        "failed" | "restarting" => lsb::FAILED,
        "stopped" | "idle" => lsb::STOPPED,
        _ => lsb::UNKNOWN,
    }
}

/// A path to a config file (as for `tend run`) or the name of an installed service, by the
/// rule of [`Target`].
pub(super) fn report_for(target: &Path, scope: Scope) -> Result<Report, CliError> {
    let name = match Target::parse(target.as_os_str()) {
        Target::Config(path) => {
            let loaded = tend_config::load(&path, &tend_config::LoadOptions::default())?;
            let name = loaded.spec.name.to_string();
            let os = os::query(&name, scope);
            let file = if os.as_ref().is_some_and(|o| o.installed) {
                status_file(scope, &name)
            } else {
                Some(status::path(&loaded.spec.logs.dir, &name))
            };
            return Ok(build(name, file.as_deref(), os));
        }
        Target::Name(name) => name,
    };
    let os = os::query(&name, scope);
    // Asked by name, the service is what the OS has installed: a status file left behind
    // by an uninstalled service is history, not state. A unit tend did not write (ssh)
    // has no supervisor to ask, whatever systemd says about it.
    let state = match &os {
        Some(o) if !o.installed => Some("not-installed"),
        Some(_) if os::not_tend_service(&name, scope).is_some() => Some("not-a-tend-service"),
        _ => None,
    };
    if let Some(state) = state {
        return Ok(Report {
            service: name,
            state: state.to_owned(),
            supervisor: None,
            supervisor_alive: false,
            os,
        });
    }
    let file = status_file(scope, &name);
    Ok(build(name, file.as_deref(), os))
}

/// The status file of installed service `name` in `scope`; `None` for a name no service
/// can have.
fn status_file(scope: Scope, name: &str) -> Option<PathBuf> {
    let name = place::service_name(name).ok()?;
    let p = place::place(scope, &name).ok()?;
    Some(status::path(&p.state_dir, name.as_str()))
}

fn build(service: String, file: Option<&Path>, os: Option<OsStatus>) -> Report {
    let supervisor = file.and_then(|f| status::read(f).ok().flatten());
    let supervisor_alive = supervisor
        .as_ref()
        .is_some_and(|s| crate::proc::supervisor_alive(s.supervisor_pid, &s.updated_at));
    let installed = os.as_ref().is_some_and(|o| o.installed);
    let restarting = os.as_ref().is_some_and(OsStatus::restarting);
    let state = match (&supervisor, supervisor_alive) {
        // The supervisor is the authority on the program while it lives.
        (Some(s), true) => s.state.clone(),
        // systemd is restarting tend itself (it crashed, or could not start): whatever the
        // last snapshot says is over, and "starting" would hide a loop.
        (_, false) if restarting => "restarting".to_owned(),
        // It ended: its last word stands for stopped/failed; anything else is stale.
        (Some(s), false) if s.state == "failed" || s.state == "stopped" => s.state.clone(),
        // The OS saw tend itself fail (crashed, killed, or exited with an error).
        (_, false) if os.as_ref().is_some_and(|o| o.failed && !o.active) => "failed".to_owned(),
        (Some(_), false) => "stopped".to_owned(),
        // No snapshot (none yet, or not readable by this user): the OS's word.
        (None, _) if installed => os
            .as_ref()
            .map_or("unknown", |o| match o.state.split(' ').next() {
                Some("active" | "running") => "running",
                _ if o.active => "starting",
                _ => "stopped",
            })
            .to_owned(),
        (None, _) if os.is_some() => "not-installed".to_owned(),
        (None, _) => "unknown".to_owned(),
    };
    Report {
        service,
        state,
        supervisor,
        supervisor_alive,
        os,
    }
}

fn render(r: &Report) -> String {
    let mut s = String::new();
    let mut row = |k: &str, v: String| {
        let _ = writeln!(s, "{k:<13}{v}");
    };
    row("service", r.service.clone());
    let mut state = r.state.clone();
    // A dead supervisor's pid and uptime describe a run that is over.
    if let Some(sn) = &r.supervisor
        && r.supervisor_alive
        && let Some(pid) = sn.pid
    {
        let up = sn
            .started_at
            .as_deref()
            .and_then(tend_os::supervisor::since)
            .map(|d| format!(", up {}", human(d)))
            .unwrap_or_default();
        let _ = write!(state, " (pid {pid}{up})");
    }
    row("state", state);
    if let Some(sn) = &r.supervisor {
        let window = if sn.restart_limit > 0 {
            format!(
                ", {} of {} in the current window",
                sn.restarts_in_window, sn.restart_limit
            )
        } else {
            String::new()
        };
        row("restarts", format!("{}{window}", sn.restarts_total));
        if let Some(l) = &sn.last_exit {
            row(
                "last exit",
                format!(
                    "{} after {} ({})",
                    l.description,
                    human(std::time::Duration::from_secs_f64(l.after_secs)),
                    l.at
                ),
            );
            // The program's last words: usually why it died.
            for (i, line) in l.stderr.iter().enumerate() {
                row(if i == 0 { "last stderr" } else { "" }, line.clone());
            }
        }
        if let Some(c) = &sn.last_crash {
            row("last crash", format!("{}: {}", c.at, c.summary));
        }
        if let Some(at) = &sn.next_restart_at {
            row("next restart", at.clone());
        }
        if let Some(h) = &sn.health {
            row("health", describe_health(h));
        }
        if let Some(m) = sn.memory_bytes {
            row(
                "memory",
                format!("{} (whole process tree)", tend_core::fmt::bytes(m)),
            );
        }
        if let Some(c) = sn.cpu_percent {
            row("cpu", format!("{c:.1}% of one core"));
        }
        if let Some(f) = &sn.failed_reason {
            row("failed", f.clone());
        }
        if let Some(e) = &sn.last_reload_error {
            row("reload error", e.clone());
        }
        row("config", sn.config.display().to_string());
        for f in &sn.log_files {
            row("log", f.display().to_string());
        }
        row(
            "supervisor",
            format!(
                "pid {} ({}), updated {}",
                sn.supervisor_pid,
                if r.supervisor_alive {
                    "alive"
                } else {
                    "not running"
                },
                sn.updated_at
            ),
        );
    }
    if let Some(sn) = &r.supervisor
        && !r.supervisor_alive
        && r.os.as_ref().is_some_and(|o| o.active)
        && sn.state != "stopped"
        && sn.state != "failed"
    {
        row(
            "problem",
            format!(
                "the OS service manager says the service runs, but its supervisor (pid {}) is gone: killed or crashed; restart it: tend restart {}",
                sn.supervisor_pid, r.service
            ),
        );
    }
    match &r.os {
        Some(o) if o.installed => row("os service", o.describe()),
        Some(_) => row("os service", "not installed".to_owned()),
        None => {}
    }
    s
}

/// `healthy (HTTP 200 after 1 ms)`, `unhealthy: <reason>`, `starting (last check: ...)`.
fn describe_health(h: &status::HealthStatus) -> String {
    let last = h.last_probe.as_ref().map(|p| p.text.as_str());
    match (h.state.as_str(), &h.reason, last) {
        ("unhealthy", Some(reason), _) => format!("unhealthy: {reason}"),
        (state, _, Some(text)) if h.consecutive_failures > 0 => format!(
            "{state} (last check: {text}, {} failed in a row)",
            h.consecutive_failures
        ),
        ("healthy", _, Some(text)) => format!("healthy ({text})"),
        ("starting", _, Some(text)) => format!("starting (last check: {text})"),
        (state, _, _) => state.to_owned(),
    }
}

/// What the supervisor and the OS say about installed service `name` now (`tend apply
/// --wait`, `tend list`).
pub(crate) fn current(name: &str, scope: Scope) -> Report {
    let os = os::query(name, scope);
    let file = status_file(scope, name);
    build(name.to_owned(), file.as_deref(), os)
}

fn list_all(json: bool, scope: Scope) -> Result<ExitCode, CliError> {
    let dir = place::config_dir(scope)?;
    let reports: Vec<Report> = crate::place::installed_names(scope)?
        .into_iter()
        .map(|n| current(&n, scope))
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let reports: Vec<_> = reports.iter().map(WithBuild::new).collect();
        let _ = serde_json::to_writer_pretty(&mut out, &reports);
        let _ = writeln!(out);
    } else if reports.is_empty() {
        let _ = writeln!(
            out,
            "no tend{} services installed (configs live in `{}`)",
            scope.flag(),
            dir.display()
        );
    } else {
        let _ = writeln!(out, "{:<24}{:<15}{:<10}RESTARTS", "SERVICE", "STATE", "PID");
        for r in &reports {
            let sn = r.supervisor.as_ref();
            let _ = writeln!(
                out,
                "{:<24}{:<15}{:<10}{}",
                r.service,
                r.state,
                sn.and_then(|s| s.pid)
                    .map_or("-".to_owned(), |p| p.to_string()),
                sn.map_or("-".to_owned(), |s| s.restarts_total.to_string())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{HealthStatus, ProbeStatus};

    fn health(state: &str, reason: Option<&str>, last: Option<&str>, failed: u32) -> HealthStatus {
        HealthStatus {
            state: state.into(),
            reason: reason.map(Into::into),
            consecutive_failures: failed,
            last_probe: last.map(|t| ProbeStatus {
                healthy: t.contains("200"),
                text: t.into(),
                took_ms: 1,
                at: None,
            }),
        }
    }

    #[test]
    fn health_rows() {
        let cases = [
            (
                health("healthy", None, Some("HTTP 200 after 1 ms"), 0),
                "healthy (HTTP 200 after 1 ms)",
            ),
            (
                health("unhealthy", Some("no output for 5m"), None, 0),
                "unhealthy: no output for 5m",
            ),
            (
                health("starting", None, Some("connect refused (127.0.0.1:1)"), 0),
                "starting (last check: connect refused (127.0.0.1:1))",
            ),
            (
                health("healthy", None, Some("HTTP 503 after 2 ms"), 2),
                "healthy (last check: HTTP 503 after 2 ms, 2 failed in a row)",
            ),
            (health("starting", None, None, 0), "starting"),
            (health("stopped", None, None, 0), "stopped"),
        ];
        for (h, want) in cases {
            assert_eq!(describe_health(&h), want);
        }
    }

    #[test]
    fn a_dead_supervisor_shows_no_run_and_says_what_is_wrong() {
        let sn: Snapshot = serde_json::from_value(serde_json::json!({
            "service": "api", "state": "running", "pid": 42, "supervisor_pid": 41,
            "started_at": "2026-01-01T00:00:00Z", "restarts_total": 0,
            "restarts_in_window": 0, "restart_limit": 5, "last_exit": null,
            "next_restart_at": null, "failed_reason": null, "log_files": [],
            "config": "api.toml", "config_generation": 0, "last_reload_error": null,
            "updated_at": "2026-01-01T00:00:01Z"
        }))
        .unwrap();
        let os = OsStatus {
            installed: true,
            active: true,
            state: "RUNNING".into(),
            start: Some("auto".into()),
            pid: Some(41),
            manager: Some("scm".into()),
            failed: false,
            last_exit: None,
            definition: None,
        };
        let report = |alive| Report {
            service: "api".into(),
            state: if alive { "running" } else { "stopped" }.into(),
            supervisor: Some(sn.clone()),
            supervisor_alive: alive,
            os: Some(os.clone()),
        };
        let alive = render(&report(true));
        assert!(alive.contains("running (pid 42, up "), "{alive}");
        assert!(!alive.contains("problem"), "{alive}");
        let dead = render(&report(false));
        assert!(!dead.contains("(pid 42"), "{dead}");
        assert!(!dead.contains(" up "), "{dead}");
        assert!(dead.contains("pid 41 (not running)"), "{dead}");
        assert!(dead.contains("its supervisor (pid 41) is gone"), "{dead}");
        assert!(dead.contains("os service   RUNNING (pid 41)"), "{dead}");
        assert_ne!(exit_code(&report(false).state), lsb::RUNNING);
    }
}

#[cfg(test)]
mod os_state_tests {
    use super::*;

    fn os(state: &str, active: bool, failed: bool, last_exit: Option<i32>) -> OsStatus {
        OsStatus {
            installed: true,
            active,
            state: state.into(),
            start: Some("enabled".into()),
            pid: None,
            manager: Some("systemd".into()),
            failed,
            last_exit,
            definition: None,
        }
    }

    /// What `tend status` says, and its exit code, from the OS's view alone (no snapshot:
    /// none written yet, or not readable by this user).
    #[test]
    fn states_from_the_os_alone() {
        let loop_ = "activating (auto-restart): tend failed (exit code 5) and systemd starts it again, restarted 3 times";
        let cases = [
            (os(loop_, true, false, Some(5)), "restarting", lsb::FAILED),
            (
                os("active (running)", true, false, None),
                "running",
                lsb::RUNNING,
            ),
            (
                os("activating (start)", true, false, None),
                "starting",
                lsb::RUNNING,
            ),
            (
                os("inactive (dead)", false, false, Some(0)),
                "stopped",
                lsb::STOPPED,
            ),
            (
                os("failed (failed)", false, true, Some(2)),
                "failed",
                lsb::FAILED,
            ),
        ];
        for (o, want, code) in cases {
            let what = o.state.clone();
            let r = build("web".into(), None, Some(o));
            assert_eq!(r.state, want, "{what}");
            assert_eq!(exit_code(&r.state), code, "{what}");
        }
        assert_eq!(exit_code("not-a-tend-service"), lsb::UNKNOWN);
    }

    /// A stale snapshot of a supervisor that is gone does not hide systemd's restart loop.
    #[test]
    fn a_restart_loop_beats_a_stale_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web.status.json");
        let stale = serde_json::json!({
            "service": "web", "state": "running", "pid": 42,
            "supervisor_pid": 999_999_999u32, "started_at": null, "restarts_total": 0,
            "restarts_in_window": 0, "restart_limit": 5, "log_files": [],
            "config": "/etc/tend/web.toml", "config_generation": 0,
            "updated_at": "2026-01-01T00:00:01Z"
        });
        std::fs::write(&file, stale.to_string()).unwrap();
        let o = os(
            "activating (auto-restart): tend failed (killed by signal 9) and systemd starts it again, restarted 1 time",
            true,
            false,
            None,
        );
        let r = build("web".into(), Some(&file), Some(o));
        assert_eq!(r.state, "restarting");
        assert!(render(&r).contains("restarted 1 time"), "{}", render(&r));
    }
}
