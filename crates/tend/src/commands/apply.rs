//! `tend apply DIR|FILE... [--check] [--diff] [--prune] [--wait] [--json] [--user]`: converge
//! this host's services to a set of configs.
//!
//! Three phases, so that a bad file changes nothing: validate every file (as `tend install`
//! would, with every problem listed); gather the facts (what is installed, what differs)
//! without touching anything; decide with tend-os's pure [`tend_os::apply_plan`]. Only
//! then, unless `--check`, carry the plan out with the same [`ServiceManager`] verbs the
//! single-service verbs use. A service that fails is reported and the others go on; what a
//! failed step left half-done is kept as a marker next to the config copy
//! (`<name>.apply-pending`), so the next apply finishes it.
//!
//! `--json` prints [`Output`]: a contract (docs/cli.md, "tend apply --json"): fields are
//! only added, never renamed or removed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use tend_core::{ServiceName, ServiceSpec};
use tend_os::{
    Access, Action, ApplyStep, Desired, Failure, Found, Install, Installed, Present, Report,
    ServiceManager, Then,
};

use crate::error::{CliError, code};
use crate::place::{self, Scope};

/// The flags of `tend apply`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) check: bool,
    pub(crate) diff: bool,
    pub(crate) prune: bool,
    pub(crate) wait: bool,
    pub(crate) json: bool,
    pub(crate) scope: Scope,
}

/// The version of the `--json` document. Raised only for a change that is not an addition
/// (none so far).
const SCHEMA: u32 = 1;

/// `tend apply --json`.
#[derive(Debug, Serialize)]
struct Output {
    schema: u32,
    /// The build of the tend that answers.
    tend: crate::version::BuildInfo,
    /// `system` or `user`.
    scope: &'static str,
    /// `--check`: nothing was changed.
    check: bool,
    /// `unchanged`, `changed`, `pending` (`--check`), `failed`, `invalid` (a file did not
    /// validate: nothing was changed, `problems` says why), or `error` (apply could not
    /// begin: nothing was changed, `error` says why).
    outcome: &'static str,
    /// The exit code tend exits with.
    exit_code: u8,
    /// With `error`: what stopped apply before it compared anything (nothing was changed).
    error: Option<ErrorOut>,
    /// Every problem of every file, when a file did not validate.
    problems: Vec<ProblemOut>,
    /// One entry per service of the set (in the order given), then the ones `--prune`
    /// looked at.
    services: Vec<ServiceOut>,
}

#[derive(Debug, Serialize)]
struct ProblemOut {
    file: PathBuf,
    line: Option<usize>,
    key: String,
    severity: &'static str,
    message: String,
}

#[derive(Debug, Serialize)]
struct ServiceOut {
    name: String,
    /// Its config file in the set; `null` for one `--prune` looked at.
    file: Option<PathBuf>,
    /// What the plan says (tend_os::Action, kebab-case).
    action: Action,
    /// Why.
    reason: String,
    /// `ok` (done, or nothing to do), `pending` (`--check`: would change), `failed`, or
    /// `skipped` (a service `--prune` leaves because tend did not install it).
    result: &'static str,
    /// Whether this run changed it.
    changed: bool,
    /// The lines of the config copy that change (`- old`, `+ new`).
    diff: Vec<String>,
    /// The same change as a unified diff (`diff -u`, 3 lines of context, `---`/`+++`
    /// naming the installed copy and the file); empty when the copy does not change.
    unified_diff: String,
    /// What the verbs reported, as `tend install` and friends print it.
    lines: Vec<String>,
    warnings: Vec<String>,
    error: Option<ErrorOut>,
    /// With `--wait`: the state it reached (`running`, ...); otherwise `null`.
    state: Option<String>,
    /// With `--wait` and `[health]`: the health it reached.
    health: Option<String>,
}

#[derive(Debug, Serialize)]
struct ErrorOut {
    message: String,
    exit_code: u8,
}

/// One service of the set, validated.
struct Loaded {
    spec: ServiceSpec,
    original: String,
}

