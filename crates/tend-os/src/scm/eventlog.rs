//! The Windows Application Event Log: tend's lifecycle events under the service's own
//! source, with stable IDs (docs/windows.md) and a level.
//!
//! The IDs and levels are data (here, on every OS); which line gets which is the
//! runtime's decision (`tend service`). Registering the source is part of `tend install`
//! ([`super::Host::register_event_source`]); writing is `EventLog`, on Windows.

/// Stable Event Log IDs (documented in docs/windows.md).
pub mod event_id {
    /// The program was started.
    pub const STARTED: u32 = 1000;
    /// The program exited.
    pub const EXITED: u32 = 1001;
    /// tend restarts the program after a delay.
    pub const RESTARTING: u32 = 1002;
    /// tend gave up restarting.
    pub const GAVE_UP: u32 = 1003;
    /// A stop began.
    pub const STOPPING: u32 = 1004;
    /// The stop is complete.
    pub const STOPPED: u32 = 1005;
    /// The graceful stop did not work in time: the tree was killed.
    pub const KILLED: u32 = 1006;
    /// The program could not be started.
    pub const SPAWN_FAILED: u32 = 1007;
    /// The program exited and the restart policy says not to restart it.
    pub const NOT_RESTARTING: u32 = 1008;
    /// The installed config could not be loaded.
    pub const CONFIG_ERROR: u32 = 1100;
    /// The service itself failed (the dispatcher, the status calls).
    pub const SERVICE_ERROR: u32 = 1101;
    /// tend could not do something it had to (signal, kill, capture, start).
    pub const TEND_FAILED: u32 = 1102;
    /// Anything else tend says.
    pub const INFO: u32 = 1200;
    /// A reload was rejected, or the log files are in trouble.
    pub const TROUBLE: u32 = 1201;
    /// A line the program wrote to stderr (`[logs] eventlog = "stderr"`).
    pub const STDERR_LINE: u32 = 1300;
    /// stderr lines that were not forwarded (rate limit, or the Event Log was slow).
    pub const STDERR_LEFT_OUT: u32 = 1301;
    /// A step of `tend upgrade` or `tend rollback`, as it printed it.
    pub const UPGRADE_STEP: u32 = 1400;
    /// An upgrade (or rollback) ended: the release runs and passed verification.
    pub const UPGRADED: u32 = 1401;
    /// The new release failed; the one before runs again.
    pub const ROLLED_BACK: u32 = 1402;
    /// The new release failed and the one before did not pass verification either.
    pub const UPGRADE_BROKEN: u32 = 1403;
}

/// An Event Log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// What the operator asked for happened (start, stop, reload).
    Information,
    /// The program did something unasked (crashed, exited) and tend coped (restart).
    Warning,
    /// The service is down for good (gave up, a failed exit not restarted), or tend itself
    /// failed at something.
    Error,
}

#[cfg(windows)]
pub use real::{EventLog, register_source, remove_source};

#[cfg(windows)]
mod real {
    use windows_sys::Win32::Foundation::HANDLE;
    use windows_sys::Win32::System::EventLog::{
        DeregisterEventSource, EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE,
        EVENTLOG_WARNING_TYPE, REPORT_EVENT_TYPE, RegisterEventSourceW, ReportEventW,
    };
    use windows_sys::Win32::System::Registry::HKEY_LOCAL_MACHINE;

    use super::Level;
    use crate::winreg;

    /// The registry key of the source `name` under the Application log.
    fn source_key(name: &str) -> String {
        format!(r"SYSTEM\CurrentControlSet\Services\EventLog\Application\{name}")
    }

    /// .NET's generic message file: every event ID renders as its first insertion string.
    /// It ships with every supported Windows, which spares tend.exe a message-table
    /// resource.
    const MESSAGE_FILE: &str =
        r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";

    /// Registers `name` as an Event Log source (install).
    ///
    /// # Errors
    ///
    /// The registry refused (the error names the key).
    pub fn register_source(name: &str) -> std::io::Result<()> {
        winreg::set(
            HKEY_LOCAL_MACHINE,
            &source_key(name),
            &[
                ("EventMessageFile", winreg::Value::ExpandStr(MESSAGE_FILE)),
                ("TypesSupported", winreg::Value::Dword(7)),
            ],
        )
    }

    /// Removes the source (uninstall).
    ///
    /// # Errors
    ///
    /// The registry refused (the error names the key).
    pub fn remove_source(name: &str) -> std::io::Result<()> {
        winreg::delete_tree(HKEY_LOCAL_MACHINE, &source_key(name))
    }

    /// An open event source.
    #[derive(Debug)]
    pub struct EventLog(HANDLE);

    // SAFETY: an event source handle may be used from any thread (ReportEventW is
    // thread-safe).
    #[allow(unsafe_code)]
    unsafe impl Send for EventLog {}
    // SAFETY: as above.
    #[allow(unsafe_code)]
    unsafe impl Sync for EventLog {}

    impl Drop for EventLog {
        fn drop(&mut self) {
            // SAFETY: the handle came from RegisterEventSourceW and is released once.
            #[allow(unsafe_code)]
            unsafe {
                DeregisterEventSource(self.0);
            }
        }
    }

    impl EventLog {
        /// Opens the source `name`; `None` if the Event Log is unavailable.
        #[must_use]
        pub fn open(name: &str) -> Option<Self> {
            let n: Vec<u16> = name.encode_utf16().chain(std::iter::once(0)).collect();
            // SAFETY: null server name = local machine; NUL-terminated source name.
            #[allow(unsafe_code)]
            let h = unsafe { RegisterEventSourceW(std::ptr::null(), n.as_ptr()) };
            (!h.is_null()).then_some(Self(h))
        }

        /// Writes one event.
        pub fn report(&self, level: Level, id: u32, text: &str) {
            let t: Vec<u16> = text.encode_utf16().chain(std::iter::once(0)).collect();
            let strings = [t.as_ptr()];
            // SAFETY: one NUL-terminated insertion string; no SID, no raw data.
            #[allow(unsafe_code)]
            unsafe {
                ReportEventW(
                    self.0,
                    event_type(level),
                    0,
                    id,
                    std::ptr::null_mut(),
                    1,
                    0,
                    strings.as_ptr(),
                    std::ptr::null(),
                );
            }
        }
    }

    /// The Win32 event type of a level.
    fn event_type(level: Level) -> REPORT_EVENT_TYPE {
        match level {
            Level::Information => EVENTLOG_INFORMATION_TYPE,
            Level::Warning => EVENTLOG_WARNING_TYPE,
            Level::Error => EVENTLOG_ERROR_TYPE,
        }
    }
}
