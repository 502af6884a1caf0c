//! Alerts: a background sender that never blocks the supervisor.
//!
//! [`Notifier::send`] is a plain function that queues the alert and returns at once; a
//! spawned task delivers it to `notify.command` and/or `notify.webhook`, each try bounded by
//! a timeout, retried with exponential backoff. The queue is bounded: when alerts come faster
//! than they can be delivered (a dead webhook during a crash loop) the *oldest* is dropped and
//! counted, so the latest news (`gave_up`) is the one that gets through. Failures are
//! reported through a callback so the runtime can log them; they never stop supervision.
//!
//! The webhook body is shaped by `notify.format` (see [`crate::webhook`]); the generic one,
//! also on the command's stdin, is this JSON object:
//! `{"service","host","event","time","restarts","exit_code","signal","reason","last_stderr",
//! "from_release","to_release","text"}`; absent values are `null`, `last_stderr` is a list of lines (empty when the
//! program wrote nothing to stderr). The command also gets `TEND_SERVICE`, `TEND_HOST`,
//! `TEND_EVENT`, `TEND_TIME`, `TEND_RESTARTS` and, when known, `TEND_EXIT_CODE`,
//! `TEND_SIGNAL`, `TEND_REASON`, `TEND_LAST_STDERR` (the lines, newline-separated),
//! `TEND_FROM_RELEASE`, `TEND_TO_RELEASE`.

use std::collections::VecDeque;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::alert::rfc3339;
pub use crate::alert::{Alert, ReleaseChange, payload};
use crate::command::{self, PreparedCommand};
use crate::http::{HttpClient, HttpUrl};
use crate::spec::{AlertKind, NotifySpec, Secret, WebhookFormat};
use crate::webhook;

/// Delivery tuning. The defaults are what tend uses; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyOptions {
    /// Bound of one try (the command is killed, the connection dropped).
    pub timeout: Duration,
    /// Tries per alert and channel (>= 1).
    pub tries: u32,
    /// Wait before the second try; doubles for each further one.
    pub first_retry: Duration,
    /// Alerts waiting at most; beyond that the oldest is dropped.
    pub queue: usize,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            tries: 3,
            first_retry: Duration::from_secs(1),
            queue: 64,
        }
    }
}

/// Everything the notifier needs, resolved.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// The service name in the payload.
    pub service: String,
    /// The host name in the payload.
    pub host: String,
    /// `notify.command`, prepared like the service's own command.
    pub command: Option<PreparedCommand>,
    /// `notify.webhook`.
    pub webhook: Option<HttpUrl>,
    /// `notify.format`: the shape of the webhook body.
    pub format: WebhookFormat,
    /// `notify.secret`: signs each try for DingTalk and Feishu robots set to "sign".
    pub secret: Option<Secret>,
    /// Sends to the webhook with the TLS trust of `notify.ca_file` /
    /// `notify.insecure_skip_verify`.
    pub client: HttpClient,
    /// `notify.events`.
    pub events: Vec<AlertKind>,
    /// Timeouts, retries, queue size.
    pub options: NotifyOptions,
}

impl NotifierConfig {
    /// From `[notify]`; the command runs in `working_dir` with `env`, like hooks.
    #[must_use]
    pub fn new(
        service: &str,
        spec: &NotifySpec,
        working_dir: &Path,
        env: &[(String, String)],
    ) -> Self {
        Self {
            service: service.into(),
            host: hostname(),
            command: spec
                .command
                .as_ref()
                .map(|c| PreparedCommand::new(c, working_dir, env)),
            webhook: spec.webhook.clone(),
            format: spec.format,
            secret: spec.secret.clone(),
            client: HttpClient::new(spec.tls.clone()),
            events: spec.events.clone(),
            options: NotifyOptions::default(),
        }
    }
}

/// Where an alert was going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `notify.command`.
    Command,
    /// `notify.webhook`.
    Webhook,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Command => "notify.command",
            Self::Webhook => "notify.webhook",
        })
    }
}

/// An alert that could not be delivered after every try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    /// Which channel.
    pub channel: Channel,
    /// Which alert.
    pub event: AlertKind,
    /// How many tries were made.
    pub tries: u32,
    /// The last error, readable.
    pub error: String,
}

impl fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "alert `{}` via {} failed after {} tr{}: {}",
            self.event,
            self.channel,
            self.tries,
            if self.tries == 1 { "y" } else { "ies" },
            self.error
        )
    }
}

type OnFailure = Arc<dyn Fn(DeliveryFailure) + Send + Sync>;

