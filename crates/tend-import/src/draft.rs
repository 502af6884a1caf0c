//! The one intermediate form every converter fills, and the one renderer that turns it into
//! a tend config.
//!
//! A converter sets tend keys (by their path, e.g. `restart.policy`) and attaches notes to
//! keys: a note is a setting of the source that tend has no equivalent for, and says what
//! tend does instead. The renderer writes the keys grouped by section in the order of
//! docs/config.md, each note as a comment above the key it belongs to (or, when that key is
//! not set, where the key would be), so the file reads like a hand-written one.

use std::time::Duration;

use toml::Value;

/// The keys the renderer knows, by section, in the order of docs/config.md. A converter can
/// only set or annotate these (checked in debug builds).
const LAYOUT: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "name",
            "display_name",
            "description",
            "command",
            "working_dir",
            "env",
            "env_file",
        ],
    ),
    (
        "restart",
        &[
            "policy",
            "success_exit_codes",
            "delay",
            "max_delay",
            "multiplier",
            "reset_after",
            "limit",
            "limit_window",
            "on_give_up",
            "hook_timeout",
        ],
    ),
    ("stop", &["timeout", "signal", "windows"]),
    (
        "logs",
        &[
            "dir",
            "mode",
            "timestamps",
            "stream_tags",
            "max_size",
            "rotate_every",
            "keep",
            "max_age",
            "max_total",
            "compress",
            "max_line",
            "encoding",
        ],
    ),
    (
        "service",
        &[
            "start",
            "depends_on",
            "account",
            "password_env",
            "preshutdown_timeout",
            "hardening",
        ],
    ),
    (
        "health",
        &[
            "http",
            "tcp",
            "command",
            "interval",
            "timeout",
            "start_period",
            "failures",
            "on_unhealthy",
            "silence",
        ],
    ),
    (
        "limits",
        &[
            "memory",
            "memory_for",
            "cpu_percent",
            "cpu_for",
            "action",
            "sample_every",
        ],
    ),
    ("notify", &["command", "webhook", "events"]),
    ("upgrade", &["verify", "verify_command", "keep", "preserve"]),
];

/// Comments are wrapped to this width (the repo's rustfmt width, for a file read side by side).
const WIDTH: usize = 96;