pub(crate) fn apply(paths: &[PathBuf], o: Options) -> Result<ExitCode, CliError> {
    match converge(paths, o) {
        // A driver reads one document whatever happens: an error before anything was
        // compared (a path that does not exist, no rights, no service manager) too.
        Err(e) if o.json => {
            let exit = e.code();
            print_json(&Output {
                schema: SCHEMA,
                tend: crate::version::BUILD,
                scope: o.scope.word(),
                check: o.check,
                outcome: "error",
                exit_code: exit,
                error: Some(ErrorOut {
                    message: tend_os::error_chain(&e),
                    exit_code: exit,
                }),
                problems: Vec::new(),
                services: Vec::new(),
            });
            Ok(ExitCode::from(exit))
        }
        r => r,
    }
}

fn converge(paths: &[PathBuf], o: Options) -> Result<ExitCode, CliError> {
    let files = collect(paths)?;
    let (loaded, problems) = validate(&files, o.scope)?;
    if !problems.is_empty() {
        return invalid(&problems, o);
    }
    // Rights before anything is asked: a system apply that cannot change anything is no
    // use (`--check` only reads).
    if !o.check {
        check_rights(o.scope)?;
    }
    let manager = crate::os::manager(o.scope, Access::Check)?;
    let (desired, unified, problems) = facts(manager.as_ref(), &loaded, o.scope)?;
    if !problems.is_empty() {
        return invalid(&problems, o);
    }
    // Only --prune looks beyond the set (each candidate costs the OS manager a question).
    let present = if o.prune {
        present(manager.as_ref(), o.scope)?
    } else {
        Vec::new()
    };
    let plan = tend_os::apply_plan(&desired, &present, o.prune);
    let mut services: Vec<ServiceOut> = plan.iter().map(|s| planned(s, o.check)).collect();
    for out in &mut services {
        if !out.diff.is_empty()
            && let Some((_, u)) = unified.iter().find(|(n, _)| n.as_str() == out.name)
        {
            out.unified_diff.clone_from(u);
        }
    }
    if !o.check {
        for (step, out) in plan.iter().zip(services.iter_mut()) {
            let original = loaded
                .iter()
                .find(|l| l.spec.name == step.name)
                .map(|l| (&l.spec, l.original.as_str()));
            carry_out(manager.as_ref(), step, original, o.scope, out);
        }
        if o.wait {
            for (step, out) in plan.iter().zip(services.iter_mut()) {
                let spec = loaded.iter().find(|l| l.spec.name == step.name);
                if let (Some(l), Some(_)) = (spec, step.action.then(step.start))
                    && out.result == "ok"
                {
                    wait_for(&l.spec, o.scope, out);
                }
            }
        }
    }
    let (outcome, exit) = outcome(&services, o.check);
    if o.json {
        print_json(&Output {
            schema: SCHEMA,
            tend: crate::version::BUILD,
            scope: o.scope.word(),
            check: o.check,
            outcome,
            exit_code: exit,
            error: None,
            problems: Vec::new(),
            services,
        });
    } else {
        print_text(&services, o, outcome);
    }
    Ok(ExitCode::from(exit))
}

/// The config files: each FILE, and the `*.toml` files directly in each DIR, sorted.
fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for p in paths {
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::Invalid(format!(
                    "`{}` does not exist: give config files or directories of them (nothing was changed)",
                    p.display()
                )));
            }
            Err(e) => return Err(CliError::io(format!("cannot read `{}`", p.display()), e)),
        };
        if !meta.is_dir() {
            files.push(p.clone());
            continue;
        }
        let rd = std::fs::read_dir(p)
            .map_err(|e| CliError::io(format!("cannot list `{}`", p.display()), e))?;
        let mut here: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|f| {
                f.is_file()
                    && f.extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
            })
            .collect();
        if here.is_empty() {
            // An empty set would mean "no services": with --prune, remove them all. A
            // wrong path must not do that.
            return Err(CliError::Invalid(format!(
                "`{}` has no *.toml files: give a directory of tend configs (nothing was changed)",
                p.display()
            )));
        }
        here.sort();
        files.extend(here);
    }
    Ok(files)
}

