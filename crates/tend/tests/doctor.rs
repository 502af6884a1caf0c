//! `tend doctor` with the real binary: for each check, a service that makes it fail and one
//! that makes it pass, read from `--json` (which must have one entry per check). Before the
//! first start (a config file), on a running and on a failed `tend run`, and on an
//! installed `--user` service (a temporary home and a stand-in `systemctl`, as in
//! service_unix.rs). Linux: the account and sandbox rules checked are systemd's.
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Env, FIXTURE, TEND, free_port, wait_until};
use serde_json::Value;

/// Every check doctor makes, in its order (docs/cli.md).
const IDS: [&str; 10] = [
    "config",
    "access",
    "account",
    "logon-right",
    "log-space",
    "port",
    "drift",
    "clock",
    "last-failure",
    "unfinished",
];

/// `tend doctor <args> --json` in `dir` with `env`: the exit code and the parsed report,
/// checked to have exactly one entry per check, each with the schema's fields.
fn doctor_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut c = Command::new(TEND);
    c.arg("doctor")
        .args(args)
        .arg("--json")
        .current_dir(dir)
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run tend doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let checks = v["checks"].as_array().expect("checks");
    let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, IDS, "{v:#}");
    for c in checks {
        assert!(
            ["ok", "warn", "fail", "skip"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        assert!(c["message"].is_string() && c["fix"].is_string(), "{c}");
        assert!(c["details"].is_array(), "{c}");
    }
    let failed = checks.iter().any(|c| c["status"] == "fail");
    assert_eq!(v["ok"], !failed, "{v:#}");
    let code = out.status.code().unwrap_or(-1);
    assert_eq!(
        code,
        i32::from(failed),
        "exit code 1 exactly when a check fails: {v:#}"
    );
    (code, v)
}

/// With `TZ=UTC`: the clock check passes whether or not the machine has a time zone set.
fn doctor(env: &Env, args: &[&str]) -> (i32, Value) {
    doctor_in(env.dir.path(), args, &[("TZ", "UTC")])
}

/// The entry of check `id`.
fn entry<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
}

fn status<'a>(v: &'a Value, id: &str) -> &'a str {
    entry(v, id)["status"].as_str().unwrap()
}

/// A config `<name>.toml` in the test's dir running the test program, with `extra` (tables)
/// after. The service runs as root (`account = "system"`) and logs into `logs` in the test
/// dir unless `extra` has its own `[service]` / `[logs]`, so that the test dir under /tmp
/// is reachable and only the check under test fails. Returns the argument naming it.
fn config(env: &Env, name: &str, extra: &str) -> String {
    let mut text = format!("name = \"{name}\"\ncommand = [\"{FIXTURE}\", \"--sleep\"]\n{extra}\n");
    if !extra.contains("[service]") {
        text.push_str("[service]\naccount = \"system\"\n");
    }
    if !extra.contains("[logs]") {
        text.push_str("[logs]\ndir = \"logs\"\n");
    }
    std::fs::write(env.path(&format!("{name}.toml")), text).expect("write config");
    format!("./{name}.toml")
}

#[test]
fn a_fine_service_passes_every_check_that_applies() {
    let env = Env::new();
    let cfg = config(&env, "doctor-fine", "");
    let (code, v) = doctor(&env, &[&cfg]);
    assert_eq!(code, 0, "{v:#}");
    for id in ["config", "access", "account", "log-space", "clock"] {
        assert_eq!(status(&v, id), "ok", "{id}: {v:#}");
    }
    // Nothing to say yet: Linux has no logon right, no port, not installed, never ran.
    for id in ["logon-right", "port", "drift", "last-failure"] {
        assert_eq!(status(&v, id), "skip", "{id}: {v:#}");
    }
    // The table for people: one line per check, then the sum.
    let out = Command::new(TEND)
        .args(["doctor", &cfg])
        .env("TZ", "UTC")
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), IDS.len() + 1, "{text}");
    assert!(
        text.ends_with("doctor-fine: 0 failed, 0 warnings\n"),
        "{text}"
    );
}

