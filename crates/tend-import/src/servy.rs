//! Servy: a service exported with `servy-cli export` (or the Manager's Export), JSON or XML.
//!
//! Servy documents the export only as "export/import service configurations"; the format
//! read here is what its code writes (Servy.Core: `ServiceDto` serialized by Newtonsoft.Json
//! with property names as they are, or by .NET's XmlSerializer as `<ServiceDto>`), and the
//! semantics are those of Servy.Service (assumptions listed in docs/import.md).

use std::time::Duration;

use crate::Source;
use crate::args::split_windows;
use crate::draft::{Draft, set_name, size};
use crate::error::{At, ImportError};
use crate::literal;
use crate::tree;

pub(crate) fn convert(src: &Source<'_>) -> Result<Draft, ImportError> {
    let file = src.path.display().to_string();
    let at = At::new(file.clone());
    let trimmed = src.text.trim_start_matches('\u{feff}').trim_start();
    let root = if trimmed.starts_with('<') {
        let (name, node) = tree::from_xml(src.text, &at)?;
        if !name.eq_ignore_ascii_case("ServiceDto") {
            return Err(at.err(
                Some(node.line),
                Some(format!("<{name}>")),
                "the root element of a Servy XML export is <ServiceDto>",
            ));
        }
        node
    } else {
        literal::parse_file(src.text, &at)?
    };
    let mut d = Draft::new(format!("Servy export {file}"));
    let setting = |k: &str| Some(k.to_owned());
    let line = |k: &str| Some(root.get(k).map_or(root.line, |n| n.line));
    let int = |k: &str| -> Result<Option<i64>, ImportError> {
        root.get(k)
            .filter(|n| n.text().is_some_and(|t| !t.is_empty()))
            .map(|n| {
                n.num().map(|f| f as i64).ok_or_else(|| {
                    at.err(
                        Some(n.line),
                        setting(k),
                        format!("is {}, expected a number", n.kind()),
                    )
                })
            })
            .transpose()
    };
    let s = |k: &str| root.str_of(k).filter(|v| !v.trim().is_empty());

    let Some(name) = s("Name") else {
        return Err(at.err(
            Some(root.line),
            setting("Name"),
            "missing: the service name",
        ));
    };
    if !set_name(&mut d, &name, "the Servy service name") {
        return Err(at.err(
            line("Name"),
            setting("Name"),
            "is not a usable service name",
        ));
    }
    if let Some(n) = s("DisplayName").filter(|n| *n != name) {
        d.set_str("display_name", &n);
    }
    if let Some(desc) = s("Description") {
        d.set_str("description", &desc);
    }
    let Some(exe) = s("ExecutablePath") else {
        return Err(at.err(
            Some(root.line),
            setting("ExecutablePath"),
            "missing: the program to run",
        ));
    };
    let mut command = vec![exe];
    if let Some(p) = s("Parameters") {
        command.extend(split_windows(&p, false));
    }
    if command.iter().any(|a| a.matches('%').count() >= 2) {
        d.note("command", "Servy expanded %VARIABLES% in the path and parameters; tend does not: write the values");
    }
    d.set_list("command", &command);
    if let Some(dir) = s("StartupDirectory") {
        d.set_str("working_dir", &dir);
    }
    if let Some(vars) = s("EnvironmentVariables") {
        for (k, v) in servy_env(&vars).map_err(|m| {
            at.err(
                line("EnvironmentVariables"),
                setting("EnvironmentVariables"),
                m,
            )
        })? {
            d.env(&k, &v);
        }
    }

    // Restarts (Servy.Service EvaluateExitOutcome): RecoveryAction None stops the service
    // when the program exits; RestartProcess/RestartService restart it after a failure (and
    // after exit 0 with RecoveryOnCleanExit), up to MaxRestartAttempts (3), after a delay of
    // max(HeartbeatInterval - 5 s, 5 s).
    let action = int("RecoveryAction")?.unwrap_or(1);
    let on_clean = root.bool_of("RecoveryOnCleanExit").unwrap_or(false);
    match action {
        0 => d.set_str("restart.policy", "never"),
        1..=3 => {
            d.set_str("restart.policy", if on_clean { "always" } else { "on-failure" });
            d.set("restart.limit", int("MaxRestartAttempts")?.unwrap_or(3).max(0));
            let hb = int("HeartbeatInterval")?.unwrap_or(30).max(0) as u64;
            let delay = Duration::from_secs(hb.saturating_sub(5).max(5));
            d.set_duration("restart.delay", delay);
            d.set("restart.multiplier", 1.0);
            if delay > Duration::from_secs(60) {
                d.set_duration("restart.max_delay", delay);
            }
            if action == 1 {
                d.note("restart.policy", "Servy RecoveryAction = RestartService restarted the whole service; tend restarts the program (the same for the program)");
            }
            if action == 3 {
                d.note("restart.policy", "Servy RecoveryAction = RestartComputer: tend never reboots the machine; it restarts the program");
            }
        }
        other => return Err(at.err(line("RecoveryAction"), setting("RecoveryAction"), format!("{other} is not 0 (None), 1 (RestartService), 2 (RestartProcess) or 3 (RestartComputer)"))),
    }
    if let Some(p) = s("FailureProgramPath") {
        let mut hook = vec![p];
        if let Some(a) = s("FailureProgramParameters") {
            hook.extend(split_windows(&a, false));
        }
        d.set_list("restart.on_give_up", &hook);
        if let Some(dir) = s("FailureProgramStartupDirectory") {
            d.note("restart.on_give_up", format!("Servy FailureProgramStartupDirectory = {dir}: tend runs the hook in working_dir"));
        }
    }
    if root.bool_of("EnableHealthMonitoring") == Some(true) {
        d.note("restart.policy", format!(
            "Servy health monitoring (every {} s, {} failed checks) checked that the process was alive; tend notices an exit at once",
            int("HeartbeatInterval")?.unwrap_or(30), int("MaxFailedChecks")?.unwrap_or(3)
        ));
    }
    if let Some(url) = s("HeartbeatUrl") {
        d.note("notify.webhook", format!("Servy HeartbeatUrl = {url}: tend does not ping a URL while healthy; [notify] webhook posts its events (crashed, restarting, gave_up ...)"));
    }

    if let Some(t) = int("StopTimeout")? {
        d.set_duration("stop.timeout", Duration::from_secs(t.max(0) as u64));
    } else {
        d.set_duration("stop.timeout", Duration::from_secs(5));
    }
    if let Some(t) = int("StartTimeout")? {
        d.note(
            "command",
            format!("Servy StartTimeout = {t} s: tend counts the program as started once it runs"),
        );
    }

    // Logs.
    let out = s("StdoutPath");
    let err = s("StderrPath");
    if let Some(p) = out.as_ref().or(err.as_ref()) {
        if let Some(dir) = crate::nssm::parent_dir(p) {
            d.set_str("logs.dir", &dir);
        }
        if out.is_some() && out == err {
            d.set_str("logs.mode", "combined");
        }
        d.note("logs.dir", format!("Servy wrote {}; tend writes <name>.out.log and <name>.err.log (or <name>.log combined) in logs.dir", [out.clone(), err.clone()].into_iter().flatten().collect::<Vec<_>>().join(" and ")));
    }
    if root.bool_of("EnableSizeRotation") == Some(true) {
        // RotationSize is in MB; taken as MiB.
        let mb = int("RotationSize")?.unwrap_or(10).max(1) as u64;
        d.set_str("logs.max_size", &size(mb << 20));
    } else if out.is_some() || err.is_some() {
        d.set_str("logs.max_size", "0");
    }
    if root.bool_of("EnableDateRotation") == Some(true) {
        match int("DateRotationType")?.unwrap_or(0) {
            0 => d.set_str("logs.rotate_every", "daily"),
            3 => d.set_str("logs.rotate_every", "never"),
            t => {
                d.set_str("logs.rotate_every", "daily");
                d.note(
                    "logs.rotate_every",
                    format!(
                        "Servy rotated {}; tend rotates hourly or daily at the most",
                        if t == 1 { "weekly" } else { "monthly" }
                    ),
                );
            }
        }
        if root.bool_of("UseLocalTimeForRotation") == Some(false) {
            d.note(
                "logs.rotate_every",
                "Servy rotated at UTC midnight; tend rotates at local midnight",
            );
        }
    } else if out.is_some() || err.is_some() {
        d.set_str("logs.rotate_every", "never");
    }
    if let Some(n) = int("MaxRotations")? {
        // 0 is "unlimited" in both.
        d.set("logs.keep", n.max(0));
    }

    // The service.
    match int("StartupType")? {
        None | Some(2) => d.set_str("service.start", "auto"),
        Some(5) => d.set_str("service.start", "delayed-auto"),
        Some(3) => d.set_str("service.start", "manual"),
        Some(4) => d.set_str("service.start", "disabled"),
        Some(other) => return Err(at.err(line("StartupType"), setting("StartupType"), format!("{other} is not 2 (Automatic), 5 (AutomaticDelayedStart), 3 (Manual) or 4 (Disabled)"))),
    }
    if let Some(deps) = s("ServiceDependencies") {
        let deps: Vec<String> = deps
            .split(';')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect();
        d.set_list("service.depends_on", &deps);
    }
    match (root.bool_of("RunAsLocalSystem"), s("UserAccount")) {
        (_, Some(u)) => {
            let mapped = match u.to_ascii_lowercase().replace(' ', "").as_str() {
                "ntauthority\\localservice" => "local-service".to_owned(),
                "ntauthority\\networkservice" => "network-service".to_owned(),
                "localsystem" | "ntauthority\\system" => "system".to_owned(),
                _ => u.clone(),
            };
            d.set_str("service.account", &mapped);
            if root.get("Password").is_some() || !mapped.contains("service") && mapped != "system" {
                d.note("service.password_env", "the password is not imported: set password_env to the name of an environment variable that holds it when you run `tend install`");
            }
        }
        _ => {
            d.set_str("service.account", "system");
            d.note("service.account", "Servy ran the service as LocalSystem; tend's default, \"isolated\" (a virtual account of its own), is safer if the program needs no more");
        }
    }

    let unsupported: &[(&str, &'static str, &str)] = &[
        (
            "Priority",
            "command",
            "tend has no priority setting; the program runs at normal priority",
        ),
        (
            "CpuAffinity",
            "command",
            "tend has no CPU affinity setting; the program may run on every CPU",
        ),
        ("EnableConsoleUI", "stop.windows", "no tend equivalent"),
        (
            "EnableDebugLogs",
            "logs.dir",
            "tend's own log is <name>.tend.log",
        ),
        (
            "PreLaunchExecutablePath",
            "command",
            "tend has no pre-launch hook: run it from a wrapper script",
        ),
        (
            "PostLaunchExecutablePath",
            "command",
            "tend has no post-launch hook",
        ),
        (
            "PreStopExecutablePath",
            "stop.windows",
            "tend has no pre-stop hook",
        ),
        (
            "PostStopExecutablePath",
            "stop.windows",
            "tend has no post-stop hook",
        ),
    ];
    for (k, key, instead) in unsupported {
        if let Some(n) = root.get(k) {
            let v = n.text().unwrap_or_default();
            if (*k == "Priority" && v == "2")
                || (matches!(*k, "EnableConsoleUI" | "EnableDebugLogs") && v == "false")
                || v.is_empty()
            {
                continue;
            }
            d.note(key, format!("Servy {k} = {v}: {instead}"));
        }
    }
    Ok(d)
}

/// Servy's environment variables: `KEY=value` records separated by `;` or newlines, a
/// backslash escaping `=`, `;`, `"` and `\`, one pair of surrounding quotes around a value
/// removed (Servy.Core EnvironmentVariableParser).
fn servy_env(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut records = Vec::new();
    let mut cur = String::new();
    let mut backslashes = 0;
    for c in s.chars() {
        if matches!(c, ';' | '\r' | '\n') && backslashes % 2 == 0 {
            records.push(std::mem::take(&mut cur));
            backslashes = 0;
            continue;
        }
        cur.push(c);
        backslashes = if c == '\\' { backslashes + 1 } else { 0 };
    }
    records.push(cur);
    let mut out = Vec::new();
    for r in records.iter().filter(|r| !r.trim().is_empty()) {
        let mut eq = None;
        let mut bs = 0;
        for (i, c) in r.char_indices() {
            if c == '=' && bs % 2 == 0 {
                eq = Some(i);
                break;
            }
            bs = if c == '\\' { bs + 1 } else { 0 };
        }
        let Some(eq) = eq else {
            return Err(format!(
                "{r:?} has no `=` (records are KEY=value, separated by `;`)"
            ));
        };
        let key = unescape(r[..eq].trim());
        let mut value = r[eq + 1..].trim().to_owned();
        if value.len() >= 2
            && value.starts_with('"')
            && value.ends_with('"')
            && !value[..value.len() - 1].ends_with('\\')
        {
            value = value[1..value.len() - 1].to_owned();
        }
        if key.is_empty() {
            return Err(format!("{r:?} has an empty name"));
        }
        out.push((key, unescape(&value)));
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) if matches!(n, '=' | ';' | '\\' | '"') => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::table;

    #[test]
    fn the_json_export_of_its_tests() {
        // Servy's own tests/data/Service.json, shortened.
        let text = r#"{
  "Name": "DummyService",
  "DisplayName": "Dummy Service",
  "ExecutablePath": "C:\\Windows\\System32\\notepad.exe",
  "StartupDirectory": "C:\\Windows\\Temp",
  "Parameters": "--param 2000 \"a b\"",
  "StartupType": 3,
  "Priority": 1,
  "StopTimeout": 10,
  "StdoutPath": "C:\\Windows\\Temp\\dummy-stdout.log",
  "StderrPath": "C:\\Windows\\Temp\\dummy-stderr.log",
  "EnableSizeRotation": true,
  "RotationSize": 1,
  "EnableDateRotation": true,
  "DateRotationType": 1,
  "MaxRotations": 3,
  "RecoveryAction": 1,
  "RecoveryOnCleanExit": true,
  "MaxRestartAttempts": 2,
  "HeartbeatInterval": 5,
  "FailureProgramPath": "C:\\Windows\\System32\\cmd.exe",
  "FailureProgramParameters": "/c exit 0 --param 2001",
  "EnvironmentVariables": "var1=val1; var2=\"a b\"; var3=x\\;y",
  "ServiceDependencies": "Tcpip;Dnscache"
}"#;
        let out = convert(&Source::new("s.json".as_ref(), text))
            .unwrap()
            .render();
        let t = table(&out);
        assert_eq!(t["command"].as_array().unwrap().len(), 4);
        assert_eq!(t["command"][3].as_str(), Some("a b"));
        assert_eq!(t["env"]["var2"].as_str(), Some("a b"));
        assert_eq!(t["env"]["var3"].as_str(), Some("x;y"));
        assert_eq!(t["restart"]["policy"].as_str(), Some("always"));
        assert_eq!(t["restart"]["limit"].as_integer(), Some(2));
        assert_eq!(t["restart"]["delay"].as_str(), Some("5s"));
        assert_eq!(t["restart"]["on_give_up"].as_array().unwrap().len(), 6);
        assert_eq!(t["stop"]["timeout"].as_str(), Some("10s"));
        assert_eq!(t["logs"]["max_size"].as_str(), Some("1MiB"));
        assert_eq!(t["logs"]["keep"].as_integer(), Some(3));
        assert_eq!(t["service"]["start"].as_str(), Some("manual"));
        assert_eq!(t["service"]["depends_on"].as_array().unwrap().len(), 2);
        assert!(
            out.contains("Servy Priority = 1: tend has no priority"),
            "{out}"
        );
        assert!(out.contains("weekly"), "{out}");
    }

    #[test]
    fn the_xml_export() {
        let text = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ServiceDto xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n  <Name>Wexflow</Name>\n  <ExecutablePath>C:\\Program Files\\dotnet\\dotnet.exe</ExecutablePath>\n  <Parameters>Wexflow.Server.dll</Parameters>\n  <StartupType>2</StartupType>\n  <RecoveryAction>0</RecoveryAction>\n  <EnvironmentVariables>var1=val1;var2=val2</EnvironmentVariables>\n</ServiceDto>\n";
        let t = table(
            &convert(&Source::new("s.xml".as_ref(), text))
                .unwrap()
                .render(),
        );
        assert_eq!(t["restart"]["policy"].as_str(), Some("never"));
        assert_eq!(t["env"]["var2"].as_str(), Some("val2"));
        let e = convert(&Source::new(
            "s.json".as_ref(),
            "{\n\"Name\": \"a\",\n\"ExecutablePath\": \"x\",\n\"StartupType\": 9\n}",
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(4));
    }
}
