//! Why an SCM call failed.

/// ERROR_ACCESS_DENIED.
pub(crate) const ACCESS_DENIED: i32 = 5;
/// ERROR_INVALID_LEVEL: the setting is not supported (older Windows, Wine).
pub(crate) const INVALID_LEVEL: i32 = 124;
/// ERROR_SERVICE_DOES_NOT_EXIST.
pub(crate) const SERVICE_DOES_NOT_EXIST: i32 = 1060;

/// A failed call to the Service Control Manager, with the Windows error code when there is
/// one (the SCM's own text for most is only "IO error in winapi call").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.text())]
pub struct ScmError {
    /// The Win32 error code, if the call returned one.
    pub code: Option<i32>,
    /// The OS's words for it.
    pub message: String,
}

impl ScmError {
    /// An error with a Win32 code and the OS's words for it.
    #[must_use]
    pub fn os(code: i32, message: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            message: message.into(),
        }
    }

    /// Access denied: the caller is not Administrator.
    #[must_use]
    pub fn access_denied(&self) -> bool {
        self.code == Some(ACCESS_DENIED)
    }

    /// The service does not exist.
    #[must_use]
    pub fn no_such_service(&self) -> bool {
        self.code == Some(SERVICE_DOES_NOT_EXIST)
    }

    fn text(&self) -> String {
        if self.code == Some(INVALID_LEVEL) {
            format!(
                "{}: this Windows (or Wine) does not support the setting",
                self.message
            )
        } else {
            self.message.clone()
        }
    }
}

impl From<std::io::Error> for ScmError {
    fn from(e: std::io::Error) -> Self {
        Self {
            code: e.raw_os_error(),
            message: e.to_string(),
        }
    }
}
