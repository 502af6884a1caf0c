//! `tend run <config>`: supervise in the foreground until SIGINT/SIGTERM (Ctrl+C).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tend_config::{LoadOptions, load};
use tokio::sync::mpsc;

use crate::error::{CliError, code};
use crate::host::Host;
use crate::report::Reporter;
use crate::supervisor::{Control, Outcome};

pub(crate) fn run(config: &Path) -> Result<ExitCode, CliError> {
    let loaded = load(config, &LoadOptions::default())?;
    {
        let mut err = std::io::stderr().lock();
        for w in &loaded.warnings {
            let _ = writeln!(err, "{}", w.display_in(&loaded.spec.config_path));
        }
    }
    let spec = Arc::new(loaded.spec);
    let rt = crate::host::runtime().map_err(|e| CliError::io("cannot start the runtime", e))?;
    let reporter = Reporter::new(spec.name.as_str(), true);
    let outcome = rt.block_on(async {
        let (tx, rx) = mpsc::unbounded_channel();
        // Handlers are in place before the program starts, so an early Ctrl+C stops it
        // gracefully instead of killing tend.
        forward_signals(tx, reporter.clone())?;
        let host = Host {
            spec: spec.clone(),
            reporter: reporter.clone(),
            // `tend run` keeps its status next to its logs: always writable, easy to find.
            state_dir: spec.logs.dir.clone(),
        };
        let logs = host.open_logs()?;
        let loader = crate::host::loader(
            spec.config_path.clone(),
            LoadOptions::default(),
            reporter.clone(),
        );
        Ok::<_, CliError>(host.supervise(logs, loader, rx).await)
    })?;
    Ok(ExitCode::from(match outcome {
        Outcome::Stopped => code::OK,
        Outcome::Failed => code::PROGRAM_FAILED,
    }))
}

#[cfg(unix)]
fn forward_signals(tx: mpsc::UnboundedSender<Control>, reporter: Reporter) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mk = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| CliError::io(format!("cannot handle {name}"), e))
    };
    let mut term = mk(SignalKind::terminate(), "SIGTERM")?;
    let mut int = mk(SignalKind::interrupt(), "SIGINT")?;
    let mut hup = mk(SignalKind::hangup(), "SIGHUP")?;
    tokio::spawn(async move {
        loop {
            let ctl = tokio::select! {
                _ = term.recv() => { reporter.line("SIGTERM received"); Control::Stop }
                _ = int.recv() => { reporter.line("SIGINT received"); Control::Stop }
                _ = hup.recv() => { reporter.line("SIGHUP received: reloading the config"); Control::Reload }
            };
            if tx.send(ctl).is_err() {
                break;
            }
        }
    });
    Ok(())
}

#[cfg(windows)]
fn forward_signals(tx: mpsc::UnboundedSender<Control>, reporter: Reporter) -> Result<(), CliError> {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
    let mut c = ctrl_c().map_err(|e| CliError::io("cannot handle Ctrl+C", e))?;
    let mut b = ctrl_break().map_err(|e| CliError::io("cannot handle Ctrl+Break", e))?;
    let mut close = ctrl_close().map_err(|e| CliError::io("cannot handle console close", e))?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = c.recv() => reporter.line("Ctrl+C received"),
                _ = b.recv() => reporter.line("Ctrl+Break received"),
                _ = close.recv() => reporter.line("console closing"),
            }
            if tx.send(Control::Stop).is_err() {
                break;
            }
        }
    });
    Ok(())
}
