//! WinSW: its XML file (v2, doc/xmlConfigFile.md) or YAML file (v3, doc/yamlConfigFile.md).
//! Both become one tree (XML elements and YAML keys alike, names compared without case), and
//! one mapping reads it.

use std::time::Duration;

use crate::Source;
use crate::args::split_windows;
use crate::draft::{Draft, set_name};
use crate::error::{At, ImportError};
use crate::tree::{self, Node};

pub(crate) fn convert(src: &Source<'_>) -> Result<Draft, ImportError> {
    let file = src.path.display().to_string();
    let at = At::new(file.clone());
    let trimmed = src.text.trim_start_matches('\u{feff}').trim_start();
    let (root, form) = if trimmed.starts_with('<') {
        let (name, node) = tree::from_xml(src.text, &at)?;
        if !name.eq_ignore_ascii_case("service") {
            return Err(at.err(
                Some(node.line),
                Some(format!("<{name}>")),
                "the root element of a WinSW file is <service>",
            ));
        }
        (node, "XML")
    } else {
        (tree::from_yaml(src.text, &at)?, "YAML")
    };
    let mut d = Draft::new(format!("WinSW {form} file {file}"));
    let setting = |k: &str| Some(k.to_owned());
    let line = |k: &str| Some(root.get(k).map_or(root.line, |n| n.line));

    // %BASE% is the directory of WinSW's executable, which is the file's directory.
    let base = src.dir.as_ref().map(|d| d.display().to_string());
    let mut env: Vec<(String, String)> = Vec::new();
    let expand = |s: &str, env: &[(String, String)], d: &mut Draft, key: &'static str| {
        let mut out = s.to_owned();
        if let Some(b) = &base {
            out = replace_ci(&out, "%BASE%", b);
        }
        for (k, v) in env {
            out = replace_ci(&out, &format!("%{k}%"), v);
        }
        if out.matches('%').count() >= 2 {
            d.note(
                key,
                format!("WinSW expanded %VARIABLES% in {s:?}; tend does not: write the value"),
            );
        }
        out
    };

    let Some(id) = root.str_of("id") else {
        return Err(at.err(Some(root.line), setting("id"), "missing: the service's id"));
    };
    if !set_name(&mut d, &id, "the WinSW id") {
        return Err(at.err(line("id"), setting("id"), "is not a usable service name"));
    }
    if let Some(n) = root.str_of("name").filter(|n| *n != id) {
        d.set_str("display_name", &n);
    }
    if let Some(desc) = root.str_of("description") {
        d.set_str("description", &desc);
    }

    for e in root.all("env") {
        let (Some(k), v) = (e.str_of("name"), e.str_of("value").unwrap_or_default()) else {
            return Err(at.err(Some(e.line), setting("env"), "needs a name (and a value)"));
        };
        let v = expand(&v, &env, &mut d, "env");
        if !e.all("rule").is_empty() {
            d.note("env", format!("WinSW env {k} has <rule> replacements; tend does not rewrite values: write the final value"));
        }
        env.push((k.clone(), v.clone()));
        d.env(&k, &v);
    }
    if base.is_some() {
        d.note("env", "WinSW set BASE (its own directory) for the program; tend does not: add it to env if the program reads it");
    }

    let Some(exe) = root.str_of("executable") else {
        return Err(at.err(
            Some(root.line),
            setting("executable"),
            "missing: the program to run",
        ));
    };
    let exe = expand(&exe, &env, &mut d, "command");
    let args = root
        .str_of("startarguments")
        .or_else(|| root.str_of("arguments"))
        .unwrap_or_default();
    // WinSW passes the arguments as the rest of the command line; YAML's folded form has
    // newlines between them.
    let args = expand(&args.replace(['\r', '\n'], " "), &env, &mut d, "command");
    let mut command = vec![exe];
    command.extend(split_windows(&args, false));
    d.set_list("command", &command);
    if let Some(w) = root.str_of("workingdirectory") {
        let w = expand(&w, &env, &mut d, "working_dir");
        d.set_str("working_dir", &w);
    } else if let Some(b) = &base {
        d.set_str("working_dir", b);
    }
    if root.get("stopexecutable").is_some() || root.get("stoparguments").is_some() {
        d.note("stop.windows", format!(
            "WinSW ran {} {} to stop the program; tend's graceful step is Ctrl+C (stop.windows), then it ends the process tree",
            root.str_of("stopexecutable").unwrap_or_else(|| command[0].clone()),
            root.str_of("stoparguments").unwrap_or_default()
        ));
    }
    if let Some(t) = root.str_of("stoptimeout") {
        let dur = winsw_time(&t).ok_or_else(|| {
            at.err(
                line("stoptimeout"),
                setting("stoptimeout"),
                format!("{t:?} is not a duration (e.g. \"10 sec\", \"1 min\")"),
            )
        })?;
        d.set_duration("stop.timeout", dur);
    } else {
        d.set_duration("stop.timeout", Duration::from_secs(15));
    }
    if root.bool_of("stopparentprocessfirst") == Some(false) {
        d.note("stop.windows", "WinSW stopped the child processes first; tend sends Ctrl+C to the program's console, which reaches them all");
    }

    // Restarts: WinSW exits with the program; the SCM restarts it by <onfailure> actions,
    // only after a non-zero exit. No <onfailure>: never restarted.
    let actions = root.all("onfailure");
    if actions.is_empty() {
        d.set_str("restart.policy", "never");
    } else {
        let mut restarts = Vec::new();
        let mut last = String::new();
        for a in &actions {
            let action = a.str_of("action").unwrap_or_default().to_ascii_lowercase();
            let delay = match a.str_of("delay") {
                Some(t) => Some(winsw_time(&t).ok_or_else(|| {
                    at.err(
                        Some(a.line),
                        setting("onfailure delay"),
                        format!("{t:?} is not a duration"),
                    )
                })?),
                None => None,
            };
            match action.as_str() {
                "restart" => restarts.push(delay.unwrap_or(Duration::ZERO)),
                "none" => {}
                "reboot" => d.note("restart.on_give_up", "WinSW onfailure action=\"reboot\": tend never reboots the machine; on_give_up can run a command when tend gives up"),
                other => return Err(at.err(Some(a.line), setting("onfailure action"), format!("{other:?} is not restart, reboot or none"))),
            }
            last = action;
        }
        if restarts.is_empty() {
            d.set_str("restart.policy", "never");
        } else {
            d.set_str("restart.policy", "on-failure");
            let first = restarts[0];
            if !first.is_zero() {
                d.set_duration("restart.delay", first);
            }
            let max = restarts.iter().max().copied().unwrap_or(first);
            if max > first {
                d.set_duration("restart.max_delay", max);
                d.note("restart.delay", format!(
                    "WinSW's restart delays were {}; tend starts at delay and doubles up to max_delay",
                    restarts.iter().map(|r| crate::draft::duration(*r)).collect::<Vec<_>>().join(", ")
                ));
            } else if first > Duration::from_secs(60) {
                d.set_duration("restart.max_delay", first);
            }
            if last == "restart" {
                d.set("restart.limit", 0);
            } else {
                d.set("restart.limit", restarts.len() as i64);
                let window = match root.str_of("resetfailure") {
                    Some(t) => winsw_time(&t).ok_or_else(|| {
                        at.err(
                            line("resetfailure"),
                            setting("resetfailure"),
                            format!("{t:?} is not a duration"),
                        )
                    })?,
                    None => Duration::from_secs(86_400),
                };
                d.set_duration("restart.limit_window", window);
            }
        }
    }
    if let Some(t) = root.str_of("resetfailure") {
        let dur = winsw_time(&t).ok_or_else(|| {
            at.err(
                line("resetfailure"),
                setting("resetfailure"),
                format!("{t:?} is not a duration"),
            )
        })?;
        d.set_duration("restart.reset_after", dur);
    }

    logs(&mut d, &root, &at, &env, base.as_deref())?;

    // The service.
    let start = root
        .str_of("startmode")
        .unwrap_or_else(|| "Automatic".into());
    let delayed = root.bool_of("delayedautostart") == Some(true);
    match start.to_ascii_lowercase().as_str() {
        "automatic" | "auto" if delayed => d.set_str("service.start", "delayed-auto"),
        "automatic" | "auto" => d.set_str("service.start", "auto"),
        "manual" | "demand" => d.set_str("service.start", "manual"),
        "disabled" => d.set_str("service.start", "disabled"),
        "boot" | "system" => {
            d.set_str("service.start", "auto");
            d.note("service.start", format!("WinSW startmode {start}: a driver start type; tend's service starts at boot (auto)"));
        }
        other => {
            return Err(at.err(
                line("startmode"),
                setting("startmode"),
                format!("{other:?} is not Automatic, Manual, Boot or System"),
            ));
        }
    }
    let mut deps: Vec<String> = root.all("depend").iter().filter_map(|n| n.text()).collect();
    deps.extend(
        root.all("serviceDependencies")
            .iter()
            .filter_map(|n| n.text()),
    );
    if !deps.is_empty() {
        d.set_list("service.depends_on", &deps);
    }
    match root.get("serviceaccount") {
        None => {
            d.set_str("service.account", "system");
            d.note("service.account", "WinSW installs services as LocalSystem; tend's default, \"isolated\" (a virtual account of its own), is safer if the program needs no more");
        }
        Some(acc) => {
            let user = acc
                .str_of("user")
                .or_else(|| acc.str_of("username"))
                .unwrap_or_default();
            let domain = acc.str_of("domain").unwrap_or_default();
            let full = if domain.is_empty() || domain == "." {
                user.clone()
            } else {
                format!("{domain}\\{user}")
            };
            let mapped = match full.to_ascii_lowercase().replace(' ', "").as_str() {
                "localsystem" | "ntauthority\\system" => "system".to_owned(),
                "ntauthority\\localservice" | "localservice" => "local-service".to_owned(),
                "ntauthority\\networkservice" | "networkservice" => "network-service".to_owned(),
                "" => return Err(at.err(Some(acc.line), setting("serviceaccount"), "has no user")),
                _ => full.clone(),
            };
            d.set_str("service.account", &mapped);
            if acc.get("password").is_some() {
                d.note("service.password_env", "the WinSW file's password is not imported: set password_env to the name of an environment variable that holds it when you run `tend install`");
            }
            if acc.bool_of("allowservicelogon") == Some(true) {
                d.note("service.account", "WinSW granted the account \"Log on as a service\"; tend install expects the account to have it");
            }
        }
    }

    let unsupported: &[(&str, &'static str, &str)] = &[
        (
            "priority",
            "command",
            "tend has no priority setting; the program runs at normal priority",
        ),
        (
            "interactive",
            "service.account",
            "tend services never interact with the desktop",
        ),
        ("beeponshutdown", "stop.windows", "no tend equivalent"),
        (
            "download",
            "command",
            "tend downloads nothing before the start: fetch the files beforehand",
        ),
        ("extensions", "command", "WinSW extensions are not imported"),
        (
            "securitydescriptor",
            "service.account",
            "tend sets no custom security descriptor on the service",
        ),
        (
            "hidewindow",
            "command",
            "tend always hides the program's console",
        ),
        (
            "waithint",
            "stop.timeout",
            "tend reports its own wait hints",
        ),
        (
            "sleeptime",
            "stop.timeout",
            "tend reports its own wait hints",
        ),
        (
            "prestart",
            "command",
            "tend has no hooks around start and stop",
        ),
        (
            "poststart",
            "command",
            "tend has no hooks around start and stop",
        ),
        (
            "prestop",
            "command",
            "tend has no hooks around start and stop",
        ),
        (
            "poststop",
            "command",
            "tend has no hooks around start and stop",
        ),
        ("autoRefresh", "command", "no tend equivalent"),
        (
            "sharedDirectoryMapping",
            "command",
            "no tend equivalent: map drives in the program or a wrapper",
        ),
    ];
    for (k, key, instead) in unsupported {
        if let Some(n) = root.get(k) {
            let shown = n
                .text()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "(set)".into());
            d.note(key, format!("WinSW {k} = {shown}: {instead}"));
        }
    }
    Ok(d)
}

