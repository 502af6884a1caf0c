//! `tend doctor [--user] <config-or-name> [--json]`: what would keep the service from
//! running, checked as its account and sandbox will see it, before the first start and on
//! a running service.
//!
//! Thin glue ([`gather`]) collects facts: the install side's own checks
//! ([`tend_os::ServiceManager::preflight`], the same code `install` runs), free space, who
//! answers on the health port, the clock, the supervisor's status file. One pure function
//! ([`judge`]) turns them into one [`Check`] per [`IDS`] entry, so each verdict is tested
//! table-driven without the machine. `install` prints the verdicts of the checks it does
//! not make itself ([`at_install`]).

use std::fmt::Write as _;
use std::net::ToSocketAddrs as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use tend_core::{Account, ServiceSpec};
use tend_os::{Access, Drift, Install, Preflight};

use super::target::Target;
use crate::error::{CliError, code};
use crate::place::{self, Scope};

/// Every check, in the order they are printed. `--json` has one entry per id, always all
/// of them (a check that does not apply says `skip`). Ids are only added.
pub(crate) const IDS: [&str; 10] = [
    "config",
    "access",
    "account",
    "logon-right",
    "log-space",
    "port",
    "drift",
    "clock",
    "last-failure",
    "unfinished",
];

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Fine.
    Ok,
    /// Worth a look, or could not be checked: does not fail doctor.
    Warn,
    /// Will keep the service from running as configured: doctor exits 1.
    Fail,
    /// Does not apply to this service (no health port, never failed, not Windows).
    Skip,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        }
    }
}

/// One line of the report (one `--json` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Check {
    /// One of [`IDS`].
    pub(crate) id: &'static str,
    pub(crate) status: Status,
    /// What was found.
    pub(crate) message: String,
    /// What to do about it; empty when nothing is to be done.
    pub(crate) fix: String,
    /// More lines: each path problem, the diff, the program's last stderr lines.
    pub(crate) details: Vec<String>,
}

fn check(id: &'static str, status: Status, message: impl Into<String>) -> Check {
    Check {
        id,
        status,
        message: message.into(),
        fix: String::new(),
        details: Vec::new(),
    }
}

impl Check {
    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }
    fn details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
}

/// Whether the service runs, as far as the status file and the OS say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Run {
    /// The program runs (state `running`).
    Running,
    /// Nothing runs: stopped, failed, never started, not installed.
    Down,
    /// Between the two (starting, backoff, stopping, restarting): ports and the like may
    /// be either.
    Changing(String),
}

/// The `[health]` port: where, and whether something answers there now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Port {
    /// `health.http` or `health.tcp`.
    pub(crate) key: &'static str,
    /// `host:port`.
    pub(crate) addr: String,
    /// A TCP connect succeeded.
    pub(crate) answering: bool,
}

/// The log directory's room against the configured retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogSpace {
    pub(crate) dir: PathBuf,
    /// Bytes free for an unprivileged writer on its file system; `Err`: why not known.
    pub(crate) free: Result<u64, String>,
    /// The most the logs can take, by [`retention_budget`]; `None` when nothing caps it.
    pub(crate) budget: Option<u64>,
}

/// The clock and time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clock {
    /// Seconds since 1970 now.
    pub(crate) now: i64,
    /// When this tend's source was last changed (0: not known).
    pub(crate) built: i64,
    /// The local time now, as rotation names it (RFC 3339 with the offset).
    pub(crate) local: String,
    /// Why the local time zone may not be what the operator thinks (an unknown `TZ`, no
    /// `/etc/localtime`): then local time is UTC.
    pub(crate) zone_problem: Option<String>,
}

/// The last run, for a service that has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastRun {
    /// The state the status file and the OS agree on (`tend status`'s `state`).
    pub(crate) state: String,
    /// Why it failed, in the supervisor's words.
    pub(crate) reason: Option<String>,
    /// The program's last stderr lines before its last exit.
    pub(crate) stderr: Vec<String>,
    /// The newest crash record in one line.
    pub(crate) last_crash: Option<String>,
}

/// The "Log on as a service" right of a user account (Windows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogonRight {
    /// Not a Windows user account: nothing to check, and why.
    NotApplicable(String),
    /// The LSA lists it for the account.
    Granted(String),
    /// The LSA does not list it for the account itself (a group may still grant it).
    NotListed(String),
    /// Could not be read (Wine has no LSA; no right to ask); the account named.
    Unknown { account: String, why: String },
}

