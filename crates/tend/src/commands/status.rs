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
use crate::report::human;
use crate::status::{self, Snapshot};

/// LSB status exit codes.
pub(crate) mod lsb {
    pub(crate) const RUNNING: u8 = 0;
    pub(crate) const FAILED: u8 = 1;
    pub(crate) const STOPPED: u8 = 3;
    pub(crate) const UNKNOWN: u8 = 4;
}

#[derive(Debug, Serialize)]
struct Report {
    service: String,
    /// running, starting, backoff, stopping, stopped, failed, not-installed, unknown.
    state: String,
    /// The supervisor's last snapshot, if there is one.
    supervisor: Option<Snapshot>,
    /// Whether the supervisor process that wrote the snapshot is still alive.
    supervisor_alive: bool,
    /// What the OS service manager says, for installed services.
    os: Option<OsStatus>,
}

pub(crate) fn status(target: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    let Some(target) = target else {
        return list_all(json);
    };
    let report = report_for(target)?;
    let code = exit_code(&report.state);
    let mut out = std::io::stdout().lock();
    if json {
        let _ = serde_json::to_writer_pretty(&mut out, &report);
        let _ = writeln!(out);
    } else {
        let _ = out.write_all(render(&report).as_bytes());
    }
    Ok(ExitCode::from(code))
}

fn exit_code(state: &str) -> u8 {
    match state {
        "running" | "starting" | "backoff" | "stopping" => lsb::RUNNING,
        "failed" => lsb::FAILED,
        "stopped" | "idle" => lsb::STOPPED,
        _ => lsb::UNKNOWN,
    }
}

/// A path to a config file (as for `tend run`) or the name of an installed service.
fn report_for(target: &Path) -> Result<Report, CliError> {
    let as_config = target.extension().is_some_and(|e| e == "toml") || target.is_file();
    if as_config {
        let loaded = tend_config::load(target, &tend_config::LoadOptions::default())?;
        let name = loaded.spec.name.to_string();
        let os = os::query(&name);
        let file = if os.as_ref().is_some_and(|o| o.installed) {
            status::path(&crate::paths::state_dir(&name), &name)
        } else {
            status::path(&loaded.spec.logs.dir, &name)
        };
        return Ok(build(name, &file, os));
    }
    let name = target.to_string_lossy().into_owned();
    let os = os::query(&name);
    // Asked by name, the service is what the OS has installed: a status file left behind
    // by an uninstalled service is history, not state.
    if os.as_ref().is_some_and(|o| !o.installed) {
        return Ok(Report {
            service: name,
            state: "not-installed".to_owned(),
            supervisor: None,
            supervisor_alive: false,
            os,
        });
    }
    let file = status::path(&crate::paths::state_dir(&name), &name);
    Ok(build(name, &file, os))
}

fn build(service: String, file: &Path, os: Option<OsStatus>) -> Report {
    let supervisor = status::read(file).ok().flatten();
    let supervisor_alive = supervisor
        .as_ref()
        .is_some_and(|s| crate::proc::pid_alive(s.supervisor_pid));
    let installed = os.as_ref().is_some_and(|o| o.installed);
    let state = match (&supervisor, supervisor_alive) {
        // The supervisor is the authority on the program while it lives.
        (Some(s), true) => s.state.clone(),
        // It ended: its last word stands for stopped/failed; anything else is stale.
        (Some(s), false) if s.state == "failed" || s.state == "stopped" => s.state.clone(),
        (Some(_), false) => "stopped".to_owned(),
        (None, _) if installed => os
            .as_ref()
            .map_or("unknown", |o| if o.active { "starting" } else { "stopped" })
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
    if let Some(sn) = &r.supervisor
        && let Some(pid) = sn.pid
    {
        let up = sn
            .started_at
            .as_deref()
            .and_then(status::since)
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
        }
        if let Some(at) = &sn.next_restart_at {
            row("next restart", at.clone());
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
    match &r.os {
        Some(o) if o.installed => row("os service", o.describe()),
        Some(_) => row("os service", "not installed".to_owned()),
        None => {}
    }
    s
}

fn list_all(json: bool) -> Result<ExitCode, CliError> {
    let dir = crate::paths::installed_config("x")
        .parent()
        .map_or_else(PathBuf::new, Path::to_path_buf);
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let p = e.path();
                if p.extension()? != "toml" {
                    return None;
                }
                Some(p.file_stem()?.to_string_lossy().into_owned())
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(CliError::io(format!("cannot list `{}`", dir.display()), e)),
    };
    names.sort();
    let reports: Vec<Report> = names
        .into_iter()
        .map(|n| {
            let os = os::query(&n);
            let file = status::path(&crate::paths::state_dir(&n), &n);
            build(n, &file, os)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let _ = serde_json::to_writer_pretty(&mut out, &reports);
        let _ = writeln!(out);
    } else if reports.is_empty() {
        let _ = writeln!(
            out,
            "no tend services installed (configs live in `{}`)",
            dir.display()
        );
    } else {
        let _ = writeln!(out, "{:<24}{:<12}{:<10}RESTARTS", "SERVICE", "STATE", "PID");
        for r in &reports {
            let sn = r.supervisor.as_ref();
            let _ = writeln!(
                out,
                "{:<24}{:<12}{:<10}{}",
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
