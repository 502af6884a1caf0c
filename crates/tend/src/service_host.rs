//! `tend service <name>`: what the Windows Service Control Manager starts.
//!
//! The SCM talks to tend through a control handler on its own thread; the handler does one
//! thing per control (report STOP_PENDING, send one message) and returns at once. The
//! supervision itself is exactly `tend run`'s ([`crate::host::Host`]).

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{
    self, ServiceControlHandlerResult, ServiceStatusHandle,
};
use windows_service::{define_windows_service, service_dispatcher};

use crate::error::{CliError, code};
use crate::events::Bus;
use crate::host::{Adapter, Boot};
use crate::place::Scope;
use crate::supervisor::{Control, Outcome};
use tend_os::scm::eventlog::{EventLog, Level, event_id};
use tend_os::scm::exit;

/// The service name, handed from `run` to the SCM's service thread.
static NAME: OnceLock<String> = OnceLock::new();

const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;

/// The start's wait hint while an interrupted upgrade may be ended (see `serve`).
const RECOVERY_HINT: Duration = Duration::from_secs(30);

pub(crate) fn run(name: &str) -> Result<ExitCode, CliError> {
    let _ = NAME.set(name.to_owned());
    match service_dispatcher::start(name, ffi_service_main) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) =>
        {
            let _ = writeln!(
                std::io::stderr(),
                "error: `tend service {name}` is started by the Windows Service Control Manager, not from a console.\n  to start the installed service: tend start {name}\n  to supervise in the foreground:  tend run <config>"
            );
            Ok(ExitCode::from(code::INVALID))
        }
        Err(e) => Err(CliError::io(
            "cannot connect to the Service Control Manager",
            std::io::Error::other(e.to_string()),
        )),
    }
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(_args: Vec<OsString>) {
    let name = NAME.get().cloned().unwrap_or_default();
    let events = EventLog::open(&name).map(Arc::new);
    // Only the SCM stops a service: no console event may end tend.exe (and with its Job
    // Object the program, ungracefully). With no console to keep, tend raises the
    // program's Ctrl+C itself, which also survives tend.exe being renamed or replaced.
    if let Err(e) = crate::proc::detach_from_console()
        && let Some(ev) = &events
    {
        ev.report(
            Level::Warning,
            event_id::SERVICE_ERROR,
            &format!("tend service {name}: cannot ignore console control events: {e}"),
        );
    }
    crate::proc::raise_console_events_in_process();
    if let Err(e) = serve(&name, events.as_ref())
        && let Some(ev) = &events
    {
        ev.report(
            Level::Error,
            event_id::SERVICE_ERROR,
            &format!("tend service {name}: {e}"),
        );
    }
}

fn status(
    state: ServiceState,
    checkpoint: u32,
    wait_hint: Duration,
    exit: ServiceExitCode,
) -> ServiceStatus {
    let controls_accepted = if state == ServiceState::Running {
        ServiceControlAccept::STOP
            | ServiceControlAccept::SHUTDOWN
            | ServiceControlAccept::PRESHUTDOWN
            | ServiceControlAccept::PARAM_CHANGE
    } else {
        ServiceControlAccept::empty()
    };
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted,
        exit_code: exit,
        checkpoint,
        wait_hint,
        process_id: None,
    }
}

fn ok() -> ServiceExitCode {
    ServiceExitCode::Win32(0)
}

/// The SCM: its controls in (from the handler's thread), SCM states and the Event Log out.
struct Scm {
    handle: ServiceStatusHandle,
    events: Option<Arc<EventLog>>,
    /// What the control handler sends, forwarded to the supervisor once it listens.
    requests: Option<mpsc::UnboundedReceiver<Control>>,
    stopping: Arc<Notify>,
    stop_hint: Arc<std::sync::Mutex<Duration>>,
}

impl Adapter for Scm {
    fn config_failed(&mut self, e: &tend_config::ConfigError) {
        let mut msg = format!("tend service: {e}");
        if let tend_config::ConfigError::Invalid { path, problems } = e {
            for p in problems {
                msg.push_str(&format!("\n{}", p.display_in(path)));
            }
        }
        if let Some(ev) = &self.events {
            ev.report(Level::Error, event_id::CONFIG_ERROR, &msg);
        }
    }

    fn subscribers(&mut self) -> Vec<Arc<dyn crate::events::Subscriber>> {
        self.events
            .clone()
            .map(crate::os::eventlog::subscriber)
            .into_iter()
            .collect()
    }

    fn stderr_events(&mut self) -> Option<crate::os::stderr_events::Write> {
        let events = self.events.clone()?;
        Some(Arc::new(move |level, id, text: &str| {
            events.report(level, id, text);
        }))
    }

