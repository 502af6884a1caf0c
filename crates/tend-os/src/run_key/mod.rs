//! Per-user services on Windows (`--user`): no SCM and no Administrator rights.
//!
//! `tend install --user` copies the config to `%LOCALAPPDATA%\tend\services\<name>.toml`
//! and, for `start = "auto"`, writes the value `tend-<name>` under
//! `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, which Windows runs at each logon:
//!
//! ```text
//! "C:\Program Files\tend\tend.exe" service --user <name>
//! ```
//!
//! The entry runs `tend service --user <name>` rather than `tend run <copy>`: `service
//! --user` finds the copy, its state and its logs in `%LOCALAPPDATA%\tend` by the name (as
//! on Linux and macOS), whereas `tend run` would put the logs next to the original config.
//!
//! **No console window.** tend.exe is a console program, so Windows opens a console window
//! for it at logon. `tend service --user`, finding itself alone on a console window, starts
//! itself again with `CREATE_NO_WINDOW` (`spawn_detached`, Windows) and exits, so the window only
//! flashes. (`conhost.exe --headless` in the Run entry would avoid even the flash, but it
//! is undocumented; a GUI-subsystem stub would be a second binary.)
//!
//! **Stop and reload.** A per-user tend has no SCM to receive controls from, and console
//! control events cannot be relied on for a windowless console (under Wine they are not
//! delivered at all), so it waits on two named events of the user's session
//! ([`event_name`]: `Local\tend-<name>-stop` and `Local\tend-<name>-reload`). `tend stop
//! --user` finds tend through its status file (`supervisor_pid`), sets the stop event and
//! waits for the graceful stop; if tend is still there after `stop.timeout` plus a margin,
//! it terminates it, and the job object takes the program's processes with it. `tend
//! reload --user` sets the reload event.
//!
//! This module is the install side ([`RunEntry`]); what the entry runs is the CLI's
//! (`run_key_host.rs`). Everything [`RunEntry`] does to the machine goes through [`Host`],
//! so its sequences are tested on every OS with [`crate::testing::FakeRunKey`].

pub(crate) mod fake;
#[cfg(windows)]
mod real;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tend_core::{Account, ServiceName, ServiceSpec, StartMode};

use crate::installed::{diff_lines, installed_text};
use crate::manager::{Changed, Error, Failure, Install, Report, ServiceManager, Status, reported};
use crate::{Backend, Layout, RUN_KEY, Scope, UserContext, run_value_name};

#[cfg(windows)]
pub use real::{RealHost, spawn_detached};

/// How long `tend start --user` waits for the new tend to report the program running.
const START_WAIT: Duration = Duration::from_secs(15);
/// Between two looks at the status file (it has no change notification; it is rewritten
/// on every change).
const POLL: Duration = Duration::from_millis(50);

/// `Local\tend-<name>-<what>`: an event in the user's session that a running tend waits
/// on (`stop`, `reload`).
#[must_use]
pub fn event_name(name: &ServiceName, what: &str) -> String {
    format!("Local\\tend-{name}-{what}")
}

/// The Run value's command line. tend's path is quoted: it may contain spaces, and Windows
/// would otherwise try `C:\Program.exe` first. A service name needs no quotes
/// (`[A-Za-z0-9._-]`).
#[must_use]
pub fn run_command(exe: &Path, name: &ServiceName) -> String {
    format!("\"{}\" service --user {name}", exe.display())
}

/// Where the windowless tend's stderr goes: nobody would see it otherwise, and `tend start
/// --user` shows it when tend exits at once (a config that stopped loading, say).
#[must_use]
pub fn stderr_file(layout: &Layout) -> PathBuf {
    layout
        .stdio_log
        .clone()
        .unwrap_or_else(|| layout.state_dir.join("service.stderr.log"))
}

/// A tend started by `tend start --user`.
pub trait Spawned {
    /// Its pid.
    fn id(&self) -> u32;
    /// How it exited, if it has.
    fn exited(&mut self) -> Option<String>;
}

