//! tend's pure core.
//!
//! Everything in this crate is a decision or a data type: no clock reads, no I/O, no
//! `cfg(unix)`/`cfg(windows)`. The runtime (the `tend` crate) feeds events and the current
//! time into [`machine::Machine`] and carries out the [`machine::Action`]s it returns. That
//! split is what lets the restart, backoff and stop rules be tested exhaustively with plain
//! table-driven unit tests, and keeps the behaviour identical on every OS.

pub mod backoff;
pub mod crash;
pub mod fmt;
pub mod health;
pub mod last_lines;
pub mod machine;
pub mod name;
pub mod reload;
pub mod replace;
pub mod spec;
pub mod upgrade;

pub use machine::{Action, Event, Exit, ExitCause, FailReason, GiveUp, Machine, Notice, Phase};
pub use name::ServiceName;
pub use spec::*;
