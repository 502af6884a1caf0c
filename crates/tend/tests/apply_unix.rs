//! `tend apply --user`, `tend list --user` and `tend export --user` on Linux: the real
//! binary against a temporary home, with a stand-in `systemctl` on PATH that really runs
//! each service (`tend service --user <name>` in the background, as systemd would), so
//! reloads reach a real supervisor and pids can be compared. No systemd is needed or
//! touched.
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::{FIXTURE, TEND, wait_until};

const WAIT: Duration = Duration::from_secs(30);

/// A home of its own (`$HOME`, `$XDG_CONFIG_HOME`, `$XDG_STATE_HOME`), a `set/` of
/// configs, a `bin/` with the stand-in systemctl and a `run/` of the pids it started.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let h = Self {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        for d in ["home", "cfg", "state", "set", "bin", "run", "app"] {
            std::fs::create_dir_all(h.path(d)).expect("mkdir");
        }
        h.systemctl();
        h
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `tend <args>` to completion: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_with(args, None)
    }

    /// `tend dsc <op>` with `input` on stdin: (exit code, stdout, stderr).
    fn dsc(&self, op: &str, input: &str) -> (i32, String, String) {
        self.run_with(&["dsc", op], Some(input))
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(TEND)
            .args(args)
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("cfg"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("PATH", path)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .current_dir(self.dir.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
                    use std::io::Write as _;
                    pipe.write_all(text.as_bytes())?;
                }
                child.wait_with_output()
            })
            .expect("run tend");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn apply(&self, extra: &[&str]) -> (i32, String, String) {
        let set = self.path("set");
        let mut args = vec!["apply", "--user", set.to_str().expect("utf-8")];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn apply_json(&self, extra: &[&str]) -> (i32, serde_json::Value, String) {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = self.apply(&args);
        let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
        assert_schema(&v);
        (code, v, err)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
        p
    }

    /// A service of the set: the fixture, sleeping until stopped.
    fn service(&self, name: &str, extra: &str) {
        self.write(
            &format!("set/{name}.toml"),
            &format!(
                "name = \"{name}\"\ncommand = [\"{FIXTURE}\", \"--sleep\"]\n[stop]\ntimeout = \"5s\"\n{extra}"
            ),
        );
    }

    fn unit(&self, name: &str) -> PathBuf {
        self.path(&format!("cfg/systemd/user/{name}.service"))
    }

    fn copy(&self, name: &str) -> PathBuf {
        self.path(&format!("cfg/tend/{name}.toml"))
    }

    /// The modification times of the unit and the config copy.
    fn mtimes(&self, name: &str) -> (SystemTime, SystemTime) {
        let m = |p: PathBuf| {
            std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        (m(self.unit(name)), m(self.copy(name)))
    }

    /// tend's pid as the stand-in systemctl started it, if it runs.
    fn tend_pid(&self, name: &str) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.path(&format!("run/{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        alive(pid).then_some(pid)
    }

    /// `tend list --user --json`, by name: (state, program pid).
    fn list(&self) -> Vec<(String, String, Option<u64>)> {
        let (code, out, err) = self.run(&["list", "--user", "--json"]);
        assert_eq!(code, 0, "{out}\n{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("list json");
        assert_eq!(v["schema"], 1);
        assert_eq!(v["scope"], "user");
        v["services"]
            .as_array()
            .expect("services")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().expect("name").to_owned(),
                    s["state"].as_str().expect("state").to_owned(),
                    s["pid"].as_u64(),
                )
            })
            .collect()
    }

    /// Waits until `tend list` says every one of `names` runs a program; returns the
    /// program pids.
    fn all_running(&self, names: &[&str]) -> Vec<u64> {
        let mut pids = Vec::new();
        let ok = wait_until(WAIT, || {
            let l = self.list();
            pids = names
                .iter()
                .filter_map(|n| {
                    l.iter()
                        .find(|(name, state, _)| name == n && state == "running")
                        .and_then(|(_, _, pid)| *pid)
                })
                .collect();
            pids.len() == names.len()
        });
        assert!(ok, "not all running: {:?}", self.list());
        pids
    }

    /// A stand-in for `systemctl --user`: logs its arguments; `start` runs
    /// `tend service --user <name>` in the background (its pid in `run/`), `stop` sends it
    /// SIGTERM and waits for it, `reload` sends SIGHUP, `show` answers from the unit file
    /// and that pid, the way systemd would.
    fn systemctl(&self) {
        let script = format!(
            r#"#!/bin/sh
echo "$*" >> '{log}'
[ "$1" = --user ] && shift
verb=$1; unit=$2; name=${{unit%.service}}
pidf='{run}'/$name.pid
alive() {{
  [ -f "$pidf" ] || return 1
  p=$(cat "$pidf")
  kill -0 "$p" 2>/dev/null || return 1
  # A zombie is dead (nobody may reap it at once).
  [ "$(sed 's/.*) //' /proc/$p/stat | cut -c1)" != Z ]
}}
stop() {{
  alive || return 0
  p=$(cat "$pidf"); kill -TERM "$p"
  i=0; while alive && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
  rm -f "$pidf"
}}
start() {{
  alive && return 0
  '{tend}' service --user "$name" </dev/null >>'{run}'/$name.out 2>&1 &
  echo $! > "$pidf"
}}
case "$verb" in
  show)
    f='{cfg}'/systemd/user/$unit
    if [ ! -f "$f" ]; then printf 'LoadState=not-found\nActiveState=inactive\n'
    elif alive; then printf 'LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nMainPID=%s\nFragmentPath=%s\n' "$(cat "$pidf")" "$f"
    else printf 'LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=enabled\nMainPID=0\nFragmentPath=%s\n' "$f"
    fi ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  reload) alive && kill -HUP "$(cat "$pidf")" ;;
esac
exit 0
"#,
            log = self.path("systemctl.log").display(),
            run = self.path("run").display(),
            cfg = self.path("cfg").display(),
            tend = TEND,
        );
        let p = self.write("bin/systemctl", &script);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("systemctl.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.path("systemctl.log"));
    }
}

