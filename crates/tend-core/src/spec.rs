//! The validated, fully typed description of one service. `tend-config` builds it from TOML;
//! nothing here parses text or touches the file system.

use std::path::PathBuf;
use std::time::Duration;

use crate::ServiceName;
use crate::health::{HealthSpec, LimitsSpec, MetricsSpec, NotifySpec};

/// Everything tend needs to know to supervise one program.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// The service's name (`name`).
    pub name: ServiceName,
    /// Human-readable name (`display_name`); defaults to the name.
    pub display_name: String,
    /// What the service does (`description`).
    pub description: Option<String>,
    /// The config file this spec was read from (absolute).
    pub config_path: PathBuf,
    /// The directory relative paths were resolved against (`base_dir`, default: the config
    /// file's directory). An installed copy of a config keeps pointing at the original one.
    pub base_dir: PathBuf,
    /// The program and its arguments (`command`).
    pub command: CommandSpec,
    /// Absolute working directory (`working_dir`).
    pub working_dir: PathBuf,
    /// Variables added to the inherited environment, `env_file` first, then `env` (which
    /// wins). Order is kept so the child sees a deterministic environment.
    pub env: Vec<(String, String)>,
    /// Restart policy (`[restart]`).
    pub restart: RestartSpec,
    /// Graceful stop (`[stop]`).
    pub stop: StopSpec,
    /// Output capture (`[logs]`).
    pub logs: LogSpec,
    /// How the OS service is installed (`[service]`).
    pub service: InstallSpec,
    /// Health checks and the hang watchdog (`[health]`); `None` without the section.
    pub health: Option<HealthSpec>,
    /// Resource limits and sampling of the process tree (`[limits]`); `None` without it.
    pub limits: Option<LimitsSpec>,
    /// Alerts (`[notify]`); `None` without the section.
    pub notify: Option<NotifySpec>,
    /// Prometheus metrics (`[metrics]`); `None` without the section.
    pub metrics: Option<MetricsSpec>,
    /// Crash dumps (`[diagnostics]`); off by default.
    pub diagnostics: DiagnosticsSpec,
    /// How `tend upgrade` verifies a new release (`[upgrade]`); the defaults without the
    /// section. Read only by the CLI's upgrade, never by the supervisor.
    pub upgrade: UpgradeSpec,
}

/// `[upgrade]`: how `tend upgrade` and `tend rollback` decide that a release works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeSpec {
    /// `verify`: how long the new release must run (and, with `[health]`, become healthy)
    /// before the upgrade counts as done.
    pub verify: Duration,
    /// `verify_command`: run once the program runs (and is healthy); must exit 0.
    pub verify_command: Option<CommandSpec>,
    /// `keep`: how many releases are kept (the running one and the previous one always).
    pub keep: u32,
    /// `preserve`: paths, relative to the application directory, carried over from the
    /// running release when a new directory is swapped in.
    pub preserve: Vec<String>,
}

impl Default for UpgradeSpec {
    fn default() -> Self {
        Self {
            verify: Duration::from_secs(30),
            verify_command: None,
            keep: 3,
            preserve: Vec::new(),
        }
    }
}

/// `[diagnostics] dump_type`: how much of the crashed process a Windows dump keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DumpType {
    /// Stacks, threads and loaded modules (WER `DumpType` 1): a few MiB, enough for a
    /// stack trace of every thread.
    Mini,
    /// The whole address space (WER `DumpType` 2): as large as the process was.
    Full,
}

