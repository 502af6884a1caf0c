//! A strict parser of the Prometheus text exposition format, for tests. Shared with the
//! `tend` crate's end-to-end tests (which include this file by path), so the textfile tend
//! writes is checked by the same rules as the renderer's own output.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses a different subset"
)]

use std::collections::{BTreeMap, HashSet};

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

fn is_name(s: &str, allow_colon: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (allow_colon && c == ':');
    chars.next().is_some_and(ok_first) && chars.all(|c| ok_first(c) || c.is_ascii_digit())
}

/// A strict parser of the Prometheus text format 0.0.4, as far as tend uses it: every line
/// ends in `\n`; `# HELP` and `# TYPE` at most once per family and before its samples; a
/// family's samples are contiguous; label values use only the three escapes; no duplicate
/// series; values are Go floats. (prometheus-parse on crates.io is regex-based and lenient,
/// which is the opposite of what a format test needs.)
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the text must end with a newline".into());
    }
    let mut samples = Vec::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps = HashSet::new();
    let mut finished = HashSet::new();
    let mut current: Option<String> = None;
    let mut series = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let tail = parts.next().unwrap_or("");
            if !is_name(name, true) {
                return Err(err("bad metric name"));
            }
            if finished.contains(name) || current.as_deref() == Some(name) {
                return Err(err("HELP/TYPE after the family's samples"));
            }
            match kw {
                "HELP" => {
                    if !helps.insert(name.to_owned()) || tail.is_empty() {
                        return Err(err("duplicate or empty HELP"));
                    }
                }
                "TYPE" => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&tail) {
                        return Err(err("unknown type"));
                    }
                    if types.insert(name.to_owned(), tail.to_owned()).is_some() {
                        return Err(err("duplicate TYPE"));
                    }
                }
                _ => return Err(err("unknown comment keyword")),
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            return Err(err("stray line"));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value"))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(err("bad metric name"));
        }
        if current.as_deref() != Some(name) {
            if let Some(prev) = current.take() {
                finished.insert(prev);
            }
            if finished.contains(name) {
                return Err(err("samples of a family are not contiguous"));
            }
            current = Some(name.to_owned());
        }
        let kind = types
            .get(name)
            .ok_or_else(|| err("sample before its TYPE"))?;
        if kind == "counter" && !name.ends_with("_total") {
            return Err(err("counter not named *_total"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(after) = rest.strip_prefix('{') {
            let mut chars = after.char_indices().peekable();
            loop {
                let start = chars
                    .peek()
                    .map(|(i, _)| *i)
                    .ok_or_else(|| err("open labels"))?;
                if after[start..].starts_with('}') {
                    rest = &after[start + 1..];
                    break;
                }
                let eq = after[start..]
                    .find('=')
                    .ok_or_else(|| err("label without ="))?;
                let lname = &after[start..start + eq];
                if !is_name(lname, false) {
                    return Err(err("bad label name"));
                }
                for _ in 0..=eq {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(err("label value not quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars
                        .next()
                        .ok_or_else(|| err("unterminated label value"))?
                        .1
                    {
                        '"' => break,
                        '\\' => match chars.next().ok_or_else(|| err("dangling escape"))?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            _ => return Err(err("unknown escape")),
                        },
                        '\n' => return Err(err("raw newline in label value")),
                        c => value.push(c),
                    }
                }
                if labels.insert(lname.to_owned(), value).is_some() {
                    return Err(err("duplicate label"));
                }
                match chars.peek().map(|(_, c)| *c) {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {}
                    _ => return Err(err("expected , or }")),
                }
            }
        }
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("no space before the value"))?;
        if value.contains(' ') {
            return Err(err("timestamps are not expected"));
        }
        let value = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse::<f64>().map_err(|_| err("bad value"))?,
        };
        if !series.insert(format!("{name}{labels:?}")) {
            return Err(err("duplicate series"));
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The sample of `name` with exactly these labels.
pub fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.name == name
            && s.labels.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}
