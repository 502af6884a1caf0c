//! Housekeeping of rotated files: retention, background compression and the clean-up of
//! what a crash left behind. Serialised by `FsState::fs_guard` so retention never deletes a
//! file that compression is about to publish, and vice versa.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::Ordering;

use chrono::{DateTime, FixedOffset};
use flate2::Compression;
use flate2::write::GzEncoder;
use tend_core::LogSpec;

use crate::error::LogEvent;
use crate::naming::with_suffix;
use crate::naming::{LogKind, dedup, scan};
use crate::state::{FsOp, FsState};

/// Deletes rotated files of one family beyond `keep`, older than `max_age` or over
/// `max_total`, oldest first. The active file is never a candidate: it has no rotated name.
pub(crate) fn retention(
    shared: &FsState,
    spec: &LogSpec,
    kind: LogKind,
    now: &DateTime<FixedOffset>,
    events: &mut Vec<LogEvent>,
) {
    if spec.keep == 0 && spec.max_age.is_zero() && spec.max_total == 0 {
        return;
    }
    let _fs = shared.fs_guard();
    let Ok(found) = scan(&spec.dir, &shared.name, kind) else {
        return;
    };
    let files = dedup(found.files);
    let pending = shared.pending_guard();
    // A file waiting for compression would count with its uncompressed size and push older
    // files out of the budget for nothing; it is counted once compressed (retention runs again
    // then).
    let waiting = |f: &crate::RotatedFile| !f.compressed && pending.contains(&f.path);
    let mut total: u64 = files.iter().filter(|f| !waiting(f)).map(|f| f.size).sum();
    let keep = spec.keep as usize;
    let now_local = now.naive_local();
    for (i, f) in files.iter().enumerate() {
        let over_keep = keep > 0 && files.len() - i > keep;
        let over_total = spec.max_total > 0 && total > spec.max_total && !waiting(f);
        // Ages come from the names (local time, read with today's offset): an hour off
        // across a DST change, but independent of mtimes that copies and backups change.
        let too_old = !spec.max_age.is_zero()
            && (now_local - f.closed)
                .to_std()
                .is_ok_and(|age| age > spec.max_age);
        if !(over_keep || over_total || too_old) {
            continue;
        }
        let mut result = shared
            .fault(FsOp::Remove, &f.path)
            .and_then(|()| fs::remove_file(&f.path));
        if let Err(e) = &result
            && e.kind() == io::ErrorKind::NotFound
        {
            result = Ok(());
        }
        match result {
            Ok(()) => {
                if f.compressed {
                    // A crash may have left the uncompressed twin; it goes with it.
                    let _ = fs::remove_file(f.plain_path());
                }
                if !waiting(f) {
                    total = total.saturating_sub(f.size);
                }
            }
            Err(e) => {
                shared
                    .counters
                    .delete_failures
                    .fetch_add(1, Ordering::Relaxed);
                shared.set_error(format!("deleting {}: {e}", f.path.display()));
                events.push(LogEvent::DeleteFailed {
                    path: f.path.clone(),
                    error: e.to_string(),
                });
            }
        }
    }
}

/// Cleans up after a crash: unfinished compressions are deleted, a finished one whose source
/// was not yet deleted wins over the source. Returns the uncompressed rotated files.
pub(crate) fn recover(shared: &FsState, dir: &Path, kind: LogKind) -> Vec<std::path::PathBuf> {
    let _fs = shared.fs_guard();
    let Ok(found) = scan(dir, &shared.name, kind) else {
        return Vec::new();
    };
    let pending = shared.pending_guard();
    for tmp in &found.temps {
        // A temp file of a compression that is running right now (after a reconfigure) is
        // not debris.
        let src = tmp.with_extension("").with_extension("");
        if !pending.contains(&src) {
            let _ = fs::remove_file(tmp);
        }
    }
    let mut plain = Vec::new();
    let files = found.files;
    for (i, f) in files.iter().enumerate() {
        if f.compressed {
            continue;
        }
        let has_gz = files
            .get(i + 1)
            .is_some_and(|g| g.compressed && g.closed == f.closed && g.seq == f.seq);
        if has_gz {
            if !pending.contains(&f.path) {
                let _ = fs::remove_file(&f.path);
            }
        } else {
            plain.push(f.path.clone());
        }
    }
    plain
}

/// Gzips one rotated file to `<file>.gz` via `<file>.gz.tmp`, then deletes the original.
/// Runs on the housekeeping thread, never under a file's write lock. Returns false if it
/// was abandoned because the logs are closing (the rotated file stays as it was).
pub(crate) fn compress(shared: &FsState, src: &Path, events: &mut Vec<LogEvent>) -> bool {
    let tmp = with_suffix(src, ".gz.tmp");
    let gz = with_suffix(src, ".gz");
    let result = shared
        .fault(FsOp::Compress, src)
        .and_then(|()| gzip(shared, src, &tmp));
    let finished = !matches!(&result, Err(e) if e.kind() == io::ErrorKind::Interrupted);
    let _fs = shared.fs_guard();
    let failure = match result {
        // Retention deleted the source meanwhile: the copy must not resurrect it.
        Ok(()) if !src.exists() => {
            let _ = fs::remove_file(&tmp);
            None
        }
        Ok(()) => match fs::rename(&tmp, &gz) {
            Ok(()) => match fs::remove_file(src) {
                Ok(()) => None,
                Err(e) => {
                    // Two copies would be counted twice by retention; keep the original.
                    let _ = fs::remove_file(&gz);
                    Some(e)
                }
            },
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Some(e)
            }
        },
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            (e.kind() != io::ErrorKind::NotFound && e.kind() != io::ErrorKind::Interrupted)
                .then_some(e)
        }
    };
    shared.pending_guard().remove(src);
    if let Some(e) = failure {
        shared
            .counters
            .compress_failures
            .fetch_add(1, Ordering::Relaxed);
        shared.set_error(format!("compressing {}: {e}", src.display()));
        events.push(LogEvent::CompressFailed {
            path: src.to_path_buf(),
            error: e.to_string(),
        });
    }
    finished
}

/// gzip level of rotated files. Measured on log text with flate2's backends (bench/README.md,
/// "Compression"): zlib-rs at level 2 compresses typical application logs about 7 times
/// as fast as miniz_oxide at the default level 6, into files about a fifth larger; level 1
/// is faster still but its fixed Huffman codes make the files half as large again.
const LEVEL: u32 = 2;

/// Returned by [`gzip`] when `ServiceLogs::close` asked it to stop.
fn abandoned() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "compression abandoned at exit")
}

fn gzip(shared: &FsState, src: &Path, tmp: &Path) -> io::Result<()> {
    let mut input = File::open(src)?;
    let out = BufWriter::with_capacity(64 * 1024, File::create(tmp)?);
    let mut enc = GzEncoder::new(out, Compression::new(LEVEL));
    let mut buf = vec![0; 64 * 1024];
    loop {
        // Checked per 64 KiB, a fraction of a millisecond of work: an exit never waits
        // for a file to finish.
        if shared.closing.load(Ordering::Relaxed) {
            return Err(abandoned());
        }
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => enc.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    enc.finish()?
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    Ok(())
}
