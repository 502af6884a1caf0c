//! The typed settings of `[health]`, `[limits]`, `[notify]` and `[metrics]`.
//!
//! They live in `tend_core::health` (pure data, shared with `tend-config`, which fills them
//! in, and with `tend_core::ServiceSpec`); this module re-exports them so code here and in
//! the runtime can keep naming them from this crate.

pub use tend_core::health::{
    AlertKind, CheckSpec, HealthSpec, HttpCheck, LimitsSpec, MetricsSpec, NotifySpec, Reaction,
    Secret, TargetError, TcpTarget, TlsOptions, WebhookFormat,
};
