//! The walk over the TOML document. Each section reader takes what it knows, reports what it
//! does not, and fills in defaults, so one pass finds every problem.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use tend_core::health::{
    AlertKind, CheckSpec, HealthSpec, HttpCheck, HttpUrl, LimitsSpec, MetricsSpec, NotifySpec,
    Reaction, Secret, TcpTarget, TlsOptions, WebhookFormat, validate_listen,
};
use tend_core::{
    Account, CommandSpec, DiagnosticsSpec, DumpType, EventLogLines, Hardening, InstallSpec,
    LogFormat, LogMode, LogSpec, Program, RestartPolicy, RestartSpec, RotateEvery, ServiceName,
    ServiceSpec, StartMode, StopSignal, StopSpec, UpgradeSpec, WindowsStop,
};

use crate::envfile::{check_env_key, parse_env_file};
use crate::lines::LineIndex;
use crate::units::{parse_duration, parse_size};
use crate::{LoadOptions, LogDirDefault, Problem, Severity};

const DURATION_HINT: &str = "(examples: \"500ms\", \"30s\", \"5m\")";

struct Ctx<'a> {
    lines: LineIndex,
    problems: Vec<Problem>,
    config_dir: &'a Path,
}

impl Ctx<'_> {
    fn push(&mut self, severity: Severity, key: &str, message: String) {
        let line = self.lines.find(key);
        self.problems.push(Problem {
            severity,
            key: key.to_owned(),
            line,
            message,
        });
    }

    fn error(&mut self, key: &str, message: impl Into<String>) {
        self.push(Severity::Error, key, message.into());
    }

    fn warn(&mut self, key: &str, message: impl Into<String>) {
        self.push(Severity::Warning, key, message.into());
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        let joined = if p.is_absolute() {
            p.to_owned()
        } else {
            self.config_dir.join(p)
        };
        // `./server` reads better in messages and process lists as `/dir/server`. Only `.`
        // is dropped: `..` is kept, since lexically removing it is wrong across symlinks.
        joined
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect()
    }
}

/// A table being read: hands out values by key and remembers which keys were asked for, so
/// whatever is left at the end is unknown.
struct Section<'t> {
    path: String,
    table: Option<&'t Table>,
    known: Vec<&'static str>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

impl<'t> Section<'t> {
    fn new(path: &str, table: Option<&'t Table>) -> Self {
        Self {
            path: path.to_owned(),
            table,
            known: Vec::new(),
        }
    }

