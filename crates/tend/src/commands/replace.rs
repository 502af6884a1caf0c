//! `tend import ... --install [--replace] [--name NEW] [--verify D] [--check] [--json]`
//! (docs/import.md, "Installing and replacing").
//!
//! The steps and what follows each are tend-core's (`replace::next`); the take-over and
//! put-back are the install side's (`ServiceManager::record_foreign`, `take_over`,
//! `put_back`); the verification is `tend upgrade`'s verdict (`upgrade::verdict`) on the
//! new service's status file. This file carries the steps out and says what happened.
//! Before anything changes, the record of the old service (with copies of its files) is on
//! disk, and before each step the journal names it, so a killed tend leaves enough for the
//! next run to put the old service back.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tend_core::ServiceName;
use tend_core::replace::{self, End, Next, Step};
use tend_core::upgrade::{Observed, Rules};
use tend_import::Import;
use tend_os::{Access, Foreign, Install, ServiceManager};

use crate::error::{CliError, code};
use crate::place::{self, Scope};

use super::unfinished::Journal;

/// The test hook: `TEND_REPLACE_PAUSE=<step>` makes tend stop for good right after the
/// journal names that step (before doing it), so a test can kill it there.
const PAUSE_ENV: &str = "TEND_REPLACE_PAUSE";

/// How often a verification looks.
const POLL: Duration = Duration::from_millis(200);

/// The flags of `--install`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opts<'a> {
    pub(crate) replace: bool,
    pub(crate) name: Option<&'a str>,
    pub(crate) verify: Option<&'a str>,
    pub(crate) check: bool,
    pub(crate) json: bool,
}

/// The result, also as `--json`.
#[derive(Debug, Serialize)]
struct Outcome {
    service: String,
    replaced: Option<String>,
    end: End,
    reason: Option<String>,
    stderr: Vec<String>,
    backup: Option<PathBuf>,
    steps: Vec<StepLine>,
}

#[derive(Debug, Serialize)]
struct StepLine {
    step: Step,
    ok: bool,
    secs: f64,
    detail: String,
}

/// Everything one replacement works with.
struct Cx<'a> {
    into: ServiceName,
    /// The service taken over, and its record.
    foreign: Option<(ServiceName, Foreign)>,
    text: String,
    spec: tend_core::ServiceSpec,
    layout: tend_os::Layout,
    /// The record, its file copies, the journal.
    dir: PathBuf,
    manager: Box<dyn ServiceManager>,
    verify: Duration,
    opts: &'a Opts<'a>,
}

