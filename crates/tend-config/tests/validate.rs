//! Config validation against real files in a per-test temp dir.

use std::path::Path;
use std::time::Duration;

use tend_config::{ConfigError, LoadOptions, Problem, Severity, load};
use tend_core::health::{AlertKind, CheckSpec, Reaction, WebhookFormat};
use tend_core::{Account, LogMode, Program, RestartPolicy, RotateEvery, StartMode, StopSignal};

/// A program that is on PATH on every OS the tests run on (Windows: under Wine too).
const ON_PATH: &str = if cfg!(windows) { "cmd" } else { "sh" };

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn problems(dir: &Path, text: &str) -> Vec<Problem> {
    let p = write(dir, "svc.toml", text);
    match load(&p, &LoadOptions::default()) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        Ok(l) => panic!(
            "expected errors, got a valid spec; warnings {:?}",
            l.warnings
        ),
        Err(e) => panic!("{e}"),
    }
}

fn errors(dir: &Path, text: &str) -> Vec<(String, Option<usize>, String)> {
    problems(dir, text)
        .into_iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| (p.key, p.line, p.message))
        .collect()
}

#[test]
fn every_key_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("work")).unwrap();
    write(dir.path(), "app.env", "A=from-file\nB=file\n");
    let p = write(
        dir.path(),
        "svc.toml",
        r#"
name = "demo"
display_name = "Demo service"
description = "What it does"
command = ["./server", "--port", "8080"]
working_dir = "work"
env = { B = "env", PORT = 8080 }
env_file = "app.env"

[restart]
policy = "always"
success_exit_codes = [0, 3]
delay = "500ms"
max_delay = "30s"
multiplier = 1.5
reset_after = "2m"
limit = 7
limit_window = "1m"
on_give_up = ["./alert.sh", "x"]
hook_timeout = "5s"

[stop]
timeout = "3s"
signal = "SIGINT"
windows = "ctrl-break"

[logs]
dir = "out"
mode = "combined"
timestamps = false
stream_tags = true
max_size = "1MiB"
rotate_every = "hourly"
keep = 3
max_age = "2d"
max_total = "100MiB"
compress = false
max_line = "16KiB"

[service]
start = "delayed-auto"
depends_on = ["Tcpip"]
account = "DOMAIN\\svc"
password_env = "SVC_PW"
preshutdown_timeout = "1m"

[health]
command = ["./check.sh", "--quick"]
interval = "5s"
timeout = "1500ms"
start_period = "1m"
failures = 2
on_unhealthy = "log"
silence = "10m"

[limits]
memory = "512MiB"
memory_for = "45s"
cpu_percent = 150.5
cpu_for = "3m"
action = "log"
sample_every = "2s"

[notify]
command = ["./page.sh"]
webhook = "http://127.0.0.1:9000/alerts"
events = ["gave_up", "crashed", "gave_up"]

[metrics]
textfile = "work"
listen = "0.0.0.0:9464"
allow_remote = true
"#,
    );
    let l = load(&p, &LoadOptions::default()).unwrap();
    let s = l.spec;
    let d = dir.path();
    assert_eq!(s.name.as_str(), "demo");
    assert_eq!(s.display_name, "Demo service");
    assert_eq!(s.description.as_deref(), Some("What it does"));
    assert_eq!(s.command.program, Program::Path(d.join("server")));
    assert_eq!(s.command.args, ["--port", "8080"]);
    assert_eq!(s.working_dir, d.join("work"));
    let env: Vec<(&str, &str)> = s
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, [("A", "from-file"), ("B", "env"), ("PORT", "8080")]);
    assert_eq!(s.restart.policy, RestartPolicy::Always);
    assert_eq!(s.restart.success_exit_codes, [0, 3]);
    assert_eq!(s.restart.delay, Duration::from_millis(500));
    assert_eq!(s.restart.max_delay, Duration::from_secs(30));
    assert!((s.restart.multiplier - 1.5).abs() < f64::EPSILON);
    assert_eq!(s.restart.reset_after, Duration::from_secs(120));
    assert_eq!(s.restart.limit, 7);
    assert_eq!(s.restart.limit_window, Duration::from_secs(60));
    assert_eq!(s.restart.on_give_up.as_ref().unwrap().args, ["x"]);
    assert_eq!(s.restart.hook_timeout, Duration::from_secs(5));
    assert_eq!(s.stop.timeout, Duration::from_secs(3));
    assert_eq!(s.stop.signal, StopSignal::Int);
    assert_eq!(s.stop.windows, tend_core::WindowsStop::CtrlBreak);
    assert_eq!(s.logs.dir, d.join("out"));
    assert_eq!(s.logs.mode, LogMode::Combined);
    assert!(!s.logs.timestamps && s.logs.stream_tags && !s.logs.compress);
    assert_eq!(s.logs.max_size, 1 << 20);
    assert_eq!(s.logs.rotate_every, RotateEvery::Hourly);
    assert_eq!(s.logs.keep, 3);
    assert_eq!(s.logs.max_age, Duration::from_secs(2 * 86400));
    assert_eq!(s.logs.max_total, 100 << 20);
    assert_eq!(s.logs.max_line, 16 << 10);
    assert_eq!(s.service.start, StartMode::DelayedAuto);
    assert_eq!(s.service.depends_on, ["Tcpip"]);
    assert_eq!(
        s.service.account,
        Account::User {
            name: "DOMAIN\\svc".into(),
            password_env: Some("SVC_PW".into())
        }
    );
    assert_eq!(s.service.preshutdown_timeout, Duration::from_secs(60));
    let h = s.health.unwrap();
    let Some(CheckSpec::Command(check)) = &h.check else {
        panic!("{:?}", h.check)
    };
    assert_eq!(check.program, Program::Path(d.join("check.sh")));
    assert_eq!(check.args, ["--quick"]);
    assert_eq!(
        (h.interval, h.timeout, h.start_period, h.failures),
        (
            Duration::from_secs(5),
            Duration::from_millis(1500),
            Duration::from_secs(60),
            2
        )
    );
    assert_eq!(h.on_unhealthy, Reaction::Log);
    assert_eq!(h.silence, Some(Duration::from_secs(600)));
    let lim = s.limits.unwrap();
    assert_eq!(lim.memory, Some(512 << 20));
    assert_eq!(lim.memory_for, Duration::from_secs(45));
    assert_eq!(lim.cpu_percent, Some(150.5));
    assert_eq!(lim.cpu_for, Duration::from_secs(180));
    assert_eq!(lim.action, Reaction::Log);
    assert_eq!(lim.sample_every, Duration::from_secs(2));
    let n = s.notify.unwrap();
    assert_eq!(n.command.unwrap().program, Program::Path(d.join("page.sh")));
    assert_eq!(
        n.webhook.unwrap().to_string(),
        "http://127.0.0.1:9000/alerts"
    );
    assert_eq!(
        n.events,
        [AlertKind::GaveUp, AlertKind::Crashed],
        "deduplicated"
    );
    let m = s.metrics.unwrap();
    assert_eq!(m.textfile, Some(d.join("work")));
    assert_eq!(m.listen, Some("0.0.0.0:9464".parse().unwrap()));
    assert!(m.allow_remote);
    // ./server does not exist: a warning, not an error.
    assert!(l.warnings.iter().any(|w| w.key == "command[0]"));
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "svc.toml",
        &format!("name = \"m\"\ncommand = [\"{ON_PATH}\", \"x\"]\n"),
    );
    let l = load(&p, &LoadOptions::default()).unwrap();
    let s = l.spec;
    assert_eq!(s.display_name, "m");
    assert_eq!(s.command.program, Program::Search(ON_PATH.into()));
    assert_eq!(s.working_dir, dir.path());
    assert_eq!(s.restart.policy, RestartPolicy::OnFailure);
    assert_eq!(s.restart.delay, Duration::from_secs(1));
    assert_eq!(s.restart.max_delay, Duration::from_secs(60));
    assert_eq!(s.restart.limit, 5);
    assert_eq!(s.restart.limit_window, Duration::from_secs(600));
    assert_eq!(s.stop.timeout, Duration::from_secs(10));
    assert_eq!(s.stop.signal, StopSignal::Term);
    assert_eq!(s.logs.dir, dir.path().join("logs"));
    assert_eq!(s.logs.max_size, 10 << 20);
    assert_eq!(s.service.account, Account::Isolated);
    assert!(s.health.is_none() && s.limits.is_none());
    assert!(s.notify.is_none() && s.metrics.is_none());
    assert_eq!(s.upgrade, tend_core::UpgradeSpec::default());
    assert_eq!(s.upgrade.verify, Duration::from_secs(30));
    assert_eq!(s.upgrade.keep, 3);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn upgrade_section_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec_with(
        dir.path(),
        "[upgrade]\nverify = \"1m\"\nverify_command = [\"./smoke.sh\", \"--fast\"]\nkeep = 5\npreserve = [\"data\", \"config/local.yaml\"]\n",
    );
    let u = s.upgrade;
    assert_eq!(u.verify, Duration::from_secs(60));
    let cmd = u.verify_command.unwrap();
    assert_eq!(cmd.program, Program::Path(dir.path().join("smoke.sh")));
    assert_eq!(cmd.args, ["--fast"]);
    assert_eq!(u.keep, 5);
    assert_eq!(u.preserve, ["data", "config/local.yaml"]);
}