fn logs(
    d: &mut Draft,
    root: &Node,
    at: &At,
    env: &[(String, String)],
    base: Option<&str>,
) -> Result<(), ImportError> {
    let log = root.get("log");
    let logpath = root
        .str_of("logpath")
        .or_else(|| log.and_then(|l| l.str_of("logpath")));
    let mut dir = logpath.or_else(|| base.map(str::to_owned));
    if let Some(b) = base {
        dir = dir.map(|p| replace_ci(&p, "%BASE%", b));
    }
    for (k, v) in env {
        dir = dir.map(|p| replace_ci(&p, &format!("%{k}%"), v));
    }
    if let Some(dir) = dir {
        d.set_str("logs.dir", &dir);
    }
    let Some(log) = log else {
        d.note("logs.max_size", "WinSW appended to <id>.out.log and <id>.err.log without rotating (log mode append); tend rotates at max_size and daily");
        return Ok(());
    };
    let mode = log
        .str_of("mode")
        .unwrap_or_else(|| "append".into())
        .to_ascii_lowercase();
    let kb = |k: &str| -> Result<Option<u64>, ImportError> {
        log.get(k)
            .map(|n| {
                n.num().map(|f| f as u64).ok_or_else(|| {
                    at.err(Some(n.line), Some(format!("log {k}")), "expected a number")
                })
            })
            .transpose()
    };
    match mode.as_str() {
        "append" => d.note("logs.max_size", "WinSW log mode append did not rotate; tend rotates at max_size and daily"),
        "reset" => d.note("logs.max_size", "WinSW log mode reset emptied the files at each start; tend keeps them and rotates"),
        "none" | "ignore" => d.note("logs.dir", "WinSW discarded the output (log mode none); tend always captures it"),
        "roll" | "roll-by-size" => {
            // roll-by-size's sizeThreshold is in KB (default 10 MB), keepFiles default 8.
            let size = kb("sizeThreshold")?.unwrap_or(10 * 1024) * 1024;
            d.set_str("logs.max_size", &crate::draft::size(size.max(4096)));
            d.set("logs.keep", kb("keepFiles")?.unwrap_or(8) as i64);
            d.set_str("logs.rotate_every", "never");
        }
        "roll-by-time" | "roll-by-size-time" => {
            let pattern = log.str_of("pattern").unwrap_or_default();
            let every = if pattern.contains('H') || pattern.contains('h') { "hourly" } else { "daily" };
            d.set_str("logs.rotate_every", every);
            if mode == "roll-by-size-time" {
                let size = kb("sizeThreshold")?.unwrap_or(10 * 1024) * 1024;
                d.set_str("logs.max_size", &crate::draft::size(size.max(4096)));
            } else {
                d.set_str("logs.max_size", "0");
            }
            d.note("logs.rotate_every", format!("WinSW rolled by the time pattern {pattern:?}; tend rotates {every} and names rotated files by their time"));
            if let Some(z) = log.str_of("zipOlderThanNumDays") {
                d.note("logs.compress", format!("WinSW zipped files older than {z} days; tend gzips each rotated file"));
            }
        }
        other => return Err(at.err(Some(log.line), Some("log mode".into()), format!("{other:?} is not append, reset, none, roll, roll-by-size, roll-by-time or roll-by-size-time"))),
    }
    for k in [
        "outFileDisabled",
        "errFileDisabled",
        "outFilePattern",
        "errFilePattern",
        "name",
    ] {
        if let Some(v) = log.str_of(k) {
            d.note(
                "logs.dir",
                format!("WinSW log {k} = {v}: tend writes <name>.out.log and <name>.err.log"),
            );
        }
    }
    Ok(())
}