/// `--install`: `source` imported to `result`; `foreign` is the name its own manager knows
/// the service by (what `--replace` takes over).
pub(crate) fn run(
    source: &str,
    result: Import,
    foreign: String,
    opts: &Opts<'_>,
) -> Result<ExitCode, CliError> {
    let scope = Scope::System;
    let [program] = result.programs.as_slice() else {
        let names: Vec<&str> = result.programs.iter().map(|p| p.name.as_str()).collect();
        return Err(CliError::Invalid(format!(
            "`{source}` holds {} programs ({}): --install takes one; write them with --out DIR, then `tend install` each (nothing was changed)",
            names.len(),
            names.join(", ")
        )));
    };
    let into_str = opts.name.unwrap_or(&program.name);
    let into = ServiceName::new(into_str).map_err(|e| {
        CliError::Invalid(format!(
            "--name {into_str:?}: {e}; choose a name of letters, digits, `-`, `_` and `.`"
        ))
    })?;
    let text = with_name(&program.toml, into.as_str());
    if !opts.check {
        super::service::check_rights("import --install", scope)?;
    }
    let layout = place::place(scope, &into)?;
    // The config is read as its installed copy will be (the same path and defaults).
    let loaded = tend_config::parse(&text, &layout.config, &place::load_options(scope)?)?;
    if !loaded.warnings.is_empty() {
        let mut err = std::io::stderr().lock();
        for w in &loaded.warnings {
            let _ = writeln!(err, "{}", w.display_in(Path::new("(imported config)")));
        }
        return Err(CliError::Invalid(format!(
            "not installing `{into}`: the imported config has the problems above on this machine; fix them (write it with --out, edit, `tend install`), nothing was changed"
        )));
    }
    let verify = match opts.verify {
        Some(v) => tend_config::parse_duration(v)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                CliError::Invalid(format!(
                    "--verify {v:?}: not a duration of more than 0s (e.g. 3s, 1m)"
                ))
            })?,
        None => loaded.spec.upgrade.verify,
    };
    let manager = crate::os::manager(scope, Access::Check)?;
    let foreign_name = if opts.replace {
        Some(ServiceName::new(&foreign).map_err(|e| {
            CliError::Invalid(format!(
                "the service `{foreign}` cannot be taken over: its name is not one tend allows ({e}); install tend's beside it (--install --name NEW, without --replace) and stop the old one yourself"
            ))
        })?)
    } else {
        None
    };
    let dir = place::place(scope, foreign_name.as_ref().unwrap_or(&into))?.replace_dir();
    let mut cx = Cx {
        into,
        foreign: None,
        text,
        spec: loaded.spec,
        layout,
        dir,
        manager,
        verify,
        opts,
    };
    // Held until the end: a second run would otherwise "recover" this one's journal.
    let _lock = if opts.check { None } else { Some(cx.lock()?) };
    if let Some(out) = cx.recover()? {
        return cx.report(&out);
    }
    cx.refuse_taken(foreign_name.as_ref())?;
    if let Some(f) = foreign_name {
        let record = cx.manager.record_foreign(&f).map_err(|e| match e {
            tend_os::Error::NotInstalled(_) => CliError::NotInstalled(format!(
                "{f} (--replace takes over an installed service of that name; without --replace, --install adds tend's beside it)"
            )),
            e => e.into(),
        })?;
        cx.foreign = Some((f, record));
    }
    if opts.check {
        return cx.check();
    }
    let mut j = Journal {
        foreign: cx.foreign.as_ref().map(|(f, _)| f.to_string()),
        into: cx.into.to_string(),
        step: Step::Backup,
        pid: std::process::id(),
        started_at: crate::status::rfc3339(SystemTime::now()),
        reason: None,
        stderr: Vec::new(),
    };
    let out = cx.drive(&mut j, Next::Do(Step::Backup))?;
    cx.report(&out)
}

