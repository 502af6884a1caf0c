//! What every backend does with the config it installs: tend's copy of the text, and what
//! changed since the last install.

use tend_core::ServiceSpec;

use crate::Layout;
use crate::manager::Error;

/// The config copy the service runs from: the original text plus `base_dir`, so relative
/// paths (the program, `working_dir`, `env_file`, `[logs] dir`) still point at the
/// operator's files.
///
/// # Errors
///
/// [`Error::Invalid`] when the config's directory cannot be written as a TOML literal.
pub fn installed_text(spec: &ServiceSpec, original: &str) -> Result<String, Error> {
    let has_base = original
        .lines()
        .any(|l| l.trim_start().starts_with("base_dir") && l.contains('='));
    if has_base {
        return Ok(original.to_owned());
    }
    let base = spec.base_dir.display().to_string();
    if base.contains('\'') || base.contains('\n') {
        return Err(Error::Invalid(format!(
            "the config's directory `{base}` contains a quote or newline; set base_dir in the config explicitly"
        )));
    }
    Ok(format!(
        "# Installed by tend from `{}`. Edit that file and run `tend install` again.\nbase_dir = '{base}'\n\n{original}",
        spec.config_path.display()
    ))
}

/// The lines that differ between `old` and `new`, in file order, as `- old line` and
/// `+ new line`: a longest-common-subsequence diff, which is plenty for files of a few
/// dozen lines (a file too large for the quadratic table is summarised instead).
#[must_use]
pub fn diff_lines(old: &str, new: &str) -> Vec<String> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        return vec![format!("({} lines -> {} lines)", a.len(), b.len())];
    }
    // lcs[i][j]: the length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals first, so a changed line reads as "- old" then "+ new".
            out.push(format!("- {}", a[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", b[j]));
            j += 1;
        }
    }
    out
}

/// How an installed config copy is loaded: `[logs] dir` defaults to the layout's log
/// directory, as `tend service` loads it.
pub(crate) fn load_options(layout: &Layout) -> tend_config::LoadOptions {
    tend_config::LoadOptions {
        log_dir: tend_config::LogDirDefault::Under(layout.log_root()),
    }
}

/// The installed config copy `text` (read from `layout.config`), if it loads: the verbs
/// that only need its settings (stop timeout, start mode, `[logs] dir`) fall back to
/// defaults when it does not.
pub(crate) fn installed_spec(layout: &Layout, text: &str) -> Option<ServiceSpec> {
    tend_config::parse(text, &layout.config, &load_options(layout))
        .ok()
        .map(|l| l.spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_only_changed_lines_in_order() {
        let old = "name = \"web\"\ncommand = [\"./a\"]\n[stop]\ntimeout = \"5s\"\n";
        let new =
            "name = \"web\"\ncommand = [\"./b\"]\n[stop]\ntimeout = \"5s\"\nsignal = \"INT\"\n";
        assert_eq!(
            diff_lines(old, new),
            [
                "- command = [\"./a\"]",
                "+ command = [\"./b\"]",
                "+ signal = \"INT\""
            ]
        );
        assert!(diff_lines(old, old).is_empty());
        assert_eq!(diff_lines("", "a\n"), ["+ a"]);
        assert_eq!(diff_lines("a\n", ""), ["- a"]);
    }
}
