//! `tend service --user <name>` on Windows: what the per-user Run entry starts, and the
//! supervisor of a per-user service. Its install side is [`tend_os::run_key`]; the
//! supervision itself is exactly `tend run`'s ([`crate::host::boot`]).

use std::io;
use std::process::ExitCode;

use tend_core::ServiceName;
use tend_os::run_key::{event_name, spawn_detached};
use tokio::sync::mpsc;

use crate::error::CliError;
use crate::events::{self, Bus, Event, Failure};
use crate::host::{Adapter, Boot};
use crate::place::{self, Scope};
use crate::supervisor::Control;

/// Whether this process is the only one on a console that has a window: started from the
/// Run entry or by a double click, not from a terminal someone is using.
fn alone_on_a_console_window() -> bool {
    use windows_sys::Win32::System::Console::{GetConsoleProcessList, GetConsoleWindow};
    let mut pids = [0u32; 2];
    // SAFETY: plain queries; `pids` holds the 2 entries the call is told about.
    #[allow(unsafe_code)]
    unsafe {
        !GetConsoleWindow().is_null() && GetConsoleProcessList(pids.as_mut_ptr(), 2) == 1
    }
}

/// `tend service --user <name>` on Windows: the supervisor of a per-user service.
pub(crate) fn run(name: &str, detached: bool) -> Result<ExitCode, CliError> {
    let name = place::service_name(name)?;
    let place = place::place(Scope::User, &name)?;
    if !detached && alone_on_a_console_window() {
        // Windows opened a console window for us (the logon Run entry): start again
        // without one and let this window close.
        spawn_detached(&name, &place)?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::proc::hide_program_consoles();
    let boot = Boot {
        config: place.config.clone(),
        load: place::load_options(Scope::User)?,
        state_dir: Some(place.state_dir.clone()),
        // In a terminal (someone runs it by hand), tend's lines are shown as `tend run`
        // shows them; detached, they are in `<name>.tend.log`.
        to_stderr: !detached,
    };
    let outcome = crate::host::boot(boot, &mut RunKey { name })?;
    Ok(ExitCode::from(crate::host::exit_code(&outcome)))
}

/// The per-user Run entry: console events and two named events (stop, reload) in.
struct RunKey {
    name: ServiceName,
}

impl Adapter for RunKey {
    fn listen(&mut self, tx: mpsc::UnboundedSender<Control>, events: &Bus) -> Result<(), CliError> {
        forward_console_events(tx.clone(), events.clone())?;
        watch_event(
            &event_name(&self.name, "stop"),
            Control::Stop,
            tx.clone(),
            events.clone(),
        )?;
        watch_event(
            &event_name(&self.name, "reload"),
            Control::Reload,
            tx,
            events.clone(),
        )
    }
}

/// Every console event is a graceful stop, as for `tend run`: Ctrl+C, Ctrl+Break, the
/// console closing, logoff and shutdown.
fn forward_console_events(tx: mpsc::UnboundedSender<Control>, events: Bus) -> Result<(), CliError> {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_logoff, ctrl_shutdown};
    let err = |what: &'static str| move |e| CliError::io(format!("cannot handle {what}"), e);
    let mut c = ctrl_c().map_err(err("Ctrl+C"))?;
    let mut b = ctrl_break().map_err(err("Ctrl+Break"))?;
    let mut close = ctrl_close().map_err(err("console close"))?;
    let mut logoff = ctrl_logoff().map_err(err("logoff"))?;
    let mut shutdown = ctrl_shutdown().map_err(err("shutdown"))?;
    tokio::spawn(async move {
        loop {
            let what = tokio::select! {
                _ = c.recv() => "Ctrl+C",
                _ = b.recv() => "Ctrl+Break",
                _ = close.recv() => "console closing",
                _ = logoff.recv() => "logoff",
                _ = shutdown.recv() => "shutdown",
            };
            events.emit(Event::Requested {
                by: what,
                stop: true,
            });
            if tx.send(Control::Stop).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// Creates the named event (auto-reset) and sends `ctl` each time it is set, from a
/// thread of its own that lives as long as tend.
fn watch_event(
    event: &str,
    ctl: Control,
    tx: mpsc::UnboundedSender<Control>,
    events: Bus,
) -> Result<(), CliError> {
    use windows_sys::Win32::Foundation::{HANDLE, WAIT_OBJECT_0};
    use windows_sys::Win32::System::Threading::{CreateEventW, INFINITE, WaitForSingleObject};
    /// The event handle, moved to the waiting thread (kernel handles may be used from any
    /// thread); it is never closed: the thread and the handle end with the process.
    struct Event(HANDLE);
    // SAFETY: see above; the handle is only waited on.
    #[allow(unsafe_code)]
    unsafe impl Send for Event {}
    let wide: Vec<u16> = event.encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: default security, auto-reset, not signalled, NUL-terminated name.
    #[allow(unsafe_code)]
    let h = unsafe { CreateEventW(std::ptr::null(), 0, 0, wide.as_ptr()) };
    if h.is_null() {
        return Err(CliError::io(
            format!("cannot create the event `{event}`"),
            io::Error::last_os_error(),
        ));
    }
    let ev = Event(h);
    let what = if ctl == Control::Stop {
        "stop"
    } else {
        "reload"
    };
    let event = event.to_owned();
    std::thread::Builder::new()
        .name(format!("tend-{what}-event"))
        .spawn(move || {
            let ev = ev;
            loop {
                // SAFETY: a valid event handle, owned for the life of the process.
                #[allow(unsafe_code)]
                let rc = unsafe { WaitForSingleObject(ev.0, INFINITE) };
                if rc != WAIT_OBJECT_0 {
                    // The OS's reason, or the operator has nothing to go on.
                    let e = io::Error::last_os_error();
                    events.emit(events::Event::Failed(Failure::UserRequests {
                        what,
                        event: event.clone(),
                        error: e.to_string(),
                    }));
                    return;
                }
                events.emit(events::Event::UserRequest {
                    stop: ctl == Control::Stop,
                });
                if tx.send(ctl).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| CliError::io("cannot start a thread", e))?;
    Ok(())
}
