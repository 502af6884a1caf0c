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

/// Past this many cells the quadratic table is not built and a diff is summarised.
const MAX_TABLE: usize = 4_000_000;

/// One line of a diff: kept (`' '`), removed (`'-'`) or added (`'+'`).
type Op<'a> = (char, &'a str);

/// The longest-common-subsequence edit from `a` to `b`, removals before additions so a
/// changed line reads as "- old" then "+ new"; `None` when the files are too large.
fn edit<'a>(a: &[&'a str], b: &[&'a str]) -> Option<Vec<Op<'a>>> {
    if a.len().saturating_mul(b.len()) > MAX_TABLE {
        return None;
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
            out.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(('-', a[i]));
            i += 1;
        } else {
            out.push(('+', b[j]));
            j += 1;
        }
    }
    Some(out)
}

/// The lines that differ between `old` and `new`, in file order, as `- old line` and
/// `+ new line`: a longest-common-subsequence diff, which is plenty for files of a few
/// dozen lines (a file too large for the quadratic table is summarised instead).
#[must_use]
pub fn diff_lines(old: &str, new: &str) -> Vec<String> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let Some(ops) = edit(&a, &b) else {
        return vec![format!("({} lines -> {} lines)", a.len(), b.len())];
    };
    ops.into_iter()
        .filter(|(op, _)| *op != ' ')
        .map(|(op, l)| format!("{op} {l}"))
        .collect()
}

/// `old` to `new` as a unified diff (`diff -u`, `context` lines around each change), with
/// `---`/`+++` headers naming the two; empty when they are the same.
#[must_use]
pub fn unified_diff(
    old: &str,
    new: &str,
    old_name: &str,
    new_name: &str,
    context: usize,
) -> String {
    use std::fmt::Write as _;
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut out = String::new();
    let Some(ops) = edit(&a, &b) else {
        let _ = writeln!(
            out,
            "--- {old_name}\n+++ {new_name}\n({} lines -> {} lines)",
            a.len(),
            b.len()
        );
        return out;
    };
    let changes: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    if changes.is_empty() {
        return out;
    }
    let _ = writeln!(out, "--- {old_name}\n+++ {new_name}");
    // Line numbers before each op, 1-based: (old, new).
    let mut at = Vec::with_capacity(ops.len() + 1);
    let (mut x, mut y) = (1usize, 1usize);
    for (op, _) in &ops {
        at.push((x, y));
        match op {
            ' ' => (x, y) = (x + 1, y + 1),
            '-' => x += 1,
            _ => y += 1,
        }
    }
    at.push((x, y));
    let mut k = 0;
    while k < changes.len() {
        // A hunk: changes closer than two contexts apart share one.
        let mut last = k;
        while last + 1 < changes.len() && changes[last + 1] - changes[last] <= 2 * context {
            last += 1;
        }
        let start = changes[k].saturating_sub(context);
        let end = (changes[last] + context + 1).min(ops.len());
        let span = &ops[start..end];
        let old_len = span.iter().filter(|(op, _)| *op != '+').count();
        let new_len = span.iter().filter(|(op, _)| *op != '-').count();
        // An empty side names the line before it, as diff -u does.
        let (os, ns) = at[start];
        let os = if old_len == 0 { os - 1 } else { os };
        let ns = if new_len == 0 { ns - 1 } else { ns };
        // A one-line side is written without its length, as diff -u does.
        let range = |start: usize, len: usize| {
            if len == 1 {
                start.to_string()
            } else {
                format!("{start},{len}")
            }
        };
        let _ = writeln!(out, "@@ -{} +{} @@", range(os, old_len), range(ns, new_len));
        for (op, l) in span {
            let _ = writeln!(out, "{op}{l}");
        }
        k = last + 1;
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
    #[test]
    fn unified_diff_reads_as_diff_u_does() {
        // Each expected text is what GNU `diff -u --label old --label new` prints.
        let ten = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
        let edited = "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\n";
        assert_eq!(
            super::unified_diff(ten, edited, "old", "new", 3),
            "--- old\n+++ new\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -8,3 +8,4 @@\n h\n i\n j\n+k\n"
        );
        assert!(
            super::unified_diff("", ten, "old", "new", 3)
                .starts_with("--- old\n+++ new\n@@ -0,0 +1,10 @@\n+a\n")
        );
        assert!(
            super::unified_diff(ten, "", "old", "new", 3)
                .starts_with("--- old\n+++ new\n@@ -1,10 +0,0 @@\n-a\n")
        );
        assert_eq!(
            super::unified_diff("x\n", "x\ny\n", "old", "new", 3),
            "--- old\n+++ new\n@@ -1 +1,2 @@\n x\n+y\n"
        );
        assert_eq!(super::unified_diff(ten, ten, "old", "new", 3), "");
        // diff_lines is the same edit without the context.
        assert_eq!(super::diff_lines(ten, edited), ["- b", "+ B", "+ k"]);
    }

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
