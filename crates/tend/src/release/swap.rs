//! Replacing a program file that may still be in use (docs/upgrade.md, "A program file in
//! use").
//!
//! On Unix a rename over the program is atomic and always allowed. Windows refuses to
//! overwrite or delete an executable that a process has mapped (a second copy of the
//! program running outside tend, a debugger, a scanner), and a rename over it is a delete.
//! What Windows does allow is renaming the mapped file itself: so when the rename over it is
//! refused, the live file is first moved aside (parked, into the release store when it is on
//! the same volume, else next to the program), and the new file renamed into the free name.
//! A process that opened the file without sharing its deletion blocks even that; then tend
//! retries until a deadline and gives up before anything was changed, naming the file and,
//! where Windows can tell (Restart Manager), the processes that hold it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a file in use is retried: long enough for a scanner to let go, short enough that
/// an operator is not left waiting on a process that never will.
pub(crate) const IN_USE_WAIT: Duration = Duration::from_secs(5);

/// Where parked files go inside the release store.
const PARKED: &str = ".parked";

/// Renames `new` over `target`. When `target` is in use (Windows), parks it first: into
/// `store`'s `.parked` (or next to `target`, `.<file>.tend-old.<pid>`, across volumes), then
/// renames `new` into its name. Retries a file in use until `wait` has gone by; on failure
/// `target` is untouched.
pub(crate) fn replace(new: &Path, target: &Path, store: &Path, wait: Duration) -> io::Result<()> {
    sweep(store, target);
    let deadline = Instant::now() + wait;
    loop {
        let err = match std::fs::rename(new, target) {
            Ok(()) => return Ok(()),
            Err(e) if in_use(&e) => e,
            Err(e) => return Err(e),
        };
        match park(target, store) {
            Ok(parked) => {
                if let Err(e) = std::fs::rename(new, target) {
                    // Put the live file back: the target must not be left missing.
                    let _ = std::fs::rename(&parked, target);
                    return Err(e);
                }
                // Succeeds once nothing maps it any more; else a later upgrade sweeps it.
                let _ = std::fs::remove_file(&parked);
                return Ok(());
            }
            Err(e) if in_use(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) if in_use(&e) => return Err(held(target, err)),
            Err(e) => return Err(e),
        }
    }
}

/// Renames a directory (the application directory form's swap). Windows refuses to rename
/// a directory while a file in it is open (another copy of the program, a shell, a
/// scanner), and a directory cannot be moved aside file by file as a program can: so the
/// rename is retried while it is refused as in use until `wait` has gone by, then fails
/// saying so; the caller's undo puts the old release back. Unix never refuses.
pub(crate) fn rename_dir(from: &Path, to: &Path, wait: Duration) -> io::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        match std::fs::rename(from, to) {
            Ok(()) => return Ok(()),
            Err(e) if in_use(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) if in_use(&e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot rename the directory `{}`: a file in it is in use (waited {}s; a \
                         directory is swapped by renames, which Windows refuses while a file in \
                         it is open: end what holds it, e.g. a copy of the program running \
                         outside tend, or upgrade the program file alone): {e}",
                        from.display(),
                        wait.as_secs()
                    ),
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether `target` could be moved aside now, retried for `wait` while it is in use: the
/// check `tend upgrade` makes before it stops the service, so that a file nobody may rename
/// is refused with nothing changed. Always `Ok` on Unix.
pub(crate) fn check_movable(target: &Path, wait: Duration) -> io::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        match open_for_rename(target) {
            Ok(()) => return Ok(()),
            Err(e) if in_use(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) if in_use(&e) => return Err(held(target, e)),
            // Missing, unreadable: the checks that follow say so better.
            Err(_) => return Ok(()),
        }
    }
}

/// The error of a file that stayed in use: which file, who holds it (when Windows says),
/// and the OS error.
fn held(target: &Path, e: io::Error) -> io::Error {
    let who = holders(target);
    let who = if who.is_empty() {
        String::new()
    } else {
        format!(" by {}", who.join(", "))
    };
    io::Error::new(
        e.kind(),
        format!(
            "`{}` is held open{who} without sharing its deletion, so it cannot be renamed or \
             replaced (waited {}s; end that process or let it close the file): {e}",
            target.display(),
            IN_USE_WAIT.as_secs()
        ),
    )
}

/// Moves `target` aside: into the store when it is on the same volume, else next to it.
fn park(target: &Path, store: &Path) -> io::Result<PathBuf> {
    let file = target
        .file_name()
        .map_or_else(|| "program".into(), |f| f.to_string_lossy().into_owned());
    let unique = format!(
        "{}.{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let dir = store.join(PARKED);
    if std::fs::create_dir_all(&dir).is_ok() {
        let to = dir.join(format!("{file}.{unique}"));
        match std::fs::rename(target, &to) {
            Ok(()) => return Ok(to),
            Err(e) if in_use(&e) => return Err(e),
            // Another volume (ERROR_NOT_SAME_DEVICE): next to the program instead.
            Err(_) => {}
        }
    }
    let to = target
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!(".{file}.tend-old.{unique}"));
    std::fs::rename(target, &to)?;
    Ok(to)
}