    fn key(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn get(&mut self, key: &'static str) -> Option<&'t Value> {
        self.known.push(key);
        self.table.and_then(|t| t.get(key))
    }

    /// Reports keys nobody asked for, with the nearest known key as a suggestion.
    fn finish(self, cx: &mut Ctx<'_>) {
        let Some(table) = self.table else { return };
        for key in table.keys() {
            if self.known.contains(&key.as_str()) {
                continue;
            }
            let hint = self
                .known
                .iter()
                .min_by_key(|k| edit_distance(k, key))
                .filter(|k| edit_distance(k, key) <= 3)
                .map_or_else(
                    || format!("known keys here: {}", self.known.join(", ")),
                    |k| format!("did you mean `{k}`?"),
                );
            cx.error(&self.key(key), format!("unknown key ({hint})"));
        }
    }

    fn string(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<&'t str> {
        match self.get(key)? {
            Value::String(s) => Some(s),
            v => {
                cx.error(
                    &self.key(key),
                    format!("expected a string, found {}", type_name(v)),
                );
                None
            }
        }
    }

    fn bool(&mut self, cx: &mut Ctx<'_>, key: &'static str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(v) => {
                cx.error(
                    &self.key(key),
                    format!("expected true or false, found {}", type_name(v)),
                );
                default
            }
        }
    }

    fn int(&mut self, cx: &mut Ctx<'_>, key: &'static str, default: u32) -> u32 {
        match self.get(key) {
            None => default,
            Some(Value::Integer(i)) => u32::try_from(*i).unwrap_or_else(|_| {
                cx.error(
                    &self.key(key),
                    format!("{i} is out of range (0 to {})", u32::MAX),
                );
                default
            }),
            Some(v) => {
                cx.error(
                    &self.key(key),
                    format!("expected a whole number, found {}", type_name(v)),
                );
                default
            }
        }
    }

    fn duration(&mut self, cx: &mut Ctx<'_>, key: &'static str, default: Duration) -> Duration {
        match self.get(key) {
            None => default,
            Some(Value::String(s)) => parse_duration(s).unwrap_or_else(|e| {
                cx.error(&self.key(key), e);
                default
            }),
            Some(Value::Integer(0)) => Duration::ZERO,
            Some(v) => {
                cx.error(
                    &self.key(key),
                    format!(
                        "expected a duration string, found {} {DURATION_HINT}",
                        type_name(v)
                    ),
                );
                default
            }
        }
    }

    fn size(&mut self, cx: &mut Ctx<'_>, key: &'static str, default: u64) -> u64 {
        match self.get(key) {
            None => default,
            Some(Value::String(s)) => parse_size(s).unwrap_or_else(|e| {
                cx.error(&self.key(key), e);
                default
            }),
            Some(Value::Integer(i)) if *i >= 0 => i.unsigned_abs(),
            Some(v) => {
                cx.error(
                    &self.key(key),
                    format!("expected a size such as \"10MiB\", found {}", type_name(v)),
                );
                default
            }
        }
    }

    /// A string that must be one of `choices`.
    fn choice<T: Copy>(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        choices: &[(T, &str)],
        default: T,
    ) -> T {
        let Some(s) = self.string(cx, key) else {
            return default;
        };
        if let Some((v, _)) = choices.iter().find(|(_, n)| *n == s) {
            return *v;
        }
        let names: Vec<String> = choices.iter().map(|(_, n)| format!("\"{n}\"")).collect();
        cx.error(
            &self.key(key),
            format!("{s:?} is not one of {}", names.join(", ")),
        );
        default
    }

    fn strings(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<Vec<String>> {
        let v = self.get(key)?;
        let k = self.key(key);
        let Value::Array(items) = v else {
            cx.error(
                &k,
                format!("expected an array of strings, found {}", type_name(v)),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                v => cx.error(
                    &format!("{k}[{i}]"),
                    format!("expected a string, found {}", type_name(v)),
                ),
            }
        }
        (out.len() == items.len()).then_some(out)
    }

    fn table(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<&'t Table> {
        match self.get(key)? {
            Value::Table(t) => Some(t),
            v => {
                cx.error(
                    &self.key(key),
                    format!("expected a table, found {}", type_name(v)),
                );
                None
            }
        }
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Validates `text`; returns a spec whenever the document could be read far enough, plus
/// every problem (errors and warnings). The caller decides by the errors.
pub(crate) fn validate(
    text: &str,
    path: &Path,
    opts: &LoadOptions,
) -> (Option<ServiceSpec>, Vec<Problem>) {
    let file_dir = path.parent().unwrap_or(Path::new("/"));
    // `base_dir` must be known before any other path is resolved, so it is peeked at first
    // (and read again, for its problems, by the walk below).
    let base_dir = toml::from_str::<Table>(text)
        .ok()
        .and_then(|t| t.get("base_dir").and_then(Value::as_str).map(PathBuf::from))
        .map(|b| if b.is_absolute() { b } else { file_dir.join(b) });
    let config_dir = base_dir.as_deref().unwrap_or(file_dir);
    let mut cx = Ctx {
        lines: LineIndex::new(text),
        problems: Vec::new(),
        config_dir,
    };
    let doc: Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let message = format!("not valid TOML: {}", e.message());
            cx.problems.push(Problem {
                severity: Severity::Error,
                key: String::new(),
                line,
                message,
            });
            return (None, cx.problems);
        }
    };

    let mut top = Section::new("", Some(&doc));
    let name = match top.string(&mut cx, "name") {
        None if doc.get("name").is_none() => {
            cx.error(
                "name",
                "missing: every service needs a name, e.g. name = \"my-app\"",
            );
            None
        }
        None => None,
        Some(n) => ServiceName::new(n)
            .map_err(|e| cx.error("name", format!("{n:?} is not a valid service name: {e}")))
            .ok(),
    };
    let base_dir = top
        .string(&mut cx, "base_dir")
        .map(|_| config_dir.to_owned());
    if base_dir.is_some()
        && let Some(why) = dir_problem(config_dir)
    {
        cx.warn("base_dir", why);
    }
    let display_name = top.string(&mut cx, "display_name").map(str::to_owned);
    let description = top.string(&mut cx, "description").map(str::to_owned);
    let command = read_command(&mut cx, &mut top, "command", true);
    let working_dir = match top.string(&mut cx, "working_dir") {
        Some(d) => cx.resolve(d),
        None => config_dir.to_owned(),
    };
    let env = read_env(&mut cx, &mut top);

    let restart_t = top.table(&mut cx, "restart");
    let restart = read_restart(&mut cx, restart_t);
    let stop_t = top.table(&mut cx, "stop");
    let stop = read_stop(&mut cx, stop_t);
    let logs_t = top.table(&mut cx, "logs");
    let logs = read_logs(
        &mut cx,
        logs_t,
        opts,
        name.as_ref().map_or("unnamed", |n| n.as_str()),
    );
    let service_t = top.table(&mut cx, "service");
    let service = read_service(&mut cx, service_t);
    let health_t = top.table(&mut cx, "health");
    let health = health_t.map(|t| read_health(&mut cx, t, &env));
    let limits_t = top.table(&mut cx, "limits");
    let limits = limits_t.map(|t| read_limits(&mut cx, t));
    let notify_t = top.table(&mut cx, "notify");
    let notify = notify_t.map(|t| read_notify(&mut cx, t, &env));
    let metrics_t = top.table(&mut cx, "metrics");
    let metrics = metrics_t.map(|t| read_metrics(&mut cx, t));
    let diagnostics_t = top.table(&mut cx, "diagnostics");
    let diagnostics = read_diagnostics(&mut cx, diagnostics_t);
    let upgrade_t = top.table(&mut cx, "upgrade");
    let upgrade = read_upgrade(&mut cx, upgrade_t);
    top.finish(&mut cx);
    let mut env = env;
    if diagnostics.dumps && !env.iter().any(|(k, _)| k == "GOTRACEBACK") {
        env.push(("GOTRACEBACK".into(), GOTRACEBACK.into()));
    }

    if let Some(why) = dir_problem(&working_dir) {
        cx.warn(
            "working_dir",
            format!("{why}; the program cannot start until that is fixed"),
        );
    }
    if let Some(cmd) = &command {
        check_program(&mut cx, "command", &cmd.program, &env);
    }

    let spec = match (name, command) {
        (Some(name), Some(command)) => Some(ServiceSpec {
            display_name: display_name.unwrap_or_else(|| name.to_string()),
            name,
            base_dir: config_dir.to_owned(),
            description,
            config_path: path.to_owned(),
            command,
            working_dir,
            env,
            restart,
            stop,
            logs,
            service,
            health,
            limits,
            notify,
            metrics,
            diagnostics,
            upgrade,
        }),
        _ => None,
    };
    cx.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    (spec, cx.problems)
}

fn read_command(
    cx: &mut Ctx<'_>,
    sec: &mut Section<'_>,
    key: &'static str,
    required: bool,
) -> Option<CommandSpec> {
    let full = sec.key(key);
    let Some(argv) = sec.strings(cx, key) else {
        if required && sec.table.is_some_and(|t| !t.contains_key(key)) {
            cx.error(
                &full,
                "missing: the program to run, as a list, e.g. command = [\"./server\", \"--port\", \"8080\"]",
            );
        }
        return None;
    };
    let Some((program, args)) = argv.split_first() else {
        cx.error(
            &full,
            "is empty: give at least the program, e.g. [\"./server\"]",
        );
        return None;
    };
    if program.trim().is_empty() {
        cx.error(&format!("{full}[0]"), "the program name is empty");
        return None;
    }
    if argv.iter().any(|a| a.contains('\0')) {
        cx.error(&full, "an argument contains a NUL character");
        return None;
    }
    let program = if program.contains('/') || program.contains('\\') {
        Program::Path(cx.resolve(program))
    } else {
        Program::Search(program.clone())
    };
    Some(CommandSpec {
        program,
        args: args.to_vec(),
    })
}

/// Warns when the program will not start on this machine as things stand.
fn check_program(cx: &mut Ctx<'_>, key: &str, program: &Program, env: &[(String, String)]) {
    match program {
        Program::Path(p) => {
            if let Err(e) = std::fs::metadata(p) {
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    "does not exist".to_owned()
                } else {
                    format!("cannot be looked at: {e}")
                };
                cx.warn(
                    &format!("{key}[0]"),
                    format!(
                        "`{}` {why}; tend will retry by the restart policy",
                        p.display()
                    ),
                );
            } else if !p.is_file() {
                cx.warn(
                    &format!("{key}[0]"),
                    format!("`{}` is not a file", p.display()),
                );
            } else if !is_executable(p) {
                cx.warn(
                    &format!("{key}[0]"),
                    format!("`{}` is not executable (chmod +x?)", p.display()),
                );
            }
        }
        Program::Search(name) => {
            let path_var = env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| std::ffi::OsString::from(v))
                .or_else(|| std::env::var_os("PATH"));
            if find_in_path(name, path_var.as_deref()).is_none() {
                cx.warn(
                    &format!("{key}[0]"),
                    format!(
                        "`{name}` was not found in PATH; use a path such as \"./{name}\" for a program next to the config"
                    ),
                );
            }
        }
    }
}

