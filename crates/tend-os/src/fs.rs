//! The one atomic file write: every file tend replaces while something may read it (a
//! config copy, a unit file or plist, the metrics text file, crash records; the status file
//! without the flushes).

use std::io::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes` so that a reader sees the old file or the new one, never
/// half of one, and a crash right after leaves the new one on disk:
///
/// 1. a temporary file in the same directory (the rename must not cross file systems),
///    named `.<file>.<pid>.<n>.tmp`, so it never looks like the file it replaces (a
///    collector reading `*.prom`, a lister of `*.toml` skip it) and two writers never
///    share one; on Unix it is created with `mode` (never readable by others, not even
///    before the rename) and the mode is set again past the umask;
/// 2. written and flushed to disk (`fsync`, `FlushFileBuffers` on Windows);
/// 3. renamed over `path`;
/// 4. on Unix, the directory is flushed too, so the rename itself survives a crash (Windows
///    has no way to flush a directory; NTFS journals the rename).
///
/// The parent directory must exist: creating it is the caller's decision (with which mode,
/// which owner). On failure the temporary file is removed; `path` is unchanged.
///
/// # Errors
///
/// Any I/O error, as the OS gave it: the caller says which file it was writing.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    replace(path, bytes, mode, true)
}

/// [`write_atomic`] without its flushes: a reader still sees the old file or the new one,
/// but a power loss right after may leave the old one, or (on a file system that does not
/// order the data before the rename) an empty one. For a file that is rewritten at every
/// event and whose loss costs nothing (the status file: the next start writes it again),
/// where two `fsync`s per write would be most of the cost.
///
/// # Errors
///
/// Any I/O error, as the OS gave it: the caller says which file it was writing.
pub fn replace_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, None, false)
}

fn replace(path: &Path, bytes: &[u8], mode: Option<u32>, durable: bool) -> io::Result<()> {
    let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` is not a file path", path.display()),
        ));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        file.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_then_rename(&tmp, path, bytes, mode, durable);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    if durable { sync_dir(dir) } else { Ok(()) }
}

/// The file's text; `None` when it does not exist (the backends' "is it installed" read).
///
/// # Errors
///
/// Any other I/O error, as the OS gave it.
pub(crate) fn read_text(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Numbers the temporary files of one process.
static NEXT: AtomicU64 = AtomicU64::new(0);

fn write_then_rename(
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
    mode: Option<u32>,
    durable: bool,
) -> io::Result<()> {
    let mut f = create_new(tmp, mode)?;
    f.write_all(bytes)?;
    set_mode(&f, mode)?;
    if durable {
        f.sync_all()?;
    }
    drop(f);
    std::fs::rename(tmp, path)
}

#[cfg(unix)]
fn create_new(tmp: &Path, mode: Option<u32>) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    if let Some(m) = mode {
        o.mode(m);
    }
    o.open(tmp)
}

#[cfg(not(unix))]
fn create_new(tmp: &Path, _mode: Option<u32>) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
}

/// The mode past the umask, which `open` applied.
#[cfg(unix)]
fn set_mode(f: &std::fs::File, mode: Option<u32>) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    match mode {
        Some(m) => f.set_permissions(std::fs::Permissions::from_mode(m)),
        None => Ok(()),
    }
}

#[cfg(not(unix))]
fn set_mode(_f: &std::fs::File, _mode: Option<u32>) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("web.toml");
        write_atomic(&f, b"one\n", Some(0o600)).unwrap();
        write_atomic(&f, b"two\n", Some(0o644)).unwrap();
        assert_eq!(read_text(&f).unwrap().as_deref(), Some("two\n"));
        replace_atomic(&dir.path().join("web.status.json"), b"{}").unwrap();
        replace_atomic(&dir.path().join("web.status.json"), b"{}\n").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("web.status.json")).unwrap(),
            b"{}\n"
        );
        std::fs::remove_file(dir.path().join("web.status.json")).unwrap();
        assert_eq!(read_text(&dir.path().join("gone.toml")).unwrap(), None);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("missing").join("x.status.json");
        let e = write_atomic(&f, b"{}", None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(write_atomic(Path::new("/"), b"", None).is_err());
    }
}
