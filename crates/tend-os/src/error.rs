//! Why a unit or plist cannot be rendered.

use std::path::PathBuf;

use crate::Backend;

/// Why a config cannot be installed on this backend, or a value cannot be written safely
/// into a unit file or plist. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// `account = "local-service"` / `"network-service"` outside Windows.
    #[error(
        "[service] account = \"{account}\" exists only on Windows; on {os} use \"isolated\", \"system\" or a user name"
    )]
    WindowsOnlyAccount {
        /// The config spelling.
        account: &'static str,
        /// `Linux` or `macOS`.
        os: &'static str,
    },
    /// `account = "isolated"` for a macOS system daemon.
    #[error(
        "[service] account = \"isolated\" (the default) is not available on macOS: launchd has no per-service dynamic accounts; set account = \"system\" (root) or the name of an existing user"
    )]
    IsolatedUnsupported,
    /// An explicit account for a per-user service, which always runs as the user.
    #[error(
        "[service] account = \"{account}\" cannot be used with --user: a per-user service runs as you; remove `account` or install system-wide"
    )]
    AccountInUserScope {
        /// The config spelling, or the user name.
        account: String,
    },
    /// A user name the backend would reject or misread.
    #[error(
        "[service] account = {name:?} is not a valid {backend:?} user name: use letters, digits, `_`, `.` and `-` (not starting with `-` or `.`), or a numeric id"
    )]
    InvalidUserName {
        /// The name.
        name: String,
        /// The backend.
        backend: Backend,
    },
    /// A `depends_on` entry that is not a valid systemd unit name.
    #[error(
        "[service] depends_on: {name:?} is not a valid systemd unit name (letters, digits and `:_.@-\\` only, at most 255 characters)"
    )]
    InvalidDependency {
        /// The entry.
        name: String,
    },
    /// The tend binary path is relative.
    #[error("the tend binary path {0:?} is not absolute")]
    RelativeTendPath(PathBuf),
    /// A path that is not UTF-8 cannot be written into a unit file or plist.
    #[error("{what} {path:?} is not valid UTF-8")]
    NotUtf8 {
        /// Which path.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A character the backend cannot represent in this position.
    #[error(
        "{what} {value:?} contains {ch:?}, which {backend:?} cannot accept there; move tend (or the home directory) to a path without it"
    )]
    UnsupportedChar {
        /// Which value.
        what: &'static str,
        /// The value.
        value: String,
        /// The offending character.
        ch: char,
        /// The backend.
        backend: Backend,
    },
    /// A NUL byte in a command-line argument.
    #[error("command-line argument {0:?} contains a NUL byte")]
    NulInArgument(String),
}
