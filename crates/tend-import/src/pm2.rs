//! pm2: an ecosystem file, JSON or `module.exports = { apps: [...] }` (pm2's
//! lib/API/schema.json names every attribute; its docs "Ecosystem File" and "Restart
//! Strategies" say what they do).

use std::path::Path;
use std::time::Duration;

use crate::Source;
use crate::args::split_pm2;
use crate::draft::{Draft, set_name, size};
use crate::error::{At, ImportError};
use crate::literal;
use crate::tree::{Node, V};

/// pm2's interpreters by extension (lib/API/interpreter.json).
const INTERPRETERS: [(&str, &str); 8] = [
    (".sh", "bash"),
    (".py", "python"),
    (".rb", "ruby"),
    (".php", "php"),
    (".pl", "perl"),
    (".js", "node"),
    (".coffee", "coffee"),
    (".ts", "bun"),
];

pub(crate) fn convert(src: &Source<'_>) -> Result<Vec<Draft>, ImportError> {
    let file = src.path.display().to_string();
    let at = At::new(file.clone());
    let root = literal::parse_file(src.text, &at)?;
    let apps: Vec<&Node> = match &root.v {
        V::Map(_) if root.get("apps").is_some() => root.all("apps"),
        V::Map(_) if root.get("script").is_some() => vec![&root],
        V::List(items) => items.iter().collect(),
        _ => {
            return Err(at.err(
                Some(root.line),
                Some("apps".into()),
                "no `apps` list: an ecosystem file is { apps: [ { name, script, ... } ] }",
            ));
        }
    };
    if apps.is_empty() {
        return Err(at.err(Some(root.line), Some("apps".into()), "the list is empty"));
    }
    let mut out = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        out.push(one(app, i, src, &at, &file)?);
    }
    Ok(out)
}