/// What the Run entry touches on the machine: the user's Run key, files, tend's
/// processes and named events, the clock.
pub trait Host {
    /// The tend.exe the entry will run.
    ///
    /// # Errors
    ///
    /// The OS cannot say.
    fn current_exe(&self) -> io::Result<PathBuf>;
    /// A file's text; `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// It exists and cannot be read.
    fn read(&self, path: &Path) -> io::Result<Option<String>>;
    /// Creates a directory and its parents.
    ///
    /// # Errors
    ///
    /// The OS refused.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Replaces a file atomically ([`crate::write_atomic`]).
    ///
    /// # Errors
    ///
    /// The OS refused.
    fn write(&self, path: &Path, text: &str) -> io::Result<()>;
    /// Removes a file.
    ///
    /// # Errors
    ///
    /// The OS refused (NotFound when there is none).
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// The value `value` under `HKCU\`[`RUN_KEY`]; `None` when there is none.
    ///
    /// # Errors
    ///
    /// The registry refused (the error names the value).
    fn run_value(&self, value: &str) -> io::Result<Option<String>>;
    /// Sets the value `value` under `HKCU\`[`RUN_KEY`].
    ///
    /// # Errors
    ///
    /// The registry refused.
    fn set_run_value(&self, value: &str, command: &str) -> io::Result<()>;
    /// Deletes the value (a missing one is fine).
    ///
    /// # Errors
    ///
    /// The registry refused.
    fn delete_run_value(&self, value: &str) -> io::Result<()>;
    /// Whether `pid` is the tend that wrote a status file at `updated_at`, and not this
    /// process (pids are reused at once under Wine: a stale status file must not make
    /// `stop` act on a stranger).
    fn supervisor_alive(&self, pid: u32, updated_at: &str) -> bool;
    /// Starts `tend service --user --detached <name>` without a console window
    /// (`spawn_detached` on Windows).
    ///
    /// # Errors
    ///
    /// It could not be started, with what tend was doing.
    fn spawn(&self, name: &ServiceName, layout: &Layout) -> Result<Box<dyn Spawned>, Error>;
    /// Sets the named event a running tend waits on.
    ///
    /// # Errors
    ///
    /// There is no such event (no tend waits on it) or it cannot be set.
    fn set_event(&self, event: &str) -> io::Result<()>;
    /// Waits until process `pid` has exited, at most `within`; whether it did.
    fn wait_exit(&self, pid: u32, within: Duration) -> bool;
    /// Terminates process `pid`.
    ///
    /// # Errors
    ///
    /// The OS refused.
    fn terminate(&self, pid: u32) -> io::Result<()>;
    /// Now, for waits.
    fn now(&self) -> Instant;
    /// Waits between two looks at the status file.
    fn sleep(&self, d: Duration);
}

impl<H: Host + ?Sized> Host for &H {
    fn current_exe(&self) -> io::Result<PathBuf> {
        (**self).current_exe()
    }
    fn read(&self, path: &Path) -> io::Result<Option<String>> {
        (**self).read(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        (**self).create_dir_all(path)
    }
    fn write(&self, path: &Path, text: &str) -> io::Result<()> {
        (**self).write(path, text)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        (**self).remove_file(path)
    }
    fn run_value(&self, value: &str) -> io::Result<Option<String>> {
        (**self).run_value(value)
    }
    fn set_run_value(&self, value: &str, command: &str) -> io::Result<()> {
        (**self).set_run_value(value, command)
    }
    fn delete_run_value(&self, value: &str) -> io::Result<()> {
        (**self).delete_run_value(value)
    }
    fn supervisor_alive(&self, pid: u32, updated_at: &str) -> bool {
        (**self).supervisor_alive(pid, updated_at)
    }
    fn spawn(&self, name: &ServiceName, layout: &Layout) -> Result<Box<dyn Spawned>, Error> {
        (**self).spawn(name, layout)
    }
    fn set_event(&self, event: &str) -> io::Result<()> {
        (**self).set_event(event)
    }
    fn wait_exit(&self, pid: u32, within: Duration) -> bool {
        (**self).wait_exit(pid, within)
    }
    fn terminate(&self, pid: u32) -> io::Result<()> {
        (**self).terminate(pid)
    }
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn sleep(&self, d: Duration) {
        (**self).sleep(d);
    }
}

/// The per-user Run entry as a [`ServiceManager`] (its install side; `tend service
/// --user` is what the entry runs).
pub struct RunEntry<H> {
    host: H,
    user: UserContext,
}

impl<H: Host> RunEntry<H> {
    /// The backend on `host` (the real one, or a fake) for the user `user`.
    #[must_use]
    pub fn new(host: H, user: UserContext) -> Self {
        Self { host, user }
    }
}

impl<H: Host> RunEntry<H> {
    fn layout(&self, name: &ServiceName) -> Layout {
        Layout::new(Backend::RunKey, &Scope::User(self.user.clone()), name)
    }

