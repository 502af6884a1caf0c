//! tend's health side: probes, the health and limit decisions, resource sampling, alerts and
//! metrics.
//!
//! Split like the rest of tend: the decisions ([`tracker::HealthTracker`],
//! [`limits::LimitTracker`], [`metrics::render`]) are pure and take `now` from the caller;
//! the I/O around them (probes, sampling, the notifier, the listener) is thin and async on
//! tokio. The supervisor feeds the trackers and carries out their verdicts; see
//! docs/health.md for the rules.

mod activity;
mod command;
mod fmt;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod sample;
pub mod spec;
pub mod tracker;

pub use activity::OutputClock;
pub use command::PreparedCommand;
pub use http::{HttpUrl, UrlError};
pub use limits::LimitTracker;
pub use notify::{Alert, Notifier, NotifierConfig};
pub use probe::{Probe, ProbeOutcome};
pub use sample::{CpuCounter, Sample, SampleError};
pub use spec::{
    AlertKind, CheckSpec, HealthSpec, LimitsSpec, MetricsSpec, NotifySpec, Reaction, TcpTarget,
};
pub use tracker::{HealthState, HealthTracker, Step, Verdict};
