//! `tend run <config>`: supervise in the foreground until SIGINT/SIGTERM (Ctrl+C).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use tend_config::LoadOptions;
use tokio::sync::mpsc;

use crate::error::CliError;
use crate::events::Bus;
use crate::host::{Adapter, Boot};
use crate::supervisor::Control;

/// The console: signals (Ctrl+C) in, tend's lines on stderr.
struct Console;

impl Adapter for Console {
    fn warnings(&mut self, loaded: &tend_config::Loaded, _: &Bus) {
        // Before the first event line, as `tend validate` prints them.
        let mut err = std::io::stderr().lock();
        for w in &loaded.warnings {
            let _ = writeln!(err, "{}", w.display_in(&loaded.spec.config_path));
        }
    }

    fn listen(
        &mut self,
        controls: mpsc::UnboundedSender<Control>,
        events: &Bus,
    ) -> Result<(), CliError> {
        crate::host::forward_signals(controls, events.clone(), |_| {})
    }
}

pub(crate) fn run(config: &Path) -> Result<ExitCode, CliError> {
    let outcome = crate::host::boot(
        Boot {
            config: config.to_owned(),
            load: LoadOptions::default(),
            // `tend run` keeps its status next to its logs: always writable, easy to find.
            state_dir: None,
            to_stderr: true,
        },
        &mut Console,
    )?;
    Ok(ExitCode::from(crate::host::exit_code(&outcome)))
}
