//! Following a log family across rotations (`tend logs -f`): every line once, in order,
//! however fast the files rotate and whether or not they are compressed meanwhile.
//!
//! # Why it is built this way
//!
//! `tail -F` reopens the path when the file there changes, and so skips every file that was
//! rotated in and out between two polls; a service rotating a few times a second makes it
//! skip lines. A follower of a tend family also reads the rotated files, in name order
//! (which is rotation order, see `naming`). Two things make that exact:
//!
//! - **A complete listing.** A directory read misses an entry that is renamed while the
//!   read runs (compression turns `X.log` into `X.log.gz`). But a file that existed when
//!   a read began and is renamed during it is seen by the next read, whole, under its new
//!   name: so two reads, merged, list every file that existed before the first began
//!   (retention's deletions aside, which lose nothing a follower could have kept).
//! - **Only the file it reads can be rotated after it opened it.** When the follower opens
//!   the active file and then lists (twice), every file rotated before that one is in the
//!   listing, and if the opened file is still the one at the path, nothing else was rotated
//!   since. So the files to read before it are exactly those listed after the last one read.
//!   When it is later rotated, it is the oldest listed file after the last one read (or it
//!   was already deleted by retention, which its identity or first bytes tell).
//!
//! File identity is the inode on Unix and the volume serial plus file index on Windows:
//! a rename keeps it, compression (a new file) does not, so a compressed file is recognised
//! by its first bytes instead.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::naming::{
    LogKind, RotatedFile, dedup, open_if_there, read_whole, rotated_names, with_suffix,
};

/// A rotated file's place in its family's order: closed time, then tie-breaker.
type Key = (chrono::NaiveDateTime, u32);

fn key(f: &RotatedFile) -> Key {
    (f.closed, f.seq)
}

/// How many first bytes are compared to recognise a file once compressed.
const HEAD: u64 = 4096;

/// How much one poll reads at most before it returns, so a follower catching up on many
/// rotated files hands them to its caller a few at a time.
const POLL_BUDGET: usize = 8 << 20;

/// A file's identity: it survives a rename, and no two files on a machine share it.
#[cfg(unix)]
fn identity(f: &File) -> io::Result<Option<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    let m = f.metadata()?;
    Ok(Some((m.dev(), m.ino())))
}

