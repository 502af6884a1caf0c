//! `tend validate <config>`: print every problem; exit 2 if any is an error.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use tend_config::{LoadOptions, load};

use crate::error::{CliError, code};

pub(crate) fn validate(config: &Path) -> Result<ExitCode, CliError> {
    let loaded = load(config, &LoadOptions::default())?;
    let mut err = std::io::stderr().lock();
    for w in &loaded.warnings {
        let _ = writeln!(err, "{}", w.display_in(&loaded.spec.config_path));
    }
    let account = account_warnings(&loaded.spec);
    for (key, msg) in &account {
        let _ = writeln!(
            err,
            "warning: {}: {key}: {msg}",
            loaded.spec.config_path.display()
        );
    }
    let _ = writeln!(
        std::io::stdout(),
        "ok: `{}` is valid (service `{}`{})",
        loaded.spec.config_path.display(),
        loaded.spec.name,
        if loaded.warnings.len() + account.len() == 0 {
            String::new()
        } else {
            format!(", {} warning(s)", loaded.warnings.len() + account.len())
        }
    );
    Ok(ExitCode::from(code::OK))
}

/// Problems the service's account would have with its files, where tend can tell: on
/// Windows, an `isolated` service whose program or working directory is in a user profile.
pub(crate) fn account_warnings(spec: &tend_core::ServiceSpec) -> Vec<(String, String)> {
    #[cfg(windows)]
    {
        if spec.service.account != tend_core::Account::Isolated {
            return Vec::new();
        }
        let Some(profiles) =
            tend_os::here::known_folder(&windows_sys::Win32::UI::Shell::FOLDERID_UserProfiles)
        else {
            return Vec::new();
        };
        let mut paths = vec![("working_dir", spec.working_dir.as_path())];
        if let tend_core::Program::Path(p) = &spec.command.program {
            paths.insert(0, ("command[0]", p.as_path()));
        }
        tend_os::scm::acl::profile_warnings(&profiles, spec.name.as_str(), &paths)
    }
    #[cfg(not(windows))]
    {
        let _ = spec;
        Vec::new()
    }
}
