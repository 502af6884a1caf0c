//! The typed, validated settings of `[health]`, `[limits]`, `[notify]` and `[metrics]`, and
//! the address types they use.
//!
//! Pure data and parsing, like the rest of this crate: `tend-config` reads the TOML and fills
//! these in, `tend-health` acts on them. The `Default`s here are the documented defaults
//! (docs/health.md), so a missing key and its default can never disagree. The addresses
//! ([`HttpUrl`], [`TcpTarget`], `metrics.listen`) are parsed at config time, so a bad URL is
//! a config error with a line number rather than a probe that fails forever.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::CommandSpec;

/// What to do when a check or a limit says the program is in trouble
/// (`health.on_unhealthy`, `limits.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// Stop the program's tree and start it again. Counts as a failed run for the backoff
    /// and the restart limit, exactly like a crash.
    Restart,
    /// Report it (log, status, alert, metric) and leave the program alone.
    Log,
}

impl Reaction {
    /// Every reaction with its config spelling.
    pub const ALL: [(Self, &'static str); 2] = [(Self::Restart, "restart"), (Self::Log, "log")];

    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Log => "log",
        }
    }

    /// Parses the config spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(r, _)| *r)
    }
}

/// One of `health.http`, `health.tcp`, `health.command` (at most one may be set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckSpec {
    /// `http`: GET this URL; a 2xx status is healthy. Carries `ca_file` and
    /// `insecure_skip_verify` for an `https://` URL.
    Http(HttpCheck),
    /// `tcp`: a successful connect is healthy.
    Tcp(TcpTarget),
    /// `command`: exit code 0 is healthy. Runs in the service's working directory with the
    /// service's environment, like `command` itself.
    Command(CommandSpec),
}

/// `health.http` with the TLS settings of `[health]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// The URL to `GET`.
    pub url: HttpUrl,
    /// `ca_file` and `insecure_skip_verify` (used only for `https://`).
    pub tls: TlsOptions,
}

/// How an `https://` peer is trusted (`ca_file`, `insecure_skip_verify` in `[health]` and
/// `[notify]`). The default trusts the operating system's roots only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsOptions {
    /// `ca_file`: a PEM file of extra trusted roots (a private CA), on top of the OS's.
    /// Resolved against the config file's directory.
    pub ca_file: Option<PathBuf>,
    /// `insecure_skip_verify = true`: accept any certificate for any name. Only as an
    /// explicit key, and warned about by `tend validate` and `tend run`.
    pub insecure_skip_verify: bool,
}

/// The shape of the `notify.webhook` body (`notify.format`). Every preset carries the same
/// one-line summary and crash details; only the envelope differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// tend's own JSON object (docs/health.md): every field, for scripts and receivers of
    /// your own.
    #[default]
    Generic,
    /// DingTalk custom robot: `{"msgtype":"markdown","markdown":{"title","text"}}`.
    DingTalk,
    /// WeCom (企业微信) group robot: `{"msgtype":"markdown","markdown":{"content"}}`.
    WeCom,
    /// Feishu / Lark custom bot: `{"msg_type":"post","content":{"post":{"zh_cn":...}}}`.
    Feishu,
    /// Slack incoming webhook: `{"text", "blocks"}`.
    Slack,
    /// Microsoft Teams (incoming webhook or a Workflows webhook): a `message` with one
    /// Adaptive Card attachment.
    Teams,
}

impl WebhookFormat {
    /// Every format with its config spelling; `lark` (Feishu's international name, the same
    /// API) is a second spelling of `feishu`.
    pub const ALL: [(Self, &'static str); 7] = [
        (Self::Generic, "generic"),
        (Self::DingTalk, "dingtalk"),
        (Self::WeCom, "wecom"),
        (Self::Feishu, "feishu"),
        (Self::Feishu, "lark"),
        (Self::Slack, "slack"),
        (Self::Teams, "teams"),
    ];

    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("generic", |(_, n)| n)
    }

    /// Parses the config spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(f, _)| *f)
    }
}

/// A secret from the config (`notify.secret`): kept out of `Debug` output, so a spec that is
/// printed or logged does not carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps the secret.
    #[must_use]
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// `[health]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    /// The probe, if any. A `[health]` with only `silence` has none.
    pub check: Option<CheckSpec>,
    /// `interval`: time from the end of one probe to the start of the next.
    pub interval: Duration,
    /// `timeout`: how long one probe may take; longer is a failure.
    pub timeout: Duration,
    /// `start_period`: grace after each start during which failures do not count.
    pub start_period: Duration,
    /// `failures`: consecutive counted failures that make the program unhealthy (>= 1).
    pub failures: u32,
    /// `on_unhealthy`.
    pub on_unhealthy: Reaction,
    /// `silence`: no output on stdout or stderr for this long is unhealthy (hang watchdog).
    pub silence: Option<Duration>,
}