fn one(app: &Node, i: usize, src: &Source<'_>, at: &At, file: &str) -> Result<Draft, ImportError> {
    let setting = |k: &str| Some(format!("apps[{i}].{k}"));
    let line = |k: &str| Some(app.get(k).map_or(app.line, |n| n.line));
    let text_of = |k: &str| -> Result<Option<String>, ImportError> {
        match app.get(k) {
            None => Ok(None),
            Some(n) if matches!(n.v, V::Null) => Ok(None),
            Some(n) => n.text().map(Some).ok_or_else(|| {
                at.err(
                    Some(n.line),
                    setting(k),
                    format!("is {}, expected a string", n.kind()),
                )
            }),
        }
    };
    let script = text_of("script")?
        .or(text_of("exec")?)
        .or(text_of("command")?)
        .ok_or_else(|| {
            at.err(
                Some(app.line),
                setting("script"),
                "missing: every app needs a script",
            )
        })?;
    let mut d = Draft::new(format!("pm2 ecosystem file {file}"));
    let name = match text_of("name")? {
        Some(n) => n,
        None => Path::new(&script)
            .file_stem()
            .map_or_else(|| format!("app{i}"), |s| s.to_string_lossy().into_owned()),
    };
    if !set_name(&mut d, &name, "the pm2 app name") {
        return Err(at.err(
            line("name"),
            setting("name"),
            "is not a usable service name",
        ));
    }

    // cwd: relative to the ecosystem file's directory; the script relative to cwd.
    let base = src.dir.as_deref();
    let cwd = match (text_of("cwd")?, base) {
        (Some(c), Some(b)) if Path::new(&c).is_relative() => Some(b.join(c).display().to_string()),
        (Some(c), _) => Some(c),
        (None, Some(b)) => Some(b.display().to_string()),
        (None, None) => None,
    };
    if let Some(c) = &cwd {
        d.set_str("working_dir", c);
    }
    let list_of = |k: &str| -> Result<Vec<String>, ImportError> {
        match app.get(k) {
            None => Ok(Vec::new()),
            Some(n) => match &n.v {
                V::Null => Ok(Vec::new()),
                V::List(items) => items
                    .iter()
                    .map(|x| {
                        x.text().ok_or_else(|| {
                            at.err(
                                Some(x.line),
                                setting(k),
                                format!("an item is {}, expected a string", x.kind()),
                            )
                        })
                    })
                    .collect(),
                _ => n.text().map(|s| split_pm2(&s)).ok_or_else(|| {
                    at.err(
                        Some(n.line),
                        setting(k),
                        format!("is {}, expected a string or a list", n.kind()),
                    )
                }),
            },
        }
    };
    let args = list_of("args")?;
    let node_args = {
        let mut a = list_of("node_args")?;
        a.extend(list_of("interpreter_args")?);
        a.extend(list_of("interpreterArgs")?);
        a
    };
    let interpreter = text_of("interpreter")?.or(text_of("exec_interpreter")?);
    let ext = Path::new(&script)
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let interpreter = match interpreter.as_deref() {
        Some("none") => None,
        Some(i) => Some(i.to_owned()),
        None => INTERPRETERS
            .iter()
            .find(|(e, _)| *e == ext)
            .map(|(_, i)| (*i).to_owned()),
    };
    let script_path = match (
        &cwd,
        Path::new(&script).is_relative() && script.contains(['/', '\\']),
    ) {
        // A relative path with a slash: tend would resolve it against the config's directory,
        // pm2 against cwd.
        (Some(c), true) => Path::new(c).join(&script).display().to_string(),
        _ => script.clone(),
    };
    let mut command = Vec::new();
    match interpreter {
        Some(i) => {
            command.push(i);
            command.extend(node_args);
            command.push(script_path);
        }
        None => {
            if script.contains(' ') {
                // pm2 runs `script` with spaces as `bash -c <script>`.
                command.extend(["bash".to_owned(), "-c".to_owned(), script.clone()]);
            } else {
                command.push(script_path);
            }
            if !node_args.is_empty() {
                d.note("command", "pm2 interpreter_args apply to an interpreter; this app has none, so they are left out");
            }
        }
    }
    command.extend(args);
    d.set_list("command", &command);

    // env: `env`, and `env_<name>` sets chosen by `pm2 start --env <name>`.
    if let Some(env) = app.get("env") {
        for (k, v) in env.entries() {
            match v.text() {
                Some(t) => d.env(k, &t),
                None => {
                    return Err(at.err(
                        Some(v.line),
                        setting(&format!("env.{k}")),
                        format!("is {}, expected a string, number or boolean", v.kind()),
                    ));
                }
            }
        }
    }
    for (k, _) in app.entries() {
        if let Some(set) = k.strip_prefix("env_") {
            d.note("env", format!("pm2 {k}: the variables `pm2 start --env {set}` adds; tend has one env: copy the ones you run with"));
        }
    }
    if let Some(port) = text_of("port")? {
        d.env("PORT", &port);
    }

    // Restarts: pm2 restarts after every exit unless autorestart is false, and stops
    // restarting after max_restarts (16) restarts that each ran less than min_uptime (1s).
    let autorestart = app.bool_of("autorestart").unwrap_or(true);
    let stop_codes: Vec<i64> = match app.get("stop_exit_codes") {
        None => Vec::new(),
        Some(n) => {
            let items: Vec<&Node> = match &n.v {
                V::List(l) => l.iter().collect(),
                _ => vec![n],
            };
            items
                .iter()
                .map(|x| {
                    x.num().map(|f| f as i64).ok_or_else(|| {
                        at.err(
                            Some(x.line),
                            setting("stop_exit_codes"),
                            "expected exit codes (numbers)",
                        )
                    })
                })
                .collect::<Result<_, _>>()?
        }
    };
    if !autorestart {
        d.set_str("restart.policy", "never");
    } else if stop_codes.is_empty() {
        d.set_str("restart.policy", "always");
    } else {
        d.set_str("restart.policy", "on-failure");
        d.set(
            "restart.success_exit_codes",
            toml::Value::Array(stop_codes.into_iter().map(toml::Value::Integer).collect()),
        );
    }
    let ms = |k: &str| -> Result<Option<Duration>, ImportError> {
        match app.get(k) {
            None => Ok(None),
            Some(n) => {
                let v = match &n.v {
                    V::Num(f, _) => Some(Duration::from_millis(*f as u64)),
                    V::Str(s) => pm2_time(s),
                    _ => None,
                };
                v.map(Some).ok_or_else(|| {
                    at.err(
                        Some(n.line),
                        setting(k),
                        "expected milliseconds, or a time like \"10s\", \"2m\", \"1h\"",
                    )
                })
            }
        }
    };
    if autorestart {
        let min_uptime = ms("min_uptime")?.unwrap_or(Duration::from_secs(1));
        let max_restarts = app.get("max_restarts").and_then(Node::num).unwrap_or(16.0) as i64;
        d.set_duration("restart.reset_after", min_uptime);
        d.set("restart.limit", max_restarts.max(0));
        d.set_str("restart.limit_window", "1d");
        d.note(
            "restart.limit",
            format!(
                "pm2 gave up after max_restarts = {max_restarts} restarts in a row that each ran less than min_uptime; tend gives up after `limit` restarts within limit_window, counted since the last run of at least reset_after"
            ),
        );
        if let Some(exp) = ms("exp_backoff_restart_delay")?.filter(|d| !d.is_zero()) {
            d.set_duration("restart.delay", exp);
            d.set("restart.multiplier", 1.5);
            d.set_duration("restart.max_delay", Duration::from_secs(15).max(exp));
            d.set_duration(
                "restart.reset_after",
                Duration::from_secs(30).max(min_uptime),
            );
        } else if let Some(delay) = ms("restart_delay")?.filter(|d| !d.is_zero()) {
            d.set_duration("restart.delay", delay);
            d.set("restart.multiplier", 1.0);
            if delay > Duration::from_secs(60) {
                d.set_duration("restart.max_delay", delay);
            }
        } else {
            d.note("restart.delay", "pm2 restarted at once; tend waits 1s, 2s, 4s ... up to max_delay between quick failures");
        }
    }
    if let Some(t) = ms("kill_timeout")? {
        d.set_duration("stop.timeout", t);
    } else {
        d.set_duration("stop.timeout", Duration::from_millis(1600));
    }
    d.set_str("stop.signal", "SIGINT");
    if app.bool_of("shutdown_with_message") == Some(true) {
        d.note("stop.signal", "pm2 shutdown_with_message sent process.send('shutdown'); tend sends stop.signal (SIGINT, as pm2 did otherwise)");
    }
    if app.bool_of("treekill") == Some(false) {
        d.note("stop.signal", "pm2 treekill = false signalled only the main process; tend signals the whole process group");
    }

    // Memory: pm2 restarts the app above it (checked every 30 s).
    if let Some(n) = app.get("max_memory_restart") {
        let bytes = match &n.v {
            V::Num(f, _) => Some(*f as u64),
            V::Str(s) => pm2_bytes(s),
            _ => None,
        }
        .ok_or_else(|| {
            at.err(
                Some(n.line),
                setting("max_memory_restart"),
                "expected a size like \"300M\" or \"1G\"",
            )
        })?;
        d.set_str("limits.memory", &size(bytes));
        d.set_str("limits.memory_for", "0s");
        d.set_str("limits.sample_every", "30s");
    }

    // Logs.
    let out_file = text_of("out_file")?
        .or(text_of("out")?)
        .or(text_of("output")?);
    let err_file = text_of("error_file")?
        .or(text_of("error")?)
        .or(text_of("err_file")?);
    let log_file = text_of("log_file")?.or(text_of("log")?);
    if let Some(o) = out_file
        .as_ref()
        .or(err_file.as_ref())
        .or(log_file.as_ref())
    {
        let abs = match (base, Path::new(o).is_relative()) {
            (Some(b), true) => b.join(o).display().to_string(),
            _ => o.clone(),
        };
        if o != "/dev/null"
            && let Some(dir) = crate::nssm::parent_dir(&abs)
        {
            d.set_str("logs.dir", &dir);
        }
        d.note("logs.dir", "pm2 wrote out_file / error_file (or log_file); tend writes <name>.out.log and <name>.err.log (or <name>.log with mode = \"combined\") in logs.dir");
    }
    if log_file.is_some() && out_file.is_none() && err_file.is_none() {
        d.set_str("logs.mode", "combined");
    }
    if app.bool_of("merge_logs") == Some(true) || app.bool_of("combine_logs") == Some(true) {
        d.note(
            "logs.mode",
            "pm2 merge_logs joined the logs of cluster instances; tend runs one instance",
        );
    }
    if app.bool_of("disable_logs") == Some(true) {
        d.note(
            "logs.dir",
            "pm2 disable_logs: tend always captures the program's output",
        );
    }
    if let Some(f) = text_of("log_date_format")? {
        d.set("logs.timestamps", true);
        d.note("logs.timestamps", format!("pm2 log_date_format = {f}: tend's timestamps are RFC 3339 local time with milliseconds"));
    } else if app.bool_of("time") == Some(true) {
        d.set("logs.timestamps", true);
    }

    // Settings with no tend equivalent.
    let unsupported: &[(&str, &'static str, &str)] = &[
        (
            "instances",
            "command",
            "tend runs one instance of the program (pm2's cluster mode has no equivalent): import it once per instance, with its own name, if several are needed",
        ),
        (
            "exec_mode",
            "command",
            "tend runs the program as one process (fork mode)",
        ),
        (
            "watch",
            "restart.policy",
            "tend does not restart on file changes",
        ),
        (
            "ignore_watch",
            "restart.policy",
            "tend does not watch files",
        ),
        ("watch_delay", "restart.policy", "tend does not watch files"),
        (
            "cron_restart",
            "restart.policy",
            "tend does not restart on a schedule (a timer can run `tend restart <name>`)",
        ),
        (
            "cron",
            "restart.policy",
            "tend does not restart on a schedule (a timer can run `tend restart <name>`)",
        ),
        (
            "wait_ready",
            "command",
            "tend counts the program as started once it runs; a [health] check can tell when it is ready",
        ),
        (
            "listen_timeout",
            "command",
            "tend counts the program as started once it runs",
        ),
        (
            "autostart",
            "service.start",
            "tend's service starts by `service.start`",
        ),
        (
            "uid",
            "service.account",
            "tend runs the service as `service.account`",
        ),
        ("gid", "service.account", "the account's own groups apply"),
        (
            "user",
            "service.account",
            "tend runs the service as `service.account`",
        ),
        (
            "source_map_support",
            "command",
            "a Node.js option of pm2's, not passed by tend",
        ),
        (
            "pid_file",
            "command",
            "tend keeps the pid in its status file (`tend status --json`)",
        ),
        ("namespace", "command", "no tend equivalent"),
        ("vizion", "command", "no tend equivalent"),
        ("post_update", "command", "no tend equivalent"),
        ("force", "command", "no tend equivalent"),
        ("increment_var", "env", "tend runs one instance"),
        (
            "instance_var",
            "env",
            "tend runs one instance and sets no NODE_APP_INSTANCE",
        ),
        (
            "filter_env",
            "env",
            "tend passes its own environment plus `env`",
        ),
        ("append_env_to_name", "name", "no tend equivalent"),
        (
            "windowsHide",
            "stop.windows",
            "tend always hides the program's console",
        ),
    ];
    for (k, key, instead) in unsupported {
        if let Some(n) = app.get(k) {
            let shown = n.text().unwrap_or_else(|| n.kind().to_owned());
            if *k == "instances" && matches!(shown.as_str(), "1")
                || *k == "exec_mode" && shown == "fork"
                || *k == "autostart" && shown == "true"
                || *k == "watch" && shown == "false"
            {
                continue;
            }
            if *k == "autostart" {
                d.set_str("service.start", "manual");
            }
            d.note(key, format!("pm2 {k} = {shown}: {instead}"));
        }
    }
    if let Some(u) = text_of("user")?.or(text_of("uid")?) {
        d.set_str("service.account", &u);
    }
    Ok(d)
}

/// pm2's time format: a number with h, m or s (lib/tools/Config.js "stime"), or ms.
fn pm2_time(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<f64>() {
        return Some(Duration::from_millis(ms as u64));
    }
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: f64 = n.trim().parse().ok()?;
    let secs = match unit {
        "h" => n * 3600.0,
        "m" => n * 60.0,
        "s" => n,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// pm2's size format: a number with K, M or G (powers of 1024), or bytes.
fn pm2_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(b) = s.parse::<f64>() {
        return Some(b as u64);
    }
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: f64 = n.trim().parse().ok()?;
    let mult = match unit.to_ascii_uppercase().as_str() {
        "K" => 1u64 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    Some((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{command, table};

    fn conv(text: &str) -> Vec<String> {
        let mut src = Source::new("ecosystem.config.js".as_ref(), text);
        src.dir = Some("/srv/app".into());
        convert(&src).unwrap().iter().map(Draft::render).collect()
    }

    #[test]
    fn the_docs_example_and_more() {
        // The shape of pm2's "Ecosystem File" docs.
        let out = conv(
            r#"module.exports = {
  apps : [{
    name   : "api",
    script : "./api/server.js",
    args   : "--port 8080 --msg 'hello world'",
    node_args: ["--max-old-space-size=256"],
    instances: 2,
    max_memory_restart: '300M',
    restart_delay: 3000,
    kill_timeout: 5000,
    env: { NODE_ENV: "production", DEBUG: false, },
    env_staging: { NODE_ENV: "staging" },
  }, {
    name: "worker",
    script: "/usr/local/bin/worker",
    interpreter: "none",
    args: ["a b", "c\"d"],
    autorestart: false,
    cwd: "jobs",
  }],
};
"#,
        );
        assert_eq!(out.len(), 2);
        let api = table(&out[0]);
        let cmd = command(&api);
        // The script is joined to `cwd` with the host's separator.
        let script = std::path::Path::new("/srv/app").join("./api/server.js");
        assert_eq!(
            cmd,
            [
                "node",
                "--max-old-space-size=256",
                script.to_str().unwrap(),
                "--port",
                "8080",
                "--msg",
                "hello world"
            ]
        );
        assert_eq!(api["working_dir"].as_str(), Some("/srv/app"));
        assert_eq!(api["env"]["DEBUG"].as_str(), Some("false"));
        assert_eq!(api["restart"]["policy"].as_str(), Some("always"));
        assert_eq!(api["restart"]["delay"].as_str(), Some("3s"));
        assert_eq!(api["stop"]["timeout"].as_str(), Some("5s"));
        assert_eq!(api["limits"]["memory"].as_str(), Some("300MiB"));
        assert!(out[0].contains("pm2 instances = 2"), "{}", out[0]);
        assert!(out[0].contains("pm2 env_staging"), "{}", out[0]);
        let w = table(&out[1]);
        let cmd = command(&w);
        assert_eq!(cmd, ["/usr/local/bin/worker", "a b", "c\"d"]);
        let jobs = std::path::Path::new("/srv/app").join("jobs");
        assert_eq!(w["working_dir"].as_str(), jobs.to_str());
        assert_eq!(w["restart"]["policy"].as_str(), Some("never"));
    }

    #[test]
    fn json_and_errors() {
        let out =
            conv(r#"{"apps": [{"name": "a", "script": "/bin/a", "stop_exit_codes": [0, 3]}]}"#);
        let t = table(&out[0]);
        assert_eq!(t["restart"]["policy"].as_str(), Some("on-failure"));
        let e = convert(&Source::new(
            "e.js".as_ref(),
            "module.exports = {\n apps: [{ script: [1] }] }",
        ))
        .unwrap_err();
        assert_eq!(
            (e.line, e.setting.as_deref()),
            (Some(2), Some("apps[0].script"))
        );
    }
}
