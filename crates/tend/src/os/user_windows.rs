//! Per-user services on Windows (`--user`): no SCM and no Administrator rights.
//!
//! `tend install --user` copies the config to `%LOCALAPPDATA%\tend\services\<name>.toml` and,
//! for `start = "auto"`, writes the value `tend-<name>` under
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
//! itself again with `CREATE_NO_WINDOW` (a console without a window) and exits, so the
//! window only flashes. (`conhost.exe --headless` in the Run entry would avoid even the
//! flash, but it is undocumented; a GUI-subsystem stub would be a second binary.) The
//! program's own consoles are windowless too ([`crate::proc::hide_program_consoles`]).
//!
//! **Stop and reload.** A per-user tend has no SCM to receive controls from, and console
//! control events cannot be relied on for a windowless console (under Wine they are not
//! delivered at all), so it waits on two named events of the user's session,
//! `Local\tend-<name>-stop` and `Local\tend-<name>-reload`. `tend stop --user` finds tend
//! through its status file (`supervisor_pid`), sets the stop event and waits for the
//! graceful stop; if tend is still there after `stop.timeout` plus a margin, it terminates
//! it, and the job object takes the program's processes with it. `tend reload --user` sets
//! the reload event. Ctrl+C, Ctrl+Break, logoff and shutdown stop tend too, as for
//! `tend run`.

use std::io;
use std::os::windows::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tend_core::{Account, ServiceName, ServiceSpec, StartMode};
use windows_sys::Win32::System::Registry::HKEY_CURRENT_USER;

use super::winreg::{self, Value};
use super::{OsStatus, Report};
use crate::error::CliError;
use crate::place::{self, Scope};
use crate::status;
use tend_os::{
    Backend, Changed, Failure, Install, Layout as Place, RUN_KEY, ServiceManager, reported,
};
use tend_os::{diff_lines, installed_text};

/// How long `tend start --user` waits for the new tend to report the program running.
const START_WAIT: Duration = Duration::from_secs(15);

/// The Run value's name.
pub(crate) fn value_name(name: &ServiceName) -> String {
    tend_os::run_value_name(name)
}

/// The Run value's command line. tend's path is quoted: it may contain spaces, and Windows
/// would otherwise try `C:\Program.exe` first. A service name needs no quotes
/// (`[A-Za-z0-9._-]`).
pub(crate) fn run_command(exe: &Path, name: &ServiceName) -> String {
    format!("\"{}\" service --user {name}", exe.display())
}

fn run_value(name: &ServiceName) -> Result<Option<String>, CliError> {
    winreg::get_str(HKEY_CURRENT_USER, RUN_KEY, &value_name(name))
        .map_err(|e| CliError::io("cannot read the Run entry", e))
}

fn write_atomic(path: &Path, text: &str) -> Result<(), CliError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::io(format!("cannot create `{}`", dir.display()), e))?;
    tend_os::write_atomic(path, text.as_bytes(), None)
        .map_err(|e| CliError::io(format!("cannot write `{}`", path.display()), e))
}

/// The installed config, if it loads.
fn installed_spec(place: &Place) -> Option<ServiceSpec> {
    let opts = place::load_options(Scope::User).ok()?;
    tend_config::load(&place.config, &opts).ok().map(|l| l.spec)
}

