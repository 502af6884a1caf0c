//! `tend list [--user] [--json]`: every service tend manages here, with its state; and
//! `tend export [--user] <name>`: its installed config, as tend reads it.
//!
//! What tend manages is what it has a config copy of in the scope's protected config
//! directory ([`tend_os::Layout::config_dir`]): every install writes one, every uninstall
//! removes it, and nothing else writes there. (`tend apply --prune` relies on the same
//! rule, and also asks the OS manager that the service behind a copy is tend's.)

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::error::CliError;
use crate::place::{self, Scope};

/// `tend list --json`: a contract (docs/cli.md); fields are only added.
#[derive(Debug, Serialize)]
struct List {
    schema: u32,
    tend: crate::version::BuildInfo,
    scope: &'static str,
    services: Vec<Entry>,
}

#[derive(Debug, Serialize)]
struct Entry {
    name: String,
    /// As `tend status` says it: running, starting, backoff, stopping, stopped, failed,
    /// restarting, not-installed, not-a-tend-service, unknown.
    state: String,
    /// With `[health]`: starting, healthy, unhealthy.
    health: Option<String>,
    /// The program's pid while it runs.
    pid: Option<u32>,
    /// tend's own pid (the service's process), as the OS manager says.
    tend_pid: Option<u32>,
    /// Restarts since the supervisor started.
    restarts: Option<u64>,
    /// The installed config copy (`tend export` prints it).
    config: PathBuf,
    /// `systemd`, `launchd`, `scm` or `run-key`.
    manager: Option<String>,
    /// When it starts, as the OS says (`enabled`, `auto`, ...).
    start: Option<String>,
}

pub(crate) fn list(json: bool, scope: Scope) -> Result<ExitCode, CliError> {
    let mut services = Vec::new();
    for n in place::installed_names(scope)? {
        let r = super::status::current(&n, scope);
        let config = place::place(scope, &place::service_name(&n)?)?.config;
        let sn = r.supervisor.as_ref().filter(|_| r.supervisor_alive);
        services.push(Entry {
            state: r.state.clone(),
            health: sn.and_then(|s| s.health.as_ref()).map(|h| h.state.clone()),
            pid: sn.and_then(|s| s.pid),
            tend_pid: r.os.as_ref().and_then(|o| o.pid),
            restarts: sn.map(|s| s.restarts_total),
            config,
            manager: r.os.as_ref().and_then(|o| o.manager.clone()),
            start: r.os.as_ref().and_then(|o| o.start.clone()),
            name: n,
        });
    }
    let mut out = std::io::stdout().lock();
    if json {
        let list = List {
            schema: 1,
            tend: crate::version::BUILD,
            scope: scope.word(),
            services,
        };
        let _ = serde_json::to_writer_pretty(&mut out, &list);
        let _ = writeln!(out);
        return Ok(ExitCode::SUCCESS);
    }
    if services.is_empty() {
        let _ = writeln!(
            out,
            "no tend{} services here (config copies live in `{}`)",
            scope.flag(),
            place::config_dir(scope)?.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let _ = writeln!(
        out,
        "{:<24}{:<13}{:<11}{:<9}{:<10}CONFIG",
        "SERVICE", "STATE", "HEALTH", "PID", "RESTARTS"
    );
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    for s in &services {
        let _ = writeln!(
            out,
            "{:<24}{:<13}{:<11}{:<9}{:<10}{}",
            s.name,
            s.state,
            dash(s.health.clone()),
            dash(s.pid.map(|p| p.to_string())),
            dash(s.restarts.map(|r| r.to_string())),
            s.config.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `tend export [--user] <name>`: the installed config copy, as the service reads it (with
/// the `base_dir` install added). Exit code 3 if there is none.
pub(crate) fn export(name: &str, scope: Scope) -> Result<ExitCode, CliError> {
    let (_, layout) = super::target::installed(name, scope)?;
    let text = std::fs::read_to_string(&layout.config)
        .map_err(|e| CliError::io(format!("cannot read `{}`", layout.config.display()), e))?;
    super::print_text(&text, "the config")
}
