//! `tend logs <config-or-name> [-n N] [-f] [--out|--err] [--tend]`: the last lines of a
//! service's logs, and with `-f` the lines that follow, across rotations (like `tail -F`).

mod out;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use tend_core::LogMode;
use tend_logs::LogKind;
use tend_logs::tail::{Follower, last_lines, matching_lines};

use super::target::Target;
use crate::error::CliError;
use crate::place::Scope;

/// Which files and lines to show.
pub(crate) struct Selection {
    pub(crate) out: bool,
    pub(crate) err: bool,
    pub(crate) tend: bool,
    /// `--grep`: a regular expression a line must match.
    pub(crate) grep: Option<String>,
    /// `--since`: a duration back from now, or an RFC 3339 time.
    pub(crate) since: Option<String>,
}

/// The lines `--grep` and `--since` let through.
struct Filter {
    grep: Option<regex_lite::Regex>,
    since: Option<chrono::DateTime<chrono::FixedOffset>>,
}

impl Filter {
    fn new(sel: &Selection) -> Result<Self, CliError> {
        let grep = sel
            .grep
            .as_deref()
            .map(|g| {
                regex_lite::Regex::new(g).map_err(|e| {
                    CliError::Invalid(format!("--grep `{g}` is not a regular expression: {e}"))
                })
            })
            .transpose()?;
        let since = sel.since.as_deref().map(parse_since).transpose()?;
        Ok(Self { grep, since })
    }

    fn active(&self) -> bool {
        self.grep.is_some() || self.since.is_some()
    }

    /// Lines are bytes: a regular expression sees them as UTF-8, invalid bytes replaced.
    fn keep(&self, line: &[u8]) -> bool {
        self.grep
            .as_ref()
            .is_none_or(|g| g.is_match(&String::from_utf8_lossy(line)))
    }
}

/// `--since`: `10m`, `2h`, `1d` back from now, or an RFC 3339 time.
fn parse_since(when: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, CliError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(when) {
        return Ok(t);
    }
    match humantime::parse_duration(when) {
        Ok(d) => {
            let back = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
            let now = chrono::Local::now().fixed_offset();
            Ok(now.checked_sub_signed(back).unwrap_or(now))
        }
        Err(_) => Err(CliError::Invalid(format!(
            "--since `{when}` is neither a duration nor a time (examples: 10m, 2h, 1d, \
             2026-12-07T03:00:00+01:00)"
        ))),
    }
}

/// Finds the service's log directory, name and mode: from a config file (as `tend run` uses
/// it), or from the installed config of a service name, by the rule of [`Target`].
fn locate(target: &Path, scope: Scope) -> Result<(PathBuf, String, LogMode), CliError> {
    let loaded = match Target::parse(target.as_os_str()) {
        Target::Config(path) => tend_config::load(&path, &tend_config::LoadOptions::default())?,
        Target::Name(name) => {
            let (_, place) = super::target::installed(&name, scope)?;
            tend_config::load(&place.config, &crate::place::load_options(scope)?)?
        }
    };
    let spec = loaded.spec;
    Ok((spec.logs.dir, spec.name.to_string(), spec.logs.mode))
}

fn kinds(mode: LogMode, sel: &Selection) -> Vec<LogKind> {
    if sel.tend {
        return vec![LogKind::Supervisor];
    }
    match mode {
        // One file holds both streams; --out/--err cannot split it.
        LogMode::Combined => vec![LogKind::Combined],
        LogMode::Separate => match (sel.out, sel.err) {
            (true, false) => vec![LogKind::Out],
            (false, true) => vec![LogKind::Err],
            _ => vec![LogKind::Out, LogKind::Err],
        },
    }
}

pub(crate) fn logs(
    target: &Path,
    n: usize,
    follow: bool,
    sel: &Selection,
    scope: Scope,
) -> Result<ExitCode, CliError> {
    let filter = Filter::new(sel)?;
    let (dir, name, mode) = locate(target, scope)?;
    let kinds = kinds(mode, sel);
    let many = kinds.len() > 1;
    let mut out = out::Output::stdout();
    if follow {
        return follow_logs(&dir, &name, &kinds, n, &filter, &mut out);
    }
    for kind in &kinds {
        let shown = last_of(&dir, &name, *kind, n, &filter, many)?;
        // Bytes as they are (converted only for a Windows console): never stop at one.
        if let Err(e) = out.write_all(&shown) {
            return out::write_failed(e);
        }
    }
    if let Err(e) = out.finish() {
        return out::write_failed(e);
    }
    Ok(ExitCode::SUCCESS)
}

