//! Finds the line a TOML key is on, for error messages.
//!
//! `toml::Table` keeps no spans, and a full span-preserving parse is a lot of machinery for
//! a line number. Config files are small and written by hand, so a scan that tracks the
//! current `[table]` header and the `key =` at the start of each line finds nearly every
//! key; when it cannot (unusual layouts), the message simply has no line.

pub(crate) struct LineIndex {
    /// (full dotted key, 1-based line) for every `key =` and `[header]` seen.
    entries: Vec<(String, usize)>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut entries = Vec::new();
        let mut header = String::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_start();
            if let Some(rest) = line.strip_prefix('[') {
                let rest = rest.trim_start_matches('[');
                if let Some(end) = rest.find(']') {
                    header = normalize(&rest[..end]);
                    entries.push((header.clone(), i + 1));
                }
                continue;
            }
            if let Some(eq) = line.find('=') {
                let key = normalize(&line[..eq]);
                if key.is_empty() || key.starts_with('#') {
                    continue;
                }
                let full = if header.is_empty() {
                    key
                } else {
                    format!("{header}.{key}")
                };
                entries.push((full, i + 1));
            }
        }
        Self { entries }
    }

    /// The line of `path`, or of the closest enclosing key (an inline table's line for
    /// one of its entries).
    pub(crate) fn find(&self, path: &str) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for (key, line) in &self.entries {
            let hit = path == key
                || (path.starts_with(key.as_str()) && path[key.len()..].starts_with(['.', '[']));
            if hit && best.is_none_or(|(len, _)| key.len() > len) {
                best = Some((key.len(), *line));
            }
        }
        best.map(|(_, line)| line)
    }
}

/// `"a" . b` -> `a.b`
fn normalize(key: &str) -> String {
    key.split('.')
        .map(|part| part.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_headers_and_inline_entries() {
        let idx = LineIndex::new(
            "name = \"x\"\n# c = 1\nenv = { A = \"1\" }\n\n[restart]\ndelay = \"1s\"\n\"max_delay\" = \"5x\"\n[ logs ]\nkeep=3\n",
        );
        assert_eq!(idx.find("name"), Some(1));
        assert_eq!(idx.find("env.A"), Some(3));
        assert_eq!(idx.find("name[0]"), Some(1));
        assert_eq!(idx.find("restart"), Some(5));
        assert_eq!(idx.find("restart.delay"), Some(6));
        assert_eq!(idx.find("restart.max_delay"), Some(7));
        assert_eq!(idx.find("logs.keep"), Some(9));
        assert_eq!(idx.find("c"), None);
        assert_eq!(idx.find("stop.timeout"), None);
    }
}