/// Everything [`judge`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    /// How to name the service in fixes: its config file or its name.
    pub(crate) target: String,
    /// ` --user` or nothing.
    pub(crate) flag: &'static str,
    /// What the config loader warned about (install refuses a config with any).
    pub(crate) config_warnings: Vec<String>,
    /// The install side's checks; `Err`: why they could not be made.
    pub(crate) preflight: Result<Preflight, String>,
    pub(crate) account: String,
    pub(crate) logon_right: LogonRight,
    pub(crate) log_space: LogSpace,
    pub(crate) port: Option<Port>,
    pub(crate) run: Run,
    pub(crate) clock: Clock,
    pub(crate) last_run: Option<LastRun>,
    /// What a killed tend left unfinished for this service (an upgrade, a replacement, a
    /// change of tend itself), as `tend status` words it; `None`: not looked at (install).
    pub(crate) unfinished: Option<Vec<String>>,
}

/// The most bytes the program's logs can take in `spec`'s log directory: per stream the
/// active file (`max_size`) plus the rotated ones (`keep` x `max_size`, capped by
/// `max_total`), uncompressed (the worst case: a file is whole until it is compressed).
/// `None` when nothing caps it: `max_size = 0`, or neither `keep` nor `max_total`.
pub(crate) fn retention_budget(logs: &tend_core::LogSpec) -> Option<u64> {
    if logs.max_size == 0 {
        return None;
    }
    let keep = (logs.keep > 0).then(|| logs.max_size.saturating_mul(u64::from(logs.keep)));
    let total = (logs.max_total > 0).then_some(logs.max_total);
    let rotated = match (keep, total) {
        (Some(k), Some(t)) => k.min(t),
        (Some(k), None) => k,
        (None, Some(t)) => t,
        (None, None) => return None,
    };
    let streams = match logs.mode {
        tend_core::LogMode::Separate => 2,
        tend_core::LogMode::Combined => 1,
    };
    Some(
        logs.max_size
            .saturating_add(rotated)
            .saturating_mul(streams),
    )
}

