//! Metrics: the rendered text passes a strict text-format parser, the textfile is replaced
//! atomically, and the listener serves it.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tend_health::metrics::{
    CONTENT_TYPE, LogStreamMetrics, MetricsServer, ServiceMetrics, render, textfile_path,
    validate_listen, write_textfile,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_name(s: &str, allow_colon: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (allow_colon && c == ':');
    chars.next().is_some_and(ok_first) && chars.all(|c| ok_first(c) || c.is_ascii_digit())
}

/// A strict parser of the Prometheus text format 0.0.4, as far as tend uses it: every line
/// ends in `\n`; `# HELP` and `# TYPE` at most once per family and before its samples; a
/// family's samples are contiguous; label values use only the three escapes; no duplicate
/// series; values are Go floats. (prometheus-parse on crates.io is regex-based and lenient,
/// which is the opposite of what a format test needs.)
fn parse(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the text must end with a newline".into());
    }
    let mut samples = Vec::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps = HashSet::new();
    let mut finished = HashSet::new();
    let mut current: Option<String> = None;
    let mut series = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let tail = parts.next().unwrap_or("");
            if !is_name(name, true) {
                return Err(err("bad metric name"));
            }
            if finished.contains(name) || current.as_deref() == Some(name) {
                return Err(err("HELP/TYPE after the family's samples"));
            }
            match kw {
                "HELP" => {
                    if !helps.insert(name.to_owned()) || tail.is_empty() {
                        return Err(err("duplicate or empty HELP"));
                    }
                }
                "TYPE" => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&tail) {
                        return Err(err("unknown type"));
                    }
                    if types.insert(name.to_owned(), tail.to_owned()).is_some() {
                        return Err(err("duplicate TYPE"));
                    }
                }
                _ => return Err(err("unknown comment keyword")),
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            return Err(err("stray line"));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value"))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(err("bad metric name"));
        }
        if current.as_deref() != Some(name) {
            if let Some(prev) = current.take() {
                finished.insert(prev);
            }
            if finished.contains(name) {
                return Err(err("samples of a family are not contiguous"));
            }
            current = Some(name.to_owned());
        }
        let kind = types
            .get(name)
            .ok_or_else(|| err("sample before its TYPE"))?;
        if kind == "counter" && !name.ends_with("_total") {
            return Err(err("counter not named *_total"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(after) = rest.strip_prefix('{') {
            let mut chars = after.char_indices().peekable();
            loop {
                let start = chars
                    .peek()
                    .map(|(i, _)| *i)
                    .ok_or_else(|| err("open labels"))?;
                if after[start..].starts_with('}') {
                    rest = &after[start + 1..];
                    break;
                }
                let eq = after[start..]
                    .find('=')
                    .ok_or_else(|| err("label without ="))?;
                let lname = &after[start..start + eq];
                if !is_name(lname, false) {
                    return Err(err("bad label name"));
                }
                for _ in 0..=eq {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(err("label value not quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars
                        .next()
                        .ok_or_else(|| err("unterminated label value"))?
                        .1
                    {
                        '"' => break,
                        '\\' => match chars.next().ok_or_else(|| err("dangling escape"))?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            _ => return Err(err("unknown escape")),
                        },
                        '\n' => return Err(err("raw newline in label value")),
                        c => value.push(c),
                    }
                }
                if labels.insert(lname.to_owned(), value).is_some() {
                    return Err(err("duplicate label"));
                }
                match chars.peek().map(|(_, c)| *c) {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {}
                    _ => return Err(err("expected , or }")),
                }
            }
        }
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("no space before the value"))?;
        if value.contains(' ') {
            return Err(err("timestamps are not expected"));
        }
        let value = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse::<f64>().map_err(|_| err("bad value"))?,
        };
        if !series.insert(format!("{name}{labels:?}")) {
            return Err(err("duplicate series"));
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(samples)
}

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
    }
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.name == name
            && s.labels.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
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
    }
    // One HELP and one TYPE per family, even with two services.
    assert_eq!(text.matches("# TYPE tend_up gauge\n").count(), 1, "{text}");
    assert_eq!(samples.len(), 2 * 10);
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
