//! systemd: a `.service` unit (and its drop-ins), by systemd.service(5), systemd.exec(5),
//! systemd.unit(5) and systemd.kill(5).

use std::time::Duration;

use crate::Source;
use crate::draft::{Draft, set_name, size};
use crate::error::{At, ImportError};

struct Entry {
    file: String,
    line: usize,
    section: String,
    key: String,
    value: String,
}

/// Reads unit-file syntax: `[Section]`, `Key=Value`, `#`/`;` comments, and lines continued
/// with a trailing backslash.
fn entries(file: &str, text: &str, out: &mut Vec<Entry>) -> Result<(), ImportError> {
    let at = At::new(file);
    let mut section = String::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        let (start, mut acc) = match pending.take() {
            Some(p) => p,
            None => {
                if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                    continue;
                }
                if line.starts_with('[') {
                    if !line.ends_with(']') {
                        return Err(at.err(
                            Some(line_no),
                            None,
                            "a section header must end with ]",
                        ));
                    }
                    section = line[1..line.len() - 1].to_owned();
                    continue;
                }
                (line_no, String::new())
            }
        };
        if let Some(cont) = line.strip_suffix('\\') {
            acc.push_str(cont);
            acc.push(' ');
            pending = Some((start, acc));
            continue;
        }
        acc.push_str(line);
        let Some((k, v)) = acc.split_once('=') else {
            return Err(at.err(
                Some(start),
                None,
                format!("expected Key=Value, found {acc:?}"),
            ));
        };
        out.push(Entry {
            file: file.to_owned(),
            line: start,
            section: section.clone(),
            key: k.trim().to_owned(),
            value: v.trim().to_owned(),
        });
    }
    Ok(())
}

/// Specifiers (systemd.unit(5) "Specifiers") that do not depend on the machine. The others
/// (`%H`, `%m`, `%b`, ...) are left as written, with a note.
struct Spec {
    unit: String,
    user: Option<String>,
}

impl Spec {
    fn expand(&self, s: &str, d: &mut Draft, key: &'static str, setting: &str) -> String {
        let (prefix, instance) = match self.unit.split_once('@') {
            Some((p, rest)) => (
                p.to_owned(),
                rest.strip_suffix(".service").unwrap_or(rest).to_owned(),
            ),
            None => (
                self.unit.trim_end_matches(".service").to_owned(),
                String::new(),
            ),
        };
        let home = match self.user.as_deref() {
            None | Some("root") => Some("/root".to_owned()),
            Some(_) => None,
        };
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(spec) = chars.next() else {
                out.push('%');
                break;
            };
            let v: Option<String> = match spec {
                '%' => Some("%".into()),
                'n' => Some(self.unit.clone()),
                'N' => Some(self.unit.trim_end_matches(".service").to_owned()),
                'p' | 'j' => Some(prefix.clone()),
                'P' | 'J' => Some(unescape_unit(&prefix)),
                'i' => Some(instance.clone()),
                'I' => Some(unescape_unit(&instance)),
                't' => Some("/run".into()),
                'S' => Some("/var/lib".into()),
                'C' => Some("/var/cache".into()),
                'L' => Some("/var/log".into()),
                'E' => Some("/etc".into()),
                'T' => Some("/tmp".into()),
                'V' => Some("/var/tmp".into()),
                'u' => Some(self.user.clone().unwrap_or_else(|| "root".into())),
                'h' => home.clone(),
                _ => None,
            };
            match v {
                Some(v) => out.push_str(&v),
                None => {
                    d.note(
                        key,
                        format!(
                            "{setting}: the specifier %{spec} depends on the machine or the \
                             user; tend does not expand it: write its value"
                        ),
                    );
                    out.push('%');
                    out.push(spec);
                }
            }
        }
        out
    }
}