/// The last `n` lines of `kind` that `filter` lets through, under a `==> file <==` header
/// when several files are shown.
fn last_of(
    dir: &Path,
    name: &str,
    kind: LogKind,
    n: usize,
    filter: &Filter,
    many: bool,
) -> Result<Vec<u8>, CliError> {
    let path = kind.active_path(dir, name);
    let lines = if filter.active() {
        matching_lines(dir, name, kind, n, &|l| filter.keep(l), filter.since)
    } else {
        last_lines(dir, name, kind, n)
    }
    .map_err(|e| CliError::io(format!("cannot read `{}`", path.display()), e))?;
    if !many {
        return Ok(lines);
    }
    let mut shown = format!("==> {} <==\n", path.display()).into_bytes();
    shown.extend_from_slice(&lines);
    Ok(shown)
}

/// The last `n` lines of each family, then every line that follows, across rotations:
/// each follower hands out its own last lines first, so none is missed or shown twice
/// between the two. With `--grep` or `--since` the lines before the follow are the last `n`
/// that match (read before the follower starts, so a line written in between may show
/// twice, never not at all), and only matching lines follow.
fn follow_logs(
    dir: &Path,
    name: &str,
    kinds: &[LogKind],
    n: usize,
    filter: &Filter,
    out: &mut impl std::io::Write,
) -> Result<ExitCode, CliError> {
    let many = kinds.len() > 1;
    let mut followers: Vec<Follower> = kinds
        .iter()
        .map(|k| Follower::family(dir, name, *k, if filter.active() { 0 } else { n }))
        .collect();
    if filter.active() {
        for kind in kinds {
            let shown = last_of(dir, name, *kind, n, filter, many)?;
            if let Err(e) = out.write_all(&shown).and_then(|()| out.flush()) {
                return out::write_failed(e);
            }
        }
    }
    // Per follower, the start of a line whose end has not been read yet.
    let mut carry: Vec<Vec<u8>> = vec![Vec::new(); followers.len()];
    let mut buf = Vec::new();
    let mut last_shown: Option<usize> = None;
    loop {
        let mut any = false;
        for (i, f) in followers.iter_mut().enumerate() {
            buf.clear();
            match f.poll(&mut buf) {
                Ok(0) => {}
                Ok(_) => {
                    any = true;
                    if filter.grep.is_some() {
                        buf = only_matching(&mut carry[i], &buf, filter);
                        if buf.is_empty() {
                            continue;
                        }
                    }
                    if many && last_shown != Some(i) {
                        if let Err(e) = writeln!(out, "\n==> {} <==", f.path().display()) {
                            return out::write_failed(e);
                        }
                        last_shown = Some(i);
                    }
                    // A closed pipe (`tend logs -f | head`) ends the follow quietly; any
                    // other write error is reported.
                    if let Err(e) = out.write_all(&buf).and_then(|()| out.flush()) {
                        return out::write_failed(e);
                    }
                }
                Err(e) => {
                    return Err(CliError::io(
                        format!("cannot follow `{}`", f.path().display()),
                        e,
                    ));
                }
            }
        }
        // A reader of files has no change notification that works across rotations on
        // every OS; a short poll costs nothing measurable and is what `tail -F` does.
        if !any {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The complete lines of `carry` + `chunk` that `filter` keeps; an unfinished last line
/// waits in `carry` for its end.
fn only_matching(carry: &mut Vec<u8>, chunk: &[u8], filter: &Filter) -> Vec<u8> {
    carry.extend_from_slice(chunk);
    let Some(end) = carry.iter().rposition(|b| *b == b'\n') else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    for line in carry[..end].split(|b| *b == b'\n') {
        if filter.keep(line) {
            kept.extend_from_slice(line);
            kept.push(b'\n');
        }
    }
    carry.drain(..=end);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_filter_keeps_whole_matching_lines_across_chunks() {
        let filter = Filter {
            grep: Some(regex_lite::Regex::new("ERR").unwrap()),
            since: None,
        };
        let mut carry = Vec::new();
        assert_eq!(
            only_matching(&mut carry, b"ok 1\nERR 2\nER", &filter),
            b"ERR 2\n"
        );
        assert_eq!(
            only_matching(&mut carry, b"R 3\nok 4\n", &filter),
            b"ERR 3\n"
        );
        assert!(carry.is_empty());
    }

    #[test]
    fn since_takes_durations_and_times_and_says_what_it_takes() {
        let t = parse_since("2026-12-07T03:00:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-07T03:00:00+01:00");
        let ago = parse_since("10m").unwrap();
        let d = chrono::Local::now().fixed_offset() - ago;
        assert!((599..=601).contains(&d.num_seconds()), "{d}");
        let e = parse_since("yesterday-ish").unwrap_err().to_string();
        assert!(e.contains("--since") && e.contains("10m"), "{e}");
        let e = Filter::new(&Selection {
            out: false,
            err: false,
            tend: false,
            grep: Some("(".into()),
            since: None,
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("--grep `(`"), "{e}");
    }
}
