//! tend's install side: how an OS service manager is made to start tend.
//!
//! Nothing here decides *how to supervise*: `tend service <name>` does that, the same way on
//! every OS. This crate describes how the OS service manager should start tend:
//!
//! - [`ServiceManager`] is the one seam of the install side: one implementation per OS
//!   manager (`unix::Systemd` and `unix::Launchd`, sharing one flow; [`scm::Scm`] for the
//!   Windows SCM; [`run_key::RunEntry`] for the Windows per-user Run entry), each verb
//!   returning a [`Report`] or a [`Failure`] with a typed [`Error`] whose exit code comes
//!   from [`exit`];
//! - [`systemd::render_unit`] and [`launchd::render_plist`] are pure functions from a
//!   [`systemd::UnitInput`] / [`launchd::PlistInput`] to the file's text;
//! - each verb (`install`, `uninstall`, `start`, `stop`, `restart`, `reload`) is a pure
//!   function returning a plan, a list of [`Step`]s (write this file, run this command), so
//!   tests assert the exact plan and the CLI can print it (`--dry-run`) or carry it out with
//!   [`apply`];
//! - every command goes through the [`Runner`] trait: [`SystemRunner`] runs it for real,
//!   [`testing::FakeRunner`] records it and returns scripted answers; the Windows backends
//!   reach the machine through [`scm::ScmApi`] / [`scm::Host`] and [`run_key::Host`], faked
//!   by [`testing::FakeScm`] and [`testing::FakeRunKey`];
//! - `status` is the one verb that reads an answer back: machine-readable
//!   `systemctl show` output, or launchd's `print` output parsed defensively, into an
//!   [`OsStatus`];
//! - [`Layout`] is the single table of where an installed service's config, definition,
//!   state and logs live, for all four backends and both scopes ([`here`] reads the scope
//!   from the environment), and [`check_ownership`] keeps `install` away from services tend
//!   did not write;
//! - [`write_atomic`] is the one way tend replaces a file that something may be reading.
//! - [`reach::check`] decides, from path facts the CLI gathers, what the installed
//!   service's account and sandbox will not be able to reach.
//!
//! Rendering, plans and the layout never look at the host (Unix paths are built with `/`,
//! Windows paths with `\`, whatever the host's separator), so they compile and are tested
//! on every OS, and so do the backends' sequences (against the fakes). The `cfg` glue is
//! thin: [`here`] (the environment), [`write_atomic`]'s modes and directory fsync, `unix`
//! (the systemd/launchd backends with their real files, chown and modes, and user lookups),
//! and the real SCM, registry and process calls of `scm` and `run_key` (Windows).

mod converge;
mod error;
pub mod exit;
mod fs;
pub mod here;
mod installed;
pub mod launchd;
mod layout;
mod manager;
mod ownership;
mod plan;
pub mod reach;
pub mod run_key;
mod runner;
pub mod scm;
mod status;
pub mod supervisor;
pub mod systemd;
pub mod takeover;
pub mod testing;
#[cfg(unix)]
pub mod unix;
#[cfg(windows)]
mod winreg;

pub use converge::{
    Action, Desired, Found, Installed, Present, Step as ApplyStep, Then, plan as apply_plan,
};
pub use error::RenderError;
pub use fs::{replace_atomic, write_atomic};
pub use installed::{diff_lines, installed_text, unified_diff};
pub use layout::{
    Backend, Layout, RUN_KEY, Scope, SystemContext, UserContext, run_value_name, service_args,
    status_file, upgrade_recover_args,
};
pub use manager::{
    Access, Changed, Drift, Error, Failure, Install, Preflight, Report, ServiceManager, Status,
    error_chain, reported,
};
pub use ownership::{OwnershipError, check_ownership};
pub use plan::{Applied, ApplyError, Files, Step, apply};
pub use runner::{RunError, RunOutput, Runner, SystemRunner, display_argv};
pub use status::{OsStatus, RunState};
pub use takeover::Foreign;

/// How much longer than tend's own `stop.timeout` the OS manager waits before it kills tend.
///
/// tend needs the whole `stop.timeout` for the program's graceful stop, then a moment to
/// kill the tree, reap it and flush its logs. If the OS manager's own timeout were shorter,
/// it would SIGKILL tend (and on systemd the whole cgroup) in the middle of that.
pub const STOP_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);