/// The verdicts: one [`Check`] per [`IDS`] entry, in that order.
pub(crate) fn judge(f: &Facts) -> Vec<Check> {
    let install = format!("tend install{} {}", f.flag, f.target);
    let mut out = Vec::with_capacity(IDS.len());

    out.push(if f.config_warnings.is_empty() {
        check("config", Status::Ok, "the config loads without problems")
    } else {
        check(
            "config",
            Status::Fail,
            "the config names things that are not there (install refuses it)",
        )
        .fix("fix each problem above in the config")
        .details(f.config_warnings.clone())
    });

    out.push(match &f.preflight {
        Err(why) => check("access", Status::Warn, format!("not checked: {why}")),
        Ok(p) => match &p.access {
            Err(why) => check("access", Status::Warn, format!("not checked: {why}")),
            Ok(problems) if problems.is_empty() => check(
                "access",
                Status::Ok,
                "the service's account can reach the tend binary, the program, working_dir, env_file and the log dir",
            ),
            Ok(problems) => check(
                "access",
                Status::Fail,
                format!(
                    "the service's account cannot reach {} of what it needs",
                    problems.len()
                ),
            )
            .fix("fix each path as its line says (or, if an ACL grants more than the mode bits show, install with --no-access-check)")
            .details(problems.clone()),
        },
    });

    out.push(match f.preflight.as_ref().map(|p| &p.account) {
        Err(why) => check("account", Status::Warn, format!("not checked: {why}")),
        Ok(None) => check(
            "account",
            Status::Ok,
            format!("the service runs as {}, which always exists", f.account),
        ),
        Ok(Some(Ok(()))) => check(
            "account",
            Status::Ok,
            format!("the account `{}` exists", f.account),
        ),
        Ok(Some(Err(why))) => check(
            "account",
            Status::Fail,
            format!("the account `{}` does not exist", f.account),
        )
        .fix(why.clone()),
    });

    let grant = |account: &str| {
        format!(
            "grant it: secpol.msc > Local Policies > User Rights Assignment > \"Log on as a service\", add `{account}`"
        )
    };
    out.push(match &f.logon_right {
        LogonRight::NotApplicable(why) => check("logon-right", Status::Skip, why.clone()),
        LogonRight::Granted(account) => check(
            "logon-right",
            Status::Ok,
            format!("`{account}` may log on as a service"),
        ),
        // A warning, not a failure: a group the account is in may grant it, which this
        // list does not show.
        LogonRight::NotListed(account) => check(
            "logon-right",
            Status::Warn,
            format!(
                "the LSA does not list \"Log on as a service\" for `{account}` itself: unless a group of it has the right, the service will not start (error 1069)"
            ),
        )
        .fix(grant(account)),
        LogonRight::Unknown { account, why } => check(
            "logon-right",
            Status::Warn,
            format!("unknown whether `{account}` may log on as a service: {why}"),
        )
        .fix(format!("check it, or {}", grant(account))),
    });

    out.push(judge_space(&f.log_space));
    out.push(judge_port(f.port.as_ref(), &f.run, &f.target));

    out.push(match f.preflight.as_ref().map(|p| &p.drift) {
        Err(why) => check("drift", Status::Warn, format!("not compared: {why}")),
        Ok(Drift::NotInstalled) => check("drift", Status::Skip, "not installed"),
        Ok(Drift::Unknown(why)) => check("drift", Status::Warn, format!("not compared: {why}")),
        Ok(Drift::Compared { config, definition }) if !definition.is_empty() => check(
            "drift",
            Status::Fail,
            "the installed service definition (unit, plist or SCM entry) is not what its config renders to: it was changed by hand, or by another tend",
        )
        .fix(format!("rewrite it from the config: {install}"))
        .details(definition.iter().chain(config).cloned().collect()),
        Ok(Drift::Compared { config, .. }) if !config.is_empty() => check(
            "drift",
            Status::Warn,
            "the config differs from the installed copy the service runs from",
        )
        .fix(format!("install the change: {install}"))
        .details(config.clone()),
        Ok(Drift::Compared { .. }) => check(
            "drift",
            Status::Ok,
            "the installed definition and config copy are what the config renders to",
        ),
    });

    out.push(judge_clock(&f.clock));
    out.push(judge_last_run(f.last_run.as_ref(), &f.target, f.flag));
    out.push(match &f.unfinished {
        None => check("unfinished", Status::Skip, "not looked at"),
        Some(notes) if notes.is_empty() => check(
            "unfinished",
            Status::Ok,
            "no upgrade, rollback or replacement was left unfinished",
        ),
        Some(notes) => check(
            "unfinished",
            Status::Warn,
            "a change was left unfinished (or runs now): until it ends, the release in place may not be the one recorded",
        )
        .fix("run the command each line names (it finishes or undoes the change)")
        .details(notes.clone()),
    });
    out
}

fn judge_space(s: &LogSpace) -> Check {
    let dir = s.dir.display();
    let bytes = tend_core::fmt::bytes;
    match (&s.free, s.budget) {
        (Err(why), _) => check(
            "log-space",
            Status::Warn,
            format!("cannot tell the free space for `{dir}`: {why}"),
        ),
        (Ok(free), None) => check(
            "log-space",
            Status::Warn,
            format!(
                "nothing caps the logs in `{dir}` ({} free): they grow until the disk is full",
                bytes(*free)
            ),
        )
        .fix("set [logs] max_size and keep (or max_total)"),
        (Ok(free), Some(budget)) if *free < budget => check(
            "log-space",
            Status::Fail,
            format!(
                "`{dir}` has {} free, less than the {} the logs may take ([logs] max_size, keep, max_total)",
                bytes(*free),
                bytes(budget)
            ),
        )
        .fix("free space there, move [logs] dir, or lower max_size, keep or max_total"),
        (Ok(free), Some(budget)) => check(
            "log-space",
            Status::Ok,
            format!(
                "`{dir}` has {} free for at most {} of logs",
                bytes(*free),
                bytes(budget)
            ),
        ),
    }
}

fn judge_port(port: Option<&Port>, run: &Run, target: &str) -> Check {
    let Some(p) = port else {
        return check(
            "port",
            Status::Skip,
            "no [health] http or tcp check names a port",
        );
    };
    let at = format!("{} {}", p.key, p.addr);
    match (run, p.answering) {
        (Run::Changing(state), _) => check(
            "port",
            Status::Skip,
            format!("the service is {state}; the port of {at} says nothing yet"),
        ),
        (Run::Running, true) => check("port", Status::Ok, format!("{at} answers")),
        (Run::Running, false) => check(
            "port",
            Status::Fail,
            format!("nothing answers on {at} while the service runs"),
        )
        .fix(format!(
            "check that the program listens there (tend logs {target} --err), or fix [health]"
        )),
        (Run::Down, true) => check(
            "port",
            Status::Fail,
            format!(
                "something else already answers on {at}, and the service is not running: its program could not listen there"
            ),
        )
        .fix("stop what listens there (ss -ltnp, netstat -abno), or change the port"),
        (Run::Down, false) => check("port", Status::Ok, format!("{at} is free")),
    }
}

