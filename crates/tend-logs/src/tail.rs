//! Reading logs back for `tend logs`: the last lines of a family ([`last_lines`]), and
//! following it across rotations ([`Follower`], in `follow.rs`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};

use flate2::read::GzDecoder;
use memchr::memrchr_iter;

use crate::clock::TS_LEN;
use crate::naming::{LogKind, RotatedFile, rotated_files};

pub use crate::follow::Follower;
use crate::naming::{open_rotated, read_whole};

/// Where the last `n` lines of `bytes` start, and how many lines that is (fewer than `n` if
/// `bytes` has fewer). An unterminated last line counts as a line.
fn suffix_start(bytes: &[u8], n: usize) -> (usize, usize, bool) {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut count = 0;
    for i in memrchr_iter(b'\n', body) {
        count += 1;
        if count == n {
            return (i + 1, n, true);
        }
    }
    (0, if bytes.is_empty() { 0 } else { count + 1 }, false)
}

const BLOCK: u64 = 64 * 1024;

/// The last `n` lines of a plain file up to byte `end`, read backwards so a big file costs
/// only its tail.
fn tail_file(mut f: &File, end: u64, n: usize) -> io::Result<(Vec<u8>, usize)> {
    let mut pos = end;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let step = BLOCK.min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        let mut block = vec![0; usize::try_from(step).unwrap_or(usize::MAX)];
        f.read_exact(&mut block)?;
        block.extend_from_slice(&buf);
        buf = block;
        let (start, lines, complete) = suffix_start(&buf, n);
        if complete || pos == 0 {
            buf.drain(..start);
            return Ok((buf, lines));
        }
    }
}

/// The last `n` lines of a stream that can only be read forwards (a `.gz`), keeping only
/// about that much in memory.
fn tail_reader(mut r: impl Read, n: usize) -> io::Result<(Vec<u8>, usize)> {
    let mut buf = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let mut trim_at = 1 << 20;
    loop {
        let k = match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..k]);
        if buf.len() > trim_at {
            let (start, _, _) = suffix_start(&buf, n);
            buf.drain(..start);
            trim_at = (buf.len() * 2).max(1 << 20);
        }
    }
    let (start, lines, _) = suffix_start(&buf, n);
    buf.drain(..start);
    Ok((buf, lines))
}

/// The last `n` lines of a family (e.g. [`LogKind::Out`] of service `name`): from the
/// active file, and from the rotated files (compressed or not, newest first) when the active
/// file has fewer. Missing files count as empty.
pub fn last_lines(dir: &Path, name: &str, kind: LogKind, n: usize) -> io::Result<Vec<u8>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let active = match File::open(kind.active_path(dir, name)) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let end = match &active {
        Some(f) => f.metadata()?.len(),
        None => 0,
    };
    last_lines_of(active.as_ref(), end, &rotated_files(dir, name, kind)?, n)
}

/// The time at the start of a line tend timestamped (`2026-11-21T14:05:09.123+01:00 `), or
/// of a JSON line (`{"time":"2026-11-21T14:05:09.123+01:00",...`).
fn line_time(line: &[u8]) -> Option<DateTime<FixedOffset>> {
    let line = line.strip_prefix(b"{\"time\":\"").unwrap_or(line);
    let stamp = std::str::from_utf8(line.get(..TS_LEN - 1)?).ok()?;
    DateTime::parse_from_rfc3339(stamp).ok()
}

/// The last `n` lines of a family that `keep` accepts and, with `since`, that were written
/// at or after it, oldest first, reaching back through the rotated (and compressed) files.
///
/// `since` needs the timestamps tend writes (`timestamps = true`, the default) to judge a
/// line; without them, rotated files closed before `since` are skipped whole and every line
/// of the others counts. Files are read whole (they are at most `max_size`), newest first,
/// and reading stops at the first line older than `since`.
pub fn matching_lines(
    dir: &Path,
    name: &str,
    kind: LogKind,
    n: usize,
    keep: &dyn Fn(&[u8]) -> bool,
    since: Option<DateTime<FixedOffset>>,
) -> io::Result<Vec<u8>> {
    let mut picked: Vec<Vec<u8>> = Vec::new();
    let mut bytes = Vec::new();
    let rotated = rotated_files(dir, name, kind)?;
    let mut files: Vec<(PathBuf, bool, Option<chrono::NaiveDateTime>)> =
        vec![(kind.active_path(dir, name), false, None)];
    files.extend(
        rotated
            .iter()
            .rev()
            .map(|f| (f.path.clone(), f.compressed, Some(f.closed))),
    );
    'files: for (path, compressed, closed) in files {
        if let (Some(since), Some(closed)) = (since, closed)
            && closed < since.naive_local()
        {
            break;
        }
        // Not there (yet) or deleted by retention since the listing: empty.
        bytes.clear();
        read_whole(&path, compressed, &mut bytes)?;
        let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        if body.is_empty() {
            continue;
        }
        for line in body.rsplit(|b| *b == b'\n') {
            if picked.len() == n {
                break 'files;
            }
            if let Some(since) = since
                && line_time(line).is_some_and(|t| t < since)
            {
                break 'files;
            }
            if keep(line) {
                picked.push(line.to_vec());
            }
        }
    }
    let mut out = Vec::new();
    for line in picked.iter().rev() {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    Ok(out)
}

