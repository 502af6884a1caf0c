//! One module per verb.

mod logs;
mod run;
mod service;
mod status;
mod target;
mod validate;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::place::Scope;
use target::Target;

/// The service a name verb acts on: named, or named by its config file.
fn named(arg: &str) -> Result<String, CliError> {
    Ok(Target::parse(arg.as_ref()).service_name()?.to_string())
}

pub(crate) fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Run { config } => run::run(&config),
        Command::Validate { config } => validate::validate(&config),
        Command::Install {
            config,
            user,
            no_access_check,
        } => service::install(&config, Scope::from_user_flag(user), !no_access_check),
        Command::Uninstall { name, user } => {
            service::uninstall(&named(&name)?, Scope::from_user_flag(user))
        }
        Command::Start { name, user } => {
            service::start(&named(&name)?, Scope::from_user_flag(user))
        }
        Command::Stop { name, user } => service::stop(&named(&name)?, Scope::from_user_flag(user)),
        Command::Restart { name, user } => {
            service::restart(&named(&name)?, Scope::from_user_flag(user))
        }
        Command::Reload { name, user } => {
            service::reload(&named(&name)?, Scope::from_user_flag(user))
        }
        Command::Service {
            name,
            user,
            detached,
        } => service::service(&name, Scope::from_user_flag(user), detached),
        Command::Status { target, json, user } => {
            status::status(target.as_deref(), json, Scope::from_user_flag(user))
        }
        Command::Logs {
            config,
            lines,
            follow,
            out,
            err,
            tend,
            user,
        } => logs::logs(
            &config,
            lines,
            follow,
            &logs::Selection { out, err, tend },
            crate::place::Scope::from_user_flag(user),
        ),
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