fn judge_clock(c: &Clock) -> Check {
    if c.built > 0 && c.now < c.built {
        return check(
            "clock",
            Status::Fail,
            format!(
                "the clock says {}, before this tend was made: rotated file names, crash records and max_age would be wrong",
                c.local
            ),
        )
        .fix("set the clock (timedatectl set-ntp true; w32tm /resync)");
    }
    match &c.zone_problem {
        Some(why) => check(
            "clock",
            Status::Warn,
            format!("local time {}, but {why}", c.local),
        )
        .fix(
            "set the time zone (timedatectl set-timezone Region/City) if logs should not be in UTC",
        ),
        None => check(
            "clock",
            Status::Ok,
            format!("local time {}, as log lines and rotation use it", c.local),
        ),
    }
}

fn judge_last_run(last: Option<&LastRun>, target: &str, flag: &str) -> Check {
    let Some(l) = last else {
        return check("last-failure", Status::Skip, "it has not run yet");
    };
    if l.state == "failed" || l.state == "restarting" {
        let why = l.reason.clone().unwrap_or_else(|| match l.state.as_str() {
            "restarting" => "tend itself exits and the OS manager starts it again".to_owned(),
            _ => "no reason on record".to_owned(),
        });
        let mut details: Vec<String> = l.stderr.iter().map(|s| format!("stderr: {s}")).collect();
        if let Some(c) = &l.last_crash {
            details.push(format!("last crash: {c}"));
        }
        return check(
            "last-failure",
            Status::Fail,
            format!("the service {}: {why}", l.state),
        )
        .fix(format!(
            "fix what it says, then: tend start{flag} {target} (all its crashes: tend crashes{flag} {target})"
        ))
        .details(details);
    }
    let crash = l
        .last_crash
        .as_ref()
        .map(|c| format!("; last crash {c}"))
        .unwrap_or_default();
    check(
        "last-failure",
        Status::Ok,
        format!("it has not failed (state {}){crash}", l.state),
    )
}