#[test]
fn upgrade_section_mistakes_name_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 7] = [
        ("verify = \"0s\"", "upgrade.verify", "more than 0s"),
        ("verify = \"soon\"", "upgrade.verify", ""),
        ("keep = 0", "upgrade.keep", "at least 1"),
        ("verify_command = []", "upgrade.verify_command", "is empty"),
        (
            "preserve = [\"../etc\"]",
            "upgrade.preserve[0]",
            "inside the application",
        ),
        (
            "preserve = [\"/var/data\"]",
            "upgrade.preserve[0]",
            "relative",
        ),
        (
            "verfiy = \"1m\"",
            "upgrade.verfiy",
            "did you mean `verify`?",
        ),
    ];
    for (line, key, text) in cases {
        let errs = errors(
            dir.path(),
            &format!("name = \"m\"\ncommand = [\"{ON_PATH}\"]\n[upgrade]\n{line}\n"),
        );
        assert!(
            errs.iter()
                .any(|(k, l, m)| k == key && *l == Some(4) && m.contains(text)),
            "{line}: {errs:?}"
        );
    }
}

/// Loads a config with `extra` after the required keys; panics on errors.
fn spec_with(dir: &Path, extra: &str) -> tend_core::ServiceSpec {
    let p = write(
        dir,
        "svc.toml",
        &format!("name = \"m\"\ncommand = [\"{ON_PATH}\"]\n{extra}"),
    );
    match load(&p, &LoadOptions::default()) {
        Ok(l) => l.spec,
        Err(ConfigError::Invalid { problems, .. }) => panic!("{extra}\n{problems:#?}"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn health_sections_get_documented_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec_with(
        dir.path(),
        "[health]\nhttp = \"http://localhost:8080/health\"\n[limits]\n[notify]\nwebhook = \"http://127.0.0.1:9/\"\n[metrics]\nlisten = \"localhost:9464\"\n",
    );
    let h = s.health.unwrap();
    let Some(CheckSpec::Http(check)) = &h.check else {
        panic!("{:?}", h.check)
    };
    let url = &check.url;
    assert_eq!(
        (url.host(), url.port(), url.target()),
        ("localhost", 8080, "/health")
    );
    assert_eq!(check.tls, Default::default());
    assert_eq!(h.interval, Duration::from_secs(10));
    assert_eq!(h.timeout, Duration::from_secs(2));
    assert_eq!(h.start_period, Duration::from_secs(30));
    assert_eq!(h.failures, 3);
    assert_eq!(h.on_unhealthy, Reaction::Restart);
    assert_eq!(h.silence, None);
    // An empty [limits] measures (for status and metrics) without limiting.
    let l = s.limits.unwrap();
    assert_eq!((l.memory, l.cpu_percent), (None, None));
    assert_eq!(l.memory_for, Duration::from_secs(30));
    assert_eq!(l.cpu_for, Duration::from_secs(120));
    assert_eq!(l.sample_every, Duration::from_secs(5));
    assert_eq!(l.action, Reaction::Restart);
    let n = s.notify.unwrap();
    assert_eq!(n.events.len(), 7, "every event, those of an upgrade too");
    assert!(n.command.is_none());
    assert_eq!(n.format, WebhookFormat::Generic);
    assert_eq!(n.tls, Default::default());
    let m = s.metrics.unwrap();
    assert_eq!(m.listen, Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(m.textfile, None);
    assert!(!m.allow_remote);

    let s = spec_with(dir.path(), "[health]\ntcp = \"[::1]:5432\"\n");
    let Some(CheckSpec::Tcp(t)) = s.health.unwrap().check else {
        panic!()
    };
    assert_eq!((t.host(), t.port()), ("::1", 5432));
    // The hang watchdog alone, without a probe.
    let h = spec_with(dir.path(), "[health]\nsilence = \"2m\"\n")
        .health
        .unwrap();
    assert_eq!((h.check, h.silence), (None, Some(Duration::from_secs(120))));
    // Integers for cpu_percent, a plain byte count for memory.
    let l = spec_with(dir.path(), "[limits]\ncpu_percent = 90\nmemory = 1048576\n")
        .limits
        .unwrap();
    assert_eq!((l.cpu_percent, l.memory), (Some(90.0), Some(1 << 20)));
}

#[test]
fn health_section_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    // (section text, key of the error, part of its message)
    let cases = [
        (
            "[health]\nhttp = \"127.0.0.1:80/x\"\n",
            "health.http",
            "not an http:// or https:// URL",
        ),
        (
            "[health]\nhttp = \"https://h/\"\nca_file = \"no-such-ca.pem\"\n",
            "health.ca_file",
            "cannot read",
        ),
        (
            "[health]\nhttp = \"https://h/\"\nca_file = \"svc.toml\"\n",
            "health.ca_file",
            "has no PEM certificate",
        ),
        (
            "[health]\nhttp = \"https://h/\"\ninsecure_skip_verify = \"yes\"\n",
            "health.insecure_skip_verify",
            "expected true or false",
        ),
        (
            "[health]\ntcp = \"localhost\"\n",
            "health.tcp",
            "has no port",
        ),
        (
            "[health]\nhttp = \"http://h/\"\ntcp = \"h:1\"\n",
            "health.tcp",
            "only one check per service: `http` and `tcp`",
        ),
        (
            "[health]\ntcp = \"h:1\"\ncommand = [\"x\"]\n",
            "health.command",
            "only one check",
        ),
        (
            "[health]\ninterval = \"5s\"\n",
            "health",
            "nothing to check",
        ),
        (
            "[health]\ntcp = \"h:1\"\nfailures = 0\n",
            "health.failures",
            "at least 1",
        ),
        (
            "[health]\ntcp = \"h:1\"\ninterval = \"0s\"\n",
            "health.interval",
            "more than 0s",
        ),
        (
            "[health]\ntcp = \"h:1\"\ntimeout = \"0\"\n",
            "health.timeout",
            "more than 0s",
        ),
        (
            "[health]\ntcp = \"h:1\"\ntimeout = \"2 parsecs\"\n",
            "health.timeout",
            "not a duration",
        ),
        (
            "[health]\nsilence = \"0s\"\n",
            "health.silence",
            "more than 0s",
        ),
        (
            "[health]\ntcp = \"h:1\"\non_unhealthy = \"panic\"\n",
            "health.on_unhealthy",
            "\"restart\", \"log\"",
        ),
        (
            "[health]\ntcp = \"h:1\"\nretries = 3\n",
            "health.retries",
            "unknown key",
        ),
        ("[health]\ncommand = []\n", "health.command", "is empty"),
        ("health = 3\n", "health", "expected a table"),
        (
            "[limits]\nmemory = \"lots\"\n",
            "limits.memory",
            "not a size",
        ),
        ("[limits]\nmemory = \"0\"\n", "limits.memory", "more than 0"),
        (
            "[limits]\ncpu_percent = 0\n",
            "limits.cpu_percent",
            "above 0",
        ),
        (
            "[limits]\ncpu_percent = \"90%\"\n",
            "limits.cpu_percent",
            "above 0",
        ),
        (
            "[limits]\nsample_every = \"0s\"\n",
            "limits.sample_every",
            "more than 0s",
        ),
        (
            "[limits]\ncpu_for = \"0s\"\n",
            "limits.cpu_for",
            "more than 0s",
        ),
        (
            "[limits]\ncpu_percent = 50\ncpu_for = \"1s\"\nsample_every = \"5s\"\n",
            "limits.cpu_for",
            "at least two samples",
        ),
        (
            "[limits]\naction = \"kill\"\n",
            "limits.action",
            "is not one of",
        ),
        (
            "[limits]\nmemroy = \"1GiB\"\n",
            "limits.memroy",
            "did you mean `memory`?",
        ),
        (
            "[notify]\nwebhook = \"https://hooks.slack.com/x\"\nformat = \"slack\"\nsecret = \"s\"\n",
            "notify.secret",
            "signs DingTalk and Feishu/Lark webhooks only",
        ),
        (
            "[notify]\nwebhook = \"https://h/\"\nformat = \"dingtalk\"\nsecret = \"\"\n",
            "notify.secret",
            "is empty",
        ),
        (
            "[notify]\nwebhook = \"https://hooks.example.com/x\"\nformat = \"discord\"\n",
            "notify.format",
            "\"discord\" is not one of \"generic\", \"dingtalk\", \"wecom\", \"feishu\", \"lark\", \"slack\", \"teams\"",
        ),
        (
            "[notify]\nevents = [\"crashed\"]\n",
            "notify",
            "nowhere to send alerts",
        ),
        (
            "[notify]\nwebhook = \"http://h/\"\nevents = [\"crashed\", \"exploded\"]\n",
            "notify.events[1]",
            "\"exploded\" is not one of \"crashed\", \"restarting\", \"unhealthy\", \"gave_up\", \"recovered\", \"upgraded\", \"rolled_back\"",
        ),
        (
            "[notify]\nwebhook = \"http://h/\"\nevents = [\"upgraded\", \"rolledback\"]\n",
            "notify.events[1]",
            "\"rolledback\" is not one of",
        ),
        (
            "[notify]\ncommand = \"page.sh\"\n",
            "notify.command",
            "expected an array",
        ),
        (
            "[metrics]\nlisten = \"0.0.0.0:9464\"\n",
            "metrics.listen",
            "metrics.allow_remote = true",
        ),
        (
            "[metrics]\nlisten = \"9464\"\n",
            "metrics.listen",
            "not an address",
        ),
        (
            "[metrics]\nallow_remote = true\n",
            "metrics",
            "nowhere to export metrics",
        ),
        (
            "[metrics]\nlisten = \"127.0.0.1:1\"\nport = 1\n",
            "metrics.port",
            "unknown key",
        ),
    ];
    for (text, key, want) in cases {
        let e = errors(
            dir.path(),
            &format!("name = \"m\"\ncommand = [\"{ON_PATH}\"]\n{text}"),
        );
        assert!(
            e.iter()
                .any(|(k, line, m)| k == key && m.contains(want) && line.is_some()),
            "{text}: want `{key}: ...{want}...` with a line, got {e:#?}"
        );
    }
}

#[test]
fn health_machine_problems_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "svc.toml",
        &format!(
            "name = \"m\"\ncommand = [\"{ON_PATH}\"]\n[health]\ncommand = [\"./missing-check\"]\n[metrics]\ntextfile = \"no-such-dir\"\n"
        ),
    );
    let l = load(&p, &LoadOptions::default()).unwrap();
    let keys: Vec<&str> = l.warnings.iter().map(|w| w.key.as_str()).collect();
    assert!(keys.contains(&"health.command[0]"), "{keys:?}");
    assert!(keys.contains(&"metrics.textfile"), "{keys:?}");
}