impl DumpType {
    /// Every type with its config spelling.
    pub const ALL: [(Self, &'static str); 2] = [(Self::Mini, "mini"), (Self::Full, "full")];

    /// The value of WER's `LocalDumps\<exe>\DumpType`.
    #[must_use]
    pub fn wer_value(self) -> u32 {
        match self {
            Self::Mini => 1,
            Self::Full => 2,
        }
    }
}

/// `[diagnostics]`: what the OS keeps when the program crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiagnosticsSpec {
    /// `dumps`: keep crash dumps (Windows Error Reporting `LocalDumps` on Windows, core
    /// files within the hard core size limit on Unix) and ask a Go program for one
    /// (`GOTRACEBACK`).
    pub dumps: bool,
    /// `dump_count`: how many dumps WER keeps for the program (Windows).
    pub dump_count: u32,
    /// `dump_type` (Windows).
    pub dump_type: DumpType,
}

impl Default for DiagnosticsSpec {
    fn default() -> Self {
        // WER's own defaults for a LocalDumps key.
        Self {
            dumps: false,
            dump_count: 10,
            dump_type: DumpType::Mini,
        }
    }
}

/// `[service] start`: when the OS starts the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartMode {
    /// At boot.
    Auto,
    /// At boot, after the automatic services (Windows: delayed auto-start).
    DelayedAuto,
    /// Only when asked.
    Manual,
    /// Not at all.
    Disabled,
}

impl StartMode {
    /// Every mode with its config spelling.
    pub const ALL: [(Self, &'static str); 4] = [
        (Self::Auto, "auto"),
        (Self::DelayedAuto, "delayed-auto"),
        (Self::Manual, "manual"),
        (Self::Disabled, "disabled"),
    ];
}

/// `[service] hardening`: how tightly the OS fences the service in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hardening {
    /// What the account implies (systemd `DynamicUser=yes` for `isolated`; the service SID
    /// on Windows), nothing more: every program works.
    Basic,
    /// Opt-in: the OS sandbox a typical network service (a Go HTTP server) still runs in.
    /// systemd: the directives in docs/linux.md (`systemd-analyze security` below 4.0 for an
    /// isolated service); Windows: a restricted service SID and only the privileges a
    /// service needs.
    Strict,
}

impl Hardening {
    /// Every level with its config spelling.
    pub const ALL: [(Self, &'static str); 2] = [(Self::Basic, "basic"), (Self::Strict, "strict")];
}

/// `[service] account`: who the service runs as.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Account {
    /// A per-service least-privilege identity (Windows virtual account
    /// `NT SERVICE\<name>`, systemd `DynamicUser=yes`).
    Isolated,
    /// LocalSystem / root.
    System,
    /// Windows `NT AUTHORITY\LocalService`.
    LocalService,
    /// Windows `NT AUTHORITY\NetworkService`.
    NetworkService,
    /// A named user (`DOMAIN\user` on Windows); the password, if any, is read from the
    /// environment variable `password_env` at install time.
    User {
        /// The account name.
        name: String,
        /// Environment variable holding the password.
        password_env: Option<String>,
    },
}

impl Account {
    /// The config spelling: `isolated`, `system`, `local-service`, `network-service`, or
    /// the user's name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Isolated => "isolated",
            Self::System => "system",
            Self::LocalService => "local-service",
            Self::NetworkService => "network-service",
            Self::User { name, .. } => name,
        }
    }
}

/// `[service]`: install-time settings, applied by `tend install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSpec {
    /// `start`.
    pub start: StartMode,
    /// `depends_on`: services that must start first.
    pub depends_on: Vec<String>,
    /// `account`.
    pub account: Account,
    /// `preshutdown_timeout`: how long Windows waits for tend at shutdown.
    pub preshutdown_timeout: Duration,
    /// `hardening`.
    pub hardening: Hardening,
}

impl Default for InstallSpec {
    fn default() -> Self {
        Self {
            start: StartMode::Auto,
            depends_on: Vec::new(),
            account: Account::Isolated,
            preshutdown_timeout: Duration::from_secs(30),
            hardening: Hardening::Basic,
        }
    }
}

/// A program to run with its arguments. Never passed through a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// How to find the program.
    pub program: Program,
    /// Arguments after the program.
    pub args: Vec<String>,
}

/// Where the program comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// The program contained a path separator: resolved against the config file's
    /// directory, so this path is absolute.
    Path(PathBuf),
    /// A bare name, looked up in `PATH` when the program is started.
    Search(String),
}

