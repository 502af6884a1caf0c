//! Windows: a Job Object per run, and console control events for a graceful stop.
//!
//! Written on windows-sys rather than process-wrap: process-wrap's job child waits for every
//! process in the job (tend must react to the *main* process exiting, then clear leftovers
//! itself) and does not hand out the job handle that `TerminateJobObject` needs.

use std::io;
use std::os::windows::io::{AsHandle as _, AsRawHandle as _, FromRawHandle as _, OwnedHandle};
use std::os::windows::process::CommandExt as _;

use tend_core::{StopSpec, WindowsStop};
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{
    CREATE_NEW_CONSOLE, CREATE_NO_WINDOW, CREATE_SUSPENDED, OpenThread, ResumeThread,
    THREAD_SUSPEND_RESUME,
};

/// Exit code the job's processes get when tend terminates it.
const KILLED_EXIT_CODE: u32 = 1;

/// The program's job and its main process id. Closing the job handle (std's
/// `OwnedHandle`, when the tree is dropped) kills whatever is still in the job
/// (KILL_ON_JOB_CLOSE), so dropping a [`Tree`] can never leave the program's processes
/// behind.
#[derive(Debug)]
pub(crate) struct Tree {
    job: OwnedHandle,
    pid: u32,
}

impl Tree {
    /// The graceful step of `stop.windows`, aimed at the program's own console.
    ///
    /// A console event that cannot be delivered at all (no console, no helper) will not
    /// arrive later either: the tree is killed at once rather than after `stop.timeout`,
    /// and the error says why.
    pub(crate) fn signal_stop(&self, stop: &StopSpec) -> io::Result<()> {
        let sent = match stop.windows {
            WindowsStop::CtrlC => console_event(self.pid, "ctrl-c"),
            WindowsStop::CtrlBreak => console_event(self.pid, "ctrl-break"),
            WindowsStop::CloseWindow => {
                close_windows(self.pid);
                Ok(())
            }
            WindowsStop::None => Ok(()),
        };
        sent.map_err(|e| match self.kill() {
            Ok(()) => io::Error::other(format!(
                "{e}; killed the process tree at once instead of waiting {}",
                tend_core::fmt::duration(stop.timeout)
            )),
            Err(k) => io::Error::other(format!("{e}; and cannot kill the process tree: {k}")),
        })
    }

    /// Memory and CPU time of every process in the job (`[limits]`).
    pub(crate) fn sample(&self) -> Result<tend_health::Sample, tend_health::SampleError> {
        tend_health::sample::windows::sample_job(self.job.as_handle())
    }

