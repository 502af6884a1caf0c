//! `[metrics]`: the `/metrics` listener and the textfile.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tend_core::health::MetricsSpec;
use tend_health::HealthState;
use tend_health::metrics::{MetricsServer, ServiceMetrics};
use tokio::task::JoinHandle;

use super::{LogMetrics, REFRESH, UpgradeMetrics, Watch};
use crate::background::Background;
use crate::events::{Bus, Delivered, Event, Listener, Record, Subscriber};

/// `[metrics]` at work.
pub(super) struct Metrics {
    pub(super) spec: MetricsSpec,
    pub(super) server: Option<JoinHandle<()>>,
    /// Whether there is a textfile (its writer is the subscriber's).
    pub(super) textfile: bool,
    pub(super) last_textfile: Option<Instant>,
}

/// The metrics' subscriber: each [`Event::Metrics`] becomes what the listener serves and,
/// with a textfile, the text its writer thread writes (newest wins, once a second at most:
/// node_exporter reads it every 15 s or so). Rendering happens here, on the delivery
/// thread, not on the supervisor's.
pub(in crate::supervisor) struct MetricsOut {
    /// What the `/metrics` listener serves (logs are read at scrape time).
    served: Arc<Mutex<Arc<ServiceMetrics>>>,
    textfile: Mutex<Option<(Background<String>, PathBuf)>>,
    logs: Mutex<Option<LogMetrics>>,
    upgrades: Mutex<Option<UpgradeMetrics>>,
}

impl MetricsOut {
    pub(super) fn new(service: &str) -> Arc<Self> {
        Arc::new(Self {
            served: Arc::new(Mutex::new(Arc::new(ServiceMetrics {
                service: service.to_owned(),
                ..ServiceMetrics::default()
            }))),
            textfile: Mutex::default(),
            logs: Mutex::default(),
            upgrades: Mutex::default(),
        })
    }

    pub(super) fn set_upgrades(&self, upgrades: UpgradeMetrics) {
        *self
            .upgrades
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(upgrades);
    }

    pub(super) fn set_logs(&self, logs: LogMetrics) {
        *self
            .logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(logs);
    }

    fn take_textfile(&self) -> Option<(Background<String>, PathBuf)> {
        self.textfile
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Writes the last text at once and stops the writer (bounded), at exit or before a
    /// reload replaces it.
    pub(super) fn finish(&self, bus: &Bus) {
        if let Some((writer, path)) = self.take_textfile()
            && !writer.finish(crate::background::FINISH_WAIT)
        {
            bus.emit(Event::NotWritten {
                file: Record::MetricsTextfile,
                path,
                error: None,
            });
        }
    }
}

impl Subscriber for MetricsOut {
    fn deliver(&self, e: &Delivered<'_>) {
        let Event::Metrics(m) = e.event else { return };
        *self
            .served
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = m.clone();
        let has_textfile = self
            .textfile
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some();
        if !has_textfile {
            return;
        }
        // Read and rendered outside the locks: a reload swapping the writer on the
        // supervisor's thread waits for a hand-over, never for this work.
        let logs = self
            .logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let upgrades = self
            .upgrades
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut m = (**m).clone();
        if let Some(logs) = logs {
            m.logs = logs();
        }
        if let Some(upgrades) = upgrades {
            m.upgrades = upgrades();
        }
        let text = tend_health::metrics::render(&[m]);
        if let Some((writer, _)) = self
            .textfile
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            writer.publish(text);
        }
    }
}