/// A file's identity: it survives a rename, and no two files on a volume share it. std has
/// no stable way to read it on Windows (`MetadataExt::file_index` is unstable).
#[cfg(windows)]
#[allow(unsafe_code)]
fn identity(f: &File) -> io::Result<Option<(u64, u64)>> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{
        BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle,
    };
    // SAFETY: a plain C struct of integers and FILETIMEs, for which all zeroes is valid.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is a valid open file for the call's duration (borrowed from `f`)
    // and `info` is a properly sized, writable struct.
    let ok = unsafe { GetFileInformationByHandle(f.as_raw_handle(), &raw mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // The file index alone: every file compared is in one directory, so on one volume, and
    // Wine reports the volume serial as 0 for some handles and not for others.
    Ok(Some((
        0,
        (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
    )))
}

#[cfg(not(any(unix, windows)))]
fn identity(_: &File) -> io::Result<Option<(u64, u64)>> {
    Ok(None)
}

/// The identity of the file at `path`; `None` if there is none.
fn identity_at(path: &Path) -> io::Result<Option<(u64, u64)>> {
    match open_if_there(path)? {
        Some(f) => identity(&f),
        None => Ok(None),
    }
}

/// Up to `HEAD` first bytes of a reader.
fn head(r: impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    r.take(HEAD).read_to_end(&mut head)?;
    Ok(head)
}

/// The family a follower reads: the active file and the files rotated from it.
#[derive(Debug, Clone)]
struct Family {
    dir: PathBuf,
    name: String,
    kind: LogKind,
}

impl Family {
    /// Every rotated file after `after`, oldest first: complete for every file that existed
    /// before this call began (see the module docs).
    fn listed_after(&self, after: Option<Key>) -> io::Result<VecDeque<RotatedFile>> {
        let mut files = rotated_names(&self.dir, &self.name, self.kind)?;
        files.extend(rotated_names(&self.dir, &self.name, self.kind)?);
        files.retain(|f| after.is_none_or(|k| key(f) > k));
        files.sort_by_key(|f| (f.closed, f.seq, f.compressed));
        Ok(dedup(files).into())
    }
}

/// The file being read live: the active file when it was opened.
#[derive(Debug)]
struct Live {
    file: File,
    pos: u64,
}

impl Live {
    fn drain(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        self.file.seek(SeekFrom::Start(self.pos))?;
        let n = (&mut self.file).take(POLL_BUDGET as u64).read_to_end(out)?;
        self.pos += n as u64;
        Ok(n)
    }

    /// Whether `rf` is this file, renamed (same identity) or compressed (same first bytes).
    fn is(&mut self, rf: &RotatedFile) -> io::Result<bool> {
        let plain = if rf.compressed {
            None
        } else {
            identity_at(&rf.path)?
        };
        if let Some(id) = plain {
            return Ok(identity(&self.file)? == Some(id));
        }
        // Compressed (now or since the listing): by its first bytes.
        let gz = if rf.compressed {
            rf.path.clone()
        } else {
            with_suffix(&rf.path, ".gz")
        };
        let Some(f) = open_if_there(&gz)? else {
            return Ok(false);
        };
        let theirs = head(GzDecoder::new(f))?;
        self.file.seek(SeekFrom::Start(0))?;
        let mine = head(&mut self.file)?;
        Ok(!mine.is_empty() && theirs == mine)
    }
}

/// What became of the live file.
enum LiveState {
    /// Still the file at the path.
    Same,
    /// Still the file at the path, but shorter than what was read.
    Truncated,
    /// Another file is at the path, or none.
    Replaced,
}

/// Where the file a follower opened at the active path is, after a listing.
enum Found {
    /// Still the active file.
    Active,
    /// Rotated meanwhile: the listing's file at this index.
    Rotated(usize),
    /// Neither, for now (rotated after the listing, or being renamed).
    Unknown,
}

/// Follows one log file across rotations, like `tail -F`; made with [`Follower::family`],
/// it also reads every file rotated since, so no line is skipped or repeated however fast
/// the files rotate (see the module docs). Poll it every few hundred milliseconds.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    family: Option<Family>,
    live: Option<Live>,
    /// Every rotated file up to this key has been read, or was there before the follow.
    done: Option<Key>,
    /// Rotated files to read before `live`, oldest first.
    queue: VecDeque<RotatedFile>,
    /// Output gathered at the start (the last lines), handed out by the first poll.
    pending: Vec<u8>,
    /// While there is no active file: the newest rotated file the previous listing saw
    /// (see [`Follower::enter`]).
    bound: Option<Option<Key>>,
}

impl Follower {
    /// Follows `path` from its beginning, reopening it when it is replaced (`tail -F`).
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            family: None,
            live: None,
            done: None,
            queue: VecDeque::new(),
            pending: Vec::new(),
            bound: None,
        }
    }

    /// Follows `path` from its current end: only output written from now on.
    #[must_use]
    pub fn from_end(path: impl Into<PathBuf>) -> Self {
        let mut f = Self::new(path);
        // Open now so "the end" means now, not the first poll.
        if let Ok(file) = File::open(&f.path) {
            let pos = file.metadata().map_or(0, |m| m.len());
            f.live = Some(Live { file, pos });
        }
        f
    }

    /// Follows the family `kind` of service `name` in `dir`: the first poll returns the last
    /// `last` lines (from the rotated files too when the active one has fewer), and every
    /// poll after it what was written since, each line once and in order, across every
    /// rotation. A family with no files yet is followed from its first file.
    #[must_use]
    pub fn family(dir: &Path, name: &str, kind: LogKind, last: usize) -> Self {
        let mut f = Self::new(kind.active_path(dir, name));
        let family = Family {
            dir: dir.to_path_buf(),
            name: name.to_owned(),
            kind,
        };
        // The active file and what was rotated before it. A few tries: one fails only if
        // the active file is rotated during the listing.
        let mut start = None;
        for _ in 0..5 {
            let Ok(file) = File::open(&f.path) else { break };
            let Ok(mut listed) = family.listed_after(None) else {
                break;
            };
            match f.locate_in(&file, &listed) {
                Ok(Found::Active) => {}
                Ok(Found::Rotated(i)) => listed.truncate(i),
                Ok(Found::Unknown) | Err(_) => continue,
            }
            start = Some((Some(file), listed));
            break;
        }
        // No active file (yet), or it kept rotating: from the first file after those
        // rotated now. Two listings: the second is complete for every file the first saw.
        let (file, mut older) = start.unwrap_or_else(|| {
            let first = family.listed_after(None).unwrap_or_default();
            let bound = first.back().map(key);
            let second = family.listed_after(None).unwrap_or_default();
            (
                None,
                second
                    .into_iter()
                    .filter(|f| Some(key(f)) <= bound)
                    .collect(),
            )
        });
        f.done = older.back().map(key);
        let end = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        f.pending = crate::tail::last_lines_of(file.as_ref(), end, older.make_contiguous(), last)
            .unwrap_or_default();
        f.live = file.map(|file| Live { file, pos: end });
        f.family = Some(family);
        f
    }

    /// The path of the active file being followed.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where `file`, opened at the active path, is now.
    fn locate_in(&self, file: &File, listed: &VecDeque<RotatedFile>) -> io::Result<Found> {
        let id = identity(file)?;
        let at_path = identity_at(&self.path)?;
        if id.is_some() && at_path == id {
            return Ok(Found::Active);
        }
        let mut probe = Live {
            file: file.try_clone()?,
            pos: 0,
        };
        // Newest first: a file rotated during the listing is among the last.
        for (i, rf) in listed.iter().enumerate().rev() {
            if probe.is(rf)? {
                return Ok(Found::Rotated(i));
            }
        }
        Ok(Found::Unknown)
    }

    /// Appends whatever was written since the last poll to `out`; returns how many bytes.
    pub fn poll(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let start = out.len();
        out.append(&mut self.pending);
        loop {
            if out.len() - start >= POLL_BUDGET {
                break;
            }
            // 1. Files rotated before the live one, in order.
            if let Some(rf) = self.queue.pop_front() {
                read_whole(&rf.path, rf.compressed, out)?;
                self.done = Some(key(&rf));
                continue;
            }
            // 2. The live file, until it is rotated away.
            if let Some(live) = self.live.as_mut() {
                live.drain(out)?;
                if out.len() - start >= POLL_BUDGET {
                    break;
                }
                match self.check_live()? {
                    LiveState::Same => break,
                    // Emptied in place (copy-truncate by another tool): from its start.
                    LiveState::Truncated => {
                        if let Some(live) = self.live.as_mut() {
                            live.pos = 0;
                        }
                    }
                    LiveState::Replaced => {
                        let mut live = self.live.take().expect("checked above");
                        // What was written before the rotation.
                        while live.drain(out)? > 0 {}
                        if let Some(family) = &self.family {
                            // Every file rotated before it has been read, so its rotated
                            // self is the oldest one listed, unless retention has deleted
                            // it already.
                            let listed = family.listed_after(self.done)?;
                            if let Some(first) = listed.front()
                                && live.is(first)?
                            {
                                self.done = Some(key(first));
                            }
                        }
                    }
                }
                continue;
            }
            // 3. Open the active file, reading first what was rotated before it.
            if !self.enter()? {
                break;
            }
        }
        Ok(out.len() - start)
    }

    /// Whether the live file is still the one at the path.
    fn check_live(&mut self) -> io::Result<LiveState> {
        let Some(live) = self.live.as_mut() else {
            return Ok(LiveState::Replaced);
        };
        let id = identity(&live.file)?;
        let Some(at_path) = open_if_there(&self.path)? else {
            return Ok(LiveState::Replaced);
        };
        let len = at_path.metadata()?.len();
        if id.is_none() {
            // No identity on this OS: a shorter file at the path is taken for a new one.
            return Ok(if len < live.pos {
                LiveState::Replaced
            } else {
                LiveState::Same
            });
        }
        if identity(&at_path)? != id {
            return Ok(LiveState::Replaced);
        }
        Ok(if len < live.pos {
            LiveState::Truncated
        } else {
            LiveState::Same
        })
    }

    /// Opens the active file and queues what was rotated before it; false if there is
    /// nothing to read now.
    fn enter(&mut self) -> io::Result<bool> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Between a rotation's rename and the new file, or not created yet. With
                // no open file to anchor it, a listing is complete only for the files that
                // existed before it began: those up to the newest name an earlier listing
                // saw. The rest waits for the next poll (or for the active file).
                let Some(family) = &self.family else {
                    return Ok(false);
                };
                let listed = family.listed_after(self.done)?;
                let newest = listed.back().map(key);
                if let Some(bound) = self.bound.replace(newest).flatten() {
                    self.queue = listed.into_iter().filter(|f| key(f) <= bound).collect();
                }
                return Ok(!self.queue.is_empty());
            }
            Err(e) => return Err(e),
        };
        let Some(family) = self.family.clone() else {
            self.live = Some(Live { file, pos: 0 });
            return Ok(true);
        };
        self.bound = None;
        let listed = family.listed_after(self.done)?;
        match self.locate_in(&file, &listed)? {
            Found::Active => {
                self.queue = listed;
                self.live = Some(Live { file, pos: 0 });
                Ok(true)
            }
            Found::Rotated(i) => {
                // Rotated during the listing: read it from its rotated name, in its place.
                self.queue = listed;
                self.queue.truncate(i + 1);
                Ok(true)
            }
            // Being renamed right now: next poll.
            Found::Unknown => Ok(false),
        }
    }
}
