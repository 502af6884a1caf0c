//! `tend upgrade --self NEW_TEND`, `tend rollback --self`, `tend history --self`
//! (docs/upgrade.md, "tend itself").
//!
//! The binary every installed service's host runs is replaced like a service's program:
//! checked, staged in a store of its own (`<state root>/.releases/.tend`, as protected as
//! the services' stores), swapped in by a rename (a running host keeps the old file mapped;
//! on Windows the old file is moved aside, as `tend upgrade` does with a program in use),
//! then each running service's host is restarted on the new binary, one at a time, and
//! verified as `tend upgrade` verifies a release. The first service that fails puts the old
//! binary back, and every service moved so far is restarted on it and verified again. The
//! steps are tend-core's `upgrade::host::next`; a journal names each before it is done, so
//! a tend killed at any point is finished or undone by the next `--self` command.
//!
//! A host's stop stays graceful while its file is moved: the stop is the running (old)
//! tend's own code (signals on Unix, the SCM host's in-process console event on Windows);
//! nothing during a stop runs the file at the binary's path.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tend_core::upgrade::host::{self as plan, HostNext, HostRun, HostStep};
use tend_core::upgrade::{End, Observed, Step};
use tend_os::{Access, ServiceManager};

use super::super::progress::Progress;
use super::{Cx, short};
use crate::error::{CliError, code};
use crate::place::{self, Scope};
use crate::release::{self, Release, State, Store};

/// How long `NEW_TEND --version` may take: a tend answers at once.
const VERSION_WAIT: Duration = Duration::from_secs(10);

/// The journal of a change of tend's own binary.
const JOURNAL: &str = "host-journal.json";

/// The journal: written durably before each step.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HostJournal {
    /// `upgrade` or `rollback`.
    op: String,
    from: String,
    to: String,
    #[serde(flatten)]
    step: HostStep,
    run: HostRun,
    /// The services to move, in order (the ones running when the change began).
    services: Vec<String>,
    pid: u32,
    started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stderr: Vec<String>,
    /// How it ended, written before the releases record it (a recovery then only records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<End>,
}

