//! A value written to disk by a thread of its own: the status file, the crash records and
//! the metrics text file are rewritten after events, and that file I/O must never be on the
//! supervisor's thread.

/// Writes the newest of a stream of values on a thread of its own, so that file I/O (a
/// rename can take milliseconds, a stalled disk forever) never delays a restart or a stop on
/// the supervisor's thread. Only the newest value matters: bursts are coalesced.
pub(crate) struct Background<T> {
    tx: Option<std::sync::mpsc::Sender<T>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<T: Send + 'static> Background<T> {
    /// Starts the thread `name`; `write` stores one value; `on_error` is told about a
    /// failure once per run of failures.
    pub(crate) fn spawn(
        name: &str,
        write: impl Fn(&T) -> std::io::Result<()> + Send + 'static,
        on_error: impl Fn(String) + Send + 'static,
    ) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<T>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut broken = false;
                while let Ok(mut value) = rx.recv() {
                    while let Ok(newer) = rx.try_recv() {
                        value = newer;
                    }
                    match write(&value) {
                        Ok(()) => broken = false,
                        Err(e) if !broken => {
                            broken = true;
                            on_error(e.to_string());
                        }
                        Err(_) => {}
                    }
                }
            })
            .ok();
        Self {
            tx: thread.is_some().then_some(tx),
            thread,
        }
    }

    /// Queues a value; never blocks.
    pub(crate) fn publish(&self, value: T) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(value);
        }
    }

    /// Writes what is queued and stops the thread (at exit, so the last value is on disk).
    pub(crate) fn finish(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
