//! Splitting command lines the way each source's program would see them.

/// Splits a Windows command line into arguments by the rules of the Microsoft C runtime
/// (what `CommandLineToArgvW`, the UCRT and Rust's std use), which is what a program started
/// by NSSM, WinSW, shawl or Servy gets as argv:
///
/// - whitespace separates arguments outside double quotes;
/// - 2n backslashes before `"` are n backslashes and the quote opens or closes a quoted part;
///   2n+1 backslashes before `"` are n backslashes and a literal `"`;
/// - other backslashes are literal;
/// - `""` inside a quoted part is a literal `"`.
///
/// With `program_first`, the first word follows the rule for the program name: up to the
/// next `"` if it starts with one (no escapes), else up to whitespace.
pub(crate) fn split_windows(line: &str, program_first: bool) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let ws = |c: char| c == ' ' || c == '\t';
    if program_first {
        while i < chars.len() && ws(chars[i]) {
            i += 1;
        }
        if i < chars.len() {
            let mut prog = String::new();
            if chars[i] == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    prog.push(chars[i]);
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && !ws(chars[i]) {
                    prog.push(chars[i]);
                    i += 1;
                }
            }
            out.push(prog);
        }
    }
    loop {
        while i < chars.len() && ws(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            return out;
        }
        let mut arg = String::new();
        let mut quoted = false;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                let start = i;
                while i < chars.len() && chars[i] == '\\' {
                    i += 1;
                }
                let n = i - start;
                if i < chars.len() && chars[i] == '"' {
                    arg.extend(std::iter::repeat_n('\\', n / 2));
                    if n % 2 == 1 {
                        arg.push('"');
                        i += 1;
                    }
                } else {
                    arg.extend(std::iter::repeat_n('\\', n));
                }
                continue;
            }
            if c == '"' {
                if quoted && chars.get(i + 1) == Some(&'"') {
                    arg.push('"');
                    i += 2;
                    continue;
                }
                quoted = !quoted;
                i += 1;
                continue;
            }
            if ws(c) && !quoted {
                break;
            }
            arg.push(c);
            i += 1;
        }
        out.push(arg);
    }
}

/// Removes cmd.exe's `^` escapes from a line meant for cmd.exe (as `nssm dump` writes a
/// value with `&`, `|`, `<`, `>` or `^` in it: `^"a ^& b^"`): outside a quoted part, `^`
/// makes the next character literal, and an escaped `"` does not open a quoted part.
pub(crate) fn cmd_unescape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '^' if !quoted => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Splits like Python's `shlex.split` (POSIX mode), which supervisord uses for `command=`:
/// whitespace separates words; `'...'` is literal; in `"..."` a backslash escapes only `"`
/// and `\`; outside quotes a backslash escapes any character. `Err` names what is unclosed.
pub(crate) fn split_posix(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => return Err("the command ends with a lone backslash".into()),
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\')) => {
                            cur.push(chars.next().unwrap_or('\\'));
                        }
                        Some(n) => cur.push(n),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Splits an `args` string the way pm2 does (lib/tools/Config.js): the tokens of the regular
/// expression `[^\s"'=]+="[^"]*"|[^\s"'=]+='[^']*'|"([^"]*)"|'([^']*)'|\S+`, a token wholly
/// in quotes losing them. So `--name="a b"` stays one argument *with* its quotes, as pm2
/// passes it, and there are no escapes.
pub(crate) fn split_pm2(s: &str) -> Vec<String> {
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let word = |c: char| !(c.is_whitespace() || c == '"' || c == '\'' || c == '=');
    while i < b.len() {
        if b[i].is_whitespace() {
            i += 1;
            continue;
        }
        // key="..." or key='...'
        let mut j = i;
        while j < b.len() && word(b[j]) {
            j += 1;
        }
        if j > i && j + 1 < b.len() && b[j] == '=' && (b[j + 1] == '"' || b[j + 1] == '\'') {
            let q = b[j + 1];
            if let Some(end) = b[j + 2..].iter().position(|c| *c == q) {
                let end = j + 2 + end;
                out.push(b[i..=end].iter().collect());
                i = end + 1;
                continue;
            }
        }
        // "..." or '...'
        if b[i] == '"' || b[i] == '\'' {
            let q = b[i];
            if let Some(end) = b[i + 1..].iter().position(|c| *c == q) {
                let inner: String = b[i + 1..i + 1 + end].iter().collect();
                if !inner.trim().is_empty() {
                    out.push(inner);
                }
                i += end + 2;
                continue;
            }
        }
        let start = i;
        while i < b.len() && !b[i].is_whitespace() {
            i += 1;
        }
        out.push(b[start..i].iter().collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_rules() {
        // The examples of Microsoft's "Parsing C command-line arguments" table.
        let cases: &[(&str, &[&str])] = &[
            (r#""abc" d e"#, &["abc", "d", "e"]),
            (r#"a\\b d"e f"g h"#, &[r"a\\b", "de fg", "h"]),
            (r#"a\\\"b c d"#, &[r#"a\"b"#, "c", "d"]),
            (r#"a\\\\"b c" d e"#, &[r"a\\b c", "d", "e"]),
            (r#"a"b"" c d"#, &[r#"ab" c d"#]),
            (r#""it's ""quoted""" x"#, &[r#"it's "quoted""#, "x"]),
        ];
        for (line, want) in cases {
            assert_eq!(split_windows(line, false), *want, "{line}");
        }
        assert_eq!(
            split_windows(r#""C:\Program Files\a.exe" --x "y z""#, true),
            [r"C:\Program Files\a.exe", "--x", "y z"]
        );
    }

    #[test]
    fn cmd_carets() {
        assert_eq!(cmd_unescape(r#"^"a ^& b^""#), r#""a & b""#);
        assert_eq!(cmd_unescape(r#""a ^ b""#), r#""a ^ b""#);
    }

    #[test]
    fn posix_rules() {
        assert_eq!(
            split_posix(r#"prog 'a b' "c \"d\" \x" e\ f"#).unwrap(),
            ["prog", "a b", r#"c "d" \x"#, "e f"]
        );
        assert!(split_posix("a 'b").is_err());
    }

    #[test]
    fn pm2_rules() {
        assert_eq!(
            split_pm2(r#"-a 13 --name="a b" 'c d' "" x"y"#),
            ["-a", "13", r#"--name="a b""#, "c d", r#"x"y"#]
        );
    }
}