/// `tend install --user` on Windows.
fn install(spec: &ServiceSpec, original: &str, r: &mut Report) -> Result<(), CliError> {
    let name = &spec.name;
    if spec.service.account != Account::Isolated {
        return Err(CliError::Invalid(format!(
            "not installing `{name}`: [service] account cannot be used with --user: a per-user service runs as you; remove `account` or install system-wide (nothing was changed)"
        )));
    }
    if !spec.service.depends_on.is_empty() {
        r.warn("[service] depends_on is ignored for a --user service: logon entries have no dependencies".to_owned());
    }
    if spec.service.start == StartMode::DelayedAuto {
        r.warn("[service] start = \"delayed-auto\" is the same as \"auto\" for a --user service: it starts at logon".to_owned());
    }
    let place = place::place(Scope::User, name)?;
    let text = installed_text(spec, original)?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::io("cannot find tend's own executable", e))?;
    let at_logon = matches!(spec.service.start, StartMode::Auto | StartMode::DelayedAuto);
    let command = run_command(&exe, name);
    let old_text = std::fs::read_to_string(&place.config).ok();
    let old_value = run_value(name)?;
    let was_installed = old_text.is_some() || old_value.is_some();

    write_atomic(&place.config, &text)?;
    let entry = if at_logon {
        winreg::set(
            HKEY_CURRENT_USER,
            RUN_KEY,
            &[(&value_name(name), Value::Str(&command))],
        )
    } else {
        winreg::delete_value(HKEY_CURRENT_USER, RUN_KEY, &value_name(name))
    };
    if let Err(e) = entry {
        if !was_installed {
            let _ = std::fs::remove_file(&place.config);
        }
        return Err(CliError::io(format!("cannot install `{name}`"), e));
    }
    for dir in [&place.state_dir, &spec.logs.dir] {
        if let Err(e) = std::fs::create_dir_all(dir) {
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
        r.say(format!("  config copy: {}", place.config.display()));
        if at_logon {
            r.say(format!(
                "  logon entry: HKCU\\{RUN_KEY}\\{} = {command}",
                value_name(name)
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
        r.say(format!("  config copy {}:", place.config.display()));
        r.lines
            .extend(config_diff.iter().map(|l| format!("    {l}")));
    }
    if !entry_diff.is_empty() {
        r.say(format!(
            "  logon entry HKCU\\{RUN_KEY}\\{}:",
            value_name(name)
        ));
        r.lines
            .extend(entry_diff.iter().map(|l| format!("    {l}")));
    }
    if !config_diff.is_empty() && running_pid(&place).is_some() {
        match set_event(&event_name(name, "reload")) {
            Ok(()) => r.say("reloaded: tend re-reads the config".to_owned()),
            Err(e) => r.warn(format!(
                "cannot ask the running tend to reload ({e}); restart it to apply: tend restart --user {name}"
            )),
        }
    }
    Ok(())
}

fn require_installed(name: &ServiceName) -> Result<(Place, Option<String>), CliError> {
    let place = place::place(Scope::User, name)?;
    let value = run_value(name)?;
    if !place.config.is_file() && value.is_none() {
        return Err(CliError::NotInstalled(name.to_string()));
    }
    Ok((place, value))
}

/// `tend uninstall --user`: stops it, removes the logon entry and the config copy. Logs
/// and state stay.
fn uninstall(name: &ServiceName, r: &mut Report) -> Result<(), CliError> {
    let (place, _) = require_installed(name)?;
    let logs = installed_spec(&place).map_or_else(|| place.log_dir.clone(), |s| s.logs.dir);
    if running_pid(&place).is_some() {
        stop(name, r)?;
    }
    winreg::delete_value(HKEY_CURRENT_USER, RUN_KEY, &value_name(name))
        .map_err(|e| CliError::io(format!("cannot uninstall `{name}`"), e))?;
    match std::fs::remove_file(&place.config) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => r.warn(format!("cannot remove `{}`: {e}", place.config.display())),
    }
    r.changed = Changed::Uninstalled;
    r.say(format!(
        "uninstalled service `{name}`; its logs remain in `{}`",
        logs.display()
    ));
    Ok(())
}

/// `tend start --user`: starts the windowless tend now and waits until it supervises.
fn start(name: &ServiceName, r: &mut Report) -> Result<(), CliError> {
    let (place, _) = require_installed(name)?;
    if let Some(pid) = running_pid(&place) {
        r.say(format!(
            "service `{name}` is already running (tend pid {pid})"
        ));
        return Ok(());
    }
    if installed_spec(&place).is_some_and(|s| s.service.start == StartMode::Disabled) {
        return Err(CliError::Invalid(format!(
            "service `{name}` is disabled (start = \"disabled\"): set another start mode in its config and run `tend install --user` again"
        )));
    }
    let mut child = spawn_detached(name, &place)?;
    let pid = child.id();
    let file = status::path(&place.state_dir, name.as_str());
    let end = Instant::now() + START_WAIT;
    loop {
        if let Ok(Some(exit)) = child.try_wait() {
            let err = std::fs::read_to_string(stderr_file(&place)).unwrap_or_default();
            return Err(CliError::io(
                format!(
                    "tend for `{name}` exited at once ({exit}){}",
                    if err.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", err.trim())
                    }
                ),
                io::Error::other("start failed"),
            ));
        }
        if let Some(s) = status::read(&file).ok().flatten()
            && s.supervisor_pid == pid
            && s.state != "idle"
            && s.state != "starting"
        {
            if s.state == "failed" {
                return Err(CliError::io(
                    format!(
                        "`{name}` failed at once: {}; see `tend logs {name}`",
                        s.failed_reason.unwrap_or_default()
                    ),
                    io::Error::other("start failed"),
                ));
            }
            r.changed = Changed::Started;
            r.say(format!("service `{name}` is {} (tend pid {pid})", s.state));
            return Ok(());
        }
        if Instant::now() >= end {
            return Err(CliError::io(
                format!(
                    "tend for `{name}` (pid {pid}) did not report the program started within {}s; see `tend status --user {name}`",
                    START_WAIT.as_secs()
                ),
                io::Error::from(io::ErrorKind::TimedOut),
            ));
        }
        // The status file has no change notification; it is rewritten on every change.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `tend stop --user`: the stop event, then wait for the graceful stop.
fn stop(name: &ServiceName, r: &mut Report) -> Result<(), CliError> {
    let (place, _) = require_installed(name)?;
    let Some(pid) = running_pid(&place) else {
        r.say(format!("service `{name}` is already stopped"));
        return Ok(());
    };
    let budget = installed_spec(&place).map_or(Duration::from_secs(10), |s| s.stop.timeout)
        + Duration::from_secs(15);
    match set_event(&event_name(name, "stop")) {
        Err(e) => r.warn(format!("cannot ask tend (pid {pid}) to stop: {e}")),
        Ok(()) if wait_exit(pid, budget) => {
            r.changed = Changed::Stopped;
            r.say(format!("service `{name}` is stopped"));
            return Ok(());
        }
        Ok(()) => r.warn(format!(
            "tend (pid {pid}) did not stop within {}s",
            budget.as_secs()
        )),
    }
    terminate(pid).map_err(|e| CliError::io(format!("cannot stop tend (pid {pid})"), e))?;
    wait_exit(pid, Duration::from_secs(10));
    r.warn(format!(
        "terminated tend (pid {pid}); its job object ended the program's processes"
    ));
    r.changed = Changed::Stopped;
    r.say(format!("service `{name}` is stopped"));
    Ok(())
}

/// `tend reload --user`: the reload event; tend re-reads its config copy.
fn reload(name: &ServiceName, r: &mut Report) -> Result<(), CliError> {
    let (place, _) = require_installed(name)?;
    if running_pid(&place).is_none() {
        return Err(CliError::Invalid(format!(
            "service `{name}` is not running, so there is nothing to reload; start it with: tend start --user {name}"
        )));
    }
    set_event(&event_name(name, "reload"))
        .map_err(|e| CliError::io(format!("cannot ask `{name}` to reload"), e))?;
    r.changed = Changed::Reloaded;
    r.say(format!(
        "asked `{name}` to reload: tend re-reads its config (see: tend status --user {name})"
    ));
    Ok(())
}

/// `Local\tend-<name>-<what>`: an event in the user's session.
pub(crate) fn event_name(name: &ServiceName, what: &str) -> String {
    format!("Local\\tend-{name}-{what}")
}

/// Sets the named event that a running tend waits on.
fn set_event(event: &str) -> io::Result<()> {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{EVENT_MODIFY_STATE, OpenEventW, SetEvent};
    let wide: Vec<u16> = event.encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: a NUL-terminated name; the handle is checked and closed.
    #[allow(unsafe_code)]
    unsafe {
        let h = OpenEventW(EVENT_MODIFY_STATE, 0, wide.as_ptr());
        if h.is_null() {
            return Err(io::Error::last_os_error());
        }
        let ok = SetEvent(h);
        let e = io::Error::last_os_error();
        CloseHandle(h);
        if ok == 0 { Err(e) } else { Ok(()) }
    }
}

/// What `tend status --user` says on behalf of the OS: whether the logon entry and the
/// config copy exist, and whether tend runs.
pub(crate) fn query(name: &str) -> Option<OsStatus> {
    let name = place::service_name(name).ok()?;
    let place = place::place(Scope::User, &name).ok()?;
    let value = run_value(&name).ok()?;
    let installed = place.config.is_file() || value.is_some();
    let pid = running_pid(&place);
    Some(OsStatus {
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
        manager: Some("run-key".to_owned()),
        failed: false,
        last_exit: None,
        definition: value.map(|_| PathBuf::from(format!("HKCU\\{RUN_KEY}\\{}", value_name(&name)))),
    })
}

/// tend's pid from the status file, if that process still runs. Pids are reused (quickly,
/// under Wine), so it must be a tend.exe other than this one, created no later than the
/// status file was last written: a stale status file must not make `stop` act on a
/// stranger.
fn running_pid(place: &Place) -> Option<u32> {
    let name = place.config.file_stem()?.to_str()?;
    let s = status::read(&status::path(&place.state_dir, name)).ok()??;
    let pid = s.supervisor_pid;
    (pid != std::process::id() && crate::proc::supervisor_alive(pid, &s.updated_at)).then_some(pid)
}

/// Waits until process `pid` has exited, at most `within`; whether it did.
fn wait_exit(pid: u32, within: Duration) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, WAIT_OBJECT_0};
    use windows_sys::Win32::System::Threading::{
        OpenProcess, PROCESS_SYNCHRONIZE, WaitForSingleObject,
    };
    // SAFETY: the handle is checked and closed; waiting on a process handle is plain Win32.
    #[allow(unsafe_code)]
    unsafe {
        let h = OpenProcess(PROCESS_SYNCHRONIZE, 0, pid);
        if h.is_null() {
            // Gone already (or not ours to wait for, in which case pid_alive decides).
            return !crate::proc::pid_alive(pid);
        }
        let ms = u32::try_from(within.as_millis()).unwrap_or(u32::MAX);
        let rc = WaitForSingleObject(h, ms);
        CloseHandle(h);
        rc == WAIT_OBJECT_0
    }
}

fn terminate(pid: u32) -> io::Result<()> {
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_TERMINATE, TerminateProcess};
    // SAFETY: the handle is checked and closed.
    #[allow(unsafe_code)]
    unsafe {
        let h = OpenProcess(PROCESS_TERMINATE, 0, pid);
        if h.is_null() {
            return Err(io::Error::last_os_error());
        }
        let ok = TerminateProcess(h, 1);
        let e = io::Error::last_os_error();
        CloseHandle(h);
        if ok == 0 { Err(e) } else { Ok(()) }
    }
}

