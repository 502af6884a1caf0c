//! What goes wrong when a source cannot be read: always the file, the line where it is
//! known, the setting, what is wrong and how to fix it.

use std::fmt;

/// A source that cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportError {
    /// The source file (or `registry <name>` for a service read from the Windows registry).
    pub file: String,
    /// 1-based line, where it is known.
    pub line: Option<usize>,
    /// The source's own name of the setting (`ExecStart`, `apps[0].args`), if one is at fault.
    pub setting: Option<String>,
    /// What is wrong, and how to fix it.
    pub message: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(s) = &self.setting {
            write!(f, ": {s}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Builds errors for one source file.
#[derive(Debug, Clone)]
pub(crate) struct At {
    pub(crate) file: String,
}

impl At {
    pub(crate) fn new(file: impl Into<String>) -> Self {
        Self { file: file.into() }
    }

    /// An error at `line` about `setting`.
    pub(crate) fn err(
        &self,
        line: Option<usize>,
        setting: impl Into<Option<String>>,
        message: impl Into<String>,
    ) -> ImportError {
        ImportError {
            file: self.file.clone(),
            line,
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// The 1-based line of byte offset `pos` in `text`.
pub(crate) fn line_at(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
