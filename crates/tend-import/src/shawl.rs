//! shawl: its command line, `shawl run [options] -- <program> <args>` (a service's ImagePath,
//! or the `shawl add` line that created it). Options as in shawl's docs/cli.md.

use std::time::Duration;

use crate::args::split_windows;
use crate::draft::{Draft, set_name};
use crate::error::{At, ImportError};

/// Converts one shawl command line. `file` names the source in errors, `origin` in the
/// header comment.
pub(crate) fn from_command_line(
    text: &str,
    file: &str,
    origin: &str,
) -> Result<Draft, ImportError> {
    let at = At::new(file);
    // One command line; a file may wrap it over several lines, and may start with comments.
    let line: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("::"))
        .collect();
    let line = line.join(" ");
    let argv = split_windows(&line, true);
    let usage = "expected shawl's command line: `shawl.exe run --name <name> [options] -- \
                 <program> [args]` (the service's ImagePath, or the `shawl add` line)";
    let Some(verb_at) = argv
        .iter()
        .position(|a| a.eq_ignore_ascii_case("run") || a.eq_ignore_ascii_case("add"))
    else {
        return Err(at.err(Some(1), None, usage));
    };
    let Some(dashdash) = argv.iter().position(|a| a == "--") else {
        return Err(at.err(
            Some(1),
            None,
            format!("no `--` before the program: {usage}"),
        ));
    };
    let command: Vec<String> = argv[dashdash + 1..].to_vec();
    if command.is_empty() {
        return Err(at.err(Some(1), None, format!("no program after `--`: {usage}")));
    }
    let mut d = Draft::new(origin);
    d.set_list("command", &command);

    // Options: `--opt value` or `--opt=value`.
    let mut opts: Vec<(String, Option<String>)> = Vec::new();
    let takes_value = [
        "--pass",
        "--restart-if",
        "--restart-if-not",
        "--restart-delay",
        "--stop-timeout",
        "--log-dir",
        "--log-as",
        "--log-cmd-as",
        "--log-rotate",
        "--log-retain",
        "--env",
        "--path",
        "--path-prepend",
        "--priority",
        "--cwd",
        "--name",
        "--dependencies",
    ];
    let mut i = verb_at + 1;
    while i < dashdash {
        let a = &argv[i];
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (a.clone(), None),
        };
        if !flag.starts_with("--") {
            return Err(at.err(
                Some(1),
                Some(flag.clone()),
                format!("not a shawl option: {usage}"),
            ));
        }
        let value = if takes_value.contains(&flag.as_str()) {
            match inline {
                Some(v) => Some(v),
                None => {
                    i += 1;
                    Some(
                        argv.get(i)
                            .filter(|_| i < dashdash)
                            .cloned()
                            .ok_or_else(|| at.err(Some(1), Some(flag.clone()), "needs a value"))?,
                    )
                }
            }
        } else {
            None
        };
        opts.push((flag, value));
        i += 1;
    }
    let val = |name: &str| {
        opts.iter()
            .rev()
            .find(|(f, _)| f == name)
            .and_then(|(_, v)| v.clone())
    };
    let has = |name: &str| opts.iter().any(|(f, _)| f == name);
    let codes = |name: &str| -> Result<Vec<i64>, ImportError> {
        val(name)
            .unwrap_or_default()
            .split(',')
            .filter(|c| !c.trim().is_empty())
            .map(|c| {
                c.trim().parse().map_err(|_| {
                    at.err(
                        Some(1),
                        Some(name.to_owned()),
                        format!("{c:?} is not an exit code (a comma-separated list of numbers)"),
                    )
                })
            })
            .collect()
    };
    let ms = |name: &str| -> Result<Option<Duration>, ImportError> {
        val(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| {
                        at.err(
                            Some(1),
                            Some(name.to_owned()),
                            format!("{v:?} is not a number of milliseconds"),
                        )
                    })
            })
            .transpose()
    };

    let name = val("--name").unwrap_or_else(|| "Shawl".into());
    if !set_name(&mut d, &name, "shawl --name") {
        return Err(at.err(
            Some(1),
            Some("--name".into()),
            "is not a usable service name",
        ));
    }
    if let Some(cwd) = val("--cwd") {
        d.set_str("working_dir", &cwd);
    }
    for (f, v) in &opts {
        if f == "--env" {
            let v = v.clone().unwrap_or_default();
            match v.split_once('=') {
                Some((k, val)) if !k.is_empty() => d.env(k, val),
                _ => {
                    return Err(at.err(
                        Some(1),
                        Some("--env".into()),
                        format!("{v:?} is not KEY=value"),
                    ));
                }
            }
        }
    }
    let paths: Vec<String> = opts
        .iter()
        .filter(|(f, _)| f == "--path" || f == "--path-prepend")
        .map(|(f, v)| format!("{f} {}", v.clone().unwrap_or_default()))
        .collect();
    if !paths.is_empty() {
        d.note(
            "env",
            format!(
                "shawl {}: tend cannot add to the inherited PATH; set env.PATH to the whole \
                 value (a bare program name is looked up in it)",
                paths.join(", ")
            ),
        );
    }

    // Restarts: by default shawl restarts after a non-zero exit code, at once, forever.
    if has("--restart") {
        d.set_str("restart.policy", "always");
    } else if has("--no-restart") {
        d.set_str("restart.policy", "never");
    } else if has("--restart-if-not") {
        d.set_str("restart.policy", "on-failure");
        let c = codes("--restart-if-not")?;
        d.set(
            "restart.success_exit_codes",
            toml::Value::Array(c.into_iter().map(toml::Value::Integer).collect()),
        );
    } else if has("--restart-if") {
        let c = codes("--restart-if")?;
        d.set_str("restart.policy", "on-failure");
        d.note(
            "restart.policy",
            format!(
                "shawl --restart-if {}: shawl restarted only after these codes; tend restarts \
                 after every exit code other than success_exit_codes (0)",
                c.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
    } else {
        d.set_str("restart.policy", "on-failure");
    }
    if let Some(p) = val("--pass") {
        d.note(
            "restart.success_exit_codes",
            format!(
                "shawl --pass {p}: the exit codes shawl reported to Windows as success; \
                 tend's success_exit_codes also decide restarts"
            ),
        );
    }
    d.set("restart.limit", 0);
    match ms("--restart-delay")? {
        Some(delay) if !delay.is_zero() => {
            d.set_duration("restart.delay", delay);
            d.set("restart.multiplier", 1.0);
            if delay > Duration::from_secs(60) {
                d.set_duration("restart.max_delay", delay);
            }
        }
        _ => d.note(
            "restart.delay",
            "shawl restarted at once, forever; tend never gives up either (limit = 0) but \
             waits 1s, 2s, 4s ... up to max_delay between quick failures",
        ),
    }

    if let Some(t) = ms("--stop-timeout")? {
        d.set_duration("stop.timeout", t);
    } else {
        d.set_duration("stop.timeout", Duration::from_millis(3000));
    }

    if let Some(dir) = val("--log-dir") {
        d.set_str("logs.dir", &dir);
    }
    if has("--no-log") || has("--no-log-cmd") {
        d.note(
            "logs.dir",
            "shawl --no-log / --no-log-cmd: tend always captures the program's output",
        );
    }
    for f in ["--log-as", "--log-cmd-as"] {
        if let Some(v) = val(f) {
            d.note(
                "logs.dir",
                format!("shawl {f} {v}: tend names its files <name>.out.log and <name>.err.log"),
            );
        }
    }
    match val("--log-rotate").as_deref() {
        Some("daily") => d.set_str("logs.rotate_every", "daily"),
        Some("hourly") => d.set_str("logs.rotate_every", "hourly"),
        Some(other) => match other
            .strip_prefix("bytes=")
            .and_then(|b| b.parse::<u64>().ok())
        {
            Some(b) => {
                d.set_str("logs.max_size", &crate::draft::size(b.max(4096)));
                d.set_str("logs.rotate_every", "never");
            }
            None => {
                return Err(at.err(
                    Some(1),
                    Some("--log-rotate".into()),
                    format!("{other:?} is not daily, hourly or bytes=N"),
                ));
            }
        },
        None => {}
    }
    if let Some(n) = val("--log-retain") {
        match n.parse::<u64>() {
            Ok(n) => d.set("logs.keep", n.max(1) as i64),
            Err(_) => {
                return Err(at.err(
                    Some(1),
                    Some("--log-retain".into()),
                    format!("{n:?} is not a number"),
                ));
            }
        }
    }
    if let Some(p) = val("--priority") {
        d.note(
            "command",
            format!("shawl --priority {p}: tend has no priority setting; the program runs at normal priority"),
        );
    }
    if has("--pass-start-args") {
        d.note(
            "command",
            "shawl --pass-start-args: tend does not append the service's start arguments",
        );
    }
    if has("--interactive") {
        d.note(
            "stop.windows",
            "shawl --interactive: tend's own Ctrl+C handling always applies",
        );
    }
    if let Some(deps) = val("--dependencies") {
        let deps: Vec<String> = deps
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        d.set_list("service.depends_on", &deps);
    }
    d.note(
        "service.account",
        "a shawl service runs as whatever account the SCM has for it (LocalSystem unless \
         changed with `sc config <name> obj=`); tend's default is \"isolated\": set account \
         to match if the program needs it",
    );
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{command, table};

    fn conv(line: &str) -> String {
        from_command_line(line, "cmd.txt", "test").unwrap().render()
    }

    #[test]
    fn a_full_command_line() {
        // As `shawl add` writes the ImagePath: its quote() wraps values with spaces.
        let out = conv(
            r#""C:\tools\shawl.exe" run --name my-app --restart-delay 2000 --stop-timeout 5000 --cwd "C:\My App" --env "GREETING=hello world" --env MODE=prod --path C:\bin --log-dir C:\logs --log-rotate bytes=1048576 --log-retain 4 --priority below-normal -- "C:\My App\app.exe" --flag "quoted ""arg"" here""#,
        );
        let t = table(&out);
        let cmd = command(&t);
        assert_eq!(
            cmd,
            [r"C:\My App\app.exe", "--flag", r#"quoted "arg" here"#]
        );
        assert_eq!(t["name"].as_str(), Some("my-app"));
        assert_eq!(t["working_dir"].as_str(), Some(r"C:\My App"));
        assert_eq!(t["env"]["GREETING"].as_str(), Some("hello world"));
        assert_eq!(t["restart"]["policy"].as_str(), Some("on-failure"));
        assert_eq!(t["restart"]["delay"].as_str(), Some("2s"));
        assert_eq!(t["stop"]["timeout"].as_str(), Some("5s"));
        assert_eq!(t["logs"]["max_size"].as_str(), Some("1MiB"));
        assert_eq!(t["logs"]["keep"].as_integer(), Some(4));
        assert!(
            out.contains("shawl --priority below-normal: tend has no priority"),
            "{out}"
        );
        assert!(out.contains("shawl --path C:\\bin"), "{out}");
    }

    #[test]
    fn restart_options() {
        let cases: &[(&str, &str)] = &[
            ("", "on-failure"),
            ("--restart", "always"),
            ("--no-restart", "never"),
            ("--restart-if-not 0,3", "on-failure"),
            ("--restart-if=1", "on-failure"),
        ];
        for (opt, policy) in cases {
            let t = table(&conv(&format!("shawl run --name a {opt} -- prog")));
            assert_eq!(t["restart"]["policy"].as_str(), Some(*policy), "{opt}");
        }
        let t = table(&conv("shawl run --name a --restart-if-not 0,3 -- prog"));
        assert_eq!(
            t["restart"]["success_exit_codes"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn mistakes() {
        for bad in [
            "shawl run --name a prog",
            "shawl run --name a --",
            "notshawl",
            "shawl run --restart-if x -- p",
        ] {
            assert!(from_command_line(bad, "f", "t").is_err(), "{bad}");
        }
    }
}