/// systemd's unit-name unescaping (`-` is `/`, `\x2d` is `-`).
fn unescape_unit(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if let Some(hex) = rest.strip_prefix("\\x").and_then(|r| r.get(..2))
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b as char);
            rest = &rest[4..];
            continue;
        }
        out.push(if c == '-' { '/' } else { c });
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Splits a command line by systemd.service(5) "Command lines": words separated by
/// whitespace, double or single quotes around a word, C escapes (`\n`, `\t`, `\"`, `\\`,
/// `\xNN`, ...), a lone `;` ending the command.
fn split_exec(s: &str) -> Result<Vec<(String, bool)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        let quoted = first == '"' || first == '\'';
        let quote = if quoted { chars.next() } else { None };
        loop {
            let Some(c) = chars.next() else {
                if quote.is_some() {
                    return Err("a quote is not closed".into());
                }
                break;
            };
            if Some(c) == quote {
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return Err("a closing quote must be followed by whitespace".into());
                }
                break;
            }
            if quote.is_none() && c.is_whitespace() {
                break;
            }
            if c == '\\' {
                let e = chars.next().ok_or("the line ends with a backslash")?;
                match e {
                    'a' => word.push('\u{7}'),
                    'b' => word.push('\u{8}'),
                    'f' => word.push('\u{c}'),
                    'n' => word.push('\n'),
                    'r' => word.push('\r'),
                    't' => word.push('\t'),
                    'v' => word.push('\u{b}'),
                    's' => word.push(' '),
                    'x' => {
                        let h: String = [chars.next(), chars.next()].iter().flatten().collect();
                        let b = u8::from_str_radix(&h, 16).map_err(|_| "bad \\x escape")?;
                        word.push(b as char);
                    }
                    c => word.push(c),
                }
                continue;
            }
            word.push(c);
        }
        if !quoted && word == ";" {
            return Err("several commands in one line (`;`): tend runs one program".into());
        }
        out.push((word, quoted));
    }
    Ok(out)
}

/// Splits `Environment=` assignments: whitespace-separated, each optionally quoted whole.
fn split_env(s: &str) -> Result<Vec<String>, String> {
    Ok(split_exec(s)?.into_iter().map(|(w, _)| w).collect())
}

fn parse_time(v: &str) -> Option<Option<Duration>> {
    let v = v.trim();
    if v == "infinity" {
        return Some(None);
    }
    if let Ok(secs) = v.parse::<f64>() {
        return Some(Some(Duration::from_secs_f64(secs)));
    }
    let mut total = Duration::ZERO;
    let mut rest = v;
    while !rest.trim_start().is_empty() {
        rest = rest.trim_start();
        let n_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_len].parse().ok()?;
        rest = rest[n_len..].trim_start();
        let u_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..u_len];
        rest = &rest[u_len..];
        let secs = match unit {
            "us" | "usec" => n / 1e6,
            "ms" | "msec" => n / 1e3,
            "" | "s" | "sec" | "second" | "seconds" => n,
            "m" | "min" | "minute" | "minutes" => n * 60.0,
            "h" | "hr" | "hour" | "hours" => n * 3600.0,
            "d" | "day" | "days" => n * 86400.0,
            "w" | "week" | "weeks" => n * 604_800.0,
            _ => return None,
        };
        total += Duration::from_secs_f64(secs);
    }
    Some(Some(total))
}

fn parse_bytes(v: &str) -> Option<u64> {
    let v = v.trim();
    let n_len = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..n_len].parse().ok()?;
    let mult = match &v[n_len..] {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    Some(n * mult)
}

const SIGNALS: [&str; 6] = [
    "SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2",
];