#[test]
fn three_mistakes_three_errors_with_paths_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let e = errors(
        dir.path(),
        "name = \"demo\"\ncommand = [\"true\"]\n[restart]\npolicy = \"sometimes\"\nmax_delay = \"5x\"\n[stop]\ntimout = \"3s\"\n",
    );
    assert_eq!(e.len(), 3, "{e:#?}");
    assert_eq!(e[0].0, "restart.policy");
    assert_eq!(e[0].1, Some(4));
    assert!(
        e[0].2.contains("\"always\", \"on-failure\", \"never\""),
        "{}",
        e[0].2
    );
    assert_eq!(e[1].0, "restart.max_delay");
    assert_eq!(e[1].1, Some(5));
    assert_eq!(
        e[1].2,
        "\"5x\" is not a duration (examples: \"500ms\", \"30s\", \"5m\")"
    );
    assert_eq!(e[2].0, "stop.timout");
    assert_eq!(e[2].1, Some(7));
    assert!(e[2].2.contains("did you mean `timeout`?"), "{}", e[2].2);
}

#[test]
fn problem_display_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "svc.toml",
        "name = \"x\"\ncommand = [\"true\"]\n[restart]\nmax_delay = \"5x\"\n",
    );
    let Err(ConfigError::Invalid { problems, path }) = load(&p, &LoadOptions::default()) else {
        panic!()
    };
    let first_error = problems
        .iter()
        .find(|p| p.severity == Severity::Error)
        .unwrap();
    assert_eq!(
        first_error.display_in(&path).to_string(),
        format!(
            "error: {}:4: restart.max_delay: \"5x\" is not a duration (examples: \"500ms\", \"30s\", \"5m\")",
            p.display()
        )
    );
}