impl Drop for Home {
    /// Stops every tend the stand-in started (gracefully: it stops its program).
    fn drop(&mut self) {
        let Ok(rd) = std::fs::read_dir(self.path("run")) else {
            return;
        };
        for e in rd.filter_map(Result::ok) {
            if e.path().extension().is_some_and(|x| x == "pid")
                && let Some(pid) = std::fs::read_to_string(e.path())
                    .ok()
                    .and_then(|t| t.trim().parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
                wait_until(WAIT, || !alive(pid));
            }
        }
    }
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(") ").next().map(|r| !r.starts_with('Z')))
        .unwrap_or(false)
}

/// The supervisor's `config_generation` (bumped by each reload it applied).
fn generation(h: &Home, name: &str) -> u64 {
    let file = h.path(&format!("state/tend/{name}/{name}.status.json"));
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["config_generation"].as_u64())
        .unwrap_or(0)
}

/// The documented schema of `tend apply --json` (docs/cli.md): exactly these fields, so
/// the table there and the code cannot drift apart unnoticed.
fn assert_schema(v: &serde_json::Value) {
    let keys = |o: &serde_json::Value| {
        let mut k: Vec<String> = o.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(v),
        [
            "check",
            "error",
            "exit_code",
            "outcome",
            "problems",
            "schema",
            "scope",
            "services",
            "tend"
        ]
    );
    assert_eq!(v["schema"], 1);
    for s in v["services"].as_array().expect("services") {
        assert_eq!(
            keys(s),
            [
                "action",
                "changed",
                "diff",
                "error",
                "file",
                "health",
                "lines",
                "name",
                "reason",
                "result",
                "state",
                "unified_diff",
                "warnings"
            ]
        );
    }
    for p in v["problems"].as_array().expect("problems") {
        assert_eq!(keys(p), ["file", "key", "line", "message", "severity"]);
    }
}