/// Looks a bare program name up in a `PATH` value, as the OS would.
#[must_use]
pub fn find_in_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let exts: Vec<String> = if cfg!(windows) {
        let pathext = std::env::var("PATHEXT").unwrap_or_else(|_| ".COM;.EXE;.BAT;.CMD".into());
        std::iter::once(String::new())
            .chain(pathext.split(';').map(str::to_owned))
            .collect()
    } else {
        vec![String::new()]
    };
    std::env::split_paths(path?).find_map(|dir| {
        exts.iter().find_map(|ext| {
            let cand = dir.join(format!("{name}{ext}"));
            (cand.is_file() && is_executable(&cand)).then_some(cand)
        })
    })
}

/// Why `p` cannot serve as a directory, with the OS's own error: `is_dir()` answers "no"
/// to "permission denied" too, which then read as "does not exist".
fn dir_problem(p: &Path) -> Option<String> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(format!("`{}` is not a directory", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("`{}` does not exist", p.display()))
        }
        Err(e) => Some(format!("`{}` cannot be looked at: {e}", p.display())),
    }
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> bool {
    true
}

fn read_env(cx: &mut Ctx<'_>, top: &mut Section<'_>) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    if let Some(file) = top.string(cx, "env_file") {
        let path = cx.resolve(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse_env_file(&text) {
                Ok(v) => vars = v,
                Err(errors) => {
                    for (line, e) in errors {
                        cx.error("env_file", format!("`{}` line {line}: {e}", path.display()));
                    }
                }
            },
            Err(e) => cx.error("env_file", format!("cannot read `{}`: {e}", path.display())),
        }
    }
    if let Some(table) = top.table(cx, "env") {
        for (k, v) in table {
            let key = format!("env.{k}");
            if let Err(e) = check_env_key(k) {
                cx.error(&key, e);
                continue;
            }
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Integer(i) => i.to_string(),
                Value::Boolean(b) => b.to_string(),
                Value::Float(f) => f.to_string(),
                v => {
                    cx.error(&key, format!("expected a string, found {}", type_name(v)));
                    continue;
                }
            };
            if value.contains('\0') {
                cx.error(&key, "the value contains a NUL character");
                continue;
            }
            // `env` wins over `env_file`: drop the file's value so the child sees one.
            vars.retain(|(name, _)| name != k);
            vars.push((k.clone(), value));
        }
    }
    vars
}

