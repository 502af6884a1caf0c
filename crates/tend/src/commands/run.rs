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
use crate::supervisor::Outcome;

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
        crate::host::forward_signals(tx, reporter.clone(), |_| {})?;
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