/// Every file loaded as `tend install` loads it; every problem of every file (errors, and
/// the warnings `install` refuses: a missing program or working directory), and a name
/// given twice.
fn validate(files: &[PathBuf], scope: Scope) -> Result<(Vec<Loaded>, Vec<ProblemOut>), CliError> {
    let opts = place::load_options(scope)?;
    let mut loaded: Vec<Loaded> = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let result = tend_config::load(file, &opts).and_then(|l| {
            let original =
                std::fs::read_to_string(file).map_err(|source| tend_config::ConfigError::Read {
                    path: file.clone(),
                    source,
                })?;
            Ok((l, original))
        });
        match result {
            Ok((l, original)) => {
                let path = l.spec.config_path.clone();
                problems.extend(l.warnings.iter().map(|p| problem(&path, p)));
                if let Some(first) = loaded.iter().find(|o| o.spec.name == l.spec.name) {
                    problems.push(ProblemOut {
                        file: path.clone(),
                        line: None,
                        key: "name".into(),
                        severity: "error",
                        message: format!(
                            "`{}` is also the name in `{}`: each service of the set needs a name of its own",
                            l.spec.name,
                            first.spec.config_path.display()
                        ),
                    });
                }
                loaded.push(Loaded {
                    spec: l.spec,
                    original,
                });
            }
            Err(tend_config::ConfigError::Invalid { path, problems: ps }) => {
                problems.extend(ps.iter().map(|p| problem(&path, p)));
            }
            Err(e @ tend_config::ConfigError::Read { .. }) => problems.push(ProblemOut {
                file: file.clone(),
                line: None,
                key: String::new(),
                severity: "error",
                message: tend_os::error_chain(&e),
            }),
        }
    }
    Ok((loaded, problems))
}

fn problem(file: &Path, p: &tend_config::Problem) -> ProblemOut {
    ProblemOut {
        file: file.to_owned(),
        line: p.line,
        key: p.key.clone(),
        severity: match p.severity {
            tend_config::Severity::Error => "error",
            tend_config::Severity::Warning => "warning",
        },
        message: p.message.clone(),
    }
}

/// What is installed under each name of the set, read without changing anything. A
/// config the backend cannot install (an account this OS does not have) is a problem of
/// its file, found before anything changes.
/// What [`facts`] finds: the desired set, the config copy's change of each installed
/// service as a unified diff (`--diff`), and the problems that stop the apply.
type Facts = (Vec<Desired>, Vec<(ServiceName, String)>, Vec<ProblemOut>);

/// Also the config copy's change of each installed service as a unified diff (`--diff`).
fn facts(m: &dyn ServiceManager, loaded: &[Loaded], scope: Scope) -> Result<Facts, CliError> {
    let opts = place::load_options(scope)?;
    let mut desired = Vec::new();
    let mut unified = Vec::new();
    let mut problems = Vec::new();
    for l in loaded {
        let spec = &l.spec;
        let name = &spec.name;
        let bad = |message: String| ProblemOut {
            file: spec.config_path.clone(),
            line: None,
            key: String::new(),
            severity: "error",
            message,
        };
        let text = match tend_os::installed_text(spec, &l.original) {
            Ok(t) => t,
            Err(e) => {
                problems.push(bad(e.to_string()));
                continue;
            }
        };
        let install = Install {
            spec,
            original: &l.original,
            leave_running: true,
        };
        let definition_diff = match m.definition_diff(&install) {
            Ok(d) => d,
            Err(tend_os::Error::Invalid(why)) => {
                problems.push(bad(why));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let found = if let Some(why) = m.not_ours(name) {
            Found::Foreign(why)
        } else {
            let layout = place::place(scope, name)?;
            let copy = read_opt(&layout.config)?;
            let status = m.status(name).map_err(CliError::from)?;
            if copy.is_none() && !status.installed {
                Found::Missing
            } else {
                let old = copy
                    .as_deref()
                    .and_then(|c| tend_config::parse(c, &layout.config, &opts).ok())
                    .map(|l| l.spec);
                let unfinished = read_opt(&marker(&layout.config))?
                    .as_deref()
                    .and_then(Then::parse);
                let old_text = copy.as_deref().unwrap_or("");
                unified.push((
                    name.clone(),
                    tend_os::unified_diff(
                        old_text,
                        &text,
                        &layout.config.display().to_string(),
                        &format!("{} (as it would be installed)", spec.config_path.display()),
                        3,
                    ),
                ));
                Found::Ours(Box::new(Installed {
                    config_diff: tend_os::diff_lines(old_text, &text),
                    definition_diff,
                    old,
                    running: status.active,
                    unfinished,
                }))
            }
        };
        desired.push(Desired {
            spec: spec.clone(),
            found,
        });
    }
    Ok((desired, unified, problems))
}

/// Every service tend has a config copy of in this scope (`--prune`'s candidates).
fn present(m: &dyn ServiceManager, scope: Scope) -> Result<Vec<Present>, CliError> {
    Ok(crate::place::installed_names(scope)?
        .into_iter()
        .filter_map(|n| place::service_name(&n).ok())
        .map(|name| Present {
            foreign: m.not_ours(&name),
            name,
        })
        .collect())
}

/// Where apply keeps what it could not finish for a service: next to its config copy
/// (`<name>.apply-pending`, which no listing of `*.toml` picks up).
fn marker(config: &Path) -> PathBuf {
    config.with_extension("apply-pending")
}

fn read_opt(path: &Path) -> Result<Option<String>, CliError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::io(format!("cannot read `{}`", path.display()), e)),
    }
}