fn read_restart(cx: &mut Ctx<'_>, t: Option<&Table>) -> RestartSpec {
    let d = RestartSpec::default();
    let mut s = Section::new("restart", t);
    let policy = s.choice(
        cx,
        "policy",
        &[
            (RestartPolicy::Always, "always"),
            (RestartPolicy::OnFailure, "on-failure"),
            (RestartPolicy::Never, "never"),
        ],
        d.policy,
    );
    let success_exit_codes = match s.get("success_exit_codes") {
        None => d.success_exit_codes.clone(),
        Some(Value::Array(items)) => {
            let mut codes = Vec::new();
            for (i, v) in items.iter().enumerate() {
                match v {
                    Value::Integer(c) => match i32::try_from(*c) {
                        Ok(c) => codes.push(c),
                        // Windows codes such as 0xC0000005 arrive as u32; accept them as
                        // the i32 the OS reports.
                        Err(_) => match u32::try_from(*c) {
                            Ok(u) => codes.push(i32::from_ne_bytes(u.to_ne_bytes())),
                            Err(_) => cx.error(
                                &format!("restart.success_exit_codes[{i}]"),
                                format!("{c} is not a valid exit code"),
                            ),
                        },
                    },
                    v => cx.error(
                        &format!("restart.success_exit_codes[{i}]"),
                        format!("expected an integer, found {}", type_name(v)),
                    ),
                }
            }
            codes
        }
        Some(v) => {
            cx.error(
                "restart.success_exit_codes",
                format!("expected an array of integers, found {}", type_name(v)),
            );
            d.success_exit_codes.clone()
        }
    };
    let delay = s.duration(cx, "delay", d.delay);
    let max_delay = s.duration(cx, "max_delay", d.max_delay);
    let multiplier = match s.get("multiplier") {
        None => d.multiplier,
        Some(Value::Float(f)) if *f >= 1.0 && f.is_finite() => *f,
        #[allow(clippy::cast_precision_loss)]
        Some(Value::Integer(i)) if *i >= 1 => *i as f64,
        Some(v) => {
            cx.error(
                "restart.multiplier",
                format!(
                    "must be a number of at least 1.0 (1.0 = constant delay), found {}",
                    match v {
                        Value::Float(f) => f.to_string(),
                        Value::Integer(i) => i.to_string(),
                        v => type_name(v).to_owned(),
                    }
                ),
            );
            d.multiplier
        }
    };
    let reset_after = s.duration(cx, "reset_after", d.reset_after);
    let limit = s.int(cx, "limit", d.limit);
    let limit_window = s.duration(cx, "limit_window", d.limit_window);
    let on_give_up = read_command(cx, &mut s, "on_give_up", false);
    let hook_timeout = s.duration(cx, "hook_timeout", d.hook_timeout);
    if t.is_some_and(|t| t.contains_key("max_delay") && t.contains_key("delay"))
        && max_delay < delay
    {
        cx.error(
            "restart.max_delay",
            format!(
                "{} is shorter than restart.delay ({}); the cap must be at least the first delay",
                humantime::format_duration(max_delay),
                humantime::format_duration(delay)
            ),
        );
    }
    if hook_timeout.is_zero() {
        cx.error("restart.hook_timeout", "must be more than 0s");
    }
    s.finish(cx);
    RestartSpec {
        policy,
        success_exit_codes,
        delay,
        max_delay: max_delay.max(delay),
        multiplier,
        reset_after,
        limit,
        limit_window,
        on_give_up,
        hook_timeout,
    }
}

/// `[upgrade]`: read by `tend upgrade` and `tend rollback` only (docs/upgrade.md).
fn read_upgrade(cx: &mut Ctx<'_>, t: Option<&Table>) -> UpgradeSpec {
    let d = UpgradeSpec::default();
    let mut s = Section::new("upgrade", t);
    let verify = s.duration(cx, "verify", d.verify);
    if verify.is_zero() {
        cx.error(
            "upgrade.verify",
            "must be more than 0s: a release is verified by watching it run for this long",
        );
    }
    let verify_command = read_command(cx, &mut s, "verify_command", false);
    let keep = s.int(cx, "keep", d.keep);
    if keep == 0 {
        cx.error(
            "upgrade.keep",
            "must be at least 1 (the running release and the previous one are always kept)",
        );
    }
    let preserve = s.strings(cx, "preserve").unwrap_or_default();
    for (i, p) in preserve.iter().enumerate() {
        let path = Path::new(p);
        // Carried over from inside the old application directory into the new one: a path
        // that leaves it would copy (or overwrite) files elsewhere.
        let leaves = path.is_absolute()
            || p.starts_with('/')
            || p.starts_with('\\')
            || p.contains(':')
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir));
        if p.trim().is_empty() {
            cx.error(&format!("upgrade.preserve[{i}]"), "is empty");
        } else if leaves {
            cx.error(
                &format!("upgrade.preserve[{i}]"),
                format!(
                    "{p:?} must be a path inside the application directory, relative to it \
                     and without `..` (e.g. \"data\" or \"config/local.yaml\")"
                ),
            );
        }
    }
    s.finish(cx);
    UpgradeSpec {
        verify,
        verify_command,
        keep,
        preserve,
    }
}