/// How the change ended, for `--json`.
#[derive(Debug, Serialize)]
struct HostOutcome {
    op: String,
    /// The tend binary that was replaced.
    binary: PathBuf,
    end: End,
    from: String,
    to: String,
    /// What `--version` said of each.
    from_version: Option<String>,
    to_version: Option<String>,
    /// Each service moved (or moved back): what its restart did.
    services: Vec<ServiceLine>,
    /// Services left alone, and why (not running, another binary).
    skipped: Vec<ServiceLine>,
    reason: Option<String>,
    stderr: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct ServiceLine {
    service: String,
    step: String,
    ok: bool,
    detail: String,
}

/// What the change of tend's own binary needs.
struct Host {
    scope: Scope,
    /// The binary in place: the one this tend runs as.
    target: PathBuf,
    store: Store,
    manager: Box<dyn ServiceManager>,
    json: bool,
}

/// `tend upgrade --self NEW_TEND [--check] [--json] [--user]`.
pub(crate) fn upgrade(
    new: &Path,
    check: bool,
    json: bool,
    scope: Scope,
) -> Result<ExitCode, CliError> {
    let host = Host::open(scope, json, !check)?;
    let refuse = |why: String| {
        CliError::Invalid(format!(
            "not upgrading tend `{}`: {why}; nothing was changed",
            host.target.display()
        ))
    };
    let source = std::path::absolute(new).unwrap_or_else(|_| new.to_owned());
    release::check_runnable(&source).map_err(|why| refuse(format!("`{}` {why}", new.display())))?;
    let to_version = version_of(&source).map_err(|why| {
        refuse(format!(
            "`{}` is not a tend this machine runs: {why}",
            new.display()
        ))
    })?;
    let dir = host.target.parent().unwrap_or(Path::new("/"));
    release::check_writable(dir).map_err(|why| {
        refuse(format!(
            "{why} (tend's binary `{}` is replaced there)",
            host.target.display()
        ))
    })?;
    let sha = release::sha256_file(&source)
        .map_err(|e| CliError::io(format!("cannot read `{}`", source.display()), e))?;
    let live = release::sha256_file(&host.target).ok();
    let (services, skipped) = host.services()?;
    if check {
        return host.check(
            &source,
            &sha,
            live.as_deref(),
            &to_version,
            &services,
            &skipped,
        );
    }
    let _lock = host.lock()?;
    host.recover()?;
    let from = host.current()?;
    if from.sha256 == sha {
        host.say(&format!(
            "tend `{}` already is this build (release {}, sha256 {}); nothing to do",
            host.target.display(),
            from.id,
            short(&sha)
        ));
        host.unchanged("upgrade", &from.id);
        return Ok(ExitCode::SUCCESS);
    }
    let to = host
        .store
        .stage_parts(
            &release::Parts::program(&source),
            &host.target,
            Some(&source),
            State::Staged,
        )
        .map_err(|e| host.io("cannot stage the new tend in", e))?;
    host.say(&format!(
        "upgrade tend `{}`: release {} -> {} ({})",
        host.target.display(),
        from.id,
        to.id,
        to_version
    ));
    host.step(
        "staged",
        &format!(
            "{} (sha256 {}, {}) from `{}`",
            to.id,
            short(&to.sha256),
            tend_core::fmt::bytes(to.size),
            source.display()
        ),
    );
    host.begin("upgrade", &from, &to, services, skipped)
}

/// `tend rollback --self [--to ID] [--json] [--user]`: back to the previous tend (or a named
/// one) with the same restarts and verification.
pub(crate) fn rollback(to: Option<&str>, json: bool, scope: Scope) -> Result<ExitCode, CliError> {
    let host = Host::open(scope, json, true)?;
    let (services, skipped) = host.services()?;
    let _lock = host.lock()?;
    if host.recover()? && to.is_none() {
        // The interrupted change was undone: that was the rollback asked for.
        return Ok(ExitCode::SUCCESS);
    }
    // What is in place first: a binary replaced by hand becomes the current release, and
    // the one before it the previous one to go back to.
    let from = host.current()?;
    // Only releases of this binary: one store could hold another path's.
    let releases: Vec<Release> = host
        .releases()?
        .into_iter()
        .filter(|r| same_path(&r.target, &host.target))
        .collect();
    let target = match to {
        Some(id) => releases.iter().find(|r| r.id == id),
        None => releases.iter().rev().find(|r| r.state == State::Previous),
    }
    .cloned()
    .ok_or_else(|| {
        CliError::Invalid(format!(
            "tend has no {} to go back to; `tend history --self{}` lists its releases",
            to.map_or_else(
                || "previous release".to_owned(),
                |id| format!("release `{id}`")
            ),
            host.scope.flag()
        ))
    })?;
    if target.sha256 == from.sha256 {
        host.say(&format!(
            "tend `{}` already is release {} (sha256 {}); nothing to do",
            host.target.display(),
            target.id,
            short(&target.sha256)
        ));
        host.unchanged("rollback", &target.id);
        return Ok(ExitCode::SUCCESS);
    }
    host.say(&format!(
        "rollback tend `{}`: release {} -> {}",
        host.target.display(),
        from.id,
        target.id
    ));
    host.begin("rollback", &from, &target, services, skipped)
}

/// `tend history --self [--json] [--user]`: tend's own releases.
pub(crate) fn history(json: bool, scope: Scope) -> Result<ExitCode, CliError> {
    // Progress (a recovery's) on stderr: stdout is the history.
    let host = Host::open(scope, true, false)?;
    if host.store.dir.exists()
        && let Ok(_lock) = host.lock()
    {
        host.recover()?;
    }
    let releases = host.releases()?;
    super::show_releases(
        "tend",
        &host.target,
        &releases,
        json,
        &format!(
            "tend `{}` has no releases yet: `tend upgrade --self{} <new tend>` makes the first",
            host.target.display(),
            scope.flag()
        ),
    );
    Ok(ExitCode::SUCCESS)
}

impl Host {
    fn open(scope: Scope, json: bool, rights: bool) -> Result<Self, CliError> {
        if rights {
            super::super::service::check_rights("upgrade", scope)?;
        }
        let target = own_binary()?;
        let store = Store::new(place::host_releases_dir(scope)?);
        let manager = crate::os::manager(scope, Access::Check)?;
        Ok(Self {
            scope,
            target,
            store,
            manager,
            json,
        })
    }

