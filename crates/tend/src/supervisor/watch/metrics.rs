//! `[metrics]`: the `/metrics` listener and the textfile.

use std::time::Instant;

use tend_core::health::MetricsSpec;
use tend_health::HealthState;
use tend_health::metrics::{MetricsServer, ServiceMetrics};
use tokio::task::JoinHandle;

use super::{REFRESH, Watch};

/// `[metrics]` at work.
pub(super) struct Metrics {
    pub(super) spec: MetricsSpec,
    pub(super) server: Option<JoinHandle<()>>,
    pub(super) textfile: Option<crate::background::Background<String>>,
    pub(super) last_textfile: Option<Instant>,
}

impl Watch {
    /// Applies `[metrics]`. The listener is kept when its address is unchanged: binding the
    /// same port again while the old socket is open fails ("address already in use"), and
    /// scrapers must not see a gap for a change they did not cause.
    pub(super) fn set_metrics(&mut self, spec: Option<&MetricsSpec>) {
        let (mut kept, old_listen) = match self.metrics.take() {
            Some(old) => {
                // The old file's last write goes first (the new writer may write the same
                // file), but a stalled disk holds up this loop for a bounded time only.
                if let Some(writer) = old.textfile {
                    writer.finish(crate::background::FINISH_WAIT);
                }
                (old.server, old.spec.listen)
            }
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
        let textfile = spec.textfile.clone().map(|dir| {
            let name = self.name.clone();
            let reporter = self.reporter.clone();
            // node_exporter reads it every 15 s or so: once a second at most is plenty.
            crate::background::Background::spawn(
                "tend-metrics",
                std::time::Duration::from_secs(1),
                move |text: &String| {
                    tend_health::metrics::write_textfile(&dir, &name, text)
                        .map(|_| ())
                        .map_err(|e| {
                            std::io::Error::new(
                                e.kind(),
                                format!(
                                    "cannot write the metrics textfile `{}`: {e}",
                                    tend_health::metrics::textfile_path(&dir, &name).display()
                                ),
                            )
                        })
                },
                move |e| reporter.failure(&e),
            )
        });
        self.metrics = Some(Metrics {
            spec: spec.clone(),
            server,
            textfile,
            last_textfile: None,
        });
    }

    /// Binds the `/metrics` listener and serves it on a task of its own.
    fn serve_metrics(&self, addr: std::net::SocketAddr) -> Option<tokio::task::JoinHandle<()>> {
        match MetricsServer::bind_now(addr) {
            Ok(server) => {
                let shown = server.local_addr().map_or(addr, |a| a);
                self.reporter
                    .line(&format!("metrics: serving http://{shown}/metrics"));
                let shared = self.shared.clone();
                let logs = self.log_metrics.clone();
                let upgrades = self.upgrade_metrics.clone();
                Some(tokio::spawn(server.serve(move || {
                    let mut m = shared
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
                self.reporter.failure(&format!(
                    "metrics: cannot listen on {addr}: {e}; /metrics is not served"
                ));
                None
            }
        }
    }

    pub(in crate::supervisor) fn next_refresh_at(&self) -> Option<Instant> {
        let m = self.metrics.as_ref()?;
        m.textfile.as_ref()?;
        Some(
            m.last_textfile
                .map_or_else(crate::supervisor::now, |t| t + REFRESH),
        )
    }

    /// Publishes `base` (what the machine knows) with what is known here: to the
    /// listener's copy and the textfile.
    pub(in crate::supervisor) fn publish_metrics(
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
        *self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = base.clone();
        if let Some(writer) = &m.textfile {
            if let Some(logs) = &self.log_metrics {
                base.logs = logs();
            }
            if let Some(upgrades) = &self.upgrade_metrics {
                base.upgrades = upgrades();
            }
            writer.publish(tend_health::metrics::render(&[base]));
            m.last_textfile = Some(now);
        }
    }
}