#[test]
fn missing_and_mistyped_required_keys() {
    let dir = tempfile::tempdir().unwrap();
    let e = errors(dir.path(), "display_name = 3\n");
    let keys: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(keys, ["display_name", "name", "command"], "{e:#?}");
    let e = errors(dir.path(), "name = \"bad name\"\ncommand = []\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e[0].2.contains("not a valid service name"));
    assert!(e[1].2.contains("is empty"));
}

#[test]
fn syntax_error_has_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let e = errors(dir.path(), "name = \"x\"\n\ncommand = [\"a\"\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].2.starts_with("not valid TOML"), "{}", e[0].2);
    assert!(e[0].1.is_some());
}

#[test]
fn value_checks() {
    let dir = tempfile::tempdir().unwrap();
    let e = errors(
        dir.path(),
        r#"name = "x"
command = ["true"]
env = { "A B" = "1", C = [1] }
[restart]
delay = "10s"
max_delay = "1s"
multiplier = 0.5
limit = -1
success_exit_codes = ["0"]
[stop]
signal = "SIGKILL"
windows = "ctrl-z"
[logs]
mode = "both"
max_size = "10 furlongs"
keep = "3"
max_line = 10
encoding = "klingon"
[service]
start = "boot"
password_env = "X"
[health]
http = "x"
"#,
    );
    let keys: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        keys,
        [
            "env.A B",
            "env.C",
            "restart.max_delay",
            "restart.multiplier",
            "restart.limit",
            "restart.success_exit_codes[0]",
            "stop.signal",
            "stop.windows",
            "logs.mode",
            "logs.max_size",
            "logs.keep",
            "logs.max_line",
            "logs.encoding",
            "service.start",
            "service.password_env",
            "health.http",
        ],
        "{e:#?}"
    );
}

