//! `notify.format`: the webhook body shaped for the chat tool that receives it, and how that
//! tool says an alert was refused.
//!
//! Every preset carries the same facts as the generic JSON: the one-line summary, the event,
//! service, host, time, exit (code or signal), reason, restarts and the `last_stderr` lines.
//! The shapes follow each service's documented incoming-webhook message:
//! - DingTalk custom robot (open.dingtalk.com, "custom robot access" / "message types"):
//!   `{"msgtype":"markdown","markdown":{"title","text"}}`; it answers HTTP 200 with
//!   `{"errcode":0,"errmsg":"ok"}`, and a refusal (missing keyword, bad signature, IP not
//!   allowed) is also HTTP 200, with `errcode` 310000 and the cause in `errmsg`.
//! - WeCom group robot (developer.work.weixin.qq.com, document 91770, "群机器人配置说明"):
//!   `{"msgtype":"markdown","markdown":{"content"}}`, content at most 4096 bytes; the answer
//!   is `{"errcode":0,"errmsg":"ok"}`, errors in the same fields with HTTP 200.
//! - Feishu / Lark custom bot (open.feishu.cn, "自定义机器人使用指南"): rich text,
//!   `{"msg_type":"post","content":{"post":{"zh_cn":{"title","content":[[{"tag":"text",
//!   "text"}]]}}}}`; success is `{"code":0,"msg":"success"}` (older bots answer
//!   `{"StatusCode":0}`), a refusal a non-zero `code` with HTTP 200.
//! - Slack incoming webhooks (docs.slack.dev, "Sending messages using incoming webhooks"):
//!   `{"text", "blocks"}`, where `text` is the notification and fallback text; errors are
//!   4xx with a short body such as `invalid_payload` or `no_text`.
//! - Microsoft Teams (MicrosoftDocs/msteams-docs, connectors-using.md, "Send adaptive cards
//!   using an incoming webhook"; the same body is what a Teams Workflows "post to a channel
//!   when a webhook request is received" flow takes): `{"type":"message","attachments":[{
//!   "contentType":"application/vnd.microsoft.card.adaptive","contentUrl":null,"content":
//!   {AdaptiveCard 1.2}}]}`. A connector that is throttled answers 2xx with "Microsoft Teams
//!   endpoint returned HTTP error 429" in the body (same document), which counts as a
//!   failure here, so it is retried.
//!
//! The title of every preset starts with `tend`, so a DingTalk robot secured by the keyword
//! `tend` accepts it.
//!
//! `notify.secret` signs for a robot whose security setting is "sign" ([`Signature`]):
//! DingTalk takes `timestamp` (ms) and `sign` = Base64(HMAC-SHA256(key = secret, message =
//! "timestamp\nsecret")) as URL parameters; Feishu takes `timestamp` (s) and `sign` =
//! Base64(HMAC-SHA256(key = "timestamp\nsecret", message = empty)) in the body. Both refuse a
//! timestamp more than an hour off, so it is taken at every try.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::alert::{Alert, payload, rfc3339, summary};
use crate::http::{BodyPolicy, HttpUrl, Response};
use crate::spec::WebhookFormat;

/// The body to POST for `alert` in `format`.
#[must_use]
pub fn body(format: WebhookFormat, service: &str, host: &str, alert: &Alert) -> Value {
    let facts = Facts::new(service, host, alert);
    match format {
        WebhookFormat::Generic => payload(service, host, alert),
        WebhookFormat::DingTalk => json!({
            "msgtype": "markdown",
            "markdown": { "title": facts.title, "text": facts.markdown(MarkdownFlavor::DingTalk) },
        }),
        WebhookFormat::WeCom => json!({
            "msgtype": "markdown",
            // WeCom refuses markdown content over 4096 bytes.
            "markdown": { "content": clip_bytes(&facts.markdown(MarkdownFlavor::WeCom), 4096) },
        }),
        WebhookFormat::Feishu => feishu(&facts),
        WebhookFormat::Slack => slack(&facts),
        WebhookFormat::Teams => teams(&facts),
    }
}