    /// The installed services to move, in name order: those running on this binary. The
    /// others are said: a stopped service starts on the new binary at its next start; one
    /// whose definition runs another tend is not this binary's.
    fn services(&self) -> Result<(Vec<String>, Vec<ServiceLine>), CliError> {
        let mut moving = Vec::new();
        let mut skipped = Vec::new();
        for name in place::installed_names(self.scope)? {
            let Ok(sn) = place::service_name(&name) else {
                continue;
            };
            let skip = |why: String| ServiceLine {
                service: name.clone(),
                step: "skipped".into(),
                ok: true,
                detail: why,
            };
            match self.manager.host_program(&sn) {
                Ok(Some(p)) if !same_path(&p, &self.target) => {
                    skipped.push(skip(format!("runs another tend, `{}`", p.display())));
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    skipped.push(skip(format!("cannot tell which tend it runs: {e}")));
                    continue;
                }
            }
            match self.manager.status(&sn) {
                Ok(st) if st.active && !st.restarting() => moving.push(name),
                Ok(st) => skipped.push(skip(format!(
                    "{}: it starts on the new tend when it next starts",
                    st.describe()
                ))),
                Err(e) => skipped.push(skip(format!("cannot ask about it: {e}"))),
            }
        }
        Ok((moving, skipped))
    }

    fn check(
        &self,
        source: &Path,
        sha: &str,
        live: Option<&str>,
        version: &str,
        services: &[String],
        skipped: &[ServiceLine],
    ) -> Result<ExitCode, CliError> {
        let mut lines = vec![format!(
            "upgrade --self would replace tend `{}` (sha256 {}) with `{}` (sha256 {}, {version})",
            self.target.display(),
            live.map_or("unreadable", short),
            source.display(),
            short(sha)
        )];
        if live == Some(sha) {
            lines.push("it already is this build: nothing would change".into());
        }
        if let Ok(Some(j)) = self.journal() {
            lines.push(format!(
                "an interrupted {} of tend ({} -> {}, step {}) would be finished first",
                j.op,
                j.from,
                j.to,
                j.step.as_str()
            ));
        }
        if services.is_empty() {
            lines.push("no installed service runs now: only the binary would be swapped".into());
        } else {
            lines.push(format!(
                "then restart each service's host on it, one at a time, and verify it ([upgrade] verify): {}",
                services.join(", ")
            ));
        }
        for s in skipped {
            lines.push(format!("left alone: `{}`: {}", s.service, s.detail));
        }
        lines.push(
            "on failure: put this tend back, restart every service moved so far on it and verify it"
                .into(),
        );
        lines.push("checked: the new tend runs (`--version`) and its directory is writable; nothing was changed".into());
        self.out().check(
            &lines,
            &serde_json::json!({
                "check": true,
                "binary": self.target,
                "from_sha256": live,
                "to_sha256": sha,
                "to_version": version,
                "services": services,
                "lines": lines,
            }),
        );
        Ok(ExitCode::SUCCESS)
    }

    fn begin(
        &self,
        op: &str,
        from: &Release,
        to: &Release,
        services: Vec<String>,
        skipped: Vec<ServiceLine>,
    ) -> Result<ExitCode, CliError> {
        for s in &skipped {
            self.step("skipped", &format!("`{}`: {}", s.service, s.detail));
        }
        let mut j = HostJournal {
            op: op.to_owned(),
            from: from.id.clone(),
            to: to.id.clone(),
            step: HostStep::Staged,
            run: HostRun {
                services: services.len(),
                ..HostRun::default()
            },
            services,
            pid: std::process::id(),
            started_at: crate::status::rfc3339(SystemTime::now()),
            reason: None,
            stderr: Vec::new(),
            end: None,
        };
        let mut out = self.drive(&mut j, HostNext::Do(HostStep::Staged))?;
        out.skipped = skipped;
        self.report(&out)
    }

