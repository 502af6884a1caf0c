//! One way to supervise a service, shared by `tend run` (foreground) and `tend service`
//! (under the OS service manager): the same core, logs, status file and policies.

use std::path::PathBuf;
use std::sync::Arc;

use tend_core::ServiceSpec;
use tend_logs::{LogEvent, ServiceLogs, Stream};
use tokio::sync::mpsc;

use crate::error::CliError;
use crate::report::Reporter;
use crate::supervisor::{Capture, Control, Loader, Outcome, Supervisor};

/// What a host needs besides the spec.
pub(crate) struct Host {
    pub(crate) spec: Arc<ServiceSpec>,
    pub(crate) reporter: Reporter,
    /// Where the status file goes.
    pub(crate) state_dir: PathBuf,
}

/// Hands each run's pipes to the log pipeline.
struct LogCapture {
    logs: Arc<ServiceLogs>,
    reporter: Reporter,
}

impl Capture for LogCapture {
    fn reconfigure(&self, spec: &tend_core::LogSpec) -> Result<(), String> {
        self.logs
            .reconfigure(spec.clone())
            .map_err(|e| e.to_string())
    }

    fn attach(&self, stdout: std::io::PipeReader, stderr: std::io::PipeReader) {
        for (stream, pipe) in [(Stream::Out, stdout), (Stream::Err, stderr)] {
            // The reader thread is never joined: a grandchild holding the pipe must not
            // hold up a restart. If no thread can be started the pipe is dropped and the
            // program sees EPIPE, which is loud rather than a silent hang.
            if let Err(e) = self.logs.capture(stream, pipe) {
                self.reporter.line(&format!("cannot capture {stream}: {e}"));
            }
        }
    }
}

impl Host {
    /// Opens the logs. Failing here (the log directory cannot be created) stops tend before
    /// the program starts: better a clear error now than a service that runs blind.
    pub(crate) fn open_logs(&self) -> Result<Arc<ServiceLogs>, CliError> {
        let reporter = self.reporter.clone();
        let events: tend_logs::EventSink =
            Arc::new(move |e: LogEvent| reporter.line(&format!("logs: {e}")));
        let logs = ServiceLogs::open(
            self.spec.name.as_str(),
            self.spec.logs.clone(),
            Some(events),
        )
        .map_err(|e| {
            CliError::io(
                format!("cannot open the logs of `{}`", self.spec.name),
                std::io::Error::other(e),
            )
        })?;
        let file = logs.clone();
        self.reporter.add_sink(Arc::new(move |text: &str, _| {
            file.supervisor_line(text.as_bytes())
        }));
        Ok(logs)
    }

    /// Supervises until the machine settles. Must run on a current-thread runtime on the
    /// thread that will spawn the program (see `proc::unix`: PR_SET_PDEATHSIG).
    pub(crate) async fn supervise(
        self,
        logs: Arc<ServiceLogs>,
        loader: Loader,
        controls: mpsc::UnboundedReceiver<Control>,
    ) -> Outcome {
        let status_file = crate::status::path(&self.state_dir, self.spec.name.as_str());
        let capture = LogCapture {
            logs: logs.clone(),
            reporter: self.reporter.clone(),
        };
        let sup = Supervisor::new(
            self.spec.clone(),
            self.reporter.clone(),
            Some(Box::new(capture)),
        )
        .with_status(status_file, logs.stats().active_files)
        .with_loader(loader);
        let outcome = sup.run(controls).await;
        logs.flush();
        outcome
    }
}

/// A current-thread runtime: one thread is all an event-driven supervisor needs, and the
/// program must be spawned from the thread that stays alive (PR_SET_PDEATHSIG).
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A [`Loader`] that reads `path` with `opts` again and reports every problem in one line.
pub(crate) fn loader(path: PathBuf, opts: tend_config::LoadOptions, reporter: Reporter) -> Loader {
    Box::new(move || match tend_config::load(&path, &opts) {
        Ok(l) => {
            for w in &l.warnings {
                reporter.line(&w.display_in(&l.spec.config_path).to_string());
            }
            Ok(l.spec)
        }
        Err(tend_config::ConfigError::Invalid { path, problems }) => Err(problems
            .iter()
            .filter(|p| p.severity == tend_config::Severity::Error)
            .map(|p| p.display_in(&path).to_string())
            .collect::<Vec<_>>()
            .join("; ")),
        Err(e) => Err(e.to_string()),
    })
}