/// WinSW durations: a number with sec/secs/min/mins/hour/hours/day/days (or ms), or a
/// .NET TimeSpan `hh:mm:ss`.
fn winsw_time(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.contains(':') {
        let parts: Vec<f64> = s
            .split(':')
            .map(|p| p.trim().parse().ok())
            .collect::<Option<_>>()?;
        let secs = parts.iter().fold(0.0, |acc, p| acc * 60.0 + p);
        return Some(Duration::from_secs_f64(secs));
    }
    let n_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n: f64 = s[..n_len].parse().ok()?;
    let unit = s[n_len..].trim().to_ascii_lowercase();
    let secs = match unit.as_str() {
        "ms" => n / 1000.0,
        "" | "s" | "sec" | "secs" => n,
        "m" | "min" | "mins" => n * 60.0,
        "h" | "hour" | "hours" => n * 3600.0,
        "d" | "day" | "days" => n * 86400.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

fn replace_ci(s: &str, pat: &str, with: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let p = pat.to_ascii_lowercase();
    let mut out = String::new();
    let mut i = 0;
    while let Some(found) = lower[i..].find(&p) {
        out.push_str(&s[i..i + found]);
        out.push_str(with);
        i += found + p.len();
    }
    out.push_str(&s[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{command, table};

    fn conv(name: &str, text: &str) -> String {
        let mut src = Source::new(name.as_ref(), text);
        src.dir = Some(r"C:\svc\jenkins".into());
        convert(&src).unwrap().render()
    }

    #[test]
    fn the_xml_docs_example() {
        let out = conv(
            "jenkins.xml",
            r#"<service>
  <id>jenkins</id>
  <name>Jenkins</name>
  <description>This service runs Jenkins continuous integration system.</description>
  <env name="JENKINS_HOME" value="%BASE%"/>
  <executable>java</executable>
  <arguments>-Xrs -Xmx256m -jar "%BASE%\jenkins.war" --httpPort=8080 --msg="a \"b\""</arguments>
  <log mode="roll-by-size"><sizeThreshold>10240</sizeThreshold><keepFiles>8</keepFiles></log>
  <onfailure action="restart" delay="10 sec"/>
  <onfailure action="restart" delay="20 sec"/>
  <onfailure action="reboot" />
  <resetfailure>1 hour</resetfailure>
  <stoptimeout>10sec</stoptimeout>
  <priority>idle</priority>
  <depend>Eventlog</depend>
  <depend>W32Time</depend>
  <delayedAutoStart/>
  <serviceaccount><domain>YOURDOMAIN</domain><user>useraccount</user><password>Pa55w0rd</password></serviceaccount>
</service>"#,
        );
        let t = table(&out);
        let cmd = command(&t);
        assert_eq!(
            cmd,
            [
                "java",
                "-Xrs",
                "-Xmx256m",
                "-jar",
                r"C:\svc\jenkins\jenkins.war",
                "--httpPort=8080",
                r#"--msg=a "b""#
            ]
        );
        assert_eq!(t["display_name"].as_str(), Some("Jenkins"));
        assert_eq!(t["env"]["JENKINS_HOME"].as_str(), Some(r"C:\svc\jenkins"));
        assert_eq!(t["restart"]["policy"].as_str(), Some("on-failure"));
        assert_eq!(t["restart"]["delay"].as_str(), Some("10s"));
        assert_eq!(t["restart"]["limit"].as_integer(), Some(2));
        assert_eq!(t["restart"]["limit_window"].as_str(), Some("1h"));
        assert_eq!(t["stop"]["timeout"].as_str(), Some("10s"));
        assert_eq!(t["logs"]["max_size"].as_str(), Some("10MiB"));
        assert_eq!(t["logs"]["keep"].as_integer(), Some(8));
        assert_eq!(t["service"]["start"].as_str(), Some("delayed-auto"));
        assert_eq!(
            t["service"]["account"].as_str(),
            Some(r"YOURDOMAIN\useraccount")
        );
        assert!(!out.contains("Pa55w0rd"), "{out}");
        assert!(
            out.contains("WinSW priority = idle: tend has no priority setting"),
            "{out}"
        );
        assert!(out.contains("reboot"), "{out}");
    }

    #[test]
    fn the_yaml_docs_example() {
        let out = conv(
            "jenkins.yml",
            "id: jenkins\nname: Jenkins\nenv:\n    - name: JENKINS_HOME\n      value: '%BASE%'\nexecutable: java\narguments: >\n    -Xrs\n    -Xmx256m\n    -jar \"%BASE%\\jenkins.war\"\n    --httpPort=8080\nlog:\n    mode: roll\nonFailure:\n    - action: restart\n      delay: 10 sec\nstartMode: Manual\nworkingdirectory: 'C:\\application'\n",
        );
        let t = table(&out);
        assert_eq!(t["command"].as_array().unwrap().len(), 6, "{out}");
        assert_eq!(
            t["command"][4].as_str(),
            Some(r"C:\svc\jenkins\jenkins.war")
        );
        assert_eq!(t["working_dir"].as_str(), Some(r"C:\application"));
        assert_eq!(t["restart"]["limit"].as_integer(), Some(0));
        assert_eq!(t["service"]["start"].as_str(), Some("manual"));
    }

    #[test]
    fn mistakes() {
        for (text, line) in [
            (
                "<service>\n<id>a</id>\n<executable>x</executable>\n<stoptimeout>soon</stoptimeout>\n</service>",
                4,
            ),
            ("<service>\n<id>a</id>\n</service>", 1),
            ("<service>\n<id>a</id>\n<executable>x</executable>\n", 4),
            ("id: a\nexecutable: [", 2),
        ] {
            let e = convert(&Source::new("w.xml".as_ref(), text)).unwrap_err();
            assert!(e.line.is_some(), "{text}: {e}");
            let _ = line;
        }
    }
}
