//! The scope of this process, read from its environment: the only place the layout's
//! inputs come from the machine (`$HOME`, `$XDG_*`, the uid; on Windows the shell's known
//! folders). Everything else in this crate takes a [`Scope`] and stays pure.

use std::path::PathBuf;

use crate::{Scope, SystemContext, UserContext};

/// Why this process has no per-user scope.
#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    /// Unix: `$HOME` is unset or relative.
    #[error("--user needs $HOME set to an absolute path: a per-user service's files live under it")]
    NoHome,
    /// Windows: neither the shell nor `%LOCALAPPDATA%` names the folder.
    #[error("cannot find the user's local application data folder (%LOCALAPPDATA%)")]
    NoLocalAppData,
}

impl ScopeError {
    /// The exit code ([`crate::exit`]): a missing `$HOME` is the caller's to fix (invalid
    /// use), a Windows folder the shell cannot name is the OS's failure.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NoHome => crate::exit::INVALID,
            Self::NoLocalAppData => crate::exit::OS,
        }
    }
}

/// The system scope (`user` false) or this user's own, as this process sees them.
///
/// # Errors
///
/// [`ScopeError`] when the user's directories cannot be found.
pub fn scope(user: bool) -> Result<Scope, ScopeError> {
    if user {
        Ok(Scope::User(user_context()?))
    } else {
        Ok(Scope::System(system_context()))
    }
}

#[cfg(unix)]
fn system_context() -> SystemContext {
    SystemContext::default()
}

#[cfg(windows)]
fn system_context() -> SystemContext {
    use windows_sys::Win32::UI::Shell::FOLDERID_ProgramData;
    // Asked of the shell, not read from the environment: a service's environment may
    // differ from the installing Administrator's, and install and service must agree.
    let program_data = known_folder(&FOLDERID_ProgramData)
        .or_else(|| std::env::var_os("ProgramData").map(PathBuf::from))
        .unwrap_or_else(|| SystemContext::default().program_data);
    SystemContext { program_data }
}

#[cfg(unix)]
fn user_context() -> Result<UserContext, ScopeError> {
    let abs = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let home = abs("HOME").ok_or(ScopeError::NoHome)?;
    Ok(UserContext {
        uid: nix::unistd::getuid().as_raw(),
        home,
        xdg_config_home: abs("XDG_CONFIG_HOME"),
        xdg_state_home: abs("XDG_STATE_HOME"),
        local_app_data: None,
    })
}

#[cfg(windows)]
fn user_context() -> Result<UserContext, ScopeError> {
    use windows_sys::Win32::UI::Shell::{FOLDERID_LocalAppData, FOLDERID_Profile};
    let local_app_data = known_folder(&FOLDERID_LocalAppData)
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))
        .ok_or(ScopeError::NoLocalAppData)?;
    let home = known_folder(&FOLDERID_Profile)
        .or_else(|| std::env::var_os("USERPROFILE").map(PathBuf::from))
        .unwrap_or_else(|| local_app_data.clone());
    Ok(UserContext {
        uid: 0,
        home,
        xdg_config_home: None,
        xdg_state_home: None,
        local_app_data: Some(local_app_data),
    })
}

/// A Windows known folder (`FOLDERID_*`), as the shell resolves it for this process.
#[cfg(windows)]
#[must_use]
pub fn known_folder(id: &windows_sys::core::GUID) -> Option<PathBuf> {
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