#[test]
fn env_file_problems_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.env", "A=1\noops\n");
    let e = errors(
        dir.path(),
        "name = \"x\"\ncommand = [\"true\"]\nenv_file = \"bad.env\"\n",
    );
    assert_eq!(e.len(), 1);
    assert!(e[0].2.contains("line 2"), "{}", e[0].2);
    let e = errors(
        dir.path(),
        "name = \"x\"\ncommand = [\"true\"]\nenv_file = \"none.env\"\n",
    );
    assert!(e[0].2.contains("cannot read"), "{}", e[0].2);
}

#[test]
fn machine_problems_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notexec", "#!/bin/sh\n");
    let p = write(
        dir.path(),
        "svc.toml",
        "name = \"x\"\ncommand = [\"./notexec\"]\nworking_dir = \"nowhere\"\n",
    );
    let l = load(&p, &LoadOptions::default()).unwrap();
    let keys: Vec<&str> = l.warnings.iter().map(|w| w.key.as_str()).collect();
    if cfg!(unix) {
        // Windows has no executable bit: there only the directory is wrong.
        assert_eq!(keys, ["command[0]", "working_dir"]);
        assert!(l.warnings[0].message.contains("not executable"));
    } else {
        assert_eq!(keys, ["working_dir"]);
    }
    let p = write(
        dir.path(),
        "svc2.toml",
        "name = \"x\"\ncommand = [\"no-such-program-xyz\"]\n",
    );
    let l = load(&p, &LoadOptions::default()).unwrap();
    assert!(l.warnings[0].message.contains("not found in PATH"));
}

