//! `tend`: run a program as a supervised service from one TOML file.

mod cli;
mod commands;
mod error;
mod host;
mod os;
mod paths;
mod place;
mod proc;
mod report;
#[cfg(unix)]
mod sd_notify;
#[cfg(windows)]
mod service_host;
mod status;
mod supervisor;
#[cfg(unix)]
mod unix_host;

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
