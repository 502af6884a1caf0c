//! `tend import --from <tool> <source> [--out DIR] [--force]`: another service wrapper's
//! configuration in, tend configs out (the conversion itself is crates/tend-import; this
//! reads the source, and on Windows a service's registry values, and writes the result).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tend_import::{Format, Import, Source};

use crate::error::{CliError, code};

pub(crate) fn import(
    from: &str,
    source: &str,
    out: Option<&Path>,
    force: bool,
    install: Option<super::replace::Opts<'_>>,
) -> Result<ExitCode, CliError> {
    let format = Format::ALL
        .iter()
        .find(|(_, n)| *n == from)
        .map(|(f, _)| *f)
        .ok_or_else(|| CliError::Invalid(format!("--from {from}: not a known tool")))?;
    let path = Path::new(source);
    let result = if path.is_file() {
        from_file(format, path)?
    } else {
        from_service(format, source)?
    };
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(opts) = install {
        let foreign = foreign_name(format, source, path.is_file(), &result);
        return super::replace::run(source, result, foreign, &opts);
    }
    if result.programs.len() == 1 && out.is_none() {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(result.programs[0].toml.as_bytes())
            .map_err(|e| CliError::io("cannot print the config", e))?;
        return Ok(ExitCode::from(code::OK));
    }
    // Several programs (or --out): one file each, none written if any would be replaced.
    let dir = out.unwrap_or(Path::new("."));
    let files: Vec<(PathBuf, &str)> = result
        .programs
        .iter()
        .map(|p| (dir.join(format!("{}.toml", p.name)), p.toml.as_str()))
        .collect();
    if !force {
        let taken: Vec<String> = files
            .iter()
            .filter(|(f, _)| f.exists())
            .map(|(f, _)| format!("`{}`", f.display()))
            .collect();
        if !taken.is_empty() {
            return Err(CliError::Invalid(format!(
                "{} already exist(s): nothing was written; remove them, choose another --out, \
                 or add --force to replace them",
                taken.join(", ")
            )));
        }
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::io(format!("cannot create `{}`", dir.display()), e))?;
    let mut stdout = std::io::stdout().lock();
    for (file, text) in &files {
        std::fs::write(file, text)
            .map_err(|e| CliError::io(format!("cannot write `{}`", file.display()), e))?;
        let _ = writeln!(stdout, "wrote {}", file.display());
    }
    let _ = writeln!(
        stdout,
        "check the comments in each file, then `tend validate <file>`"
    );
    Ok(ExitCode::from(code::OK))
}

/// The name of the service the source describes, as its own manager knows it (what
/// `--replace` takes over): a unit file's name, the service a registry source was read from,
/// else the imported program's name (WinSW's `id`, NSSM's service in a dump).
fn foreign_name(format: Format, source: &str, is_file: bool, result: &Import) -> String {
    let imported = || {
        result
            .programs
            .first()
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    match format {
        Format::Systemd => Path::new(source)
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_suffix(".service"))
            .map_or_else(imported, str::to_owned),
        Format::Nssm | Format::Shawl if !is_file => source.to_owned(),
        _ => imported(),
    }
}

fn from_file(format: Format, path: &Path) -> Result<Import, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::io(format!("cannot read `{}`", path.display()), e))?;
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let mut src = Source::new(path, &text);
    src.dir = dir;
    if format == Format::Systemd {
        src.dropins = dropins(path);
    }
    if format == Format::Supervisord {
        src.env = std::env::vars().collect();
    }
    tend_import::import(format, &src).map_err(|e| CliError::Invalid(e.to_string()))
}

/// systemd's drop-ins next to the unit (`<unit>.d/*.conf`), in name order, as systemd
/// applies them.
fn dropins(unit: &Path) -> Vec<(PathBuf, String)> {
    let mut dir = unit.as_os_str().to_owned();
    dir.push(".d");
    let mut files: Vec<PathBuf> = std::fs::read_dir(PathBuf::from(dir))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect()
}

