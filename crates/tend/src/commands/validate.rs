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
    let _ = writeln!(
        std::io::stdout(),
        "ok: `{}` is valid (service `{}`{})",
        loaded.spec.config_path.display(),
        loaded.spec.name,
        if loaded.warnings.is_empty() {
            String::new()
        } else {
            format!(", {} warning(s)", loaded.warnings.len())
        }
    );
    Ok(ExitCode::from(code::OK))
}