/// A tend config being built from another tool's settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    /// Where it came from, for the header comment (`nssm dump svc.txt`).
    origin: String,
    values: Vec<(&'static str, Value)>,
    env: Vec<(String, String)>,
    notes: Vec<(&'static str, String)>,
}

impl Draft {
    pub(crate) fn new(origin: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            ..Self::default()
        }
    }

    /// The service name as set, or empty.
    pub(crate) fn name(&self) -> String {
        self.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets a key; a later set of the same key wins (as a later line does in most sources).
    pub(crate) fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        debug_assert!(known(key), "unknown tend key {key}");
        let value = value.into();
        match self.values.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.values.push((key, value)),
        }
    }

    pub(crate) fn set_str(&mut self, key: &'static str, value: &str) {
        self.set(key, Value::String(value.to_owned()));
    }

    pub(crate) fn set_list(&mut self, key: &'static str, items: &[String]) {
        self.set(
            key,
            Value::Array(items.iter().cloned().map(Value::String).collect()),
        );
    }

    pub(crate) fn set_duration(&mut self, key: &'static str, d: Duration) {
        self.set_str(key, &duration(d));
    }

    /// Adds (or replaces) an environment variable, keeping first-set order.
    pub(crate) fn env(&mut self, key: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.env.push((key.to_owned(), value.to_owned())),
        }
    }

    pub(crate) fn env_vars(&self) -> &[(String, String)] {
        &self.env
    }

    pub(crate) fn clear_env(&mut self) {
        self.env.clear();
    }

    /// A setting of the source that tend has no (exact) equivalent for, shown as a comment
    /// above `key`: say what the source did and what tend does instead.
    pub(crate) fn note(&mut self, key: &'static str, text: impl Into<String>) {
        debug_assert!(known(key), "unknown tend key {key}");
        let text = text.into();
        if !self.notes.iter().any(|(k, t)| *k == key && *t == text) {
            self.notes.push((key, text));
        }
    }

    /// The config as TOML text.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        comment(
            &mut out,
            &format!(
                "Imported by `tend import` from {}. Each comment below is a setting of the \
                 source that tend has no exact equivalent for, and says what tend does instead. \
                 Check them, then `tend validate` this file.",
                self.origin
            ),
        );
        for (section, keys) in LAYOUT {
            let set = |k: &str| self.get(&join(section, k)).is_some();
            let noted = |k: &str| self.notes.iter().any(|(n, _)| *n == join(section, k));
            let env_here = section.is_empty() && !self.env.is_empty();
            if !keys.iter().any(|k| set(k) || noted(k)) && !env_here {
                continue;
            }
            out.push('\n');
            let has_values = keys.iter().any(|k| set(k));
            if !section.is_empty() {
                if has_values {
                    out.push_str(&format!("[{section}]\n"));
                } else {
                    // Only notes: a real empty [health] or [notify] would be an error, and an
                    // empty [limits] would start sampling.
                    out.push_str(&format!("# [{section}]\n"));
                }
            }
            let mut env_table = None;
            for key in *keys {
                let path = join(section, key);
                for (_, text) in self.notes.iter().filter(|(n, _)| **n == path) {
                    comment(&mut out, text);
                }
                if section.is_empty() && *key == "env" {
                    if !self.env.is_empty() {
                        match inline_env(&self.env) {
                            Some(line) => out.push_str(&line),
                            // Too long for one line: a [env] table after the top-level keys.
                            None => env_table = Some(()),
                        }
                    }
                    continue;
                }
                if let Some(v) = self.get(&path) {
                    out.push_str(&format!("{} = {}\n", bare_or_quoted(key), v));
                }
            }
            if env_table.is_some() {
                out.push_str("\n[env]\n");
                for (k, v) in &self.env {
                    out.push_str(&format!(
                        "{} = {}\n",
                        bare_or_quoted(k),
                        Value::String(v.clone())
                    ));
                }
            }
        }
        out
    }
}

fn join(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_owned()
    } else {
        format!("{section}.{key}")
    }
}

fn known(path: &str) -> bool {
    let (section, key) = path.split_once('.').unwrap_or(("", path));
    LAYOUT
        .iter()
        .any(|(s, keys)| *s == section && keys.contains(&key))
}

fn inline_env(env: &[(String, String)]) -> Option<String> {
    let pairs: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{} = {}", bare_or_quoted(k), Value::String(v.clone())))
        .collect();
    let line = format!("env = {{ {} }}\n", pairs.join(", "));
    (line.len() <= 100).then_some(line)
}

/// A TOML key as written: bare when it can be, quoted (and escaped) otherwise.
fn bare_or_quoted(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}

