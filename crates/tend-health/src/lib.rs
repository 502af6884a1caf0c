//! tend's health side: probes, the health and limit decisions, resource sampling, alerts and
//! metrics.
//!
//! Split like the rest of tend: the decisions ([`tracker::HealthTracker`],
//! [`limits::LimitTracker`], [`metrics::render`]) are pure and take `now` from the caller;
//! the I/O around them (probes, sampling, the notifier, the listener) is thin and async on
//! tokio. The supervisor feeds the trackers and carries out their verdicts; see
//! docs/health.md for the rules.

mod activity;
mod alert;
mod command;
mod fmt;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod sample;
pub mod spec;
pub mod tls;
pub mod tracker;
pub mod webhook;

pub use activity::OutputClock;
pub use command::PreparedCommand;
pub use http::{HttpClient, HttpUrl, UrlError};
pub use limits::LimitTracker;
pub use notify::{Alert, Notifier, NotifierConfig, ReleaseChange};
pub use probe::{Probe, ProbeOutcome};
pub use sample::{CpuCounter, Sample, SampleError};
pub use spec::{
    AlertKind, CheckSpec, HealthSpec, HttpCheck, LimitsSpec, MetricsSpec, NotifySpec, Reaction,
    Secret, TcpTarget, TlsOptions, WebhookFormat,
};
pub use tracker::{HealthState, HealthTracker, Step, Verdict};

/// Starts Winsock for this process, once, and says so if it cannot (Windows; elsewhere
/// nothing to do).
///
/// tokio's sockets (through mio) rely on std having started Winsock and drop any error from
/// that; under Wine a test process was seen failing every later bind with WSANOTINITIALISED
/// (10093). An explicit, checked WSAStartup first makes that impossible and, if it ever
/// fails, names the real cause. WSAStartup is reference-counted, so std's own call later is
/// harmless.
pub fn init_network() -> std::io::Result<()> {
    #[cfg(windows)]
    {
        use windows_sys::Win32::Networking::WinSock::{WSADATA, WSAStartup};
        static STARTED: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
        let rc = *STARTED.get_or_init(|| {
            // SAFETY: WSADATA is plain data that WSAStartup fills in; version 2.2.
            #[allow(unsafe_code)]
            unsafe {
                let mut data: WSADATA = std::mem::zeroed();
                WSAStartup(0x0202, &raw mut data)
            }
        });
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
    }
    Ok(())
}
