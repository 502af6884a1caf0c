//! The status file's writer: the subscriber of [`Event::Status`] that keeps the file
//! `tend status` reads up to date. Apart from `status.rs` (the snapshot and its file
//! format), so that the snapshot, which the events carry, does not depend on the events.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::background::Background;
use crate::events::{Bus, Delivered, Event, Record, Subscriber};
use crate::status::{STATUS_EVERY, Snapshot, write};

/// The status file, a subscriber of [`Event::Status`]: each snapshot goes to a writer
/// thread of its own, at most ten writes a second (and the last at exit): a reader is
/// never more than 0.1 s behind, and a crash loop does not spend its CPU on renames. The
/// newest snapshot replaces one not written yet, on the bus and here.
pub(crate) struct StatusFile {
    writer: Mutex<Option<Background<Arc<Snapshot>>>>,
    file: PathBuf,
}

impl StatusFile {
    /// Starts the writer and subscribes it to `bus`; a failure is said on `bus`, once per
    /// run of failures.
    pub(crate) fn start(file: PathBuf, bus: &Bus) -> Arc<Self> {
        let (to, said, errors) = (file.clone(), file.clone(), bus.clone());
        let writer = Background::spawn(
            "tend-status",
            STATUS_EVERY,
            move |snap: &Arc<Snapshot>| write(&to, snap),
            move |e| {
                errors.emit(Event::NotWritten {
                    file: Record::Status,
                    path: said.clone(),
                    error: Some(e),
                });
            },
        );
        let me = Arc::new(Self {
            writer: Mutex::new(Some(writer)),
            file,
        });
        bus.subscribe(me.clone());
        me
    }

    /// At exit: writes `last` at once and stops the thread, waiting at most
    /// [`FINISH_WAIT`](crate::background::FINISH_WAIT). `last` is handed over here, not
    /// emitted: the bus may still be busy with a stuck subscriber, and the last state is
    /// what `tend status` must show. What the bus delivers later is not written.
    pub(crate) fn finish(&self, last: Snapshot, bus: &Bus) {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(writer) = writer else { return };
        writer.publish(Arc::new(last));
        if !writer.finish(crate::background::FINISH_WAIT) {
            bus.emit(Event::NotWritten {
                file: Record::Status,
                path: self.file.clone(),
                error: None,
            });
        }
    }
}

impl Subscriber for StatusFile {
    fn deliver(&self, e: &Delivered<'_>) {
        if let Event::Status(snap) = e.event
            && let Some(w) = self
                .writer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
        {
            w.publish(snap.clone());
        }
    }
}
