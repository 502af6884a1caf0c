//! The Windows Application Event Log: tend's lifecycle events under the service's own
//! source, with stable IDs (docs/windows.md) and the right level.

use std::sync::Arc;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
    REPORT_EVENT_TYPE, RegisterEventSourceW, ReportEventW,
};
use windows_sys::Win32::System::Registry::HKEY_LOCAL_MACHINE;

use super::scm_plan::Level;
use super::winreg;

/// .NET's generic message file: every event ID renders as its first insertion string. It
/// ships with every supported Windows, which spares tend.exe a message-table resource.
const MESSAGE_FILE: &str =
    r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";

fn source_key(name: &str) -> String {
    format!(r"SYSTEM\CurrentControlSet\Services\EventLog\Application\{name}")
}

/// Registers `name` as an Event Log source (install).
pub(crate) fn register_source(name: &str) -> std::io::Result<()> {
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
pub(crate) fn remove_source(name: &str) -> std::io::Result<()> {
    winreg::delete_tree(HKEY_LOCAL_MACHINE, &source_key(name))
}

/// An open event source.
pub(crate) struct EventLog(HANDLE);

// SAFETY: an event source handle may be used from any thread (ReportEventW is thread-safe).
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
    pub(crate) fn open(name: &str) -> Option<Self> {
        let n: Vec<u16> = name.encode_utf16().chain(std::iter::once(0)).collect();
        // SAFETY: null server name = local machine; NUL-terminated source name.
        #[allow(unsafe_code)]
        let h = unsafe { RegisterEventSourceW(std::ptr::null(), n.as_ptr()) };
        (!h.is_null()).then_some(Self(h))
    }

    /// Writes one event.
    pub(crate) fn report(&self, level: REPORT_EVENT_TYPE, id: u32, text: &str) {
        let t: Vec<u16> = text.encode_utf16().chain(std::iter::once(0)).collect();
        let strings = [t.as_ptr()];
        // SAFETY: one NUL-terminated insertion string; no SID, no raw data.
        #[allow(unsafe_code)]
        unsafe {
            ReportEventW(
                self.0,
                level,
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

    /// A reporter sink that sends every line, with the level and ID
    /// [`event_level`](super::scm_plan::event_level) gives it.
    pub(crate) fn sink(self: Arc<Self>) -> crate::report::LineSink {
        Arc::new(move |text: &str, kind: &crate::report::Kind| {
            let (level, id) = super::scm_plan::event_level(kind);
            self.report(event_type(level), id, text);
        })
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