    fn loaded(&mut self, spec: &tend_core::ServiceSpec) {
        *self
            .stop_hint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            spec.stop.timeout + Duration::from_secs(5);
    }

    fn listen(
        &mut self,
        controls: mpsc::UnboundedSender<Control>,
        _: &Bus,
    ) -> Result<(), CliError> {
        if let Some(mut requests) = self.requests.take() {
            tokio::spawn(async move {
                while let Some(c) = requests.recv().await {
                    if controls.send(c).is_err() {
                        break;
                    }
                }
            });
        }
        // While a stop is in progress, show the SCM that it is progressing.
        let (h, stopping, hint) = (self.handle, self.stopping.clone(), self.stop_hint.clone());
        tokio::spawn(async move {
            stopping.notified().await;
            let hint = *hint
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for checkpoint in 2.. {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ =
                    h.set_service_status(status(ServiceState::StopPending, checkpoint, hint, ok()));
            }
        });
        Ok(())
    }

    fn supervising(&mut self) {
        let _ =
            self.handle
                .set_service_status(status(ServiceState::Running, 0, Duration::ZERO, ok()));
    }
}

fn serve(name: &str, events: Option<&Arc<EventLog>>) -> windows_service::Result<()> {
    let (tx, rx) = mpsc::unbounded_channel::<Control>();
    let handle: Arc<OnceLock<ServiceStatusHandle>> = Arc::default();
    let stopping = Arc::new(Notify::new());
    // Until the config is read, assume the default stop timeout for the wait hint.
    let stop_hint = Arc::new(std::sync::Mutex::new(Duration::from_secs(15)));
    let handler = {
        let (handle, stopping, stop_hint) = (handle.clone(), stopping.clone(), stop_hint.clone());
        move |control: ServiceControl| -> ServiceControlHandlerResult {
            match control {
                ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
                    if let Some(h) = handle.get() {
                        let hint = *stop_hint
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let _ =
                            h.set_service_status(status(ServiceState::StopPending, 1, hint, ok()));
                    }
                    stopping.notify_one();
                    let _ = tx.send(Control::Stop);
                    ServiceControlHandlerResult::NoError
                }
                ServiceControl::ParamChange => {
                    let _ = tx.send(Control::Reload);
                    ServiceControlHandlerResult::NoError
                }
                ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
                _ => ServiceControlHandlerResult::NotImplemented,
            }
        }
    };
    let h = service_control_handler::register(name, handler)?;
    let _ = handle.set(h);
    h.set_service_status(status(
        ServiceState::StartPending,
        1,
        Duration::from_secs(10),
        ok(),
    ))?;
    // An upgrade a killed tend left unfinished is ended before the program starts, as
    // systemd's `ExecStartPre=` does (docs/upgrade.md, "At the service's next start").
    // Putting a release back can wait up to twice 5 s for files in use and 3 s for its
    // alert: the SCM is told to expect that long before the next word.
    h.set_service_status(status(ServiceState::StartPending, 2, RECOVERY_HINT, ok()))?;
    crate::commands::upgrade::recover_at_start_with(name, Scope::System, &|line: &str| {
        if let Some(ev) = events {
            let level = if line.starts_with("warning:") {
                Level::Warning
            } else {
                Level::Information
            };
            ev.report(
                level,
                event_id::UPGRADE_STEP,
                &format!("tend service {name}: {line}"),
            );
        }
    });
    let mut scm = Scm {
        handle: h,
        events: events.cloned(),
        requests: Some(rx),
        stopping,
        stop_hint,
    };
    let place = crate::place::service_name(name)
        .and_then(|n| crate::place::place(Scope::System, &n))
        .and_then(|p| Ok((crate::place::load_options(Scope::System)?, p)));
    let exit_code = match place.and_then(|(load, place)| {
        let boot = Boot {
            config: place.config,
            load,
            state_dir: Some(place.state_dir),
            to_stderr: false,
        };
        crate::host::boot(boot, &mut scm)
    }) {
        Ok(outcome) => match outcome {
            Outcome::Stopped => ok(),
            Outcome::Failed => ServiceExitCode::ServiceSpecific(exit::GAVE_UP),
        },
        // Said in the Event Log by `config_failed`.
        Err(CliError::Config(_)) => ServiceExitCode::ServiceSpecific(exit::CONFIG),
        Err(e) => {
            if let Some(ev) = events {
                ev.report(
                    Level::Error,
                    event_id::SERVICE_ERROR,
                    &format!("tend service {name}: {}", crate::report::chain(&e)),
                );
            }
            ServiceExitCode::ServiceSpecific(exit::OS)
        }
    };
    h.set_service_status(status(ServiceState::Stopped, 0, Duration::ZERO, exit_code))?;
    Ok(())
}