#[test]
fn config_fails_on_a_program_that_is_not_there() {
    let env = Env::new();
    std::fs::write(
        env.path("doctor-cfg.toml"),
        "name = \"doctor-cfg\"\ncommand = [\"/nonexistent/prog\"]\n[service]\naccount = \"system\"\n[logs]\ndir = \"logs\"\n",
    )
    .unwrap();
    let (code, v) = doctor(&env, &["./doctor-cfg.toml"]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "config"), "fail", "{v:#}");
    let details = entry(&v, "config")["details"].to_string();
    assert!(details.contains("/nonexistent/prog"), "{details}");
}

#[test]
fn access_fails_for_an_isolated_service_with_files_in_tmp_and_passes_as_root() {
    let env = Env::new();
    // account = "isolated": a dynamic user with a private /tmp, where the test dir is not.
    let cfg = config(&env, "doctor-access", "[service]\naccount = \"isolated\"\n");
    let (_, v) = doctor(&env, &[&cfg]);
    assert_eq!(status(&v, "access"), "fail", "{v:#}");
    let details = entry(&v, "access")["details"].to_string();
    assert!(details.contains("private /tmp"), "{details}");
    // The same words install refuses with: one code path.
    let out = Command::new(TEND)
        .args(["install", &cfg])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("private /tmp"), "{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");

    let cfg = config(&env, "doctor-access2", "");
    let (_, v) = doctor(&env, &[&cfg]);
    assert_eq!(status(&v, "access"), "ok", "{v:#}");
}

#[test]
fn account_fails_for_a_user_that_does_not_exist_and_passes_for_one_that_does() {
    let env = Env::new();
    let cfg = config(
        &env,
        "doctor-acct",
        "[service]\naccount = \"no-such-user-tend-doctor\"\n",
    );
    let (code, v) = doctor(&env, &[&cfg]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "account"), "fail", "{v:#}");
    assert!(
        entry(&v, "account")["fix"]
            .as_str()
            .unwrap()
            .contains("useradd"),
        "{v:#}"
    );
    let cfg = config(&env, "doctor-acct2", "[service]\naccount = \"root\"\n");
    let (_, v) = doctor(&env, &[&cfg]);
    assert_eq!(status(&v, "account"), "ok", "{v:#}");
    assert!(
        entry(&v, "account")["message"]
            .as_str()
            .unwrap()
            .contains("`root` exists"),
        "{v:#}"
    );
}

