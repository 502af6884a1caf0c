//! Service names: validated once, then safe to use as an SCM service name, a systemd unit
//! name, a launchd label suffix and a file name on every OS.

use std::fmt;

/// Longest accepted name. 64 keeps `<name>.out.2026-11-21T14-05-09.123.log.gz` and
/// `NT SERVICE\<name>` comfortably within every OS limit.
pub const MAX_NAME_LEN: usize = 64;

/// A validated service name: 1 to 64 characters from `[A-Za-z0-9._-]`, not starting with
/// `.` or `-` (hidden files, option-like arguments).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ServiceName(String);

/// Why a string is not a valid [`ServiceName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`].
    #[error("the name is {0} characters long; at most {MAX_NAME_LEN} are allowed")]
    TooLong(usize),
    /// The name contains a character outside `[A-Za-z0-9._-]`.
    #[error("the name contains {0:?}; only letters, digits, `.`, `_` and `-` are allowed")]
    BadChar(char),
    /// The name starts with `.` or `-`.
    #[error("the name must not start with {0:?}")]
    BadStart(char),
}

impl ServiceName {
    /// Checks `s` and wraps it.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let first = s.chars().next().ok_or(NameError::Empty)?;
        let len = s.chars().count();
        if len > MAX_NAME_LEN {
            return Err(NameError::TooLong(len));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(NameError::BadChar(c));
        }
        if matches!(first, '.' | '-') {
            return Err(NameError::BadStart(first));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        for ok in ["demo", "a", "my-app_1.2", &"x".repeat(64)] {
            assert!(ServiceName::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(ServiceName::new(""), Err(NameError::Empty));
        assert_eq!(
            ServiceName::new(&"x".repeat(65)),
            Err(NameError::TooLong(65))
        );
        assert_eq!(ServiceName::new("a b"), Err(NameError::BadChar(' ')));
        assert_eq!(ServiceName::new("a/b"), Err(NameError::BadChar('/')));
        assert_eq!(ServiceName::new("dé"), Err(NameError::BadChar('é')));
        assert_eq!(ServiceName::new("-x"), Err(NameError::BadStart('-')));
        assert_eq!(ServiceName::new(".x"), Err(NameError::BadStart('.')));
    }
}
