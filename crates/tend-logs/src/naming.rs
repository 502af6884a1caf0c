//! File names: which file holds what, and how rotated files are named, found and ordered.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use flate2::read::GzDecoder;

use crate::clock::{STAMP_LEN, format_stamp, parse_stamp};

/// One family of log files: an active file plus its rotated predecessors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogKind {
    /// Standard output in separate mode: `<name>.out.log`.
    Out,
    /// Standard error in separate mode: `<name>.err.log`.
    Err,
    /// Both streams in combined mode: `<name>.log`.
    Combined,
    /// tend's own lines about the service: `<name>.tend.log`.
    Supervisor,
}

impl LogKind {
    fn infix(self) -> &'static str {
        match self {
            Self::Out => ".out",
            Self::Err => ".err",
            Self::Combined => "",
            Self::Supervisor => ".tend",
        }
    }

    /// The active file's name, e.g. `web.out.log`.
    #[must_use]
    pub fn active_file_name(self, name: &str) -> String {
        format!("{name}{}.log", self.infix())
    }

    /// The active file's path in `dir`.
    #[must_use]
    pub fn active_path(self, dir: &Path, name: &str) -> PathBuf {
        dir.join(self.active_file_name(name))
    }

    /// What every rotated file of this family starts with, e.g. `web.out.`.
    fn rotated_prefix(self, name: &str) -> String {
        format!("{name}{}.", self.infix())
    }
}

/// A rotated (closed) log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedFile {
    /// Where it is.
    pub path: PathBuf,
    /// Local time at which it was closed, from its name.
    pub closed: NaiveDateTime,
    /// Tie-breaker for files closed in the same millisecond (`-1`, `-2`, ...; 0 for none).
    pub seq: u32,
    /// Whether it is gzipped (`.log.gz`).
    pub compressed: bool,
    /// Its size on disk.
    pub size: u64,
}

impl RotatedFile {
    /// The path without `.gz`, i.e. what the file was called right after rotation.
    pub(crate) fn plain_path(&self) -> PathBuf {
        if self.compressed {
            self.path.with_extension("")
        } else {
            self.path.clone()
        }
    }
}

/// The name a file rotated at `closed` gets (before compression).
pub(crate) fn rotated_file_name(
    name: &str,
    kind: LogKind,
    closed: &NaiveDateTime,
    seq: u32,
) -> String {
    let prefix = kind.rotated_prefix(name);
    let stamp = format_stamp(closed);
    if seq == 0 {
        format!("{prefix}{stamp}.log")
    } else {
        format!("{prefix}{stamp}-{seq}.log")
    }
}

/// What a directory entry is to one family.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Rotated {
        closed: NaiveDateTime,
        seq: u32,
        compressed: bool,
    },
    /// A compression that never finished (`.log.gz.tmp`).
    Temp,
}

fn parse(file_name: &str, prefix: &str) -> Option<Parsed> {
    let rest = file_name.strip_prefix(prefix)?;
    let closed = parse_stamp(rest.get(..STAMP_LEN)?)?;
    let mut tail = &rest[STAMP_LEN..];
    let mut seq = 0;
    if let Some(t) = tail.strip_prefix('-') {
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        seq = t[..digits].parse().ok().filter(|&s| s > 0)?;
        tail = &t[digits..];
    }
    match tail {
        ".log" => Some(Parsed::Rotated {
            closed,
            seq,
            compressed: false,
        }),
        ".log.gz" => Some(Parsed::Rotated {
            closed,
            seq,
            compressed: true,
        }),
        ".log.gz.tmp" => Some(Parsed::Temp),
        _ => None,
    }
}

/// Everything of one family found in a directory.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Oldest first. May hold both `X.log` and `X.log.gz` after a crash mid-compression.
    pub(crate) files: Vec<RotatedFile>,
    pub(crate) temps: Vec<PathBuf>,
}

pub(crate) fn scan(dir: &Path, name: &str, kind: LogKind) -> io::Result<Scan> {
    scan_with(dir, name, kind, true)
}

/// The rotated files of a family by name only (no `stat` each, so `size` is 0), oldest
/// first: what a follower needs, and cheap in a directory of thousands of files.
pub(crate) fn rotated_names(dir: &Path, name: &str, kind: LogKind) -> io::Result<Vec<RotatedFile>> {
    Ok(dedup(scan_with(dir, name, kind, false)?.files))
}

fn scan_with(dir: &Path, name: &str, kind: LogKind, stat: bool) -> io::Result<Scan> {
    let prefix = kind.rotated_prefix(name);
    let mut out = Scan::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        // Names tend writes are ASCII; anything else is not ours.
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        match parse(&file_name, &prefix) {
            Some(Parsed::Rotated {
                closed,
                seq,
                compressed,
            }) => {
                let size = if stat {
                    // Gone between listing and stat: deleted by retention or compression.
                    let Ok(meta) = entry.metadata() else { continue };
                    meta.len()
                } else {
                    0
                };
                out.files.push(RotatedFile {
                    path: entry.path(),
                    closed,
                    seq,
                    compressed,
                    size,
                });
            }
            Some(Parsed::Temp) => out.temps.push(entry.path()),
            None => {}
        }
    }
    out.files.sort_by_key(|f| (f.closed, f.seq, f.compressed));
    Ok(out)
}

