//! `tend upgrade`, `tend history`, `tend rollback` (docs/upgrade.md).
//!
//! The decisions are tend-core's (`upgrade::next`, `upgrade::verdict`); the store is
//! [`crate::release`]; the service is stopped and started through the install side's
//! [`ServiceManager`], as `tend stop` and `tend start` do. This file only carries the steps
//! out and says what happened: before each step, the journal names it (durably), so a
//! tend killed at any point leaves enough for the next one to finish or undo the change.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tend_core::upgrade::{self, End, Next, Observed, Rules, Step};
use tend_core::{Program, ServiceName, ServiceSpec};
use tend_os::{Access, Layout, ServiceManager};

use super::progress::Progress;
use crate::error::{CliError, code};
use crate::place::{self, Scope};
use crate::release::{self, Journal, LockError, Release, State, Store};

pub(crate) mod host;
mod news;

/// The test hook: `TEND_UPGRADE_PAUSE=<step>` makes tend stop for good right after the
/// journal names that step (before doing it), so a test can kill it there.
const PAUSE_ENV: &str = "TEND_UPGRADE_PAUSE";

/// `tend upgrade [--user] NAME [PROGRAM|DIR] [--config FILE] [--check] [--json]`.
pub(crate) fn upgrade(
    name: &str,
    program: Option<&Path>,
    config: Option<&Path>,
    check: bool,
    json: bool,
    scope: Scope,
) -> Result<ExitCode, CliError> {
    let cx = Cx::open(name, scope, json, !check)?;
    // Everything is checked before the service is touched (and before the lock, so that
    // `--check` of a service being upgraded still answers).
    let new = cx.plan(program, config)?;
    if check {
        return cx.check(&new);
    }
    let _lock = cx.lock()?;
    if let Some(out) = cx.recover()? {
        cx.say(&format!(
            "the interrupted change ended: {}; now the upgrade",
            end_word(out.end)
        ));
    }
    let from = cx.current(Some(&new))?;
    if cx.already(&new, &from) {
        cx.say(&format!(
            "`{}` already runs this build{} (release {}, sha256 {}); nothing to do",
            cx.name,
            if new.config.is_some() {
                " and config"
            } else {
                ""
            },
            from.id,
            short(&from.sha256)
        ));
        cx.unchanged("upgrade", &from.id);
        return Ok(ExitCode::SUCCESS);
    }
    let to = cx
        .store
        .stage_parts(
            &new.parts(),
            &new.target,
            // What the operator gave: the program or directory, else the config.
            Some(
                new.source
                    .as_deref()
                    .or(new.config.as_ref().map(|(p, _, _)| p.as_path()))
                    .unwrap_or(&new.program_file),
            ),
            State::Staged,
        )
        .map_err(|e| cx.io("cannot stage the new release in", e))?;
    cx.say(&format!(
        "upgrade `{}`: release {} -> {}",
        cx.name, from.id, to.id
    ));
    cx.step("staged", &format!("{} {}", to.id, new.describe(&to)));
    let mut journal = Journal::begin("upgrade", &from.id, &to.id);
    let out = cx.drive(&mut journal, Next::Do(Step::Staged))?;
    cx.report(&out)
}

/// What `tend upgrade` was given, checked: the parts of the new release.
struct New {
    /// The program file or application directory given (absolute); `None` for a config
    /// alone.
    source: Option<PathBuf>,
    /// The application directory the release goes to (the directory form).
    app: Option<PathBuf>,
    /// The program file of the release: the one given, the one in the new directory, or
    /// (a config alone) the one in place.
    program_file: PathBuf,
    /// Where the program goes: the file named by `command`.
    target: PathBuf,
    /// Its SHA-256.
    sha256: String,
    /// The directory's hash, without `preserve`'s paths.
    tree_sha256: Option<String>,
    /// The new config: its path, the installed copy it becomes, and that text's SHA-256.
    config: Option<(PathBuf, String, String)>,
    /// `[upgrade] preserve` of the new config, else of the installed one.
    preserve: Vec<String>,
}

impl New {
    fn parts(&self) -> release::Parts<'_> {
        release::Parts {
            program: &self.program_file,
            app: self.app.as_ref().and(self.source.as_deref()),
            live: self.app.as_deref(),
            preserve: &self.preserve,
            config: self.config.as_ref().map(|(_, text, _)| text.as_str()),
            new_program: self.source.is_some(),
        }
    }

    /// The staged line after the id: `(sha256 .., 7.1 MiB) from `..``, and what else.
    fn describe(&self, to: &Release) -> String {
        let mut v = Vec::new();
        match (&self.source, &self.app) {
            (Some(dir), Some(_)) => v.push(format!(
                "(directory, program sha256 {}) from `{}`",
                short(&to.sha256),
                dir.display()
            )),
            (Some(file), None) => v.push(format!(
                "(sha256 {}, {}) from `{}`",
                short(&to.sha256),
                tend_core::fmt::bytes(to.size),
                file.display()
            )),
            (None, _) => {}
        }
        if let Some((path, _, sha)) = &self.config {
            v.push(format!(
                "(config, sha256 {}) from `{}`",
                short(sha),
                path.display()
            ));
        }
        v.join(" and ")
    }
}

/// `tend rollback [--user] NAME [--to ID]`: the same flow, to a release in the store.
pub(crate) fn rollback(
    name: &str,
    to: Option<&str>,
    json: bool,
    scope: Scope,
) -> Result<ExitCode, CliError> {
    let cx = Cx::open(name, scope, json, true)?;
    let _lock = cx.lock()?;
    if let Some(out) = cx.recover()? {
        // The interrupted change was undone: that was the rollback asked for, unless a
        // release was named.
        if to.is_none() {
            return cx.report(&out);
        }
    }
    // The target first: a rollback with nowhere to go must not even record the program.
    let releases = cx.releases()?;
    let target = match to {
        Some(id) => releases.iter().find(|r| r.id == id).ok_or_else(|| {
            CliError::Invalid(format!(
                "`{}` has no release `{id}`; `tend history{} {}` lists them",
                cx.name,
                cx.scope.flag(),
                cx.name
            ))
        })?,
        None => releases
            .iter()
            .rev()
            .find(|r| r.state == State::Previous)
            .ok_or_else(|| {
                CliError::Invalid(format!(
                    "`{}` has no previous release to go back to; `tend history{} {}` lists its releases (name one with --to)",
                    cx.name,
                    cx.scope.flag(),
                    cx.name
                ))
            })?,
    }
    .clone();
    let from = cx.current(None)?;
    if target.id == from.id
        || (target.sha256 == from.sha256
            && target.tree_sha256 == from.tree_sha256
            && target.config_sha256 == from.config_sha256)
    {
        cx.say(&format!(
            "`{}` already runs release {} (sha256 {}); nothing to do",
            cx.name,
            target.id,
            short(&target.sha256)
        ));
        cx.unchanged("rollback", &target.id);
        return Ok(ExitCode::SUCCESS);
    }
    cx.movable("rolling back")?;
    cx.say(&format!(
        "rollback `{}`: release {} -> {}",
        cx.name, from.id, target.id
    ));
    let mut journal = Journal::begin("rollback", &from.id, &target.id);
    let out = cx.drive(&mut journal, Next::Do(Step::Staged))?;
    cx.report(&out)
}

