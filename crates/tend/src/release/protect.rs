//! Who may touch a system service's release store on Windows.
//!
//! A release decides what runs as the service, so the store must be as protected as the
//! config copy. On Unix `create_private_dir` makes it `0700` and root's. On Windows a new
//! directory under `%ProgramData%\tend\state` would inherit `%ProgramData%`'s ACL, which
//! lets any user create files in it (a `journal.json`, a release of their own that a
//! recovery would put in place): so the store gets a protected DACL of SYSTEM and
//! Administrators only, the one `%ProgramData%\tend\services` has.

use std::io;
use std::path::Path;

/// Gives a system service's store its protected DACL (Windows); nothing elsewhere, and
/// nothing for `--user` stores, which are the user's own under `%LOCALAPPDATA%`.
pub(crate) fn system_store(dir: &Path) -> io::Result<()> {
    #[cfg(windows)]
    {
        use tend_os::scm::Host as _;
        tend_os::scm::RealHost.set_dacl(dir, &tend_os::scm::acl::services_dir())
    }
    #[cfg(not(windows))]
    {
        let _ = dir;
        Ok(())
    }
}
