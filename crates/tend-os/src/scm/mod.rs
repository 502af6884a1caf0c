//! The Windows Service Control Manager backend (system services on Windows).
//!
//! - [`plan`]: what `tend install` asks of the SCM, built from the config by a pure
//!   function ([`plan::plan`]); what an update changes ([`plan::changes`],
//!   [`plan::settings`]); the service-specific exit codes ([`exit`]).
//! - [`acl`]: who may touch the service's files (SDDL), and whether the service account
//!   can reach the program and its directories (DACL evaluation). Pure.
//! - [`ScmApi`] and [`Host`]: the SCM's calls and the rest of the machine, the only way
//!   [`Scm`] reaches Windows. `real.rs` implements them with windows-service and
//!   windows-sys (Windows only); [`crate::testing::FakeScm`] records the calls and
//!   answers from a script, so the install, update, uninstall, start and stop sequences
//!   are tested on every OS (`tests.rs`).
//! - [`dumps`]: `[diagnostics] dumps` as Windows Error Reporting LocalDumps keys, and
//!   which of them are tend's to change. Pure.
//! - [`eventlog`]: the Event Log IDs and levels, and (Windows) the source registration and
//!   the writer the service runtime uses.

pub mod acl;
mod api;
mod backend;
pub mod dumps;
mod error;
pub mod eventlog;
pub(crate) mod fake;
pub mod plan;
#[cfg(windows)]
mod real;
#[cfg(test)]
mod tests;

pub use api::{
    Config2, Control, ExitCode, Host, InstalledConfig, RawChange, Rights, ScmApi, ServiceStatus,
    State,
};
pub use backend::Scm;
pub use error::ScmError;
pub use plan::exit;
#[cfg(windows)]
pub use real::{RealHost, RealScm};