#[test]
fn unreadable_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("nope.toml"), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("nope.toml"));
}

#[test]
fn base_dir_anchors_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("app.env"), "K=v\n").unwrap();
    let elsewhere = dir.path().join("installed");
    std::fs::create_dir(&elsewhere).unwrap();
    let p = write(
        &elsewhere,
        "svc.toml",
        &format!(
            "base_dir = '{}'\nname = \"b\"\ncommand = [\"./server\"]\nenv_file = \"app.env\"\n",
            app.display()
        ),
    );
    let s = load(&p, &LoadOptions::default()).unwrap().spec;
    assert_eq!(s.base_dir, app);
    assert_eq!(s.command.program, Program::Path(app.join("server")));
    assert_eq!(s.working_dir, app);
    assert_eq!(s.logs.dir, app.join("logs"));
    assert_eq!(s.env, [("K".to_owned(), "v".to_owned())]);
}

#[test]
fn logs_encoding_labels_and_system_code_pages() {
    let dir = tempfile::tempdir().unwrap();
    let load = |enc: &str| {
        tend_config::parse(
            &format!("name = \"x\"\ncommand = [\"true\"]\n[logs]\nencoding = \"{enc}\"\n"),
            &dir.path().join("x.toml"),
            &LoadOptions::default(),
        )
    };
    let spec = load("GBK").unwrap().spec;
    assert_eq!(spec.logs.encoding.as_deref(), Some("gbk"));
    assert_eq!(
        load("UTF-16LE").unwrap().spec.logs.encoding.as_deref(),
        Some("utf-16le")
    );
    // Windows' code pages become the label of this system's page, or a clear refusal
    // naming the page; elsewhere they are refused with the hint to name the encoding.
    match load("oem") {
        Ok(l) => {
            if !cfg!(windows) {
                panic!("oem resolved off Windows");
            }
            let e = l.spec.logs.encoding.unwrap();
            assert!(!e.is_empty() && e.is_ascii(), "{e}");
        }
        Err(e) => {
            let text = match e {
                ConfigError::Invalid { problems, .. } => format!("{problems:?}"),
                other => panic!("{other}"),
            };
            assert!(text.contains("logs.encoding"), "{text}");
            if cfg!(windows) {
                assert!(text.contains("code page is"), "{text}");
            } else {
                assert!(text.contains("Windows code page"), "{text}");
            }
        }
    }
}

