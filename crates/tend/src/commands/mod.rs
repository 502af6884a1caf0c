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
    let Some(command) = cli.command else {
        // clap lets no subcommand through only with --version (arg_required_else_help).
        let b = crate::version::BUILD;
        println!("{}", if cli.json { b.json() } else { b.line() });
        return Ok(ExitCode::SUCCESS);
    };
    match command {
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
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "tend", &mut std::io::stdout().lock());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out_dir } => man(out_dir.as_deref()),
    }
}

/// `tend man`: tend(1) on stdout, or with `--out-dir` one page per verb as well
/// (tend-run(1), ...), the set the packages install.
fn man(out_dir: Option<&std::path::Path>) -> Result<ExitCode, CliError> {
    let cmd = <Cli as clap::CommandFactory>::command();
    match out_dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(cmd, dir))
            .map_err(|e| {
                CliError::io(format!("cannot write man pages to `{}`", dir.display()), e)
            })?,
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout().lock())
            .map_err(|e| CliError::io("cannot print the man page", e))?,
    }
    Ok(ExitCode::SUCCESS)
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
