//! Metrics: the rendered text passes a strict text-format parser, the textfile is replaced
//! atomically, and the listener serves it.

mod common;

use common::prom::{find, parse};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tend_health::metrics::{
    CONTENT_TYPE, LogStreamMetrics, MetricsServer, ServiceMetrics, render, textfile_path,
    validate_listen, write_textfile,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn full(service: &str) -> ServiceMetrics {
    ServiceMetrics {
        service: service.into(),
        up: true,
        restarts_total: 3,
        last_exit_code: Some(137),
        healthy: Some(false),
        memory_bytes: Some(52_428_800),
        cpu_seconds_total: Some(12.25),
        logs: vec![
            LogStreamMetrics {
                stream: "out".into(),
                bytes_total: 1000,
                dropped_bytes_total: 0,
            },
            LogStreamMetrics {
                stream: "err".into(),
                bytes_total: 20,
                dropped_bytes_total: 5,
            },
        ],
        start_time_seconds: Some(1_765_000_000.25),
        crashes: vec![("SIGSEGV".into(), 2), ("go-panic".into(), 1)],
        gave_up: false,
        last_check: Some((0.012, true)),
        upgrades: vec![
            ("upgraded".into(), 4),
            ("rolled_back".into(), 1),
            ("broken".into(), 0),
        ],
    }
}

#[test]
fn the_parser_is_strict() {
    let bad = [
        "tend_up 1",                                           // no newline
        "tend_up 1\n",                                         // no TYPE
        "# TYPE tend_up gauge\ntend_up{service=\"a\\x\"} 1\n", // bad escape
        "# TYPE tend_up gauge\ntend_up{service=a} 1\n",        // unquoted
        "# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\nx 2\n",     // not contiguous
        "# TYPE x gauge\nx 1\n# HELP x late\n",                // HELP after samples
        "# TYPE x_total counter\nx_total 1\nx_total 2\n",      // duplicate series
        "# TYPE x counter\nx 1\n",                             // counter name
    ];
    for text in bad {
        assert!(parse(text).is_err(), "accepted {text:?}");
    }
}

#[test]
fn rendered_text_parses_and_holds_every_series() {
    let text = render(&[full("web"), full("worker")]);
    let samples = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for svc in ["web", "worker"] {
        let one = |name: &str| find(&samples, name, &[("service", svc)]).unwrap().value;
        assert_eq!(one("tend_up"), 1.0);
        assert_eq!(one("tend_restarts_total"), 3.0);
        assert_eq!(one("tend_last_exit_code"), 137.0);
        assert_eq!(one("tend_healthy"), 0.0);
        assert_eq!(one("tend_memory_bytes"), 52_428_800.0);
        assert_eq!(one("tend_cpu_seconds_total"), 12.25);
        let log = |name: &str, stream: &str| {
            find(&samples, name, &[("service", svc), ("stream", stream)])
                .unwrap()
                .value
        };
        assert_eq!(log("tend_log_bytes_total", "out"), 1000.0);
        assert_eq!(log("tend_log_bytes_total", "err"), 20.0);
        assert_eq!(log("tend_log_dropped_bytes_total", "err"), 5.0);
        assert_eq!(one("tend_start_time_seconds"), 1_765_000_000.25);
        assert_eq!(one("tend_gave_up"), 0.0);
        assert_eq!(one("tend_health_check_duration_seconds"), 0.012);
        assert_eq!(one("tend_health_check_success"), 1.0);
        let crashes = |reason: &str| {
            find(
                &samples,
                "tend_crashes_total",
                &[("service", svc), ("reason", reason)],
            )
            .unwrap()
            .value
        };
        assert_eq!(crashes("SIGSEGV"), 2.0);
        assert_eq!(crashes("go-panic"), 1.0);
        let upgrades = |result: &str| {
            find(
                &samples,
                "tend_upgrades_total",
                &[("service", svc), ("result", result)],
            )
            .unwrap()
            .value
        };
        assert_eq!(upgrades("upgraded"), 4.0);
        assert_eq!(upgrades("rolled_back"), 1.0);
        assert_eq!(upgrades("broken"), 0.0);
    }
    // One HELP and one TYPE per family, even with two services.
    assert_eq!(text.matches("# TYPE tend_up gauge\n").count(), 1, "{text}");
    assert_eq!(
        samples.len(),
        2 * 19,
        "10 series before issue 15, 6 more then, 3 upgrade results (issue 13)"
    );
}

#[test]
fn label_values_round_trip_through_escaping() {
    let odd = "we\"b\\x\ny";
    let text = render(&[ServiceMetrics {
        service: odd.into(),
        ..ServiceMetrics::default()
    }]);
    let samples = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        find(&samples, "tend_up", &[("service", odd)]).is_some(),
        "{text}"
    );
}