#[test]
fn https_targets_and_their_tls_keys() {
    let dir = tempfile::tempdir().unwrap();
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    write(dir.path(), "ca.pem", pem);
    let s = spec_with(
        dir.path(),
        "[health]\nhttp = \"https://api.example.com/health\"\nca_file = \"ca.pem\"\n\
         [notify]\nwebhook = \"https://oapi.dingtalk.com/robot/send?access_token=x\"\n\
         format = \"dingtalk\"\n",
    );
    let Some(CheckSpec::Http(check)) = s.health.unwrap().check else {
        panic!()
    };
    assert!(check.url.is_https());
    assert_eq!(check.url.port(), 443);
    assert_eq!(check.tls.ca_file, Some(dir.path().join("ca.pem")));
    assert!(!check.tls.insecure_skip_verify);
    let n = s.notify.unwrap();
    assert_eq!(n.format, WebhookFormat::DingTalk);
    assert_eq!(
        n.webhook.unwrap().to_string(),
        "https://oapi.dingtalk.com/robot/send?access_token=x"
    );
    assert_eq!(n.tls.ca_file, None);
    assert_eq!(n.secret, None);
    let n = spec_with(
        dir.path(),
        "[notify]\nwebhook = \"https://open.feishu.cn/open-apis/bot/v2/hook/x\"\n\
         format = \"feishu\"\nsecret = \"SECabc\"\n",
    )
    .notify
    .unwrap();
    assert_eq!(n.secret.as_ref().map(|s| s.expose()), Some("SECabc"));
    assert!(!format!("{n:?}").contains("SECabc"), "kept out of Debug");
    for (name, want) in [
        ("lark", WebhookFormat::Feishu),
        ("teams", WebhookFormat::Teams),
    ] {
        let n = spec_with(
            dir.path(),
            &format!("[notify]\nwebhook = \"https://h/\"\nformat = \"{name}\"\n"),
        )
        .notify
        .unwrap();
        assert_eq!(n.format, want);
    }
}

/// `insecure_skip_verify` loads (it is the operator's explicit choice) but is always a
/// loud warning, which `tend validate` and `tend run` print.
#[test]
fn insecure_skip_verify_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "svc.toml",
        &format!(
            "name = \"m\"\ncommand = [\"{ON_PATH}\"]\n[health]\nhttp = \"https://10.1.2.3:8443/h\"\n\
             insecure_skip_verify = true\n[notify]\nwebhook = \"https://hooks.example.com/x\"\n\
             insecure_skip_verify = true\n"
        ),
    );
    let l = load(&p, &LoadOptions::default()).unwrap();
    let Some(CheckSpec::Http(check)) = l.spec.health.as_ref().unwrap().check.clone() else {
        panic!()
    };
    assert!(check.tls.insecure_skip_verify);
    assert!(l.spec.notify.as_ref().unwrap().tls.insecure_skip_verify);
    for key in ["health.insecure_skip_verify", "notify.insecure_skip_verify"] {
        let w = l
            .warnings
            .iter()
            .find(|w| w.key == key)
            .unwrap_or_else(|| panic!("no warning for {key}: {:?}", l.warnings));
        assert!(w.message.starts_with("INSECURE: "), "{}", w.message);
        assert!(w.line.is_some(), "{w:?}");
    }
    let w = l
        .warnings
        .iter()
        .find(|w| w.key == "health.insecure_skip_verify")
        .unwrap();
    assert!(
        w.message.contains("of https://10.1.2.3:8443 is not"),
        "{}",
        w.message
    );
    // A webhook's path and query (its token) stay out of the warning, which ends up in logs.
    let w = l
        .warnings
        .iter()
        .find(|w| w.key == "notify.insecure_skip_verify")
        .unwrap();
    assert!(
        w.message.contains("of https://hooks.example.com is not"),
        "{}",
        w.message
    );
    assert!(w.message.contains("ca_file"), "{}", w.message);
}