pub(crate) fn convert(src: &Source<'_>) -> Result<Draft, ImportError> {
    let file = src.path.display().to_string();
    let at = At::new(file.clone());
    let unit = src
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if unit.ends_with("@.service") {
        return Err(at.err(
            None,
            None,
            "a template unit: tend needs one instance; name the file as the instance \
             (copy it to e.g. web@8080.service) and import that",
        ));
    }
    let mut list = Vec::new();
    entries(&file, src.text, &mut list)?;
    for (path, text) in &src.dropins {
        entries(&path.display().to_string(), text, &mut list)?;
    }
    let mut d = Draft::new(format!("systemd unit {file}"));
    let base = unit.trim_end_matches(".service");
    if !set_name(
        &mut d,
        if base.is_empty() { "service" } else { base },
        "the unit name",
    ) {
        return Err(at.err(
            None,
            None,
            "the unit's file name is not a usable service name",
        ));
    }

    let user = list
        .iter()
        .rev()
        .find(|e| e.section == "Service" && e.key == "User")
        .map(|e| e.value.clone());
    let spec = Spec {
        unit: unit.clone(),
        user: user.clone(),
    };
    let err = |e: &Entry, msg: String| ImportError {
        file: e.file.clone(),
        line: Some(e.line),
        setting: Some(format!("{}=", e.key)),
        message: msg,
    };

    let mut exec_start: Option<&Entry> = None;
    let mut env_files: Vec<String> = Vec::new();
    let mut deps: Vec<String> = Vec::new();
    let mut restart = "no".to_owned();
    let mut start_limit: (Option<u64>, Option<Duration>) = (None, None);
    let mut success: Vec<i64> = Vec::new();
    let mut service_type = "simple".to_owned();
    let mut wanted = false;
    let mut dynamic_user = false;
    let mut restart_steps: Option<u64> = None;
    let mut restart_max: Option<Duration> = None;

    for e in &list {
        let note = |d: &mut Draft, key: &'static str, instead: &str| {
            d.note(key, format!("systemd {}={}: {instead}", e.key, e.value));
        };
        match (e.section.as_str(), e.key.as_str()) {
            ("Unit", "Description") => {
                let v = spec.expand(&e.value, &mut d, "description", "Description=");
                d.set_str("description", &v);
            }
            ("Unit", "After" | "Requires" | "Wants" | "BindsTo" | "Requisite") => {
                for u in e.value.split_whitespace() {
                    if u.ends_with(".target") {
                        if e.key != "After"
                            || !matches!(u, "network.target" | "network-online.target")
                        {
                            note(
                                &mut d,
                                "service.depends_on",
                                "tend's unit has After=network.target (and network-online.target with start = \"delayed-auto\"); other targets are not imported",
                            );
                        }
                        if u == "network-online.target" && e.key == "Wants" {
                            d.set_str("service.start", "delayed-auto");
                        }
                        continue;
                    }
                    let name = u.strip_suffix(".service").unwrap_or(u).to_owned();
                    if !deps.contains(&name) {
                        deps.push(name);
                    }
                }
                if e.key != "After" && e.key != "Wants" {
                    note(
                        &mut d,
                        "service.depends_on",
                        "tend orders and wants its dependencies (After= + Wants=); it is not stopped with them",
                    );
                }
            }
            ("Unit" | "Service", "StartLimitIntervalSec" | "StartLimitInterval") => {
                let t = parse_time(&e.value)
                    .ok_or_else(|| err(e, format!("{:?} is not a time span", e.value)))?;
                start_limit.1 = Some(t.unwrap_or(Duration::ZERO));
            }
            ("Unit" | "Service", "StartLimitBurst") => {
                start_limit.0 = Some(
                    e.value
                        .parse()
                        .map_err(|_| err(e, format!("{:?} is not a number", e.value)))?,
                );
            }
            ("Unit", "Documentation" | "DefaultDependencies") => {}
            (
                "Unit",
                "Conflicts"
                | "Before"
                | "PartOf"
                | "OnFailure"
                | "ConditionPathExists"
                | "AssertPathExists",
            )
            | ("Unit", _) => {
                note(
                    &mut d,
                    "service.depends_on",
                    "no tend equivalent; not imported",
                );
            }
            ("Service", "Type") => {
                service_type = e.value.clone();
                match e.value.as_str() {
                    "simple" | "exec" => {}
                    "notify" | "notify-reload" => note(
                        &mut d,
                        "command",
                        "tend does not read the program's sd_notify messages; it counts the program as started once it runs",
                    ),
                    "forking" => note(
                        &mut d,
                        "command",
                        "tend supervises a program that stays in the foreground: start it without daemonizing (most have a --foreground / --no-daemon flag)",
                    ),
                    "oneshot" => note(
                        &mut d,
                        "restart.policy",
                        "a oneshot program is run once: restart.policy = \"never\"",
                    ),
                    _ => note(&mut d, "command", "tend runs one long-running program"),
                }
            }
            ("Service", "ExecStart") => {
                if e.value.is_empty() {
                    exec_start = None;
                } else if exec_start.is_some() && service_type != "oneshot" {
                    return Err(err(e, "more than one ExecStart=: tend runs one program; keep one (an empty ExecStart= in a drop-in resets the list)".into()));
                } else {
                    exec_start = Some(e);
                }
            }
            (
                "Service",
                "ExecStartPre" | "ExecStartPost" | "ExecStop" | "ExecStopPost" | "ExecReload"
                | "ExecCondition",
            ) => {
                note(
                    &mut d,
                    "command",
                    "tend has no hooks around start, stop or reload (SIGHUP makes tend re-read its config); run it from a wrapper script if it is needed",
                );
            }
            ("Service", "WorkingDirectory") => {
                let (optional, dir) = match e.value.strip_prefix('-') {
                    Some(r) => (true, r),
                    None => (false, e.value.as_str()),
                };
                let dir = if dir == "~" {
                    match user.as_deref() {
                        None | Some("root") => "/root".to_owned(),
                        Some(u) => {
                            note(
                                &mut d,
                                "working_dir",
                                "~ is the home of User=: tend needs the path",
                            );
                            format!("/home/{u}")
                        }
                    }
                } else {
                    spec.expand(dir, &mut d, "working_dir", "WorkingDirectory=")
                };
                if optional {
                    note(
                        &mut d,
                        "working_dir",
                        "systemd ignored a missing directory (`-`); tend's program cannot start without it",
                    );
                }
                d.set_str("working_dir", &dir);
            }
            ("Service", "Environment") => {
                if e.value.is_empty() {
                    d.clear_env();
                    continue;
                }
                let words = split_env(&e.value).map_err(|m| err(e, m))?;
                for w in words {
                    let w = spec.expand(&w, &mut d, "env", "Environment=");
                    match w.split_once('=') {
                        Some((k, v)) if !k.is_empty() => d.env(k, v),
                        _ => return Err(err(e, format!("{w:?} is not VAR=value"))),
                    }
                }
            }
            ("Service", "EnvironmentFile") => {
                if e.value.is_empty() {
                    env_files.clear();
                } else {
                    env_files.push(e.value.clone());
                }
            }
            ("Service", "PassEnvironment" | "UnsetEnvironment") => note(
                &mut d,
                "env",
                "tend passes its own environment to the program, plus `env`",
            ),
            ("Service", "User") => {}
            ("Service", "Group" | "SupplementaryGroups") => note(
                &mut d,
                "service.account",
                "the service runs with the account's own groups",
            ),
            ("Service", "DynamicUser") => {
                dynamic_user = matches!(e.value.as_str(), "yes" | "true" | "1" | "on")
            }
            ("Service", "Restart") => restart = e.value.clone(),
            ("Service", "RestartSec") => {
                let t = parse_time(&e.value)
                    .ok_or_else(|| err(e, format!("{:?} is not a time span", e.value)))?;
                d.set_duration("restart.delay", t.unwrap_or(Duration::ZERO));
            }
            ("Service", "RestartSteps") => restart_steps = e.value.parse().ok(),
            ("Service", "RestartMaxDelaySec") => restart_max = parse_time(&e.value).flatten(),
            ("Service", "SuccessExitStatus") => {
                for w in e.value.split_whitespace() {
                    match w.parse::<i64>() {
                        Ok(c) => success.push(c),
                        Err(_) => note(
                            &mut d,
                            "restart.success_exit_codes",
                            "a death by signal is always a failure for tend",
                        ),
                    }
                }
            }
            ("Service", "RestartPreventExitStatus" | "RestartForceExitStatus") => note(
                &mut d,
                "restart.success_exit_codes",
                "tend decides restarts by policy and success_exit_codes alone",
            ),
            ("Service", "TimeoutStopSec" | "TimeoutSec") => {
                let t = parse_time(&e.value)
                    .ok_or_else(|| err(e, format!("{:?} is not a time span", e.value)))?;
                match t {
                    Some(t) => d.set_duration("stop.timeout", t),
                    None => {
                        d.set_str("stop.timeout", "1d");
                        note(
                            &mut d,
                            "stop.timeout",
                            "tend always ends the tree after stop.timeout: set to a day",
                        );
                    }
                }
            }
            ("Service", "TimeoutStartSec") => note(
                &mut d,
                "stop.timeout",
                "tend does not time a program's start; a [health] check can tell when it is ready",
            ),
            ("Service", "KillSignal") => {
                let sig = e.value.to_ascii_uppercase();
                let sig = if sig.starts_with("SIG") {
                    sig
                } else {
                    format!("SIG{sig}")
                };
                if SIGNALS.contains(&sig.as_str()) {
                    d.set_str("stop.signal", &sig);
                } else {
                    note(
                        &mut d,
                        "stop.signal",
                        "tend's graceful signal is one of SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2",
                    );
                }
            }
            ("Service", "KillMode") => {
                if e.value != "control-group" && e.value != "mixed" {
                    note(
                        &mut d,
                        "stop.signal",
                        "tend signals the program's whole process group, then kills the whole tree",
                    );
                }
            }
            ("Service", "SendSIGKILL" | "FinalKillSignal" | "SendSIGHUP") => note(
                &mut d,
                "stop.timeout",
                "tend always kills what is left of the tree after stop.timeout",
            ),
            ("Service", "MemoryMax" | "MemoryLimit") => match parse_bytes(&e.value) {
                Some(b) => {
                    d.set_str("limits.memory", &size(b));
                    d.set_str("limits.memory_for", "0s");
                    note(
                        &mut d,
                        "limits.memory",
                        "systemd's cgroup kills the program above it; tend restarts it when a sample is above (sampled every limits.sample_every)",
                    );
                }
                None => note(&mut d, "limits.memory", "not a plain size; not imported"),
            },
            ("Service", "CPUQuota") => note(
                &mut d,
                "limits.cpu_percent",
                "systemd throttles the program to it; tend's cpu_percent restarts a program above it instead, so it is not set",
            ),
            ("Service", "StandardOutput" | "StandardError") => {
                if let Some(path) = e
                    .value
                    .strip_prefix("file:")
                    .or_else(|| e.value.strip_prefix("append:"))
                    .or_else(|| e.value.strip_prefix("truncate:"))
                    && let Some(dir) = crate::nssm::parent_dir(path)
                {
                    d.set_str("logs.dir", &dir);
                }
                if e.value != "journal" && e.value != "inherit" {
                    note(
                        &mut d,
                        "logs.dir",
                        "tend captures stdout and stderr into <name>.out.log and <name>.err.log in logs.dir (`tend logs` reads them)",
                    );
                } else {
                    note(
                        &mut d,
                        "logs.dir",
                        "the journal got the output; tend writes it to files in logs.dir instead (`tend logs` reads them)",
                    );
                }
            }
            (
                "Service",
                "Nice"
                | "CPUSchedulingPolicy"
                | "CPUSchedulingPriority"
                | "IOSchedulingClass"
                | "IOSchedulingPriority"
                | "CPUAffinity"
                | "OOMScoreAdjust",
            ) => note(
                &mut d,
                "command",
                "tend has no priority or scheduling settings; the program runs with tend's",
            ),
            ("Service", k) if k.starts_with("Limit") => note(
                &mut d,
                "command",
                "tend sets no rlimits; the program inherits tend's (a drop-in of tend's unit can set them)",
            ),
            ("Service", k)
                if k.starts_with("Protect")
                    || k.starts_with("Private")
                    || k.starts_with("Restrict")
                    || matches!(
                        k,
                        "NoNewPrivileges"
                            | "ReadWritePaths"
                            | "ReadOnlyPaths"
                            | "InaccessiblePaths"
                            | "CapabilityBoundingSet"
                            | "AmbientCapabilities"
                            | "SystemCallFilter"
                            | "LockPersonality"
                            | "MemoryDenyWriteExecute"
                            | "UMask"
                    ) =>
            {
                note(
                    &mut d,
                    "service.hardening",
                    "tend's hardening = \"strict\" applies a fixed sandbox (docs/linux.md#hardening); finer settings go in a drop-in of tend's unit",
                );
            }
            (
                "Service",
                "PIDFile" | "GuessMainPID" | "RemainAfterExit" | "NotifyAccess" | "WatchdogSec"
                | "Slice" | "SyslogIdentifier",
            ) => note(&mut d, "command", "no tend equivalent; not imported"),
            ("Service", _) => note(&mut d, "command", "no tend equivalent; not imported"),
            ("Install", "WantedBy" | "RequiredBy") => wanted = true,
            ("Install", "Alias" | "Also" | "DefaultInstance") => {
                note(&mut d, "service.start", "no tend equivalent; not imported")
            }
            (s, _) => note(&mut d, "command", &format!("section [{s}] is not imported")),
        }
    }

    // The program.
    let Some(exec) = exec_start else {
        return Err(at.err(
            None,
            Some("ExecStart=".into()),
            "missing: the unit runs no program ([Service] ExecStart=)",
        ));
    };
    let mut value = exec.value.as_str();
    let mut ignore_failure = false;
    let mut no_env_expansion = false;
    let mut argv0_override = false;
    loop {
        match value.chars().next() {
            Some('-') => ignore_failure = true,
            Some('@') => argv0_override = true,
            Some(':') => no_env_expansion = true,
            Some('+' | '!') => d.note(
                "service.account",
                format!("systemd ExecStart prefix {:?}: tend runs the program with the service's account and sandbox", &value[..1]),
            ),
            Some('|') => {}
            _ => break,
        }
        value = &value[1..];
    }
    let words = split_exec(value).map_err(|m| err(exec, m))?;
    let env_snapshot: Vec<(String, String)> = d.env_vars().to_vec();
    let mut command = Vec::new();
    for (i, (w, quoted)) in words.iter().enumerate() {
        if argv0_override && i == 1 {
            d.note("command", format!("systemd ExecStart=@: argv[0] was {w:?}; tend passes the program's path as argv[0]"));
            continue;
        }
        let w = spec.expand(w, &mut d, "command", "ExecStart=");
        if no_env_expansion {
            command.push(w);
            continue;
        }
        // `$VAR` as a word of its own is split at whitespace (quoted or not: systemd expands
        // after splitting); `${VAR}` stays one word.
        let _ = quoted;
        if let Some(name) = w
            .strip_prefix('$')
            .filter(|n| !n.starts_with('{') && n.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            match env_snapshot.iter().find(|(k, _)| k == name) {
                Some((_, v)) => command.extend(v.split_whitespace().map(str::to_owned)),
                None => {
                    d.note("command", format!("systemd expanded ${name} (from an EnvironmentFile= or the manager); tend does not: write its value"));
                    command.push(w);
                }
            }
            continue;
        }
        command.push(expand_braced(&w, &env_snapshot, &mut d));
    }
    if command.is_empty() {
        return Err(err(exec, "no program in the command line".into()));
    }
    d.set_list("command", &command);
    if ignore_failure {
        d.note("restart.success_exit_codes", "systemd ExecStart=- counted every exit code as success; tend counts only success_exit_codes");
    }

    // Env files: tend reads one.
    if let Some((first, rest)) = env_files.split_first() {
        let (optional, path) = match first.strip_prefix('-') {
            Some(p) => (true, p),
            None => (false, first.as_str()),
        };
        let path = spec.expand(path, &mut d, "env_file", "EnvironmentFile=");
        d.set_str("env_file", &path);
        if optional {
            d.note("env_file", format!("systemd EnvironmentFile={first}: the `-` made it optional; tend needs the file: delete this line if it does not exist"));
        }
        for r in rest {
            d.note(
                "env_file",
                format!(
                    "systemd EnvironmentFile={r}: tend reads one env_file; merge this one into it"
                ),
            );
        }
        d.note("env_file", "systemd's env files may quote and continue lines; tend's take KEY=VALUE lines with one pair of quotes removed: check the file");
    }

    // Restart: systemd's default is Restart=no.
    let (policy, why) = match restart.as_str() {
        "no" => ("never", None),
        "always" => ("always", None),
        "on-failure" => ("on-failure", None),
        "on-abnormal" => (
            "on-failure",
            Some(
                "systemd restarted only after a signal, a timeout or the watchdog, not a non-zero exit code",
            ),
        ),
        "on-abort" => (
            "on-failure",
            Some("systemd restarted only after an uncaught signal"),
        ),
        "on-watchdog" => (
            "never",
            Some(
                "tend has no watchdog of the program's own; [health] silence restarts a program that goes quiet",
            ),
        ),
        "on-success" => ("never", Some("tend cannot restart only after a clean exit")),
        other => {
            return Err(ImportError {
                file,
                line: None,
                setting: Some("Restart=".into()),
                message: format!("{other:?} is not a systemd restart setting"),
            });
        }
    };
    let policy = if service_type == "oneshot" {
        "never"
    } else {
        policy
    };
    d.set_str("restart.policy", policy);
    if let Some(why) = why {
        d.note(
            "restart.policy",
            format!("systemd Restart={restart}: {why}"),
        );
    }
    if !success.is_empty() {
        let mut codes = vec![0];
        codes.extend(success);
        codes.dedup();
        d.set(
            "restart.success_exit_codes",
            toml::Value::Array(codes.into_iter().map(toml::Value::Integer).collect()),
        );
    }
    if policy != "never" {
        // systemd's defaults: RestartSec=100ms, at most 5 starts within 10s.
        let (burst, interval) = start_limit;
        let interval = interval.unwrap_or(Duration::from_secs(10));
        if interval.is_zero() || burst == Some(0) {
            d.set("restart.limit", 0);
        } else {
            d.set("restart.limit", burst.unwrap_or(5) as i64);
            d.set_duration("restart.limit_window", interval);
        }
        if !d.has("restart.delay") {
            d.note("restart.delay", "systemd's default RestartSec is 100ms; tend starts at 1s and doubles while the program keeps failing");
        }
        if let (Some(max), Some(delay)) = (
            restart_max,
            d.get("restart.delay")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        ) {
            d.set_duration("restart.max_delay", max);
            if let (Some(steps), Some(Some(delay))) =
                (restart_steps.filter(|s| *s > 0), parse_time(&delay))
                && !delay.is_zero()
                && max > delay
            {
                let m = (max.as_secs_f64() / delay.as_secs_f64()).powf(1.0 / steps as f64);
                d.set("restart.multiplier", (m * 100.0).round() / 100.0);
            }
        }
    }

    // Account: no User= is root.
    if dynamic_user {
        d.set_str("service.account", "isolated");
    } else {
        match user.as_deref() {
            None | Some("root") | Some("0") => {
                d.set_str("service.account", "system");
                d.note("service.account", "the unit ran as root (no User=); tend's default, \"isolated\" (DynamicUser=yes), is safer if the program needs no more");
            }
            Some(u) => d.set_str("service.account", u),
        }
    }
    if !deps.is_empty() {
        d.set_list("service.depends_on", &deps);
    }
    // systemd runs a unit without WorkingDirectory= in `/`; tend's default would be the
    // config's directory, which changes what relative paths in the program mean.
    if !d.has("working_dir") {
        d.set_str("working_dir", "/");
    }
    if !d.has("service.start") {
        if wanted {
            d.set_str("service.start", "auto");
        } else {
            d.set_str("service.start", "manual");
            d.note(
                "service.start",
                "the unit has no [Install] WantedBy=, so it was never started at boot",
            );
        }
    }
    Ok(d)
}

