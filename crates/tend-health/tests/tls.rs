//! https probes and webhooks against a local https server whose CA is made in the test:
//! trusted through `ca_file`, refused with a clear reason without it, accepted by
//! `insecure_skip_verify`; and every `notify.format` preset as the receiver gets it.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::https::{TlsSeen, https_server, pki, plain_banner_server};
use common::{recv, silent_server};
use serde_json::Value;
use tend_health::notify::{DeliveryFailure, NotifyOptions};
use tend_health::probe::probe_http;
use tend_health::webhook::{Signature, sign};
use tend_health::{
    Alert, AlertKind, HttpClient, HttpUrl, Notifier, NotifierConfig, Secret, TlsOptions,
    WebhookFormat,
};
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(10);

fn url(s: &str) -> HttpUrl {
    HttpUrl::parse(s).unwrap()
}

fn trusting(ca_file: &std::path::Path) -> HttpClient {
    HttpClient::new(TlsOptions {
        ca_file: Some(ca_file.to_owned()),
        insecure_skip_verify: false,
    })
}

fn insecure() -> HttpClient {
    HttpClient::new(TlsOptions {
        ca_file: None,
        insecure_skip_verify: true,
    })
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[tokio::test]
async fn https_probe_trusts_the_ca_of_ca_file() {
    let pki = pki(&["localhost"]);
    let (addr, mut seen) = https_server(pki.server.clone(), vec![OK, OK]).await;
    let u = url(&format!("https://localhost:{}/health?deep=1", addr.port()));
    let client = trusting(&pki.ca_file);

    let out = probe_http(&u, &client, T).await;
    assert!(out.is_healthy(), "{out:?}");
    assert!(out.text().starts_with("HTTP 200 after "), "{out:?}");
    let (sni, req) = recv(&mut seen, T).await.request();
    // SNI carries the URL's name, and the request is the plain one inside TLS.
    assert_eq!(sni.as_deref(), Some("localhost"));
    assert!(
        req.head.starts_with("GET /health?deep=1 HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    assert!(
        req.head
            .contains(&format!("\r\nHost: localhost:{}\r\n", addr.port())),
        "{}",
        req.head
    );

    // The same client again (its TLS setup is reused).
    let again = probe_http(&u, &client, T).await;
    assert!(again.is_healthy(), "{again:?}");
}

#[tokio::test]
async fn https_probe_without_the_ca_fails_with_a_clear_reason() {
    let pki = pki(&["localhost"]);
    let (addr, mut seen) = https_server(pki.server.clone(), vec![OK]).await;
    let u = url(&format!("https://localhost:{}/", addr.port()));
    let began = Instant::now();
    let out = probe_http(&u, &HttpClient::default(), T).await;
    assert!(!out.is_healthy(), "{out:?}");
    assert_eq!(
        out.text(),
        "TLS: certificate not trusted (unknown issuer) for localhost"
    );
    // Refused at once, not after the timeout.
    assert!(began.elapsed() < T, "{:?}", began.elapsed());
    // The server saw the client give up in the handshake: no request was sent.
    assert!(matches!(
        recv(&mut seen, T).await,
        TlsSeen::HandshakeFailed(_)
    ));
}

#[tokio::test]
async fn a_ca_file_of_another_ca_does_not_vouch_for_the_server() {
    // Two CAs of the same name ("tend test CA") and different keys, as after a CA was
    // re-keyed and ca_file still holds the old one.
    let server = pki(&["localhost"]);
    let other = pki(&["localhost"]);
    let (addr, _seen) = https_server(server.server.clone(), vec![OK]).await;
    let u = url(&format!("https://localhost:{}/", addr.port()));
    // Not under ca_file's roots: the OS's roots decide, and they do not know the test CA.
    let out = probe_http(&u, &trusting(&other.ca_file), T).await;
    assert_eq!(
        out.text(),
        "TLS: certificate not trusted (unknown issuer) for localhost"
    );
}

#[tokio::test]
async fn https_probe_checks_the_name() {
    // A certificate from the trusted CA, but for another name.
    let pki = pki(&["other.test"]);
    let (addr, _seen) = https_server(pki.server.clone(), vec![OK]).await;
    let u = url(&format!("https://localhost:{}/", addr.port()));
    let out = probe_http(&u, &trusting(&pki.ca_file), T).await;
    assert!(!out.is_healthy(), "{out:?}");
    assert!(
        out.text()
            .starts_with("TLS: certificate not valid for this name")
            && out.text().ends_with(" for localhost"),
        "{out:?}"
    );
}

#[tokio::test]
async fn https_probe_by_ip_address() {
    // No SNI for an address (RFC 6066); the certificate's IP SAN is what is checked.
    let pki = pki(&["127.0.0.1"]);
    let (addr, mut seen) = https_server(pki.server.clone(), vec![OK]).await;
    let out = probe_http(
        &url(&format!("https://{addr}/")),
        &trusting(&pki.ca_file),
        T,
    )
    .await;
    assert!(out.is_healthy(), "{out:?}");
    let (sni, _) = recv(&mut seen, T).await.request();
    assert_eq!(sni, None);
}

#[tokio::test]
async fn insecure_skip_verify_accepts_an_unknown_ca() {
    let pki = pki(&["other.test"]);
    let (addr, mut seen) = https_server(pki.server.clone(), vec![OK]).await;
    // Neither the CA nor the name would pass a verified connection.
    let out = probe_http(
        &url(&format!("https://localhost:{}/", addr.port())),
        &insecure(),
        T,
    )
    .await;
    assert!(out.is_healthy(), "{out:?}");
    recv(&mut seen, T).await.request();
}

#[tokio::test]
async fn https_to_a_plain_http_port_says_so() {
    let addr = plain_banner_server("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
    let out = probe_http(&url(&format!("https://{addr}/")), &insecure(), T).await;
    assert!(!out.is_healthy(), "{out:?}");
    assert!(
        out.text().starts_with("TLS: handshake failed: ")
            && out.text().contains("is it https on that port?")
            && out.text().ends_with(" for 127.0.0.1"),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_silent_https_server_times_out() {
    // Accepts TCP, never answers the ClientHello.
    let addr = silent_server().await;
    let timeout = Duration::from_millis(300);
    let out = probe_http(
        &url(&format!("https://localhost:{}/", addr.port())),
        &insecure(),
        timeout,
    )
    .await;
    assert_eq!(out.text(), "timed out after 300ms", "{out:?}");
    assert!(out.took() >= timeout && out.took() < T, "{:?}", out.took());
}

#[tokio::test]
async fn a_ca_file_that_cannot_be_used_is_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let pki = pki(&["localhost"]);
    let (addr, _seen) = https_server(pki.server.clone(), vec![OK]).await;
    let out = probe_http(
        &url(&format!("https://localhost:{}/", addr.port())),
        &trusting(&missing),
        T,
    )
    .await;
    assert!(
        out.text().starts_with("TLS: cannot use ca_file ")
            && out.text().contains("missing.pem")
            && out.text().ends_with(" for localhost"),
        "{out:?}"
    );
}

fn notifier_config(webhook: &str, format: WebhookFormat, client: HttpClient) -> NotifierConfig {
    NotifierConfig {
        service: "web".into(),
        host: "box1".into(),
        command: None,
        webhook: Some(url(webhook)),
        format,
        secret: None,
        client,
        events: AlertKind::ALL.iter().map(|(k, _)| *k).collect(),
        options: NotifyOptions {
            timeout: Duration::from_secs(5),
            tries: 2,
            first_retry: Duration::from_millis(20),
            queue: 8,
        },
    }
}

fn failures() -> (
    impl Fn(DeliveryFailure) + Send + Sync + 'static,
    mpsc::UnboundedReceiver<DeliveryFailure>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (move |f| drop(tx.send(f)), rx)
}

/// A Go program's crash, with its last words.
fn go_panic() -> Alert {
    Alert {
        exit_code: Some(2),
        restarts: 1,
        last_stderr: vec![
            "panic: runtime error: index out of range [5] with length 3".into(),
            "goroutine 1 [running]:".into(),
            "main.main()".into(),
        ],
        ..Alert::new(AlertKind::Crashed, SystemTime::now())
    }
}

const SUMMARY: &str = "web on box1: crashed (exit code 2); last stderr: main.main()";

/// Sends `alert` through a notifier in `format` to a local https receiver answering
/// `answer`; returns the JSON it received and whether delivery failed (and why).
async fn deliver(
    format: WebhookFormat,
    answer: &'static str,
    alert: Alert,
) -> (Value, Option<DeliveryFailure>) {
    let (_, body, failed) = deliver_signed(format, None, answer, alert).await;
    (body, failed)
}

/// As [`deliver`], with `notify.secret`; also returns the request target.
async fn deliver_signed(
    format: WebhookFormat,
    secret: Option<&str>,
    answer: &'static str,
    alert: Alert,
) -> (String, Value, Option<DeliveryFailure>) {
    let pki = pki(&["localhost"]);
    let (addr, mut seen) = https_server(pki.server.clone(), vec![answer, answer]).await;
    let (on_failure, mut failed) = failures();
    let mut config = notifier_config(
        &format!("https://localhost:{}/hook?key=k", addr.port()),
        format,
        trusting(&pki.ca_file),
    );
    config.secret = secret.map(Secret::new);
    let n = Notifier::spawn(config, on_failure);
    assert!(n.send(alert));
    let (sni, req) = recv(&mut seen, T).await.request();
    assert_eq!(sni.as_deref(), Some("localhost"));
    let target = req
        .head
        .strip_prefix("POST ")
        .and_then(|r| r.split_once(" HTTP/1.1\r\n"))
        .map(|(t, _)| t.to_owned())
        .unwrap_or_else(|| panic!("{}", req.head));
    assert!(target.starts_with("/hook?key=k"), "{target}");
    assert!(
        req.head.contains("\r\nContent-Type: application/json\r\n"),
        "{}",
        req.head
    );
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(n.shutdown(T).await, 0);
    (target, body, failed.try_recv().ok())
}

#[tokio::test]
async fn https_webhook_with_ca_file_gets_the_generic_payload() {
    let (v, failed) = deliver(
        WebhookFormat::Generic,
        "HTTP/1.1 204 No Content\r\n\r\n",
        go_panic(),
    )
    .await;
    assert!(failed.is_none(), "{failed:?}");
    assert_eq!(v["service"], "web");
    assert_eq!(v["event"], "crashed");
    assert_eq!(v["exit_code"], 2);
    assert_eq!(v["last_stderr"][0], go_panic().last_stderr[0]);
    assert_eq!(v["text"], SUMMARY);
}

#[tokio::test]
async fn https_webhook_without_the_ca_fails_with_a_clear_error() {
    let pki = pki(&["localhost"]);
    let (addr, _seen) = https_server(pki.server.clone(), vec![OK, OK]).await;
    let (on_failure, mut failed) = failures();
    let n = Notifier::spawn(
        notifier_config(
            &format!("https://localhost:{}/hook", addr.port()),
            WebhookFormat::Generic,
            HttpClient::default(),
        ),
        on_failure,
    );
    assert!(n.send(go_panic()));
    let f = recv(&mut failed, T).await;
    assert_eq!(f.tries, 2);
    assert_eq!(
        f.to_string(),
        "alert `crashed` via notify.webhook failed after 2 tries: \
         TLS: certificate not trusted (unknown issuer) for localhost"
    );
    n.shutdown(T).await;
}

#[tokio::test]
async fn https_webhook_with_insecure_skip_verify() {
    let pki = pki(&["other.test"]);
    let (addr, mut seen) = https_server(pki.server.clone(), vec![OK]).await;
    let (on_failure, mut failed) = failures();
    let n = Notifier::spawn(
        notifier_config(
            &format!("https://localhost:{}/hook", addr.port()),
            WebhookFormat::Generic,
            insecure(),
        ),
        on_failure,
    );
    assert!(n.send(go_panic()));
    recv(&mut seen, T).await.request();
    assert_eq!(n.shutdown(T).await, 0);
    assert!(failed.try_recv().is_err());
}

// Each preset as the receiver gets it, against the shape its service documents (see
// src/webhook.rs for the documents followed).

const ERRCODE_OK: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"errcode\":0,\"errmsg\":\"ok\"}";

fn lines_of(text: &str) -> Vec<&str> {
    text.lines().map(str::trim_end).collect()
}

#[tokio::test]
async fn dingtalk_preset() {
    let (v, failed) = deliver(WebhookFormat::DingTalk, ERRCODE_OK, go_panic()).await;
    assert!(failed.is_none(), "{failed:?}");
    assert_eq!(v["msgtype"], "markdown");
    let md = &v["markdown"];
    assert_eq!(md["title"], "tend: web crashed on box1");
    let text = md["text"].as_str().unwrap();
    let lines = lines_of(text);
    assert_eq!(lines[0], "### tend: web crashed on box1");
    assert!(lines.contains(&SUMMARY), "{text}");
    assert!(lines.contains(&"**exit:** code 2"), "{text}");
    assert!(
        lines.contains(&"> panic: runtime error: index out of range [5] with length 3"),
        "{text}"
    );
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
}

#[tokio::test]
async fn dingtalk_refusal_in_a_200_is_a_failure() {
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 53\r\n\r\n{\"errcode\":310000,\"errmsg\":\"keywords not in content\"}";
    let (_, failed) = deliver(WebhookFormat::DingTalk, answer, go_panic()).await;
    let f = failed.expect("a refusal must be reported");
    assert_eq!(
        f.error,
        "DingTalk refused the message: errcode 310000: keywords not in content"
    );
}

#[tokio::test]
async fn wecom_preset() {
    let (v, failed) = deliver(WebhookFormat::WeCom, ERRCODE_OK, go_panic()).await;
    assert!(failed.is_none(), "{failed:?}");
    assert_eq!(v["msgtype"], "markdown");
    let content = v["markdown"]["content"].as_str().unwrap();
    // WeCom's markdown content is limited to 4096 bytes.
    assert!(content.len() <= 4096);
    let lines = lines_of(content);
    assert_eq!(lines[0], "### tend: web crashed on box1");
    assert!(lines.contains(&"**service:** web"), "{content}");
    assert!(lines.contains(&"> main.main()"), "{content}");
    assert_eq!(v["markdown"].as_object().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn feishu_preset_and_a_chunked_refusal() {
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 38\r\n\r\n{\"code\":0,\"data\":{},\"msg\":\"success\"}\r\n";
    let (v, failed) = deliver(WebhookFormat::Feishu, ok, go_panic()).await;
    assert!(failed.is_none(), "{failed:?}");
    assert_eq!(v["msg_type"], "post");
    let post = &v["content"]["post"]["zh_cn"];
    assert_eq!(post["title"], "tend: web crashed on box1");
    let paragraphs = post["content"].as_array().unwrap();
    for p in paragraphs {
        for element in p.as_array().unwrap() {
            assert_eq!(element["tag"], "text", "{element}");
            assert!(element["text"].is_string(), "{element}");
        }
    }
    assert_eq!(paragraphs[0][0]["text"], SUMMARY);
    let all: Vec<&str> = paragraphs
        .iter()
        .map(|p| p[0]["text"].as_str().unwrap())
        .collect();
    assert!(all.contains(&"exit: code 2"), "{all:?}");
    assert!(all.contains(&"  goroutine 1 [running]:"), "{all:?}");

    // Feishu answers a bad signature with HTTP 200 and a code, here in a chunked body.
    let refused = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                   14\r\n{\"code\":19021,\"msg\":\r\n\
                   1c\r\n\"sign match fail\",\"data\":{}}\r\n0\r\n\r\n";
    let (_, failed) = deliver(WebhookFormat::Feishu, refused, go_panic()).await;
    assert_eq!(
        failed.expect("refused").error,
        "Feishu refused the message: code 19021: sign match fail"
    );
}

#[tokio::test]
async fn slack_preset_and_its_error_body() {
    let (v, failed) = deliver(WebhookFormat::Slack, OK, go_panic()).await;
    assert!(failed.is_none(), "{failed:?}");
    // `text` is the notification and the fallback; blocks carry the layout.
    assert_eq!(v["text"], SUMMARY);
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(blocks[0]["text"]["text"], "tend: web crashed on box1");
    for b in &blocks[1..] {
        assert_eq!(b["type"], "section", "{b}");
    }
    let fields = blocks[2]["fields"].as_array().unwrap();
    assert!(fields.len() <= 10, "Slack allows 10 fields");
    assert!(fields.iter().all(|f| f["type"] == "mrkdwn"));
    let last = blocks.last().unwrap()["text"]["text"].as_str().unwrap();
    assert!(
        last.starts_with("*last stderr*\n```panic: runtime error"),
        "{last}"
    );

    let bad = "HTTP/1.1 400 Bad Request\r\nContent-Length: 15\r\n\r\ninvalid_payload";
    let (_, failed) = deliver(WebhookFormat::Slack, bad, go_panic()).await;
    let e = failed.expect("a 400 fails").error;
    assert!(
        e.starts_with("HTTP 400 after ") && e.ends_with(" ms: invalid_payload"),
        "{e}"
    );
}

#[tokio::test]
async fn teams_preset() {
    let accepted = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
    let (v, failed) = deliver(WebhookFormat::Teams, accepted, go_panic()).await;
    assert!(failed.is_none(), "{failed:?}");
    // The checklist of connectors-using.md: type "message", an attachments array, the
    // Adaptive Card content type, the card in `content`.
    assert_eq!(v["type"], "message");
    let attachments = v["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    let a = &attachments[0];
    assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
    assert!(a["contentUrl"].is_null());
    let card = &a["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.2");
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    let body = card["body"].as_array().unwrap();
    assert_eq!(body[0]["type"], "TextBlock");
    assert_eq!(body[0]["text"], "tend: web crashed on box1");
    assert_eq!(body[1]["text"], SUMMARY);
    assert_eq!(body[2]["type"], "FactSet");
    let facts = body[2]["facts"].as_array().unwrap();
    assert!(
        facts
            .iter()
            .any(|f| f["title"] == "exit" && f["value"] == "code 2")
    );
    let mono = body.last().unwrap();
    assert_eq!(mono["fontType"], "Monospace");
    assert!(mono["text"].as_str().unwrap().contains("main.main()"));
}

#[tokio::test]
async fn dingtalk_signed_with_secret() {
    let secret = "SECtest";
    let (target, v, failed) = deliver_signed(
        WebhookFormat::DingTalk,
        Some(secret),
        ERRCODE_OK,
        go_panic(),
    )
    .await;
    assert!(failed.is_none(), "{failed:?}");
    assert_eq!(v["msgtype"], "markdown");
    // The URL's own query, then timestamp (ms) and sign, as DingTalk's "sign" setting wants.
    let query = target.strip_prefix("/hook?key=k&").expect(&target);
    let ms: u64 = query
        .strip_prefix("timestamp=")
        .and_then(|r| r.split('&').next())
        .and_then(|t| t.parse().ok())
        .expect(&target);
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    let age = SystemTime::now().duration_since(at).unwrap();
    assert!(age < T, "a fresh timestamp: {age:?}");
    let Some(Signature::Query(want)) = sign(WebhookFormat::DingTalk, secret, at) else {
        panic!()
    };
    assert_eq!(query, want);
}

#[tokio::test]
async fn feishu_signed_with_secret() {
    let ok =
        "HTTP/1.1 200 OK\r\nContent-Length: 36\r\n\r\n{\"code\":0,\"data\":{},\"msg\":\"success\"}";
    let secret = "SECtest";
    let (target, v, failed) =
        deliver_signed(WebhookFormat::Feishu, Some(secret), ok, go_panic()).await;
    assert!(failed.is_none(), "{failed:?}");
    assert_eq!(target, "/hook?key=k", "Feishu signs in the body");
    assert_eq!(v["msg_type"], "post");
    let secs: u64 = v["timestamp"].as_str().unwrap().parse().unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    let Some(Signature::Body {
        timestamp,
        sign: want,
    }) = sign(WebhookFormat::Feishu, secret, at)
    else {
        panic!()
    };
    assert_eq!(v["timestamp"], timestamp);
    assert_eq!(v["sign"], want);
}