#[test]
fn tls_keys_that_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ca.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    // Contradiction: an error.
    let errs = errors(
        dir.path(),
        &format!(
            "name = \"m\"\ncommand = [\"{ON_PATH}\"]\n[notify]\nwebhook = \"https://h/\"\n\
             ca_file = \"ca.pem\"\ninsecure_skip_verify = true\n"
        ),
    );
    assert!(
        errs.iter().any(
            |(k, _, m)| k == "notify.insecure_skip_verify" && m.contains("contradicts ca_file")
        ),
        "{errs:?}"
    );
    // Keys with nothing to apply to: warnings, the config still loads.
    let p = write(
        dir.path(),
        "svc.toml",
        &format!(
            "name = \"m\"\ncommand = [\"{ON_PATH}\"]\n[health]\nhttp = \"http://127.0.0.1:1/\"\n\
             ca_file = \"ca.pem\"\n[notify]\ncommand = [\"{ON_PATH}\"]\nformat = \"slack\"\n\
             insecure_skip_verify = true\n"
        ),
    );
    let l = load(&p, &LoadOptions::default()).unwrap();
    let keys: Vec<&str> = l.warnings.iter().map(|w| w.key.as_str()).collect();
    assert!(keys.contains(&"health.http"), "{keys:?}");
    assert!(keys.contains(&"notify"), "{keys:?}");
    assert!(keys.contains(&"notify.format"), "{keys:?}");
    // No INSECURE warning where nothing is encrypted anyway.
    assert!(
        !l.warnings.iter().any(|w| w.message.contains("INSECURE")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn diagnostics_dumps_are_off_by_default_and_ask_go_for_a_dump_when_on() {
    use tend_core::{DiagnosticsSpec, DumpType};
    let dir = tempfile::tempdir().unwrap();
    let off = spec_with(dir.path(), "");
    assert_eq!(off.diagnostics, DiagnosticsSpec::default());
    assert!(!off.diagnostics.dumps);
    assert!(!off.env.iter().any(|(k, _)| k == "GOTRACEBACK"));

    let on = spec_with(
        dir.path(),
        "[diagnostics]\ndumps = true\ndump_count = 3\ndump_type = \"full\"\n",
    );
    assert_eq!(
        on.diagnostics,
        DiagnosticsSpec {
            dumps: true,
            dump_count: 3,
            dump_type: DumpType::Full
        }
    );
    let traceback = if cfg!(windows) { "wer" } else { "crash" };
    assert_eq!(
        on.env.last(),
        Some(&("GOTRACEBACK".to_owned(), traceback.to_owned()))
    );

    // The operator's own GOTRACEBACK wins.
    let own = spec_with(
        dir.path(),
        "[env]\nGOTRACEBACK = \"all\"\n[diagnostics]\ndumps = true\n",
    );
    assert_eq!(own.env, [("GOTRACEBACK".to_owned(), "all".to_owned())]);

    let bad = errors(
        dir.path(),
        &format!(
            "name = \"m\"\ncommand = [\"{ON_PATH}\"]\n[diagnostics]\ndumps = true\ndump_count = 0\ndump_type = \"huge\"\ndump = true\n"
        ),
    );
    let keys: Vec<&str> = bad.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "diagnostics.dump_count",
            "diagnostics.dump_type",
            "diagnostics.dump"
        ],
        "{bad:#?}"
    );
    assert!(bad[1].2.contains("\"mini\", \"full\""), "{bad:#?}");
    assert!(bad[2].2.contains("did you mean `dumps`?"), "{bad:#?}");
}

#[test]
fn logs_eventlog_is_off_by_default_and_stderr_on_request() {
    use tend_core::EventLogLines;
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(spec_with(dir.path(), "").logs.eventlog, EventLogLines::Off);
    let p = write(
        dir.path(),
        "svc.toml",
        &format!("name = \"m\"\ncommand = [\"{ON_PATH}\"]\n[logs]\neventlog = \"stderr\"\n"),
    );
    let l = load(&p, &LoadOptions::default()).unwrap();
    assert_eq!(l.spec.logs.eventlog, EventLogLines::Stderr);
    // Elsewhere than Windows there is no Event Log: said, not an error.
    assert_eq!(
        l.warnings.iter().any(|w| w.key == "logs.eventlog"),
        !cfg!(windows),
        "{:?}",
        l.warnings
    );
    let bad = errors(
        dir.path(),
        &format!("name = \"m\"\ncommand = [\"{ON_PATH}\"]\n[logs]\neventlog = \"all\"\n"),
    );
    assert_eq!(bad[0].0, "logs.eventlog");
    assert!(bad[0].2.contains("\"off\", \"stderr\""), "{bad:?}");
}

#[test]
fn notify_events_of_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "api.toml",
        "name = \"api\"\ncommand = [\"./api\"]\n[notify]\nwebhook = \"http://127.0.0.1:9000/\"\nevents = [\"upgraded\", \"rolled_back\"]\n",
    );
    let n = load(&p, &LoadOptions::default())
        .unwrap()
        .spec
        .notify
        .unwrap();
    assert_eq!(n.events, [AlertKind::Upgraded, AlertKind::RolledBack]);
    // The default sends every event, these two too.
    let p = write(
        dir.path(),
        "api.toml",
        "name = \"api\"\ncommand = [\"./api\"]\n[notify]\nwebhook = \"http://127.0.0.1:9000/\"\n",
    );
    let n = load(&p, &LoadOptions::default())
        .unwrap()
        .spec
        .notify
        .unwrap();
    assert!(n.events.contains(&AlertKind::Upgraded) && n.events.contains(&AlertKind::RolledBack));
}