/// Expands `${VAR}` from the unit's own Environment=; an unknown variable stays, noted.
fn expand_braced(w: &str, env: &[(String, String)], d: &mut Draft) -> String {
    let mut out = String::new();
    let mut rest = w;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        match env.iter().find(|(k, _)| k == name) {
            Some((_, v)) => out.push_str(v),
            None => {
                d.note("command", format!("systemd expanded ${{{name}}} (from an EnvironmentFile= or the manager); tend does not: write its value"));
                out.push_str(&rest[start..start + 3 + end]);
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{command, table};

    fn conv(name: &str, text: &str) -> String {
        convert(&Source::new(name.as_ref(), text)).unwrap().render()
    }

    #[test]
    fn a_full_unit() {
        // Written from systemd.service(5), systemd.exec(5) and systemd.unit(5).
        let out = conv(
            "/etc/systemd/system/web@8080.service",
            r#"[Unit]
Description=Web %i
After=network-online.target db.service
Wants=network-online.target db.service
StartLimitIntervalSec=60
StartLimitBurst=3

[Service]
Type=simple
User=www
Environment="GREETING=hello world" MODE=prod
Environment=PORT=%i 'QUOTE=it"s'
EnvironmentFile=-/etc/default/web
WorkingDirectory=/srv/web
ExecStartPre=/bin/true
ExecStart=/usr/bin/web --port ${PORT} --greet "$GREETING" \
    "a b" 'c\x20d' $MODE %n
Restart=on-failure
RestartSec=2s
SuccessExitStatus=3 SIGUSR1
TimeoutStopSec=1min 30s
KillSignal=SIGINT
MemoryMax=512M
Nice=5
ProtectSystem=strict

[Install]
WantedBy=multi-user.target
"#,
        );
        let t = table(&out);
        let cmd = command(&t);
        assert_eq!(
            cmd,
            [
                "/usr/bin/web",
                "--port",
                "8080",
                "--greet",
                "hello",
                "world",
                "a b",
                "c d",
                "prod",
                "web@8080.service"
            ]
        );
        assert_eq!(t["name"].as_str(), Some("web-8080"));
        assert_eq!(t["description"].as_str(), Some("Web 8080"));
        assert_eq!(t["env"]["GREETING"].as_str(), Some("hello world"));
        assert_eq!(t["env"]["QUOTE"].as_str(), Some("it\"s"));
        assert_eq!(t["env_file"].as_str(), Some("/etc/default/web"));
        assert_eq!(t["restart"]["policy"].as_str(), Some("on-failure"));
        assert_eq!(t["restart"]["delay"].as_str(), Some("2s"));
        assert_eq!(t["restart"]["limit"].as_integer(), Some(3));
        assert_eq!(t["restart"]["limit_window"].as_str(), Some("1m"));
        assert_eq!(t["stop"]["timeout"].as_str(), Some("90s"));
        assert_eq!(t["stop"]["signal"].as_str(), Some("SIGINT"));
        assert_eq!(t["limits"]["memory"].as_str(), Some("512MiB"));
        assert_eq!(t["service"]["account"].as_str(), Some("www"));
        assert_eq!(t["service"]["start"].as_str(), Some("delayed-auto"));
        assert_eq!(
            t["service"]["depends_on"].as_array().unwrap()[0].as_str(),
            Some("db")
        );
        for needle in [
            "systemd Nice=5",
            "ProtectSystem=strict",
            "ExecStartPre=/bin/true",
            "`-` made it optional",
        ] {
            assert!(out.contains(needle), "{needle}\n{out}");
        }
    }

    #[test]
    fn restart_settings() {
        for (restart, policy) in [
            ("", "never"),
            ("Restart=always", "always"),
            ("Restart=on-abnormal", "on-failure"),
            ("Restart=on-success", "never"),
        ] {
            let t = table(&conv(
                "a.service",
                &format!("[Service]\nExecStart=/bin/a\n{restart}\n"),
            ));
            assert_eq!(t["restart"]["policy"].as_str(), Some(policy), "{restart}");
        }
    }

    #[test]
    fn mistakes_name_file_line_and_setting() {
        for (text, line) in [
            ("[Service]\nExecStart=/bin/a \"b\n", 2),
            ("[Service]\nExecStart=/bin/a\nRestartSec=soon\n", 3),
            ("[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n", 3),
        ] {
            let e = convert(&Source::new("x.service".as_ref(), text)).unwrap_err();
            assert_eq!(e.line, Some(line), "{e}");
            assert!(e.setting.is_some(), "{e}");
        }
        assert!(
            convert(&Source::new(
                "x@.service".as_ref(),
                "[Service]\nExecStart=/a\n"
            ))
            .is_err()
        );
    }
}