/// `tend history [--user] NAME [--json]`: the releases, oldest first. Finishes an
/// interrupted change first (so what it shows is what is).
pub(crate) fn history(name: &str, json: bool, scope: Scope) -> Result<ExitCode, CliError> {
    let cx = Cx::open(name, scope, json, true)?;
    {
        let _lock = cx.lock()?;
        if let Some(out) = cx.recover()? {
            // Said on stderr: stdout is the history.
            let _ = writeln!(
                std::io::stderr(),
                "the interrupted change ended: {}{}",
                end_word(out.end),
                out.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
    }
    let releases = cx.releases()?;
    show_releases(
        cx.name.as_str(),
        &cx.target,
        &releases,
        json,
        &format!(
            "`{}` has no releases yet: `tend upgrade{} {} <program>` makes the first",
            cx.name,
            cx.scope.flag(),
            cx.name
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// `tend history`'s output, of a service's releases or of tend's own (`--self`).
fn show_releases(service: &str, program: &Path, releases: &[Release], json: bool, empty: &str) {
    let mut out = std::io::stdout().lock();
    if json {
        #[derive(Serialize)]
        struct History<'a> {
            service: &'a str,
            program: &'a Path,
            releases: &'a [Release],
        }
        let _ = serde_json::to_writer_pretty(
            &mut out,
            &History {
                service,
                program,
                releases,
            },
        );
        let _ = writeln!(out);
        return;
    }
    if releases.is_empty() {
        let _ = writeln!(out, "{empty}");
        return;
    }
    let _ = writeln!(
        out,
        "{:<28} {:<9} {:<14} {:<19} {:<12} {:>10}  NOTE",
        "ID", "STATE", "KIND", "CREATED", "SHA256", "SIZE"
    );
    for r in releases {
        let note = match (&r.reason, r.downtime_ms, &r.source) {
            (Some(why), _, _) => why.clone(),
            (None, Some(ms), _) => format!("downtime {}", secs(Duration::from_millis(ms))),
            (None, None, None) => "found in place".to_owned(),
            (None, None, Some(s)) => format!("from {}", s.display()),
        };
        let _ = writeln!(
            out,
            "{:<28} {:<9} {:<14} {:<19} {:<12} {:>10}  {note}",
            r.id,
            r.state.as_str(),
            r.kind,
            // Local time to the second: the id has the UTC one.
            r.created_at.get(..19).unwrap_or(&r.created_at),
            short(&r.sha256),
            tend_core::fmt::bytes(r.size)
        );
        for l in &r.stderr {
            let _ = writeln!(out, "{:>30}| {l}", "");
        }
    }
}

/// `tend upgrade-recover [--user] NAME`, hidden: what the service's start runs first
/// (systemd `ExecStartPre=+`, as root: the store is root's). Ends an upgrade or rollback a
/// killed tend left unfinished, before the program starts: the service is starting, so
/// nothing is stopped, started or verified here; the release that ran before is put back
/// in place (whether the interrupted one would have passed is unknown; the old one is
/// known to work), and the start goes on with it. It never fails the start: what it
/// cannot do is said on stderr (the journal), and the next `tend` command tries again.
pub(crate) fn recover_at_start(name: &str, scope: Scope) -> Result<ExitCode, CliError> {
    recover_at_start_with(name, scope, &|line: &str| {
        let _ = writeln!(std::io::stderr(), "{line}");
    });
    Ok(ExitCode::SUCCESS)
}

/// [`recover_at_start`], saying what it does through `say`: the Windows SCM host calls it
/// before it supervises (there is no `ExecStartPre=`; its lines go to the Event Log). A
/// host whose account may not read the store (any but LocalSystem: the store is
/// Administrators' and SYSTEM's) finds no journal and goes on; the next `tend` command
/// ends the change then.
pub(crate) fn recover_at_start_with(name: &str, scope: Scope, say: &dyn Fn(&str)) {
    let Some(store) = place::service_name(name)
        .ok()
        .and_then(|n| place::place(scope, &n).ok())
        .map(|p| Store::new(p.releases_dir()))
    else {
        return;
    };
    // The common case, and cheap: no change under way.
    if !matches!(store.journal(), Ok(Some(_))) {
        return;
    }
    let _lock = match store.lock() {
        Ok(l) => l,
        // The tend that holds the lock is the one starting the service (its swap is done):
        // it goes on with the change itself.
        Err(LockError::Busy(pid)) => {
            say(&format!(
                "an upgrade or rollback of `{name}` is under way{}; it goes on",
                pid.map(|p| format!(" (tend pid {p})")).unwrap_or_default()
            ));
            return;
        }
        Err(LockError::Io(e)) => {
            say(&format!(
                "warning: cannot lock `{}`: {e}; an interrupted upgrade of `{name}` is left to the next `tend` command",
                store.lock_path().display()
            ));
            return;
        }
    };
    let result = Cx::open(name, scope, true, false).and_then(|mut cx| {
        cx.echo = Some(say);
        // The end is told (the service's .tend.log, metrics, the alert, waited for briefly:
        // the service is starting); the lines go through `say` (the journal, or the
        // Windows host's Event Log), so not through news' Event Log too.
        cx.news = news::News::new(&cx.spec, false, true).alert_wait(news::AT_START_ALERT_WAIT);
        cx.recover_files()
    });
    if let Err(e) = result {
        say(&format!(
            "warning: the interrupted upgrade of `{name}` could not be ended at the start: {e}; \
             `tend history{} {name}` tries again",
            scope.flag()
        ));
    }
}

/// What the one service being changed needs.
struct Cx<'a> {
    name: ServiceName,
    scope: Scope,
    layout: Layout,
    spec: ServiceSpec,
    /// The program file named by `command`.
    target: PathBuf,
    store: Store,
    manager: Box<dyn ServiceManager>,
    json: bool,
    /// The lines and the end, told to the service's log, Event Log and `[notify]`.
    news: news::News,
    /// Where progress goes instead of stdout/stderr (the SCM host's recovery: its Event Log).
    echo: Option<&'a dyn Fn(&str)>,
}

/// How a change ended, and what it measured.
#[derive(Debug, Serialize)]
struct Outcome {
    service: String,
    op: String,
    end: End,
    from: String,
    to: String,
    /// From the stop to the program running again (the new release, or the old one after
    /// a roll-back).
    downtime_ms: Option<u64>,
    /// Why `to` failed.
    reason: Option<String>,
    /// `to`'s last stderr lines when it failed by exiting.
    stderr: Vec<String>,
    /// Each step, in order.
    steps: Vec<StepLine>,
}

#[derive(Debug, Serialize)]
struct StepLine {
    step: Step,
    ok: bool,
    secs: f64,
    detail: String,
}

impl Cx<'_> {
    /// The installed service `name`, its config copy and its store. `rights`: the verb
    /// changes something (not `--check`), so it needs what `tend stop` needs.
    fn open(name: &str, scope: Scope, json: bool, rights: bool) -> Result<Self, CliError> {
        if rights {
            super::service::check_rights("upgrade", scope)?;
        }
        let (name, layout) = super::target::installed(name, scope)?;
        let spec = tend_config::load(&layout.config, &place::load_options(scope)?)?.spec;
        let target = match &spec.command.program {
            Program::Path(p) => p.clone(),
            Program::Search(p) => {
                return Err(CliError::Invalid(format!(
                    "cannot upgrade `{name}`: its `command` runs `{p}`, found on PATH, not a file tend \
                     can replace; give the program's path in `command` (e.g. [\"/opt/{name}/{name}\"]) \
                     and reinstall"
                )));
            }
        };
        let store = Store::new(layout.releases_dir());
        let manager = crate::os::manager(scope, Access::Check)?;
        // `--check` tells nobody: it changes nothing, not even a log.
        let news = news::News::new(&spec, scope == Scope::System, rights);
        Ok(Self {
            name,
            scope,
            layout,
            spec,
            target,
            store,
            manager,
            json,
            news,
            echo: None,
        })
    }

    /// Checks what `tend upgrade` was given, changing nothing: a program file that this
    /// OS runs, or an application directory with one where `command` names it, a config
    /// valid and for this service; the directories tend writes in writable, on the store's
    /// volume for a directory.
    fn plan(&self, program: Option<&Path>, config: Option<&Path>) -> Result<New, CliError> {
        let refuse = |why: String| {
            CliError::Invalid(format!(
                "not upgrading `{}`: {why}; nothing was changed",
                self.name
            ))
        };
        let mut preserve = self.spec.upgrade.preserve.clone();
        let mut target = self.target.clone();
        let mut new_config = None;
        if let Some(path) = config {
            let loaded = tend_config::load(path, &place::load_options(self.scope)?)?;
            let spec = &loaded.spec;
            if spec.name != self.name {
                return Err(refuse(format!(
                    "`{}` is the config of `{}`, not of `{}` (its `name`); give `{}`'s config",
                    path.display(),
                    spec.name,
                    self.name,
                    self.name
                )));
            }
            if !loaded.warnings.is_empty() {
                let mut err = std::io::stderr().lock();
                for w in &loaded.warnings {
                    let _ = writeln!(err, "{}", w.display_in(&spec.config_path));
                }
                return Err(refuse(format!(
                    "fix the problems of `{}` above first",
                    path.display()
                )));
            }
            let Program::Path(p) = &spec.command.program else {
                return Err(refuse(format!(
                    "`{}`'s `command` runs a program found on PATH, not a file tend can replace;                      give the program's path",
                    path.display()
                )));
            };
            if program.is_some() && *p != self.target {
                return Err(refuse(format!(
                    "`{}`'s `command` runs `{}`, the installed one `{}`: with a new program or                      directory the program's path must stay; change it with a config alone first",
                    path.display(),
                    p.display(),
                    self.target.display()
                )));
            }
            target.clone_from(p);
            preserve.clone_from(&spec.upgrade.preserve);
            let original = std::fs::read_to_string(path)
                .map_err(|e| CliError::io(format!("cannot read `{}`", path.display()), e))?;
            let text = tend_os::installed_text(spec, &original)
                .map_err(|e| refuse(format!("`{}`: {e}", path.display())))?;
            let sha = release::sha256_bytes(text.as_bytes());
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
            new_config = Some((abs, text, sha));
        }
        let Some(program) = program else {
            let sha256 = release::sha256_file(&target).map_err(|e| {
                CliError::io(format!("cannot read the program `{}`", target.display()), e)
            })?;
            return Ok(New {
                source: None,
                app: None,
                program_file: target.clone(),
                target,
                sha256,
                tree_sha256: None,
                config: new_config,
                preserve,
            });
        };
        let source = std::path::absolute(program).unwrap_or_else(|_| program.to_owned());
        if source.is_dir() {
            return self.plan_app(program, source, new_config, preserve);
        }
        release::check_runnable(&source)
            .map_err(|why| refuse(format!("`{}` {why}", program.display())))?;
        let target_dir = self.target.parent().unwrap_or(Path::new("/"));
        release::check_writable(target_dir).map_err(|why| {
            refuse(format!(
                "{why} (the program `{}` is replaced there)",
                self.target.display()
            ))
        })?;
        self.movable("upgrading")?;
        let sha256 = release::sha256_file(&source)
            .map_err(|e| CliError::io(format!("cannot read `{}`", source.display()), e))?;
        Ok(New {
            source: Some(source.clone()),
            app: None,
            program_file: source,
            target,
            sha256,
            tree_sha256: None,
            config: new_config,
            preserve,
        })
    }

    /// The directory form's checks (docs/upgrade.md): the application directory is the
    /// one holding `command`'s program, a directory of its own, on the store's volume,
    /// in a writable parent; the new directory holds a runnable program of that name.
    fn plan_app(
        &self,
        given: &Path,
        source: PathBuf,
        config: Option<(PathBuf, String, String)>,
        preserve: Vec<String>,
    ) -> Result<New, CliError> {
        let refuse = |why: String| {
            CliError::Invalid(format!(
                "not upgrading `{}`: {why}; nothing was changed",
                self.name
            ))
        };
        let live = self.target.parent().unwrap_or(Path::new("/")).to_owned();
        tend_core::upgrade::app::swappable(&live).map_err(|why| {
            refuse(format!(
                "`{}` is a directory, so it would replace the directory holding `command`'s program                  `{}`, but {why}",
                given.display(),
                self.target.display()
            ))
        })?;
        if !live.is_dir() {
            return Err(refuse(format!(
                "the application directory `{}` is not a directory",
                live.display()
            )));
        }
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
        if canon(&source) == canon(&live) {
            return Err(refuse(format!(
                "`{}` is the application directory in place; give the new build's directory",
                given.display()
            )));
        }
        if canon(&source).starts_with(canon(&self.store.dir)) {
            return Err(refuse(format!(
                "`{}` is inside tend's release store; use `tend rollback --to ID`",
                given.display()
            )));
        }
        let file = self
            .target
            .file_name()
            .map_or_else(|| "program".into(), |f| f.to_owned());
        let program_file = source.join(&file);
        release::check_runnable(&program_file).map_err(|why| {
            refuse(format!(
                "`{}` (the program `command` names, in the new directory) {why}",
                program_file.display()
            ))
        })?;
        let parent = live.parent().unwrap_or(Path::new("/"));
        release::check_writable(parent).map_err(|why| {
            refuse(format!(
                "{why} (the application directory `{}` is swapped there by renames)",
                live.display()
            ))
        })?;
        for (a, b, what) in [
            (&live, parent, "its parent directory (it is a mount point)"),
            (&live, self.store.dir.as_path(), "tend's release store"),
        ] {
            let same = release::same_volume(a, b)
                .map_err(|e| CliError::io(format!("cannot look at `{}`", a.display()), e))?;
            if !same {
                return Err(refuse(format!(
                    "the application directory `{}` is on another volume than {what} `{}`; the                      directory form swaps directories by renames on one volume (replace the                      program file alone instead: `tend upgrade{} {} {}`)",
                    live.display(),
                    b.display(),
                    self.scope.flag(),
                    self.name,
                    program_file.display()
                )));
            }
        }
        let sha256 = release::sha256_file(&program_file)
            .map_err(|e| CliError::io(format!("cannot read `{}`", program_file.display()), e))?;
        let tree = release::tree_sha256_of(&source, &preserve)
            .map_err(|e| CliError::io(format!("cannot read `{}`", source.display()), e))?;
        Ok(New {
            source: Some(source),
            app: Some(live),
            program_file,
            target: self.target.clone(),
            sha256,
            tree_sha256: Some(tree),
            config,
            preserve,
        })
    }

    /// Whether the release in place already is what `new` would put there.
    fn already(&self, new: &New, from: &Release) -> bool {
        let program_same = match (&new.source, &new.tree_sha256) {
            (None, _) => true,
            (Some(_), Some(tree)) => from.tree_sha256.as_ref() == Some(tree),
            (Some(_), None) => from.sha256 == new.sha256,
        };
        let config_same = new.config.as_ref().is_none_or(|(_, text, _)| {
            std::fs::read_to_string(&self.layout.config).is_ok_and(|t| t == *text)
        });
        program_same && config_same
    }

    /// The spec of the config in place now (after a config was swapped, the new one's).
    fn live_spec(&self) -> ServiceSpec {
        self.scope_opts()
            .and_then(|o| tend_config::load(&self.layout.config, &o).ok())
            .map_or_else(|| self.spec.clone(), |l| l.spec)
    }

    fn scope_opts(&self) -> Option<tend_config::LoadOptions> {
        place::load_options(self.scope).ok()
    }

    /// Puts release `r` in place, whatever an interrupted step left: its application
    /// directory (renames), its program file, its config with the service definition.
    /// `other`: the release the change comes from or goes to. `forward`: the swap of the
    /// change (not its undo): `preserve`'s paths are carried over into a directory.
    fn put(&self, r: &Release, other: Option<&Release>, forward: bool) -> Result<String, String> {
        let mut what = Vec::new();
        if let Some(live) = r
            .app
            .as_ref()
            .or_else(|| other.and_then(|o| o.app.as_ref()))
        {
            let preserve = self.release_spec(r).upgrade.preserve;
            let moved = release::put_app_in_place(
                &self.store,
                live,
                r,
                other,
                forward.then_some(preserve.as_slice()),
            )
            .map_err(|e| e.to_string())?;
            if moved || r.app.is_some() {
                what.push(format!("`{}` is release {}", live.display(), r.id));
            }
        }
        if self.store.program_file(r).exists() {
            release::put_in_place(&self.store, r).map_err(|e| e.to_string())?;
            if what.is_empty() {
                what.push(format!("`{}` is release {}", r.target.display(), r.id));
            }
        }
        if r.config_sha256.is_some() && self.put_config(r)? {
            what.push(format!(
                "the config copy and the service definition are release {}'s",
                r.id
            ));
        }
        if what.is_empty() {
            what.push(format!("release {} is in place", r.id));
        }
        Ok(what.join("; "))
    }

    /// A release's config, through `tend install`'s update (config copy, service
    /// definition; the service is stopped, and stays so). Returns whether it changed.
    fn put_config(&self, r: &Release) -> Result<bool, String> {
        let path = self.store.config_file(&r.id);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let opts = self
            .scope_opts()
            .ok_or_else(|| "cannot tell where logs go".to_owned())?;
        let loaded = tend_config::parse(&text, &self.layout.config, &opts)
            .map_err(|e| format!("release {}'s config is not valid: {e}", r.id))?;
        let same_copy = std::fs::read_to_string(&self.layout.config).is_ok_and(|t| t == text);
        let install = tend_os::Install {
            spec: &loaded.spec,
            original: &text,
            leave_running: true,
        };
        let same_definition = self
            .manager
            .definition_diff(&install)
            .is_ok_and(|d| d.is_some_and(|d| d.is_empty()));
        if same_copy && same_definition {
            return Ok(false);
        }
        self.manager
            .install(&install)
            .map_err(|f| format!("could not install release {}'s config: {}", r.id, f.error))?;
        Ok(true)
    }

    /// The spec a release runs with: its own config's, else the one in place.
    fn release_spec(&self, r: &Release) -> ServiceSpec {
        if r.config_sha256.is_some()
            && let Ok(text) = std::fs::read_to_string(self.store.config_file(&r.id))
            && let Some(o) = self.scope_opts()
            && let Ok(l) = tend_config::parse(&text, &self.layout.config, &o)
        {
            return l.spec;
        }
        self.live_spec()
    }

    fn io(&self, what: &str, e: std::io::Error) -> CliError {
        CliError::io(format!("{what} `{}`", self.store.dir.display()), e)
    }

    fn lock(&self) -> Result<release::Lock, CliError> {
        self.store
            .open_locked(self.scope == Scope::System)
            .map_err(|e| {
                open_error(&self.store, e, |pid| {
                    format!(
                        "another `tend upgrade` or `tend rollback` of `{}` is under way{pid}; wait for it to end \
                         (`tend history{} {}` shows the releases then)",
                        self.name,
                        self.scope.flag(),
                        self.name
                    )
                })
            })
    }

    /// Refuses, before the service is stopped, a program file another process holds so
    /// that Windows would not let it be replaced (release::swap).
    fn movable(&self, verb: &str) -> Result<(), CliError> {
        release::swap::check_movable(&self.target, release::swap::IN_USE_WAIT).map_err(|e| {
            CliError::Invalid(format!(
                "not {verb} `{}`: {e}; nothing was changed",
                self.name
            ))
        })
    }

    fn releases(&self) -> Result<Vec<Release>, CliError> {
        self.store
            .releases()
            .map_err(|e| self.io("cannot read the release store", e))
    }

    /// Progress: stdout, or stderr with `--json` (stdout is the result then).
    fn say(&self, line: &str) {
        self.news.line(line);
        match self.echo {
            Some(echo) => echo(line),
            None => self.out().line(line),
        }
    }

    fn out(&self) -> Progress {
        Progress {
            json: self.json,
            width: 11,
        }
    }

    /// With `--json`, the result of a change that had nothing to do: a tool reading stdout
    /// (the Ansible fleet example reports `changed` from `end`) must get a document, not
    /// nothing.
    fn unchanged(&self, op: &str, id: &str) {
        if self.json {
            self.out().document(&serde_json::json!({
                    "service": self.name.as_str(),
                    "op": op,
                    "end": "unchanged",
                    "from": id,
                    "to": id,
                    "downtime_ms": null,
                    "reason": null,
                    "stderr": [],
                    "steps": [],
            }));
        }
    }

    fn step(&self, step: &str, detail: &str) {
        self.say(&self.out().step_text(step, detail));
    }

    /// The release in place: the current one of the store if the program file is still
    /// it; else the file in place is recorded as the current release (the first upgrade,
    /// or a file replaced by hand since). For an upgrade (`new`), the release in place gets
    /// what undoing it needs: its application directory's path (the directory form) and
    /// the config in place (with `--config`).
    fn current(&self, new: Option<&New>) -> Result<Release, CliError> {
        let live = release::sha256_file(&self.target).map_err(|e| {
            CliError::io(
                format!(
                    "cannot read the program `{}` of `{}`",
                    self.target.display(),
                    self.name
                ),
                e,
            )
        })?;
        let app = new.and_then(|n| n.app.as_deref());
        let parts = release::Parts {
            live: app,
            preserve: new.map_or(&[][..], |n| n.preserve.as_slice()),
            new_program: false,
            ..release::Parts::program(&self.target)
        };
        let (mut r, recorded) = self
            .store
            .in_place(&self.target, &live, &parts)
            .map_err(|e| self.io("cannot record the running program in", e))?;
        if recorded {
            self.say(&format!(
                "recorded the {} in place as release {} (sha256 {})",
                if app.is_some() {
                    "application directory"
                } else {
                    "program"
                },
                r.id,
                short(&r.sha256)
            ));
        }
        if let Some(live) = app
            && r.app.is_none()
        {
            r.app = Some(live.to_owned());
            r.tree_sha256 =
                release::tree_sha256_of(live, &new.map(|n| n.preserve.clone()).unwrap_or_default())
                    .ok();
            self.save(&mut r)?;
        }
        if new.is_some_and(|n| n.config.is_some()) && r.config_sha256.is_none() {
            let text = std::fs::read_to_string(&self.layout.config).map_err(|e| {
                CliError::io(format!("cannot read `{}`", self.layout.config.display()), e)
            })?;
            self.store
                .add_config(&mut r, &text)
                .map_err(|e| self.io("cannot record the config in place in", e))?;
        }
        Ok(r)
    }

    fn save(&self, r: &mut Release) -> Result<(), CliError> {
        self.store
            .save_now(r)
            .map_err(|e| self.io("cannot write a release in", e))
    }

    fn release(&self, id: &str) -> Result<Release, CliError> {
        self.store
            .get(id)
            .map_err(|e| self.io("cannot read the release store", e))
    }

    /// `--check`: what an upgrade would do; nothing is written.
    fn check(&self, new: &New) -> Result<ExitCode, CliError> {
        let u = &self.spec.upgrade;
        let live = release::sha256_file(&self.target).ok();
        let mut lines = Vec::new();
        match (&new.source, &new.app) {
            (Some(dir), Some(app)) => lines.push(format!(
                "upgrade `{}` would replace the application directory `{}` with a copy of `{}` \
                 (program sha256 {} -> {}), carrying over {}",
                self.name,
                app.display(),
                dir.display(),
                live.as_deref().map_or("unreadable", short),
                short(&new.sha256),
                if new.preserve.is_empty() {
                    "nothing ([upgrade] preserve is empty)".to_owned()
                } else {
                    new.preserve.join(", ")
                }
            )),
            (Some(file), None) => lines.push(format!(
                "upgrade `{}` would replace `{}` (sha256 {}) with `{}` (sha256 {})",
                self.name,
                self.target.display(),
                live.as_deref().map_or("unreadable", short),
                file.display(),
                short(&new.sha256)
            )),
            (None, _) => {}
        }
        if let Some((path, text, _)) = &new.config {
            let old = std::fs::read_to_string(&self.layout.config).unwrap_or_default();
            let diff = tend_os::diff_lines(&old, text);
            lines.push(format!(
                "upgrade `{}` would put `{}` in place of the config copy `{}` and update the service \
                 definition ({} changed lines)",
                self.name,
                path.display(),
                self.layout.config.display(),
                diff.len()
            ));
            lines.extend(diff.iter().map(|l| format!("    {l}")));
        }
        if live.as_deref() == Some(new.sha256.as_str()) && new.source.is_some() && new.app.is_none()
        {
            lines.push("it already runs this build: nothing would change".into());
        }
        if let Ok(Some(j)) = self.store.journal() {
            lines.push(format!(
                "an interrupted {} ({} -> {}, step {}) would be finished first",
                j.op,
                j.from,
                j.to,
                j.step.as_str()
            ));
        }
        lines.push(format!(
            "steps: stage in `{}`, stop (graceful, [stop] timeout {}), swap, start, verify for {}: {}",
            self.store.dir.display(),
            tend_core::fmt::duration(self.spec.stop.timeout),
            tend_core::fmt::duration(u.verify),
            rules_text(&self.spec)
        ));
        lines.push(format!(
            "on failure: stop, put the running release back, start, verify it; keep {} releases",
            u.keep
        ));
        lines.push(
            match (&new.source, &new.app, &new.config) {
                (Some(_), Some(_), _) => "checked: the directory's program is runnable, the application directory can be swapped",
                (Some(_), None, _) => "checked: the program is runnable and its directory is writable",
                (None, _, _) => "checked: the config is valid for this service",
            }
            .to_owned()
                + "; nothing was changed",
        );
        // Not through `say`: --check tells nobody, only the terminal.
        self.out().check(
            &lines,
            &serde_json::json!({
                "service": self.name.as_str(),
                "check": true,
                "target": self.target,
                "app": new.app,
                "config": new.config.as_ref().map(|(p, _, _)| p),
                "from_sha256": live,
                "to_sha256": new.sha256,
                "lines": lines,
            }),
        );
        Ok(ExitCode::SUCCESS)
    }

    /// The journal of a change a killed tend left: finishes or undoes it (the lock is
    /// held). `None` when there was none.
    fn recover(&self) -> Result<Option<Outcome>, CliError> {
        let Some(mut j) = self
            .store
            .journal()
            .map_err(|e| self.io("cannot read the journal in", e))?
        else {
            self.abandon_orphans()?;
            return Ok(None);
        };
        self.found(&j, "finishing it");
        let out = match j.end {
            Some(end) => {
                self.say("it had ended; recording and telling its end");
                let out = self.outcome(&j, end, j.stderr.clone(), None);
                self.finish(&j, &out, None)?;
                out
            }
            None => {
                let next = upgrade::next(j.step, Observed::Interrupted);
                if j.reason.is_none() && !j.step.is_undo() && next != Next::Finish(End::Abandoned) {
                    j.reason = Some(format!(
                        "tend was interrupted at step `{}`; the change was undone",
                        j.step.as_str()
                    ));
                }
                self.drive(&mut j, next)?
            }
        };
        Ok(Some(out))
    }

    /// The recovery of the service's start ([`recover_at_start`]; the lock is held): the
    /// journal's change is ended at the file level, with the release that ran before put
    /// back. Only the files: the service is being started by its manager.
    fn recover_files(&self) -> Result<(), CliError> {
        let Some(mut j) = self
            .store
            .journal()
            .map_err(|e| self.io("cannot read the journal in", e))?
        else {
            return Ok(());
        };
        self.found(&j, "the service's start ends it");
        if let Some(end) = j.end {
            self.say("it had ended; recording and telling its end");
            return self.finish(&j, &self.outcome(&j, end, j.stderr.clone(), None), None);
        }
        let to = self.store.release(&j.to).ok().flatten();
        if upgrade::at_start(j.step) == End::Abandoned {
            self.say("it was interrupted before the service was touched: abandoned");
            return self.finish(
                &j,
                &self.outcome(&j, End::Abandoned, Vec::new(), None),
                None,
            );
        }
        let from = self.release(&j.from)?;
        let detail = self.put(&from, to.as_ref(), false).map_err(|e| {
            CliError::io(
                format!("could not put release {} back in place", from.id),
                std::io::Error::other(e),
            )
        })?;
        self.say(&format!("  undo-swap   {detail}"));
        if j.reason.is_none() && !j.step.is_undo() {
            j.reason = Some(format!(
                "tend was interrupted at step `{}`; the service's start undid the change",
                j.step.as_str()
            ));
        }
        self.say(&format!(
            "the {} of `{}` was undone: release {} is in place again and starts now",
            j.op, self.name, from.id
        ));
        self.finish(
            &j,
            &self.outcome(&j, End::RolledBack, j.stderr.clone(), None),
            None,
        )
    }

    /// The first line of a recovery: what was found.
    fn found(&self, j: &Journal, then: &str) {
        self.say(&format!(
            "found an interrupted {} of `{}` ({} -> {}) at step `{}` (tend pid {} was killed); {then}",
            j.op,
            self.name,
            j.from,
            j.to,
            j.step.as_str(),
            j.pid
        ));
    }

    /// A release left `staged` with no journal naming it: tend was killed after staging
    /// it, before the journal's first step; the service was never touched.
    fn abandon_orphans(&self) -> Result<(), CliError> {
        for mut r in self.releases()? {
            if r.state == State::Staged {
                r.state = State::Abandoned;
                r.reason = Some("tend was interrupted while staging it".into());
                self.save(&mut r)?;
            }
        }
        Ok(())
    }

    /// Carries out steps from `next` until the change ends; the journal names each step
    /// before it is done, and goes when the releases say how it ended.
    fn drive(&self, j: &mut Journal, mut next: Next) -> Result<Outcome, CliError> {
        let mut down_since: Option<Instant> = None;
        let mut up_after: Option<Duration> = None;
        let mut started: Option<SystemTime> = None;
        let mut steps = Vec::new();
        let end = loop {
            let step = match next {
                Next::Finish(end) => break end,
                Next::Do(step) => step,
            };
            j.step = step;
            self.store
                .write_journal(j)
                .map_err(|e| self.io("cannot write the journal in", e))?;
            pause_here(step);
            let t = Instant::now();
            let (ok, detail) = match step {
                Step::Staged => (true, String::new()),
                Step::Stop | Step::UndoStop => {
                    down_since.get_or_insert_with(Instant::now);
                    up_after = None;
                    match self.manager.stop(&self.name) {
                        Ok(_) => (true, "stopped".to_owned()),
                        Err(f) => (false, format!("could not stop: {}", f.error)),
                    }
                }
                Step::Swap | Step::UndoSwap => {
                    let forward = step == Step::Swap;
                    let (id, other) = if forward {
                        (&j.to, &j.from)
                    } else {
                        (&j.from, &j.to)
                    };
                    let r = self.release(id)?;
                    let other = self.store.release(other).ok().flatten();
                    match self.put(&r, other.as_ref(), forward) {
                        Ok(detail) => (true, detail),
                        Err(e) => (
                            false,
                            format!("could not put release {} in place: {e}", r.id),
                        ),
                    }
                }
                Step::Start | Step::UndoStart => {
                    started = Some(SystemTime::now());
                    match self.manager.start(&self.name) {
                        Ok(_) => (true, "started".to_owned()),
                        Err(f) => {
                            let (why, lines) = self.last_exit();
                            let why = why
                                .map(|w| format!(" (the program {w})"))
                                .unwrap_or_default();
                            if step == Step::Start {
                                j.stderr = lines;
                            }
                            (false, format!("could not start: {}{why}", f.error))
                        }
                    }
                }
                Step::Verify | Step::UndoVerify => {
                    // The config in place decides (a new release's config, once swapped).
                    let spec = self.live_spec();
                    self.step(
                        step.as_str(),
                        &format!(
                            "watching for {}: {}",
                            tend_core::fmt::duration(spec.upgrade.verify),
                            rules_text(&spec)
                        ),
                    );
                    match self.verify(&spec, step, started, &mut up_after, down_since) {
                        Ok(detail) => (true, detail),
                        Err((why, lines)) => {
                            if step == Step::Verify {
                                j.stderr = lines;
                            }
                            (false, why)
                        }
                    }
                }
            };
            if !ok && !step.is_undo() && j.reason.is_none() {
                j.reason = Some(detail.clone());
            }
            if step != Step::Staged {
                self.step(
                    step.as_str(),
                    &if ok {
                        format!("{detail} ({})", secs(t.elapsed()))
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
            steps.push(StepLine {
                step,
                ok,
                secs: t.elapsed().as_secs_f64(),
                detail,
            });
            next = upgrade::next(step, if ok { Observed::Done } else { Observed::Failed });
        };
        let mut out = self.outcome(j, end, j.stderr.clone(), up_after);
        out.steps = steps;
        self.finish(j, &out, up_after)?;
        Ok(out)
    }

    /// The end of a change, told: its line to the service's log (and Event Log), its
    /// result to the store's results (for metrics), its alert to `[notify]`.
    fn tell_end(&self, out: &Outcome) {
        let (line, _) = self.end_line(out);
        self.news.line(&line);
        if let Err(e) = release::results::append(
            &self.store.dir,
            out.op.as_str(),
            out.end,
            &out.from,
            &out.to,
        )
        .and_then(|()| release::results::publish(&self.store.dir, &self.layout.state_dir))
        {
            let _ = writeln!(
                std::io::stderr(),
                "warning: cannot record the result for metrics: {e}"
            );
        }
        self.news.end(out, &line);
    }

    /// Ends a change: records how it ended in the releases, prunes, tells it (log, metrics,
    /// alert: [`Cx::tell_end`]), and removes the journal last. A tend killed before the
    /// journal goes leaves it for the next one, which finds the end recorded and tells it
    /// again: an alert may come twice, never not at all.
    fn finish(
        &self,
        j: &Journal,
        out: &Outcome,
        downtime: Option<Duration>,
    ) -> Result<(), CliError> {
        // The end first, in the journal: a recovery then records and tells this end, not
        // one guessed from the releases (a broken end marks `to` failed, as a roll-back
        // does; a rollback to a failed release starts with `to` failed).
        if j.end != Some(out.end) {
            let mut j = j.clone();
            j.end = Some(out.end);
            self.store
                .write_journal(&j)
                .map_err(|e| self.io("cannot write the journal in", e))?;
        }
        pause_here_named("end");
        self.record_end(j, out.end, downtime)?;
        self.tell_end(out);
        self.end_journal()
    }

    fn end_journal(&self) -> Result<(), CliError> {
        self.store
            .end_journal()
            .map_err(|e| self.io("cannot remove the journal in", e))
    }

    /// Records how the change ended in the releases and prunes to `[upgrade] keep`.
    fn record_end(
        &self,
        j: &Journal,
        end: End,
        downtime: Option<Duration>,
    ) -> Result<(), CliError> {
        self.store
            .record_end(
                &j.from,
                &j.to,
                end,
                (j.reason.as_deref(), &j.stderr),
                downtime,
                usize::try_from(self.spec.upgrade.keep).unwrap_or(usize::MAX),
            )
            .map_err(|e| self.io("cannot record the end in", e))
    }

    fn outcome(&self, j: &Journal, end: End, stderr: Vec<String>, up: Option<Duration>) -> Outcome {
        Outcome {
            service: self.name.to_string(),
            op: j.op.clone(),
            end,
            from: j.from.clone(),
            to: j.to.clone(),
            downtime_ms: up.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            reason: j.reason.clone(),
            stderr,
            steps: Vec::new(),
        }
    }

    /// The last line and the exit of the program, from the status file.
    fn last_exit(&self) -> (Option<String>, Vec<String>) {
        let snap = crate::status::read(&self.layout.status_file(&self.name))
            .ok()
            .flatten();
        snap.and_then(|s| s.last_exit)
            .map_or((None, Vec::new()), |e| (Some(e.description), e.stderr))
    }

    /// Watches the release run (tend-core's verdict on the status file) until it passes or
    /// fails. `started`: when the start was asked for (a status file older than that is
    /// the stopped run's); `None` after an interruption (the running one is what counts).
    fn verify(
        &self,
        spec: &ServiceSpec,
        step: Step,
        started: Option<SystemTime>,
        up_after: &mut Option<Duration>,
        down_since: Option<Instant>,
    ) -> Result<String, (String, Vec<String>)> {
        let rules = rules(spec);
        let pid = super::verify::watch(
            rules,
            &self.layout.status_file(&self.name),
            started,
            |s| {
                if up_after.is_none() && s.state == "running" && s.pid.is_some() {
                    *up_after = down_since.map(|d| d.elapsed());
                }
            },
            || self.run_verify_command(spec, step),
        )?;
        let mut what = format!(
            "passed: running (pid {pid}) for {}",
            tend_core::fmt::duration(rules.verify)
        );
        if rules.health {
            what.push_str(", healthy");
        }
        if rules.command {
            what.push_str(", verify_command passed");
        }
        Ok(what)
    }

    /// `[upgrade] verify_command`: run once the program runs (and is healthy), in its
    /// working directory with its environment and `TEND_SERVICE`, `TEND_RELEASE_STEP`; it
    /// must exit 0 within `verify`.
    fn run_verify_command(
        &self,
        spec: &ServiceSpec,
        step: Step,
    ) -> Result<(), (String, Vec<String>)> {
        let Some(cmd) = &spec.upgrade.verify_command else {
            return Ok(());
        };
        let program = cmd.program.display();
        let mut c = std::process::Command::new(match &cmd.program {
            Program::Path(p) => p.as_os_str().to_owned(),
            Program::Search(n) => n.into(),
        });
        c.args(&cmd.args)
            .current_dir(&spec.working_dir)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env("TEND_SERVICE", self.name.as_str())
            .env("TEND_UPGRADE_STEP", step.as_str())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().map_err(|e| {
            (
                format!("verify_command `{program}` could not start: {e}"),
                Vec::new(),
            )
        })?;
        // Read stderr on a thread of its own: a chatty command must not block on a full
        // pipe while it is waited for.
        let mut err = child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(e) = err.as_mut() {
                let _ = std::io::Read::read_to_string(e, &mut text);
            }
            text
        });
        let deadline = Instant::now() + spec.upgrade.verify;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => break None,
            }
        };
        let text = reader.join().unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(str::to_owned)
            .collect();
        match status {
            Some(s) if s.success() => Ok(()),
            Some(s) => Err((format!("verify_command `{program}` failed ({s})"), lines)),
            None => Err((
                format!(
                    "verify_command `{program}` did not finish within {}",
                    tend_core::fmt::duration(spec.upgrade.verify)
                ),
                lines,
            )),
        }
    }

    /// The last line of a change, and its exit code (docs/cli.md): printed, and the same
    /// words in the service's log, Event Log and alert.
    fn end_line(&self, out: &Outcome) -> (String, u8) {
        let down = out
            .downtime_ms
            .map(|ms| format!("; downtime {}", secs(Duration::from_millis(ms))))
            .unwrap_or_default();
        let why = out.reason.as_deref().unwrap_or("no reason recorded");
        match out.end {
            End::Upgraded => (
                format!(
                    "{} `{}`: release {} runs and passed verification{down}",
                    if out.op == "rollback" {
                        "rolled back"
                    } else {
                        "upgraded"
                    },
                    out.service,
                    out.to
                ),
                code::OK,
            ),
            End::Abandoned => (
                format!(
                    "the {} of `{}` stopped before the service was touched; release {} still runs",
                    out.op, out.service, out.from
                ),
                code::OK,
            ),
            End::RolledBack => (
                format!(
                    "ROLLED BACK `{}`: release {} failed: {why}; release {} runs again and passed verification{down}",
                    out.service, out.to, out.from
                ),
                code::ROLLED_BACK,
            ),
            End::Broken => (
                format!(
                    "BROKEN `{}`: release {} failed: {why}; release {} was put back but did not pass verification \
                     either: see `tend status{} {}` and `tend logs{} {}`",
                    out.service,
                    out.to,
                    out.from,
                    self.scope.flag(),
                    out.service,
                    self.scope.flag(),
                    out.service
                ),
                code::UPGRADE_BROKEN,
            ),
        }
    }

    /// Prints the result and chooses the exit code (docs/cli.md).
    fn report(&self, out: &Outcome) -> Result<ExitCode, CliError> {
        let (line, code) = self.end_line(out);
        // Not `say`: the end line was told to the log when the change ended.
        self.out().end(out, &line);
        Ok(ExitCode::from(code))
    }
}

/// A store that could not be opened and locked, said for a verb: `busy` words a lock
/// another tend holds (given ` (tend pid N)` or nothing).
fn open_error(store: &Store, e: release::OpenError, busy: impl FnOnce(&str) -> String) -> CliError {
    let io = |what: &str, e| CliError::io(format!("{what} `{}`", store.dir.display()), e);
    match e {
        release::OpenError::Create(e) => io("cannot create the release store", e),
        release::OpenError::Protect(e) => io("cannot restrict who may change the release store", e),
        release::OpenError::Lock(LockError::Busy(pid)) => CliError::Invalid(busy(
            &pid.map(|p| format!(" (tend pid {p})")).unwrap_or_default(),
        )),
        release::OpenError::Lock(LockError::Io(e)) => {
            CliError::io(format!("cannot lock `{}`", store.lock_path().display()), e)
        }
    }
}

/// The test hook (docs/upgrade.md, "Testing"): stops here for good, so that a test can
/// kill tend with the journal naming `step`.
fn pause_here(step: Step) {
    pause_here_named(step.as_str());
}

/// [`pause_here`] by the step's journal spelling (also `--self`'s steps).
fn pause_here_named(step: &str) {
    if std::env::var(PAUSE_ENV).is_ok_and(|v| v == step) {
        let _ = writeln!(
            std::io::stderr(),
            "paused before step `{step}` ({PAUSE_ENV}; tend pid {})",
            std::process::id()
        );
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

fn rules(spec: &ServiceSpec) -> Rules {
    Rules {
        verify: spec.upgrade.verify,
        health: spec.health.is_some(),
        command: spec.upgrade.verify_command.is_some(),
    }
}

fn rules_text(spec: &ServiceSpec) -> String {
    let r = rules(spec);
    let mut v = vec!["the program must keep running"];
    if r.health {
        v.push("become healthy");
    }
    if r.command {
        v.push("pass verify_command");
    }
    v.join(", ")
}

fn end_word(end: End) -> &'static str {
    match end {
        End::Upgraded => "finished",
        End::Abandoned => "abandoned before the service was touched",
        End::RolledBack => "undone (rolled back)",
        End::Broken => "undone, but the old release did not pass verification",
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