fn actions(v: &serde_json::Value) -> Vec<(String, String)> {
    v["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_owned(),
                s["action"].as_str().expect("action").to_owned(),
            )
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn apply_installs_then_touches_nothing_then_updates_only_the_edited_one() {
    let h = Home::new();
    for n in ["alpha", "beta", "gamma"] {
        h.service(n, "");
    }

    // First apply: 3 installed and started.
    let (code, v, err) = h.apply_json(&["--wait"]);
    assert_eq!(code, 10, "changed\n{v:#}\n{err}");
    assert_eq!(v["outcome"], "changed");
    assert_eq!(v["exit_code"], 10);
    assert_eq!(
        actions(&v),
        pairs(&[
            ("alpha", "install"),
            ("beta", "install"),
            ("gamma", "install")
        ])
    );
    for s in v["services"].as_array().expect("services") {
        assert_eq!(s["result"], "ok", "{s:#}");
        assert_eq!(s["changed"], true);
        assert_eq!(s["state"], "running", "--wait waited: {s:#}");
    }
    let pids = h.all_running(&["alpha", "beta", "gamma"]);
    let tends: Vec<_> = ["alpha", "beta", "gamma"]
        .iter()
        .map(|n| h.tend_pid(n).expect("tend runs"))
        .collect();
    let before: Vec<_> = ["alpha", "beta", "gamma"]
        .iter()
        .map(|n| h.mtimes(n))
        .collect();

    // Second apply of the same set: nothing changed, nothing touched.
    h.clear_calls();
    let (code, out, err) = h.apply(&[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("apply: 3 service(s): 0 changed, 3 unchanged, 0 failed (unchanged)"),
        "{out}"
    );
    for (i, n) in ["alpha", "beta", "gamma"].iter().enumerate() {
        assert_eq!(h.mtimes(n), before[i], "{n}: unit and copy untouched");
        assert_eq!(h.tend_pid(n), Some(tends[i]), "{n}: tend not restarted");
    }
    assert_eq!(h.all_running(&["alpha", "beta", "gamma"]), pids);
    let calls = h.calls();
    assert!(
        calls.iter().all(|c| c.starts_with("--user show ")),
        "only questions were asked: {calls:?}"
    );

    // An edit of one: a live setting, so only it is reloaded; its program keeps running.
    h.service("beta", "[restart]\ndelay = \"3s\"\n");
    // --check first: pending, with its exit code, and nothing changes.
    h.clear_calls();
    let (code, v, err) = h.apply_json(&["--check"]);
    assert_eq!(code, 11, "pending\n{v:#}\n{err}");
    assert_eq!(v["outcome"], "pending");
    assert_eq!(v["check"], true);
    assert_eq!(
        actions(&v),
        pairs(&[
            ("alpha", "unchanged"),
            ("beta", "update-reload"),
            ("gamma", "unchanged")
        ])
    );
    let beta = &v["services"][1];
    assert_eq!(beta["result"], "pending");
    assert!(
        beta["diff"]
            .as_array()
            .expect("diff")
            .iter()
            .any(|l| l == "+ delay = \"3s\""),
        "{beta:#}"
    );
    assert!(
        beta["reason"]
            .as_str()
            .expect("reason")
            .contains("[restart]")
    );
    // The same change as diff -u: headers naming the copy and the file, a hunk with context.
    let unified = beta["unified_diff"].as_str().expect("unified_diff");
    assert!(
        unified.starts_with("--- ")
            && unified.contains("/beta.toml (as it would be installed)\n@@ -")
            && unified.contains("\n+delay = \"3s\"\n"),
        "{unified}"
    );
    assert_eq!(v["services"][0]["unified_diff"], "", "unchanged: no diff");
    // And --diff prints it for people.
    let (code, out, _) = h.apply(&["--check", "--diff"]);
    assert_eq!(code, 11, "{out}");
    assert!(
        out.contains("  @@ -") && out.contains("  +delay = \"3s\""),
        "{out}"
    );
    assert_eq!(h.mtimes("beta"), before[1], "--check changed nothing");
    assert!(
        h.calls().iter().all(|c| c.starts_with("--user show ")),
        "{:?}",
        h.calls()
    );

    // --diff shows the change as diff -u, naming the copy and the file.
    let (code, out, _) = h.apply(&["--check", "--diff"]);
    assert_eq!(code, 11);
    assert!(
        out.contains("/cfg/tend/beta.toml\n  +++ ") && out.contains("\n  +delay = \"3s\"\n"),
        "{out}"
    );

    let generation_before = generation(&h, "beta");
    h.clear_calls();
    let (code, v, err) = h.apply_json(&["--wait"]);
    assert_eq!(code, 10, "{v:#}\n{err}");
    assert_eq!(
        actions(&v),
        pairs(&[
            ("alpha", "unchanged"),
            ("beta", "update-reload"),
            ("gamma", "unchanged")
        ])
    );
    let copy = std::fs::read_to_string(h.copy("beta")).expect("copy");
    assert!(copy.contains("delay = \"3s\""), "{copy}");
    assert!(
        h.calls().iter().any(|c| c == "--user reload beta.service"),
        "{:?}",
        h.calls()
    );
    assert!(
        !h.calls()
            .iter()
            .any(|c| c.contains("alpha.service") && !c.starts_with("--user show")),
        "{:?}",
        h.calls()
    );
    for (i, n) in ["alpha", "gamma"].iter().enumerate() {
        let i = if i == 0 { 0 } else { 2 };
        assert_eq!(h.mtimes(n), before[i], "{n} untouched");
        assert_eq!(h.tend_pid(n), Some(tends[i]), "{n} not restarted");
    }
    assert_eq!(
        h.tend_pid("beta"),
        Some(tends[1]),
        "reloaded, not restarted"
    );
    // The supervisor took the reload (its generation moved) and kept the program.
    assert!(
        wait_until(WAIT, || generation(&h, "beta") > generation_before),
        "{}",
        std::fs::read_to_string(h.path("state/tend/beta/beta.status.json")).unwrap_or_default()
    );
    assert_eq!(h.all_running(&["alpha", "beta", "gamma"]), pids);

    // A change a reload cannot apply ([service]): a restart, said so.
    h.service("gamma", "[service]\npreshutdown_timeout = \"1m\"\n");
    let (code, v, err) = h.apply_json(&[]);
    assert_eq!(code, 10, "{v:#}\n{err}");
    assert_eq!(v["services"][2]["action"], "update-restart", "{v:#}");
    assert!(
        wait_until(WAIT, || h.tend_pid("gamma").is_some_and(|p| p != tends[2])),
        "gamma's tend was restarted"
    );
    assert_eq!(h.tend_pid("alpha"), Some(tends[0]));

    // export prints the installed config as tend reads it.
    let (code, out, _) = h.run(&["export", "--user", "gamma"]);
    assert_eq!(code, 0);
    assert_eq!(out, std::fs::read_to_string(h.copy("gamma")).expect("copy"));
    assert!(out.contains("preshutdown_timeout = \"1m\""), "{out}");
    let (code, _, err) = h.run(&["export", "--user", "nope"]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn a_set_with_one_bad_file_changes_nothing_and_names_file_and_key() {
    let h = Home::new();
    for n in ["alpha", "beta"] {
        h.service(n, "");
    }
    let (code, _, err) = h.apply(&[]);
    assert_eq!(code, 10, "{err}");
    let before = h.mtimes("alpha");

    // An edit to alpha, a new good service, and a bad one: nothing happens.
    h.service("alpha", "[restart]\ndelay = \"3s\"\n");
    h.service("gamma", "");
    let bad = h.write(
        "set/bad.toml",
        &format!("name = \"bad\"\ncommand = [\"{FIXTURE}\"]\n[restart]\npolicy = \"sometimes\"\n"),
    );
    h.clear_calls();
    let (code, out, err) = h.apply(&[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(err.contains("restart.policy"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(h.mtimes("alpha"), before);
    assert!(!h.copy("gamma").exists());
    assert!(h.calls().is_empty(), "nothing asked: {:?}", h.calls());

    // As JSON: every problem with its file, line and key.
    let (code, v, _) = h.apply_json(&[]);
    assert_eq!(code, 2);
    assert_eq!(v["outcome"], "invalid");
    let p = &v["problems"][0];
    assert_eq!(p["file"], bad.display().to_string());
    assert_eq!(p["key"], "restart.policy");
    assert_eq!(p["line"], 4);
    assert_eq!(v["services"].as_array().map(Vec::len), Some(0));

    // Two files with one name: the second is named.
    std::fs::remove_file(&bad).expect("rm");
    h.write(
        "set/zz.toml",
        &format!("name = \"alpha\"\ncommand = [\"{FIXTURE}\"]\n"),
    );
    let (code, _, err) = h.apply(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("zz.toml") && err.contains("name:"), "{err}");
    assert_eq!(h.mtimes("alpha"), before);

    // A path that does not exist: an error, as JSON too.
    let (code, v, _) = h.apply_json(&["/nonexistent/set"]);
    assert_eq!(code, 2);
    assert_eq!(v["outcome"], "error");
    assert_eq!(v["exit_code"], 2);
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("message")
            .contains("/nonexistent/set` does not exist"),
        "{v:#}"
    );

    // An empty directory is not "no services".
    let empty = h.path("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let (code, _, err) = h.run(&["apply", "--user", "--prune", empty.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no *.toml files"), "{err}");
    assert!(h.copy("alpha").exists() && h.copy("beta").exists());
}

#[test]
fn prune_removes_only_what_tend_installed_and_the_set_lacks() {
    let h = Home::new();
    for n in ["alpha", "beta", "gamma"] {
        h.service(n, "");
    }
    let (code, _, err) = h.apply(&[]);
    assert_eq!(code, 10, "{err}");
    h.all_running(&["alpha", "beta", "gamma"]);

    // A unit tend did not write, with no config copy; and one with a config copy whose
    // unit tend did not write either (someone put it there by hand).
    h.write(
        "cfg/systemd/user/foreign.service",
        "[Service]\nExecStart=/bin/true\n",
    );
    h.write(
        "cfg/systemd/user/hand.service",
        "[Service]\nExecStart=/bin/true\n",
    );
    h.write(
        "cfg/tend/hand.toml",
        &format!("name = \"hand\"\ncommand = [\"{FIXTURE}\"]\n"),
    );

    std::fs::remove_file(h.path("set/beta.toml")).expect("rm");
    // Without --prune: beta stays.
    let (code, out, err) = h.apply(&[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(h.copy("beta").exists());

    let (code, v, err) = h.apply_json(&["--check", "--prune"]);
    assert_eq!(code, 11, "{v:#}\n{err}");
    assert_eq!(
        actions(&v),
        pairs(&[
            ("alpha", "unchanged"),
            ("gamma", "unchanged"),
            ("beta", "remove"),
            ("hand", "conflict")
        ])
    );
    assert_eq!(v["services"][3]["result"], "skipped");
    assert!(h.copy("beta").exists(), "--check removed nothing");

    let tend_alpha = h.tend_pid("alpha");
    let (code, v, err) = h.apply_json(&["--prune"]);
    assert_eq!(code, 10, "{v:#}\n{err}");
    assert_eq!(v["services"][2]["result"], "ok", "{v:#}");
    assert!(!h.copy("beta").exists());
    assert!(!h.unit("beta").exists());
    assert!(
        wait_until(WAIT, || h.tend_pid("beta").is_none()),
        "beta stopped"
    );
    assert!(h.unit("foreign").exists(), "never touched");
    assert!(
        h.unit("hand").exists() && h.copy("hand").exists(),
        "left alone"
    );
    assert_eq!(h.tend_pid("alpha"), tend_alpha);
    let names: Vec<String> = h.list().into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names, ["alpha", "gamma", "hand"]);

    // Again: nothing left to do (the foreign one is not a failure).
    let (code, out, err) = h.apply(&["--prune"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn a_failed_start_is_reported_per_service_and_the_next_apply_finishes_it() {
    let h = Home::new();
    h.service("alpha", "");
    h.service("beta", "");
    // beta's start fails once: the stand-in refuses while this file exists.
    let script = std::fs::read_to_string(h.path("bin/systemctl")).expect("script");
    let guard = h.path("refuse-beta");
    let script = script.replacen(
        "  start) start ;;",
        &format!(
            "  start) if [ \"$name\" = beta ] && [ -f '{}' ]; then echo 'Job for beta.service failed.' >&2; exit 1; fi; start ;;",
            guard.display()
        ),
        1,
    );
    h.write("bin/systemctl", &script);
    std::fs::write(&guard, "").expect("guard");

    let (code, v, err) = h.apply_json(&[]);
    assert_eq!(code, 5, "the failure's own code\n{v:#}\n{err}");
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["services"][0]["result"], "ok");
    assert_eq!(v["services"][1]["result"], "failed");
    assert_eq!(v["services"][1]["error"]["exit_code"], 5);
    assert!(
        v["services"][1]["error"]["message"]
            .as_str()
            .expect("message")
            .contains("Job for beta.service failed"),
        "{v:#}"
    );
    assert!(h.tend_pid("alpha").is_some(), "the other one went on");
    assert!(h.tend_pid("beta").is_none());

    // The files are as asked, but the start is still owed: the next apply does it.
    std::fs::remove_file(&guard).expect("rm");
    let (code, v, err) = h.apply_json(&[]);
    assert_eq!(code, 10, "{v:#}\n{err}");
    assert_eq!(
        actions(&v),
        pairs(&[("alpha", "unchanged"), ("beta", "start")])
    );
    h.all_running(&["alpha", "beta"]);
    let (code, _, err) = h.apply(&[]);
    assert_eq!(code, 0, "done now: {err}");
}

/// `tend list` without services, and `apply` of a single file.
#[test]
fn list_of_nothing_and_apply_of_one_file() {
    let h = Home::new();
    let (code, out, _) = h.run(&["list", "--user"]);
    assert_eq!(code, 0);
    assert!(out.contains("no tend --user services here"), "{out}");
    h.service("solo", "[service]\nstart = \"manual\"\n");
    let file = h.path("set/solo.toml");
    let (code, out, err) = h.run(&["apply", "--user", file.to_str().expect("utf-8")]);
    assert_eq!(code, 10, "{out}\n{err}");
    assert!(out.contains("not started"), "{out}");
    assert!(h.tend_pid("solo").is_none(), "manual: not started");
    let l = h.list();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].0, "solo");
    assert_eq!(l[0].1, "stopped");
    let (code, out, _) = h.run(&["list", "--user"]);
    assert_eq!(code, 0);
    assert!(out.contains("solo") && out.contains("stopped"), "{out}");
    assert!(Path::new(&h.copy("solo")).exists());
}

/// A DSC instance as `tend dsc` prints it, checked against `tend dsc schema`: only the
/// schema's properties, each of its type.
fn instance(h: &Home, text: &str) -> serde_json::Value {
    let (_, schema, _) = h.run(&["dsc", "schema"]);
    let schema: serde_json::Value = serde_json::from_str(&schema).expect("schema");
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    for (k, val) in v.as_object().expect("an object") {
        let ty = &schema["properties"][k]["type"];
        assert!(!ty.is_null(), "{k} is not in the schema: {v}");
        let kind = match val {
            serde_json::Value::Bool(_) => "boolean",
            serde_json::Value::String(_) => "string",
            serde_json::Value::Null => "null",
            _ => "other",
        };
        assert!(
            ty == kind || ty.as_array().is_some_and(|a| a.iter().any(|t| t == kind)),
            "{k}: {val} is not {ty}"
        );
    }
    assert!(v["name"].is_string(), "{v}");
    v
}

#[test]
fn dsc_get_test_set_and_export_are_the_apply_contract() {
    let h = Home::new();
    h.service("api", "");
    let file = h.path("set/api.toml");
    let file = file.to_str().expect("utf-8");
    let (code, schema, _) = h.run(&["dsc", "schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&schema).expect("schema");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["required"], serde_json::json!(["name"]));

    let get = r#"{"name":"api","scope":"user"}"#;
    let want = format!(r#"{{"name":"api","scope":"user","path":"{file}","running":true}}"#);
    let (code, out, err) = h.dsc("get", get);
    assert_eq!(code, 0, "{err}");
    assert_eq!(instance(&h, &out)["_exist"], false);
    let (code, out, err) = h.dsc("test", &want);
    assert_eq!(code, 0, "{err}");
    assert_eq!(instance(&h, &out)["_inDesiredState"], false);

    // set installs and starts; then get and test agree that it is as asked.
    let (code, out, err) = h.dsc("set", &want);
    assert_eq!(code, 0, "{out}\n{err}");
    let after = instance(&h, &out);
    assert_eq!(after["_exist"], true, "{after}");
    h.all_running(&["api"]);
    let (_, out, _) = h.dsc("test", &want);
    assert_eq!(instance(&h, &out)["_inDesiredState"], true, "{out}");
    let (_, out, _) = h.dsc("get", get);
    let got = instance(&h, &out);
    assert_eq!(
        (got["state"].as_str(), got["running"].as_bool()),
        (Some("running"), Some(true))
    );

    // A second set changes nothing: no unit or copy written, tend not restarted.
    let (mtimes, pid) = (h.mtimes("api"), h.tend_pid("api"));
    let (code, _, err) = h.dsc("set", &want);
    assert_eq!(code, 0, "{err}");
    assert_eq!((h.mtimes("api"), h.tend_pid("api")), (mtimes, pid));

    // An edit of the file: test says so, set applies it.
    h.service("api", "[restart]\ndelay = \"3s\"\n");
    let (_, out, _) = h.dsc("test", &want);
    assert_eq!(instance(&h, &out)["_inDesiredState"], false, "{out}");
    let (code, _, err) = h.dsc("set", &want);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = h.dsc("test", &want);
    assert_eq!(instance(&h, &out)["_inDesiredState"], true, "{out}");

    // export: one JSON line per service.
    let (code, out, err) = h.run(&["dsc", "export", "--user"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(instance(&h, lines[0])["name"], "api");

    // Stopped on request, then gone on request (twice: the second does nothing).
    let stopped = r#"{"name":"api","scope":"user","running":false}"#;
    let (code, out, err) = h.dsc("set", stopped);
    assert_eq!(code, 0, "{err}");
    assert_eq!(instance(&h, &out)["running"], false, "{out}");
    let gone = r#"{"name":"api","scope":"user","_exist":false}"#;
    for _ in 0..2 {
        let (code, out, err) = h.dsc("set", gone);
        assert_eq!(code, 0, "{err}");
        assert_eq!(instance(&h, &out)["_exist"], false, "{out}");
    }
    let (_, out, _) = h.dsc("test", gone);
    assert_eq!(instance(&h, &out)["_inDesiredState"], true, "{out}");

    // Bad input and a bad config: exit 2, tend's words, nothing installed.
    let (code, _, err) = h.dsc("get", r#"{"name":"api","runing":true}"#);
    assert_eq!(
        (code, err.contains("unknown property `runing`")),
        (2, true),
        "{err}"
    );
    h.service("api", "[restart]\ndelay = \"soon\"\n");
    let (code, _, err) = h.dsc("set", &want);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("restart.delay"), "{err}");
    let (_, out, _) = h.dsc("get", get);
    assert_eq!(instance(&h, &out)["_exist"], false, "{out}");
    let other = format!(r#"{{"name":"web","scope":"user","path":"{file}"}}"#);
    h.service("api", "");
    let (code, _, err) = h.dsc("set", &other);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the config names service `api`, not `web`"),
        "{err}"
    );
    assert_eq!(h.list(), [], "a refused set installs nothing");
}

#[test]
fn apply_says_what_install_would_warn_about_and_still_installs() {
    let h = Home::new();
    // A health port someone else already answers on: doctor's warning at install.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    h.service(
        "api",
        &format!("[service]\nstart = \"manual\"\n[health]\ntcp = \"127.0.0.1:{port}\"\n"),
    );
    let (code, v, err) = h.apply_json(&[]);
    assert_eq!(code, 10, "{v:#}\n{err}");
    let warnings = v["services"][0]["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.starts_with("doctor: port:") && w.contains("already answers"))),
        "{v:#}"
    );
    assert_eq!(v["services"][0]["action"], "install");
}