impl Default for HealthSpec {
    fn default() -> Self {
        Self {
            check: None,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            start_period: Duration::from_secs(30),
            failures: 3,
            on_unhealthy: Reaction::Restart,
            silence: None,
        }
    }
}

impl HealthSpec {
    /// Whether anything is watched at all (a probe or the silence watchdog).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.check.is_some() || self.silence.is_some()
    }
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsSpec {
    /// `memory`: bytes of the whole tree (see docs/health.md for what is counted per OS).
    pub memory: Option<u64>,
    /// `memory_for`: memory must stay above the limit this long before tend acts, so a
    /// short spike is not punished.
    pub memory_for: Duration,
    /// `cpu_percent`: percent of one core (200 = two cores busy), averaged over `cpu_for`.
    pub cpu_percent: Option<f64>,
    /// `cpu_for`: the averaging window of `cpu_percent`.
    pub cpu_for: Duration,
    /// `action`.
    pub action: Reaction,
    /// `sample_every`: how often the tree is measured.
    pub sample_every: Duration,
}

impl Default for LimitsSpec {
    fn default() -> Self {
        Self {
            memory: None,
            memory_for: Duration::from_secs(30),
            cpu_percent: None,
            cpu_for: Duration::from_secs(120),
            action: Reaction::Restart,
            sample_every: Duration::from_secs(5),
        }
    }
}

impl LimitsSpec {
    /// Whether any limit is set (otherwise sampling is only needed for metrics).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.memory.is_some() || self.cpu_percent.is_some()
    }
}

/// An event that can be sent as an alert (`notify.events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// The program exited and the exit counts as a failure.
    Crashed,
    /// A restart is scheduled (after a crash, an unhealthy verdict or a limit).
    Restarting,
    /// A health check, the silence watchdog or a limit says the program is in trouble.
    Unhealthy,
    /// tend gave up restarting.
    GaveUp,
    /// The program is healthy again after being unhealthy or crashing.
    Recovered,
    /// `tend upgrade` (or `tend rollback`) put a release in place and it passed
    /// verification.
    Upgraded,
    /// A release failed its verification and the one before was put back (or could not
    /// be: the reason says so).
    RolledBack,
}

impl AlertKind {
    /// Every kind with its config and payload spelling.
    pub const ALL: [(Self, &'static str); 7] = [
        (Self::Crashed, "crashed"),
        (Self::Restarting, "restarting"),
        (Self::Unhealthy, "unhealthy"),
        (Self::GaveUp, "gave_up"),
        (Self::Recovered, "recovered"),
        (Self::Upgraded, "upgraded"),
        (Self::RolledBack, "rolled_back"),
    ];

    /// The config and payload spelling, e.g. `gave_up`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crashed => "crashed",
            Self::Restarting => "restarting",
            Self::Unhealthy => "unhealthy",
            Self::GaveUp => "gave_up",
            Self::Recovered => "recovered",
            Self::Upgraded => "upgraded",
            Self::RolledBack => "rolled_back",
        }
    }

    /// Parses the config spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(k, _)| *k)
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[notify]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySpec {
    /// `command`: run per alert with `TEND_*` variables and the JSON payload on stdin.
    pub command: Option<CommandSpec>,
    /// `webhook`: the payload is POSTed here (`http://` or `https://`).
    pub webhook: Option<HttpUrl>,
    /// `format`: the shape of the webhook body (the command always gets the generic JSON).
    pub format: WebhookFormat,
    /// `secret`: the signing secret of a DingTalk robot or a Feishu bot whose security
    /// setting is "sign" (加签 / 签名校验). Only with those two formats.
    pub secret: Option<Secret>,
    /// `ca_file` and `insecure_skip_verify` for an `https://` webhook.
    pub tls: TlsOptions,
    /// `events`: which alerts are sent.
    pub events: Vec<AlertKind>,
}

impl Default for NotifySpec {
    fn default() -> Self {
        Self {
            command: None,
            webhook: None,
            format: WebhookFormat::Generic,
            secret: None,
            tls: TlsOptions::default(),
            events: AlertKind::ALL.iter().map(|(k, _)| *k).collect(),
        }
    }
}

