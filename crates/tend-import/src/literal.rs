//! JSON, and the JavaScript object literals pm2 ecosystem files are written in.
//!
//! A small parser of its own rather than the json5 crate: ecosystem files are JavaScript
//! (`module.exports = { apps: [...] }`), not JSON5 documents, so the `module.exports =`
//! wrapper, `;` and `'use strict'` must be accepted around the literal; and a real
//! expression (`path.join(__dirname, 'x')`, `process.env.PORT || 3000`) must be refused with
//! its line and a fix, which a JSON5 parser's generic syntax error would not say. It reads
//! objects with unquoted or quoted keys, single- or double-quoted strings and template
//! strings without `${}`, numbers, true/false/null/undefined, trailing commas and comments.

use crate::error::{At, ImportError, line_at};
use crate::tree::{Node, V};

/// Parses a whole file: one literal, or `module.exports = <literal>` / `export default`.
pub(crate) fn parse_file(text: &str, at: &At) -> Result<Node, ImportError> {
    let mut p = Parser { s: text, i: 0, at };
    p.skip_ws()?;
    // 'use strict'; at the top of a module.
    for directive in ["'use strict'", "\"use strict\""] {
        if p.rest().starts_with(directive) {
            p.i += directive.len();
            p.skip_ws()?;
            p.eat(';');
            p.skip_ws()?;
        }
    }
    for prefix in ["module.exports", "export default"] {
        if p.rest().starts_with(prefix) {
            p.i += prefix.len();
            p.skip_ws()?;
            if prefix == "module.exports" && !p.eat('=') {
                return Err(p.expr_error("expected `=` after module.exports"));
            }
            p.skip_ws()?;
            break;
        }
    }
    let node = p.value()?;
    p.skip_ws()?;
    p.eat(';');
    p.skip_ws()?;
    if p.i < p.s.len() {
        return Err(p.expr_error("more follows the value"));
    }
    Ok(node)
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
    at: &'a At,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.i..]
    }

    fn line(&self) -> usize {
        line_at(self.s, self.i)
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.i += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn err(&self, msg: impl Into<String>) -> ImportError {
        self.at.err(Some(self.line()), None, msg)
    }

    /// A JavaScript expression where a literal value must be: say which, and how to fix it.
    fn expr_error(&self, what: &str) -> ImportError {
        let snippet: String = self
            .rest()
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        self.err(format!(
            "{what}: `{}` is JavaScript that tend import does not run (it reads literal \
             values only). Write the value itself, or let node evaluate the file: \
             node -e 'console.log(JSON.stringify(require(\"./ecosystem.config.js\"), null, 2))' \
             > ecosystem.json, and import that",
            snippet.trim()
        ))
    }

    fn skip_ws(&mut self) -> Result<(), ImportError> {
        loop {
            let skipped = self.rest().len() - self.rest().trim_start().len();
            self.i += skipped;
            let t = self.rest();
            if t.starts_with("//") {
                self.i += t.find('\n').unwrap_or(t.len());
            } else if let Some(body) = t.strip_prefix("/*") {
                match body.find("*/") {
                    Some(end) => self.i += end + 4,
                    None => return Err(self.err("a /* comment is not closed")),
                }
            } else {
                return Ok(());
            }
        }
    }

    fn value(&mut self) -> Result<Node, ImportError> {
        self.skip_ws()?;
        let line = self.line();
        let node = match self.peek() {
            Some('{') => self.object()?,
            Some('[') => self.array()?,
            Some('"' | '\'' | '`') => Node::new(line, V::Str(self.string()?)),
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.number()?,
            Some(c) if c.is_alphabetic() || c == '_' || c == '$' => {
                let word = self.ident();
                match word.as_str() {
                    "true" => Node::new(line, V::Bool(true)),
                    "false" => Node::new(line, V::Bool(false)),
                    "null" | "undefined" => Node::new(line, V::Null),
                    _ => {
                        self.i -= word.len();
                        return Err(self.expr_error("not a literal value"));
                    }
                }
            }
            None => return Err(self.err("the file ends where a value should be")),
            Some(_) => return Err(self.expr_error("not a literal value")),
        };
        // A literal followed by an operator (`'a' + b`, `x || 3`) is an expression too.
        self.skip_ws()?;
        if let Some(c) = self.peek()
            && !matches!(c, ',' | '}' | ']' | ';')
        {
            return Err(self.expr_error("not a literal value"));
        }
        Ok(node)
    }

    fn ident(&mut self) -> String {
        let len = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(self.rest().len());
        let word = self.rest()[..len].to_owned();
        self.i += len;
        word
    }

    fn object(&mut self) -> Result<Node, ImportError> {
        let line = self.line();
        self.eat('{');
        let mut entries = Vec::new();
        loop {
            self.skip_ws()?;
            if self.eat('}') {
                break;
            }
            let key = match self.peek() {
                Some('"' | '\'') => self.string()?,
                Some(c) if c.is_alphanumeric() || c == '_' || c == '$' => self.ident(),
                Some('.') if self.rest().starts_with("...") => {
                    return Err(self.expr_error("a spread is not a literal"));
                }
                Some('[') => return Err(self.expr_error("a computed key is not a literal")),
                _ => return Err(self.err("expected a key or `}` in the object")),
            };
            self.skip_ws()?;
            if !self.eat(':') {
                return Err(self.expr_error(&format!(
                    "expected `:` after the key `{key}` (methods and shorthand properties are \
                     JavaScript)"
                )));
            }
            let value = self.value()?;
            entries.push((key, value));
            if self.after_item('}', "object")? {
                break;
            }
        }
        Ok(Node::new(line, V::Map(entries)))
    }

    /// After an entry of an object or a list: `,` (more may follow: `false`) or `close`
    /// (the end: `true`).
    fn after_item(&mut self, close: char, what: &str) -> Result<bool, ImportError> {
        self.skip_ws()?;
        if self.eat(',') {
            return Ok(false);
        }
        if self.eat(close) {
            Ok(true)
        } else {
            Err(self.err(format!("expected `,` or `{close}` in the {what}")))
        }
    }

    fn array(&mut self) -> Result<Node, ImportError> {
        let line = self.line();
        self.eat('[');
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            if self.eat(']') {
                break;
            }
            items.push(self.value()?);
            if self.after_item(']', "list")? {
                break;
            }
        }
        Ok(Node::new(line, V::List(items)))
    }

    fn string(&mut self) -> Result<String, ImportError> {
        let quote = self.peek().unwrap_or('"');
        let start_line = self.line();
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self
                    .at
                    .err(Some(start_line), None, "a string is not closed"));
            };
            self.i += c.len_utf8();
            match c {
                c if c == quote => return Ok(out),
                '$' if quote == '`' && self.peek() == Some('{') => {
                    self.i -= 1;
                    return Err(self.expr_error("a template string with ${...}"));
                }
                '\n' if quote != '`' => {
                    return Err(self.at.err(
                        Some(start_line),
                        None,
                        "a string is not closed on its line",
                    ));
                }
                '\\' => {
                    let Some(e) = self.peek() else { continue };
                    self.i += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'v' => out.push('\u{b}'),
                        '0' => out.push('\0'),
                        '\n' => {}
                        'x' => out.push(self.hex(2)?),
                        'u' => {
                            if self.eat('{') {
                                let end = self.rest().find('}').unwrap_or(0);
                                let code = u32::from_str_radix(&self.rest()[..end], 16)
                                    .ok()
                                    .and_then(char::from_u32)
                                    .ok_or_else(|| self.err("bad \\u{...} escape"))?;
                                self.i += end + 1;
                                out.push(code);
                            } else {
                                out.push(self.utf16_escape()?);
                            }
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex(&mut self, n: usize) -> Result<char, ImportError> {
        let digits = self.rest().get(..n).unwrap_or("");
        let c = u32::from_str_radix(digits, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.err("bad escape in a string"))?;
        self.i += n;
        Ok(c)
    }

    /// `\uXXXX`, joining a surrogate pair written as two escapes.
    fn utf16_escape(&mut self) -> Result<char, ImportError> {
        let bad = |p: &Self| p.err("bad \\u escape in a string");
        let hi =
            u16::from_str_radix(self.rest().get(..4).unwrap_or(""), 16).map_err(|_| bad(self))?;
        self.i += 4;
        let mut units = vec![hi];
        if (0xD800..0xDC00).contains(&hi) && self.rest().starts_with("\\u") {
            let lo = u16::from_str_radix(self.rest().get(2..6).unwrap_or(""), 16)
                .map_err(|_| bad(self))?;
            self.i += 6;
            units.push(lo);
        }
        char::decode_utf16(units)
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| bad(self))
    }

    fn number(&mut self) -> Result<Node, ImportError> {
        let line = self.line();
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_')))
            .unwrap_or(self.rest().len());
        let raw = self.rest()[..len].to_owned();
        let clean = raw.replace('_', "");
        let unsigned = clean.trim_start_matches(['+', '-']);
        let neg = clean.starts_with('-');
        let value = if let Some(hex) = unsigned
            .strip_prefix("0x")
            .or_else(|| unsigned.strip_prefix("0X"))
        {
            i64::from_str_radix(hex, 16).ok().map(|v| v as f64)
        } else {
            unsigned.parse::<f64>().ok()
        };
        let Some(v) = value else {
            return Err(self.expr_error("not a number"));
        };
        self.i += len;
        Ok(Node::new(line, V::Num(if neg { -v } else { v }, raw)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Node, ImportError> {
        parse_file(s, &At::new("eco.config.js"))
    }

    #[test]
    fn reads_json5_like_literals() {
        let n = parse(
            "// pm2\n'use strict';\nmodule.exports = {\n  apps: [{\n    name: 'api', // x\n    \
             \"script\": `./a.js`,\n    args: ['--a', \"b\\\"c\"],\n    instances: 0x2,\n    \
             /* c */ watch: false,\n  },],\n};\n",
        )
        .unwrap();
        let app = &n.all("apps")[0];
        assert_eq!(app.str_of("name").as_deref(), Some("api"));
        assert_eq!(app.str_of("script").as_deref(), Some("./a.js"));
        assert_eq!(app.get("instances").and_then(Node::num), Some(2.0));
        assert_eq!(app.get("name").map(|n| n.line), Some(5));
        let args: Vec<_> = app.all("args").iter().filter_map(|n| n.text()).collect();
        assert_eq!(args, ["--a", "b\"c"]);
    }

    #[test]
    fn refuses_expressions_with_their_line() {
        for (src, line) in [
            (
                "module.exports = {\n apps: [{ cwd: path.join(__dirname, 'x') }] }",
                2,
            ),
            (
                "module.exports = {\n\n apps: [{ env: { PORT: process.env.PORT || 3 } }] }",
                3,
            ),
            ("module.exports = { apps: [{ name: 'a' + b }] }", 1),
            ("module.exports = { apps: [{ name: `x${y}` }] }", 1),
            ("const x = 1;\nmodule.exports = {}", 1),
        ] {
            let e = parse(src).unwrap_err();
            assert_eq!(e.line, Some(line), "{src}: {e}");
            assert!(e.message.contains("JavaScript"), "{e}");
        }
    }

    #[test]
    fn a_missing_comma_names_what_was_expected() {
        for (src, want) in [
            (
                "module.exports = { apps: ['a'; 'b'] }",
                "expected `,` or `]` in the list",
            ),
            (
                "module.exports = { a: 'x'; b: 2 }",
                "expected `,` or `}` in the object",
            ),
        ] {
            let e = parse(src).unwrap_err();
            assert!(e.message.contains(want), "{src}: {e}");
        }
    }
}
