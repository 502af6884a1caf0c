//! `[health]`, `[limits]`, `[notify]` and `[metrics]` end to end: `tend run` watching a real
//! fixture program that turns unhealthy, goes silent or grows, with real webhooks and the
//! real textfile. Every wait is on a condition with a deadline; intervals are sub-second so
//! the tests stay fast.
#![cfg(target_os = "linux")]

mod common;
#[path = "../../tend-health/tests/common/prom.rs"]
mod prom;

use std::time::{Duration, Instant};

use common::{Env, HttpSink, Received, TEND, free_port, wait_until};
use nix::sys::signal::Signal;

const LONG: Duration = Duration::from_secs(20);

/// Program starts so far (the fixture's `--counter starts`).
fn starts(env: &Env) -> usize {
    env.read("starts").lines().count()
}

/// The fixture's `--request-log requests`: (pid, HTTP status, ms after the program's start).
fn requests(env: &Env) -> Vec<(u32, u16, u64)> {
    env.read("requests")
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            Some((
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// The requests the first run of the program answered.
fn first_run(env: &Env) -> Vec<(u16, u64)> {
    let all = requests(env);
    let Some(&(pid, _, _)) = all.first() else {
        return Vec::new();
    };
    all.iter()
        .filter(|r| r.0 == pid)
        .map(|r| (r.1, r.2))
        .collect()
}

/// The supervisor part of `tend status --json <config>`.
fn status_json(cfg: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new(TEND)
        .args(["status", "--json", cfg.to_str().unwrap()])
        .output()
        .expect("tend status");
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v.get("supervisor").cloned())
        .unwrap_or(serde_json::Value::Null)
}

/// The time at the start of a tend line or a timestamped log line.
fn stamp(line: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let t = line.split(' ').next().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// Stops `tend run` with SIGTERM and returns its exit code.
fn stop(t: &mut common::Tend) -> i32 {
    t.signal(Signal::SIGTERM);
    t.wait_exit(LONG)
        .unwrap_or_else(|| panic!("tend did not stop\n{}", t.stderr()))
        .code()
        .unwrap_or(-1)
}

#[test]
fn failing_http_check_restarts_after_failures_checks_and_not_before() {
    let env = Env::new();
    let port = free_port();
    let cfg = env.config(&format!(
        r#"
name = "web"
command = ["{{fixture}}", "--serve-health", "{port}", "--unhealthy-after", "500ms",
           "--request-log", "requests", "--counter", "starts"]
[restart]
delay = "100ms"
[health]
http = "http://127.0.0.1:{port}/health"
interval = "100ms"
timeout = "1s"
start_period = "0s"
failures = 3
"#
    ));
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(
        wait_until(LONG, || starts(&env) >= 2),
        "not restarted\n{}",
        t.stderr()
    );
    let run = first_run(&env);
    let codes: Vec<u16> = run.iter().map(|r| r.0).collect();
    // Healthy first; then exactly `failures` failed checks, and the program was stopped:
    // not after the first or second, and no fourth check judged a run already condemned.
    let first_503 = codes.iter().position(|c| *c == 503).expect("a 503");
    assert!(first_503 > 0, "{codes:?}");
    assert!(codes[..first_503].iter().all(|c| *c == 200), "{codes:?}");
    assert_eq!(&codes[first_503..], [503, 503, 503], "{codes:?}");
    let err = t.stderr();
    for want in [
        "healthy: HTTP 200 after",
        "health check failed (1 of 3 in a row): HTTP 503 after",
        "health check failed (2 of 3 in a row): HTTP 503 after",
        "unhealthy: health check failed 3 times in a row: HTTP 503 after",
        "restarting the program (health.on_unhealthy = \"restart\")",
        "restarting in 100ms (restart 1 of 5)",
    ] {
        assert!(err.contains(want), "missing {want:?}\n{err}");
    }
    // The restart counts as a restart (a failed run), and the new run starts healthy.
    assert!(wait_until(LONG, || {
        let s = status_json(&cfg);
        s["restarts_total"] == 1 && s["health"]["state"] == "healthy"
    }));
    assert_eq!(stop(&mut t), 0, "{}", t.stderr());
}

#[test]
fn failed_checks_inside_the_start_period_do_not_count() {
    let env = Env::new();
    let port = free_port();
    let cfg = env.config(&format!(
        r#"
name = "slow"
command = ["{{fixture}}", "--serve-health", "{port}", "--unhealthy-after", "0s",
           "--request-log", "requests", "--counter", "starts"]
[restart]
delay = "100ms"
[health]
http = "http://127.0.0.1:{port}/"
interval = "100ms"
start_period = "1s"
failures = 2
"#
    ));
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(
        wait_until(LONG, || starts(&env) >= 2),
        "not restarted\n{}",
        t.stderr()
    );
    let run = first_run(&env);
    assert!(run.iter().all(|r| r.0 == 503), "{run:?}");
    // About ten failures went by uncounted; the two that counted came after the second.
    assert!(run.len() >= 6, "{run:?}");
    let last = run.last().unwrap().1;
    assert!(
        last >= 900,
        "restarted {last} ms after the start, inside start_period\n{run:?}"
    );
    let err = t.stderr();
    assert!(
        err.contains("unhealthy: health check failed 2 times in a row: HTTP 503"),
        "{err}"
    );
    // Uncounted failures are not reported as building up.
    assert_eq!(err.matches("health check failed (").count(), 1, "{err}");
    assert_eq!(stop(&mut t), 0);
}

#[test]
fn a_program_that_goes_silent_is_restarted_after_silence() {
    let env = Env::new();
    let cfg = env.config(
        r#"
name = "quiet"
command = ["{fixture}", "--print-every", "50ms", "--silent-after", "300ms", "--counter", "starts"]
[restart]
delay = "100ms"
[health]
silence = "500ms"
start_period = "0s"
"#,
    );
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(
        wait_until(LONG, || starts(&env) >= 2),
        "not restarted\n{}",
        t.stderr()
    );
    let err = t.stderr();
    let verdict = err
        .lines()
        .find(|l| l.contains("unhealthy: no output on stdout or stderr for"))
        .unwrap_or_else(|| panic!("no silence verdict\n{err}"));
    assert!(verdict.contains("(health.silence)"), "{verdict}");
    // Not before `silence` had passed since the last line the program wrote.
    let out = env.read("logs/quiet.out.log");
    let last_tick = out
        .lines()
        .filter(|l| l.contains(" tick "))
        .map(stamp)
        .filter(|t| *t < stamp(verdict))
        .max()
        .unwrap_or_else(|| panic!("no output before the verdict\n{out}"));
    let quiet = stamp(verdict) - last_tick;
    assert!(
        quiet >= chrono::TimeDelta::milliseconds(490),
        "acted after {quiet:?} of silence"
    );
    assert_eq!(stop(&mut t), 0);
}

#[test]
fn a_program_that_keeps_talking_is_left_alone() {
    let env = Env::new();
    // It talks every 50 ms for 1.5 s (three times the silence), then exits cleanly, which
    // ends `tend run`: the end of the test is an event, not a sleep.
    let cfg = env.config(
        r#"
name = "chatty"
command = ["{fixture}", "--print-every", "50ms", "--exit-after", "1500ms", "--counter", "starts"]
[health]
silence = "500ms"
start_period = "0s"
"#,
    );
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(starts(&env), 1, "{err}");
    assert!(!err.contains("unhealthy"), "{err}");
    assert!(err.contains("healthy: "), "{err}");
}

#[test]
fn memory_above_the_limit_for_memory_for_is_restarted() {
    let env = Env::new();
    let cfg = env.config(
        r#"
name = "hog"
command = ["{fixture}", "--alloc", "64", "--alloc-after", "200ms", "--counter", "starts"]
[restart]
delay = "100ms"
[limits]
memory = "40MiB"
memory_for = "400ms"
sample_every = "100ms"
"#,
    );
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(
        wait_until(LONG, || starts(&env) >= 2),
        "not restarted\n{}",
        t.stderr()
    );
    let err = t.stderr();
    let verdict = err
        .lines()
        .find(|l| l.contains("unhealthy: memory "))
        .unwrap_or_else(|| panic!("no memory verdict\n{err}"));
    assert!(
        verdict.contains("above the 40.0 MiB limit for ") && verdict.contains("(limits.memory)"),
        "{verdict}"
    );
    assert!(
        verdict.contains("(limits.action = \"restart\")"),
        "{verdict}"
    );
    assert_eq!(stop(&mut t), 0);
}

#[test]
fn a_short_memory_spike_is_not_punished() {
    let env = Env::new();
    // 64 MiB for 300 ms, well under memory_for; then it exits cleanly at 2 s, ending the
    // test with an event.
    let cfg = env.config(
        r#"
name = "spiky"
command = ["{fixture}", "--alloc", "64", "--alloc-after", "200ms", "--alloc-for", "300ms",
           "--exit-after", "2s", "--counter", "starts"]
[limits]
memory = "40MiB"
memory_for = "1s"
sample_every = "100ms"
"#,
    );
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(starts(&env), 1, "{err}");
    assert!(!err.contains("unhealthy"), "{err}");
    let out = env.read("logs/spiky.out.log");
    assert!(
        out.contains("holding 64 MiB") && out.contains("freed 64 MiB"),
        "{out}"
    );
}

#[test]
fn unhealthy_under_policy_never_stays_down_as_failed() {
    let env = Env::new();
    let cfg = env.config(
        r#"
name = "once"
command = ["{fixture}", "--alloc", "64", "--counter", "starts"]
[restart]
policy = "never"
[limits]
memory = "40MiB"
memory_for = "0s"
sample_every = "100ms"
"#,
    );
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "a failed run under `never` is a failure\n{err}");
    assert_eq!(starts(&env), 1, "{err}");
    let status: serde_json::Value =
        serde_json::from_str(&env.read("logs/once.status.json")).expect("status file");
    assert_eq!(status["state"], "failed");
    let reason = status["failed_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("stopped for being unhealthy (memory ")
            && reason.ends_with("and restart.policy = \"never\""),
        "{reason}"
    );
}

#[test]
fn the_webhook_gets_gave_up_with_the_right_fields() {
    let env = Env::new();
    let sink = HttpSink::start();
    let cfg = env.config(&format!(
        r#"
name = "crashy"
command = ["{{fixture}}", "--exit", "3", "--counter", "starts"]
[restart]
delay = "20ms"
limit = 2
limit_window = "1m"
[notify]
webhook = "http://127.0.0.1:{}/hooks/tend?x=1"
events = ["crashed", "gave_up"]
"#,
        sink.port
    ));
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    // tend waited for its queued alerts before exiting: everything is there.
    let received = sink.received();
    assert!(
        received
            .iter()
            .all(|r| r.head.starts_with("POST /hooks/tend?x=1 HTTP/1.1\r\n")
                && r.head.contains("Content-Type: application/json\r\n")),
        "{received:#?}"
    );
    let alerts = sink.json();
    let events: Vec<&str> = alerts.iter().filter_map(|a| a["event"].as_str()).collect();
    assert_eq!(
        events,
        ["crashed", "crashed", "crashed", "gave_up"],
        "only the chosen events, in order\n{err}"
    );
    let g = &alerts[3];
    assert_eq!(g["service"], "crashy");
    assert_eq!(g["exit_code"], 3);
    assert_eq!(g["signal"], serde_json::Value::Null);
    assert_eq!(g["restarts"], 2);
    assert!(g["host"].as_str().is_some_and(|h| !h.is_empty()), "{g:#}");
    let time = g["time"].as_str().unwrap_or_default();
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
    assert!(
        g["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("gave up after 2 restarts in 1m")),
        "{g:#}"
    );
    assert!(
        g["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("crashy on ") && t.contains(": gave_up (exit code 3)")),
        "{g:#}"
    );
    let keys: Vec<&str> = g.as_object().unwrap().keys().map(String::as_str).collect();
    // Every key always there: `from_release` and `to_release` (issue 13) are null here.
    assert_eq!(keys.len(), 12, "{keys:?}");
    assert!(
        g["from_release"].is_null() && g["to_release"].is_null(),
        "{g:#}"
    );
    assert_eq!(
        g["last_stderr"],
        serde_json::json!([]),
        "the fixture said nothing"
    );
    // `restarts` counts as of the alert, the restart decided with it included.
    let counts: Vec<u64> = alerts
        .iter()
        .filter_map(|a| a["restarts"].as_u64())
        .collect();
    assert_eq!(counts, [1, 2, 2, 2], "{alerts:#?}");
    assert_eq!(alerts[0]["exit_code"], 3);
}

#[test]
fn a_dead_webhook_does_not_delay_restarts() {
    let env = Env::new();
    // Nothing listens there: every delivery fails after its tries (1 s + 2 s of waits).
    let cfg = env.config(&format!(
        r#"
name = "crashy"
command = ["{{fixture}}", "--exit", "1", "--counter", "starts"]
[restart]
delay = "20ms"
limit = 3
limit_window = "1m"
[notify]
webhook = "http://127.0.0.1:{}/"
"#,
        free_port()
    ));
    let began = Instant::now();
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(
        t.wait_stderr("gave up after 3 restarts", LONG),
        "{}",
        t.stderr()
    );
    // 20 + 40 + 80 ms of backoff: had an alert held up the loop, this would take seconds.
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "gave up only after {took:?}\n{}",
        t.stderr()
    );
    assert_eq!(starts(&env), 4);
    // At exit tend waits a bounded time for the queued alerts, then gives up on them.
    let status = t.wait_exit(LONG).expect("tend exits");
    assert_eq!(status.code(), Some(1));
    let err = t.stderr();
    assert!(
        err.contains("alert `crashed` via notify.webhook failed after 3 tries: connect refused"),
        "{err}"
    );
    assert!(err.contains("still undelivered after 5s: dropped"), "{err}");
}

#[test]
fn textfile_and_status_show_health_memory_and_cpu() {
    let env = Env::new();
    let port = free_port();
    std::fs::create_dir(env.path("metrics")).unwrap();
    let cfg = env.config(&format!(
        r#"
name = "web"
command = ["{{fixture}}", "--serve-health", "{port}", "--print-every", "100ms"]
[health]
http = "http://127.0.0.1:{port}/health"
interval = "200ms"
[limits]
sample_every = "100ms"
[metrics]
textfile = "metrics"
"#
    ));
    let file = env.path("metrics/tend_web.prom");
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        wait_until(LONG, || {
            let text = read();
            text.contains("tend_healthy{service=\"web\"} 1\n")
                && text.contains("tend_memory_bytes{service=\"web\"}")
        }),
        "{}\n{}",
        read(),
        t.stderr()
    );
    let text = read();
    let samples = prom::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let value = |name: &str, labels: &[(&str, &str)]| {
        prom::find(&samples, name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?}\n{text}"))
            .value
    };
    let svc = [("service", "web")];
    assert_eq!(value("tend_up", &svc), 1.0);
    assert_eq!(value("tend_restarts_total", &svc), 0.0);
    assert_eq!(value("tend_healthy", &svc), 1.0);
    assert!(value("tend_memory_bytes", &svc) > 100_000.0, "{text}");
    assert!(value("tend_cpu_seconds_total", &svc) >= 0.0);
    for stream in ["out", "err"] {
        let l = [("service", "web"), ("stream", stream)];
        assert!(value("tend_log_bytes_total", &l) >= 0.0);
        assert_eq!(value("tend_log_dropped_bytes_total", &l), 0.0);
    }
    assert!(
        prom::find(&samples, "tend_last_exit_code", &svc).is_none(),
        "no exit yet\n{text}"
    );

    let s = status_json(&cfg);
    assert_eq!(s["health"]["state"], "healthy", "{s:#}");
    assert_eq!(s["health"]["last_probe"]["healthy"], true, "{s:#}");
    assert!(
        s["health"]["last_probe"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("HTTP 200 after ")),
        "{s:#}"
    );
    assert!(
        s["memory_bytes"].as_u64().is_some_and(|m| m > 100_000),
        "{s:#}"
    );
    assert!(s["cpu_percent"].as_f64().is_some_and(|c| c >= 0.0), "{s:#}");
    let out = std::process::Command::new(TEND)
        .args(["status", cfg.to_str().unwrap()])
        .output()
        .expect("tend status");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("\nhealth       healthy (HTTP 200 after "),
        "{shown}"
    );
    assert!(shown.contains("\nmemory       "), "{shown}");
    assert!(shown.contains("% of one core\n"), "{shown}");

    // The last word in the file is that the program is down.
    assert_eq!(stop(&mut t), 0);
    let text = read();
    let samples = prom::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let up = prom::find(&samples, "tend_up", &svc)
        .expect("tend_up")
        .value;
    assert_eq!(up, 0.0, "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(env.path("metrics"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "tend_web.prom")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn health_added_by_reload_applies_without_restarting_the_program() {
    let env = Env::new();
    let port = free_port();
    let base = format!(
        r#"
name = "live"
command = ["{{fixture}}", "--serve-health", "{port}", "--unhealthy-after", "0s", "--counter", "starts"]
[restart]
delay = "100ms"
"#
    );
    let cfg = env.config(&base);
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(wait_until(LONG, || status_json(&cfg)["state"] == "running"));
    assert!(status_json(&cfg)["health"].is_null());
    env.config(&format!(
        "{base}[health]\nhttp = \"http://127.0.0.1:{port}/\"\ninterval = \"100ms\"\nstart_period = \"0s\"\nfailures = 1\n"
    ));
    t.signal(Signal::SIGHUP);
    assert!(
        wait_until(LONG, || starts(&env) >= 2),
        "not restarted\n{}",
        t.stderr()
    );
    let err = t.stderr();
    let reloaded = err
        .find("reloaded: [health] changed (applied live)")
        .unwrap_or_else(|| panic!("{err}"));
    let verdict = err
        .find("unhealthy: health check failed: HTTP 503")
        .unwrap_or_else(|| panic!("{err}"));
    let stopping = err[reloaded..]
        .find("stopping pid")
        .map(|i| i + reloaded)
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        reloaded < verdict && verdict < stopping,
        "the reload itself must not restart the program\n{err}"
    );
    assert_eq!(stop(&mut t), 0);
}

#[test]
fn limits_added_by_reload_measure_the_running_program() {
    let env = Env::new();
    let base = r#"
name = "measured"
command = ["{fixture}", "--alloc", "32", "--counter", "starts"]
"#;
    let cfg = env.config(base);
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(wait_until(LONG, || status_json(&cfg)["state"] == "running"));
    let pid = status_json(&cfg)["pid"].clone();
    assert!(status_json(&cfg)["memory_bytes"].is_null());
    env.config(&format!("{base}[limits]\nsample_every = \"100ms\"\n"));
    t.signal(Signal::SIGHUP);
    assert!(
        wait_until(LONG, || status_json(&cfg)["memory_bytes"]
            .as_u64()
            .is_some_and(|m| m > 32 << 20)),
        "{:#}\n{}",
        status_json(&cfg),
        t.stderr()
    );
    assert_eq!(status_json(&cfg)["pid"], pid, "the program kept running");
    assert_eq!(starts(&env), 1);
    assert_eq!(stop(&mut t), 0);
}

#[test]
fn metrics_count_crashes_by_reason_and_say_when_tend_gave_up() {
    let env = Env::new();
    std::fs::create_dir(env.path("metrics")).unwrap();
    let cfg = env.config(
        r#"
name = "crashy"
command = ["{fixture}", "--exit", "3"]
[restart]
delay = "10ms"
limit = 2
limit_window = "1m"
[metrics]
textfile = "metrics"
"#,
    );
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let text = env.read("metrics/tend_crashy.prom");
    assert!(
        text.contains("tend_crashes_total{service=\"crashy\",reason=\"exit\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("tend_gave_up{service=\"crashy\"} 1\n"),
        "{text}"
    );
    assert!(
        !text.contains("tend_start_time_seconds{"),
        "not running: {text}"
    );
}

#[test]
fn metrics_have_the_start_time_and_the_last_checks_result() {
    let env = Env::new();
    std::fs::create_dir(env.path("metrics")).unwrap();
    let port = free_port();
    let cfg = env.config(&format!(
        r#"
name = "served"
command = ["{{fixture}}", "--serve-health", "{port}"]
[health]
http = "http://127.0.0.1:{port}/health"
interval = "100ms"
[metrics]
textfile = "metrics"
"#
    ));
    let began = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    let file = env.path("metrics/tend_served.prom");
    assert!(
        wait_until(LONG, || std::fs::read_to_string(&file).is_ok_and(
            |t| t.contains("tend_health_check_success{service=\"served\"} 1\n")
        )),
        "{}",
        env.read("metrics/tend_served.prom")
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let start: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tend_start_time_seconds{service=\"served\"} "))
        .expect("start time")
        .parse()
        .unwrap();
    assert!((start - began).abs() < 10.0, "{start} vs {began}");
    assert!(
        text.contains("tend_health_check_duration_seconds{service=\"served\"} "),
        "{text}"
    );
    assert!(
        text.contains("tend_gave_up{service=\"served\"} 0\n"),
        "{text}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(t.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(t.wait_exit(LONG).is_some());
}

// https for `[health] http` and `[notify] webhook`, through `tend run`: a local https server
// whose CA the test makes, trusted through `ca_file`, refused without it, and
// `insecure_skip_verify` warned about.

/// A request as the https server saw it.
#[derive(Debug, Clone)]
struct HttpsRequest {
    /// The SNI of the handshake.
    sni: Option<String>,
    head: String,
    body: Vec<u8>,
}

/// An https server on 127.0.0.1 (std threads and rustls' blocking stream) with a certificate
/// for `localhost` from a CA made here. Answers every request with `answer`, and records
/// the requests and the SNI each handshake carried.
struct HttpsSink {
    port: u16,
    /// The CA certificate, PEM: what `ca_file` is given.
    ca_pem: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<HttpsRequest>>>,
}

impl HttpsSink {
    fn start(answer: &'static str) -> Self {
        use std::io::Write as _;
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tend e2e test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        );
        #[allow(deprecated, reason = "the ring provider, as tend's client uses")]
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = std::sync::Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
                .unwrap(),
        );
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = seen.clone();
        let port = common::serve(move |tcp| {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            // Reading drives the handshake; a client that refuses the certificate ends it
            // here.
            let Some(Received { head, body }) = common::read_request(&mut tls) else {
                return;
            };
            let sni = tls.conn.server_name().map(str::to_owned);
            let _ = tls.write_all(answer.as_bytes());
            tls.conn.send_close_notify();
            let _ = tls.flush();
            keep.lock().unwrap().push(HttpsRequest { sni, head, body });
        });
        Self {
            port,
            ca_pem: ca.pem(),
            seen,
        }
    }

    fn requests(&self) -> Vec<HttpsRequest> {
        self.seen.lock().unwrap().clone()
    }
}

#[test]
fn https_webhook_with_ca_file_gets_a_slack_shaped_alert_and_fails_clearly_without_it() {
    let env = Env::new();
    let sink = HttpsSink::start("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    std::fs::write(env.path("ca.pem"), &sink.ca_pem).unwrap();
    let config = |trust: &str| {
        format!(
            r#"
name = "crashy"
command = ["{{fixture}}", "--say-err", "listen tcp :8080: bind: address already in use", "--exit", "3"]
[restart]
delay = "20ms"
limit = 1
limit_window = "1m"
[notify]
webhook = "https://localhost:{}/services/T0/B0/x"
format = "slack"
events = ["gave_up"]
{trust}
"#,
            sink.port
        )
    };
    let cfg = env.config(&config("ca_file = \"ca.pem\""));
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("notify.webhook failed"), "{err}");
    let got = sink.requests();
    assert_eq!(got.len(), 1, "{err}");
    let HttpsRequest { sni, head, body } = &got[0];
    assert_eq!(sni.as_deref(), Some("localhost"));
    assert!(
        head.starts_with("POST /services/T0/B0/x HTTP/1.1\r\n"),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    let text = v["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("crashy on ") && text.contains(": gave_up (exit code 3)"),
        "{v:#}"
    );
    assert_eq!(v["blocks"][0]["type"], "header");
    assert!(
        v["blocks"]
            .to_string()
            .contains("bind: address already in use"),
        "the crash's last stderr line travels with the alert: {v:#}"
    );

    // The same receiver without ca_file: its CA is not the OS's, so delivery fails, with
    // the reason in tend's log.
    let cfg = env.config(&config(""));
    let (code, _, err) = env.run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "alert `gave_up` via notify.webhook failed after 3 tries: \
             TLS: certificate not trusted (unknown issuer) for localhost"
        ),
        "{err}"
    );
    assert_eq!(sink.requests().len(), 1, "nothing more got through");
}

#[test]
fn https_health_check_with_ca_file_is_healthy_and_unknown_ca_is_the_reason() {
    let env = Env::new();
    let sink = HttpsSink::start("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    std::fs::write(env.path("ca.pem"), &sink.ca_pem).unwrap();
    let config = |trust: &str| {
        format!(
            r#"
name = "web"
command = ["{{fixture}}", "--sleep"]
[health]
http = "https://localhost:{}/health"
interval = "100ms"
timeout = "2s"
start_period = "0s"
failures = 1
on_unhealthy = "log"
{trust}
"#,
            sink.port
        )
    };
    let cfg = env.config(&config("ca_file = \"ca.pem\""));
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    assert!(
        t.wait_stderr("healthy: HTTP 200 after", LONG),
        "{}",
        t.stderr()
    );
    assert!(
        wait_until(LONG, || {
            let h = &status_json(&cfg)["health"];
            h["state"] == "healthy"
                && h["last_probe"]["text"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("HTTP 200 after "))
        }),
        "{:#}",
        status_json(&cfg)
    );
    let got = sink.requests();
    assert!(
        got.iter().all(|r| r.sni.as_deref() == Some("localhost")
            && r.head.starts_with("GET /health HTTP/1.1\r\n")),
        "{got:?}"
    );
    assert_eq!(stop(&mut t), 0);

    let cfg = env.config(&config(""));
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    let reason = "TLS: certificate not trusted (unknown issuer) for localhost";
    assert!(
        t.wait_stderr(&format!("unhealthy: health check failed: {reason}"), LONG),
        "{}",
        t.stderr()
    );
    assert!(
        wait_until(LONG, || status_json(&cfg)["health"]["last_probe"]["text"]
            == reason),
        "{:#}",
        status_json(&cfg)
    );
    assert_eq!(stop(&mut t), 0);
}

#[test]
fn insecure_skip_verify_works_and_is_warned_by_validate_and_run() {
    let env = Env::new();
    let sink = HttpsSink::start("HTTP/1.1 204 No Content\r\n\r\n");
    let cfg = env.config(&format!(
        r#"
name = "web"
command = ["{{fixture}}", "--sleep"]
[health]
http = "https://localhost:{}/health"
interval = "100ms"
start_period = "0s"
insecure_skip_verify = true
"#,
        sink.port
    ));
    let warning = "health.insecure_skip_verify: INSECURE: the TLS certificate of https://localhost";
    let (code, out, err) = env.run(&["validate", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        format!("{out}{err}").contains(warning),
        "validate must warn\n{out}{err}"
    );
    let mut t = env.spawn(&["run", cfg.to_str().unwrap()]);
    // The CA is unknown, and the check passes all the same: that is what the key does.
    assert!(
        t.wait_stderr("healthy: HTTP 204 after", LONG),
        "{}",
        t.stderr()
    );
    assert!(
        t.stderr().contains(warning),
        "run must warn\n{}",
        t.stderr()
    );
    assert_eq!(stop(&mut t), 0);
}