fn read_stop(cx: &mut Ctx<'_>, t: Option<&Table>) -> StopSpec {
    let d = StopSpec::default();
    let mut s = Section::new("stop", t);
    let timeout = s.duration(cx, "timeout", d.timeout);
    let signal = match s.string(cx, "signal") {
        None => d.signal,
        Some(name) => StopSignal::parse(name).unwrap_or_else(|| {
            let names: Vec<_> = StopSignal::ALL.iter().map(|(_, n)| *n).collect();
            cx.error(
                "stop.signal",
                format!("{name:?} is not one of {}", names.join(", ")),
            );
            d.signal
        }),
    };
    let windows = s.choice(cx, "windows", &WindowsStop::ALL, d.windows);
    s.finish(cx);
    StopSpec {
        timeout,
        signal,
        windows,
    }
}

fn read_logs(cx: &mut Ctx<'_>, t: Option<&Table>, opts: &LoadOptions, name: &str) -> LogSpec {
    let default_dir = match &opts.log_dir {
        LogDirDefault::NextToConfig => cx.config_dir.join("logs"),
        LogDirDefault::Fixed(d) => d.clone(),
        LogDirDefault::Under(root) => root.join(name),
    };
    let d = LogSpec::with_dir(default_dir);
    let mut s = Section::new("logs", t);
    let dir = s.string(cx, "dir").map_or(d.dir.clone(), |p| cx.resolve(p));
    let mode = s.choice(
        cx,
        "mode",
        &[
            (LogMode::Separate, "separate"),
            (LogMode::Combined, "combined"),
        ],
        d.mode,
    );
    let timestamps = s.bool(cx, "timestamps", d.timestamps);
    let stream_tags = s.bool(cx, "stream_tags", d.stream_tags);
    let max_size = s.size(cx, "max_size", d.max_size);
    let rotate_every = s.choice(
        cx,
        "rotate_every",
        &[
            (RotateEvery::Never, "never"),
            (RotateEvery::Hourly, "hourly"),
            (RotateEvery::Daily, "daily"),
        ],
        d.rotate_every,
    );
    let keep = s.int(cx, "keep", d.keep);
    let max_age = s.duration(cx, "max_age", d.max_age);
    let max_total = s.size(cx, "max_total", d.max_total);
    let compress = s.bool(cx, "compress", d.compress);
    let format = s.choice(
        cx,
        "format",
        &[(LogFormat::Text, "text"), (LogFormat::Json, "json")],
        d.format,
    );
    let encoding = s
        .string(cx, "encoding")
        .and_then(|e| resolve_encoding(cx, e));
    let eventlog = s.choice(cx, "eventlog", &EventLogLines::ALL, d.eventlog);
    if eventlog != EventLogLines::Off && !cfg!(windows) {
        cx.warn(
            "logs.eventlog",
            "the Event Log is Windows'; ignored on this OS (the lines are in the log files)",
        );
    }
    let max_line = s.size(cx, "max_line", d.max_line as u64);
    if max_line < 1024 {
        cx.error("logs.max_line", "must be at least 1KiB");
    }
    if max_size != 0 && max_size < 4096 {
        cx.error(
            "logs.max_size",
            "must be 0 (no size rotation) or at least 4KiB",
        );
    }
    s.finish(cx);
    LogSpec {
        dir,
        mode,
        timestamps,
        stream_tags,
        max_size,
        rotate_every,
        keep,
        max_age,
        max_total,
        compress,
        max_line: usize::try_from(max_line.max(1024)).unwrap_or(usize::MAX),
        format,
        encoding,
        eventlog,
    }
}

/// `logs.encoding`: a WHATWG label encoding_rs knows, or Windows' `oem` / `ansi`, which
/// become the label of this system's code page (what the logs then use). `None` if the
/// value is refused (the problem is recorded).
fn resolve_encoding(cx: &mut Ctx<'_>, label: &str) -> Option<String> {
    let lower = label.trim().to_ascii_lowercase();
    if lower == "oem" || lower == "ansi" {
        return match system_code_page(lower == "ansi") {
            Ok(name) => Some(name.to_owned()),
            Err(problem) => {
                cx.error("logs.encoding", format!("\"{label}\": {problem}"));
                None
            }
        };
    }
    match encoding_rs::Encoding::for_label(lower.as_bytes()) {
        Some(_) => Some(lower),
        None => {
            cx.error(
                "logs.encoding",
                format!(
                    "\"{label}\" is not an encoding tend knows (examples: \"utf-8\", \"gbk\", \
                     \"gb18030\", \"utf-16le\", \"shift_jis\", \"windows-1252\", and on Windows \
                     \"oem\" or \"ansi\")"
                ),
            );
            None
        }
    }
}

/// The name of the system's ANSI (`GetACP`) or OEM (`GetOEMCP`) code page as an
/// encoding_rs label, or why it cannot be used.
#[cfg(windows)]
#[allow(unsafe_code)]
fn system_code_page(ansi: bool) -> Result<&'static str, String> {
    use windows_sys::Win32::Globalization::{GetACP, GetOEMCP};
    // SAFETY: both take nothing and only read the system's settings.
    let cp = unsafe { if ansi { GetACP() } else { GetOEMCP() } };
    u16::try_from(cp)
        .ok()
        .and_then(codepage::to_encoding)
        .map(encoding_rs::Encoding::name)
        .ok_or_else(|| {
            format!(
                "this system's {} code page is {cp}, which tend cannot decode (the DOS code \
                 pages 437 and 850 among others); name the encoding instead, e.g. \
                 \"windows-1252\"",
                if ansi { "ANSI" } else { "OEM" }
            )
        })
}