#[test]
fn log_space_fails_when_the_retention_needs_more_than_the_disk_has() {
    let env = Env::new();
    let cfg = config(
        &env,
        "doctor-space",
        "[logs]\ndir = \"logs\"\nmax_size = \"1000TB\"\nkeep = 10\nmax_total = \"0\"\n",
    );
    let (code, v) = doctor(&env, &[&cfg]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(status(&v, "log-space"), "fail", "{v:#}");
    // The defaults (10 MiB x (1 + 10) per stream) fit.
    let cfg = config(&env, "doctor-space2", "");
    let (_, v) = doctor(&env, &[&cfg]);
    assert_eq!(status(&v, "log-space"), "ok", "{v:#}");
}

#[test]
fn port_must_be_free_before_the_start_and_answer_while_running() {
    let env = Env::new();
    // Taken by someone else before the first start: fail.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = config(
        &env,
        "doctor-port",
        &format!("[health]\ntcp = \"127.0.0.1:{port}\"\n"),
    );
    let (code, v) = doctor(&env, &[&cfg]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "port"), "fail", "{v:#}");
    assert!(
        entry(&v, "port")["message"]
            .as_str()
            .unwrap()
            .contains("something else already answers"),
        "{v:#}"
    );
    drop(taken);
    let (_, v) = doctor(&env, &[&cfg]);
    assert_eq!(status(&v, "port"), "ok", "free now: {v:#}");

    // Running: the program answers on its port (ok)...
    let port = free_port();
    let serving = config(
        &env,
        "doctor-serve",
        &format!("[health]\nhttp = \"http://127.0.0.1:{port}/\"\n"),
    );
    let text = std::fs::read_to_string(env.path("doctor-serve.toml"))
        .unwrap()
        .replace("\"--sleep\"", &format!("\"--serve-health\", \"{port}\""));
    std::fs::write(env.path("doctor-serve.toml"), text).unwrap();
    let mut tend = env.spawn(&["run", &serving]);
    let up = wait_until(Duration::from_secs(30), || {
        let (_, v) = doctor(&env, &[&serving]);
        status(&v, "port") == "ok"
            && entry(&v, "last-failure")["message"]
                .as_str()
                .unwrap()
                .contains("state running")
    });
    assert!(up, "the served port never answered: {}", tend.stderr());
    let (code, v) = doctor(&env, &[&serving]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(status(&v, "last-failure"), "ok", "{v:#}");
    tend.signal(nix::sys::signal::Signal::SIGTERM);
    tend.wait_exit(Duration::from_secs(30))
        .expect("tend stopped");

    // ...one that runs but does not listen where [health] says: fail.
    let port = free_port();
    let deaf = config(
        &env,
        "doctor-deaf",
        &format!("[health]\ntcp = \"127.0.0.1:{port}\"\nstart_period = \"1h\"\n"),
    );
    let mut tend = env.spawn(&["run", &deaf]);
    let failed = wait_until(Duration::from_secs(30), || {
        let (_, v) = doctor(&env, &[&deaf]);
        status(&v, "port") == "fail"
    });
    assert!(failed, "{}", tend.stderr());
    let (_, v) = doctor(&env, &[&deaf]);
    assert!(
        entry(&v, "port")["message"]
            .as_str()
            .unwrap()
            .contains("while the service runs"),
        "{v:#}"
    );
    tend.signal(nix::sys::signal::Signal::SIGTERM);
    tend.wait_exit(Duration::from_secs(30))
        .expect("tend stopped");
}

#[test]
fn last_failure_gives_the_reason_and_the_programs_last_stderr_lines() {
    let env = Env::new();
    let cfg = config(&env, "doctor-fail", "[restart]\npolicy = \"never\"\n");
    let text = std::fs::read_to_string(env.path("doctor-fail.toml"))
        .unwrap()
        .replace(
            "\"--sleep\"",
            "\"--say-err\", \"open /etc/app.yml: no such file\", \"--exit\", \"3\"",
        );
    std::fs::write(env.path("doctor-fail.toml"), text).unwrap();
    let mut tend = env.spawn(&["run", &cfg]);
    tend.wait_exit(Duration::from_secs(30))
        .expect("tend gives up");
    let (code, v) = doctor(&env, &[&cfg]);
    assert_eq!(code, 1, "{v:#}");
    let e = entry(&v, "last-failure");
    assert_eq!(e["status"], "fail", "{v:#}");
    let details = e["details"].to_string();
    assert!(
        details.contains("stderr: open /etc/app.yml: no such file"),
        "{v:#}"
    );
    assert!(e["fix"].as_str().unwrap().contains("tend crashes"), "{v:#}");
}

#[test]
fn clock_warns_about_a_time_zone_that_does_not_exist() {
    let env = Env::new();
    let cfg = config(&env, "doctor-clock", "");
    let (code, v) = doctor_in(env.dir.path(), &[&cfg], &[("TZ", "Nowhere/Bogus")]);
    assert_eq!(status(&v, "clock"), "warn", "{v:#}");
    assert_eq!(code, 0, "a warning does not fail doctor");
    let (_, v) = doctor_in(env.dir.path(), &[&cfg], &[("TZ", "UTC")]);
    assert_eq!(status(&v, "clock"), "ok", "{v:#}");
}

