//! The notifier against a real local webhook receiver, a dead one, and real commands.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{closed_port, http_server, recv, silent_server};
use tend_health::notify::{Channel, DeliveryFailure, NotifyOptions};
use tend_health::{
    Alert, AlertKind, HttpClient, HttpUrl, Notifier, NotifierConfig, PreparedCommand, WebhookFormat,
};
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(10);

fn config(webhook: Option<String>, command: Option<PreparedCommand>) -> NotifierConfig {
    NotifierConfig {
        service: "web".into(),
        host: "box1".into(),
        command,
        webhook: webhook.map(|u| HttpUrl::parse(&u).unwrap()),
        format: WebhookFormat::Generic,
        secret: None,
        client: HttpClient::default(),
        events: AlertKind::ALL.iter().map(|(k, _)| *k).collect(),
        options: NotifyOptions {
            timeout: Duration::from_secs(5),
            tries: 3,
            first_retry: Duration::from_millis(20),
            queue: 8,
        },
    }
}

fn crashed() -> Alert {
    Alert {
        exit_code: Some(1),
        restarts: 4,
        ..Alert::new(AlertKind::Crashed, SystemTime::now())
    }
}

/// A failure callback that forwards into a channel.
fn failures() -> (
    impl Fn(DeliveryFailure) + Send + Sync + 'static,
    mpsc::UnboundedReceiver<DeliveryFailure>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (move |f| drop(tx.send(f)), rx)
}

#[tokio::test]
async fn webhook_receives_the_json_payload() {
    let (addr, mut seen) = http_server(vec!["HTTP/1.1 204 No Content\r\n\r\n"]).await;
    let (on_failure, mut failed) = failures();
    let n = Notifier::spawn(
        config(Some(format!("http://{addr}/hook")), None),
        on_failure,
    );
    assert!(n.send(crashed()));
    let req = recv(&mut seen, T).await;
    assert!(
        req.head.starts_with("POST /hook HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    assert!(
        req.head.contains("\r\nContent-Type: application/json\r\n"),
        "{}",
        req.head
    );
    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(v["service"], "web");
    assert_eq!(v["host"], "box1");
    assert_eq!(v["event"], "crashed");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["restarts"], 4);
    assert!(v["reason"].is_null());
    assert!(chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).is_ok());
    assert_eq!(n.shutdown(T).await, 0);
    assert!(failed.try_recv().is_err(), "no failure expected");
}

#[tokio::test]
async fn webhook_retries_until_it_succeeds() {
    let (addr, mut seen) = http_server(vec![
        "HTTP/1.1 500 Internal Server Error\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",
    ])
    .await;
    let (on_failure, mut failed) = failures();
    let n = Notifier::spawn(config(Some(format!("http://{addr}/")), None), on_failure);
    n.send(Alert::new(AlertKind::Recovered, SystemTime::now()));
    assert_eq!(n.shutdown(T).await, 0, "delivered within the time");
    let first = recv(&mut seen, T).await;
    let second = recv(&mut seen, T).await;
    assert_eq!(first.body, second.body, "the same alert, tried again");
    assert!(failed.try_recv().is_err(), "the second try succeeded");
}

#[tokio::test]
async fn a_dead_webhook_is_reported_after_every_try() {
    let addr = closed_port();
    let (on_failure, mut failed) = failures();
    let n = Notifier::spawn(config(Some(format!("http://{addr}/")), None), on_failure);
    n.send(Alert::new(AlertKind::GaveUp, SystemTime::now()));
    let f = recv(&mut failed, T).await;
    assert_eq!(f.channel, Channel::Webhook);
    assert_eq!(f.event, AlertKind::GaveUp);
    assert_eq!(f.tries, 3);
    assert_eq!(f.error, format!("connect refused ({addr})"));
}