/// Where the windowless tend's stderr goes: nobody would see it otherwise, and `tend start
/// --user` shows it when tend exits at once (a config that stopped loading, say).
fn stderr_file(place: &Place) -> PathBuf {
    place
        .stdio_log
        .clone()
        .unwrap_or_else(|| place.state_dir.join("service.stderr.log"))
}

/// Starts `tend service --user --detached <name>` with a console of its own that has no
/// window (nothing pops up on the desktop), outside any job `tend start` itself may run in.
pub(crate) fn spawn_detached(name: &ServiceName, place: &Place) -> Result<Child, CliError> {
    use windows_sys::Win32::System::Threading::{CREATE_BREAKAWAY_FROM_JOB, CREATE_NO_WINDOW};
    let exe = std::env::current_exe()
        .map_err(|e| CliError::io("cannot find tend's own executable", e))?;
    std::fs::create_dir_all(&place.state_dir)
        .map_err(|e| CliError::io(format!("cannot create `{}`", place.state_dir.display()), e))?;
    let err_path = stderr_file(place);
    let spawn = |flags: u32| -> io::Result<Child> {
        let err = std::fs::File::create(&err_path)?;
        Command::new(&exe)
            .args(["service", "--user", "--detached", name.as_str()])
            // Not the caller's directory: a process's current directory cannot be deleted.
            .current_dir(&place.state_dir)
            .creation_flags(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
    };
    // Leaving the caller's job (a terminal's, a CI runner's) keeps tend alive when that
    // job closes; a job that forbids breaking away answers "access denied".
    spawn(CREATE_NO_WINDOW | CREATE_BREAKAWAY_FROM_JOB)
        .or_else(|e| {
            if e.raw_os_error() == Some(5) {
                spawn(CREATE_NO_WINDOW)
            } else {
                Err(e)
            }
        })
        .map_err(|e| CliError::io(format!("cannot start tend for `{name}`"), e))
}

/// The per-user Run entry as a [`ServiceManager`] (its install side; `tend service --user` is what the
/// entry runs, [`crate::run_key_host`]).
pub(crate) struct RunEntry;

impl ServiceManager for RunEntry {
    fn backend(&self) -> Backend {
        Backend::RunKey
    }

    fn install(&self, i: &Install<'_>) -> Result<Report, Failure> {
        reported(|r| Ok(install(i.spec, i.original, r)?))
    }

    fn uninstall(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| Ok(uninstall(name, r)?))
    }

    fn start(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| Ok(start(name, r)?))
    }

    fn stop(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| Ok(stop(name, r)?))
    }

    fn restart(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| {
            stop(name, r)?;
            start(name, r)?;
            r.changed = Changed::Restarted;
            Ok(())
        })
    }

    fn reload(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| Ok(reload(name, r)?))
    }

    fn status(&self, name: &ServiceName) -> Result<OsStatus, tend_os::Error> {
        query(name.as_str()).ok_or_else(|| {
            tend_os::Error::io(
                "cannot read the Run entry",
                std::io::Error::other("not available"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_entry_quotes_the_path_and_names_the_service() {
        let name = ServiceName::new("go-svc.2").unwrap();
        assert_eq!(
            run_command(Path::new(r"C:\Program Files\tend e2e\tend.exe"), &name),
            r#""C:\Program Files\tend e2e\tend.exe" service --user go-svc.2"#
        );
        assert_eq!(value_name(&name), "tend-go-svc.2");
    }
}
