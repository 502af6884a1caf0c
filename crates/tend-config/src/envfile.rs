//! `env_file`: `KEY=VALUE` lines.

/// `(name, value)` pairs in file order.
pub type EnvVars = Vec<(String, String)>;

/// Parses env-file text: one `KEY=VALUE` per line; blank lines and lines starting with `#`
/// are skipped; an optional leading `export ` is allowed; a value wrapped in matching single
/// or double quotes loses them, and is otherwise taken literally (no escapes, no `$VAR`
/// expansion: what you write is what the program gets).
///
/// Returns the pairs in file order, or every bad line as `(line, message)`.
pub fn parse_env_file(text: &str) -> Result<EnvVars, Vec<(usize, String)>> {
    let mut vars = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            errors.push((i + 1, format!("expected KEY=VALUE, found {line:?}")));
            continue;
        };
        let key = key.trim();
        if let Err(e) = check_env_key(key) {
            errors.push((i + 1, e));
            continue;
        }
        let value = value.trim();
        let value = strip_quotes(value);
        vars.push((key.to_owned(), value.to_owned()));
    }
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(errors)
    }
}

fn strip_quotes(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// An environment variable name must be non-empty and free of `=`, NUL and whitespace.
pub(crate) fn check_env_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("empty variable name".into());
    }
    if let Some(c) = key
        .chars()
        .find(|c| *c == '=' || *c == '\0' || c.is_whitespace())
    {
        return Err(format!("variable name {key:?} contains {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports_every_bad_line() {
        let ok = parse_env_file("# c\n\nA=1\nexport B = two words \nC=\"q\"\nD='x'\nE=\nF=a=b\n");
        assert_eq!(
            ok.unwrap(),
            [
                ("A", "1"),
                ("B", "two words"),
                ("C", "q"),
                ("D", "x"),
                ("E", ""),
                ("F", "a=b")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let bad = parse_env_file("A=1\nnonsense\nB C=2\n=3\n").unwrap_err();
        assert_eq!(bad.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 3, 4]);
    }
}
