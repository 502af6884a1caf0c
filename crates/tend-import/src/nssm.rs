//! NSSM: `nssm dump <service>` output, or the service's registry values.
//!
//! Both become one [`RegistryValues`] map (the names NSSM uses on its command line and in the
//! registry), and one pure mapping turns that into a draft. The Windows registry reading is
//! the caller's (crates/tend/src/commands/import.rs), kept thin.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Source;
use crate::args::{cmd_unescape, split_windows};
use crate::draft::{Draft, set_name, size};
use crate::error::{At, ImportError};

/// A registry value (or the same setting from an `nssm dump` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegValue {
    /// REG_SZ / REG_EXPAND_SZ, or a dump value.
    Str(String),
    /// REG_DWORD.
    Num(u32),
    /// REG_MULTI_SZ (or several dump arguments).
    Multi(Vec<String>),
}

/// A service's settings by name: the service key's own values (`ImagePath`, `Start`,
/// `DelayedAutostart`, `DependOnService`, `ObjectName`, `DisplayName`, `Description`,
/// `Environment`, `Type`) and its `Parameters` subkey's values (`Application`,
/// `AppParameters`, ...), with the `Parameters\AppExit` values as `AppExit\<code>` (the
/// default action as `AppExit\Default`) and `Parameters\AppEvents\<event>` values as
/// `AppEvents\<event>/<action>`. Names compare without regard to case, as in the registry.
pub type RegistryValues = BTreeMap<String, RegValue>;

fn get<'a>(v: &'a RegistryValues, name: &str) -> Option<&'a RegValue> {
    v.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn text(v: &RegistryValues, name: &str) -> Option<String> {
    match get(v, name)? {
        RegValue::Str(s) => Some(s.clone()),
        RegValue::Num(n) => Some(n.to_string()),
        RegValue::Multi(m) => Some(m.join(" ")),
    }
    .filter(|s| !s.is_empty())
}

fn num(v: &RegistryValues, name: &str) -> Option<u64> {
    match get(v, name)? {
        RegValue::Num(n) => Some(u64::from(*n)),
        RegValue::Str(s) => s.trim().parse().ok(),
        RegValue::Multi(_) => None,
    }
}

