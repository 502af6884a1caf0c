//! The few registry writes tend needs: the Event Log source of a service, the per-user
//! Run value and Windows Error Reporting's LocalDumps keys. Small enough that a registry crate would be more code to review than this.

use std::io;

use windows_sys::Win32::Foundation::ERROR_SUCCESS;
use windows_sys::Win32::System::Registry::{
    HKEY, KEY_WRITE, REG_OPTION_NON_VOLATILE, REG_VALUE_TYPE, RegCloseKey, RegCreateKeyExW,
    RegDeleteTreeW, RegSetValueExW,
};

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn check(code: u32, what: &str) -> io::Result<()> {
    if code == ERROR_SUCCESS {
        Ok(())
    } else {
        #[allow(clippy::cast_possible_wrap)]
        let e = io::Error::from_raw_os_error(code as i32);
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    }
}

/// A value to store.
pub(crate) enum Value<'a> {
    /// REG_SZ
    Str(&'a str),
    /// REG_EXPAND_SZ
    ExpandStr(&'a str),
    /// REG_DWORD
    Dword(u32),
}

/// Creates `root\path` if needed and sets the values.
pub(crate) fn set(root: HKEY, path: &str, values: &[(&str, Value<'_>)]) -> io::Result<()> {
    let mut key: HKEY = std::ptr::null_mut();
    let p = wide(path);
    // SAFETY: valid root key, NUL-terminated path, out pointer to a local; checked below.
    #[allow(unsafe_code)]
    let rc = unsafe {
        RegCreateKeyExW(
            root,
            p.as_ptr(),
            0,
            std::ptr::null(),
            REG_OPTION_NON_VOLATILE,
            KEY_WRITE,
            std::ptr::null(),
            &raw mut key,
            std::ptr::null_mut(),
        )
    };
    check(rc, &format!("cannot create registry key `{path}`"))?;
    let mut result = Ok(());
    for (name, value) in values {
        let n = wide(name);
        let (ty, data): (REG_VALUE_TYPE, Vec<u8>) = match value {
            Value::Str(s) | Value::ExpandStr(s) => (
                if matches!(value, Value::Str(_)) { 1 } else { 2 },
                wide(s).iter().flat_map(|u| u.to_le_bytes()).collect(),
            ),
            Value::Dword(d) => (4, d.to_le_bytes().to_vec()),
        };
        // SAFETY: `key` is open for writing; name and data outlive the call.
        #[allow(unsafe_code)]
        let rc = unsafe {
            RegSetValueExW(
                key,
                n.as_ptr(),
                0,
                ty,
                data.as_ptr(),
                u32::try_from(data.len()).unwrap_or(u32::MAX),
            )
        };
        if let Err(e) = check(rc, &format!("cannot set registry value `{path}\\{name}`")) {
            result = Err(e);
            break;
        }
    }
    // SAFETY: closing the key opened above, once.
    #[allow(unsafe_code)]
    unsafe {
        RegCloseKey(key);
    }
    result
}

/// Whether the key `root\path` exists.
pub(crate) fn exists(root: HKEY, path: &str) -> io::Result<bool> {
    use windows_sys::Win32::System::Registry::{KEY_READ, RegOpenKeyExW};
    let p = wide(path);
    let mut key: HKEY = std::ptr::null_mut();
    // SAFETY: valid root key, NUL-terminated path, out pointer to a local; closed below.
    #[allow(unsafe_code)]
    let rc = unsafe { RegOpenKeyExW(root, p.as_ptr(), 0, KEY_READ, &raw mut key) };
    if rc == windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND {
        return Ok(false);
    }
    check(rc, &format!("cannot open registry key `{path}`"))?;
    // SAFETY: closing the key opened above, once.
    #[allow(unsafe_code)]
    unsafe {
        RegCloseKey(key);
    }
    Ok(true)
}

/// Deletes `root\path` and everything under it. A missing key is fine.
pub(crate) fn delete_tree(root: HKEY, path: &str) -> io::Result<()> {
    let p = wide(path);
    // SAFETY: valid root key and NUL-terminated path.
    #[allow(unsafe_code)]
    let rc = unsafe { RegDeleteTreeW(root, p.as_ptr()) };
    if rc == windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND {
        return Ok(());
    }
    check(rc, &format!("cannot delete registry key `{path}`"))
}

/// Deletes one value under `root\path`. A missing value or key is fine.
pub(crate) fn delete_value(root: HKEY, path: &str, name: &str) -> io::Result<()> {
    use windows_sys::Win32::System::Registry::RegDeleteKeyValueW;
    let (p, n) = (wide(path), wide(name));
    // SAFETY: valid root key and NUL-terminated strings.
    #[allow(unsafe_code)]
    let rc = unsafe { RegDeleteKeyValueW(root, p.as_ptr(), n.as_ptr()) };
    if rc == windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND {
        return Ok(());
    }
    check(
        rc,
        &format!("cannot delete registry value `{path}\\{name}`"),
    )
}

/// Reads a REG_SZ (or REG_EXPAND_SZ, unexpanded) value under `root\path`; `None` when the
/// key or the value does not exist.
pub(crate) fn get_str(root: HKEY, path: &str, name: &str) -> io::Result<Option<String>> {
    use windows_sys::Win32::System::Registry::{
        RRF_NOEXPAND, RRF_RT_REG_EXPAND_SZ, RRF_RT_REG_SZ, RegGetValueW,
    };
    let (p, n) = (wide(path), wide(name));
    let flags = RRF_RT_REG_SZ | RRF_RT_REG_EXPAND_SZ | RRF_NOEXPAND;
    let mut size = 0u32;
    // SAFETY: a size query: null data pointer, `size` is a valid out pointer.
    #[allow(unsafe_code)]
    let rc = unsafe {
        RegGetValueW(
            root,
            p.as_ptr(),
            n.as_ptr(),
            flags,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &raw mut size,
        )
    };
    if rc == windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND {
        return Ok(None);
    }
    check(rc, &format!("cannot read registry value `{path}\\{name}`"))?;
    // `size` is in bytes and includes the terminating NUL.
    let mut buf = vec![0u16; (size as usize).div_ceil(2) + 1];
    let mut bytes = u32::try_from(buf.len() * 2).unwrap_or(u32::MAX);
    // SAFETY: `buf` holds `bytes` bytes and outlives the call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        RegGetValueW(
            root,
            p.as_ptr(),
            n.as_ptr(),
            flags,
            std::ptr::null_mut(),
            buf.as_mut_ptr().cast(),
            &raw mut bytes,
        )
    };
    if rc == windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND {
        return Ok(None);
    }
    check(rc, &format!("cannot read registry value `{path}\\{name}`"))?;
    let len = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    Ok(Some(String::from_utf16_lossy(&buf[..len])))
}