struct Queue {
    items: VecDeque<Alert>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
    dropped: AtomicU64,
    busy: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent (push/pop
        // only), so a poisoned lock is still usable.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The alert sender of one service. Dropping it lets queued alerts finish in the
/// background; [`shutdown`](Self::shutdown) waits for them.
pub struct Notifier {
    shared: Arc<Shared>,
    events: Vec<AlertKind>,
    capacity: usize,
    worker: Option<JoinHandle<()>>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("events", &self.events)
            .field("capacity", &self.capacity)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Starts the delivery task on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(
        config: NotifierConfig,
        on_failure: impl Fn(DeliveryFailure) + Send + Sync + 'static,
    ) -> Self {
        let capacity = config.options.queue.max(1);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: VecDeque::with_capacity(capacity),
                closed: false,
            }),
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
            busy: AtomicBool::new(false),
        });
        let events = config.events.clone();
        let worker = tokio::spawn(worker(shared.clone(), config, Arc::new(on_failure)));
        Self {
            shared,
            events,
            capacity,
            worker: Some(worker),
        }
    }

    /// Queues `alert` and returns at once. `false` when its event is not in
    /// `notify.events` (nothing is sent) or the notifier is shut down.
    pub fn send(&self, alert: Alert) -> bool {
        if !self.events.contains(&alert.event) {
            return false;
        }
        {
            let mut q = self.shared.lock();
            if q.closed {
                return false;
            }
            if q.items.len() >= self.capacity {
                q.items.pop_front();
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.items.push_back(alert);
        }
        self.shared.wake.notify_one();
        true
    }

    /// Alerts dropped because the queue was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Stops taking alerts and waits up to `within` for the queued ones to be delivered
    /// (tend calls this before exiting, so a `gave_up` alert is not lost). Returns how many
    /// were still undelivered when the time ran out (they are abandoned).
    pub async fn shutdown(mut self, within: Duration) -> usize {
        self.close();
        let Some(mut worker) = self.worker.take() else {
            return 0;
        };
        if tokio::time::timeout(within, &mut worker).await.is_ok() {
            return 0;
        }
        worker.abort();
        let busy = usize::from(self.shared.busy.load(Ordering::Relaxed));
        self.shared.lock().items.len() + busy
    }

    fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // The worker drains what is queued, then ends.
        self.close();
    }
}

async fn worker(shared: Arc<Shared>, config: NotifierConfig, on_failure: OnFailure) {
    loop {
        let next = {
            let mut q = shared.lock();
            match q.items.pop_front() {
                Some(alert) => {
                    shared.busy.store(true, Ordering::Relaxed);
                    Some(alert)
                }
                None if q.closed => return,
                None => None,
            }
        };
        match next {
            Some(alert) => {
                deliver(&config, &alert, &on_failure).await;
                shared.busy.store(false, Ordering::Relaxed);
            }
            // `notify_one` keeps a permit when nobody waits, so a send between the check
            // above and this await is not missed.
            None => shared.wake.notified().await,
        }
    }
}

