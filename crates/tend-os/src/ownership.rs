//! The guard that keeps `tend install`/`uninstall` away from services tend did not write.

use std::path::PathBuf;

use crate::{Backend, Layout, OsStatus, launchd, systemd};

/// Why tend must not write or remove a service definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipError {
    /// The OS already loads a service of that name from another file, e.g. a distribution's
    /// `/lib/systemd/system/ssh.service`: tend's unit in `/etc/systemd/system` would
    /// silently replace it.
    #[error(
        "a service with this name already exists and was not installed by tend ({}); choose another name",
        path.display()
    )]
    Foreign {
        /// Where the OS loads it from.
        path: PathBuf,
    },
    /// A file is where tend would write, but tend did not write it.
    #[error(
        "{} exists and was not written by tend; move it away or choose another name",
        path.display()
    )]
    NotGenerated {
        /// The file.
        path: PathBuf,
    },
}

/// Checks, before `install` (and `uninstall`), that the service is either unknown to the
/// OS or tend's own: `status` from the backend's `status`, `existing_text` the current
/// contents of [`Layout::definition`] if it exists.
///
/// # Errors
///
/// [`OwnershipError`] when the name belongs to someone else.
pub fn check_ownership(
    backend: Backend,
    layout: &Layout,
    status: &OsStatus,
    existing_text: Option<&str>,
) -> Result<(), OwnershipError> {
    if let Some(def) = &status.definition
        && *def != layout.definition
    {
        return Err(OwnershipError::Foreign { path: def.clone() });
    }
    if let Some(text) = existing_text {
        let ours = match backend {
            Backend::Systemd => systemd::is_generated_by_tend(text),
            Backend::Launchd => launchd::is_generated_by_tend(text),
            // Their definitions are not files: the SCM backend checks the command line the
            // service runs instead, and a Run value is tend's by its name.
            Backend::Scm | Backend::RunKey => true,
        };
        if !ours {
            return Err(OwnershipError::NotGenerated {
                path: layout.definition.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scope;
    use tend_core::ServiceName;

    #[test]
    fn only_unknown_or_own_services_pass() {
        let name = ServiceName::new("ssh").unwrap();
        let layout = Layout::new(Backend::Systemd, &Scope::system(), &name);
        let unknown = OsStatus::not_installed();
        check_ownership(Backend::Systemd, &layout, &unknown, None).unwrap();

        let distro = OsStatus {
            installed: true,
            definition: Some("/lib/systemd/system/ssh.service".into()),
            ..OsStatus::not_installed()
        };
        assert_eq!(
            check_ownership(Backend::Systemd, &layout, &distro, None),
            Err(OwnershipError::Foreign {
                path: "/lib/systemd/system/ssh.service".into()
            })
        );

        let ours = OsStatus {
            installed: true,
            definition: Some(layout.definition.clone()),
            ..OsStatus::not_installed()
        };
        let text = format!("{}\n[Unit]\n", systemd::GENERATED_MARKER);
        check_ownership(Backend::Systemd, &layout, &ours, Some(&text)).unwrap();
        assert_eq!(
            check_ownership(Backend::Systemd, &layout, &ours, Some("[Unit]\n")),
            Err(OwnershipError::NotGenerated {
                path: layout.definition.clone()
            })
        );

        let layout = Layout::new(Backend::Launchd, &Scope::system(), &name);
        let plist = format!("<?xml?>\n{} -->\n", launchd::GENERATED_MARKER);
        check_ownership(Backend::Launchd, &layout, &unknown, Some(&plist)).unwrap();
        assert!(check_ownership(Backend::Launchd, &layout, &unknown, Some("<plist/>")).is_err());
    }
}