/// A source that is not a file: on Windows, the name of an NSSM or shawl service.
fn from_service(format: Format, name: &str) -> Result<Import, CliError> {
    #[cfg(windows)]
    if matches!(format, Format::Nssm | Format::Shawl) {
        return registry::import(format, name);
    }
    let what = match format {
        Format::Nssm => {
            "no such file (a service name is read from the registry on Windows only; elsewhere \
             give `nssm dump <service>` output in a file)"
        }
        Format::Shawl => {
            "no such file (a service name is read from the registry on Windows only; elsewhere \
             give the service's command line in a file)"
        }
        _ => "no such file",
    };
    Err(CliError::Invalid(format!("`{name}`: {what}")))
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod registry {
    //! Reads a service's registry key for the pure converters: values in, nothing else.

    use tend_import::{Format, Import, RegValue, RegistryValues};
    use windows_sys::Win32::Foundation::{ERROR_NO_MORE_ITEMS, ERROR_SUCCESS};
    use windows_sys::Win32::System::Registry::{
        HKEY, HKEY_LOCAL_MACHINE, KEY_READ, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_SZ,
        RegCloseKey, RegEnumValueW, RegOpenKeyExW,
    };

    use crate::error::CliError;

    pub(super) fn import(format: Format, name: &str) -> Result<Import, CliError> {
        let base = format!(r"SYSTEM\CurrentControlSet\Services\{name}");
        let service = read(&base).ok_or_else(|| {
            CliError::NotInstalled(format!(
                "{name} (no file of that name, and no service key HKLM\\{base})"
            ))
        })?;
        let invalid = |e: tend_import::ImportError| CliError::Invalid(e.to_string());
        if format == Format::Shawl {
            let image = service
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("ImagePath"))
                .and_then(|(_, v)| match v {
                    RegValue::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            return tend_import::import_shawl_image_path(name, &image).map_err(invalid);
        }
        let mut values: RegistryValues = service.into_iter().collect();
        values.extend(read(&format!(r"{base}\Parameters")).unwrap_or_default());
        for (k, v) in read(&format!(r"{base}\Parameters\AppExit")).unwrap_or_default() {
            let k = if k.is_empty() {
                "Default".to_owned()
            } else {
                k
            };
            values.insert(format!(r"AppExit\{k}"), v);
        }
        for event in ["Start", "Stop", "Exit", "Rotate", "Power"] {
            for (k, v) in read(&format!(r"{base}\Parameters\AppEvents\{event}")).unwrap_or_default()
            {
                values.insert(format!(r"AppEvents\{event}/{k}"), v);
            }
        }
        tend_import::import_nssm_registry(name, &values).map_err(invalid)
    }

    fn wide(s: &str) -> Vec<u16> {
        s.encode_utf16().chain(std::iter::once(0)).collect()
    }

    /// Every value of `HKLM\<path>`, or `None` if the key cannot be opened.
    fn read(path: &str) -> Option<Vec<(String, RegValue)>> {
        let mut key: HKEY = std::ptr::null_mut();
        let wpath = wide(path);
        // SAFETY: `wpath` is NUL-terminated and outlives the call; `key` is a valid out
        // pointer.
        let rc =
            unsafe { RegOpenKeyExW(HKEY_LOCAL_MACHINE, wpath.as_ptr(), 0, KEY_READ, &mut key) };
        if rc != ERROR_SUCCESS {
            return None;
        }
        let mut out = Vec::new();
        let mut index = 0;
        loop {
            let mut name = vec![0u16; 16_384];
            let mut name_len = name.len() as u32;
            let mut kind = 0u32;
            let mut data = vec![0u8; 64 * 1024];
            let mut data_len = data.len() as u32;
            // SAFETY: the buffers and their lengths describe valid, writable memory that
            // outlives the call; `key` is an open key.
            let rc = unsafe {
                RegEnumValueW(
                    key,
                    index,
                    name.as_mut_ptr(),
                    &mut name_len,
                    std::ptr::null(),
                    &mut kind,
                    data.as_mut_ptr(),
                    &mut data_len,
                )
            };
            if rc == ERROR_NO_MORE_ITEMS || rc != ERROR_SUCCESS {
                break;
            }
            index += 1;
            let name = String::from_utf16_lossy(&name[..name_len as usize]);
            let bytes = &data[..data_len as usize];
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            let value = match kind {
                REG_DWORD if bytes.len() >= 4 => {
                    RegValue::Num(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
                }
                REG_SZ | REG_EXPAND_SZ => RegValue::Str(
                    String::from_utf16_lossy(&units)
                        .trim_end_matches('\0')
                        .to_owned(),
                ),
                REG_MULTI_SZ => RegValue::Multi(
                    String::from_utf16_lossy(&units)
                        .split('\0')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
                _ => continue,
            };
            out.push((name, value));
        }
        // SAFETY: `key` was opened above and is closed once.
        unsafe { RegCloseKey(key) };
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// cli.rs spells the `--from` names out (build.rs compiles it without tend-import): they
    /// must be the formats tend-import converts, or a tool would be refused or unreachable.
    #[test]
    fn from_offers_every_format_tend_import_knows() {
        let cmd = crate::cli::Cli::command();
        let from = cmd
            .find_subcommand("import")
            .and_then(|c| c.get_arguments().find(|a| a.get_id() == "from"))
            .expect("import --from");
        let offered: Vec<String> = from
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_owned())
            .collect();
        let known: Vec<&str> = Format::ALL.iter().map(|(_, name)| *name).collect();
        assert_eq!(offered, known);
    }
}
