//! Reading logs back for `tend logs`: the last lines, and following the active file across
//! rotations like `tail -F`.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use memchr::memrchr_iter;

use crate::naming::{LogKind, rotated_files};

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

/// The last `n` lines of a plain file, read backwards so a big file costs only its tail.
fn tail_file(mut f: File, n: usize) -> io::Result<(Vec<u8>, usize)> {
    let len = f.metadata()?.len();
    let mut pos = len;
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
    let mut parts = Vec::new();
    let mut need = n;
    match File::open(kind.active_path(dir, name)) {
        Ok(f) => {
            let (bytes, lines) = tail_file(f, need)?;
            need -= lines;
            parts.push(bytes);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if need > 0 {
        for rf in rotated_files(dir, name, kind)?.iter().rev() {
            let f = match File::open(&rf.path) {
                Ok(f) => f,
                // Deleted by retention since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let (bytes, lines) = if rf.compressed {
                tail_reader(GzDecoder::new(f), need)?
            } else {
                tail_file(f, need)?
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

/// Follows one log file across rotations, like `tail -F`. Poll it every few hundred
/// milliseconds.
///
/// A rotation is noticed by a change of file identity (Unix), or because the file at the
/// path is shorter than what was read so far or longer than the open file (everywhere).
/// The old file is read to its end before switching, so nothing written before the rotation
/// is missed; only a file rotated in and out again entirely between two polls is skipped.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    pos: u64,
    from_end: bool,
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    Some(a.dev() == b.dev() && a.ino() == b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &fs::Metadata, _: &fs::Metadata) -> Option<bool> {
    None
}

impl Follower {
    /// Follows `path` from its beginning.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            file: None,
            pos: 0,
            from_end: false,
        }
    }

    /// Follows `path` from its current end: only output written from now on.
    #[must_use]
    pub fn from_end(path: impl Into<PathBuf>) -> Self {
        let mut f = Self::new(path);
        f.from_end = true;
        // Open now so "the end" means now, not the first poll.
        let _ = f.open();
        f
    }

    /// The followed path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&mut self) -> io::Result<bool> {
        match File::open(&self.path) {
            Ok(f) => {
                self.pos = if self.from_end {
                    f.metadata()?.len()
                } else {
                    0
                };
                self.from_end = false;
                self.file = Some(f);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let Some(f) = self.file.as_mut() else {
            return Ok(0);
        };
        f.seek(SeekFrom::Start(self.pos))?;
        let n = f.read_to_end(out)?;
        self.pos += n as u64;
        Ok(n)
    }

    /// Appends whatever was written since the last poll to `out`; returns how many bytes.
    pub fn poll(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        if self.file.is_none() && !self.open()? {
            return Ok(0);
        }
        let mut total = self.drain(out)?;
        // Stat the path before the open file: if they are the same growing file, the open
        // file can then only look longer, never shorter.
        let at_path = match fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(total),
            Err(e) => return Err(e),
        };
        let Some(file) = self.file.as_ref() else {
            return Ok(total);
        };
        let open = file.metadata()?;
        let replaced = match same_file(&at_path, &open) {
            Some(same) => !same || at_path.len() < self.pos,
            None => at_path.len() < self.pos || at_path.len() > open.len(),
        };
        if replaced {
            total += self.drain(out)?;
            self.file = None;
            if self.open()? {
                total += self.drain(out)?;
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (a, n) = tail_file(File::open(&p).unwrap(), 3).unwrap();
        assert_eq!(
            (a.as_slice(), n),
            (&b"line 99997\nline 99998\nline 99999\n"[..], 3)
        );
        let (b, n) = tail_reader(data.as_slice(), 3).unwrap();
        assert_eq!((b, n), (a, 3));
        let (all, n) = tail_file(File::open(&p).unwrap(), 1_000_000).unwrap();
        assert_eq!((all.len(), n), (data.len(), 100_000));
    }
}