impl Program {
    /// How the program reads in messages: the absolute path or the bare name.
    #[must_use]
    pub fn display(&self) -> String {
        match self {
            Self::Path(p) => p.display().to_string(),
            Self::Search(s) => s.clone(),
        }
    }
}

/// Which exits lead to a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart after every exit, clean or not.
    Always,
    /// Restart unless the exit code is in `success_exit_codes`.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::OnFailure => "on-failure",
            Self::Never => "never",
        }
    }
}

/// `[restart]`: when and how fast to restart, and when to give up.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartSpec {
    /// `policy`.
    pub policy: RestartPolicy,
    /// `success_exit_codes`: exit codes that count as success.
    pub success_exit_codes: Vec<i32>,
    /// `delay`: delay before the first restart after a healthy run.
    pub delay: Duration,
    /// `max_delay`: cap of the exponential backoff.
    pub max_delay: Duration,
    /// `multiplier`: backoff growth per consecutive restart (>= 1.0).
    pub multiplier: f64,
    /// `reset_after`: a run at least this long resets the backoff and the limit counter.
    pub reset_after: Duration,
    /// `limit`: give up after this many restarts within `limit_window` (0 = never).
    pub limit: u32,
    /// `limit_window`: the sliding window of `limit` (zero = never give up).
    pub limit_window: Duration,
    /// `on_give_up`: command run once when tend gives up.
    pub on_give_up: Option<CommandSpec>,
    /// `hook_timeout`: how long a hook may run before it is killed.
    pub hook_timeout: Duration,
}

impl Default for RestartSpec {
    fn default() -> Self {
        Self {
            policy: RestartPolicy::OnFailure,
            success_exit_codes: vec![0],
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            multiplier: 2.0,
            reset_after: Duration::from_secs(300),
            limit: 5,
            limit_window: Duration::from_secs(600),
            on_give_up: None,
            hook_timeout: Duration::from_secs(30),
        }
    }
}

/// The Unix signal used for a graceful stop. Named semantically so the core stays free of
/// OS numbers; the runtime maps it to the real signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum StopSignal {
    /// SIGINT
    Int,
    /// SIGTERM
    Term,
    /// SIGHUP
    Hup,
    /// SIGQUIT
    Quit,
    /// SIGUSR1
    Usr1,
    /// SIGUSR2
    Usr2,
}

impl StopSignal {
    /// Every accepted signal with its config spelling.
    pub const ALL: [(Self, &'static str); 6] = [
        (Self::Int, "SIGINT"),
        (Self::Term, "SIGTERM"),
        (Self::Hup, "SIGHUP"),
        (Self::Quit, "SIGQUIT"),
        (Self::Usr1, "SIGUSR1"),
        (Self::Usr2, "SIGUSR2"),
    ];

    /// The config spelling, e.g. `SIGTERM`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("SIGTERM", |(_, n)| n)
    }

    /// Parses `SIGTERM` or `TERM` (case-insensitive).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let up = s.to_ascii_uppercase();
        let full = if up.starts_with("SIG") {
            up
        } else {
            format!("SIG{up}")
        };
        Self::ALL.iter().find(|(_, n)| *n == full).map(|(s, _)| *s)
    }
}

/// How to ask a Windows program to stop (`stop.windows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowsStop {
    /// Console Ctrl+C (Go: `os.Interrupt`).
    CtrlC,
    /// Console Ctrl+Break (Go: `os.Interrupt`).
    CtrlBreak,
    /// `WM_CLOSE` to the program's windows.
    CloseWindow,
    /// No graceful step: terminate the job after nothing.
    None,
}

impl WindowsStop {
    /// Every accepted method with its config spelling.
    pub const ALL: [(Self, &'static str); 4] = [
        (Self::CtrlC, "ctrl-c"),
        (Self::CtrlBreak, "ctrl-break"),
        (Self::CloseWindow, "close-window"),
        (Self::None, "none"),
    ];

    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("ctrl-c", |(_, n)| n)
    }
}