impl NotifySpec {
    /// Whether alerts go anywhere.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        (self.command.is_some() || self.webhook.is_some()) && !self.events.is_empty()
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricsSpec {
    /// `textfile`: directory where `tend_<name>.prom` is kept up to date (node_exporter /
    /// windows_exporter textfile collector).
    pub textfile: Option<PathBuf>,
    /// `listen`: serve `/metrics` here; validated by [`validate_listen`].
    pub listen: Option<std::net::SocketAddr>,
    /// `allow_remote`: allow a non-loopback `listen` address.
    pub allow_remote: bool,
}

/// `health.tcp`: `host:port`, resolved at probe time (so a name may point elsewhere later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpTarget {
    host: String,
    port: u16,
}

/// Why a `host:port` is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// No `:port`.
    #[error("`{0}` has no port: write host:port, e.g. \"127.0.0.1:8080\"")]
    MissingPort(String),
    /// The port is not 1..=65535.
    #[error("`{0}` is not a valid port (1 to 65535)")]
    BadPort(String),
    /// Nothing before the colon.
    #[error("`{0}` has no host: write host:port, e.g. \"127.0.0.1:8080\"")]
    MissingHost(String),
    /// `[` without `]`, spaces, and the like.
    #[error("`{0}` is not a valid host")]
    BadHost(String),
}

impl TcpTarget {
    /// Parses `host:port`, `1.2.3.4:port` or `[v6]:port`.
    ///
    /// # Errors
    /// When the port is missing or invalid, or the host is empty or malformed.
    pub fn parse(s: &str) -> Result<Self, TargetError> {
        let (host, port) = split_host_port(s).ok_or_else(|| TargetError::MissingPort(s.into()))?;
        let port = parse_port(port).ok_or_else(|| TargetError::BadPort(port.into()))?;
        let host = check_host(host, s)?;
        Ok(Self { host, port })
    }

    /// The host, without brackets for IPv6.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for TcpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Splits at the port colon, honouring `[v6]:port`. `None` when there is no port.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('[') {
        let close = s.find(']')?;
        let port = s[close + 1..].strip_prefix(':')?;
        // The brackets stay: check_host requires an IPv6 literal inside them.
        return Some((&s[..=close], port));
    }
    let (host, port) = s.rsplit_once(':')?;
    // `::1:80` without brackets is ambiguous: refuse rather than guess.
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

/// Accepts a DNS name, an IPv4 literal or a bracketed IPv6 literal; returns the host
/// without brackets.
fn check_host(host: &str, whole: &str) -> Result<String, TargetError> {
    if host.is_empty() {
        return Err(TargetError::MissingHost(whole.into()));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| inner.to_owned())
            .map_err(|_| TargetError::BadHost(host.into()));
    }
    let ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if ok {
        Ok(host.to_owned())
    } else {
        Err(TargetError::BadHost(host.into()))
    }
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https://`.
    tls: bool,
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    target: String,
}

/// Why a URL is not acceptable. Checked at config time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Another scheme, or none.
    #[error("`{0}` is not an http:// or https:// URL")]
    NotHttp(String),
    /// `user:pass@host`.
    #[error("`{0}`: credentials in the URL are not supported (they would end up in logs)")]
    UserInfo(String),
    /// Bad host or port.
    #[error("`{url}`: {problem}")]
    Authority {
        /// the URL
        url: String,
        /// what is wrong with host or port
        problem: TargetError,
    },
    /// Spaces, control characters or non-ASCII in the path.
    #[error("`{0}`: the path must be ASCII without spaces (percent-encode other characters)")]
    BadPath(String),
}

