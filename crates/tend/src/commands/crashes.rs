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
        render(&name, &records)
    };
    super::print_text(&text, "the crash records")
}

fn render(name: &str, records: &[CrashRecord]) -> String {
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
        if r.core_dumped && cfg!(target_os = "linux") && Path::new("/usr/bin/coredumpctl").exists()
        {
            let _ = writeln!(s, "    core dump: coredumpctl info {}", r.pid);
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
        let text = render("api", &[r]);
        assert!(
            text.starts_with(
                "2026-12-07T03:00:00.000+00:00  pid 42 after 3.2s: exited with code 2\n    panic: boom (at main.main() /app/main.go:9)\n"
            ),
            "{text}"
        );
        assert_eq!(render("api", &[]), "no crashes of `api` on record\n");
    }
}