fn planned(step: &ApplyStep, check: bool) -> ServiceOut {
    let conflict_in_set = step.action == Action::Conflict && step.file.is_some();
    let (result, error) = if conflict_in_set {
        (
            "failed",
            Some(ErrorOut {
                message: format!("not applying `{}`: {}", step.name, step.reason),
                exit_code: code::INVALID,
            }),
        )
    } else if step.action == Action::Conflict {
        ("skipped", None)
    } else if check && step.action.changes() {
        ("pending", None)
    } else {
        ("ok", None)
    };
    ServiceOut {
        name: step.name.to_string(),
        file: step.file.clone(),
        action: step.action,
        reason: step.reason.clone(),
        result,
        changed: false,
        diff: step.diff.clone(),
        unified_diff: String::new(),
        lines: Vec::new(),
        warnings: Vec::new(),
        error,
        state: None,
        health: None,
    }
}

/// Carries out one service's step with the manager's verbs, into `out`.
fn carry_out(
    m: &dyn ServiceManager,
    step: &ApplyStep,
    given: Option<(&ServiceSpec, &str)>,
    scope: Scope,
    out: &mut ServiceOut,
) {
    if !step.action.changes() {
        return;
    }
    let name = &step.name;
    let result = (|| -> Result<(), Failure> {
        let then = step.action.then(step.start);
        let marker = place::place(scope, name)
            .map(|l| marker(&l.config))
            .map_err(|e| tend_os::Error::Invalid(e.to_string()))?;
        match step.action {
            Action::Remove => {
                merge(out, m.uninstall(name)?);
                out.changed = true;
                let _ = std::fs::remove_file(&marker);
                return Ok(());
            }
            Action::Install | Action::Update | Action::UpdateReload | Action::UpdateRestart => {
                let Some((spec, original)) = given else {
                    return Ok(());
                };
                let install = Install {
                    spec,
                    original,
                    leave_running: true,
                };
                // The checks `tend install` prints and never refuses for (doctor's free
                // space, port, clock, logon right): the same warnings, per service.
                let preflight = m.preflight(&install).ok();
                for (id, msg) in
                    super::doctor::at_install(spec, &spec.config_path, scope, preflight.as_ref())
                {
                    out.warnings.push(format!("doctor: {id}: {msg}"));
                }
                merge(out, m.install(&install)?);
            }
            Action::Start | Action::Unchanged | Action::Conflict => {}
        }
        out.changed = true;
        let Some(then) = then else {
            let _ = std::fs::remove_file(&marker);
            return Ok(());
        };
        // Written before the step that can fail, removed once it succeeded: a failure
        // leaves it for the next apply.
        tend_os::write_atomic(&marker, then.word().as_bytes(), Some(0o600))
            .map_err(|e| tend_os::Error::io(format!("cannot write `{}`", marker.display()), e))?;
        let report = match then {
            Then::Start => m.start(name)?,
            Then::Reload => m.reload(name)?,
            Then::Restart => m.restart(name)?,
        };
        merge(out, report);
        let _ = std::fs::remove_file(&marker);
        Ok(())
    })();
    if let Err(f) = result {
        merge(out, *f.report);
        out.result = "failed";
        out.error = Some(ErrorOut {
            message: tend_os::error_chain(&f.error),
            exit_code: f.error.exit_code(),
        });
    }
}