impl HttpUrl {
    /// Parses `http[s]://host[:port][/path][?query]`; a fragment is dropped.
    ///
    /// # Errors
    /// Other schemes, credentials, a bad host or port, or a path that is not plain ASCII.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(UrlError::NotHttp(url.into()));
        };
        let tls = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(UrlError::NotHttp(url.into()));
        };
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        if authority.contains('@') {
            return Err(UrlError::UserInfo(url.into()));
        }
        let authority_err = |problem| UrlError::Authority {
            url: url.into(),
            problem,
        };
        let (host, port) = match split_host_port(authority) {
            Some((h, p)) => (
                h,
                parse_port(p).ok_or_else(|| authority_err(TargetError::BadPort(p.into())))?,
            ),
            None => (authority, default_port(tls)),
        };
        let host = check_host(host, authority).map_err(authority_err)?;
        if !target.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(UrlError::BadPath(url.into()));
        }
        let target = if target.starts_with('/') {
            target.to_owned()
        } else {
            format!("/{target}")
        };
        Ok(Self {
            tls,
            host,
            port,
            target,
        })
    }

    /// Whether this is an `https://` URL.
    #[must_use]
    pub fn is_https(&self) -> bool {
        self.tls
    }

    /// The host, without brackets for IPv6.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (80, or 443 for `https://`, unless given).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Path and query, starting with `/`.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The same URL with `pairs` (already percent-encoded `k=v&k2=v2`) added to its query,
    /// for parameters computed per request (a webhook's signature).
    #[must_use]
    pub fn with_query(&self, pairs: &str) -> Self {
        let sep = if self.target.contains('?') { '&' } else { '?' };
        Self {
            target: format!("{}{sep}{pairs}", self.target),
            ..self.clone()
        }
    }

    /// The `Host` header value: the authority as written, port only when not the scheme's
    /// default.
    #[must_use]
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port(self.tls) {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// The port of `http://` or (`tls`) `https://` when the URL gives none.
fn default_port(tls: bool) -> u16 {
    if tls { 443 } else { 80 }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.host_header(), self.target)
    }
}