/// Only Windows has system code pages.
#[cfg(not(windows))]
fn system_code_page(_ansi: bool) -> Result<&'static str, String> {
    Err(
        "that is a Windows code page; on this OS give the encoding itself, e.g. \"gbk\" or \
         \"windows-1252\""
            .to_owned(),
    )
}

fn read_service(cx: &mut Ctx<'_>, t: Option<&Table>) -> InstallSpec {
    let d = InstallSpec::default();
    let mut s = Section::new("service", t);
    let start = s.choice(cx, "start", &StartMode::ALL, d.start);
    let depends_on = s.strings(cx, "depends_on").unwrap_or_default();
    for (i, dep) in depends_on.iter().enumerate() {
        if dep.trim().is_empty() || dep.contains(['/', '\\', '\0']) {
            cx.error(
                &format!("service.depends_on[{i}]"),
                format!("{dep:?} is not a service name"),
            );
        }
    }
    let account_name = s.string(cx, "account");
    let password_env = s.string(cx, "password_env").map(str::to_owned);
    let account = match account_name {
        None | Some("isolated") => Account::Isolated,
        Some("system") => Account::System,
        Some("local-service") => Account::LocalService,
        Some("network-service") => Account::NetworkService,
        Some(name) if name.trim().is_empty() => {
            cx.error(
                "service.account",
                "is empty: use isolated, system, local-service, network-service or a user name",
            );
            Account::Isolated
        }
        Some(name) => Account::User {
            name: name.to_owned(),
            password_env: password_env.clone(),
        },
    };
    if password_env.is_some() && !matches!(account, Account::User { .. }) {
        cx.error(
            "service.password_env",
            "only applies when account is a user name such as \"DOMAIN\\\\user\"",
        );
    }
    let preshutdown_timeout = s.duration(cx, "preshutdown_timeout", d.preshutdown_timeout);
    let hardening = s.choice(cx, "hardening", &Hardening::ALL, d.hardening);
    s.finish(cx);
    InstallSpec {
        start,
        depends_on,
        account,
        preshutdown_timeout,
        hardening,
    }
}

/// A duration that must not be zero (intervals, timeouts, windows).
fn positive_duration(
    cx: &mut Ctx<'_>,
    s: &mut Section<'_>,
    key: &'static str,
    default: Duration,
) -> Duration {
    let d = s.duration(cx, key, default);
    if d.is_zero() {
        cx.error(&s.key(key), "must be more than 0s");
        return default;
    }
    d
}

/// An optional duration that, when given, must not be zero (`what_else`: how to get the
/// effect of zero instead).
fn optional_duration(
    cx: &mut Ctx<'_>,
    s: &mut Section<'_>,
    key: &'static str,
    what_else: &str,
) -> Option<Duration> {
    if !s.table.is_some_and(|t| t.contains_key(key)) {
        // Still asked for, so the key is known to the unknown-key check.
        s.get(key);
        return None;
    }
    let errors = cx.problems.len();
    let v = s.duration(cx, key, Duration::ZERO);
    if v.is_zero() && cx.problems.len() == errors {
        cx.error(
            &s.key(key),
            format!("must be more than 0s (leave it out {what_else})"),
        );
    }
    (!v.is_zero()).then_some(v)
}

/// An `http://` or `https://` URL, checked now so a typo is an error with a line rather
/// than a probe or an alert that fails forever.
fn http_url(cx: &mut Ctx<'_>, s: &mut Section<'_>, key: &'static str) -> Option<HttpUrl> {
    let url = s.string(cx, key)?;
    HttpUrl::parse(url)
        .map_err(|e| cx.error(&s.key(key), e.to_string()))
        .ok()
}