async fn deliver(config: &NotifierConfig, alert: &Alert, on_failure: &OnFailure) {
    let body = payload(&config.service, &config.host, alert).to_string();
    let body = body.as_str();
    let opts = config.options;
    let to_command = async {
        let cmd = config.command.as_ref()?;
        let env = env_vars(&config.service, &config.host, alert);
        let env = env.as_slice();
        retry(opts, || async move {
            match command::run(cmd, env, Some(body.as_bytes().to_vec()), opts.timeout).await {
                Ok(ran) if ran.status.success() => Ok(()),
                Ok(ran) => Err(match ran.last_line {
                    Some(line) => format!("command {}: {line}", command::describe(ran.status)),
                    None => format!("command {}", command::describe(ran.status)),
                }),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .err()
        .map(|(tries, error)| (Channel::Command, tries, error))
    };
    let to_webhook = async {
        let url = config.webhook.as_ref()?;
        let shaped = &webhook::body(config.format, &config.service, &config.host, alert);
        let policy = webhook::body_policy(config.format);
        retry(opts, || async move {
            // Signed at every try: the services refuse an old timestamp.
            let signature = config
                .secret
                .as_ref()
                .and_then(|s| webhook::sign(config.format, s.expose(), SystemTime::now()));
            let (url, body) = webhook::signed(url, shaped, signature);
            match config
                .client
                .post_json(&url, body.to_string().as_bytes(), policy, opts.timeout)
                .await
            {
                Ok(r) => webhook::judge(config.format, &r),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .err()
        .map(|(tries, error)| (Channel::Webhook, tries, error))
    };
    let (a, b) = tokio::join!(to_command, to_webhook);
    for (channel, tries, error) in a.into_iter().chain(b) {
        on_failure(DeliveryFailure {
            channel,
            event: alert.event,
            tries,
            error,
        });
    }
}

/// Tries up to `opts.tries` times, waiting `first_retry`, then twice that, and so on.
async fn retry<F, Fut>(opts: NotifyOptions, mut attempt: F) -> Result<(), (u32, String)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let tries = opts.tries.max(1);
    let mut wait = opts.first_retry;
    let mut last = String::new();
    for n in 1..=tries {
        match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if n < tries {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
    Err((tries, last))
}

fn env_vars(service: &str, host: &str, alert: &Alert) -> Vec<(String, String)> {
    let mut env = vec![
        ("TEND_SERVICE".to_owned(), service.to_owned()),
        ("TEND_HOST".to_owned(), host.to_owned()),
        ("TEND_EVENT".to_owned(), alert.event.as_str().to_owned()),
        ("TEND_TIME".to_owned(), rfc3339(alert.time)),
        ("TEND_RESTARTS".to_owned(), alert.restarts.to_string()),
    ];
    if let Some(c) = alert.exit_code {
        env.push(("TEND_EXIT_CODE".into(), c.to_string()));
    }
    if let Some(s) = alert.signal {
        env.push(("TEND_SIGNAL".into(), s.to_string()));
    }
    if let Some(r) = &alert.reason {
        env.push(("TEND_REASON".into(), r.clone()));
    }
    if !alert.last_stderr.is_empty() {
        env.push(("TEND_LAST_STDERR".into(), alert.last_stderr.join("\n")));
    }
    if let Some(r) = &alert.release {
        env.push(("TEND_FROM_RELEASE".into(), r.from.clone()));
        env.push(("TEND_TO_RELEASE".into(), r.to.clone()));
    }
    env
}

/// This machine's name, for payloads.
#[must_use]
pub fn hostname() -> String {
    #[cfg(unix)]
    {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into())
    }
    #[cfg(windows)]
    {
        std::env::var("COMPUTERNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_shape() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let alert = Alert {
            exit_code: Some(3),
            restarts: 2,
            ..Alert::new(AlertKind::Crashed, t)
        };
        let v = payload("web", "box1", &alert);
        assert_eq!(v["service"], "web");
        assert_eq!(v["host"], "box1");
        assert_eq!(v["event"], "crashed");
        assert_eq!(v["restarts"], 2);
        assert_eq!(v["exit_code"], 3);
        assert!(v["signal"].is_null());
        assert!(v["reason"].is_null());
        assert_eq!(v["text"], "web on box1: crashed (exit code 3)");
        let time = v["time"].as_str().unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(time).unwrap();
        assert_eq!(parsed.timestamp(), 1_700_000_000, "{time}");

        let unhealthy = Alert {
            reason: Some("HTTP 503 after 2 ms".into()),
            ..Alert::new(AlertKind::Unhealthy, t)
        };
        assert_eq!(
            payload("web", "box1", &unhealthy)["text"],
            "web on box1: unhealthy: HTTP 503 after 2 ms"
        );
        let env = env_vars("web", "box1", &unhealthy);
        assert!(env.contains(&("TEND_REASON".into(), "HTTP 503 after 2 ms".into())));
        assert!(!env.iter().any(|(k, _)| k == "TEND_EXIT_CODE"));
        assert!(!env.iter().any(|(k, _)| k == "TEND_LAST_STDERR"));
        assert_eq!(
            payload("web", "box1", &unhealthy)["last_stderr"],
            serde_json::json!([])
        );

        // The program's last words travel with a crash.
        let crashed = Alert {
            exit_code: Some(1),
            last_stderr: vec!["starting".into(), "bind: address already in use".into()],
            ..Alert::new(AlertKind::Crashed, t)
        };
        let v = payload("web", "box1", &crashed);
        assert_eq!(
            v["last_stderr"],
            serde_json::json!(["starting", "bind: address already in use"])
        );
        assert_eq!(
            v["text"],
            "web on box1: crashed (exit code 1); last stderr: bind: address already in use"
        );
        let env = env_vars("web", "box1", &crashed);
        assert!(env.contains(&(
            "TEND_LAST_STDERR".into(),
            "starting\nbind: address already in use".into()
        )));
    }

    #[test]
    fn failure_text() {
        let f = DeliveryFailure {
            channel: Channel::Webhook,
            event: AlertKind::GaveUp,
            tries: 3,
            error: "connect refused (127.0.0.1:9)".into(),
        };
        assert_eq!(
            f.to_string(),
            "alert `gave_up` via notify.webhook failed after 3 tries: connect refused (127.0.0.1:9)"
        );
    }
}
