//! `tend`: run a program as a supervised service from one TOML file.

mod cli;
mod commands;
mod error;
mod host;
mod os;
mod paths;
mod proc;
mod report;
#[cfg(windows)]
mod service_host;
mod status;
mod supervisor;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            report::print_error(&e);
            e.exit_code()
        }
    }
}