    /// The journal a killed tend left: finished (undone) first, as `tend upgrade` does.
    /// Returns whether there was one.
    fn recover(&self) -> Result<bool, CliError> {
        let Some(mut j) = self
            .journal()
            .map_err(|e| self.io("cannot read the journal in", e))?
        else {
            for mut r in self.releases()? {
                if r.state == State::Staged {
                    r.state = State::Abandoned;
                    r.reason = Some("tend was interrupted while staging it".into());
                    self.save(&mut r)?;
                }
            }
            return Ok(false);
        };
        self.say(&format!(
            "found an interrupted {} of tend ({} -> {}) at step `{}` (tend pid {} was killed); finishing it",
            j.op,
            j.from,
            j.to,
            j.step.as_str(),
            j.pid
        ));
        if let Some(end) = j.end {
            self.say("it had ended; recording its end");
            self.finish(&j, end)?;
            return Ok(true);
        }
        let next = plan::next(j.step, Observed::Interrupted, &mut j.run);
        if j.reason.is_none() && !j.step.is_undo() && next != HostNext::Finish(End::Abandoned) {
            j.reason = Some(format!(
                "tend was interrupted at step `{}`; the change was undone",
                j.step.as_str()
            ));
        }
        let out = self.drive(&mut j, next)?;
        let (line, _) = end_line(&out);
        self.say(&format!("the interrupted change ended: {line}"));
        Ok(true)
    }

    /// Carries out steps from `next` until the change ends; the journal names each step
    /// before it is done.
    fn drive(&self, j: &mut HostJournal, mut next: HostNext) -> Result<HostOutcome, CliError> {
        let mut lines = Vec::new();
        let end = loop {
            let step = match next {
                HostNext::Finish(end) => break end,
                HostNext::Do(step) => step,
            };
            j.step = step;
            self.write_journal(j)?;
            super::pause_here_named(step.as_str());
            let t = Instant::now();
            let (ok, detail) = match step {
                HostStep::Staged => (true, String::new()),
                HostStep::Swap | HostStep::UndoSwap => {
                    let id = if step == HostStep::Swap {
                        &j.to
                    } else {
                        &j.from
                    };
                    let r = self.release(id)?;
                    match release::put_in_place(&self.store, &r) {
                        Ok(()) => (
                            true,
                            format!("`{}` is release {}", self.target.display(), r.id),
                        ),
                        Err(e) => (
                            false,
                            format!("could not put release {} in place: {e}", r.id),
                        ),
                    }
                }
                HostStep::Restart(i) | HostStep::UndoRestart(i) => {
                    let name = j.services.get(i).cloned().unwrap_or_default();
                    let undo = step.is_undo();
                    let (ok, detail, stderr) = self.restart(&name, undo, j);
                    if !ok && !undo {
                        j.stderr = stderr;
                    }
                    lines.push(ServiceLine {
                        service: name.clone(),
                        step: step.as_str().to_owned(),
                        ok,
                        detail: detail.clone(),
                    });
                    (ok, format!("`{name}`: {detail}"))
                }
            };
            if !ok && !step.is_undo() && j.reason.is_none() {
                j.reason = Some(detail.clone());
            }
            if step != HostStep::Staged {
                self.step(
                    step.as_str(),
                    &if ok {
                        format!("{detail} ({:.1}s)", t.elapsed().as_secs_f64())
                    } else {
                        format!("FAILED: {detail}")
                    },
                );
                if !ok {
                    for l in &j.stderr {
                        self.say(&format!("{:>14}| {l}", ""));
                    }
                }
            }
            next = plan::next(
                step,
                if ok { Observed::Done } else { Observed::Failed },
                &mut j.run,
            );
        };
        self.finish(j, end)?;
        let version = |id: &str| {
            self.store
                .release(id)
                .ok()
                .flatten()
                .and_then(|r| version_of(&self.store.program_file(&r)).ok())
        };
        Ok(HostOutcome {
            op: j.op.clone(),
            binary: self.target.clone(),
            end,
            from: j.from.clone(),
            to: j.to.clone(),
            from_version: version(&j.from),
            to_version: version(&j.to),
            services: lines,
            skipped: Vec::new(),
            reason: j.reason.clone(),
            stderr: j.stderr.clone(),
        })
    }