    /// Terminates every process in the job.
    pub(crate) fn kill(&self) -> io::Result<()> {
        // SAFETY: the job handle is valid for the life of `self`.
        #[allow(unsafe_code)]
        let ok = unsafe { TerminateJobObject(self.job.as_raw_handle(), KILLED_EXIT_CODE) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

fn new_job() -> io::Result<OwnedHandle> {
    // SAFETY: null security attributes and name are allowed; the result is checked.
    #[allow(unsafe_code)]
    let handle = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
    if handle.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new handle of this process that nothing else owns; closed once, on drop.
    #[allow(unsafe_code)]
    let job = unsafe { OwnedHandle::from_raw_handle(handle) };
    // SAFETY: all-zero is a valid JOBOBJECT_EXTENDED_LIMIT_INFORMATION (plain data).
    #[allow(unsafe_code)]
    let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
    info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    // SAFETY: `info` is a properly sized, initialised struct for this information class.
    #[allow(unsafe_code)]
    let ok = unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            JobObjectExtendedLimitInformation,
            std::ptr::from_ref(&info).cast(),
            u32::try_from(std::mem::size_of_val(&info)).unwrap_or(u32::MAX),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(job)
}

/// Resumes every thread of a process created with CREATE_SUSPENDED (std does not hand out
/// the main thread's handle, so the threads are found through a snapshot).
fn resume_threads(pid: u32) -> io::Result<()> {
    // SAFETY: a snapshot of all threads; the handle is checked and closed below.
    #[allow(unsafe_code)]
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snap == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zeroed THREADENTRY32 with dwSize set is what Thread32First expects.
    #[allow(unsafe_code)]
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = u32::try_from(std::mem::size_of::<THREADENTRY32>()).unwrap_or(u32::MAX);
    let mut resumed = 0;
    // SAFETY: `snap` is a valid snapshot handle and `entry` is initialised as required.
    #[allow(unsafe_code)]
    let mut more = unsafe { Thread32First(snap, &raw mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: OpenThread on an id from the snapshot; the handle is checked and closed.
            #[allow(unsafe_code)]
            unsafe {
                let t = OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID);
                if !t.is_null() {
                    ResumeThread(t);
                    CloseHandle(t);
                    resumed += 1;
                }
            }
        }
        #[allow(unsafe_code)]
        {
            // SAFETY: as for Thread32First.
            more = unsafe { Thread32Next(snap, &raw mut entry) } != 0;
        }
    }
    // SAFETY: closing the snapshot handle once.
    #[allow(unsafe_code)]
    unsafe {
        CloseHandle(snap);
    }
    if resumed == 0 {
        return Err(io::Error::other(format!(
            "no thread of pid {pid} to resume"
        )));
    }
    Ok(())
}

/// Whether the program's console is created without a window (see [`hide_program_consoles`]).
static NO_WINDOW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, the program gets its console (still its own, still the target of console
/// control events) without a window. For a `--user` service, which runs in the user's
/// desktop session: a new console there would pop up a window per program start. Under
/// the SCM there is no desktop to show one on, and `tend run` keeps its visible consoles.
pub(crate) fn hide_program_consoles() {
    NO_WINDOW.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub(super) fn spawn(
    cmd: &mut tokio::process::Command,
) -> io::Result<(tokio::process::Child, Tree)> {
    // Suspended until it is in the job, so not even its first grandchild can escape. A new
    // console of its own is what console control events are aimed at (a service has none,
    // and tend's own console must not receive the program's Ctrl+C).
    let console = if NO_WINDOW.load(std::sync::atomic::Ordering::Relaxed) {
        CREATE_NO_WINDOW
    } else {
        CREATE_NEW_CONSOLE
    };
    cmd.creation_flags(CREATE_SUSPENDED | console);
    let job = new_job()?;
    let mut child = cmd.spawn()?;
    let pid = child.id().unwrap_or_default();
    let Some(process) = child.raw_handle() else {
        return Err(io::Error::other("the program exited before it started"));
    };
    // SAFETY: both handles are valid: the job was just created, the process handle is owned
    // by `child` which is alive.
    #[allow(unsafe_code)]
    let ok = unsafe { AssignProcessToJobObject(job.as_raw_handle(), process as HANDLE) };
    if ok == 0 {
        let e = io::Error::last_os_error();
        let _ = child.start_kill();
        return Err(e);
    }
    // On failure the process is in the job already: dropping `job` kills it.
    resume_threads(pid)?;
    Ok((child, Tree { job, pid }))
}

/// Whether this process raises console events itself rather than through a helper.
static IN_PROCESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, console events are raised by this process itself: for the SCM host, which
/// has no console of its own to lose (see [`detach_from_console`]). The helper process
/// would have to be started from tend.exe's file, which an upgrade renames or replaces
/// while the service runs.
pub(crate) fn raise_console_events_in_process() {
    IN_PROCESS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Leaves whatever console this process was given and ignores every console control
/// event from now on: a service must stop only when the SCM says so. Without this, a
/// Ctrl+C, close or shutdown event on a console tend.exe was started on ends tend.exe,
/// and with its Job Object the program, without any graceful step.
pub(crate) fn detach_from_console() -> io::Result<()> {
    use windows_sys::Win32::System::Console::{FreeConsole, SetConsoleCtrlHandler};
    // SAFETY: plain calls on this process's console state; `ignore` has the signature
    // PHANDLER_ROUTINE requires and touches nothing.
    #[allow(unsafe_code)]
    unsafe {
        // Fails only when there is no console, which is what is wanted.
        FreeConsole();
        if SetConsoleCtrlHandler(Some(ignore_console_event), 1) == 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A console control handler that handles every event by doing nothing. Unlike
/// `SetConsoleCtrlHandler(NULL, TRUE)` this is not inherited by the programs tend starts,
/// so they still get their Ctrl+C.
#[allow(unsafe_code)]
unsafe extern "system" fn ignore_console_event(_event: u32) -> windows_sys::core::BOOL {
    1
}

/// Why a console event could not be delivered, in the operator's words.
pub(crate) fn undeliverable(kind: &str, pid: u32, step: Step, os_code: Option<i32>) -> String {
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_INVALID_HANDLE: i32 = 6;
    const ERROR_INVALID_PARAMETER: i32 = 87;
    const ERROR_GEN_FAILURE: i32 = 31;
    let why = match (step, os_code) {
        (Step::Attach, Some(ERROR_INVALID_HANDLE)) => {
            format!("pid {pid} has no console of its own (it freed it or was started detached)")
        }
        (Step::Attach, Some(ERROR_INVALID_PARAMETER)) => format!("pid {pid} no longer exists"),
        (Step::Attach, Some(ERROR_ACCESS_DENIED)) => {
            "the console could not be attached (access denied)".to_owned()
        }
        (Step::Raise, Some(ERROR_GEN_FAILURE | 1 | 50)) if kind == "ctrl-break" => {
            "Ctrl+Break is not supported here (Wine does not implement it): use ctrl-c".to_owned()
        }
        (Step::Helper, _) => "the helper process could not be started".to_owned(),
        (_, Some(code)) => format!("{} (os error {code})", io::Error::from_raw_os_error(code)),
        (_, None) => "unknown error".to_owned(),
    };
    format!("cannot deliver {kind} to pid {pid}: {why}")
}

/// The step of delivering a console event that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Starting the helper process.
    Helper,
    /// AttachConsole to the program's console.
    Attach,
    /// GenerateConsoleCtrlEvent.
    Raise,
}

/// Sends a console control event to the console of `pid`. In the SCM host, from this
/// process (serialised: AttachConsole is per process); elsewhere (`tend run`, `--user`),
/// whose own console must not change under it, from a short-lived copy of tend.
fn console_event(pid: u32, kind: &str) -> io::Result<()> {
    if IN_PROCESS.load(std::sync::atomic::Ordering::Relaxed) {
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The ignoring handler installed by detach_from_console keeps this process alive
        // through the event it raises on the program's console.
        return attach_and_raise(pid, kind).map_err(|(step, e)| {
            io::Error::other(undeliverable(kind, pid, step, e.raw_os_error()))
        });
    }
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(&exe)
        .args(["console-event", &pid.to_string(), kind])
        .creation_flags(CREATE_NO_WINDOW)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| {
            let gone = if e.kind() == io::ErrorKind::NotFound {
                format!(
                    "; tend's own executable `{}` is gone (renamed or replaced while tend runs)",
                    exe.display()
                )
            } else {
                String::new()
            };
            io::Error::other(format!(
                "{}: {e}{gone}",
                undeliverable(kind, pid, Step::Helper, None)
            ))
        })?;
    if out.status.success() {
        return Ok(());
    }
    // The helper says why on stderr (`error: <why>`).
    let said = String::from_utf8_lossy(&out.stderr);
    let said = said.lines().rev().find(|l| !l.trim().is_empty()).map(|l| {
        let l = l.trim();
        l.find("cannot deliver").map_or(l, |at| &l[at..]).to_owned()
    });
    Err(io::Error::other(said.unwrap_or_else(|| {
        format!(
            "cannot deliver {kind} to pid {pid}: the helper exited with {} and said nothing",
            out.status
        )
    })))
}

/// The body of `tend console-event <pid> <ctrl-c|ctrl-break>`: attach to the program's
/// console and raise the event there. Runs in its own process; see [`console_event`].
pub(crate) fn raise_console_event(pid: u32, kind: &str) -> io::Result<()> {
    use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
    // SAFETY: a short-lived helper that starts nothing may ignore Ctrl+C outright (the
    // event goes to every process on that console, this one included).
    #[allow(unsafe_code)]
    unsafe {
        SetConsoleCtrlHandler(None, 1);
    }
    attach_and_raise(pid, kind)
        .map_err(|(step, e)| io::Error::other(undeliverable(kind, pid, step, e.raw_os_error())))
}

fn attach_and_raise(pid: u32, kind: &str) -> Result<(), (Step, io::Error)> {
    use windows_sys::Win32::System::Console::{
        AttachConsole, CTRL_BREAK_EVENT, CTRL_C_EVENT, FreeConsole, GenerateConsoleCtrlEvent,
    };
    let event = match kind {
        "ctrl-c" => CTRL_C_EVENT,
        "ctrl-break" => CTRL_BREAK_EVENT,
        other => {
            return Err((
                Step::Raise,
                io::Error::other(format!("unknown console event {other}")),
            ));
        }
    };
    // SAFETY: plain Win32 calls on this process's own console state; callers make sure
    // nothing else in this process uses a console meanwhile.
    #[allow(unsafe_code)]
    unsafe {
        FreeConsole();
        if AttachConsole(pid) == 0 {
            return Err((Step::Attach, io::Error::last_os_error()));
        }
        let raised = GenerateConsoleCtrlEvent(event, 0);
        let err = io::Error::last_os_error();
        FreeConsole();
        if raised == 0 {
            return Err((Step::Raise, err));
        }
    }
    Ok(())
}

/// Posts WM_CLOSE to the top-level windows of `pid`.
fn close_windows(pid: u32) {
    use windows_sys::Win32::Foundation::{HWND, LPARAM, WPARAM};
    use windows_sys::Win32::UI::WindowsAndMessaging::{
        EnumWindows, GetWindowThreadProcessId, PostMessageW, WM_CLOSE,
    };
    #[allow(unsafe_code)]
    unsafe extern "system" fn each(hwnd: HWND, lparam: LPARAM) -> i32 {
        let mut owner = 0u32;
        // SAFETY: hwnd comes from EnumWindows; `owner` is a valid out pointer.
        #[allow(unsafe_code)]
        unsafe {
            GetWindowThreadProcessId(hwnd, &raw mut owner);
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        if owner == lparam as u32 {
            // SAFETY: posting a message to a window handle is always allowed; a stale
            // handle just fails.
            #[allow(unsafe_code)]
            unsafe {
                PostMessageW(hwnd, WM_CLOSE, 0 as WPARAM, 0);
            }
        }
        1
    }
    // SAFETY: `each` matches WNDENUMPROC and only reads its arguments.
    #[allow(unsafe_code)]
    unsafe {
        EnumWindows(Some(each), pid as LPARAM);
    }
}

/// Process `pid`, opened for queries; `None` when it does not exist (or may not be asked).
fn open_process(pid: u32) -> Option<OwnedHandle> {
    use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION};
    // SAFETY: OpenProcess with a pid; the result is checked.
    #[allow(unsafe_code)]
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    // SAFETY: a new handle of this process that nothing else owns; closed once, on drop.
    #[allow(unsafe_code)]
    (!h.is_null()).then(|| unsafe { OwnedHandle::from_raw_handle(h) })
}

/// Whether a process with this pid is still running.
pub(crate) fn pid_alive(pid: u32) -> bool {
    use windows_sys::Win32::System::Threading::GetExitCodeProcess;
    const STILL_ACTIVE: u32 = 259;
    let Some(h) = open_process(pid) else {
        return false;
    };
    let mut code = 0u32;
    // SAFETY: a live process handle and a valid out pointer.
    #[allow(unsafe_code)]
    let ok = unsafe { GetExitCodeProcess(h.as_raw_handle(), &raw mut code) };
    ok != 0 && code == STILL_ACTIVE
}

/// Whether `pid` is the tend that wrote a status snapshot at `updated_at`: alive, a
/// tend.exe, and created no later than the snapshot was written. Pids are reused at once
/// (under Wine especially), so a pid alone would make a killed supervisor look alive.
pub(crate) fn is_supervisor(pid: u32, updated_at: &str) -> bool {
    if !pid_alive(pid) || !is_tend(pid) {
        return false;
    }
    let Ok(written) = chrono::DateTime::parse_from_rfc3339(updated_at) else {
        return false;
    };
    created_at(pid).is_some_and(|c| {
        chrono::DateTime::<chrono::Utc>::from(c) <= written + chrono::TimeDelta::seconds(2)
    })
}

fn is_tend(pid: u32) -> bool {
    let ours = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().to_lowercase()));
    let theirs =
        image_path(pid).and_then(|p| p.file_name().map(|f| f.to_string_lossy().to_lowercase()));
    ours.is_some() && ours == theirs
}

/// When process `pid` was created.
fn created_at(pid: u32) -> Option<std::time::SystemTime> {
    use windows_sys::Win32::Foundation::FILETIME;
    use windows_sys::Win32::System::Threading::GetProcessTimes;
    /// FILETIME counts 100 ns ticks since 1601-01-01; this many of them lead to 1970.
    const UNIX_EPOCH_TICKS: u64 = 116_444_736_000_000_000;
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    let h = open_process(pid)?;
    // SAFETY: a live process handle; the four out pointers are locals.
    #[allow(unsafe_code)]
    let ok = unsafe {
        GetProcessTimes(
            h.as_raw_handle(),
            &raw mut created,
            &raw mut exited,
            &raw mut kernel,
            &raw mut user,
        )
    };
    if ok == 0 {
        return None;
    }
    let ticks = (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime);
    let since_epoch = ticks.checked_sub(UNIX_EPOCH_TICKS)?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(since_epoch.saturating_mul(100)))
}

fn image_path(pid: u32) -> Option<std::path::PathBuf> {
    use std::os::windows::ffi::OsStringExt as _;
    use windows_sys::Win32::System::Threading::{PROCESS_NAME_WIN32, QueryFullProcessImageNameW};
    let mut buf = [0u16; 1024];
    let mut len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    let h = open_process(pid)?;
    // SAFETY: a live process handle; `buf` holds `len` UTF-16 units.
    #[allow(unsafe_code)]
    let ok = unsafe {
        QueryFullProcessImageNameW(
            h.as_raw_handle(),
            PROCESS_NAME_WIN32,
            buf.as_mut_ptr(),
            &raw mut len,
        )
    };
    (ok != 0).then(|| std::path::PathBuf::from(std::ffi::OsString::from_wide(&buf[..len as usize])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_a_live_supervisor_of_a_snapshot_written_after_it_started() {
        let me = std::process::id();
        assert!(pid_alive(me));
        assert!(is_tend(me), "the image name of this process is its own");
        let created = created_at(me).expect("this process's creation time");
        assert!(created <= std::time::SystemTime::now());
        let rfc = |t: std::time::SystemTime| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339();
        assert!(is_supervisor(me, &rfc(std::time::SystemTime::now())));
        // A snapshot older than the process was written by another one with the same pid.
        let before = created - std::time::Duration::from_secs(3600);
        assert!(!is_supervisor(me, &rfc(before)));
    }

    #[test]
    fn killing_the_job_ends_the_program_and_its_children() {
        let rt = crate::host::runtime().unwrap();
        rt.block_on(async {
            let mut cmd = tokio::process::Command::new("cmd.exe");
            cmd.args(["/c", "ping -n 60 127.0.0.1 > NUL"]);
            let (mut child, tree) = spawn(&mut cmd).expect("spawn cmd.exe in a job");
            let sample = tree.sample().expect("the job can be measured");
            assert!(sample.processes.unwrap_or(1) >= 1);
            tree.kill().expect("terminate the job");
            let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
                .await
                .expect("the program ended after the kill")
                .unwrap();
            assert_eq!(status.code(), i32::try_from(KILLED_EXIT_CODE).ok());
        });
    }
}
