//! The Windows Service Control Manager backend.

mod error;

pub use error::ScmError;