/// Where a signature goes, for one try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// DingTalk: these parameters (percent-encoded) are added to the URL's query.
    Query(String),
    /// Feishu: these fields are added to the body.
    Body {
        /// seconds since the epoch, as a string (as Feishu's documentation sends it)
        timestamp: String,
        /// the Base64 signature
        sign: String,
    },
}

/// The signature of one try made at `now` with `secret`, for the formats that sign
/// (`None` for the others).
#[must_use]
pub fn sign(format: WebhookFormat, secret: &str, now: SystemTime) -> Option<Signature> {
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    match format {
        WebhookFormat::DingTalk => {
            let ts = since.as_millis();
            let mac = hmac_sha256(secret.as_bytes(), format!("{ts}\n{secret}").as_bytes());
            Some(Signature::Query(format!(
                "timestamp={ts}&sign={}",
                percent_encode(&base64(&mac))
            )))
        }
        WebhookFormat::Feishu => {
            let ts = since.as_secs();
            let mac = hmac_sha256(format!("{ts}\n{secret}").as_bytes(), b"");
            Some(Signature::Body {
                timestamp: ts.to_string(),
                sign: base64(&mac),
            })
        }
        _ => None,
    }
}

/// `url` and `body` of one try, with `signature` applied.
pub(crate) fn signed(
    url: &HttpUrl,
    body: &Value,
    signature: Option<Signature>,
) -> (HttpUrl, Value) {
    match signature {
        None => (url.clone(), body.clone()),
        Some(Signature::Query(pairs)) => (url.with_query(&pairs), body.clone()),
        Some(Signature::Body { timestamp, sign }) => {
            let mut body = body.clone();
            if let Some(obj) = body.as_object_mut() {
                obj.insert("timestamp".into(), Value::String(timestamp));
                obj.insert("sign".into(), Value::String(sign));
            }
            (url.clone(), body)
        }
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, message).as_ref().to_vec()
}

/// Standard Base64 with padding (RFC 4648 section 4), as both services expect.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether the response body is needed to judge a delivery.
#[must_use]
pub fn body_policy(format: WebhookFormat) -> BodyPolicy {
    match format {
        // These answer HTTP 200 to a refused message and say so in the body.
        WebhookFormat::DingTalk
        | WebhookFormat::WeCom
        | WebhookFormat::Feishu
        | WebhookFormat::Teams => BodyPolicy::Always,
        WebhookFormat::Generic | WebhookFormat::Slack => BodyPolicy::OnError,
    }
}

/// Judges a response: `Err` with a readable reason when the receiver refused the alert
/// (`HTTP 400 after 12 ms: invalid_payload`, `DingTalk errcode 310000: keywords not in
/// content`).
///
/// # Errors
/// A non-2xx status, or a 2xx whose body says the message was refused.
pub fn judge(format: WebhookFormat, r: &Response) -> Result<(), String> {
    let text = String::from_utf8_lossy(&r.body);
    let text = text.trim();
    if !r.is_success() {
        let mut e = format!("HTTP {} after {} ms", r.status, crate::fmt::millis(r.took));
        if !text.is_empty() {
            e.push_str(": ");
            e.push_str(&one_line(text, 200));
        }
        return Err(e);
    }
    let json = || serde_json::from_str::<Value>(text).ok();
    let refused = |code_key: &str, msg_key: &str, who: &str| -> Result<(), String> {
        // A body that is not the documented JSON proves nothing: the 2xx stands.
        let Some(v) = json() else { return Ok(()) };
        match v.get(code_key).and_then(Value::as_i64) {
            Some(0) | None => Ok(()),
            Some(code) => Err(format!(
                "{who} refused the message: {code_key} {code}: {}",
                v.get(msg_key)
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)")
            )),
        }
    };
    match format {
        WebhookFormat::DingTalk => refused("errcode", "errmsg", "DingTalk"),
        WebhookFormat::WeCom => refused("errcode", "errmsg", "WeCom"),
        WebhookFormat::Feishu => {
            let v = json();
            if v.as_ref().is_some_and(|v| v.get("code").is_some()) {
                refused("code", "msg", "Feishu")
            } else {
                refused("StatusCode", "StatusMessage", "Feishu")
            }
        }
        WebhookFormat::Teams if text.contains("returned HTTP error") => {
            Err(format!("Teams: {}", one_line(text, 200)))
        }
        _ => Ok(()),
    }
}