    /// Restarts service `name`'s host (stop: the running tend; start: the binary in place)
    /// and verifies it as `tend upgrade` verifies a release. Returns whether it passed,
    /// what happened, and the last stderr lines when it failed by exiting.
    fn restart(&self, name: &str, undo: bool, j: &HostJournal) -> (bool, String, Vec<String>) {
        // Uninstalled since the change began (a recovery may come days later): nothing
        // runs this binary there any more.
        if !place::installed_names(self.scope).is_ok_and(|n| n.iter().any(|x| x == name)) {
            return (true, "no longer installed: skipped".into(), Vec::new());
        }
        let mut cx = match Cx::open(name, self.scope, self.json, false) {
            Ok(cx) => cx,
            Err(e) => return (false, format!("cannot open the service: {e}"), Vec::new()),
        };
        // Stopped by someone since the change began: left stopped (it starts on the binary
        // in place when it next starts). An undo restarts the service whatever its state:
        // it is the one this change may have left failed.
        if !undo && cx.manager.status(&cx.name).is_ok_and(|st| !st.active) {
            return (
                true,
                "stopped since the change began: left stopped".into(),
                Vec::new(),
            );
        }
        // Never under a running `tend upgrade` of the same service: its verification would
        // judge this restart, and this one its swap. Its lock is waited for, a while.
        let _lock = match lock_within(&cx, LOCK_WAIT) {
            Ok(l) => l,
            Err(e) => return (false, e.to_string(), Vec::new()),
        };
        // The restart is told in the service's own .tend.log (and Event Log).
        cx.news = super::news::News::new(&cx.spec, self.scope == Scope::System, true);
        let which = if undo { &j.from } else { &j.to };
        cx.news.line(&format!(
            "tend's own binary {} (release {which}): restarting this service's host on it",
            if undo { "was put back" } else { "was upgraded" }
        ));
        let down = Instant::now();
        if let Err(f) = cx.manager.stop(&cx.name) {
            // A host that does not stop cleanly is still started again: what runs after
            // is what the verification judges.
            cx.news
                .line(&format!("could not stop the host: {}", f.error));
        }
        let started = SystemTime::now();
        if let Err(f) = cx.manager.start(&cx.name) {
            // The program did not run: the words are the host's own (tend's stderr, where
            // the manager keeps it), not the status file's, which is the old host's.
            let words = cx.manager.host_words(&cx.name, started);
            let first = f.error.to_string();
            let first = first.lines().next().unwrap_or_default().to_owned();
            let why = words
                .last()
                .map(|w| format!("; tend said: {w}"))
                .unwrap_or_default();
            return (false, format!("could not start: {first}{why}"), words);
        }
        let spec = cx.live_spec();
        let mut up = None;
        let step = if undo { Step::UndoVerify } else { Step::Verify };
        match cx.verify(&spec, step, Some(started), &mut up, Some(down)) {
            Ok(detail) => (
                true,
                format!(
                    "restarted, {detail}{}",
                    up.map(|d| format!("; down {:.1}s", d.as_secs_f64()))
                        .unwrap_or_default()
                ),
                Vec::new(),
            ),
            Err((why, lines)) => (false, why, lines),
        }
    }

    /// Records how the change ended in the releases, prunes, and removes the journal last.
    fn finish(&self, j: &HostJournal, end: End) -> Result<(), CliError> {
        if j.end != Some(end) {
            let mut j = j.clone();
            j.end = Some(end);
            self.write_journal(&j)?;
        }
        super::pause_here_named("end");
        self.store
            .record_end(
                &j.from,
                &j.to,
                end,
                (j.reason.as_deref(), &j.stderr),
                None,
                KEEP,
            )
            .map_err(|e| self.io("cannot record the end in", e))?;
        self.end_journal()
    }

