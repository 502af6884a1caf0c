//! The real [`Host`] of the Run entry: the user's registry, files, tend's processes and
//! named events. Each method is one call; the decisions are in `mod.rs`.

use std::io;
use std::os::windows::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tend_core::ServiceName;
use windows_sys::Win32::System::Registry::HKEY_CURRENT_USER;

use super::{Host, Spawned, stderr_file};
use crate::winreg::{self, Value};
use crate::{Error, Layout, RUN_KEY};

/// This machine, for the current user. Whether a pid is a live tend is the process
/// layer's knowledge (the CLI's `proc`), so it is handed in.
#[derive(Debug, Clone, Copy)]
pub struct RealHost {
    /// Whether `pid` is the tend that wrote a status file at `updated_at`.
    pub supervisor_alive: fn(u32, &str) -> bool,
    /// Whether a process with this pid runs.
    pub pid_alive: fn(u32) -> bool,
}

impl Spawned for Child {
    fn id(&self) -> u32 {
        Child::id(self)
    }

    fn exited(&mut self) -> Option<String> {
        self.try_wait().ok().flatten().map(|s| s.to_string())
    }
}

impl Host for RealHost {
    fn current_exe(&self) -> io::Result<PathBuf> {
        std::env::current_exe()
    }

    fn read(&self, path: &Path) -> io::Result<Option<String>> {
        crate::fs::read_text(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn write(&self, path: &Path, text: &str) -> io::Result<()> {
        crate::write_atomic(path, text.as_bytes(), None)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn run_value(&self, value: &str) -> io::Result<Option<String>> {
        winreg::get_str(HKEY_CURRENT_USER, RUN_KEY, value)
    }

    fn set_run_value(&self, value: &str, command: &str) -> io::Result<()> {
        winreg::set(HKEY_CURRENT_USER, RUN_KEY, &[(value, Value::Str(command))])
    }

    fn delete_run_value(&self, value: &str) -> io::Result<()> {
        winreg::delete_value(HKEY_CURRENT_USER, RUN_KEY, value)
    }

    fn supervisor_alive(&self, pid: u32, updated_at: &str) -> bool {
        pid != std::process::id() && (self.supervisor_alive)(pid, updated_at)
    }

    fn spawn(&self, name: &ServiceName, layout: &Layout) -> Result<Box<dyn Spawned>, Error> {
        Ok(Box::new(spawn_detached(name, layout)?))
    }

    fn set_event(&self, event: &str) -> io::Result<()> {
        set_event(event)
    }

    fn wait_exit(&self, pid: u32, within: Duration) -> bool {
        use windows_sys::Win32::Foundation::{CloseHandle, WAIT_OBJECT_0};
        use windows_sys::Win32::System::Threading::{
            OpenProcess, PROCESS_SYNCHRONIZE, WaitForSingleObject,
        };
        // SAFETY: the handle is checked and closed; waiting on a process handle is plain
        // Win32.
        #[allow(unsafe_code)]
        unsafe {
            let h = OpenProcess(PROCESS_SYNCHRONIZE, 0, pid);
            if h.is_null() {
                // Gone already (or not ours to wait for, in which case pid_alive decides).
                return !(self.pid_alive)(pid);
            }
            let ms = u32::try_from(within.as_millis()).unwrap_or(u32::MAX);
            let rc = WaitForSingleObject(h, ms);
            CloseHandle(h);
            rc == WAIT_OBJECT_0
        }
    }

    fn terminate(&self, pid: u32) -> io::Result<()> {
        use windows_sys::Win32::Foundation::CloseHandle;
        use windows_sys::Win32::System::Threading::{
            OpenProcess, PROCESS_TERMINATE, TerminateProcess,
        };
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

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
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

/// Starts `tend service --user --detached <name>` with a console of its own that has no
/// window (nothing pops up on the desktop), outside any job `tend start` itself may run in.
/// Also what `tend service --user` does when Windows opened a console window for it.
///
/// # Errors
///
/// tend's own path is unknown, its state directory cannot be made, or it cannot start.
pub fn spawn_detached(name: &ServiceName, layout: &Layout) -> Result<Child, Error> {
    use windows_sys::Win32::System::Threading::{CREATE_BREAKAWAY_FROM_JOB, CREATE_NO_WINDOW};
    let exe =
        std::env::current_exe().map_err(|e| Error::io("cannot find tend's own executable", e))?;
    std::fs::create_dir_all(&layout.state_dir)
        .map_err(|e| Error::io(format!("cannot create `{}`", layout.state_dir.display()), e))?;
    let err_path = stderr_file(layout);
    let spawn = |flags: u32| -> io::Result<Child> {
        let err = std::fs::File::create(&err_path)?;
        Command::new(&exe)
            .args(["service", "--user", "--detached", name.as_str()])
            // Not the caller's directory: a process's current directory cannot be deleted.
            .current_dir(&layout.state_dir)
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
        .map_err(|e| Error::io(format!("cannot start tend for `{name}`"), e))
}
