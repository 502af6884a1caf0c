//! Where tend keeps things on each OS. One place, so install, service and status agree.
//!
//! | what | Windows | Linux / macOS (system) |
//! |---|---|---|
//! | installed config | `%ProgramData%\tend\services\<name>.toml` | `/etc/tend/<name>.toml` |
//! | logs | `%ProgramData%\tend\logs\<name>` | `/var/log/tend/<name>` |
//! | state (status file) | `%ProgramData%\tend\state\<name>` | `/var/lib/tend/<name>` |
//!
//! `tend run` keeps its status file next to its logs (`[logs] dir`).
#![allow(dead_code, reason = "each OS uses its own half")]

use std::path::PathBuf;

/// `%ProgramData%\tend` (Windows).
pub(crate) fn program_data() -> PathBuf {
    std::env::var_os("ProgramData")
        .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from)
        .join("tend")
}

/// The installed copy of a service's config.
pub(crate) fn installed_config(name: &str) -> PathBuf {
    if cfg!(windows) {
        program_data().join("services").join(format!("{name}.toml"))
    } else {
        PathBuf::from("/etc/tend").join(format!("{name}.toml"))
    }
}

/// The default log directory of an installed service.
pub(crate) fn log_dir(name: &str) -> PathBuf {
    if cfg!(windows) {
        program_data().join("logs").join(name)
    } else {
        PathBuf::from("/var/log/tend").join(name)
    }
}

/// The state directory of an installed service.
pub(crate) fn state_dir(name: &str) -> PathBuf {
    if cfg!(windows) {
        program_data().join("state").join(name)
    } else {
        PathBuf::from("/var/lib/tend").join(name)
    }
}