/// Appends `text` as `# ` comment lines wrapped at [`WIDTH`]. Control characters from the
/// source are shown escaped, so a value can never end the comment and become TOML.
fn comment(out: &mut String, text: &str) {
    let clean: String = text
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect();
    let mut line = String::from("#");
    for word in clean.split(' ').filter(|w| !w.is_empty()) {
        if line.len() > 1 && line.len() + 1 + word.len() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#  ");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// A duration the way a person writes it in a tend config: the largest unit that is exact.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A byte count as a tend size: the largest binary unit that is exact.
pub(crate) fn size(bytes: u64) -> String {
    if bytes == 0 {
        return "0".into();
    }
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}")
}

/// Turns any text into a valid tend service name (`[A-Za-z0-9._-]`, at most 64, not starting
/// with `.` or `-`), or `None` if nothing usable is left.
pub(crate) fn service_name(raw: &str) -> Option<String> {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.starts_with(['.', '-']) {
        s.remove(0);
    }
    s.truncate(64);
    (!s.is_empty()).then_some(s)
}

/// Sets `name` from the source's name, with a note when it had to be changed.
pub(crate) fn set_name(d: &mut Draft, raw: &str, what: &str) -> bool {
    match service_name(raw) {
        Some(n) => {
            if n != raw {
                d.note(
                    "name",
                    format!(
                        "{what} {raw:?} is not a valid tend name (letters, digits, `.`, `_`, \
                         `-`): named {n:?}"
                    ),
                );
                if !d.has("display_name") {
                    d.set_str("display_name", raw);
                }
            }
            d.set_str("name", &n);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sections_in_order_with_notes_above_their_keys() {
        let mut d = Draft::new("test");
        d.set_str("restart.policy", "always");
        d.set_str("name", "web");
        d.set_list("command", &["/bin/a b".into(), "it's \"q\"".into()]);
        d.note("restart.policy", "source Restart=yes: tend restarts always");
        d.note("limits.memory", "no memory limit");
        d.env("A", "1");
        let out = d.render();
        let name = out.find("name = \"web\"").unwrap();
        let cmd = out.find("command = ").unwrap();
        let env = out.find("env = { A = \"1\" }").unwrap();
        let restart = out.find("[restart]\n# source Restart=yes").unwrap();
        let limits = out.find("# [limits]\n# no memory limit").unwrap();
        assert!(
            name < cmd && cmd < env && env < restart && restart < limits,
            "{out}"
        );
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        let cmd = parsed["command"].as_array().unwrap();
        assert_eq!(cmd[1].as_str(), Some("it's \"q\""));
    }

    #[test]
    fn a_long_env_becomes_a_table_and_odd_keys_are_quoted() {
        let mut d = Draft::new("test");
        d.set_str("name", "x");
        d.set_list("command", &["x".into()]);
        for i in 0..10 {
            d.env(&format!("VARIABLE_{i}"), "some longer value");
        }
        d.env("a.b", "\n");
        let out = d.render();
        assert!(out.contains("\n[env]\n"), "{out}");
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(parsed["env"]["a.b"].as_str(), Some("\n"));
    }

    /// `[upgrade]` is a section a converter can fill or annotate (a source's own
    /// deployment settings), last, as in docs/config.md.
    #[test]
    fn upgrade_is_a_known_section() {
        let mut d = Draft::new("test");
        d.set_str("name", "x");
        d.set_list("command", &["/opt/x/x".into()]);
        d.set_duration("upgrade.verify", Duration::from_secs(10));
        d.set_list("upgrade.preserve", &["data".into()]);
        d.note(
            "upgrade.keep",
            "the source keeps 5 old builds: tend keeps `keep` releases",
        );
        d.note("notify.events", "a note in [notify]");
        let out = d.render();
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(parsed["upgrade"]["verify"].as_str(), Some("10s"));
        assert_eq!(parsed["upgrade"]["preserve"][0].as_str(), Some("data"));
        assert!(
            out.find("[upgrade]").unwrap() > out.find("# [notify]").unwrap(),
            "{out}"
        );
        assert!(out.contains("tend keeps `keep` releases"), "{out}");
    }

    #[test]
    fn a_note_cannot_break_out_of_its_comment() {
        let mut d = Draft::new("test\nname = \"evil\"");
        d.set_str("name", "x");
        d.note("name", "line\nname = \"evil\"");
        let parsed: toml::Table = toml::from_str(&d.render()).unwrap();
        assert_eq!(parsed["name"].as_str(), Some("x"));
    }

    #[test]
    fn durations_sizes_and_names() {
        assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration(Duration::from_secs(120)), "2m");
        assert_eq!(duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(size(50 << 20), "50MiB");
        assert_eq!(size(1000), "1000");
        assert_eq!(service_name("my app:1").as_deref(), Some("my-app-1"));
        assert_eq!(service_name("--x").as_deref(), Some("x"));
        assert_eq!(service_name("::"), None);
    }
}