impl Watch {
    /// Applies `[metrics]`. The listener is kept when its address is unchanged: binding the
    /// same port again while the old socket is open fails ("address already in use"), and
    /// scrapers must not see a gap for a change they did not cause.
    pub(super) fn set_metrics(&mut self, spec: Option<&MetricsSpec>) {
        // The old file's last write goes first (the new writer may write the same file),
        // but a stalled disk holds up this loop for a bounded time only.
        self.metrics_out.finish(&self.events);
        let (mut kept, old_listen) = match self.metrics.take() {
            Some(old) => (old.server, old.spec.listen),
            None => (None, None),
        };
        if spec.map(|s| s.listen) != Some(old_listen)
            && let Some(server) = kept.take()
        {
            server.abort();
        }
        let Some(spec) = spec else { return };
        let server = match kept {
            Some(server) => Some(server),
            None => spec.listen.and_then(|addr| self.serve_metrics(addr)),
        };
        if let Some(dir) = spec.textfile.clone() {
            let path = tend_health::metrics::textfile_path(&dir, &self.name);
            let (name, events, said) = (self.name.clone(), self.events.clone(), path.clone());
            let writer = Background::spawn(
                "tend-metrics",
                std::time::Duration::from_secs(1),
                move |text: &String| {
                    tend_health::metrics::write_textfile(&dir, &name, text).map(|_| ())
                },
                move |e| {
                    events.emit(Event::NotWritten {
                        file: Record::MetricsTextfile,
                        path: said.clone(),
                        error: Some(e),
                    });
                },
            );
            *self
                .metrics_out
                .textfile
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((writer, path));
        }
        self.metrics = Some(Metrics {
            spec: spec.clone(),
            server,
            textfile: spec.textfile.is_some(),
            last_textfile: None,
        });
    }

    /// Binds the `/metrics` listener and serves it on a task of its own.
    fn serve_metrics(&self, addr: std::net::SocketAddr) -> Option<tokio::task::JoinHandle<()>> {
        match MetricsServer::bind_now(addr) {
            Ok(server) => {
                let shown = server.local_addr().map_or(addr, |a| a);
                self.events.emit(Event::Listener(Listener::Serving(shown)));
                let served = self.metrics_out.served.clone();
                let logs = self.log_metrics.clone();
                let upgrades = self.upgrade_metrics.clone();
                Some(tokio::spawn(server.serve(move || {
                    let mut m = (**served
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner))
                    .clone();
                    if let Some(logs) = &logs {
                        m.logs = logs();
                    }
                    if let Some(upgrades) = &upgrades {
                        m.upgrades = upgrades();
                    }
                    tend_health::metrics::render(&[m])
                })))
            }
            Err(e) => {
                // Metrics are an add-on: supervising goes on without the listener.
                self.events.emit(Event::Listener(Listener::CannotListen {
                    addr,
                    error: e.to_string(),
                }));
                None
            }
        }
    }

    pub(in crate::supervisor) fn next_refresh_at(&self) -> Option<Instant> {
        let m = self.metrics.as_ref().filter(|m| m.textfile)?;
        Some(
            m.last_textfile
                .map_or_else(crate::supervisor::now, |t| t + REFRESH),
        )
    }

    /// Emits `base` (what the machine knows) with what is known here, for the listener and
    /// the textfile.
    pub(in crate::supervisor) fn emit_metrics(
        &mut self,
        base: impl FnOnce() -> ServiceMetrics,
        now: Instant,
    ) {
        self.last_publish = Some(now);
        if self.metrics.is_none() {
            return;
        }
        let mut base = base();
        base.healthy = self
            .health
            .as_ref()
            .map(|h| self.running && h.tracker.state() == &HealthState::Healthy);
        base.memory_bytes = self.memory_bytes;
        base.cpu_seconds_total = self.limits.as_ref().map(|_| self.cpu.total().as_secs_f64());
        base.last_check = self
            .health
            .as_ref()
            .and_then(|h| h.tracker.last_outcome())
            .map(|o| (o.took().as_secs_f64(), o.is_healthy()));
        let Some(m) = &mut self.metrics else { return };
        if m.textfile {
            m.last_textfile = Some(now);
        }
        self.events.emit(Event::Metrics(Arc::new(base)));
    }
}
