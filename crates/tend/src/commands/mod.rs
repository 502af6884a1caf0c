//! One module per verb.

mod apply;
mod crashes;
mod doctor;
mod dsc;
mod import;
mod list;
mod logs;
mod progress;
mod replace;
mod run;
mod service;
mod status;
mod target;
mod unfinished;
pub(crate) mod upgrade;
mod validate;
mod verify;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::place::Scope;
use target::Target;

/// The service a name verb acts on: named, or named by its config file.
fn named(arg: &str) -> Result<tend_core::ServiceName, CliError> {
    Target::parse(arg.as_ref()).service_name()
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
            grep,
            since,
            user,
        } => logs::logs(
            &config,
            lines,
            follow,
            &logs::Selection {
                out,
                err,
                tend,
                grep,
                since,
            },
            crate::place::Scope::from_user_flag(user),
        ),
        Command::Crashes { target, json, user } => {
            crashes::crashes(&target, json, Scope::from_user_flag(user))
        }
        Command::Upgrade {
            self_: Some(new),
            check,
            json,
            user,
            ..
        } => upgrade::host::upgrade(&new, check, json, Scope::from_user_flag(user)),
        Command::Upgrade {
            name,
            program,
            config,
            check,
            json,
            user,
            self_: None,
        } => upgrade::upgrade(
            &name.unwrap_or_default(),
            program.as_deref(),
            config.as_deref(),
            check,
            json,
            Scope::from_user_flag(user),
        ),
        Command::UpgradeRecover { name, user } => {
            upgrade::recover_at_start(&name, Scope::from_user_flag(user))
        }
        Command::History {
            self_: true,
            json,
            user,
            ..
        } => upgrade::host::history(json, Scope::from_user_flag(user)),
        Command::History {
            name, json, user, ..
        } => upgrade::history(&name.unwrap_or_default(), json, Scope::from_user_flag(user)),
        Command::Rollback {
            self_: true,
            to,
            json,
            user,
            ..
        } => upgrade::host::rollback(to.as_deref(), json, Scope::from_user_flag(user)),
        Command::Rollback {
            name,
            to,
            json,
            user,
            ..
        } => upgrade::rollback(
            &name.unwrap_or_default(),
            to.as_deref(),
            json,
            Scope::from_user_flag(user),
        ),
        Command::Import {
            from,
            source,
            out,
            force,
            install,
            replace,
            name,
            verify,
            check,
            json,
        } => {
            let install = install.then_some(replace::Opts {
                replace,
                name: name.as_deref(),
                verify: verify.as_deref(),
                check,
                json,
            });
            import::import(&from, &source, out.as_deref(), force, install)
        }
        Command::Apply {
            paths,
            check,
            diff,
            prune,
            wait,
            json,
            user,
        } => apply::apply(
            &paths,
            apply::Options {
                check,
                diff,
                prune,
                wait,
                json,
                scope: Scope::from_user_flag(user),
            },
        ),
        Command::List { json, user } => list::list(json, Scope::from_user_flag(user)),
        Command::Export { name, user } => list::export(&name, Scope::from_user_flag(user)),
        Command::Dsc { operation, user } => dsc::dsc(&operation, Scope::from_user_flag(user)),
        Command::Doctor { target, json, user } => {
            doctor::doctor(&target, json, Scope::from_user_flag(user))
        }
        Command::ConsoleEvent { pid, kind } => console_event(pid, &kind),
        Command::Completions { shell } => {
            print_text(&crate::clidocs::completion(shell), "the completion script")
        }
        Command::Man { out_dir } => man(out_dir.as_deref()),
    }
}

/// `tend man`: tend(1) on stdout, or with `--out-dir` one page per verb as well
/// (tend-run(1), ...), the set the packages install.
fn man(out_dir: Option<&std::path::Path>) -> Result<ExitCode, CliError> {
    let Some(dir) = out_dir else {
        let page = crate::clidocs::inflate(crate::clidocs::MAN_PAGES[0].1);
        return print_text(&page, "the man page");
    };
    let io = |e| CliError::io(format!("cannot write man pages to `{}`", dir.display()), e);
    std::fs::create_dir_all(dir).map_err(io)?;
    for (name, gz) in crate::clidocs::MAN_PAGES {
        std::fs::write(dir.join(name), crate::clidocs::inflate(gz)).map_err(io)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints `text` on stdout; a closed pipe (`tend man | head`) ends it quietly.
fn print_text(text: &str, what: &str) -> Result<ExitCode, CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::io(format!("cannot print {what}"), e))
        }
        _ => Ok(ExitCode::SUCCESS),
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