    /// The release in place: the current one of the store if the binary is still it; else
    /// the binary in place is recorded as the current release.
    fn current(&self) -> Result<Release, CliError> {
        let live = release::sha256_file(&self.target).map_err(|e| {
            CliError::io(format!("cannot read tend `{}`", self.target.display()), e)
        })?;
        let parts = release::Parts {
            new_program: false,
            ..release::Parts::program(&self.target)
        };
        let (r, recorded) = self
            .store
            .in_place(&self.target, &live, &parts)
            .map_err(|e| self.io("cannot record the running tend in", e))?;
        if recorded {
            self.say(&format!(
                "recorded tend in place as release {} (sha256 {})",
                r.id,
                short(&r.sha256)
            ));
        }
        Ok(r)
    }

    fn lock(&self) -> Result<release::Lock, CliError> {
        self.store
            .open_locked(self.scope == Scope::System)
            .map_err(|e| {
                super::open_error(&self.store, e, |pid| {
                    format!(
                        "another `tend upgrade --self` or `tend rollback --self` is under way{pid}; wait for it to end"
                    )
                })
            })
    }

    fn journal_file(&self) -> release::JournalFile {
        release::JournalFile(self.store.dir.join(JOURNAL))
    }

    fn journal(&self) -> std::io::Result<Option<HostJournal>> {
        self.journal_file().read()
    }

    fn write_journal(&self, j: &HostJournal) -> Result<(), CliError> {
        self.journal_file()
            .write(j)
            .map_err(|e| self.io("cannot write the journal in", e))
    }

    fn end_journal(&self) -> Result<(), CliError> {
        self.journal_file()
            .remove()
            .map_err(|e| self.io("cannot remove the journal in", e))
    }

    fn releases(&self) -> Result<Vec<Release>, CliError> {
        self.store
            .releases()
            .map_err(|e| self.io("cannot read the release store", e))
    }

    fn release(&self, id: &str) -> Result<Release, CliError> {
        self.store
            .get(id)
            .map_err(|e| self.io("cannot read the release store", e))
    }

    fn save(&self, r: &mut Release) -> Result<(), CliError> {
        self.store
            .save_now(r)
            .map_err(|e| self.io("cannot write a release in", e))
    }

    fn io(&self, what: &str, e: std::io::Error) -> CliError {
        CliError::io(format!("{what} `{}`", self.store.dir.display()), e)
    }

    /// Progress: stdout, or stderr with `--json`.
    fn out(&self) -> Progress {
        Progress {
            json: self.json,
            width: 12,
        }
    }

    fn say(&self, line: &str) {
        self.out().line(line);
    }

    fn step(&self, step: &str, detail: &str) {
        self.say(&self.out().step_text(step, detail));
    }

    fn unchanged(&self, op: &str, id: &str) {
        if self.json {
            self.out().document(&serde_json::json!({
                "op": op,
                "binary": self.target,
                "end": "unchanged",
                "from": id,
                "to": id,
                "services": [],
                "reason": null,
                "stderr": [],
            }));
        }
    }