/// `s` cut to at most `max` characters, with `...` at the end when cut (chat tools refuse
/// texts over their limits instead of shortening them).
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

/// `s` cut to at most `max` bytes, at a character boundary, with `...` when cut.
fn clip_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// `s` on one line (control characters become spaces), [`clip`]ped to `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    clip(&flat, max)
}

/// What every preset shows, in display order.
struct Facts {
    /// `tend: web crashed on box1`
    title: String,
    /// The one-line summary of the generic payload's `text`.
    summary: String,
    /// (label, value) rows: event, service, host, exit, restarts, time.
    rows: Vec<(&'static str, String)>,
    reason: Option<String>,
    last_stderr: Vec<String>,
}

impl Facts {
    fn new(service: &str, host: &str, alert: &Alert) -> Self {
        let mut rows = vec![
            ("event", alert.event.as_str().to_owned()),
            ("service", service.to_owned()),
            ("host", host.to_owned()),
        ];
        if let Some(code) = alert.exit_code {
            rows.push(("exit", format!("code {code}")));
        }
        if let Some(sig) = alert.signal {
            rows.push(("exit", format!("signal {sig}")));
        }
        rows.push(("restarts", alert.restarts.to_string()));
        rows.push(("time", rfc3339(alert.time)));
        Self {
            title: format!("tend: {service} {} on {host}", alert.event),
            summary: summary(service, host, alert),
            rows,
            reason: alert.reason.clone(),
            last_stderr: alert.last_stderr.clone(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MarkdownFlavor {
    DingTalk,
    WeCom,
}

impl Facts {
    /// DingTalk and WeCom markdown: a heading, the summary, the facts, the stderr lines as a
    /// quote. Both render only a subset of Markdown (no tables, no code blocks), so the
    /// layout uses headings, bold, line breaks and `>` quotes only.
    fn markdown(&self, flavor: MarkdownFlavor) -> String {
        // DingTalk needs two trailing spaces (or a blank line) for a line break; WeCom
        // breaks at every newline.
        let br = if flavor == MarkdownFlavor::DingTalk {
            "  \n"
        } else {
            "\n"
        };
        let mut s = format!("### {}\n\n{}\n\n", self.title, self.summary);
        for (k, v) in &self.rows {
            s.push_str(&format!("**{k}:** {v}{br}"));
        }
        if let Some(reason) = &self.reason {
            s.push_str(&format!("**reason:** {reason}{br}"));
        }
        if !self.last_stderr.is_empty() {
            s.push_str("\n**last stderr:**\n");
            for line in &self.last_stderr {
                s.push_str(&format!("> {line}{br}"));
            }
        }
        s
    }
}

/// Feishu / Lark rich text ("post"): a title and paragraphs of text elements.
fn feishu(f: &Facts) -> Value {
    let mut paragraphs = vec![vec![json!({ "tag": "text", "text": f.summary })]];
    for (k, v) in &f.rows {
        paragraphs.push(vec![json!({ "tag": "text", "text": format!("{k}: {v}") })]);
    }
    if let Some(reason) = &f.reason {
        paragraphs.push(vec![
            json!({ "tag": "text", "text": format!("reason: {reason}") }),
        ]);
    }
    if !f.last_stderr.is_empty() {
        paragraphs.push(vec![json!({ "tag": "text", "text": "last stderr:" })]);
        for line in &f.last_stderr {
            paragraphs.push(vec![json!({ "tag": "text", "text": format!("  {line}") })]);
        }
    }
    json!({
        "msg_type": "post",
        "content": { "post": { "zh_cn": { "title": f.title, "content": paragraphs } } },
    })
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped (they start links and mentions).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Slack: `text` (the notification and the fallback) plus blocks: a header, the facts as
/// fields, the reason, the stderr lines in a code block.
fn slack(f: &Facts) -> Value {
    // Slack's limits: a header 150 characters, a section's text 3000, a field 2000.
    let fields: Vec<Value> = f
        .rows
        .iter()
        .map(|(k, v)| {
            json!({ "type": "mrkdwn", "text": clip(&format!("*{k}*\n{}", slack_escape(v)), 2000) })
        })
        .collect();
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": clip(&f.title, 150) } }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": clip(&slack_escape(&f.summary), 3000) } }),
        // Slack takes at most 10 fields in a section; tend has at most 7 rows.
        json!({ "type": "section", "fields": fields }),
    ];
    if let Some(reason) = &f.reason {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": clip(&format!("*reason*\n{}", slack_escape(reason)), 3000) },
        }));
    }
    if !f.last_stderr.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {
                "type": "mrkdwn",
                // last_stderr is at most 600 bytes: within the 3000 characters.
                "text": format!("*last stderr*\n```{}```", slack_escape(&f.last_stderr.join("\n"))),
            },
        }));
    }
    json!({ "text": f.summary, "blocks": blocks })
}