fn merge(out: &mut ServiceOut, r: Report) {
    out.lines.extend(r.lines);
    out.warnings.extend(r.warnings);
    out.warnings.extend(r.problems);
}

/// `--wait`: until the supervisor says the program runs (and, with `[health]`, is
/// healthy), or its deadline passed (then the service is failed, exit code 5).
fn wait_for(spec: &ServiceSpec, scope: Scope, out: &mut ServiceOut) {
    let health_needed = spec.health.is_some();
    // Enough for a slow start plus the health checks' own start period.
    let within = Duration::from_secs(60)
        + spec.health.as_ref().map_or(Duration::ZERO, |h| {
            h.start_period + h.interval * (h.failures + 1)
        });
    let end = Instant::now() + within;
    loop {
        let r = super::status::current(spec.name.as_str(), scope);
        let health = r
            .supervisor
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .map(|h| h.state.clone());
        let done = r.state == "running" && (!health_needed || health.as_deref() == Some("healthy"));
        out.state = Some(r.state.clone());
        out.health = health;
        if done {
            return;
        }
        if r.state == "failed" || Instant::now() >= end {
            out.result = "failed";
            out.error = Some(ErrorOut {
                message: format!(
                    "`{}` did not become {} within {}s (state {}{}); see: tend status{} {}",
                    spec.name,
                    if health_needed {
                        "running and healthy"
                    } else {
                        "running"
                    },
                    within.as_secs(),
                    r.state,
                    out.health
                        .as_deref()
                        .map(|h| format!(", health {h}"))
                        .unwrap_or_default(),
                    scope.flag(),
                    spec.name
                ),
                exit_code: code::OS,
            });
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The outcome word and the exit code: the first failure's code, else 11 for pending
/// changes (`--check`), 10 for changes made, 0 for none.
fn outcome(services: &[ServiceOut], check: bool) -> (&'static str, u8) {
    if let Some(e) = services.iter().find_map(|s| s.error.as_ref()) {
        return ("failed", e.exit_code);
    }
    if check {
        if services.iter().any(|s| s.result == "pending") {
            return ("pending", code::PENDING);
        }
        return ("unchanged", code::OK);
    }
    if services.iter().any(|s| s.changed) {
        ("changed", code::CHANGED)
    } else {
        ("unchanged", code::OK)
    }
}

fn invalid(problems: &[ProblemOut], o: Options) -> Result<ExitCode, CliError> {
    if o.json {
        print_json(&Output {
            schema: SCHEMA,
            tend: crate::version::BUILD,
            scope: o.scope.word(),
            check: o.check,
            outcome: "invalid",
            exit_code: code::INVALID,
            error: None,
            problems: problems
                .iter()
                .map(|p| ProblemOut {
                    file: p.file.clone(),
                    line: p.line,
                    key: p.key.clone(),
                    severity: p.severity,
                    message: p.message.clone(),
                })
                .collect(),
            services: Vec::new(),
        });
    } else {
        let mut err = std::io::stderr().lock();
        for p in problems {
            let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
            let key = if p.key.is_empty() {
                String::new()
            } else {
                format!("{}: ", p.key)
            };
            let _ = writeln!(
                err,
                "{}: {}{line}: {key}{}",
                p.severity,
                p.file.display(),
                p.message
            );
        }
        let _ = writeln!(
            err,
            "error: not applying: {} problem(s) in the set (above); fix them and apply again (nothing was changed)",
            problems.len()
        );
    }
    Ok(ExitCode::from(code::INVALID))
}

fn print_json(o: &Output) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, o);
    let _ = writeln!(out);
}

fn print_text(services: &[ServiceOut], o: Options, outcome: &str) {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for s in services {
        let action = serde_json::to_value(s.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let head = match s.result {
            "pending" => format!("would {action}"),
            "failed" => format!("{action} (failed)"),
            _ => action,
        };
        let _ = writeln!(out, "{head:<22} {}: {}", s.name, s.reason);
        if o.diff && !s.unified_diff.is_empty() {
            for l in s.unified_diff.lines() {
                let _ = writeln!(out, "  {l}");
            }
        } else if o.diff && !s.diff.is_empty() {
            for l in &s.diff {
                let _ = writeln!(out, "  {l}");
            }
        }
        for l in &s.lines {
            let _ = writeln!(out, "  {l}");
        }
        if let Some(st) = &s.state {
            let health = s
                .health
                .as_deref()
                .map(|h| format!(", {h}"))
                .unwrap_or_default();
            let _ = writeln!(out, "  now {st}{health}");
        }
        for w in &s.warnings {
            let _ = writeln!(err, "warning: {}: {w}", s.name);
        }
        if let Some(e) = &s.error {
            let _ = writeln!(err, "error: {}: {}", s.name, e.message);
        }
    }
    let count = |f: &dyn Fn(&ServiceOut) -> bool| services.iter().filter(|s| f(s)).count();
    let failed = count(&|s| s.result == "failed");
    let unchanged = count(&|s| s.action == Action::Unchanged);
    let (verb, changes) = if o.check {
        (
            "apply --check",
            format!("{} to change", count(&|s| s.result == "pending")),
        )
    } else {
        ("apply", format!("{} changed", count(&|s| s.changed)))
    };
    let _ = writeln!(
        out,
        "{verb}: {} service(s): {changes}, {unchanged} unchanged, {failed} failed ({outcome})",
        services.len(),
    );
}

fn check_rights(scope: Scope) -> Result<(), CliError> {
    #[cfg(unix)]
    if scope == Scope::System && !nix::unistd::geteuid().is_root() {
        return Err(tend_os::unix::need_root("apply").into());
    }
    let _ = scope;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(action: Action, result: &'static str, changed: bool, err: Option<u8>) -> ServiceOut {
        ServiceOut {
            name: "web".into(),
            file: None,
            action,
            reason: String::new(),
            result,
            changed,
            diff: vec![],
            unified_diff: String::new(),
            lines: vec![],
            warnings: vec![],
            error: err.map(|c| ErrorOut {
                message: "x".into(),
                exit_code: c,
            }),
            state: None,
            health: None,
        }
    }

    #[test]
    fn the_exit_code_says_unchanged_changed_pending_or_the_first_failure() {
        let unchanged = || out(Action::Unchanged, "ok", false, None);
        let cases = [
            (vec![unchanged()], false, ("unchanged", 0)),
            (
                vec![unchanged(), out(Action::Install, "ok", true, None)],
                false,
                ("changed", 10),
            ),
            (
                vec![unchanged(), out(Action::Install, "pending", false, None)],
                true,
                ("pending", 11),
            ),
            (vec![unchanged()], true, ("unchanged", 0)),
            (
                vec![
                    out(Action::Install, "ok", true, None),
                    out(Action::UpdateRestart, "failed", true, Some(5)),
                    out(Action::Conflict, "failed", false, Some(2)),
                ],
                false,
                ("failed", 5),
            ),
        ];
        for (services, check, want) in cases {
            assert_eq!(outcome(&services, check), want);
        }
    }

    #[test]
    fn the_marker_is_not_a_config_copy() {
        let m = marker(Path::new("/etc/tend/web.toml"));
        assert_eq!(m, Path::new("/etc/tend/web.apply-pending"));
        assert_ne!(m.extension().unwrap(), "toml");
    }
}