    fn report(&self, out: &HostOutcome) -> Result<ExitCode, CliError> {
        let (line, code) = end_line(out);
        self.out().end(out, &line);
        Ok(ExitCode::from(code))
    }
}

/// How many of tend's own releases are kept (besides the current and the newest previous).
const KEEP: usize = 3;

/// How long a restart waits for a service's own `tend upgrade` or `rollback` to end.
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// The service's upgrade lock, retried until `wait` has gone by.
fn lock_within(cx: &Cx<'_>, wait: Duration) -> Result<release::Lock, CliError> {
    let deadline = Instant::now() + wait;
    loop {
        match cx.lock() {
            Ok(l) => return Ok(l),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// The last line of a change of tend's binary, and its exit code (docs/cli.md: the same
/// codes as `tend upgrade`).
fn end_line(out: &HostOutcome) -> (String, u8) {
    let why = out.reason.as_deref().unwrap_or("no reason recorded");
    let n = out.services.iter().filter(|s| s.ok).count();
    match out.end {
        End::Upgraded => (
            format!(
                "{} tend `{}`: release {} in place{}",
                if out.op == "rollback" {
                    "rolled back"
                } else {
                    "upgraded"
                },
                out.binary.display(),
                out.to,
                if n == 0 {
                    String::new()
                } else {
                    format!("; {n} service{} restarted on it and verified", plural(n))
                }
            ),
            code::OK,
        ),
        End::Abandoned => (
            format!(
                "the {} of tend stopped before anything was touched; release {} is in place",
                out.op, out.from
            ),
            code::OK,
        ),
        End::RolledBack => (
            format!(
                "ROLLED BACK tend `{}`: release {} failed: {why}; release {} is in place again and every \
                 service moved was restarted on it and verified",
                out.binary.display(),
                out.to,
                out.from
            ),
            code::ROLLED_BACK,
        ),
        End::Broken => (
            format!(
                "BROKEN tend `{}`: release {} failed: {why}; release {} was put back but not every service \
                 restarted on it passed verification: see `tend status`",
                out.binary.display(),
                out.to,
                out.from
            ),
            code::UPGRADE_BROKEN,
        ),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The binary this tend runs as: the one the services were installed with (their
/// definitions name `tend`'s own path at install).
fn own_binary() -> Result<PathBuf, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::io("cannot find tend's own executable", e))?;
    // On Unix a symlink (/usr/local/bin/tend -> /opt/tend/bin/tend) is followed: the file
    // replaced is the real one, as the units name it (install writes current_exe, which
    // the kernel resolves). Windows' canonical form (\\?\C:\...) is not what the SCM holds.
    #[cfg(unix)]
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    Ok(exe)
}

/// Whether two paths name the same file: the same inode on Unix; on Windows, the same
/// path without regard to case or slashes (the SCM keeps what install wrote).
fn same_path(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
        a == b
    }
    #[cfg(not(unix))]
    {
        // The canonical forms first: a short (8.3) name, a junction or a `\\?\` prefix in
        // one of them names the same file differently.
        let norm = |p: &Path| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.to_owned())
                .to_string_lossy()
                .replace('/', "\\")
                .to_lowercase()
        };
        let plain = |p: &Path| p.to_string_lossy().replace('/', "\\").to_lowercase();
        norm(a) == norm(b) || plain(a) == plain(b)
    }
}

/// What `file --version` prints, if it is a tend: `tend 0.1.0`.
fn version_of(file: &Path) -> Result<String, String> {
    let mut child = std::process::Command::new(file)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("it does not start: {e}"))?;
    let deadline = Instant::now() + VERSION_WAIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`--version` did not answer within {}s",
                    VERSION_WAIT.as_secs()
                ));
            }
        }
    };
    // On a thread, with the deadline: a program that left a child holding its stdout would
    // keep a plain read waiting for ever.
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(mut out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut text);
            let _ = tx.send(text);
        });
    }
    let text = rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .unwrap_or_default();
    let first = text.lines().next().unwrap_or("").trim().to_owned();
    if !status.success() || !first.starts_with("tend ") {
        return Err(format!(
            "`--version` {} and printed `{first}`, not `tend <version>`",
            status
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trip() {
        let j = HostJournal {
            op: "upgrade".into(),
            from: "a".into(),
            to: "b".into(),
            step: HostStep::Restart(1),
            run: HostRun {
                services: 2,
                moved: 1,
                undo_failed: false,
            },
            services: vec!["web".into(), "api".into()],
            pid: 7,
            started_at: "now".into(),
            reason: None,
            stderr: Vec::new(),
            end: None,
        };
        let text = serde_json::to_string(&j).unwrap();
        assert!(text.contains(r#""step":"restart","service":1"#), "{text}");
        let back: HostJournal = serde_json::from_str(&text).unwrap();
        assert_eq!(back.step, HostStep::Restart(1));
        assert_eq!(back.run, j.run);
    }
}