/// The config with `name` set to `name` (the converters write it on a line of its own). A
/// service name has no character TOML would need escaped in a basic string.
fn with_name(toml: &str, name: &str) -> String {
    let line = format!("name = \"{name}\"");
    let mut done = false;
    let mut out: Vec<String> = toml
        .lines()
        .map(|l| {
            if !done && l.starts_with("name = ") {
                done = true;
                line.clone()
            } else {
                l.to_owned()
            }
        })
        .collect();
    if !done {
        out.insert(0, line);
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

impl Cx<'_> {
    /// Progress: stdout, or stderr with `--json`.
    fn say(&self, line: &str) {
        self.out().line(line);
    }

    fn out(&self) -> super::progress::Progress {
        super::progress::Progress {
            json: self.opts.json,
            width: 11,
        }
    }

    fn io(&self, what: &str, e: std::io::Error) -> CliError {
        CliError::io(format!("{what} `{}`", self.dir.display()), e)
    }

    /// The replace directory's lock (an OS file lock, gone with the process).
    fn lock(&self) -> Result<crate::release::Lock, CliError> {
        let store = crate::release::Store::new(self.dir.clone());
        store
            .create()
            .map_err(|e| self.io("cannot create the backup directory", e))?;
        store.lock().map_err(|e| match e {
            crate::release::LockError::Busy(pid) => CliError::Invalid(format!(
                "another `tend import --install` of `{}` is under way{}; wait for it to end",
                self.into,
                pid.map(|p| format!(" (tend pid {p})")).unwrap_or_default()
            )),
            crate::release::LockError::Io(e) => {
                CliError::io(format!("cannot lock `{}`", store.lock_path().display()), e)
            }
        })
    }

    /// A service of tend's name must not be there, unless it is the one taken over.
    fn refuse_taken(&self, foreign: Option<&ServiceName>) -> Result<(), CliError> {
        if foreign == Some(&self.into) {
            return Ok(());
        }
        let st = self.manager.status(&self.into)?;
        if !st.installed {
            return Ok(());
        }
        let whose = self.manager.not_ours(&self.into).map_or_else(
            || "tend's own (`tend install` updates it)".to_owned(),
            |why| format!("not tend's: {why}"),
        );
        let hint = if foreign.is_some() {
            "choose another --name"
        } else {
            "add --replace to take it over, or choose another name with --name"
        };
        Err(CliError::Invalid(format!(
            "a service named `{}` already exists ({whose}); {hint} (nothing was changed)",
            self.into
        )))
    }

    fn rules(&self) -> Rules {
        Rules {
            verify: self.verify,
            health: self.spec.health.is_some(),
            command: false,
        }
    }

    fn rules_text(&self) -> &'static str {
        if self.spec.health.is_some() {
            "the program must keep running and become healthy"
        } else {
            "the program must keep running"
        }
    }

    /// `--check`: the plan; nothing is written.
    fn check(&self) -> Result<ExitCode, CliError> {
        let mut lines = Vec::new();
        match &self.foreign {
            Some((f, rec)) => {
                lines.push(format!(
                    "would replace `{f}` ({}, {}{}) with tend's service `{}`",
                    rec.backend,
                    if rec.active { "running" } else { "stopped" },
                    if rec.enabled { ", starts at boot" } else { "" },
                    self.into
                ));
                lines.push(format!(
                    "  backup      the record of `{f}`{} into `{}`",
                    if rec.files.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " and its files ({})",
                            rec.files
                                .iter()
                                .map(|s| s.path.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                    self.dir.display()
                ));
                lines.push(if *f == self.into {
                    format!("  take-over   stop `{f}` and give its name to tend")
                } else {
                    format!("  take-over   stop `{f}` and keep it from starting at boot")
                });
            }
            None => lines.push(format!("would install tend's service `{}`", self.into)),
        }
        lines.push(format!(
            "  install     config copy `{}`",
            self.layout.config.display()
        ));
        lines.push(format!("  start       `{}`", self.into));
        lines.push(format!(
            "  verify      for {}: {}",
            tend_core::fmt::duration(self.verify),
            self.rules_text()
        ));
        lines.push(match &self.foreign {
            Some((f, _)) => format!(
                "on failure: remove tend's `{}`, put `{f}` back as it was and check it runs again (exit 6)",
                self.into
            ),
            None => format!("on failure: remove tend's `{}` (exit 6)", self.into),
        });
        lines.push("nothing was changed (--check)".to_owned());
        self.out().check(
            &lines,
            &serde_json::json!({
                "service": self.into.as_str(),
                "check": true,
                "replaced": self.foreign.as_ref().map(|(f, _)| f.as_str()),
                "foreign": self.foreign.as_ref().map(|(_, r)| r),
                "lines": lines,
            }),
        );
        Ok(ExitCode::SUCCESS)
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.json")
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join("foreign.json")
    }

    fn journal(&self) -> crate::release::JournalFile {
        crate::release::JournalFile(self.journal_path())
    }

    fn write_journal(&self, j: &Journal) -> Result<(), CliError> {
        self.journal()
            .write(j)
            .map_err(|e| self.io("cannot write the journal in", e))
    }

    /// A journal a killed tend left: the replacement is undone (the old service is known to
    /// work), or the undo finished. `None` when there is none.
    fn recover(&mut self) -> Result<Option<Outcome>, CliError> {
        let Some(mut j): Option<Journal> = self
            .journal()
            .read()
            .map_err(|e| self.io("cannot read the journal in", e))?
        else {
            return Ok(None);
        };
        self.say(&format!(
            "found an interrupted replacement of `{}` by `{}` at step `{}` (tend pid {} was killed); undoing it first",
            j.foreign.as_deref().unwrap_or("(none)"),
            j.into,
            j.step.as_str(),
            j.pid
        ));
        self.into = ServiceName::new(&j.into)
            .map_err(|e| CliError::Invalid(format!("journal: `{}`: {e}", j.into)))?;
        self.layout = place::place(Scope::System, &self.into)?;
        if let Some(f) = &j.foreign {
            let name = ServiceName::new(f)
                .map_err(|e| CliError::Invalid(format!("journal: `{f}`: {e}")))?;
            let record: Option<Foreign> = std::fs::read(self.record_path())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            match record {
                Some(r) => self.foreign = Some((name, r)),
                // Killed while the record was being written: nothing was changed yet.
                None if j.step == Step::Backup => {}
                None => {
                    return Err(CliError::io(
                        format!(
                            "the record of `{f}` is missing from `{}`: the old service cannot be put back by tend; its files were copied to `{}` if the backup got that far",
                            self.dir.display(),
                            self.dir.join("files").display()
                        ),
                        std::io::Error::from(std::io::ErrorKind::NotFound),
                    ));
                }
            }
        }
        let active = self.foreign.as_ref().is_some_and(|(_, r)| r.active);
        let next = replace::next(j.step, Observed::Interrupted, active);
        if j.reason.is_none() && !j.step.is_undo() && j.step != Step::Backup {
            j.reason = Some(format!(
                "tend was interrupted at step `{}`; the replacement was undone",
                j.step.as_str()
            ));
        }
        Ok(Some(self.drive(&mut j, next)?))
    }

    /// Carries out steps from `next` until the replacement ends.
    fn drive(&self, j: &mut Journal, mut next: Next) -> Result<Outcome, CliError> {
        let active = self.foreign.as_ref().is_some_and(|(_, r)| r.active);
        let mut steps = Vec::new();
        let mut started: Option<SystemTime> = None;
        let end = loop {
            let step = match next {
                Next::Finish(end) => break end,
                Next::Do(step) => step,
            };
            if step != Step::Backup {
                j.step = step;
                self.write_journal(j)?;
            }
            pause_here(step);
            let t = Instant::now();
            let (ok, detail) = match step {
                Step::Backup => self.backup(j)?,
                Step::TakeOver => match &self.foreign {
                    Some((_, rec)) => verb(self.manager.take_over(rec, &self.into)),
                    None => (true, "nothing to take over".to_owned()),
                },
                Step::Install => {
                    let (ok, detail) = verb(self.manager.install(&Install {
                        spec: &self.spec,
                        original: &self.text,
                        leave_running: false,
                    }));
                    // Its first line says it all; the rest (where the files are, "start it
                    // with") is for a `tend install` by hand.
                    let first = detail.split(['\n', ';']).next().unwrap_or_default();
                    (ok, if ok { first.trim().to_owned() } else { detail })
                }
                Step::Start => {
                    started = Some(SystemTime::now());
                    let (ok, detail) = verb(self.manager.start(&self.into));
                    if !ok {
                        let (why, lines) = self.last_exit();
                        j.stderr = lines;
                        let why = why
                            .map(|w| format!(" (the program {w})"))
                            .unwrap_or_default();
                        (false, format!("{detail}{why}"))
                    } else {
                        (ok, detail)
                    }
                }
                Step::Verify => {
                    self.step_line(
                        "verify",
                        &format!(
                            "watching for {}: {}",
                            tend_core::fmt::duration(self.verify),
                            self.rules_text()
                        ),
                    );
                    match self.verify_tend(started) {
                        Ok(d) => (true, d),
                        Err((why, lines)) => {
                            j.stderr = lines;
                            (false, why)
                        }
                    }
                }
                Step::PutBack => match &self.foreign {
                    Some((_, rec)) => verb(self.manager.put_back(rec, &self.into)),
                    None => match self.manager.uninstall(&self.into) {
                        Ok(r) => (true, r.lines.join("; ")),
                        Err(f) if matches!(f.error, tend_os::Error::NotInstalled(_)) => {
                            (true, "nothing to remove".to_owned())
                        }
                        Err(f) => (false, tend_os::error_chain(&f.error)),
                    },
                },
                Step::UndoVerify => self.verify_foreign(),
            };
            if !ok && !step.is_undo() && j.reason.is_none() {
                j.reason = Some(detail.clone());
            }
            self.step_line(
                step.as_str(),
                &if ok {
                    format!("{detail} ({:.1}s)", t.elapsed().as_secs_f64())
                } else {
                    format!("FAILED: {detail}")
                },
            );
            if !ok && !step.is_undo() {
                for l in &j.stderr {
                    self.say(&format!("{:>14}| {l}", ""));
                }
            }
            steps.push(StepLine {
                step,
                ok,
                secs: t.elapsed().as_secs_f64(),
                detail,
            });
            let observed = if ok { Observed::Done } else { Observed::Failed };
            next = replace::next(step, observed, active);
        };
        self.journal()
            .remove()
            .map_err(|e| self.io("cannot remove the journal in", e))?;
        Ok(Outcome {
            service: self.into.to_string(),
            replaced: self.foreign.as_ref().map(|(f, _)| f.to_string()),
            end,
            reason: j.reason.clone(),
            stderr: j.stderr.clone(),
            backup: self.foreign.as_ref().map(|_| self.dir.clone()),
            steps,
        })
    }

    fn step_line(&self, step: &str, detail: &str) {
        self.say(&self.out().step_text(step, detail));
    }

    /// The record (with the files' text), copies of the files as they were, and the
    /// imported config, durably, before the journal's first step: whatever happens after,
    /// the old service can be put back from here.
    fn backup(&self, j: &Journal) -> Result<(bool, String), CliError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| self.io("cannot create the backup directory", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
        }
        let write = |path: &Path, bytes: &[u8]| {
            if let Some(d) = path.parent() {
                std::fs::create_dir_all(d)?;
            }
            tend_os::write_atomic(path, bytes, Some(0o600))
        };
        write(
            &self.dir.join(format!("{}.toml", self.into)),
            self.text.as_bytes(),
        )
        .map_err(|e| self.io("cannot write the imported config into", e))?;
        let Some((f, rec)) = &self.foreign else {
            self.write_journal(j)?;
            return Ok((
                true,
                "nothing to back up (no service is replaced)".to_owned(),
            ));
        };
        let files = self.dir.join("files");
        for s in &rec.files {
            // The path under `files/` is the file's own, so drop-ins keep their directory.
            let rel: PathBuf = s.path.components().skip(1).collect();
            write(&files.join(rel), s.text.as_bytes())
                .map_err(|e| self.io("cannot copy the old service's files into", e))?;
        }
        let bytes = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other);
        bytes
            .and_then(|b| write(&self.record_path(), &b))
            .map_err(|e| self.io("cannot write the record into", e))?;
        // The journal's first write: from here on a rerun puts the old service back.
        self.write_journal(j)?;
        Ok((
            true,
            format!(
                "recorded `{f}` ({}{}){} in `{}`",
                if rec.active { "running" } else { "stopped" },
                if rec.enabled { ", starts at boot" } else { "" },
                if rec.files.is_empty() {
                    String::new()
                } else {
                    format!(" and copied its {} file(s)", rec.files.len())
                },
                self.dir.display()
            ),
        ))
    }

    /// The last exit of the program under tend, and its last stderr lines.
    fn last_exit(&self) -> (Option<String>, Vec<String>) {
        crate::status::read(&self.layout.status_file(&self.into))
            .ok()
            .flatten()
            .and_then(|s| s.last_exit)
            .map_or((None, Vec::new()), |e| (Some(e.description), e.stderr))
    }

    /// `tend upgrade`'s verification of the program under tend's new service.
    fn verify_tend(&self, started: Option<SystemTime>) -> Result<String, (String, Vec<String>)> {
        let rules = self.rules();
        // A second of slack: the new service's first status may carry the same second as
        // the start (there is no earlier run of it whose file could be taken for this one).
        let since = started.map(|t| t - Duration::from_secs(1));
        let pid = super::verify::watch(
            rules,
            &self.layout.status_file(&self.into),
            since,
            |_| {},
            || Ok(()),
        )?;
        Ok(format!(
            "passed: running (pid {pid}) for {}{}",
            tend_core::fmt::duration(rules.verify),
            if rules.health { ", healthy" } else { "" }
        ))
    }

    /// The old service, put back, must run (as its manager says) for the verify period,
    /// with the same process.
    fn verify_foreign(&self) -> (bool, String) {
        let Some((f, _)) = &self.foreign else {
            return (true, String::new());
        };
        let began = Instant::now();
        let mut first: Option<Option<u32>> = None;
        loop {
            match self.manager.status(f) {
                Ok(s) if s.active => match first {
                    None => first = Some(s.pid),
                    Some(p) if p != s.pid && p.is_some() && s.pid.is_some() => {
                        return (
                            false,
                            format!(
                                "`{f}` was restarted by its manager (pid {p:?} -> {:?})",
                                s.pid
                            ),
                        );
                    }
                    Some(_) => {}
                },
                Ok(s) => return (false, format!("`{f}` is not running: {}", s.describe())),
                Err(e) => return (false, format!("cannot ask about `{f}`: {e}")),
            }
            if began.elapsed() >= self.verify {
                let pid = first
                    .flatten()
                    .map(|p| format!(" (pid {p})"))
                    .unwrap_or_default();
                return (
                    true,
                    format!(
                        "`{f}` runs again{pid} for {}",
                        tend_core::fmt::duration(self.verify)
                    ),
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Prints the result and chooses the exit code (docs/import.md).
    fn report(&self, out: &Outcome) -> Result<ExitCode, CliError> {
        let why = out.reason.as_deref().unwrap_or("no reason recorded");
        let old = out.replaced.as_deref();
        let (line, exit) = match out.end {
            End::Replaced => (
                match old {
                    Some(f) => format!(
                        "replaced `{f}`: tend's service `{}` runs the program and passed verification; the old service's record and files are in `{}`",
                        out.service,
                        self.dir.display()
                    ),
                    None => format!(
                        "installed `{}`: it runs and passed verification",
                        out.service
                    ),
                },
                code::OK,
            ),
            End::Abandoned => ("stopped before anything was changed".to_owned(), code::OK),
            End::PutBack => (
                match old {
                    Some(f) => format!(
                        "PUT BACK `{f}`: tend's service `{}` failed: {why}; it was removed and `{f}` is back as it was",
                        out.service
                    ),
                    None => format!(
                        "REMOVED `{}`: tend's service failed: {why}; it was uninstalled",
                        out.service
                    ),
                },
                code::ROLLED_BACK,
            ),
            End::Broken => (
                format!(
                    "BROKEN: tend's service `{}` failed: {why}; and `{}` could not be put back to a running state: see `tend status {}`, and the record and files in `{}`",
                    out.service,
                    old.unwrap_or("(none)"),
                    old.unwrap_or(&out.service),
                    self.dir.display()
                ),
                code::UPGRADE_BROKEN,
            ),
        };
        self.out().end(out, &line);
        Ok(ExitCode::from(exit))
    }
}

/// A verb's report as one step's detail.
fn verb(r: Result<tend_os::Report, tend_os::Failure>) -> (bool, String) {
    match r {
        Ok(r) => {
            crate::os::print(&tend_os::Report {
                lines: Vec::new(),
                ..r.clone()
            });
            (true, r.lines.join("; "))
        }
        Err(f) => {
            crate::os::print(&tend_os::Report {
                lines: Vec::new(),
                ..(*f.report).clone()
            });
            let mut d = f.report.lines.join("; ");
            if !d.is_empty() {
                d.push_str("; then ");
            }
            d.push_str(&tend_os::error_chain(&f.error));
            (false, d)
        }
    }
}

/// The test hook (docs/import.md, "Testing"): stops here for good.
fn pause_here(step: Step) {
    if std::env::var(PAUSE_ENV).is_ok_and(|v| v == step.as_str()) {
        let _ = writeln!(
            std::io::stderr(),
            "paused before step `{}` ({PAUSE_ENV}; tend pid {})",
            step.as_str(),
            std::process::id()
        );
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_name_replaces_the_name_line_only() {
        let t = "# note\nname = \"legacy\"\ncommand = [\"/x\"]\n# name = \"y\"\n";
        assert_eq!(
            with_name(t, "web"),
            "# note\nname = \"web\"\ncommand = [\"/x\"]\n# name = \"y\"\n"
        );
        assert_eq!(
            with_name("command = []\n", "a"),
            "name = \"a\"\ncommand = []\n"
        );
    }
}