#[test]
fn textfile_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let first = render(&[full("web")]);
    let path = write_textfile(dir.path(), "web", &first).unwrap();
    assert_eq!(path, textfile_path(dir.path(), "web"));
    assert_eq!(path.file_name().unwrap(), "tend_web.prom");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    let second = render(&[ServiceMetrics {
        service: "web".into(),
        ..ServiceMetrics::default()
    }]);
    write_textfile(dir.path(), "web", &second).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), second);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["tend_web.prom"], "no temporary file left behind");
    assert!(write_textfile(&dir.path().join("missing"), "web", &second).is_err());
}

async fn get(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("the listener answers")
        .unwrap();
    out
}

#[tokio::test]
async fn the_listener_serves_metrics() {
    let addr = validate_listen("127.0.0.1:0", false).unwrap();
    let server = MetricsServer::bind(addr).await.unwrap();
    let addr = server.local_addr().unwrap();
    let current = Arc::new(Mutex::new(render(&[full("web")])));
    let shared = current.clone();
    let task = tokio::spawn(server.serve(move || shared.lock().unwrap().clone()));

    let resp = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("Content-Type: {CONTENT_TYPE}")),
        "{head}"
    );
    assert_eq!(body, render(&[full("web")]));
    parse(body).unwrap();

    // Each scrape renders afresh.
    *current.lock().unwrap() = render(&[ServiceMetrics::default()]);
    let resp = get(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
    assert!(
        resp.ends_with(&render(&[ServiceMetrics::default()])),
        "{resp}"
    );

    let resp = get(addr, "GET /other HTTP/1.1\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 404 "), "{resp}");
    let resp = get(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 405 "), "{resp}");
    let resp = get(addr, "nonsense\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 400 "), "{resp}");
    let resp = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert!(resp.ends_with("\r\n\r\n"), "HEAD has no body: {resp}");
    task.abort();
}

#[tokio::test]
async fn the_listener_is_loopback_only_by_default() {
    assert!(validate_listen("0.0.0.0:9464", false).is_err());
    assert!(validate_listen("0.0.0.0:0", true).is_ok());
}

/// The metric families tend renders (from a service with every series).
fn rendered_names() -> std::collections::BTreeSet<String> {
    let mut all = full("web");
    all.gave_up = true;
    render(&[all])
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every `tend_*` name in `text`.
fn names_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("tend_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `tend_crashes_total{...}` and friends; `tend-alerts`, `tend_<svc>` file names aside.
        if name.len() > "tend_".len() {
            out.push(name.clone());
        }
        rest = &rest[i + name.len().max(1)..];
    }
    out
}

#[test]
fn contrib_rules_and_dashboard_use_only_series_tend_exports() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rules = std::fs::read_to_string(root.join("contrib/prometheus/tend-alerts.yml")).unwrap();
    let dash = std::fs::read_to_string(root.join("contrib/grafana/tend-dashboard.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&dash).expect("the dashboard is JSON");
    assert!(v["panels"].as_array().is_some_and(|p| !p.is_empty()));
    let known = rendered_names();
    for (file, text) in [("tend-alerts.yml", &rules), ("tend-dashboard.json", &dash)] {
        let used = names_in(text);
        assert!(!used.is_empty(), "{file}");
        for name in used {
            assert!(
                known.contains(&name),
                "{file} uses {name}, which tend does not export: {known:?}"
            );
        }
    }
    // promtool, where it is installed (CI installs Debian's prometheus package).
    match std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(root.join("contrib/prometheus/tend-alerts.yml"))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check rules: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("promtool not found ({e}): rules checked by name only"),
    }
}

#[test]
fn promtool_accepts_the_exposition_where_it_is_installed() {
    let mut all = full("web");
    all.gave_up = true;
    let text = render(&[all, full("worker")]);
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("promtool not found: the strict parser above stands in");
        return;
    };
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
