//! `tend import`: the configuration of a program under another service wrapper in, tend
//! configs out.
//!
//! Pure: every converter takes text (or, for NSSM on Windows, the values of a registry key
//! read by the caller) and returns one rendered tend config per program. Nothing here
//! touches the file system, the registry or the environment, so every mapping is tested on
//! any OS. Each source has its own module; they all fill one [`draft::Draft`] and share its
//! renderer. docs/import.md has the mapping tables.

mod args;
mod draft;
mod error;
mod literal;
mod nssm;
mod pm2;
mod servy;
mod shawl;
mod supervisord;
mod systemd;
mod tree;
mod winsw;

use std::path::{Path, PathBuf};

pub use error::ImportError;
pub use nssm::{RegValue, RegistryValues};

/// The tools tend imports from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `nssm dump <service>` output, or a service's registry values.
    Nssm,
    /// WinSW's XML (v2) or YAML (v3) file.
    Winsw,
    /// A shawl command line (`shawl run ... -- program args`), or a service's ImagePath.
    Shawl,
    /// A Servy export (JSON or XML).
    Servy,
    /// A systemd `.service` unit.
    Systemd,
    /// A pm2 ecosystem file (JSON, or `module.exports = {...}`).
    Pm2,
    /// A supervisord config with `[program:x]` sections.
    Supervisord,
}

impl Format {
    /// Every format with its `--from` name.
    pub const ALL: [(Format, &'static str); 7] = [
        (Format::Nssm, "nssm"),
        (Format::Winsw, "winsw"),
        (Format::Shawl, "shawl"),
        (Format::Servy, "servy"),
        (Format::Systemd, "systemd"),
        (Format::Pm2, "pm2"),
        (Format::Supervisord, "supervisord"),
    ];

    /// The `--from` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("?", |(_, n)| n)
    }

    /// Whether one source of this format can hold several programs (then `tend import` writes
    /// one file per program).
    #[must_use]
    pub fn holds_several(self) -> bool {
        matches!(self, Format::Pm2 | Format::Supervisord)
    }
}

/// A source file to convert.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// The file as the user named it (for messages and the header comment).
    pub path: &'a Path,
    /// Its directory, absolute: what relative paths in it mean (pm2's `cwd`, supervisord's
    /// `%(here)s`, WinSW's `%BASE%`), and, for systemd, its file name is the unit's name.
    pub dir: Option<PathBuf>,
    /// The contents.
    pub text: &'a str,
    /// Drop-in files that amend it (systemd's `<unit>.d/*.conf`), in the order to apply.
    pub dropins: Vec<(PathBuf, String)>,
    /// The environment supervisord's `%(ENV_X)s` expands from (the importing user's).
    pub env: Vec<(String, String)>,
}

impl<'a> Source<'a> {
    /// A source with no directory, drop-ins or environment.
    #[must_use]
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        Self {
            path,
            dir: None,
            text,
            dropins: Vec::new(),
            env: Vec::new(),
        }
    }

    fn display(&self) -> String {
        self.path.display().to_string()
    }
}

/// One program's tend config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The service name (the file to write is `<name>.toml`).
    pub name: String,
    /// The config, ready to write.
    pub toml: String,
}

/// What a conversion produced.
#[derive(Debug, Clone, Default)]
pub struct Import {
    /// One config per program, in source order.
    pub programs: Vec<Imported>,
    /// Things about the source as a whole the user should know (an `[include]` not followed,
    /// an event listener not imported).
    pub warnings: Vec<String>,
}

/// Converts a source file of `format`.
///
/// # Errors
///
/// The source cannot be read as that format, or a setting in it has a value its own tool
/// would refuse; the error names the file, line and setting.
pub fn import(format: Format, source: &Source<'_>) -> Result<Import, ImportError> {
    let mut warnings = Vec::new();
    let drafts = match format {
        Format::Nssm => nssm::from_dump(source)?,
        Format::Winsw => vec![winsw::convert(source)?],
        Format::Shawl => vec![shawl::from_command_line(
            source.text,
            &source.display(),
            &format!("shawl command line {}", source.display()),
        )?],
        Format::Servy => vec![servy::convert(source)?],
        Format::Systemd => vec![systemd::convert(source)?],
        Format::Pm2 => pm2::convert(source)?,
        Format::Supervisord => supervisord::convert(source, &mut warnings)?,
    };
    Ok(finish(drafts, warnings))
}

/// Converts an NSSM service from its registry values (read on Windows by the caller).
///
/// # Errors
///
/// The values are not those of an NSSM service (no `Parameters\Application`).
pub fn import_nssm_registry(service: &str, values: &RegistryValues) -> Result<Import, ImportError> {
    Ok(finish(
        vec![nssm::from_registry(service, values)?],
        Vec::new(),
    ))
}

/// Converts a shawl service from its `ImagePath` (read on Windows by the caller).
///
/// # Errors
///
/// The command line is not a `shawl run ... -- program` line.
pub fn import_shawl_image_path(service: &str, image_path: &str) -> Result<Import, ImportError> {
    let mut d = shawl::from_command_line(
        image_path,
        &format!("registry {service} ImagePath"),
        &format!("the ImagePath of service {service}"),
    )?;
    // The SCM's name is the service's name; shawl's --name only labels its log.
    draft::set_name(&mut d, service, "service name");
    Ok(finish(vec![d], Vec::new()))
}

fn finish(drafts: Vec<draft::Draft>, warnings: Vec<String>) -> Import {
    Import {
        programs: drafts
            .into_iter()
            .map(|d| Imported {
                name: d.name(),
                toml: d.render(),
            })
            .collect(),
        warnings,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Checks every converter's output the way `tend validate` does.

    /// Parses `toml` as tend does; panics on any error other than an `env_file` that does
    /// not exist on this machine (a machine problem, like a missing program).
    pub(crate) fn assert_valid(toml: &str) {
        let path = std::env::temp_dir().join("tend-import-test").join("x.toml");
        if let Err(tend_config::ConfigError::Invalid { problems, .. }) =
            tend_config::parse(toml, &path, &tend_config::LoadOptions::default())
        {
            let errors: Vec<_> = problems
                .iter()
                .filter(|p| p.severity == tend_config::Severity::Error)
                .filter(|p| !(p.key == "env_file" && p.message.contains("cannot read")))
                .collect();
            assert!(errors.is_empty(), "{errors:#?}\n{toml}");
        }
    }

    /// The one program's parsed config.
    pub(crate) fn table(toml: &str) -> toml::Table {
        assert_valid(toml);
        toml::from_str(toml).unwrap_or_else(|e| panic!("{e}\n{toml}"))
    }

    /// Its `command`, word by word.
    pub(crate) fn command(t: &toml::Table) -> Vec<&str> {
        t["command"]
            .as_array()
            .unwrap_or_else(|| panic!("command is not a list: {t}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
            .collect()
    }
}
