//! One module per verb.

mod logs;
mod run;
mod service;
mod status;
mod validate;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::CliError;

pub(crate) fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Run { config } => run::run(&config),
        Command::Validate { config } => validate::validate(&config),
        Command::Install { config } => service::install(&config),
        Command::Uninstall { name } => service::uninstall(&name),
        Command::Start { name } => service::start(&name),
        Command::Stop { name } => service::stop(&name),
        Command::Restart { name } => service::restart(&name),
        Command::Service { name } => service::service(&name),
        Command::Status { target, json } => status::status(target.as_deref(), json),
        Command::Logs {
            config,
            lines,
            follow,
            out,
            err,
            tend,
        } => logs::logs(&config, lines, follow, &logs::Selection { out, err, tend }),
        Command::ConsoleEvent { pid, kind } => console_event(pid, &kind),
    }
}

#[cfg(windows)]
fn console_event(pid: u32, kind: &str) -> Result<ExitCode, CliError> {
    crate::proc::raise_console_event(pid, kind)
        .map_err(|e| CliError::io(format!("cannot send {kind} to pid {pid}"), e))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(windows))]
fn console_event(_pid: u32, _kind: &str) -> Result<ExitCode, CliError> {
    Err(CliError::io(
        "console-event",
        std::io::Error::other("console events exist only on Windows"),
    ))
}