#[tokio::test]
async fn a_hanging_webhook_never_delays_the_caller() {
    let addr = silent_server().await;
    let mut cfg = config(Some(format!("http://{addr}/")), None);
    cfg.options.timeout = Duration::from_secs(60);
    cfg.options.queue = 4;
    let n = Notifier::spawn(cfg, |_| {});
    // `send` is synchronous: it queues and returns, whatever the webhook does. On this
    // current-thread runtime the worker cannot even run until the test awaits.
    let began = Instant::now();
    for _ in 0..10 {
        assert!(n.send(crashed()));
    }
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(
        n.dropped(),
        6,
        "the oldest beyond the queue size are dropped"
    );
    // Shutdown is bounded too: one alert is stuck in flight, three still queued.
    let began = Instant::now();
    assert_eq!(n.shutdown(Duration::from_millis(200)).await, 4);
    assert!(began.elapsed() < T, "{:?}", began.elapsed());
}

#[tokio::test]
async fn events_not_listed_are_not_sent() {
    let mut cfg = config(None, None);
    cfg.events = vec![AlertKind::GaveUp];
    let n = Notifier::spawn(cfg, |_| {});
    assert!(!n.send(crashed()));
    assert!(n.send(Alert::new(AlertKind::GaveUp, SystemTime::now())));
}

#[tokio::test]
async fn the_newest_alert_survives_a_full_queue() {
    // The webhook answers only the last request it gets; everything before is dropped.
    let (addr, mut seen) = http_server(vec!["HTTP/1.1 200 OK\r\n\r\n"]).await;
    let mut cfg = config(Some(format!("http://{addr}/")), None);
    cfg.options.queue = 1;
    let n = Notifier::spawn(cfg, |_| {});
    n.send(crashed());
    n.send(Alert::new(AlertKind::GaveUp, SystemTime::now()));
    let req = recv(&mut seen, T).await;
    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(v["event"], "gave_up");
    assert_eq!(n.dropped(), 1);
}

#[cfg(unix)]
fn sh(script: &str, arg: &str) -> PreparedCommand {
    PreparedCommand {
        program: "sh".into(),
        args: vec!["-c".into(), script.into(), arg.into()],
        working_dir: None,
        env: vec![],
    }
}

#[cfg(unix)]
#[tokio::test]
async fn command_gets_env_and_json_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("alert");
    let script = r#"cat > "$0.json"; printf '%s|%s|%s|%s|%s' "$TEND_EVENT" "$TEND_SERVICE" "$TEND_HOST" "$TEND_EXIT_CODE" "$TEND_RESTARTS" > "$0.env""#;
    let (on_failure, mut failed) = failures();
    let n = Notifier::spawn(
        config(None, Some(sh(script, base.to_str().unwrap()))),
        on_failure,
    );
    n.send(crashed());
    assert_eq!(n.shutdown(T).await, 0);
    assert!(failed.try_recv().is_err());
    let env = std::fs::read_to_string(base.with_extension("env")).unwrap();
    assert_eq!(env, "crashed|web|box1|1|4");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.with_extension("json")).unwrap())
            .unwrap();
    assert_eq!(json["event"], "crashed");
    assert_eq!(json["text"], "web on box1: crashed (exit code 1)");
}

#[cfg(unix)]
#[tokio::test]
async fn a_failing_command_is_reported_with_its_last_line() {
    let (on_failure, mut failed) = failures();
    let mut cfg = config(None, Some(sh("echo no route to pager >&2; exit 2", "x")));
    cfg.options.tries = 2;
    let n = Notifier::spawn(cfg, on_failure);
    n.send(crashed());
    let f = recv(&mut failed, T).await;
    assert_eq!(f.channel, Channel::Command);
    assert_eq!(f.tries, 2);
    assert_eq!(f.error, "command exited with code 2: no route to pager");
}

#[cfg(windows)]
#[tokio::test]
async fn command_gets_env() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alert.txt");
    let cmd = PreparedCommand {
        program: "cmd".into(),
        args: vec![
            "/c".into(),
            format!(
                "echo %TEND_EVENT% %TEND_SERVICE% %TEND_EXIT_CODE%>{}",
                out.display()
            ),
        ],
        working_dir: None,
        env: vec![],
    };
    let (on_failure, mut failed) = failures();
    let n = Notifier::spawn(config(None, Some(cmd)), on_failure);
    n.send(crashed());
    assert_eq!(n.shutdown(T).await, 0);
    assert!(failed.try_recv().is_err());
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.trim(), "crashed web 1");
}