/// Checks `metrics.listen` at config time: `ip:port` (or `localhost:port`), loopback only
/// unless `allow_remote`.
///
/// # Errors
/// A readable message when the address does not parse or is not loopback while remote
/// access is not allowed.
pub fn validate_listen(addr: &str, allow_remote: bool) -> Result<SocketAddr, String> {
    let parsed = match addr.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p)),
        None => addr.parse::<SocketAddr>().ok(),
    };
    let Some(parsed) = parsed else {
        return Err(format!(
            "`{addr}` is not an address: write ip:port, e.g. \"127.0.0.1:9464\""
        ));
    };
    if !allow_remote && !parsed.ip().is_loopback() {
        return Err(format!(
            "`{addr}` is not a loopback address, so the metrics would be readable from the \
             network: use 127.0.0.1:{}, or set metrics.allow_remote = true",
            parsed.port()
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_targets() {
        let ok = [
            ("127.0.0.1:8080", "127.0.0.1", 8080, "127.0.0.1:8080"),
            ("localhost:1", "localhost", 1, "localhost:1"),
            ("[::1]:9000", "::1", 9000, "[::1]:9000"),
            ("db.internal:5432", "db.internal", 5432, "db.internal:5432"),
        ];
        for (input, host, port, shown) in ok {
            let t = TcpTarget::parse(input).unwrap();
            assert_eq!((t.host(), t.port()), (host, port), "{input}");
            assert_eq!(t.to_string(), shown);
        }
        let bad = [
            ("127.0.0.1", "has no port"),
            (":80", "has no host"),
            ("host:0", "not a valid port"),
            ("host:65536", "not a valid port"),
            ("host:http", "not a valid port"),
            ("::1:80", "has no port"),
            ("[::1]", "has no port"),
            ("[zz]:80", "not a valid host"),
            ("[]:80", "not a valid host"),
            ("a b:80", "not a valid host"),
        ];
        for (input, want) in bad {
            let e = TcpTarget::parse(input).unwrap_err().to_string();
            assert!(e.contains(want), "{input}: {e}");
        }
    }

    #[test]
    fn spellings_round_trip() {
        for (k, s) in AlertKind::ALL {
            assert_eq!(k.as_str(), s);
            assert_eq!(AlertKind::parse(s), Some(k));
        }
        for (r, s) in Reaction::ALL {
            assert_eq!(r.as_str(), s);
            assert_eq!(Reaction::parse(s), Some(r));
        }
        assert_eq!(AlertKind::parse("crash"), None);
        for (f, s) in WebhookFormat::ALL {
            assert_eq!(WebhookFormat::parse(s), Some(f));
            assert_eq!(WebhookFormat::parse(f.as_str()), Some(f));
        }
        assert_eq!(WebhookFormat::Feishu.as_str(), "feishu");
        assert_eq!(WebhookFormat::parse("lark"), Some(WebhookFormat::Feishu));
        assert_eq!(WebhookFormat::parse("json"), None);
        assert_eq!(WebhookFormat::default(), WebhookFormat::Generic);
        assert_eq!(format!("{:?}", Secret::new("SECabc")), "Secret(..)");
    }

    #[test]
    fn defaults_match_the_docs() {
        let h = HealthSpec::default();
        assert_eq!(
            (h.interval, h.timeout, h.start_period, h.failures),
            (
                Duration::from_secs(10),
                Duration::from_secs(2),
                Duration::from_secs(30),
                3
            )
        );
        assert_eq!(h.on_unhealthy, Reaction::Restart);
        assert!(!h.is_enabled());
        let l = LimitsSpec::default();
        assert_eq!(
            (l.memory_for, l.cpu_for, l.sample_every, l.action),
            (
                Duration::from_secs(30),
                Duration::from_secs(120),
                Duration::from_secs(5),
                Reaction::Restart
            )
        );
        assert!(!l.is_enabled());
        assert_eq!(NotifySpec::default().events.len(), 7);
        assert!(!NotifySpec::default().is_enabled());
        assert!(!MetricsSpec::default().allow_remote);
    }

    #[test]
    fn urls() {
        let ok = [
            (
                "http://127.0.0.1:8080/health",
                "127.0.0.1",
                8080,
                "/health",
                "127.0.0.1:8080",
            ),
            ("http://localhost/", "localhost", 80, "/", "localhost"),
            ("http://localhost", "localhost", 80, "/", "localhost"),
            ("HTTP://h:81?x=1", "h", 81, "/?x=1", "h:81"),
            ("http://h/a/b?c=d#frag", "h", 80, "/a/b?c=d", "h"),
            ("http://[::1]:9/x", "::1", 9, "/x", "[::1]:9"),
            ("http://[::1]/x", "::1", 80, "/x", "[::1]"),
            (
                "https://example.com/hook",
                "example.com",
                443,
                "/hook",
                "example.com",
            ),
            ("HTTPS://h:8443", "h", 8443, "/", "h:8443"),
            ("https://h:80/", "h", 80, "/", "h:80"),
        ];
        for (input, host, port, target, header) in ok {
            let u = HttpUrl::parse(input).unwrap();
            assert_eq!(
                (u.host(), u.port(), u.target()),
                (host, port, target),
                "{input}"
            );
            assert_eq!(u.host_header(), header, "{input}");
            assert_eq!(
                u.is_https(),
                input.to_ascii_lowercase().starts_with("https")
            );
        }
        assert_eq!(
            HttpUrl::parse("HTTPS://h:443/a?b").unwrap().to_string(),
            "https://h/a?b"
        );
        assert_eq!(
            HttpUrl::parse("http://h:443/").unwrap().to_string(),
            "http://h:443/"
        );
        let u = HttpUrl::parse("https://oapi.dingtalk.com/robot/send?access_token=t").unwrap();
        assert_eq!(
            u.with_query("timestamp=1&sign=a%2Fb").target(),
            "/robot/send?access_token=t&timestamp=1&sign=a%2Fb"
        );
        assert_eq!(
            HttpUrl::parse("https://h/x")
                .unwrap()
                .with_query("a=1")
                .target(),
            "/x?a=1"
        );
        let bad = [
            ("ftp://h/", "not an http:// or https:// URL"),
            ("127.0.0.1:8080/health", "not an http:// or https:// URL"),
            ("https://user:pw@h/", "credentials"),
            ("http://user:pw@h/", "credentials"),
            ("http://h:0/", "not a valid port"),
            ("http://h:x/", "not a valid port"),
            ("http:///path", "has no host"),
            ("http://h/a b", "percent-encode"),
            ("http://h/é", "percent-encode"),
            ("http://::1/", "not a valid host"),
            ("http://[x]/", "not a valid host"),
        ];
        for (input, want) in bad {
            let e = HttpUrl::parse(input).unwrap_err().to_string();
            assert!(e.contains(want), "{input}: {e}");
        }
    }

    #[test]
    fn listen_addresses() {
        let ok = [
            ("127.0.0.1:9464", false, "127.0.0.1:9464"),
            ("localhost:9464", false, "127.0.0.1:9464"),
            ("[::1]:9464", false, "[::1]:9464"),
            ("127.1.2.3:80", false, "127.1.2.3:80"),
            ("0.0.0.0:9464", true, "0.0.0.0:9464"),
            ("192.0.2.10:9464", true, "192.0.2.10:9464"),
        ];
        for (input, remote, want) in ok {
            assert_eq!(
                validate_listen(input, remote).unwrap().to_string(),
                want,
                "{input}"
            );
        }
        let bad = [
            ("0.0.0.0:9464", "not a loopback address"),
            ("[::]:9464", "not a loopback address"),
            ("192.0.2.10:9464", "metrics.allow_remote = true"),
            ("9464", "not an address"),
            ("localhost", "not an address"),
            ("example.com:9464", "not an address"),
        ];
        for (input, want) in bad {
            let e = validate_listen(input, false).unwrap_err();
            assert!(e.contains(want), "{input}: {e}");
        }
    }
}