/// `[stop]`: graceful stop, then kill of the whole tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSpec {
    /// `timeout`: how long the graceful step may take before the tree is killed.
    pub timeout: Duration,
    /// `signal`: the graceful signal on Unix.
    pub signal: StopSignal,
    /// `windows`: the graceful method on Windows.
    pub windows: WindowsStop,
}

impl Default for StopSpec {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            signal: StopSignal::Term,
            windows: WindowsStop::CtrlC,
        }
    }
}

/// `[logs] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogMode {
    /// `<name>.out.log` and `<name>.err.log`.
    Separate,
    /// One `<name>.log` with both streams.
    Combined,
}

/// `[logs] format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// The program's bytes as they are, one line per line (with the optional timestamp).
    Text,
    /// One JSON object per line: time, stream, service, pid, line.
    Json,
}

/// `[logs] rotate_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotateEvery {
    /// Rotate by size only.
    Never,
    /// Also rotate when the local hour changes.
    Hourly,
    /// Also rotate at local midnight.
    Daily,
}

/// `[logs]`: where the program's output goes and how it is rotated and retained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec {
    /// `dir`: absolute directory of the log files.
    pub dir: PathBuf,
    /// `mode`.
    pub mode: LogMode,
    /// `timestamps`: prefix each line with an RFC 3339 local time with milliseconds.
    pub timestamps: bool,
    /// `stream_tags`: in combined mode, prefix lines with `out ` / `err `.
    pub stream_tags: bool,
    /// `max_size`: rotate before the active file would exceed this many bytes (0 = off).
    pub max_size: u64,
    /// `rotate_every`.
    pub rotate_every: RotateEvery,
    /// `keep`: rotated files kept per stream (0 = no cap).
    pub keep: u32,
    /// `max_age`: rotated files older than this are deleted (zero = never).
    pub max_age: std::time::Duration,
    /// `max_total`: byte budget for one stream's rotated files (0 = no cap).
    pub max_total: u64,
    /// `compress`: gzip rotated files in the background.
    pub compress: bool,
    /// `max_line`: longer lines are split, the pieces marked as continued.
    pub max_line: usize,
    /// `format`: text lines, or one JSON object per line.
    pub format: LogFormat,
    /// `encoding`: the encoding the program writes, transcoded to UTF-8 in the files (a
    /// WHATWG label such as `gbk` or `utf-16le`, or `oem` / `ansi` on Windows); `None`
    /// keeps the bytes as they are.
    pub encoding: Option<String>,
    /// `eventlog`: which of the program's lines a Windows service also writes to the
    /// Event Log.
    pub eventlog: EventLogLines,
}

/// `[logs] eventlog`: the program's lines that also go to the Windows Event Log, for sites
/// that collect only the Event Log (Windows Event Forwarding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventLogLines {
    /// None: tend's own lines only.
    Off,
    /// Each stderr line, as a warning (rate-limited).
    Stderr,
}

impl EventLogLines {
    /// Every value with its config spelling.
    pub const ALL: [(Self, &'static str); 2] = [(Self::Off, "off"), (Self::Stderr, "stderr")];
}

impl LogSpec {
    /// The defaults for a given directory.
    #[must_use]
    pub fn with_dir(dir: PathBuf) -> Self {
        Self {
            dir,
            mode: LogMode::Separate,
            timestamps: true,
            stream_tags: false,
            max_size: 10 * 1024 * 1024,
            rotate_every: RotateEvery::Daily,
            keep: 10,
            max_age: std::time::Duration::from_secs(30 * 24 * 3600),
            max_total: 1024 * 1024 * 1024,
            compress: true,
            max_line: 64 * 1024,
            format: LogFormat::Text,
            encoding: None,
            eventlog: EventLogLines::Off,
        }
    }
}