/// `ca_file` and `insecure_skip_verify` of `[health]` or `[notify]`, judged against the URL
/// they are for (`url_key`: `http` or `webhook`; `url`: what it parsed to, if anything).
fn read_tls(
    cx: &mut Ctx<'_>,
    s: &mut Section<'_>,
    t: &Table,
    url_key: &str,
    url: Option<&HttpUrl>,
) -> TlsOptions {
    let ca_file = s.string(cx, "ca_file").map(|p| cx.resolve(p));
    let insecure = s.bool(cx, "insecure_skip_verify", false);
    let section = s.path.clone();
    let is_https = url.is_some_and(HttpUrl::is_https);
    // Only when the URL parsed: a broken URL already has its own error.
    let plain = url.is_some() && !is_https;
    let written = |k: &str| t.contains_key(k);
    if written("ca_file") || written("insecure_skip_verify") {
        if !t.contains_key(url_key) {
            cx.warn(
                &section,
                format!(
                    "ca_file and insecure_skip_verify apply to an https:// {section}.{url_key} \
                     only; there is none, so they are ignored"
                ),
            );
        } else if plain {
            cx.warn(
                &format!("{section}.{url_key}"),
                format!(
                    "is http://, so {section}.ca_file and {section}.insecure_skip_verify are \
                     ignored (no TLS)"
                ),
            );
        }
    }
    if let Some(path) = &ca_file {
        // Read now, so a wrong path is an error with a line instead of every probe or alert
        // failing. Only a textual check: the certificates are parsed when first used.
        match std::fs::read_to_string(path) {
            Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => {}
            Ok(_) => cx.error(
                &format!("{section}.ca_file"),
                format!(
                    "`{}` has no PEM certificate (-----BEGIN CERTIFICATE-----): give the CA's \
                     certificate in PEM form",
                    path.display()
                ),
            ),
            Err(e) => cx.error(
                &format!("{section}.ca_file"),
                format!("cannot read `{}`: {e}", path.display()),
            ),
        }
    }
    if insecure {
        if ca_file.is_some() {
            cx.error(
                &format!("{section}.insecure_skip_verify"),
                "contradicts ca_file: with insecure_skip_verify = true no certificate is \
                 checked at all. Keep ca_file (the safe way to trust a private CA) and drop \
                 insecure_skip_verify",
            );
        } else if is_https {
            cx.warn(
                &format!("{section}.insecure_skip_verify"),
                format!(
                    "INSECURE: the TLS certificate of {} is not verified, so anyone on the \
                     network path can impersonate it{}. Use ca_file = \"ca.pem\" to trust a \
                     private CA instead",
                    // Scheme and host only: a webhook's path and query carry its token.
                    url.map(|u| format!("https://{}", u.host_header()))
                        .unwrap_or_default(),
                    if section == "notify" {
                        " and read the alerts"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    TlsOptions {
        ca_file,
        insecure_skip_verify: insecure,
    }
}

fn read_health(cx: &mut Ctx<'_>, t: &Table, env: &[(String, String)]) -> HealthSpec {
    let d = HealthSpec::default();
    let mut s = Section::new("health", Some(t));
    let url = http_url(cx, &mut s, "http");
    let tls = read_tls(cx, &mut s, t, "http", url.as_ref());
    let http = url.map(|url| CheckSpec::Http(HttpCheck { url, tls }));
    let tcp = s.string(cx, "tcp").and_then(|target| {
        TcpTarget::parse(target)
            .map_err(|e| cx.error("health.tcp", e.to_string()))
            .ok()
            .map(CheckSpec::Tcp)
    });
    let command = read_command(cx, &mut s, "command", false);
    if let Some(c) = &command {
        check_program(cx, "health.command", &c.program, env);
    }
    let interval = positive_duration(cx, &mut s, "interval", d.interval);
    let timeout = positive_duration(cx, &mut s, "timeout", d.timeout);
    let start_period = s.duration(cx, "start_period", d.start_period);
    let failures = s.int(cx, "failures", d.failures);
    if failures == 0 {
        cx.error(
            "health.failures",
            "must be at least 1 (the number of failed checks in a row that make the program unhealthy)",
        );
    }
    let on_unhealthy = s.choice(cx, "on_unhealthy", &Reaction::ALL, d.on_unhealthy);
    let silence = optional_duration(cx, &mut s, "silence", "to turn the watchdog off");
    // Which checks were written, not which parsed: a bad `http` next to a `tcp` is still
    // two checks.
    let written: Vec<&str> = ["http", "tcp", "command"]
        .into_iter()
        .filter(|k| t.contains_key(*k))
        .collect();
    if written.len() > 1 {
        cx.error(
            &format!("health.{}", written[1]),
            format!(
                "only one check per service: {} are both set; keep one of http, tcp, command",
                written
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        );
    } else if written.is_empty() && !t.contains_key("silence") {
        cx.error(
            "health",
            "nothing to check: set one of http, tcp, command (and/or silence for the hang watchdog)",
        );
    }
    s.finish(cx);
    HealthSpec {
        check: http.or(tcp).or(command.map(CheckSpec::Command)),
        interval,
        timeout,
        start_period,
        failures: failures.max(1),
        on_unhealthy,
        silence,
    }
}

fn read_limits(cx: &mut Ctx<'_>, t: &Table) -> LimitsSpec {
    let d = LimitsSpec::default();
    let mut s = Section::new("limits", Some(t));
    let memory = if t.contains_key("memory") {
        let errors = cx.problems.len();
        let v = s.size(cx, "memory", 0);
        if v == 0 && cx.problems.len() == errors {
            cx.error(
                "limits.memory",
                "must be more than 0 (leave it out for no memory limit)",
            );
        }
        (v > 0).then_some(v)
    } else {
        // Asked for all the same, so it is listed among the known keys.
        s.get("memory");
        None
    };
    let memory_for = s.duration(cx, "memory_for", d.memory_for);
    let cpu_percent = match s.get("cpu_percent") {
        None => None,
        #[allow(clippy::cast_precision_loss, reason = "a percentage, far below 2^52")]
        Some(Value::Integer(i)) if *i > 0 => Some(*i as f64),
        Some(Value::Float(f)) if *f > 0.0 && f.is_finite() => Some(*f),
        Some(v) => {
            cx.error(
                "limits.cpu_percent",
                format!(
                    "must be a number above 0, in percent of one core (200 = two busy cores), found {}",
                    match v {
                        Value::Integer(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        v => type_name(v).to_owned(),
                    }
                ),
            );
            None
        }
    };
    let cpu_for = positive_duration(cx, &mut s, "cpu_for", d.cpu_for);
    let action = s.choice(cx, "action", &Reaction::ALL, d.action);
    let sample_every = positive_duration(cx, &mut s, "sample_every", d.sample_every);
    if cpu_percent.is_some() && cpu_for < sample_every {
        cx.error(
            "limits.cpu_for",
            format!(
                "{} is shorter than limits.sample_every ({}): the CPU average needs at least two samples",
                humantime::format_duration(cpu_for),
                humantime::format_duration(sample_every)
            ),
        );
    }
    if cfg!(target_os = "macos") {
        cx.warn(
            "limits",
            "resource limits are not measured on macOS yet: this section is ignored here",
        );
    }
    s.finish(cx);
    LimitsSpec {
        memory,
        memory_for,
        cpu_percent,
        cpu_for,
        action,
        sample_every,
    }
}

fn read_notify(cx: &mut Ctx<'_>, t: &Table, env: &[(String, String)]) -> NotifySpec {
    let d = NotifySpec::default();
    let mut s = Section::new("notify", Some(t));
    let command = read_command(cx, &mut s, "command", false);
    if let Some(c) = &command {
        check_program(cx, "notify.command", &c.program, env);
    }
    let webhook = http_url(cx, &mut s, "webhook");
    let tls = read_tls(cx, &mut s, t, "webhook", webhook.as_ref());
    let format = s.choice(cx, "format", &WebhookFormat::ALL, WebhookFormat::Generic);
    let secret = s.string(cx, "secret").and_then(|v| {
        if v.is_empty() {
            cx.error(
                "notify.secret",
                "is empty (leave it out when the robot is not set to sign)",
            );
            return None;
        }
        if !matches!(format, WebhookFormat::DingTalk | WebhookFormat::Feishu) {
            cx.error(
                "notify.secret",
                "signs DingTalk and Feishu/Lark webhooks only: set format = \"dingtalk\" or \
                 \"feishu\", or drop secret",
            );
            return None;
        }
        Some(Secret::new(v))
    });
    if format != WebhookFormat::Generic && !t.contains_key("webhook") {
        cx.warn(
            "notify.format",
            "shapes the webhook's body only, and there is no notify.webhook: ignored (the \
             command always gets tend's generic JSON)",
        );
    }
    let events = match s.strings(cx, "events") {
        None => d.events,
        Some(names) => {
            let mut events = Vec::new();
            for (i, name) in names.iter().enumerate() {
                match AlertKind::parse(name) {
                    Some(k) if !events.contains(&k) => events.push(k),
                    Some(_) => {}
                    None => {
                        let all: Vec<String> = AlertKind::ALL
                            .iter()
                            .map(|(_, n)| format!("\"{n}\""))
                            .collect();
                        cx.error(
                            &format!("notify.events[{i}]"),
                            format!("{name:?} is not one of {}", all.join(", ")),
                        );
                    }
                }
            }
            events
        }
    };
    if !t.contains_key("command") && !t.contains_key("webhook") {
        cx.error(
            "notify",
            "nowhere to send alerts: set command, webhook, or both",
        );
    }
    s.finish(cx);
    NotifySpec {
        command,
        webhook,
        format,
        secret,
        tls,
        events,
    }
}

/// What `[diagnostics] dumps` puts in the program's environment (unless `env` or `env_file`
/// sets it): a crashing Go program then reports to Windows Error Reporting, which writes the
/// dump, or raises SIGABRT on Unix for a core file. Other programs ignore it.
const GOTRACEBACK: &str = if cfg!(windows) { "wer" } else { "crash" };

fn read_diagnostics(cx: &mut Ctx<'_>, t: Option<&Table>) -> DiagnosticsSpec {
    let d = DiagnosticsSpec::default();
    let mut s = Section::new("diagnostics", t);
    let dumps = s.bool(cx, "dumps", d.dumps);
    let dump_count = s.int(cx, "dump_count", d.dump_count);
    if dump_count == 0 {
        cx.error(
            "diagnostics.dump_count",
            "must be at least 1 (set dumps = false to keep none)",
        );
    }
    let dump_type = s.choice(cx, "dump_type", &DumpType::ALL, d.dump_type);
    if !dumps && let Some(t) = t {
        for key in ["dump_count", "dump_type"] {
            if t.contains_key(key) {
                cx.warn(
                    &format!("diagnostics.{key}"),
                    "has no effect without dumps = true",
                );
            }
        }
    }
    s.finish(cx);
    DiagnosticsSpec {
        dumps,
        dump_count: dump_count.max(1),
        dump_type,
    }
}

fn read_metrics(cx: &mut Ctx<'_>, t: &Table) -> MetricsSpec {
    let mut s = Section::new("metrics", Some(t));
    let textfile = s.string(cx, "textfile").map(|p| cx.resolve(p));
    if let Some(dir) = &textfile
        && let Some(why) = dir_problem(dir)
    {
        cx.warn(
            "metrics.textfile",
            format!("{why}; the metrics file cannot be written until that is fixed"),
        );
    }
    // Read first: `listen` is judged by it.
    let allow_remote = s.bool(cx, "allow_remote", false);
    let listen = s.string(cx, "listen").and_then(|addr| {
        validate_listen(addr, allow_remote)
            .map_err(|e| cx.error("metrics.listen", e))
            .ok()
    });
    if !t.contains_key("textfile") && !t.contains_key("listen") {
        cx.error(
            "metrics",
            "nowhere to export metrics: set textfile, listen, or both",
        );
    }
    s.finish(cx);
    MetricsSpec {
        textfile,
        listen,
        allow_remote,
    }
}
