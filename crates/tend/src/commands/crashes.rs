//! `tend crashes [--user] <config-or-name> [--json]`: the service's crash records, newest
//! last: when, after how long, how it died (decoded) and why in one line; `--json` adds the
//! last lines of stderr and stdout of each.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::target::Target;
use crate::crashes::{self, CrashRecord};
use crate::error::CliError;
use crate::place::Scope;
use crate::report::human;

/// Where the service's state is: next to its logs for a config file (as `tend run` keeps
/// it), the installed service's state dir for a name.
fn state_dir(target: &Path, scope: Scope) -> Result<(PathBuf, String), CliError> {
    match Target::parse(target.as_os_str()) {
        Target::Config(path) => {
            let spec = tend_config::load(&path, &tend_config::LoadOptions::default())?.spec;
            Ok((spec.logs.dir, spec.name.to_string()))
        }
        Target::Name(name) => {
            let (name, place) = super::target::installed(&name, scope)?;
            Ok((place.state_dir, name.to_string()))
        }
    }
}

pub(crate) fn crashes(target: &Path, json: bool, scope: Scope) -> Result<ExitCode, CliError> {
    let (dir, name) = state_dir(target, scope)?;
    let file = crashes::path(&dir, &name);
    let records = crashes::read(&file)
        .map_err(|e| CliError::io(format!("cannot read `{}`", file.display()), e))?;
    let text = if json {
        let mut s = serde_json::to_string_pretty(&records)
            .map_err(std::io::Error::other)
            .map_err(|e| CliError::io("cannot write JSON", e))?;
        s.push('\n');
        s
    } else {
        let core_pattern = if cfg!(target_os = "linux") {
            std::fs::read_to_string("/proc/sys/kernel/core_pattern").ok()
        } else {
            None
        };
        let mut text = render(&name, &records, core_pattern.as_deref());
        text.push_str(&dumps_line(&dir));
        text
    };
    super::print_text(&text, "the crash records")
}

/// Where the kernel put a core dump, from `kernel.core_pattern`: systemd-coredump's
/// journal, another handler, or a file (relative to the program's working directory).
fn core_where(core_pattern: &str, pid: u32) -> String {
    let pattern = core_pattern.trim();
    if let Some(handler) = pattern.strip_prefix('|') {
        if handler.contains("systemd-coredump") {
            return format!("coredumpctl info {pid}");
        }
        let program = handler.split_whitespace().next().unwrap_or(handler);
        return format!("handed to `{program}` (kernel.core_pattern)");
    }
    if pattern.starts_with('/') {
        format!("`{pattern}` (kernel.core_pattern; %p is {pid})")
    } else {
        format!("`{pattern}` in the program's working_dir (kernel.core_pattern; %p is {pid})")
    }
}

/// Crash dumps kept for the service (`[diagnostics] dumps` on Windows: `dumps` in its
/// state directory), when there are any.
fn dumps_line(state_dir: &Path) -> String {
    let dir = state_dir.join("dumps");
    let count = std::fs::read_dir(&dir).map_or(0, |d| d.filter_map(Result::ok).count());
    if count == 0 {
        return String::new();
    }
    format!("crash dumps ({count}): {}\n", dir.display())
}

fn render(name: &str, records: &[CrashRecord], core_pattern: Option<&str>) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if records.is_empty() {
        let _ = writeln!(s, "no crashes of `{name}` on record");
        return s;
    }
    for r in records {
        let after = human(std::time::Duration::from_secs_f64(r.after_secs.max(0.0)));
        let _ = writeln!(s, "{}  pid {} after {after}: {}", r.at, r.pid, r.exit);
        if r.summary != r.exit {
            let _ = writeln!(s, "    {}", r.summary);
        }
        if r.core_dumped
            && let Some(pattern) = core_pattern
        {
            let _ = writeln!(s, "    core dump: {}", core_where(pattern, r.pid));
        }
    }
    let _ = writeln!(
        s,
        "({} on record, newest last; the last lines of stderr and stdout of each: tend crashes {name} --json)",
        records.len()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_each_and_the_summary_when_it_says_more() {
        let r = CrashRecord {
            at: "2026-12-07T03:00:00.000+00:00".into(),
            after_secs: 3.2,
            pid: 42,
            cause: "on-its-own".into(),
            exit: "exited with code 2".into(),
            code: Some(2),
            signal: None,
            core_dumped: false,
            summary: "panic: boom (at main.main() /app/main.go:9)".into(),
            stderr: vec!["panic: boom".into()],
            stdout: vec![],
        };
        let text = render("api", &[r], None);
        assert!(
            text.starts_with(
                "2026-12-07T03:00:00.000+00:00  pid 42 after 3.2s: exited with code 2\n    panic: boom (at main.main() /app/main.go:9)\n"
            ),
            "{text}"
        );
        assert_eq!(render("api", &[], None), "no crashes of `api` on record\n");
    }

    #[test]
    fn a_core_dump_is_found_where_the_kernel_put_it() {
        let cases = [
            (
                "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h\n",
                "coredumpctl info 42",
            ),
            (
                "|/usr/share/apport/apport -p%p -s%s -c%c",
                "handed to `/usr/share/apport/apport` (kernel.core_pattern)",
            ),
            (
                "core\n",
                "`core` in the program's working_dir (kernel.core_pattern; %p is 42)",
            ),
            (
                "/var/crash/core.%e.%p",
                "`/var/crash/core.%e.%p` (kernel.core_pattern; %p is 42)",
            ),
        ];
        for (pattern, want) in cases {
            assert_eq!(core_where(pattern, 42), want, "{pattern}");
        }
    }
}
