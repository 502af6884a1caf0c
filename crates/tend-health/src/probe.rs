//! Health probes. Each returns a [`ProbeOutcome`] with a sentence an operator can act on
//! ("HTTP 503 after 12 ms", "connect refused (127.0.0.1:8080)", "timed out after 2s"),
//! never a bare bool: the reason ends up in the log, the status, and the alert.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::command::{self, PreparedCommand, RunError};
use crate::fmt::millis;
use crate::http::{self, HttpClient, HttpError, HttpUrl};
use crate::spec::{CheckSpec, TcpTarget};

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The check passed.
    Healthy {
        /// What was seen, e.g. "HTTP 200 after 3 ms".
        detail: String,
        /// How long the probe took.
        took: Duration,
    },
    /// The check failed.
    Unhealthy {
        /// Why, e.g. "HTTP 503 after 12 ms".
        reason: String,
        /// How long the probe took.
        took: Duration,
    },
}

impl ProbeOutcome {
    /// Whether the check passed.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy { .. })
    }

    /// The detail or the reason.
    #[must_use]
    pub fn text(&self) -> &str {
        match self {
            Self::Healthy { detail, .. } => detail,
            Self::Unhealthy { reason, .. } => reason,
        }
    }

    /// How long the probe took.
    #[must_use]
    pub fn took(&self) -> Duration {
        match self {
            Self::Healthy { took, .. } | Self::Unhealthy { took, .. } => *took,
        }
    }

    fn unhealthy(reason: impl Into<String>, began: Instant) -> Self {
        Self::Unhealthy {
            reason: reason.into(),
            took: began.elapsed(),
        }
    }
}

/// A configured probe, ready to run repeatedly. Cheap to clone, so a runtime can move a copy
/// into a spawned task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// GET; 2xx is healthy. The client carries the TLS trust of `[health]`.
    Http(HttpUrl, HttpClient),
    /// Connect; success is healthy.
    Tcp(TcpTarget),
    /// Run; exit code 0 is healthy.
    Command(PreparedCommand),
}

impl Probe {
    /// The probe for `health.http|tcp|command`; a command runs like the service's own, in
    /// `working_dir` with `env`.
    #[must_use]
    pub fn new(check: &CheckSpec, working_dir: &Path, env: &[(String, String)]) -> Self {
        match check {
            CheckSpec::Http(check) => {
                Self::Http(check.url.clone(), HttpClient::new(check.tls.clone()))
            }
            CheckSpec::Tcp(t) => Self::Tcp(t.clone()),
            CheckSpec::Command(c) => Self::Command(PreparedCommand::new(c, working_dir, env)),
        }
    }

    /// Runs the probe once, within `timeout`.
    pub async fn run(&self, timeout: Duration) -> ProbeOutcome {
        match self {
            Self::Http(url, client) => probe_http(url, client, timeout).await,
            Self::Tcp(t) => probe_tcp(t, timeout).await,
            Self::Command(c) => probe_command(c, timeout).await,
        }
    }
}

/// GET `url`: 2xx is healthy ("HTTP 200 after 3 ms"), anything else is not ("HTTP 503 after
/// 12 ms"). Redirects are not followed: a 3xx is unhealthy, which points at a wrong URL. An
/// `https://` URL is checked against `client`'s trust; a refused certificate is the reason
/// ("TLS: certificate not trusted (unknown issuer) for api.example.com").
pub async fn probe_http(url: &HttpUrl, client: &HttpClient, timeout: Duration) -> ProbeOutcome {
    let began = Instant::now();
    match client.get(url, timeout).await {
        Ok(r) => {
            let text = format!("HTTP {} after {} ms", r.status, millis(r.took));
            if r.is_success() {
                ProbeOutcome::Healthy {
                    detail: text,
                    took: r.took,
                }
            } else {
                ProbeOutcome::Unhealthy {
                    reason: text,
                    took: r.took,
                }
            }
        }
        Err(e) => ProbeOutcome::unhealthy(e.to_string(), began),
    }
}

/// Connect to `target`: success is healthy ("connected after 1 ms").
pub async fn probe_tcp(target: &TcpTarget, timeout: Duration) -> ProbeOutcome {
    let began = Instant::now();
    match tokio::time::timeout(timeout, http::connect(target.host(), target.port())).await {
        Ok(Ok(stream)) => {
            let took = began.elapsed();
            drop(stream);
            ProbeOutcome::Healthy {
                detail: format!("connected after {} ms", millis(took)),
                took,
            }
        }
        Ok(Err(e)) => ProbeOutcome::unhealthy(e.to_string(), began),
        Err(_) => {
            ProbeOutcome::unhealthy(HttpError::TimedOut { after: timeout }.to_string(), began)
        }
    }
}

/// Run `cmd`: exit code 0 is healthy. A failure's reason carries the last line the command
/// printed ("command exited with code 1: disk full"). Killed after `timeout`.
pub async fn probe_command(cmd: &PreparedCommand, timeout: Duration) -> ProbeOutcome {
    let began = Instant::now();
    match command::run(cmd, &[], None, timeout).await {
        Ok(ran) => {
            let what = format!("command {}", command::describe(ran.status));
            if ran.status.success() {
                ProbeOutcome::Healthy {
                    detail: format!("{what} after {} ms", millis(ran.took)),
                    took: ran.took,
                }
            } else {
                let reason = match ran.last_line {
                    Some(line) => format!("{what}: {line}"),
                    None => what,
                };
                ProbeOutcome::Unhealthy {
                    reason,
                    took: ran.took,
                }
            }
        }
        Err(e @ (RunError::Spawn { .. } | RunError::TimedOut(_) | RunError::Wait { .. })) => {
            ProbeOutcome::unhealthy(e.to_string(), began)
        }
    }
}