/// A home of its own with a stand-in `systemctl` (answers `show` from the unit file).
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let h = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["home", "cfg", "state", "app", "bin"] {
            std::fs::create_dir_all(h.path(d)).unwrap();
        }
        let script = format!(
            "#!/bin/sh\nunit='{cfg}/systemd/user/doctor-drift.service'\ncase \"$*\" in\n  *\" show \"*)\n    if [ -f \"$unit\" ]; then\n      printf 'LoadState=loaded\\nActiveState=inactive\\nSubState=dead\\nUnitFileState=enabled\\nMainPID=0\\nFragmentPath=%s\\n' \"$unit\"\n    else\n      printf 'LoadState=not-found\\nActiveState=inactive\\n'\n    fi ;;\nesac\nexit 0\n",
            cfg = h.path("cfg").display()
        );
        let p = h.path("bin/systemctl");
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        h
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOME", self.path("home").display().to_string()),
            ("XDG_CONFIG_HOME", self.path("cfg").display().to_string()),
            ("XDG_STATE_HOME", self.path("state").display().to_string()),
            (
                "PATH",
                format!(
                    "{}:{}",
                    self.path("bin").display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            ),
        ]
    }

    fn doctor(&self, args: &[&str]) -> (i32, Value) {
        let mut env = self.env();
        env.push(("TZ", "UTC".to_owned()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut all = args.to_vec();
        all.push("--user");
        doctor_in(&self.path("app"), &all, &env)
    }

    fn tend(&self, args: &[&str]) -> std::process::Output {
        Command::new(TEND)
            .args(args)
            .envs(self.env())
            .env_remove("NOTIFY_SOCKET")
            .current_dir(self.path("app"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

#[test]
fn drift_fails_when_the_installed_unit_was_edited_and_warns_about_an_uninstalled_change() {
    let h = Home::new();
    let cfg = h.path("app/doctor-drift.toml");
    let text = format!("name = \"doctor-drift\"\ncommand = [\"{FIXTURE}\", \"--sleep\"]\n");
    std::fs::write(&cfg, &text).unwrap();
    let out = h.tend(&["install", "--user", "./doctor-drift.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Installed as the config says: by name and by file.
    let (_, v) = h.doctor(&["doctor-drift"]);
    assert_eq!(status(&v, "drift"), "ok", "{v:#}");
    let (_, v) = h.doctor(&["./doctor-drift.toml"]);
    assert_eq!(status(&v, "drift"), "ok", "{v:#}");

    // The config changed since: a warning, with the lines and the install to run.
    std::fs::write(&cfg, format!("{text}\n[stop]\ntimeout = \"5s\"\n")).unwrap();
    let (code, v) = h.doctor(&["./doctor-drift.toml"]);
    assert_eq!(status(&v, "drift"), "warn", "{v:#}");
    assert_eq!(code, 0);
    assert!(
        entry(&v, "drift")["details"]
            .to_string()
            .contains("+ [stop]"),
        "{v:#}"
    );

    // The unit edited by hand: what runs is not what the config says.
    let unit = h.path("cfg/systemd/user/doctor-drift.service");
    let edited = std::fs::read_to_string(&unit)
        .unwrap()
        .replace("Restart=", "#Restart=");
    std::fs::write(&unit, edited).unwrap();
    let (code, v) = h.doctor(&["doctor-drift"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(status(&v, "drift"), "fail", "{v:#}");
    assert!(
        entry(&v, "drift")["fix"]
            .as_str()
            .unwrap()
            .contains("tend install --user"),
        "{v:#}"
    );
}

#[test]
fn doctor_of_a_name_that_is_not_installed_exits_3() {
    let h = Home::new();
    let out = h.tend(&["doctor", "--user", "doctor-none"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not installed"),
        "{out:?}"
    );
}

#[test]
fn install_says_what_doctor_finds_but_installs_as_before() {
    let h = Home::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(
        h.path("app/doctor-drift.toml"),
        format!(
            "name = \"doctor-drift\"\ncommand = [\"{FIXTURE}\", \"--sleep\"]\n[health]\ntcp = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let out = h.tend(&["install", "--user", "./doctor-drift.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "warning: doctor: port: something else already answers on health.tcp 127.0.0.1:"
        ),
        "{err}"
    );
    drop(taken);
}