/// The last `n` lines of the active file up to byte `end` and, before it, of `older`
/// (rotated files, oldest first).
pub(crate) fn last_lines_of(
    active: Option<&File>,
    end: u64,
    older: &[RotatedFile],
    n: usize,
) -> io::Result<Vec<u8>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut parts = Vec::new();
    let mut need = n;
    if let Some(f) = active {
        let (bytes, lines) = tail_file(f, end, need)?;
        need -= lines;
        parts.push(bytes);
    }
    if need > 0 {
        for rf in older.iter().rev() {
            let (bytes, lines) = match open_rotated(&rf.path, rf.compressed)? {
                Some((f, true)) => tail_reader(GzDecoder::new(f), need)?,
                Some((f, false)) => {
                    let end = f.metadata()?.len();
                    tail_file(&f, end, need)?
                }
                // Deleted by retention since the listing.
                None => continue,
            };
            need -= lines;
            parts.push(bytes);
            if need == 0 {
                break;
            }
        }
    }
    let mut out = Vec::new();
    for part in parts.iter().rev() {
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.extend_from_slice(part);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn suffix_counts_lines() {
        assert_eq!(suffix_start(b"a\nb\nc\n", 2), (2, 2, true));
        assert_eq!(suffix_start(b"a\nb\nc", 2), (2, 2, true));
        assert_eq!(suffix_start(b"a\nb\nc\n", 5), (0, 3, false));
        assert_eq!(suffix_start(b"", 5), (0, 0, false));
        assert_eq!(suffix_start(b"\n", 5), (0, 1, false));
        assert_eq!(suffix_start(b"a\nb\n", 1), (2, 1, true));
    }

    #[test]
    fn tail_of_big_file_and_stream_agree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut data = Vec::new();
        for i in 0..100_000 {
            data.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        let len = data.len() as u64;
        let (a, n) = tail_file(&f, len, 3).unwrap();
        assert_eq!(
            (a.as_slice(), n),
            (&b"line 99997\nline 99998\nline 99999\n"[..], 3)
        );
        let (b, n) = tail_reader(data.as_slice(), 3).unwrap();
        assert_eq!((b, n), (a, 3));
        let (all, n) = tail_file(&f, len, 1_000_000).unwrap();
        assert_eq!((all.len(), n), (data.len(), 100_000));
    }

    #[test]
    fn a_file_compressed_after_the_listing_is_read_from_its_gz() {
        let dir = tempfile::tempdir().unwrap();
        let closed =
            chrono::NaiveDateTime::parse_from_str("2026-12-07 10:00:00", "%Y-%m-%d %H:%M:%S")
                .unwrap();
        let path = dir.path().join(crate::naming::rotated_file_name(
            "svc",
            LogKind::Out,
            &closed,
            0,
        ));
        fs::write(&path, b"one\ntwo\n").unwrap();
        let listed = rotated_files(dir.path(), "svc", LogKind::Out).unwrap();
        assert!(!listed[0].compressed);
        // Compression publishes X.log.gz and deletes X.log between the listing and the read.
        let mut gz = flate2::write::GzEncoder::new(
            File::create(crate::naming::with_suffix(&path, ".gz")).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut gz, b"one\ntwo\n").unwrap();
        gz.finish().unwrap();
        fs::remove_file(&path).unwrap();

        assert_eq!(last_lines_of(None, 0, &listed, 1).unwrap(), b"two\n");
        let mut whole = Vec::new();
        read_whole(&listed[0].path, false, &mut whole).unwrap();
        assert_eq!(whole, b"one\ntwo\n");
    }
}
