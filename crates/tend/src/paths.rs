//! Where tend keeps things on each OS. One place, so install, service and status agree.
//!
//! | what | Windows | Linux / macOS (system) |
//! |---|---|---|
//! | installed config | `%ProgramData%\tend\services\<name>.toml` | `/etc/tend/<name>.toml` |
//! | logs | `%ProgramData%\tend\logs\<name>` | `/var/log/tend/<name>` |
//! | state (status file) | `%ProgramData%\tend\state\<name>` | `/var/lib/tend/<name>` |
//!
//! `tend run` keeps its status file next to its logs (`[logs] dir`).
#![allow(dead_code, reason = "each OS uses its own half")]

use std::path::PathBuf;

/// `%ProgramData%\tend` (Windows).
///
/// Asked of the shell (FOLDERID_ProgramData), not read from the environment: a service's
/// environment may differ from the installing Administrator's (under Wine a LocalSystem
/// service sees `ProgramData=C:\users\Public`), and install and service must agree.
pub(crate) fn program_data() -> PathBuf {
    #[cfg(windows)]
    if let Some(p) = known_folder(&windows_sys::Win32::UI::Shell::FOLDERID_ProgramData) {
        return p.join("tend");
    }
    std::env::var_os("ProgramData")
        .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from)
        .join("tend")
}

/// A Windows known folder (`FOLDERID_*`), as the shell resolves it for this process.
#[cfg(windows)]
pub(crate) fn known_folder(id: &windows_sys::core::GUID) -> Option<PathBuf> {
    use std::os::windows::ffi::OsStringExt as _;
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::SHGetKnownFolderPath;
    let mut p: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: a known-folder query with an out pointer to a local; on success the shell
    // allocates a NUL-terminated string that we read once and free with CoTaskMemFree.
    #[allow(unsafe_code)]
    unsafe {
        let hr = SHGetKnownFolderPath(id, 0, std::ptr::null_mut(), &raw mut p);
        if hr != 0 || p.is_null() {
            CoTaskMemFree(p.cast());
            return None;
        }
        let len = (0..).take_while(|&i| *p.add(i) != 0).count();
        let s = std::ffi::OsString::from_wide(std::slice::from_raw_parts(p, len));
        CoTaskMemFree(p.cast());
        Some(PathBuf::from(s))
    }
}

/// The installed copy of a service's config.
pub(crate) fn installed_config(name: &str) -> PathBuf {
    if cfg!(windows) {
        program_data().join("services").join(format!("{name}.toml"))
    } else {
        PathBuf::from("/etc/tend").join(format!("{name}.toml"))
    }
}

/// The directory under which installed services get `<name>/` for their logs.
pub(crate) fn log_root() -> PathBuf {
    if cfg!(windows) {
        program_data().join("logs")
    } else {
        PathBuf::from("/var/log/tend")
    }
}

/// The default log directory of an installed service.
pub(crate) fn log_dir(name: &str) -> PathBuf {
    log_root().join(name)
}

/// How installed configs are loaded: logs default to the platform log root.
pub(crate) fn installed_load_options() -> tend_config::LoadOptions {
    tend_config::LoadOptions {
        log_dir: tend_config::LogDirDefault::Under(log_root()),
    }
}

/// The state directory of an installed service.
pub(crate) fn state_dir(name: &str) -> PathBuf {
    if cfg!(windows) {
        program_data().join("state").join(name)
    } else {
        PathBuf::from("/var/lib/tend").join(name)
    }
}
