//! `tend logs <config-or-name> [-n N] [-f] [--out|--err] [--tend]`: the last lines of a
//! service's logs, and with `-f` the lines that follow, across rotations (like `tail -F`).

mod out;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use tend_core::LogMode;
use tend_logs::LogKind;
use tend_logs::tail::{Follower, last_lines};

use super::target::Target;
use crate::error::CliError;
use crate::place::Scope;

/// Which files to show.
pub(crate) struct Selection {
    pub(crate) out: bool,
    pub(crate) err: bool,
    pub(crate) tend: bool,
}

/// Finds the service's log directory, name and mode: from a config file (as `tend run` uses
/// it), or from the installed config of a service name, by the rule of [`Target`].
fn locate(target: &Path, scope: Scope) -> Result<(PathBuf, String, LogMode), CliError> {
    let loaded = if let Target::Config(path) = Target::parse(target.as_os_str()) {
        tend_config::load(&path, &tend_config::LoadOptions::default())?
    } else {
        let name = crate::place::service_name(&target.to_string_lossy())?;
        let installed = crate::place::place(scope, &name)?.config;
        if !installed.exists() {
            return Err(CliError::NotInstalled(name.to_string()));
        }
        tend_config::load(&installed, &crate::place::load_options(scope)?)?
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
    let (dir, name, mode) = locate(target, scope)?;
    let kinds = kinds(mode, sel);
    let many = kinds.len() > 1;
    let mut out = out::Output::stdout();
    if follow {
        return follow_logs(&dir, &name, &kinds, n, &mut out);
    }
    for kind in &kinds {
        let path = kind.active_path(&dir, &name);
        let bytes = last_lines(&dir, &name, *kind, n)
            .map_err(|e| CliError::io(format!("cannot read `{}`", path.display()), e))?;
        let header = if many {
            format!("==> {} <==\n", path.display())
        } else {
            String::new()
        };
        // Bytes as they are (converted only for a Windows console): never stop at one.
        if let Err(e) = out
            .write_all(header.as_bytes())
            .and_then(|()| out.write_all(&bytes))
        {
            return out::write_failed(e);
        }
    }
    if let Err(e) = out.finish() {
        return out::write_failed(e);
    }
    Ok(ExitCode::SUCCESS)
}

/// The last `n` lines of each family, then every line that follows, across rotations:
/// each follower hands out its own last lines first, so none is missed or shown twice
/// between the two.
fn follow_logs(
    dir: &Path,
    name: &str,
    kinds: &[LogKind],
    n: usize,
    out: &mut impl std::io::Write,
) -> Result<ExitCode, CliError> {
    let many = kinds.len() > 1;
    let mut followers: Vec<Follower> = kinds
        .iter()
        .map(|k| Follower::family(dir, name, *k, n))
        .collect();
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
