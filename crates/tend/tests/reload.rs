//! Reload (SIGHUP to `tend run`) and live status, on real processes.
#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use common::{Env, TEND, wait_until};
use nix::sys::signal::Signal;

fn status_json(env: &Env, cfg: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new(TEND)
        .args(["status", "--json", cfg.to_str().unwrap()])
        .output()
        .expect("tend status");
    serde_json::from_slice(&out.stdout)
        .unwrap_or(serde_json::Value::Null)
        .get("supervisor")
        .cloned()
        .unwrap_or_else(|| panic!("no supervisor in status; stderr: {}", env.read("tend.err")))
}

/// The status file itself (when the config on disk is broken, `tend status <config>`
/// cannot find it, by design).
fn status_file(env: &Env) -> serde_json::Value {
    serde_json::from_str(&env.read("logs/live.status.json")).unwrap_or(serde_json::Value::Null)
}

const BASE: &str = r#"
name = "live"
command = ["{fixture}", "--sleep", "--pid-file", "pids"]
[logs]
max_size = "1MiB"
"#;

fn running(env: &Env, n: usize) -> bool {
    env.pids("pids").len() == n
}

#[test]
fn live_log_change_takes_effect_with_the_same_pid() {
    // A program that keeps writing; with max_size = 1MiB it would take minutes to rotate.
    let env = Env::new();
    let text = r#"
name = "live"
command = ["{fixture}", "--print-every", "2ms", "--pid-file", "pids"]
[logs]
timestamps = false
max_size = "1MiB"
"#;
    let cfg = env.config(text);
    let tend = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(wait_until(Duration::from_secs(10), || running(&env, 1)));
    let pid = env.pids("pids")[0].1;
    let rotated = || {
        tend_logs::rotated_files(&env.path("logs"), "live", tend_logs::LogKind::Out)
            .map_or(0, |r| r.len())
    };
    assert_eq!(rotated(), 0);
    env.config(&text.replace("1MiB", "4KiB"));
    tend.signal(Signal::SIGHUP);
    assert!(
        tend.wait_stderr(
            "reloaded: [logs] changed (applied live)",
            Duration::from_secs(10)
        ),
        "{}",
        tend.stderr()
    );
    // The new size is in force: the active file rotates at 4 KiB from now on.
    assert!(
        wait_until(Duration::from_secs(10), || rotated() >= 2),
        "no rotation after max_size shrank"
    );
    assert!(wait_until(Duration::from_secs(5), || status_json(
        &env, &cfg
    )["config_generation"]
        == 2));
    let st = status_json(&env, &cfg);
    assert_eq!(st["pid"], pid, "the program was not restarted");
    assert_eq!(env.pids("pids").len(), 1);
    assert!(st["last_reload_error"].is_null());
}

#[test]
fn changed_command_restarts_the_program_gracefully() {
    let env = Env::new();
    let cfg = env.config(BASE);
    let tend = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(wait_until(Duration::from_secs(10), || running(&env, 1)));
    env.config(&BASE.replace("\"--sleep\"", "\"--sleep\", \"--print\", \"1\""));
    tend.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || running(&env, 2)),
        "{}",
        tend.stderr()
    );
    let new_pid = env.pids("pids")[1].1;
    assert!(wait_until(Duration::from_secs(5), || status_json(
        &env, &cfg
    )["pid"]
        == new_pid));
    let st = status_json(&env, &cfg);
    assert_eq!(st["config_generation"], 2);
    assert_eq!(st["restarts_total"], 0, "a reload restart is not a failure");
    assert!(
        tend.stderr()
            .contains("command changed (the program restarts)")
    );
    assert!(
        env.read("logs/live.out.log")
            .contains("fixture: got SIGTERM"),
        "graceful"
    );
}

#[test]
fn broken_config_is_rejected_and_the_old_one_keeps_running() {
    let env = Env::new();
    let cfg = env.config(BASE);
    let tend = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(wait_until(Duration::from_secs(10), || running(&env, 1)));
    let pid = env.pids("pids")[0].1;
    env.config(&BASE.replace("max_size = \"1MiB\"", "max_size = \"huge\"\nbogus = 1"));
    tend.signal(Signal::SIGHUP);
    assert!(tend.wait_stderr(
        "reload rejected, the running config stays",
        Duration::from_secs(10)
    ));
    let err = tend.stderr();
    assert!(
        err.contains("logs.max_size") && err.contains("logs.bogus"),
        "every problem is named: {err}"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        !status_file(&env)["last_reload_error"].is_null()
    }));
    let st = status_file(&env);
    assert_eq!(st["pid"], pid);
    assert_eq!(st["config_generation"], 1);
    assert_eq!(st["state"], "running");
}

