//! supervisord: the `[program:x]` sections of a supervisord.conf (supervisord's
//! "Configuration File" docs; defaults as in supervisor/options.py).

use std::time::Duration;

use crate::Source;
use crate::args::split_posix;
use crate::draft::{Draft, set_name, size};
use crate::error::{At, ImportError};

struct Section {
    name: String,
    line: usize,
    /// (key lowercased, value, line)
    values: Vec<(String, String, usize)>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&(String, String, usize)> {
        self.values.iter().rev().find(|(k, _, _)| k == key)
    }
}

/// Python's configparser as supervisord sets it up: `key = value` or `key: value`, `;` and
/// `#` comments (inline ones after whitespace), indented continuation lines.
fn sections(text: &str, at: &At) -> Result<Vec<Section>, ImportError> {
    let mut out: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') || trimmed.starts_with('#') {
            continue;
        }
        if raw.starts_with([' ', '\t'])
            && let Some(last) = out.last_mut().and_then(|s| s.values.last_mut())
        {
            last.1.push('\n');
            last.1.push_str(strip_inline_comment(trimmed));
            continue;
        }
        if trimmed.starts_with('[') {
            let Some(end) = trimmed.find(']') else {
                return Err(at.err(Some(line_no), None, "a section header must end with ]"));
            };
            out.push(Section {
                name: trimmed[1..end].trim().to_owned(),
                line: line_no,
                values: Vec::new(),
            });
            continue;
        }
        let Some(sep) = trimmed.find(['=', ':']) else {
            return Err(at.err(
                Some(line_no),
                None,
                format!("expected `key = value`, found {trimmed:?}"),
            ));
        };
        let Some(section) = out.last_mut() else {
            return Err(at.err(Some(line_no), None, "a setting before any [section]"));
        };
        section.values.push((
            trimmed[..sep].trim().to_ascii_lowercase(),
            strip_inline_comment(trimmed[sep + 1..].trim()).to_owned(),
            line_no,
        ));
    }
    Ok(out)
}

fn strip_inline_comment(v: &str) -> &str {
    let b = v.as_bytes();
    for i in 1..b.len() {
        if (b[i] == b';' || b[i] == b'#') && b[i - 1].is_ascii_whitespace() {
            return v[..i].trim_end();
        }
    }
    v
}

/// Python `%` formatting as supervisord expands option values: `%(name)s`, `%(name)d`,
/// `%(name)02d`, and `%%`.
fn expand(s: &str, vars: &[(String, String)]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        if let Some(r) = after.strip_prefix('%') {
            out.push('%');
            rest = r;
            continue;
        }
        let Some(r) = after.strip_prefix('(') else {
            return Err(format!("a lone % in {s:?} (write %% for a percent sign)"));
        };
        let Some(close) = r.find(')') else {
            return Err(format!("an unclosed %( in {s:?}"));
        };
        let name = &r[..close];
        let spec_end = r[close + 1..]
            .find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(|| format!("%({name}) has no conversion (s or d) in {s:?}"))?;
        let flags = &r[close + 1..close + 1 + spec_end];
        let conv = r.as_bytes()[close + 1 + spec_end] as char;
        let value = vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                format!(
                    "%({name}){conv} cannot be expanded (known: here, program_name, process_num, \
                     group_name, numprocs, ENV_<variable>)"
                )
            })?;
        match conv {
            'd' => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| format!("%({name})d is not a number"))?;
                let width: usize = flags.trim_start_matches('0').parse().unwrap_or(0);
                if flags.starts_with('0') {
                    out.push_str(&format!("{n:0width$}"));
                } else {
                    out.push_str(&format!("{n:width$}"));
                }
            }
            _ => out.push_str(&value),
        }
        rest = &r[close + 2 + spec_end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// supervisord's `environment=KEY="val",KEY2=val2` (datatypes.dict_of_key_value_pairs: a
/// shlex lexer where quotes group and `=` and `,` separate).
fn env_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut in_tok = false;
    let mut chars = s.chars().peekable();
    let word = |c: char| c.is_alphanumeric() || "_/.+-():".contains(c);
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_tok {
                    tokens.push(std::mem::take(&mut cur));
                    in_tok = false;
                }
            }
            '"' | '\'' => {
                in_tok = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' && matches!(chars.peek(), Some('"' | '\\')) => {
                            cur.push(chars.next().unwrap_or('\\'));
                        }
                        Some(x) => cur.push(x),
                        None => return Err("a quote is not closed".into()),
                    }
                }
            }
            c if word(c) => {
                in_tok = true;
                cur.push(c);
            }
            c => {
                if in_tok {
                    tokens.push(std::mem::take(&mut cur));
                    in_tok = false;
                }
                tokens.push(c.to_string());
            }
        }
    }
    if in_tok {
        tokens.push(cur);
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens.len() < i + 3 || tokens[i + 1] != "=" {
            return Err(format!(
                "expected KEY=value pairs separated by commas (quote values with spaces or \
                 other characters: KEY=\"a b\"), found {s:?}"
            ));
        }
        out.push((tokens[i].clone(), tokens[i + 2].clone()));
        if let Some(sep) = tokens.get(i + 3)
            && sep != ","
        {
            return Err(format!(
                "expected `,` after {}={:?}",
                tokens[i],
                tokens[i + 2]
            ));
        }
        i += 4;
    }
    Ok(out)
}