    fn run_value(&self, name: &ServiceName) -> Result<Option<String>, Error> {
        self.host
            .run_value(&run_value_name(name))
            .map_err(|e| Error::io("cannot read the Run entry", e))
    }

    /// The installed config, if it loads.
    fn installed_spec(&self, layout: &Layout) -> Option<ServiceSpec> {
        let text = self.host.read(&layout.config).ok()??;
        crate::installed::installed_spec(layout, &text)
    }

    /// What tend's status file says, if tend wrote one.
    fn snapshot(&self, name: &ServiceName, layout: &Layout) -> Option<crate::supervisor::Snapshot> {
        let text = self.host.read(&layout.status_file(name)).ok()??;
        crate::supervisor::parse(&text)
    }

    /// tend's pid from the status file, if that tend still runs.
    fn running_pid(&self, name: &ServiceName, layout: &Layout) -> Option<u32> {
        let s = self.snapshot(name, layout)?;
        self.host
            .supervisor_alive(s.supervisor_pid, &s.updated_at)
            .then_some(s.supervisor_pid)
    }

    fn require_installed(&self, name: &ServiceName) -> Result<(Layout, Option<String>), Error> {
        let layout = self.layout(name);
        let value = self.run_value(name)?;
        let copy = self.host.read(&layout.config).ok().flatten();
        if copy.is_none() && value.is_none() {
            return Err(Error::NotInstalled(name.to_string()));
        }
        Ok((layout, value))
    }

    /// `tend install --user`.
    fn install_with(
        &self,
        spec: &ServiceSpec,
        original: &str,
        leave_running: bool,
        r: &mut Report,
    ) -> Result<(), Error> {
        let name = &spec.name;
        if spec.service.account != Account::Isolated {
            return Err(Error::Invalid(format!(
                "not installing `{name}`: [service] account cannot be used with --user: a per-user service runs as you; remove `account` or install system-wide (nothing was changed)"
            )));
        }
        if !spec.service.depends_on.is_empty() {
            r.warn("[service] depends_on is ignored for a --user service: logon entries have no dependencies");
        }
        if spec.service.start == StartMode::DelayedAuto {
            r.warn("[service] start = \"delayed-auto\" is the same as \"auto\" for a --user service: it starts at logon");
        }
        if spec.diagnostics.dumps {
            r.warn("[diagnostics] dumps: Windows Error Reporting keeps dumps only for a system-wide service (its LocalDumps keys are machine-wide); a --user service gets GOTRACEBACK=wer alone, and its dumps go where WER's own settings say");
        }
        let layout = self.layout(name);
        let text = installed_text(spec, original)?;
        let exe = self
            .host
            .current_exe()
            .map_err(|e| Error::io("cannot find tend's own executable", e))?;
        let at_logon = matches!(spec.service.start, StartMode::Auto | StartMode::DelayedAuto);
        let command = run_command(&exe, name);
        let value = run_value_name(name);
        let old_text = self.host.read(&layout.config).ok().flatten();
        let old_value = self.run_value(name)?;
        let was_installed = old_text.is_some() || old_value.is_some();

        let dir = layout.config_dir();
        self.host
            .create_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot create `{}`", dir.display()), e))?;
        self.host
            .write(&layout.config, &text)
            .map_err(|e| Error::io(format!("cannot write `{}`", layout.config.display()), e))?;
        let entry = if at_logon {
            self.host.set_run_value(&value, &command)
        } else {
            self.host.delete_run_value(&value)
        };
        if let Err(e) = entry {
            if !was_installed {
                let _ = self.host.remove_file(&layout.config);
            }
            return Err(Error::io(format!("cannot install `{name}`"), e));
        }
        for dir in [&layout.state_dir, &spec.logs.dir] {
            if let Err(e) = self.host.create_dir_all(dir) {
                r.warn(format!("cannot create `{}`: {e}", dir.display()));
            }
        }

        let entry_line = |v: Option<&str>| match v {
            Some(v) => format!("at logon: {v}"),
            None => "manual (no logon entry)".to_owned(),
        };
        let new_value = at_logon.then_some(command.as_str());
        if !was_installed {
            r.changed = Changed::Installed;
            r.say(format!(
                "installed service `{name}` for you (start {})",
                if at_logon { "at logon" } else { "manual" }
            ));
            r.say(format!("  config copy: {}", layout.config.display()));
            if at_logon {
                r.say(format!(
                    "  logon entry: HKCU\\{RUN_KEY}\\{value} = {command}"
                ));
            }
            r.say(format!("  logs: {}", spec.logs.dir.display()));
            r.say(if spec.service.start == StartMode::Disabled {
                "it is disabled (start = \"disabled\"): `tend start --user` refuses it".to_owned()
            } else {
                format!("start it now with: tend start --user {name}")
            });
            return Ok(());
        }
        let config_diff = diff_lines(old_text.as_deref().unwrap_or(""), &text);
        let entry_diff = diff_lines(&entry_line(old_value.as_deref()), &entry_line(new_value));
        if config_diff.is_empty() && entry_diff.is_empty() {
            r.say(format!("service `{name}` is installed and unchanged"));
            return Ok(());
        }
        r.changed = Changed::Updated;
        r.say(format!("updated service `{name}`:"));
        if !config_diff.is_empty() {
            r.say(format!("  config copy {}:", layout.config.display()));
            r.lines
                .extend(config_diff.iter().map(|l| format!("    {l}")));
        }
        if !entry_diff.is_empty() {
            r.say(format!("  logon entry HKCU\\{RUN_KEY}\\{value}:"));
            r.lines
                .extend(entry_diff.iter().map(|l| format!("    {l}")));
        }
        if !config_diff.is_empty() && !leave_running && self.running_pid(name, &layout).is_some() {
            match self.host.set_event(&event_name(name, "reload")) {
                Ok(()) => r.say("reloaded: tend re-reads the config"),
                Err(e) => r.warn(format!(
                    "cannot ask the running tend to reload ({e}); restart it to apply: tend restart --user {name}"
                )),
            }
        }
        Ok(())
    }

