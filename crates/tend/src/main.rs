//! `tend`: run a program as a supervised service from one TOML file.

mod background;
mod cli;
mod clidocs;
mod commands;
mod crashes;
mod error;
mod events;
mod host;
mod memory;
mod os;
mod place;
mod proc;
mod release;
mod report;
#[cfg(windows)]
mod run_key_host;
#[cfg(unix)]
mod sd_notify;
#[cfg(windows)]
mod service_host;
mod status;
mod status_file;
mod supervisor;
#[cfg(unix)]
mod unix_host;
mod version;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    memory::at_start();
    // Probes, webhooks and the metrics listener use sockets: start Winsock explicitly so a
    // failure is reported once, here, rather than as WSANOTINITIALISED on every connect.
    if let Err(e) = tend_health::init_network() {
        report::print_error(&error::CliError::io(
            "cannot start Windows networking (WSAStartup)",
            e,
        ));
    }
    version::BUILD.register_metrics();
    // On a short-lived thread: building clap's command tree takes about 80 KiB of stack,
    // which on the main thread (the supervisor's) would stay resident for as long as tend
    // runs. A thread's stack is given back when it ends.
    let cli = std::thread::Builder::new()
        .name("tend-cli".into())
        .spawn(cli::Cli::parse)
        .ok()
        .and_then(|h| h.join().ok())
        .unwrap_or_else(cli::Cli::parse);
    let result = commands::dispatch(cli);
    // tend's last event lines (stopped, gave up) are queued for the output thread: out
    // they go, before an error that follows them.
    events::flush(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => code,
        Err(e) => {
            report::print_error(&e);
            e.exit_code()
        }
    }
}