/// The table for people: one line per check (`ok`, `warn`, `FAIL`, `skip`), its details
/// indented below, and the fix after an arrow.
pub(crate) fn render(name: &str, checks: &[Check]) -> String {
    let mut s = String::new();
    for c in checks {
        let _ = writeln!(s, "{:<5} {:<13} {}", c.status.word(), c.id, c.message);
        for d in &c.details {
            let _ = writeln!(s, "{:<20}{d}", "");
        }
        if !c.fix.is_empty() && matches!(c.status, Status::Warn | Status::Fail) {
            let _ = writeln!(s, "{:<20}-> {}", "", c.fix);
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    let _ = writeln!(
        s,
        "{name}: {failed} failed, {warned} warning{}",
        if warned == 1 { "" } else { "s" }
    );
    s
}

/// `--json`: the schema docs/cli.md documents.
#[derive(Serialize)]
struct JsonReport<'a> {
    service: &'a str,
    ok: bool,
    checks: &'a [Check],
}

/// `tend doctor`.
pub(crate) fn doctor(target: &Path, json: bool, scope: Scope) -> Result<ExitCode, CliError> {
    let facts = gather(target, scope)?;
    let checks = judge(&facts.facts);
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    let name = facts.name.as_str();
    let text = if json {
        let mut s = serde_json::to_string_pretty(&JsonReport {
            service: name,
            ok: !failed,
            checks: &checks,
        })
        .map_err(std::io::Error::other)
        .map_err(|e| CliError::io("cannot write JSON", e))?;
        s.push('\n');
        s
    } else {
        render(name, &checks)
    };
    super::print_text(&text, "the checks")?;
    Ok(if failed {
        ExitCode::from(code::CHECK_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// What `install` adds to its own checks (config, access, account, drift: those it makes
/// itself, in the same code): the verdicts of the others that are not fine, as warnings.
/// Install refuses nothing for them.
pub(crate) fn at_install(
    spec: &ServiceSpec,
    config: &Path,
    scope: Scope,
    preflight: Option<&Preflight>,
) -> Vec<(&'static str, String)> {
    // From the installed service's status file alone: install asks the OS manager only
    // what it asks anyway.
    let run = place::place(scope, &spec.name)
        .ok()
        .and_then(|layout| {
            crate::status::read(&crate::status::path(&layout.state_dir, spec.name.as_str()))
                .ok()
                .flatten()
        })
        .filter(|s| crate::proc::supervisor_alive(s.supervisor_pid, &s.updated_at))
        .map_or(Run::Down, |s| run_of(&s.state));
    let facts = Facts {
        target: config.display().to_string(),
        flag: scope.flag(),
        config_warnings: Vec::new(),
        preflight: Err("install checks it itself".to_owned()),
        account: spec.service.account.as_str().to_owned(),
        logon_right: logon_right(spec, preflight),
        log_space: log_space(spec),
        port: port(spec),
        run,
        clock: clock(),
        last_run: None,
        unfinished: None,
    };
    judge(&facts)
        .into_iter()
        .filter(|c| {
            matches!(c.status, Status::Warn | Status::Fail)
                && !["config", "access", "account", "drift"].contains(&c.id)
        })
        .map(|c| {
            let fix = if c.fix.is_empty() {
                String::new()
            } else {
                format!("; {}", c.fix)
            };
            (c.id, format!("{}{fix}", c.message))
        })
        .collect()
}

struct Gathered {
    name: String,
    facts: Facts,
}

/// The thin glue: every fact [`judge`] needs, from the machine.
fn gather(target: &Path, scope: Scope) -> Result<Gathered, CliError> {
    let options = place::load_options(scope)?;
    let (path, shown) = match Target::parse(target.as_os_str()) {
        Target::Config(path) => {
            let shown = path.display().to_string();
            (path, shown)
        }
        Target::Name(name) => {
            let (name, layout) = super::target::installed(&name, scope)?;
            (layout.config, name.to_string())
        }
    };
    let loaded = tend_config::load(&path, &options)?;
    let spec = &loaded.spec;
    let original = std::fs::read_to_string(&path)
        .map_err(|e| CliError::io(format!("cannot read `{}`", path.display()), e))?;
    // Only looks: the access setting is what install would use without the override.
    let preflight = crate::os::manager(scope, Access::Check)
        .map_err(|e| e.to_string())
        .and_then(|m| {
            m.preflight(&Install {
                spec,
                original: &original,
                leave_running: false,
            })
            .map_err(|e| tend_os::error_chain(&e))
        });
    let installed = matches!(&preflight, Ok(p) if p.drift != Drift::NotInstalled);
    // `tend status`'s own answer: for a config that is not installed, the status file
    // `tend run` keeps in its log dir; otherwise the installed service's.
    let status = super::status::report_for(target, scope).ok();
    let run = status.as_ref().map_or(Run::Down, |r| run_of(&r.state));
    let last_run = status.as_ref().and_then(|r| {
        let sn = r.supervisor.as_ref();
        // No snapshot and nothing installed: it has never run (a backend that cannot
        // compare still knows through `tend status` whether it is installed).
        if sn.is_none() && (!installed || matches!(r.state.as_str(), "not-installed" | "unknown")) {
            return None;
        }
        Some(LastRun {
            state: r.state.clone(),
            reason: sn.and_then(|s| s.failed_reason.clone()),
            stderr: sn
                .and_then(|s| s.last_exit.as_ref())
                .map(|e| e.stderr.clone())
                .unwrap_or_default(),
            last_crash: sn
                .and_then(|s| s.last_crash.as_ref())
                .map(|c| format!("{}: {}", c.at, c.summary)),
        })
    });
    let facts = Facts {
        target: shown,
        flag: scope.flag(),
        config_warnings: loaded
            .warnings
            .iter()
            .map(|w| w.display_in(&spec.config_path).to_string())
            .collect(),
        logon_right: logon_right(spec, preflight.as_ref().ok()),
        preflight,
        account: match scope {
            Scope::User => "you (--user)".to_owned(),
            Scope::System => spec.service.account.as_str().to_owned(),
        },
        log_space: log_space(spec),
        port: port(spec),
        run,
        clock: clock(),
        last_run,
        unfinished: Some(
            [
                super::unfinished::replacement(&spec.name.to_string(), scope),
                super::unfinished::upgrade(&spec.name.to_string(), scope),
                super::unfinished::host(scope),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ),
    };
    Ok(Gathered {
        name: spec.name.to_string(),
        facts,
    })
}

fn run_of(state: &str) -> Run {
    match state {
        "running" => Run::Running,
        "starting" | "backoff" | "stopping" | "restarting" => Run::Changing(state.to_owned()),
        _ => Run::Down,
    }
}

/// The logon right as the install side read it (`preflight`; `None` when it was not
/// asked).
fn logon_right(spec: &ServiceSpec, preflight: Option<&Preflight>) -> LogonRight {
    let Account::User { name, .. } = &spec.service.account else {
        return LogonRight::NotApplicable(
            "the service runs as a built-in or virtual account, or as you".to_owned(),
        );
    };
    if !cfg!(windows) {
        return LogonRight::NotApplicable("only Windows has the right".to_owned());
    }
    match preflight.map(|p| &p.logon_right) {
        Some(Some(Ok(true))) => LogonRight::Granted(name.clone()),
        Some(Some(Ok(false))) => LogonRight::NotListed(name.clone()),
        Some(Some(Err(why))) => LogonRight::Unknown {
            account: name.clone(),
            why: why.clone(),
        },
        Some(None) => {
            LogonRight::NotApplicable("this service manager runs it as you (--user)".to_owned())
        }
        None => LogonRight::Unknown {
            account: name.clone(),
            why: "the service manager could not be asked".to_owned(),
        },
    }
}

fn log_space(spec: &ServiceSpec) -> LogSpace {
    let dir = spec.logs.dir.clone();
    // tend creates the directory at start: ask the file system it will be on.
    let existing = dir.ancestors().find(|d| d.is_dir()).map(Path::to_owned);
    let free = match existing {
        None => Err("no part of it exists".to_owned()),
        Some(d) => free_bytes(&d).map_err(|e| e.to_string()),
    };
    LogSpace {
        budget: retention_budget(&spec.logs),
        dir,
        free,
    }
}

#[cfg(unix)]
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let s = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    // What a user other than root may use (the service usually is one). fsblkcnt_t is
    // narrower than u64 on some targets (32-bit, macOS), hence the conversion.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(s.blocks_available()).saturating_mul(s.fragment_size()))
}

#[cfg(windows)]
#[allow(unsafe_code)]
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::windows::ffi::OsStrExt as _;
    let wide: Vec<u16> = dir.as_os_str().encode_wide().chain(Some(0)).collect();
    let mut free = 0u64;
    // SAFETY: `wide` is NUL-terminated and outlives the call; `free` is a valid out
    // pointer; the two other outputs are optional and passed as null.
    let ok = unsafe {
        windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW(
            wide.as_ptr(),
            &raw mut free,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(free)
}

fn port(spec: &ServiceSpec) -> Option<Port> {
    let (key, host, port) = match spec.health.as_ref()?.check.as_ref()? {
        tend_core::health::CheckSpec::Http(h) => ("health.http", h.url.host(), h.url.port()),
        tend_core::health::CheckSpec::Tcp(t) => ("health.tcp", t.host(), t.port()),
        tend_core::health::CheckSpec::Command(_) => return None,
    };
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let answering = (host, port).to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
    });
    Some(Port {
        key,
        addr,
        answering,
    })
}

fn clock() -> Clock {
    let now = chrono::Local::now();
    Clock {
        now: now.timestamp(),
        built: i64::try_from(crate::version::BUILD_EPOCH).unwrap_or(0),
        local: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        zone_problem: zone_problem(),
    }
}

/// Why local time may silently be UTC: a `TZ` that names no zone, or (Unix) no
/// `/etc/localtime` at all.
#[cfg(unix)]
fn zone_problem() -> Option<String> {
    match std::env::var("TZ") {
        Ok(tz) if !tz.is_empty() => {
            let name = tz.trim_start_matches(':');
            let file = if name.starts_with('/') {
                PathBuf::from(name)
            } else {
                Path::new("/usr/share/zoneinfo").join(name)
            };
            // POSIX rules (`CET-1CEST,M3.5.0,M10.5.0/3`) and UTC itself need no file.
            let rule = (name.chars().any(|c| c.is_ascii_digit()) && !name.contains('/'))
                || matches!(name, "UTC" | "GMT");
            (!rule && !file.is_file())
                .then(|| format!("TZ={tz} names no time zone, so local time is UTC"))
        }
        _ => (!Path::new("/etc/localtime").exists()).then(|| {
            "no time zone is set (/etc/localtime is missing), so local time is UTC".to_owned()
        }),
    }
}

#[cfg(windows)]
fn zone_problem() -> Option<String> {
    None
}

#[cfg(test)]
mod tests;