    /// `tend uninstall --user`: stops it, removes the logon entry and the config copy.
    /// Logs and state stay.
    fn uninstall_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        let (layout, _) = self.require_installed(name)?;
        let logs = self
            .installed_spec(&layout)
            .map_or_else(|| layout.log_dir.clone(), |s| s.logs.dir);
        if self.running_pid(name, &layout).is_some() {
            self.stop_with(name, r)?;
        }
        self.host
            .delete_run_value(&run_value_name(name))
            .map_err(|e| Error::io(format!("cannot uninstall `{name}`"), e))?;
        match self.host.remove_file(&layout.config) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => r.warn(format!("cannot remove `{}`: {e}", layout.config.display())),
        }
        r.uninstalled(name, &logs);
        Ok(())
    }

    /// `tend start --user`: starts the windowless tend now and waits until it supervises.
    fn start_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        let (layout, _) = self.require_installed(name)?;
        if let Some(pid) = self.running_pid(name, &layout) {
            r.say(format!(
                "service `{name}` is already running (tend pid {pid})"
            ));
            return Ok(());
        }
        if self
            .installed_spec(&layout)
            .is_some_and(|s| s.service.start == StartMode::Disabled)
        {
            return Err(Error::Invalid(format!(
                "service `{name}` is disabled (start = \"disabled\"): set another start mode in its config and run `tend install --user` again"
            )));
        }
        let mut child = self.host.spawn(name, &layout)?;
        let pid = child.id();
        let end = self.host.now() + START_WAIT;
        loop {
            if let Some(exit) = child.exited() {
                let err = self
                    .host
                    .read(&stderr_file(&layout))
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                return Err(Error::Failed(format!(
                    "tend for `{name}` exited at once ({exit}){}",
                    if err.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", err.trim())
                    }
                )));
            }
            if let Some(s) = self.snapshot(name, &layout)
                && s.supervisor_pid == pid
                && s.state != "idle"
                && s.state != "starting"
            {
                if s.state == "failed" {
                    return Err(Error::Failed(format!(
                        "`{name}` failed at once: {}; see `tend logs {name}`",
                        s.failed_reason.unwrap_or_default()
                    )));
                }
                r.changed = Changed::Started;
                r.say(format!("service `{name}` is {} (tend pid {pid})", s.state));
                return Ok(());
            }
            if self.host.now() >= end {
                return Err(Error::io(
                    format!(
                        "tend for `{name}` (pid {pid}) did not report the program started within {}s; see `tend status --user {name}`",
                        START_WAIT.as_secs()
                    ),
                    io::Error::from(io::ErrorKind::TimedOut),
                ));
            }
            self.host.sleep(POLL);
        }
    }

    /// `tend stop --user`: the stop event, then wait for the graceful stop; after the
    /// budget, terminate tend (its job object ends the program's processes).
    fn stop_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        let (layout, _) = self.require_installed(name)?;
        let Some(pid) = self.running_pid(name, &layout) else {
            r.say(format!("service `{name}` is already stopped"));
            return Ok(());
        };
        let budget = self
            .installed_spec(&layout)
            .map_or(Duration::from_secs(10), |s| s.stop.timeout)
            + Duration::from_secs(15);
        match self.host.set_event(&event_name(name, "stop")) {
            Err(e) => r.warn(format!("cannot ask tend (pid {pid}) to stop: {e}")),
            Ok(()) if self.host.wait_exit(pid, budget) => {
                r.changed = Changed::Stopped;
                r.say(format!("service `{name}` is stopped"));
                return Ok(());
            }
            Ok(()) => r.warn(format!(
                "tend (pid {pid}) did not stop within {}s",
                budget.as_secs()
            )),
        }
        self.host
            .terminate(pid)
            .map_err(|e| Error::io(format!("cannot stop tend (pid {pid})"), e))?;
        self.host.wait_exit(pid, Duration::from_secs(10));
        r.warn(format!(
            "terminated tend (pid {pid}); its job object ended the program's processes"
        ));
        r.changed = Changed::Stopped;
        r.say(format!("service `{name}` is stopped"));
        Ok(())
    }

    /// `tend reload --user`: the reload event; tend re-reads its config copy.
    fn reload_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        let (layout, _) = self.require_installed(name)?;
        if self.running_pid(name, &layout).is_none() {
            return Err(Error::Invalid(format!(
                "service `{name}` is not running, so there is nothing to reload; start it with: tend start --user {name}"
            )));
        }
        self.host
            .set_event(&event_name(name, "reload"))
            .map_err(|e| Error::io(format!("cannot ask `{name}` to reload"), e))?;
        r.changed = Changed::Reloaded;
        r.say(format!(
            "asked `{name}` to reload: tend re-reads its config (see: tend status --user {name})"
        ));
        Ok(())
    }

    /// What `tend status --user` says on behalf of the OS: whether the logon entry and
    /// the config copy exist, and whether tend runs.
    fn query(&self, name: &ServiceName) -> Result<Status, Error> {
        let layout = self.layout(name);
        let value = self.run_value(name)?;
        let installed = self.host.read(&layout.config).ok().flatten().is_some() || value.is_some();
        let pid = self.running_pid(name, &layout);
        Ok(Status {
            installed,
            active: pid.is_some(),
            state: match (installed, pid) {
                (false, _) => "not installed",
                (true, Some(_)) => "running",
                (true, None) => "stopped",
            }
            .to_owned(),
            start: installed.then(|| {
                if value.is_some() {
                    "at logon"
                } else {
                    "manual"
                }
                .to_owned()
            }),
            pid,
            manager: Some(Backend::RunKey.name().to_owned()),
            failed: false,
            last_exit: None,
            definition: value
                .map(|_| PathBuf::from(format!("HKCU\\{RUN_KEY}\\{}", run_value_name(name)))),
        })
    }
}

impl<H: Host> ServiceManager for RunEntry<H> {
    fn backend(&self) -> Backend {
        Backend::RunKey
    }

    fn install(&self, i: &Install<'_>) -> Result<Report, Failure> {
        reported(|r| self.install_with(i.spec, i.original, i.leave_running, r))
    }

    fn uninstall(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| self.uninstall_with(name, r))
    }

    fn start(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| self.start_with(name, r))
    }

    fn stop(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| self.stop_with(name, r))
    }

    fn restart(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| {
            self.stop_with(name, r)?;
            self.start_with(name, r)?;
            r.changed = Changed::Restarted;
            Ok(())
        })
    }

    fn reload(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| self.reload_with(name, r))
    }

    fn status(&self, name: &ServiceName) -> Result<Status, Error> {
        self.query(name)
    }
}