fn boolean(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// supervisord's byte sizes: KB, MB, GB are powers of 1024.
fn byte_size(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_uppercase();
    for (suffix, mult) in [("KB", 1u64 << 10), ("MB", 1 << 20), ("GB", 1 << 30)] {
        if let Some(n) = v.strip_suffix(suffix) {
            return n.trim().parse::<u64>().ok().map(|n| n * mult);
        }
    }
    v.parse().ok()
}

pub(crate) fn convert(
    src: &Source<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Draft>, ImportError> {
    let file = src.path.display().to_string();
    let at = At::new(file.clone());
    let all = sections(src.text, &at)?;
    let here = src.dir.as_ref().map(|d| d.display().to_string());
    let mut global_env: Vec<(String, String)> = Vec::new();
    if let Some(sd) = all.iter().find(|s| s.name == "supervisord")
        && let Some((_, v, line)) = sd.get("environment")
    {
        global_env = env_pairs(v)
            .map_err(|m| at.err(Some(*line), Some("[supervisord] environment".into()), m))?;
    }
    let mut drafts = Vec::new();
    for s in &all {
        let kind = s.name.split(':').next().unwrap_or("");
        match kind {
            "program" => drafts.extend(program(s, src, &at, &file, here.as_deref(), &global_env)?),
            "include" => warnings.push(format!(
                "{file}:{}: [include] files = {} is not followed: import those files too",
                s.line,
                s.get("files").map(|v| v.1.as_str()).unwrap_or("")
            )),
            "eventlistener" | "fcgi-program" => warnings.push(format!(
                "{file}:{}: [{}] is not imported: tend supervises plain programs",
                s.line, s.name
            )),
            "group" => warnings.push(format!(
                "{file}:{}: [{}] is not imported: each program becomes a service of its own",
                s.line, s.name
            )),
            _ => {}
        }
    }
    if drafts.is_empty() {
        return Err(at.err(None, None, "no [program:x] section"));
    }
    Ok(drafts)
}

fn program(
    s: &Section,
    src: &Source<'_>,
    at: &At,
    file: &str,
    here: Option<&str>,
    global_env: &[(String, String)],
) -> Result<Vec<Draft>, ImportError> {
    let program_name = s
        .name
        .split_once(':')
        .map_or("", |(_, n)| n)
        .trim()
        .to_owned();
    let setting = |k: &str| Some(format!("[{}] {k}", s.name));
    let bad = |k: &str, line: usize, m: String| at.err(Some(line), setting(k), m);
    let numprocs: u32 = match s.get("numprocs") {
        Some((_, v, l)) => v
            .parse()
            .map_err(|_| bad("numprocs", *l, format!("{v:?} is not a number")))?,
        None => 1,
    };
    let numprocs_start: u32 = match s.get("numprocs_start") {
        Some((_, v, l)) => v
            .parse()
            .map_err(|_| bad("numprocs_start", *l, format!("{v:?} is not a number")))?,
        None => 0,
    };
    let mut out = Vec::new();
    for num in numprocs_start..numprocs_start + numprocs {
        let mut vars: Vec<(String, String)> = vec![
            ("program_name".into(), program_name.clone()),
            ("group_name".into(), program_name.clone()),
            ("process_num".into(), num.to_string()),
            ("numprocs".into(), numprocs.to_string()),
        ];
        if let Some(h) = here {
            vars.push(("here".into(), h.to_owned()));
        }
        let mut used_env = false;
        for (k, v) in &src.env {
            vars.push((format!("ENV_{k}"), v.clone()));
        }
        let get =
            |k: &str, vars: &[(String, String)]| -> Result<Option<(String, usize)>, ImportError> {
                match s.get(k) {
                    None => Ok(None),
                    Some((_, v, l)) => expand(v, vars)
                        .map(|e| Some((e, *l)))
                        .map_err(|m| bad(k, *l, m)),
                }
            };
        let mut d = Draft::new(format!("supervisord config {file}"));
        // Environment first: its variables are ENV_ expansions in the other options.
        let mut env = global_env.to_vec();
        if let Some((raw, line)) = get("environment", &vars)? {
            let pairs = env_pairs(&raw).map_err(|m| bad("environment", line, m))?;
            env.extend(pairs);
        }
        for (k, v) in &env {
            d.env(k, v);
            vars.push((format!("ENV_{k}"), v.clone()));
        }
        if s.values.iter().any(|(_, v, _)| v.contains("%(ENV_")) {
            used_env = true;
        }
        let process_name = match s.get("process_name") {
            Some((_, v, l)) => expand(v, &vars).map_err(|m| bad("process_name", *l, m))?,
            None if numprocs > 1 => format!("{program_name}_{num}"),
            None => program_name.clone(),
        };
        if !set_name(&mut d, &process_name, "the supervisord process name") {
            return Err(bad(
                "process_name",
                s.line,
                "is not a usable service name".into(),
            ));
        }
        let Some((command, cline)) = get("command", &vars)? else {
            return Err(at.err(
                Some(s.line),
                setting("command"),
                "missing: every program needs a command",
            ));
        };
        let argv = split_posix(&command).map_err(|m| bad("command", cline, m))?;
        if argv.is_empty() {
            return Err(bad("command", cline, "is empty".into()));
        }
        d.set_list("command", &argv);
        if let Some((dir, _)) = get("directory", &vars)? {
            d.set_str("working_dir", &dir);
        } else {
            d.note("working_dir", "supervisord started the program in its own working directory (no directory=); tend uses the config's directory: set working_dir");
        }
        if used_env {
            d.note("env", "the %(ENV_x)s expansions were filled from the environment of `tend import`, which may not be supervisord's");
        }

        // Restarts (defaults from supervisor/options.py).
        let autorestart = get("autorestart", &vars)?
            .map(|(v, _)| v.to_ascii_lowercase())
            .unwrap_or_else(|| "unexpected".into());
        let exitcodes: Vec<i64> = match get("exitcodes", &vars)? {
            Some((v, l)) => v
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse()
                        .map_err(|_| bad("exitcodes", l, format!("{c:?} is not an exit code")))
                })
                .collect::<Result<_, _>>()?,
            None => vec![0],
        };
        match autorestart.as_str() {
            "unexpected" => {
                d.set_str("restart.policy", "on-failure");
                d.set(
                    "restart.success_exit_codes",
                    toml::Value::Array(exitcodes.into_iter().map(toml::Value::Integer).collect()),
                );
            }
            a => match boolean(a) {
                Some(true) => d.set_str("restart.policy", "always"),
                Some(false) => d.set_str("restart.policy", "never"),
                None => {
                    let l = s.get("autorestart").map_or(s.line, |v| v.2);
                    return Err(bad(
                        "autorestart",
                        l,
                        format!("{a:?} is not true, false or unexpected"),
                    ));
                }
            },
        }
        let startsecs: u64 = match get("startsecs", &vars)? {
            Some((v, l)) => v
                .parse()
                .map_err(|_| bad("startsecs", l, format!("{v:?} is not a number of seconds")))?,
            None => 1,
        };
        let startretries: i64 = match get("startretries", &vars)? {
            Some((v, l)) => v
                .parse()
                .map_err(|_| bad("startretries", l, format!("{v:?} is not a number")))?,
            None => 3,
        };
        if d.get("restart.policy").and_then(|v| v.as_str()) != Some("never") {
            d.set_duration("restart.reset_after", Duration::from_secs(startsecs.max(1)));
            d.set("restart.limit", startretries.max(0));
            d.set_str("restart.limit_window", "1d");
            d.note(
                "restart.limit",
                format!("supervisord gave up (FATAL) after startretries = {startretries} starts in a row that ended within startsecs = {startsecs}, and restarted a program that had run longer without limit; tend gives up after `limit` restarts counted since the last run of at least reset_after"),
            );
        }
        if let Some((sig, l)) = get("stopsignal", &vars)? {
            let up = sig.trim().to_ascii_uppercase();
            let full = if up.starts_with("SIG") {
                up.clone()
            } else {
                format!("SIG{up}")
            };
            match full.as_str() {
                "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGQUIT" | "SIGUSR1" | "SIGUSR2" => d.set_str("stop.signal", &full),
                "SIGKILL" => d.note("stop.signal", "supervisord stopsignal = KILL: tend's graceful step is a catchable signal; it kills the tree after stop.timeout"),
                _ => return Err(bad("stopsignal", l, format!("{sig:?} is not TERM, HUP, INT, QUIT, KILL, USR1 or USR2"))),
            }
        }
        if let Some((v, l)) = get("stopwaitsecs", &vars)? {
            let secs: u64 = v.parse().map_err(|_| {
                bad(
                    "stopwaitsecs",
                    l,
                    format!("{v:?} is not a number of seconds"),
                )
            })?;
            d.set_duration("stop.timeout", Duration::from_secs(secs));
        }
        if get("stopasgroup", &vars)?.and_then(|(v, _)| boolean(&v)) != Some(true) {
            d.note("stop.signal", "supervisord signalled only the program (stopasgroup = false); tend signals its whole process group");
        }

        // Logs: tend names its own files; the directory of stdout_logfile is kept.
        let redirect = get("redirect_stderr", &vars)?
            .and_then(|(v, _)| boolean(&v))
            .unwrap_or(false);
        if redirect {
            d.set_str("logs.mode", "combined");
        }
        let stdout = get("stdout_logfile", &vars)?.map(|(v, _)| v);
        match stdout.as_deref() {
            None | Some("AUTO") => d.note("logs.dir", "supervisord kept AUTO log files in its temporary directory; tend writes <name>.out.log and <name>.err.log in logs.dir"),
            Some("NONE") => d.note("logs.dir", "supervisord stdout_logfile = NONE discarded the output; tend always captures it"),
            Some(path) => {
                if let Some(dir) = crate::nssm::parent_dir(path) {
                    d.set_str("logs.dir", &dir);
                }
                d.note("logs.dir", format!("supervisord stdout_logfile = {path}: tend writes <name>.out.log and <name>.err.log (or <name>.log combined) in logs.dir"));
            }
        }
        match get("stdout_logfile_maxbytes", &vars)? {
            Some((v, l)) => {
                let b = byte_size(&v).ok_or_else(|| {
                    bad(
                        "stdout_logfile_maxbytes",
                        l,
                        format!("{v:?} is not a size (e.g. 50MB)"),
                    )
                })?;
                d.set_str("logs.max_size", &size(if b == 0 { 0 } else { b.max(4096) }));
            }
            None => d.set_str("logs.max_size", "50MiB"),
        }
        match get("stdout_logfile_backups", &vars)? {
            Some((v, l)) => {
                let n: i64 = v.parse().map_err(|_| {
                    bad(
                        "stdout_logfile_backups",
                        l,
                        format!("{v:?} is not a number"),
                    )
                })?;
                if n == 0 {
                    d.set("logs.keep", 1);
                    d.note("logs.keep", "supervisord stdout_logfile_backups = 0 kept no rotated file; tend's keep = 0 would mean no limit, so 1 is kept");
                } else {
                    d.set("logs.keep", n);
                }
            }
            None => d.set("logs.keep", 10),
        }
        d.set_str("logs.rotate_every", "never");
        for k in [
            "stderr_logfile",
            "stderr_logfile_maxbytes",
            "stderr_logfile_backups",
        ] {
            if let Some((v, _)) = get(k, &vars)? {
                d.note("logs.max_size", format!("supervisord {k} = {v}: tend rotates stdout and stderr by the same [logs] settings"));
            }
        }
        if let Some((u, _)) = get("user", &vars)? {
            d.set_str("service.account", &u);
        } else {
            d.set_str("service.account", "system");
            d.note("service.account", "supervisord ran the program as its own user (usually root) without user=; tend's default, \"isolated\", is safer if the program needs no more");
        }
        match get("autostart", &vars)?.and_then(|(v, _)| boolean(&v)) {
            Some(false) => d.set_str("service.start", "manual"),
            _ => d.set_str("service.start", "auto"),
        }
        let notes: &[(&str, &'static str, &str)] = &[
            (
                "priority",
                "service.depends_on",
                "tend orders services only by depends_on",
            ),
            (
                "umask",
                "command",
                "tend sets no umask; the program inherits tend's",
            ),
            ("serverurl", "env", "tend sets no SUPERVISOR_SERVER_URL"),
            (
                "stdout_capture_maxbytes",
                "logs.max_size",
                "tend has no capture mode",
            ),
            (
                "stdout_events_enabled",
                "notify.events",
                "tend sends events through [notify]",
            ),
            (
                "stderr_events_enabled",
                "notify.events",
                "tend sends events through [notify]",
            ),
            (
                "stdout_syslog",
                "logs.dir",
                "tend writes log files (and its own lines to the journal under systemd)",
            ),
            ("stderr_syslog", "logs.dir", "tend writes log files"),
            (
                "killasgroup",
                "stop.signal",
                "tend always kills the whole process tree",
            ),
        ];
        for (k, key, instead) in notes {
            if let Some((v, _)) = get(k, &vars)? {
                if *k == "killasgroup" && boolean(&v) == Some(true) {
                    continue;
                }
                d.note(key, format!("supervisord {k} = {v}: {instead}"));
            }
        }
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{command, table};

    /// Written from supervisord's "Configuration File" docs ([program:x] Section Values).
    const CONF: &str = r#"[supervisord]
logfile=/tmp/supervisord.log ; main log file
environment=SHARED="from supervisord"

[program:cat]
command=/bin/cat -n "a b" 'it''s' %(here)s/x ; the program
process_name=%(program_name)s
directory=/tmp
environment=A="1",B="x, y",HOME="/home/chrism"
autorestart=unexpected
exitcodes=0,2
startsecs=10
startretries=5
stopsignal=QUIT
stopwaitsecs=20
user=chrism
redirect_stderr=true
stdout_logfile=/a/path/cat.log
stdout_logfile_maxbytes=1MB
stdout_logfile_backups=4
priority=999
umask=022

[program:worker]
command=/usr/bin/worker --id %(process_num)02d
process_name=%(program_name)s_%(process_num)02d
numprocs=2
autorestart=true

[include]
files = /etc/supervisor/conf.d/*.conf
"#;

    #[test]
    fn programs_and_their_processes() {
        let mut src = Source::new("supervisord.conf".as_ref(), CONF);
        src.dir = Some("/etc/supervisor".into());
        let mut w = Vec::new();
        let drafts = convert(&src, &mut w).unwrap();
        assert_eq!(drafts.len(), 3);
        assert_eq!(w.len(), 1);
        let out = drafts[0].render();
        let t = table(&out);
        let cmd = command(&t);
        assert_eq!(cmd, ["/bin/cat", "-n", "a b", "its", "/etc/supervisor/x"]);
        assert_eq!(t["env"]["SHARED"].as_str(), Some("from supervisord"));
        assert_eq!(t["env"]["B"].as_str(), Some("x, y"));
        assert_eq!(t["restart"]["policy"].as_str(), Some("on-failure"));
        assert_eq!(
            t["restart"]["success_exit_codes"].as_array().unwrap().len(),
            2
        );
        assert_eq!(t["restart"]["limit"].as_integer(), Some(5));
        assert_eq!(t["restart"]["reset_after"].as_str(), Some("10s"));
        assert_eq!(t["stop"]["signal"].as_str(), Some("SIGQUIT"));
        assert_eq!(t["stop"]["timeout"].as_str(), Some("20s"));
        assert_eq!(t["logs"]["mode"].as_str(), Some("combined"));
        assert_eq!(t["logs"]["dir"].as_str(), Some("/a/path"));
        assert_eq!(t["logs"]["max_size"].as_str(), Some("1MiB"));
        assert_eq!(t["service"]["account"].as_str(), Some("chrism"));
        assert!(out.contains("supervisord umask = 022"), "{out}");
        let names: Vec<_> = drafts.iter().map(Draft::name).collect();
        assert_eq!(names, ["cat", "worker_00", "worker_01"]);
        let t = table(&drafts[2].render());
        assert_eq!(t["command"][2].as_str(), Some("01"));
    }

    #[test]
    fn mistakes() {
        for (text, line) in [
            ("[program:a]\ncommand=/bin/a 'x\n", 2),
            ("[program:a]\ncommand=/bin/a\nautorestart=maybe\n", 3),
            ("[program:a]\ncommand=/bin/a %(nope)s\n", 2),
            ("[program:a]\ncommand=/bin/a\nenvironment=A=1 B=2\n", 3),
        ] {
            let e = convert(&Source::new("s.conf".as_ref(), text), &mut Vec::new()).unwrap_err();
            assert_eq!(e.line, Some(line), "{text}: {e}");
        }
    }
}