/// Drops the uncompressed twin when both `X.log` and `X.log.gz` exist: the `.gz` is only ever
/// created complete (renamed from its temp name), so it is the one to trust.
pub(crate) fn dedup(files: Vec<RotatedFile>) -> Vec<RotatedFile> {
    let mut out: Vec<RotatedFile> = Vec::with_capacity(files.len());
    for f in files {
        match out.last_mut() {
            Some(prev) if prev.closed == f.closed && prev.seq == f.seq => {
                if f.compressed {
                    *prev = f;
                }
            }
            _ => out.push(f),
        }
    }
    out
}

/// The rotated files of one family in `dir`, oldest first (by the time in their names, then
/// the `-N` tie-breaker; plain string order would put `-1` before the unsuffixed name).
/// A missing directory has none.
pub fn rotated_files(dir: &Path, name: &str, kind: LogKind) -> io::Result<Vec<RotatedFile>> {
    Ok(dedup(scan(dir, name, kind)?.files))
}

/// `path` with `suffix` appended to its file name (`Path::with_extension` would replace).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Whether an open failed because the file is gone or going: on Windows a file deleted while
/// another process holds it open keeps its name, and cannot be opened, until that handle
/// closes (compression deletes `X.log` while a follower may be reading it).
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || (cfg!(windows) && e.kind() == io::ErrorKind::PermissionDenied)
}

/// Opens a file that may be gone; `None` if it is.
pub(crate) fn open_if_there(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens a rotated file, or its `.gz` if it was compressed since it was listed; `None` if
/// retention deleted it. The flag says whether what was opened is gzip.
pub(crate) fn open_rotated(path: &Path, compressed: bool) -> io::Result<Option<(File, bool)>> {
    Ok(match open_if_there(path)? {
        Some(f) => Some((f, compressed)),
        None if !compressed => open_if_there(&with_suffix(path, ".gz"))?.map(|f| (f, true)),
        None => None,
    })
}

/// Appends a whole file (decompressed if `compressed`) to `out`, as [`open_rotated`] finds
/// it; one that is gone is skipped.
pub(crate) fn read_whole(path: &Path, compressed: bool, out: &mut Vec<u8>) -> io::Result<()> {
    match open_rotated(path, compressed)? {
        Some((f, true)) => GzDecoder::new(f).read_to_end(out)?,
        Some((mut f, false)) => f.read_to_end(out)?,
        None => 0,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn t(ms: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 21)
            .unwrap()
            .and_hms_milli_opt(14, 5, 9, ms)
            .unwrap()
    }

    #[test]
    fn names() {
        assert_eq!(LogKind::Out.active_file_name("web"), "web.out.log");
        assert_eq!(LogKind::Err.active_file_name("web"), "web.err.log");
        assert_eq!(LogKind::Combined.active_file_name("web"), "web.log");
        assert_eq!(LogKind::Supervisor.active_file_name("web"), "web.tend.log");
        assert_eq!(
            rotated_file_name("web", LogKind::Out, &t(123), 0),
            "web.out.2026-11-21T14-05-09.123.log"
        );
        assert_eq!(
            rotated_file_name("web", LogKind::Combined, &t(123), 2),
            "web.2026-11-21T14-05-09.123-2.log"
        );
        assert_eq!(
            rotated_file_name("web", LogKind::Supervisor, &t(1), 0),
            "web.tend.2026-11-21T14-05-09.001.log"
        );
    }

    #[test]
    fn parsing_is_strict_per_family() {
        let p = |f: &str, k: LogKind| parse(f, &k.rotated_prefix("web"));
        assert_eq!(
            p("web.out.2026-11-21T14-05-09.123-12.log.gz", LogKind::Out),
            Some(Parsed::Rotated {
                closed: t(123),
                seq: 12,
                compressed: true
            })
        );
        assert_eq!(
            p("web.out.2026-11-21T14-05-09.123.log.gz.tmp", LogKind::Out),
            Some(Parsed::Temp)
        );
        // A combined-mode scan must not pick up the separate-mode files, nor the active file.
        assert_eq!(
            p("web.out.2026-11-21T14-05-09.123.log", LogKind::Combined),
            None
        );
        assert_eq!(p("web.log", LogKind::Combined), None);
        assert_eq!(p("web.out.log", LogKind::Out), None);
        assert_eq!(
            p("web.out.2026-11-21T14-05-09.123-0.log", LogKind::Out),
            None
        );
        assert_eq!(
            p("web.out.2026-11-21T14-05-09.123-.log", LogKind::Out),
            None
        );
        assert_eq!(p("web.out.2026-11-21T14-05-09.123.txt", LogKind::Out), None);
        assert_eq!(
            p("web.out.2026-11-21T14-05-09.123é.log", LogKind::Out),
            None
        );
    }

    #[test]
    fn order_is_by_time_then_seq() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "web.out.2026-11-21T14-05-09.123-10.log",
            "web.out.2026-11-21T14-05-09.123-2.log.gz",
            "web.out.2026-11-21T14-05-09.123.log",
            "web.out.2026-11-21T14-05-09.122.log",
            "web.out.2026-11-21T14-05-09.122.log.gz",
            "web.err.2026-11-21T14-05-09.100.log",
        ] {
            fs::write(dir.path().join(f), f).unwrap();
        }
        let names: Vec<String> = rotated_files(dir.path(), "web", LogKind::Out)
            .unwrap()
            .iter()
            .map(|f| f.path.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "web.out.2026-11-21T14-05-09.122.log.gz",
                "web.out.2026-11-21T14-05-09.123.log",
                "web.out.2026-11-21T14-05-09.123-2.log.gz",
                "web.out.2026-11-21T14-05-09.123-10.log",
            ]
        );
        assert!(
            rotated_files(&dir.path().join("missing"), "web", LogKind::Out)
                .unwrap()
                .is_empty()
        );
    }
}