fn list(v: &RegistryValues, name: &str) -> Vec<String> {
    match get(v, name) {
        Some(RegValue::Multi(m)) => m.iter().filter(|s| !s.is_empty()).cloned().collect(),
        Some(RegValue::Str(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `nssm dump` output: `nssm.exe install <service> <program>` and
/// `nssm.exe set <service> <parameter> [<additional>] <value...>` lines, quoted for cmd.exe.
/// Several services' dumps in one file give one draft each.
pub(crate) fn from_dump(src: &Source<'_>) -> Result<Vec<Draft>, ImportError> {
    let at = At::new(src.path.display().to_string());
    let mut services: Vec<(String, RegistryValues)> = Vec::new();
    for (i, raw) in src.text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        let lower = line.to_ascii_lowercase();
        if line.is_empty()
            || lower.starts_with("rem ")
            || lower == "rem"
            || line.starts_with("::")
            || lower.starts_with("@echo")
        {
            continue;
        }
        let argv = split_windows(&cmd_unescape(line), true);
        let usage = "expected a line of `nssm dump`: `nssm.exe install <service> <program>` or \
                     `nssm.exe set <service> <parameter> <value>`";
        if argv.len() < 4 {
            return Err(at.err(Some(line_no), None, usage));
        }
        let verb = argv[1].to_ascii_lowercase();
        let service = argv[2].clone();
        let idx = match services.iter().position(|(s, _)| *s == service) {
            Some(i) => i,
            None => {
                services.push((service.clone(), RegistryValues::new()));
                services.len() - 1
            }
        };
        let values = &mut services[idx].1;
        match verb.as_str() {
            "install" => {
                values.insert("Application".into(), RegValue::Str(argv[3].clone()));
                if argv.len() > 4 {
                    values.insert("AppParameters".into(), RegValue::Str(argv[4..].join(" ")));
                }
            }
            "set" => set_from_dump(values, &argv[3], &argv[4..]),
            "reset" | "unset" => {
                values.remove(&argv[3]);
            }
            _ => return Err(at.err(Some(line_no), Some(argv[1].clone()), usage)),
        }
    }
    if services.is_empty() {
        return Err(at.err(
            None,
            None,
            "no `nssm.exe install` line: make the file with `nssm dump <service> > file`",
        ));
    }
    let origin = format!("`nssm dump` output {}", src.path.display());
    services
        .iter()
        .map(|(name, values)| map(name, values, &origin, &at))
        .collect()
}

fn set_from_dump(values: &mut RegistryValues, param: &str, args: &[String]) {
    let canonical = |p: &str| p.to_owned();
    match param.to_ascii_lowercase().as_str() {
        "appexit" | "appevents" => {
            if let Some((which, rest)) = args.split_first() {
                let which = if param.eq_ignore_ascii_case("appexit") && which.is_empty() {
                    "Default".to_owned()
                } else {
                    which.clone()
                };
                values.insert(
                    format!("{}\\{which}", canonical(param)),
                    RegValue::Str(rest.join(" ")),
                );
            }
        }
        "objectname" => {
            // `set svc ObjectName <user> <password...>`: the password is never kept.
            if let Some(user) = args.first() {
                values.insert("ObjectName".into(), RegValue::Str(user.clone()));
                if args.len() > 1 {
                    values.insert("ObjectNamePassword".into(), RegValue::Num(1));
                }
            }
        }
        "appenvironment"
        | "appenvironmentextra"
        | "environment"
        | "dependonservice"
        | "dependongroup" => {
            let key = canonical(param);
            let mut items = match values.remove(&key) {
                Some(RegValue::Multi(m)) => m,
                _ => Vec::new(),
            };
            for a in args {
                if let Some(rest) = a.strip_prefix(':') {
                    items.clear();
                    items.push(rest.to_owned());
                } else if let Some(rest) = a.strip_prefix('+') {
                    items.push(rest.to_owned());
                } else if let Some(rest) = a.strip_prefix('-') {
                    items.retain(|i| i != rest && !i.starts_with(&format!("{rest}=")));
                } else {
                    items.push(a.clone());
                }
            }
            values.insert(key, RegValue::Multi(items));
        }
        _ => {
            values.insert(canonical(param), RegValue::Str(args.join(" ")));
        }
    }
}

/// A service read from the registry.
pub(crate) fn from_registry(service: &str, values: &RegistryValues) -> Result<Draft, ImportError> {
    let at = At::new(format!(
        "registry HKLM\\SYSTEM\\CurrentControlSet\\Services\\{service}"
    ));
    map(
        service,
        values,
        &format!("the registry of NSSM service `{service}`"),
        &at,
    )
}

const PRIORITIES: [(u32, &str); 6] = [
    (0x0000_0100, "REALTIME_PRIORITY_CLASS"),
    (0x0000_0080, "HIGH_PRIORITY_CLASS"),
    (0x0000_8000, "ABOVE_NORMAL_PRIORITY_CLASS"),
    (0x0000_0020, "NORMAL_PRIORITY_CLASS"),
    (0x0000_4000, "BELOW_NORMAL_PRIORITY_CLASS"),
    (0x0000_0040, "IDLE_PRIORITY_CLASS"),
];

/// The one mapping, from NSSM's names to tend's keys. docs/import.md has it as a table.
fn map(service: &str, v: &RegistryValues, origin: &str, at: &At) -> Result<Draft, ImportError> {
    let mut d = Draft::new(origin);
    if !set_name(&mut d, service, "the NSSM service name") {
        return Err(at.err(
            None,
            None,
            format!("{service:?} is not a usable service name"),
        ));
    }
    if let Some(n) = text(v, "DisplayName").filter(|n| n != service) {
        d.set_str("display_name", &n);
    }
    if let Some(s) = text(v, "Description") {
        d.set_str("description", &s);
    }

    // The program: NSSM starts `"<Application>" <AppParameters>`, which the program splits
    // by the C runtime's rules.
    let Some(app) = text(v, "Application") else {
        return Err(at.err(
            None,
            Some("Application".into()),
            "missing: this is not an NSSM service (its Parameters key has no Application); \
             `nssm dump <service>` shows what NSSM runs",
        ));
    };
    let mut command = vec![app];
    if let Some(params) = text(v, "AppParameters") {
        command.extend(split_windows(&params, false));
    }
    if command.iter().any(|a| has_percent_var(a)) {
        d.note(
            "command",
            "NSSM expanded %VARIABLES% in Application and AppParameters; tend passes them \
             as written: replace them with their values",
        );
    }
    d.set_list("command", &command);
    if let Some(dir) = text(v, "AppDirectory") {
        d.set_str("working_dir", &dir);
    }

    // Environment: the service's merged Environment, then AppEnvironment (which NSSM uses
    // instead of the inherited environment), then AppEnvironmentExtra (added).
    for name in ["Environment", "AppEnvironment", "AppEnvironmentExtra"] {
        for pair in list(v, name) {
            match pair.split_once('=') {
                Some((k, val)) if !k.is_empty() => {
                    if has_percent_var(val) {
                        d.note(
                            "env",
                            format!(
                                "nssm {name} {k}={val}: NSSM expanded the %VARIABLES% in it; \
                                 tend does not: write the value"
                            ),
                        );
                    }
                    d.env(k, val);
                }
                _ => d.note(
                    "env",
                    format!("nssm {name} entry {pair:?} is not KEY=VALUE: left out"),
                ),
            }
        }
    }
    if !list(v, "AppEnvironment").is_empty() {
        d.note(
            "env",
            "nssm AppEnvironment replaced the whole environment of the program; tend adds \
             `env` to the environment tend itself has",
        );
    }

    restart(&mut d, v);
    stop(&mut d, v);
    logs(&mut d, v);
    service_keys(&mut d, v, service);

    if let Some(p) = get(v, "AppPriority") {
        let name = match p {
            RegValue::Num(n) => PRIORITIES
                .iter()
                .find(|(c, _)| c == n)
                .map_or_else(|| format!("{n:#x}"), |(_, s)| (*s).to_owned()),
            RegValue::Str(s) => s.clone(),
            RegValue::Multi(m) => m.join(" "),
        };
        if name != "NORMAL_PRIORITY_CLASS" {
            d.note(
                "command",
                format!(
                    "nssm AppPriority = {name}: tend has no priority setting; the program \
                     runs at normal priority"
                ),
            );
        }
    }
    if let Some(a) = text(v, "AppAffinity") {
        d.note(
            "command",
            format!("nssm AppAffinity = {a}: tend has no CPU affinity setting; the program may run on every CPU"),
        );
    }
    if num(v, "AppNoConsole") == Some(1) {
        d.note(
            "stop.windows",
            "nssm AppNoConsole = 1: tend gives the program a console of its own (hidden), \
             which its Ctrl+C stop needs",
        );
    }
    if let Some(stdin) = text(v, "AppStdin") {
        d.note(
            "command",
            format!("nssm AppStdin = {stdin}: tend gives the program no input (NUL / /dev/null)"),
        );
    }
    for (k, val) in v.iter() {
        if let Some(event) = k
            .strip_prefix("AppEvents\\")
            .or_else(|| k.strip_prefix("appevents\\"))
            && let RegValue::Str(cmd) = val
            && !cmd.is_empty()
        {
            let instead = if event.eq_ignore_ascii_case("Exit/Post") {
                "tend runs `restart.on_give_up` once when it gives up, and reports every exit \
                 through [notify]"
            } else {
                "tend has no start, stop or rotate hooks"
            };
            d.note(
                "restart.on_give_up",
                format!("nssm AppEvents {event} = {cmd}: {instead}"),
            );
        }
    }
    if num(v, "AppRedirectHook") == Some(1) {
        d.note(
            "restart.on_give_up",
            "nssm AppRedirectHook = 1: tend's hook output goes to tend's own log",
        );
    }
    Ok(d)
}

fn has_percent_var(s: &str) -> bool {
    let mut parts = s.split('%');
    parts.next();
    let rest: Vec<&str> = parts.collect();
    rest.len() >= 2
        && rest[..rest.len() - 1]
            .iter()
            .any(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

fn restart(d: &mut Draft, v: &RegistryValues) {
    // AppExit: the default action and per-code overrides. NSSM's default is Restart, for
    // every exit, 0 included.
    let default = text(v, "AppExit\\Default").unwrap_or_else(|| "Restart".into());
    let mut codes: Vec<(i64, String)> = v
        .iter()
        .filter_map(|(k, val)| {
            let code = k
                .strip_prefix("AppExit\\")
                .or_else(|| k.strip_prefix("appexit\\"))?;
            let code: i64 = code.parse().ok()?;
            let RegValue::Str(action) = val else {
                return None;
            };
            Some((code, action.clone()))
        })
        .collect();
    codes.sort();
    let is = |a: &str, want: &str| a.eq_ignore_ascii_case(want);
    if is(&default, "Restart") {
        let stop_codes: Vec<i64> = codes
            .iter()
            .filter(|(_, a)| !is(a, "Restart"))
            .map(|(c, _)| *c)
            .collect();
        if stop_codes.is_empty() {
            d.set_str("restart.policy", "always");
        } else {
            d.set_str("restart.policy", "on-failure");
            d.set(
                "restart.success_exit_codes",
                toml::Value::Array(
                    stop_codes
                        .iter()
                        .map(|c| toml::Value::Integer(*c))
                        .collect(),
                ),
            );
            if !stop_codes.contains(&0) {
                d.note(
                    "restart.success_exit_codes",
                    "NSSM restarted after exit code 0 too (its default action is Restart); \
                     tend counts 0 as success only if listed: add 0 if the program may exit \
                     cleanly and should stay stopped",
                );
            }
            for (c, a) in codes
                .iter()
                .filter(|(_, a)| !is(a, "Restart") && !is(a, "Exit"))
            {
                d.note(
                    "restart.success_exit_codes",
                    format!("nssm AppExit {c} = {a}: tend stops supervising (as for Exit)"),
                );
            }
        }
    } else {
        let restart_codes: Vec<String> = codes
            .iter()
            .filter(|(_, a)| is(a, "Restart"))
            .map(|(c, _)| c.to_string())
            .collect();
        if restart_codes.is_empty() {
            d.set_str("restart.policy", "never");
        } else {
            d.set_str("restart.policy", "on-failure");
            d.note(
                "restart.policy",
                format!(
                    "nssm restarted only after exit codes {}; tend restarts after every exit \
                     code other than success_exit_codes",
                    restart_codes.join(", ")
                ),
            );
        }
        d.note(
            "restart.policy",
            format!(
                "nssm AppExit Default = {default}: {}",
                if is(&default, "Ignore") {
                    "NSSM kept the service running without the program; tend stops (exit 0 \
                     is success)"
                } else if is(&default, "Suicide") {
                    "NSSM crashed on purpose so the SCM's recovery actions ran; tend stops \
                     and reports it (tend's own supervisor replaces those actions)"
                } else {
                    "the service stops when the program exits"
                }
            ),
        );
    }
    // NSSM never gives up; it throttles restarts of runs shorter than AppThrottle (1500 ms)
    // with a growing delay of up to 4 minutes: tend's backoff, reset by a run that long.
    d.set("restart.limit", 0);
    let throttle = num(v, "AppThrottle").unwrap_or(1500);
    d.set_duration("restart.reset_after", Duration::from_millis(throttle));
    d.set_duration("restart.max_delay", Duration::from_secs(240));
    match num(v, "AppRestartDelay") {
        Some(ms) if ms > 0 => {
            d.set_duration("restart.delay", Duration::from_millis(ms));
            if ms > 240_000 {
                d.set_duration("restart.max_delay", Duration::from_millis(ms));
            }
        }
        _ => d.note(
            "restart.delay",
            "NSSM restarted a program that had run longer than AppThrottle at once; tend \
             waits `delay` (1s), doubling while runs stay short",
        ),
    }
}

fn stop(d: &mut Draft, v: &RegistryValues) {
    let skip = num(v, "AppStopMethodSkip").unwrap_or(0);
    let (method, wait_key) = if skip & 1 == 0 {
        ("ctrl-c", "AppStopMethodConsole")
    } else if skip & 2 == 0 {
        ("close-window", "AppStopMethodWindow")
    } else {
        ("none", "AppStopMethodThreads")
    };
    if method != "ctrl-c" {
        d.set_str("stop.windows", method);
    }
    if skip & 4 == 0 && method != "none" {
        // Only worth saying when NSSM had more steps than tend.
        if num(v, "AppStopMethodThreads").is_some() {
            d.note(
                "stop.windows",
                "nssm also posted WM_QUIT to the program's threads; tend has one graceful \
                 step, then ends the whole process tree",
            );
        }
    } else if method == "none" {
        d.note(
            "stop.windows",
            "nssm AppStopMethodSkip skipped Ctrl+C and WM_CLOSE: tend ends the process tree \
             at once",
        );
    }
    if skip & 8 != 0 {
        d.note(
            "stop.timeout",
            "nssm AppStopMethodSkip 8 left the program running at stop; tend always ends the \
             whole process tree after stop.timeout",
        );
    }
    if let Some(ms) = num(v, wait_key) {
        d.set_duration("stop.timeout", Duration::from_millis(ms));
    }
    if num(v, "AppKillProcessTree") == Some(0) {
        d.note(
            "stop.timeout",
            "nssm AppKillProcessTree = 0: NSSM stopped only the program; tend stops its \
             whole process tree (nothing is left behind)",
        );
    }
}

/// The directory of a Windows or Unix path (`C:\logs\app.log` -> `C:\logs`).
pub(crate) fn parent_dir(path: &str) -> Option<String> {
    let cut = path.rfind(['\\', '/'])?;
    let dir = &path[..cut];
    Some(if dir.is_empty() || dir.ends_with(':') {
        path[..=cut].to_owned()
    } else {
        dir.to_owned()
    })
}

fn logs(d: &mut Draft, v: &RegistryValues) {
    let out = text(v, "AppStdout");
    let err = text(v, "AppStderr");
    if let Some(o) = &out {
        if let Some(dir) = parent_dir(o) {
            d.set_str("logs.dir", &dir);
        }
        if err.as_ref() == Some(o) {
            d.set_str("logs.mode", "combined");
        }
        d.note(
            "logs.dir",
            format!(
                "nssm AppStdout = {o}{}: tend writes <name>.out.log / .err.log (or \
                 <name>.log combined) in logs.dir",
                err.as_ref()
                    .filter(|e| *e != o)
                    .map(|e| format!(", AppStderr = {e}"))
                    .unwrap_or_default()
            ),
        );
    } else if let Some(e) = &err {
        if let Some(dir) = parent_dir(e) {
            d.set_str("logs.dir", &dir);
        }
        d.note("logs.dir", format!("nssm AppStderr = {e}: tend writes <name>.err.log in logs.dir, and captures stdout too"));
    } else {
        d.note(
            "logs.dir",
            "NSSM did not redirect the program's output (no AppStdout): tend captures it \
             into logs.dir",
        );
    }
    let rotate = num(v, "AppRotateFiles").unwrap_or(0) != 0;
    let low = num(v, "AppRotateBytes").unwrap_or(0);
    let high = num(v, "AppRotateBytesHigh").unwrap_or(0);
    let bytes = (high << 32) | low;
    if rotate {
        if bytes > 0 {
            d.set_str("logs.max_size", &size(bytes.max(4096)));
        }
        match num(v, "AppRotateSeconds").unwrap_or(0) {
            0 => {}
            86_400 => d.set_str("logs.rotate_every", "daily"),
            3600 => d.set_str("logs.rotate_every", "hourly"),
            s => d.note(
                "logs.rotate_every",
                format!(
                    "nssm AppRotateSeconds = {s}: tend rotates hourly or daily, not by file age"
                ),
            ),
        }
        if num(v, "AppRotateOnline").unwrap_or(0) == 0 {
            d.note(
                "logs.max_size",
                "NSSM rotated only when the service started (AppRotateOnline = 0); tend \
                 rotates while it runs",
            );
        }
    } else if out.is_some() {
        d.note(
            "logs.max_size",
            "NSSM did not rotate (AppRotateFiles = 0); tend rotates at max_size and daily, \
             keeping `keep` files",
        );
    }
    for k in [
        "AppStdoutCopyAndTruncate",
        "AppStderrCopyAndTruncate",
        "AppRotateDelay",
    ] {
        if num(v, k).unwrap_or(0) != 0 {
            d.note(
                "logs.max_size",
                format!(
                    "nssm {k}: tend always rotates by renaming; it is the only writer of its files"
                ),
            );
        }
    }
    if num(v, "AppTimestampLog") == Some(1) {
        d.set("logs.timestamps", true);
    }
}

fn service_keys(d: &mut Draft, v: &RegistryValues, service: &str) {
    let delayed = num(v, "DelayedAutostart") == Some(1);
    let start = match get(v, "Start") {
        Some(RegValue::Num(2)) if delayed => Some("delayed-auto"),
        Some(RegValue::Num(2)) => Some("auto"),
        Some(RegValue::Num(3)) => Some("manual"),
        Some(RegValue::Num(4)) => Some("disabled"),
        Some(RegValue::Str(s)) => match s.to_ascii_uppercase().as_str() {
            "SERVICE_AUTO_START" if delayed => Some("delayed-auto"),
            "SERVICE_AUTO_START" => Some("auto"),
            "SERVICE_DELAYED_AUTO_START" | "SERVICE_DELAYED_START" => Some("delayed-auto"),
            "SERVICE_DEMAND_START" => Some("manual"),
            "SERVICE_DISABLED" => Some("disabled"),
            _ => None,
        },
        _ => None,
    };
    if let Some(s) = start {
        d.set_str("service.start", s);
    }
    let deps = list(v, "DependOnService");
    if !deps.is_empty() {
        d.set_list("service.depends_on", &deps);
    }
    let groups = list(v, "DependOnGroup");
    if !groups.is_empty() {
        d.note(
            "service.depends_on",
            format!(
                "nssm DependOnGroup = {}: tend depends on services, not load-order groups: \
                 name the services",
                groups.join(", ")
            ),
        );
    }
    if let Some(t) = text(v, "Type").filter(|t| t.contains("INTERACTIVE")) {
        d.note(
            "service.account",
            format!("nssm Type = {t}: tend services never interact with the desktop"),
        );
    }
    // No ObjectName: NSSM installs services as LocalSystem.
    let account = text(v, "ObjectName").unwrap_or_else(|| "LocalSystem".into());
    let lower = account.to_ascii_lowercase().replace(' ', "");
    let mapped = match lower.as_str() {
        "localsystem" | "system" | "ntauthority\\system" | ".\\localsystem" => "system".to_owned(),
        "localservice" | "ntauthority\\localservice" => "local-service".to_owned(),
        "networkservice" | "ntauthority\\networkservice" => "network-service".to_owned(),
        l if l == format!("ntservice\\{}", service.to_ascii_lowercase()) => "isolated".to_owned(),
        _ => account.clone(),
    };
    d.set_str("service.account", &mapped);
    if mapped == "system" {
        d.note(
            "service.account",
            "NSSM ran the service as LocalSystem; tend's default, \"isolated\" (a virtual \
             account of its own), is safer if the program needs no more",
        );
    }
    if get(v, "ObjectNamePassword").is_some()
        || !matches!(
            mapped.as_str(),
            "system" | "local-service" | "network-service" | "isolated"
        )
    {
        d.note(
            "service.password_env",
            "the account's password is not imported: set password_env to the name of an \
             environment variable that holds it when you run `tend install`",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{command, table};

    fn dump(text: &str) -> Vec<Draft> {
        from_dump(&Source::new("svc.txt".as_ref(), text)).unwrap()
    }

    /// A dump as NSSM 2.24 prints it (README: "nssm dump"), quoting by its quote().
    const DUMP: &str = r#"C:\tools\nssm.exe install web "C:\Program Files\Web\web.exe"
C:\tools\nssm.exe set web AppParameters "--config \"C:\cfg\my app.json\" --port 8080"
C:\tools\nssm.exe set web AppDirectory "C:\Program Files\Web"
C:\tools\nssm.exe set web AppExit Default Restart
C:\tools\nssm.exe set web AppExit 3 Exit
C:\tools\nssm.exe set web AppEnvironmentExtra ":GREETING=hello world"
C:\tools\nssm.exe set web AppEnvironmentExtra +PATH=C:\bin;%PATH%
C:\tools\nssm.exe set web AppPriority BELOW_NORMAL_PRIORITY_CLASS
C:\tools\nssm.exe set web AppRestartDelay 5000
C:\tools\nssm.exe set web AppStdout C:\logs\web.log
C:\tools\nssm.exe set web AppStderr C:\logs\web.log
C:\tools\nssm.exe set web AppRotateFiles 1
C:\tools\nssm.exe set web AppRotateOnline 1
C:\tools\nssm.exe set web AppRotateBytes 1048576
C:\tools\nssm.exe set web AppStopMethodConsole 3000
C:\tools\nssm.exe set web AppEvents Start/Pre ^"cmd /c echo a ^& echo b^"
C:\tools\nssm.exe set web Description "The web app"
C:\tools\nssm.exe set web DependOnService RpcSs LanmanWorkstation
C:\tools\nssm.exe set web DisplayName "Web App"
C:\tools\nssm.exe set web ObjectName .\svcuser "****"
C:\tools\nssm.exe set web Start SERVICE_DELAYED_AUTO_START
C:\tools\nssm.exe set web Type SERVICE_WIN32_OWN_PROCESS
"#;

    #[test]
    fn a_full_dump() {
        let drafts = dump(DUMP);
        assert_eq!(drafts.len(), 1);
        let out = drafts[0].render();
        let t = table(&out);
        let cmd = command(&t);
        assert_eq!(cmd[0], r"C:\Program Files\Web\web.exe");
        assert_eq!(
            cmd[1..],
            ["--config", r"C:\cfg\my app.json", "--port", "8080"]
        );
        assert_eq!(t["working_dir"].as_str(), Some(r"C:\Program Files\Web"));
        assert_eq!(t["display_name"].as_str(), Some("Web App"));
        assert_eq!(t["env"]["GREETING"].as_str(), Some("hello world"));
        assert_eq!(t["env"]["PATH"].as_str(), Some(r"C:\bin;%PATH%"));
        assert_eq!(t["restart"]["policy"].as_str(), Some("on-failure"));
        assert_eq!(
            t["restart"]["success_exit_codes"].as_array().unwrap().len(),
            1
        );
        assert_eq!(t["restart"]["delay"].as_str(), Some("5s"));
        assert_eq!(t["restart"]["limit"].as_integer(), Some(0));
        assert_eq!(t["stop"]["timeout"].as_str(), Some("3s"));
        assert_eq!(t["logs"]["dir"].as_str(), Some(r"C:\logs"));
        assert_eq!(t["logs"]["mode"].as_str(), Some("combined"));
        assert_eq!(t["logs"]["max_size"].as_str(), Some("1MiB"));
        assert_eq!(t["service"]["start"].as_str(), Some("delayed-auto"));
        assert_eq!(t["service"]["account"].as_str(), Some(r".\svcuser"));
        assert_eq!(t["service"]["depends_on"].as_array().unwrap().len(), 2);
        for needle in [
            "# nssm AppPriority = BELOW_NORMAL_PRIORITY_CLASS: tend has no priority setting; the program",
            "nssm AppEvents Start/Pre = cmd /c echo a & echo b",
            "%VARIABLES%",
            "password_env",
        ] {
            assert!(out.contains(needle), "{needle}\n{out}");
        }
        // The note sits above the key it explains.
        let note = out.find("# nssm AppPriority").unwrap();
        assert!(note < out.find("command = ").unwrap(), "{out}");
    }

    #[test]
    fn exit_actions() {
        let cases: &[(&str, &str, Option<i64>)] = &[
            ("", "always", None),
            ("x set s AppExit Default Exit\n", "never", None),
            (
                "x set s AppExit Default Restart\nx set s AppExit 0 Exit\n",
                "on-failure",
                Some(0),
            ),
            ("x set s AppExit Default Ignore\n", "never", None),
            (
                "x set s AppExit Default Exit\nx set s AppExit 2 Restart\n",
                "on-failure",
                None,
            ),
        ];
        for (extra, policy, code) in cases {
            let text = format!("x install s /bin/prog\n{extra}");
            let t = table(&dump(&text)[0].render());
            assert_eq!(t["restart"]["policy"].as_str(), Some(*policy), "{extra}");
            let codes = t["restart"]
                .get("success_exit_codes")
                .and_then(|c| c.as_array());
            assert_eq!(codes.and_then(|c| c[0].as_integer()), *code, "{extra}");
        }
    }

    #[test]
    fn registry_values_map_like_the_dump() {
        let mut v = RegistryValues::new();
        v.insert("Application".into(), RegValue::Str("/bin/prog".into()));
        v.insert("AppParameters".into(), RegValue::Str(r#"a "b c""#.into()));
        v.insert(
            "AppEnvironmentExtra".into(),
            RegValue::Multi(vec!["A=1".into(), "B=x y".into()]),
        );
        v.insert("AppPriority".into(), RegValue::Num(0x4000));
        v.insert("Start".into(), RegValue::Num(3));
        v.insert(
            "ObjectName".into(),
            RegValue::Str("NT Authority\\NetworkService".into()),
        );
        v.insert("AppStopMethodSkip".into(), RegValue::Num(1));
        v.insert("AppExit\\Default".into(), RegValue::Str("Exit".into()));
        let d = from_registry("svc", &v).unwrap();
        let out = d.render();
        let t = table(&out);
        assert_eq!(t["command"].as_array().unwrap().len(), 3);
        assert_eq!(t["env"]["B"].as_str(), Some("x y"));
        assert_eq!(t["service"]["start"].as_str(), Some("manual"));
        assert_eq!(t["service"]["account"].as_str(), Some("network-service"));
        assert_eq!(t["stop"]["windows"].as_str(), Some("close-window"));
        assert_eq!(t["restart"]["policy"].as_str(), Some("never"));
        assert!(out.contains("BELOW_NORMAL_PRIORITY_CLASS"), "{out}");
        assert!(from_registry("svc", &RegistryValues::new()).is_err());
    }

    #[test]
    fn bad_lines_name_their_line() {
        let e = from_dump(&Source::new("d.txt".as_ref(), "x install s prog\nhello\n")).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().starts_with("d.txt:2: "), "{e}");
    }
}
