//! One module per verb.

mod logs;
mod run;
mod validate;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::CliError;

pub(crate) fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Run { config } => run::run(&config),
        Command::Validate { config } => validate::validate(&config),
        Command::Logs {
            config,
            lines,
            follow,
            out,
            err,
        } => logs::logs(&config, lines, follow, out, err),
    }
}
