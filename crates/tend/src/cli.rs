//! Command-line arguments. One subcommand per verb; each lives in `commands/<verb>.rs`.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};

/// Run a program as a supervised service from one TOML file.
// The version flag is tend's own (not clap's) so that `--version --json` can print the
// build as JSON; src/version.rs says what it prints.
#[derive(Debug, Parser)]
#[command(
    name = "tend",
    version,
    about,
    disable_version_flag = true,
    arg_required_else_help = true,
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    /// Print the version, the commit, the target and the build profile.
    #[arg(short = 'V', long, action = ArgAction::SetTrue)]
    pub(crate) version: bool,
    /// With --version: print them as JSON.
    #[arg(long, requires = "version")]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Supervise the program in the foreground until SIGINT/SIGTERM (Ctrl+C).
    Run {
        /// The service's TOML config file.
        config: PathBuf,
    },
    /// Check a config file and print every problem; exit 2 if there is any error.
    Validate {
        /// The service's TOML config file.
        config: PathBuf,
    },
    /// Install the config as an OS service (Windows SCM, systemd, launchd): validate, copy
    /// the config to a protected place, create or update the service. Re-run to apply
    /// changes: it shows what changed, and a running service reloads (systemd).
    Install {
        /// The service's TOML config file.
        config: PathBuf,
        /// Install for the current user only, without root or Administrator: a systemd
        /// user unit, a launchd agent, or a Windows logon Run entry.
        #[arg(long)]
        user: bool,
        /// Install even if the service's account or sandbox cannot reach the tend binary,
        /// the program, working_dir, env_file or the log dir (each problem is a warning).
        #[arg(long)]
        no_access_check: bool,
    },
    /// Stop and remove an installed service and its config copy (logs stay).
    Uninstall {
        /// The service name, or its config file (an argument with a `/` or ending in
        /// `.toml` is a file).
        name: String,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// Start an installed service and wait until it runs.
    Start {
        /// The service name, or its config file (an argument with a `/` or ending in
        /// `.toml` is a file).
        name: String,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// Stop an installed service gracefully and wait until it is stopped.
    Stop {
        /// The service name, or its config file (an argument with a `/` or ending in
        /// `.toml` is a file).
        name: String,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// Stop, then start an installed service.
    Restart {
        /// The service name, or its config file (an argument with a `/` or ending in
        /// `.toml` is a file).
        name: String,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// Make a running service re-read its installed config (systemd: `systemctl reload`,
    /// launchd: SIGHUP); what cannot change live restarts the program gracefully.
    Reload {
        /// The service name, or its config file (an argument with a `/` or ending in
        /// `.toml` is a file).
        name: String,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// What the OS service manager runs for an installed service (not for interactive use).
    Service {
        /// The service name.
        name: String,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
        /// Internal (Windows --user): already started without a console window.
        #[arg(long, hide = true)]
        detached: bool,
    },
    /// Show what the supervisor and the OS say about a service (all installed services
    /// without an argument). Exit code: 0 running, 1 failed, 3 stopped, 4 unknown or not
    /// installed.
    Status {
        /// The name of an installed service, or a config file (an argument with a `/` or
        /// ending in `.toml` is a file).
        target: Option<PathBuf>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Services installed with `install --user` (without a target: list those).
        #[arg(long)]
        user: bool,
    },
    /// Print the last lines of the program's logs, and follow them with -f.
    Logs {
        /// The name of an installed service, or a config file (an argument with a `/` or
        /// ending in `.toml` is a file).
        config: PathBuf,
        /// How many lines to print.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Keep printing new lines, across rotations, until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Only the program's stdout.
        #[arg(long, conflicts_with = "err")]
        out: bool,
        /// Only the program's stderr.
        #[arg(long, conflicts_with = "tend")]
        err: bool,
        /// tend's own log (`<name>.tend.log`) instead of the program's.
        #[arg(long, conflicts_with = "out")]
        tend: bool,
        /// Only lines that match this regular expression (e.g. `ERROR|panic`).
        #[arg(long, value_name = "REGEX")]
        grep: Option<String>,
        /// Only lines written since then: a duration back from now (`10m`, `2h`, `1d`) or a
        /// time (`2026-12-07T03:00:00+01:00`); needs the timestamps tend writes.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// Converge this host to a set of configs: install what is new, update what changed
    /// (reload where tend's reload rules allow, restart otherwise), leave the rest alone.
    /// Every file is validated first; one bad file changes nothing. Exit code: 0 nothing
    /// changed, 10 changed, 11 changes pending (--check), 2-5 a failure (docs/cli.md).
    Apply {
        /// Config files, and directories whose `*.toml` files are the set.
        #[arg(required = true, value_name = "DIR|FILE")]
        paths: Vec<PathBuf>,
        /// Say what would change, and change nothing.
        #[arg(long)]
        check: bool,
        /// Show the lines of each installed config that change.
        #[arg(long)]
        diff: bool,
        /// Also uninstall the services tend installed that the set no longer has (never a
        /// service tend did not install).
        #[arg(long)]
        prune: bool,
        /// Wait until each changed service runs (and is healthy, with [health]).
        #[arg(long)]
        wait: bool,
        /// Print the plan and the result as JSON (a stable schema, docs/cli.md).
        #[arg(long)]
        json: bool,
        /// The current user's services (as `install --user`).
        #[arg(long)]
        user: bool,
    },
    /// List every service tend manages here (its config copies), with its state.
    List {
        /// Print JSON for scripts (a stable schema, docs/cli.md).
        #[arg(long)]
        json: bool,
        /// Services installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// Print an installed service's config, as tend reads it (its config copy).
    Export {
        /// The service name.
        name: String,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// PowerShell DSC v3: the `Tend/Service` resource's operations, JSON on stdin and
    /// stdout (the manifest is contrib/dsc/tend.dsc.resource.json; docs/dsc.md).
    Dsc {
        /// get, set, test, export or schema.
        #[arg(value_parser = ["get", "set", "test", "export", "schema"])]
        operation: String,
        /// For export: the current user's services (an instance says its own `scope`).
        #[arg(long)]
        user: bool,
    },
    /// Replace an installed service's program with a new build, safely: check it, stage it,
    /// stop the service gracefully, swap, start, verify (`[upgrade]`), and roll back on its
    /// own if the new build fails. Exit code 0: upgraded and verified; 6: rolled back (the
    /// old build runs again); 7: the old build failed too (docs/upgrade.md).
    Upgrade {
        /// The name of an installed service.
        #[arg(required_unless_present = "self_")]
        name: Option<String>,
        /// The new program file (replaces the file named by the config's `command`), or a
        /// new application directory (replaces the directory holding that file; files in
        /// `[upgrade] preserve` are carried over).
        #[arg(required_unless_present_any = ["config", "self_"])]
        program: Option<PathBuf>,
        /// Replace tend itself (the binary this tend runs as, which the installed services'
        /// hosts run) with NEW_TEND: each running service's host is restarted on it one at a
        /// time and verified; the first failure puts this tend back.
        #[arg(long = "self", value_name = "NEW_TEND", conflicts_with_all = ["name", "program", "config"])]
        self_: Option<PathBuf>,
        /// A new config for the service (alone or with a program or directory): validated,
        /// then put in place of the installed copy with the service definition.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Check the new program and show what would happen; change nothing.
        #[arg(long)]
        check: bool,
        /// Print the result as JSON (progress goes to stderr).
        #[arg(long)]
        json: bool,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// List a service's releases (each program `tend upgrade` put in place or found there):
    /// id, state, when, sha256, size, and why a release failed.
    History {
        /// The name of an installed service.
        #[arg(required_unless_present = "self_", conflicts_with = "self_")]
        name: Option<String>,
        /// tend's own releases (`upgrade --self`).
        #[arg(long = "self")]
        self_: bool,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// Go back to the previous release (or the one named by --to), with the same stop,
    /// swap, start and verification as `upgrade`; exit codes as `upgrade`.
    Rollback {
        /// The name of an installed service.
        #[arg(required_unless_present = "self_", conflicts_with = "self_")]
        name: Option<String>,
        /// Go back to tend's own previous binary (`upgrade --self`), restarting and
        /// verifying each running service's host on it.
        #[arg(long = "self")]
        self_: bool,
        /// The release to go back to (an id from `tend history`).
        #[arg(long, value_name = "ID")]
        to: Option<String>,
        /// Print the result as JSON (progress goes to stderr).
        #[arg(long)]
        json: bool,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// Convert another service wrapper's configuration into a tend config: printed, or one
    /// `<name>.toml` per program in --out DIR. Settings tend has no equivalent for become
    /// comments saying what tend does instead (docs/import.md).
    Import {
        /// The tool the source belongs to.
        #[arg(long, value_parser = ["nssm", "winsw", "shawl", "servy", "systemd", "pm2", "supervisord"])]
        from: String,
        /// The source file (`nssm dump` output, a WinSW XML/YAML, a shawl command line, a
        /// Servy export, a .service unit, a pm2 ecosystem file, a supervisord.conf), or on
        /// Windows the name of an NSSM or shawl service.
        source: String,
        /// Write one `<name>.toml` per program into this directory (the default, in the
        /// current directory, when the source holds several programs).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace files that exist in the output directory.
        #[arg(long)]
        force: bool,
        /// Install the imported config as a service and start it (one program only); a
        /// service of that name must not exist unless --replace.
        #[arg(long, conflicts_with_all = ["out", "force"])]
        install: bool,
        /// With --install: take the running service of the source over (stop it, back it
        /// up, install tend's, start, verify), and put it back if tend's fails.
        #[arg(long, requires = "install")]
        replace: bool,
        /// With --install: the name of tend's service (default: the imported name); with
        /// --replace, the old service is then only stopped and disabled.
        #[arg(long, value_name = "NEW", requires = "install")]
        name: Option<String>,
        /// With --install: how long the program must keep running (and become healthy)
        /// under tend; default: the config's [upgrade] verify (30s).
        #[arg(long, value_name = "DURATION", requires = "install")]
        verify: Option<String>,
        /// With --install: show what would be done; change nothing.
        #[arg(long, requires = "install")]
        check: bool,
        /// With --install: the result as JSON on stdout (the steps go to stderr).
        #[arg(long, requires = "install")]
        json: bool,
    },
    /// Print a shell completion script for bash, zsh, fish or powershell (packages install
    /// them; see docs/release.md).
    #[command(hide = true)]
    Completions {
        /// bash, zsh, fish or powershell.
        shell: Shell,
    },
    /// Print the man page tend(1) (roff), or write it and one page per verb into a directory.
    #[command(hide = true)]
    Man {
        /// Write tend.1, tend-run.1, ... into this directory instead.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// List the service's crash records, newest last: when, after how long, how it died
    /// (decoded) and why in one line (a Go panic's message, the last stderr line).
    Crashes {
        /// The name of an installed service, or a config file (an argument with a `/` or
        /// ending in `.toml` is a file).
        target: PathBuf,
        /// Print JSON for scripts, with the last lines of stderr and stdout of each.
        #[arg(long)]
        json: bool,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// Check what would keep the service from running, as its account and sandbox will see
    /// it: the files it needs, the account, the log dir's free space, the health port, the
    /// installed unit against the config, the clock, and why it last failed. Exit code 1
    /// if a check fails.
    Doctor {
        /// The name of an installed service, or a config file (an argument with a `/` or
        /// ending in `.toml` is a file).
        target: PathBuf,
        /// Print JSON for scripts: one entry per check (`id`, `status`, `message`, `fix`,
        /// `details`).
        #[arg(long)]
        json: bool,
        /// A service installed (or to be installed) with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// Internal: what the service's start runs first (systemd `ExecStartPre=`), as root:
    /// ends an upgrade or rollback a killed tend left unfinished, by putting the release
    /// that ran before back in place (docs/upgrade.md).
    #[command(hide = true)]
    UpgradeRecover {
        /// The service name.
        name: String,
        /// A service installed with `install --user`.
        #[arg(long)]
        user: bool,
    },
    /// Internal (Windows): raise a console control event on another process's console.
    /// tend runs this as a short-lived helper for a graceful stop.
    #[command(hide = true)]
    ConsoleEvent {
        /// The process whose console gets the event.
        pid: u32,
        /// `ctrl-c` or `ctrl-break`.
        kind: String,
    },
}

/// The shells `tend completions` has a script for. The scripts and the man pages are made
/// at build time (build.rs includes this file), so the binary carries their text, not the
/// generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}