/// Teams: one Adaptive Card (1.2, which every Teams client renders): the title, the summary,
/// the facts as a FactSet, the reason, the stderr lines in monospace.
fn teams(f: &Facts) -> Value {
    let facts: Vec<Value> = f
        .rows
        .iter()
        .map(|(k, v)| json!({ "title": k, "value": v }))
        .collect();
    let mut body = vec![
        json!({ "type": "TextBlock", "text": f.title, "weight": "Bolder", "size": "Medium", "wrap": true }),
        json!({ "type": "TextBlock", "text": f.summary, "wrap": true }),
        json!({ "type": "FactSet", "facts": facts }),
    ];
    if let Some(reason) = &f.reason {
        body.push(
            json!({ "type": "TextBlock", "text": format!("reason: {reason}"), "wrap": true }),
        );
    }
    if !f.last_stderr.is_empty() {
        body.push(json!({ "type": "TextBlock", "text": "last stderr:", "weight": "Bolder" }));
        body.push(json!({
            "type": "TextBlock",
            "text": f.last_stderr.join("\n\n"),
            "fontType": "Monospace",
            "wrap": true,
        }));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.2",
                "body": body,
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::spec::AlertKind;

    fn crashed() -> Alert {
        Alert {
            exit_code: Some(2),
            restarts: 3,
            last_stderr: vec![
                "panic: runtime error: index out of range [5] with length 3".into(),
                "goroutine 1 [running]:".into(),
            ],
            ..Alert::new(
                AlertKind::Crashed,
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            )
        }
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            took: Duration::from_millis(5),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn refusals_in_a_200_are_failures() {
        let ok = response(200, r#"{"errcode":0,"errmsg":"ok"}"#);
        assert_eq!(judge(WebhookFormat::DingTalk, &ok), Ok(()));
        assert_eq!(judge(WebhookFormat::WeCom, &ok), Ok(()));
        let keyword = response(
            200,
            r#"{"errcode":310000,"errmsg":"keywords not in content"}"#,
        );
        assert_eq!(
            judge(WebhookFormat::DingTalk, &keyword).unwrap_err(),
            "DingTalk refused the message: errcode 310000: keywords not in content"
        );
        // Generic receivers are judged by the status alone.
        assert_eq!(judge(WebhookFormat::Generic, &keyword), Ok(()));
        let feishu_ok = response(200, r#"{"code":0,"data":{},"msg":"success"}"#);
        assert_eq!(judge(WebhookFormat::Feishu, &feishu_ok), Ok(()));
        let feishu_old = response(200, r#"{"StatusCode":0,"StatusMessage":"success"}"#);
        assert_eq!(judge(WebhookFormat::Feishu, &feishu_old), Ok(()));
        let feishu_bad = response(200, r#"{"code":19021,"msg":"sign match fail","data":{}}"#);
        assert_eq!(
            judge(WebhookFormat::Feishu, &feishu_bad).unwrap_err(),
            "Feishu refused the message: code 19021: sign match fail"
        );
        let throttled = response(200, "Microsoft Teams endpoint returned HTTP error 429");
        assert!(judge(WebhookFormat::Teams, &throttled).is_err());
        assert_eq!(judge(WebhookFormat::Teams, &response(202, "")), Ok(()));
        // An answer that is not the documented JSON does not turn a 2xx into a failure.
        assert_eq!(
            judge(WebhookFormat::WeCom, &response(200, "<html>")),
            Ok(())
        );
        assert_eq!(
            judge(WebhookFormat::Slack, &response(400, "invalid_payload\n")).unwrap_err(),
            "HTTP 400 after 5 ms: invalid_payload"
        );
        assert_eq!(
            judge(WebhookFormat::Generic, &response(503, "")).unwrap_err(),
            "HTTP 503 after 5 ms"
        );
    }

    #[test]
    fn every_preset_carries_the_summary_and_the_last_words() {
        let alert = crashed();
        let summary = summary("web", "box1", &alert);
        for (format, _) in WebhookFormat::ALL {
            let text = body(format, "web", "box1", &alert).to_string();
            // The summary and the last stderr line, JSON-escaped as they appear in the body.
            for needle in [&summary, &alert.last_stderr[0]] {
                let escaped = serde_json::to_string(needle).unwrap();
                let inner = &escaped[1..escaped.len() - 1];
                assert!(text.contains(inner), "{format:?} lacks {needle:?}: {text}");
            }
            assert!(text.contains("box1") && text.contains("crashed"), "{text}");
            if format != WebhookFormat::Generic {
                assert!(
                    text.contains("tend: web crashed on box1"),
                    "{format:?}: {text}"
                );
            }
        }
    }

    #[test]
    fn texts_stay_within_the_services_limits() {
        let long_host = "h".repeat(300);
        let alert = Alert {
            reason: Some("é".repeat(5000)),
            ..crashed()
        };
        let v = body(WebhookFormat::Slack, "web", &long_host, &alert);
        let header = v["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), 150);
        assert!(header.ends_with("..."));
        for b in v["blocks"].as_array().unwrap() {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= 3000, "{}", t.chars().count());
            }
        }
        let v = body(WebhookFormat::WeCom, "web", &long_host, &alert);
        let content = v["markdown"]["content"].as_str().unwrap();
        assert!(
            content.len() <= 4096 && content.ends_with("..."),
            "{}",
            content.len()
        );
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "...");
        assert_eq!(clip_bytes("ééé", 5), "é...");
        assert_eq!(clip_bytes("ééé", 6), "ééé");
        assert_eq!(clip_bytes("éééé", 7), "éé...");
    }

    #[test]
    fn base64_vectors() {
        // RFC 4648 section 10.
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input:?}");
        }
    }

    /// Expected values computed independently (Python's hmac, hashlib and base64) for the
    /// algorithms the two services document.
    #[test]
    fn signatures_match_the_documented_algorithms() {
        let secret = "SEC000test-secret";
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_741_940_813_589);
        assert_eq!(
            sign(WebhookFormat::DingTalk, secret, at),
            Some(Signature::Query(
                "timestamp=1741940813589&sign=iGwdg16ZcdLDVbGpBaBnrB%2F%2FZ9Xe%2Fr4R%2F%2FgI7Y5X4fU%3D"
                    .into()
            ))
        );
        assert_eq!(
            sign(WebhookFormat::Feishu, secret, at),
            Some(Signature::Body {
                timestamp: "1741940813".into(),
                sign: "6lO3SgLmhpZamy8GIFnpTiGyrp9FDlzcB4zK7T48lXA=".into(),
            })
        );
        assert_eq!(sign(WebhookFormat::Slack, secret, at), None);
        let url = HttpUrl::parse("https://h/robot/send?access_token=t").unwrap();
        let (u, _) = signed(&url, &json!({}), sign(WebhookFormat::DingTalk, secret, at));
        assert!(
            u.target()
                .starts_with("/robot/send?access_token=t&timestamp=1741940813589&sign=")
        );
        let (_, b) = signed(
            &url,
            &json!({"msg_type": "post"}),
            sign(WebhookFormat::Feishu, secret, at),
        );
        assert_eq!(b["timestamp"], "1741940813");
        assert_eq!(b["msg_type"], "post");
    }

    #[test]
    fn slack_text_is_escaped_in_blocks() {
        let alert = Alert {
            reason: Some("<script> & co".into()),
            ..crashed()
        };
        let v = body(WebhookFormat::Slack, "web", "box1", &alert);
        let blocks = v["blocks"].to_string();
        assert!(blocks.contains("&lt;script&gt; &amp; co"), "{blocks}");
        assert!(!blocks.contains("<script>"), "{blocks}");
    }
}