#[test]
fn status_names_the_log_files_a_reload_moved_to() {
    let env = Env::new();
    let cfg = env.config(BASE);
    let tend = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(wait_until(Duration::from_secs(10), || running(&env, 1)));
    let files = |st: &serde_json::Value| -> Vec<String> {
        st["log_files"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(wait_until(Duration::from_secs(5), || {
        files(&status_file(&env))
            .iter()
            .any(|f| f.ends_with("live.out.log"))
    }));
    let moved = env.path("moved");
    env.config(&format!("{BASE}dir = \"{}\"\n", moved.display()));
    tend.signal(Signal::SIGHUP);
    assert!(
        tend.wait_stderr("reloaded: [logs] changed", Duration::from_secs(10)),
        "{}",
        tend.stderr()
    );
    // The status file stays where it was (the state dir of this `tend run`), and says
    // where the output goes now.
    assert!(
        wait_until(
            Duration::from_secs(5),
            || status_file(&env)["config_generation"] == 2
        ),
        "{}",
        tend.stderr()
    );
    let now = files(&status_file(&env));
    assert!(
        !now.is_empty()
            && now
                .iter()
                .all(|f| std::path::Path::new(f).starts_with(&moved)),
        "status names the files in use after the reload: {now:?}"
    );
    assert!(moved.join("live.out.log").exists());
}

#[test]
fn status_reflects_a_restart_within_a_second() {
    let env = Env::new();
    let cfg = env.config(
        r#"
name = "flappy"
command = ["{fixture}", "--exit-after", "300ms", "--exit", "1", "--pid-file", "pids"]
[restart]
delay = "0s"
limit = 0
"#,
    );
    let _tend = env.spawn(&["run", cfg.to_str().unwrap()]);
    for n in 2..5 {
        assert!(wait_until(Duration::from_secs(10), || env
            .pids("pids")
            .len()
            >= n));
        let seen = Instant::now();
        let pid = env.pids("pids")[n - 1].1;
        assert!(
            wait_until(Duration::from_secs(1), || {
                let st = status_json(&env, &cfg);
                st["pid"] == pid && st["restarts_total"].as_u64() >= Some(n as u64 - 1)
            }),
            "status did not show restart {} within 1 s of pid {pid} starting",
            n - 1
        );
        assert!(seen.elapsed() < Duration::from_secs(1));
    }
}

/// `GET /metrics` on `port`: the body, or None when nothing answers.
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.contains("tend_up").then_some(body)
}

#[test]
fn a_metrics_reload_keeps_the_listener_unless_its_address_changes() {
    let env = Env::new();
    std::fs::create_dir(env.path("m1")).unwrap();
    std::fs::create_dir(env.path("m2")).unwrap();
    let (port, other) = (common::free_port(), common::free_port());
    let text = format!("{BASE}[metrics]\nlisten = \"127.0.0.1:{port}\"\ntextfile = \"m1\"\n");
    let cfg = env.config(&text);
    let tend = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(wait_until(Duration::from_secs(10), || scrape(port).is_some()));

    // Another [metrics] key changes, the address stays: same listener, no rebind.
    env.config(&text.replace("\"m1\"", "\"m2\""));
    tend.signal(Signal::SIGHUP);
    assert!(
        tend.wait_stderr("reloaded: [metrics] changed", Duration::from_secs(10)),
        "{}",
        tend.stderr()
    );
    assert!(
        wait_until(Duration::from_secs(10), || env
            .path("m2/tend_live.prom")
            .exists()),
        "the new textfile is written"
    );
    assert!(scrape(port).is_some(), "/metrics is still served");
    assert!(
        !tend.stderr().contains("cannot listen"),
        "{}",
        tend.stderr()
    );
    assert_eq!(
        tend.stderr().matches("metrics: serving").count(),
        1,
        "bound once: {}",
        tend.stderr()
    );

    // The address changes: served at the new one only.
    env.config(&text.replace(&port.to_string(), &other.to_string()));
    tend.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || scrape(other).is_some()),
        "{}",
        tend.stderr()
    );
    assert!(
        wait_until(Duration::from_secs(10), || scrape(port).is_none()),
        "the old address is let go"
    );
    assert_eq!(env.pids("pids").len(), 1, "the program was not restarted");
}