/// Removes the files earlier swaps parked, those nothing maps any more.
fn sweep(store: &Path, target: &Path) {
    if let Ok(entries) = std::fs::read_dir(store.join(PARKED)) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let (Some(dir), Some(file)) = (target.parent(), target.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tend-old.", file.to_string_lossy());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Whether an OS error means "another process has the file": Windows' access denied (a
/// mapped image cannot be deleted or overwritten), sharing and lock violations.
fn in_use(e: &io::Error) -> bool {
    cfg!(windows) && matches!(e.raw_os_error(), Some(5 | 32 | 33))
}

/// Opens `target` for what a rename needs (DELETE access), sharing everything: fails with
/// a sharing violation when a process holds it without sharing its deletion.
#[cfg(windows)]
fn open_for_rename(target: &Path) -> io::Result<()> {
    use std::os::windows::fs::OpenOptionsExt as _;
    use windows_sys::Win32::Storage::FileSystem::{
        DELETE, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE,
    };
    std::fs::OpenOptions::new()
        .access_mode(DELETE)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
        .open(target)
        .map(drop)
}

#[cfg(not(windows))]
fn open_for_rename(_target: &Path) -> io::Result<()> {
    Ok(())
}

/// The processes that have `target` open, as "name (pid N)", from the Restart Manager;
/// empty where it cannot tell (Wine, no rights).
#[cfg(windows)]
#[allow(unsafe_code)]
fn holders(target: &Path) -> Vec<String> {
    use std::os::windows::ffi::OsStrExt as _;
    use windows_sys::Win32::System::RestartManager::{
        CCH_RM_SESSION_KEY, RM_PROCESS_INFO, RmEndSession, RmGetList, RmRegisterResources,
        RmStartSession,
    };
    let path: Vec<u16> = target
        .as_os_str()
        .encode_wide()
        .chain(std::iter::once(0))
        .collect();
    let mut session = 0u32;
    let mut key = [0u16; CCH_RM_SESSION_KEY as usize + 1];
    // SAFETY: `session` and `key` are valid for writes; `key` has room for
    // CCH_RM_SESSION_KEY characters and the terminating zero, as the API requires.
    if unsafe { RmStartSession(&mut session, 0, key.as_mut_ptr()) } != 0 {
        return Vec::new();
    }
    let files = [path.as_ptr()];
    let mut out = Vec::new();
    // SAFETY: one NUL-terminated path that outlives the call; no applications or services.
    let registered = unsafe {
        RmRegisterResources(
            session,
            1,
            files.as_ptr(),
            0,
            std::ptr::null(),
            0,
            std::ptr::null(),
        )
    } == 0;
    if registered {
        // SAFETY: RM_PROCESS_INFO is plain data (integers and arrays): all zeros is valid.
        let mut infos: [RM_PROCESS_INFO; 8] = unsafe { std::mem::zeroed() };
        let mut needed = 0u32;
        let mut count = infos.len() as u32;
        let mut reasons = 0u32;
        // SAFETY: `infos` has room for `count` entries; the counters are valid for writes.
        let rc = unsafe {
            RmGetList(
                session,
                &mut needed,
                &mut count,
                infos.as_mut_ptr(),
                &mut reasons,
            )
        };
        // ERROR_MORE_DATA (234): the first eight are named, which is enough to act on.
        if rc == 0 || rc == 234 {
            for i in infos.iter().take(count as usize) {
                let len = i.strAppName.iter().position(|&c| c == 0).unwrap_or(0);
                let name = String::from_utf16_lossy(&i.strAppName[..len]);
                out.push(format!("{name} (pid {})", i.Process.dwProcessId));
            }
        }
    }
    // SAFETY: the session was started above and is ended once.
    unsafe { RmEndSession(session) };
    out
}

#[cfg(not(windows))]
fn holders(_target: &Path) -> Vec<String> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_nothing_parked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("app.exe");
        let new = dir.path().join(".app.exe.tend-new.1");
        std::fs::write(&target, b"old").unwrap();
        std::fs::write(&new, b"new").unwrap();
        let store = dir.path().join("store");
        replace(&new, &target, &store, Duration::ZERO).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert!(!new.exists());
        check_movable(&target, Duration::ZERO).unwrap();
    }

    #[test]
    fn a_parked_file_is_swept_and_park_falls_back_next_to_the_program() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("app.exe");
        std::fs::write(&target, b"live").unwrap();
        // A store that cannot be created (a file in its way): parked next to the program.
        let store = dir.path().join("store");
        std::fs::write(&store, b"").unwrap();
        let parked = park(&target, &store).unwrap();
        assert!(!target.exists());
        assert_eq!(parked.parent(), Some(dir.path()));
        assert!(
            parked
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".app.exe.tend-old.")
        );
        std::fs::write(&target, b"new").unwrap();
        sweep(&store, &target);
        assert!(!parked.exists(), "swept");
        assert!(target.exists(), "the program itself is never swept");

        let store = dir.path().join("store2");
        let parked = park(&target, &store).unwrap();
        assert_eq!(parked.parent(), Some(store.join(PARKED).as_path()));
        sweep(&store, &target);
        assert!(!parked.exists());
    }
}
