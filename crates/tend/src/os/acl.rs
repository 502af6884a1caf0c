//! Who may touch a Windows service's files, as SDDL strings (pure, tested everywhere).
//!
//! - The installed config is what the service runs: only SYSTEM and Administrators may
//!   change it; the service's own account may read it.
//! - The log and state directories are written by the service: its account may modify
//!   them; SYSTEM and Administrators have full control.
//! - Everything is *protected* (no inheritance from `%ProgramData%`, whose default lets
//!   every user create files), so no ordinary user can plant or edit anything.
#![allow(dead_code, reason = "applied on Windows only; tested everywhere")]

use tend_core::{Account, Hardening};

/// The SID of `NT SERVICE\<name>`: `S-1-5-80-` and the SHA-1 of the upper-cased name in
/// UTF-16LE, as five little-endian 32-bit numbers. Computed rather than looked up, because
/// it is defined this way and the lookup needs the service to exist already.
pub(crate) fn service_sid(name: &str) -> String {
    let utf16: Vec<u8> = name
        .to_uppercase()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let digest = sha1_smol::Sha1::from(&utf16).digest().bytes();
    let parts: Vec<String> = digest
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string())
        .collect();
    format!("S-1-5-80-{}", parts.join("-"))
}

/// The SID (or SDDL alias) the service's own account has, when tend can name it.
pub(crate) fn account_sid(account: &Account, service: &str) -> Option<String> {
    match account {
        Account::Isolated => Some(service_sid(service)),
        Account::LocalService => Some("LS".into()),
        Account::NetworkService => Some("NS".into()),
        // LocalSystem is SY, already granted; a named user is granted by name at install
        // time where the OS can resolve it (not expressible in SDDL without its SID).
        Account::System | Account::User { .. } => None,
    }
}

/// Who is granted access to the service's files: its account where tend can name it, and
/// with `hardening = "strict"` also its service SID, because a write-restricted token can
/// write only where that SID (or Everyone) may, whatever its account may.
pub(crate) fn grantees(account: &Account, service: &str, hardening: Hardening) -> Vec<String> {
    let mut out: Vec<String> = account_sid(account, service).into_iter().collect();
    let sid = service_sid(service);
    if hardening == Hardening::Strict && !out.contains(&sid) {
        out.push(sid);
    }
    out
}

/// File generic read + execute, and modify (read, write, delete, no ownership change).
const READ: &str = "FR";
const MODIFY: &str = "0x1301bf";

/// A protected DACL: SYSTEM and Administrators full control, plus `rights` for each of
/// `sids`. `container` adds object+container inheritance (for directories).
fn dacl(sids: &[String], rights: &str, container: bool) -> String {
    let inherit = if container { "OICI" } else { "" };
    let mut s = format!("D:P(A;{inherit};FA;;;SY)(A;{inherit};FA;;;BA)");
    for sid in sids {
        s.push_str(&format!("(A;{inherit};{rights};;;{sid})"));
    }
    s
}

/// For `%ProgramData%\tend\services` (the directory of installed configs).
pub(crate) fn services_dir() -> String {
    dacl(&[], READ, true)
}

/// For one installed config file.
pub(crate) fn config_file(grantees: &[String]) -> String {
    dacl(grantees, READ, false)
}

/// For the log and state directories of a service.
pub(crate) fn writable_dir(grantees: &[String]) -> String {
    dacl(grantees, MODIFY, true)
}

/// Warnings for an `isolated` service whose program or working directory lies in a user's
/// profile (`C:\Users\...`): a virtual account `NT SERVICE\<name>` cannot read other
/// users' profiles by default, so the service would fail to start. A heuristic rather than
/// an effective-access check, which Windows cannot answer reliably for a virtual account
/// that does not exist yet; it catches the common case (a program unpacked in Downloads or
/// on the Desktop). Paths compare case-insensitively, as on Windows.
pub(crate) fn profile_warnings(
    profiles: &std::path::Path,
    service: &str,
    paths: &[(&str, &std::path::Path)],
) -> Vec<(String, String)> {
    let root = profiles.to_string_lossy().to_lowercase();
    let root = root.trim_end_matches(['\\', '/']);
    paths
        .iter()
        .filter(|(_, p)| {
            let p = p.to_string_lossy().to_lowercase();
            p.strip_prefix(root)
                .is_some_and(|rest| rest.starts_with(['\\', '/']))
        })
        .map(|(key, p)| {
            (
                (*key).to_owned(),
                format!(
                    "`{}` is inside a user profile, which the service account NT SERVICE\\{service} cannot read by default; move it (e.g. under C:\\Program Files) or grant access: icacls \"<dir>\" /grant \"NT SERVICE\\{service}\":(RX)",
                    p.display()
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_sids_match_windows() {
        // Well-known: NT SERVICE\TrustedInstaller.
        assert_eq!(
            service_sid("TrustedInstaller"),
            "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
        );
        // Case does not matter (the SCM upper-cases the name).
        assert_eq!(
            service_sid("trustedinstaller"),
            service_sid("TRUSTEDINSTALLER")
        );
    }

    #[test]
    fn dacls_are_protected_and_least_privilege() {
        assert_eq!(services_dir(), "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)");
        assert_eq!(
            config_file(&["S-1-5-80-1".to_owned()]),
            "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FR;;;S-1-5-80-1)"
        );
        assert_eq!(
            writable_dir(&["NS".to_owned()]),
            "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;NS)"
        );
        assert_eq!(account_sid(&Account::System, "x"), None);
        assert_eq!(
            account_sid(&Account::Isolated, "TrustedInstaller").as_deref(),
            Some("S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464")
        );
    }

    #[test]
    fn strict_also_grants_the_service_sid() {
        let ti = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464";
        let g = |a: &Account, h| grantees(a, "TrustedInstaller", h);
        assert_eq!(g(&Account::Isolated, Hardening::Basic), [ti]);
        assert_eq!(g(&Account::Isolated, Hardening::Strict), [ti]);
        assert!(g(&Account::System, Hardening::Basic).is_empty());
        assert_eq!(g(&Account::System, Hardening::Strict), [ti]);
        assert_eq!(g(&Account::NetworkService, Hardening::Strict), ["NS", ti]);
    }

    #[test]
    fn programs_in_user_profiles_are_flagged() {
        use std::path::Path;
        let root = Path::new(r"C:\Users");
        let w = profile_warnings(
            root,
            "api",
            &[
                ("command[0]", Path::new(r"c:\users\ann\Downloads\api.exe")),
                ("working_dir", Path::new(r"C:\Program Files\api")),
                ("base_dir", Path::new(r"C:\UsersOther\x")),
            ],
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].0, "command[0]");
        assert!(w[0].1.contains(r"NT SERVICE\api"));
    }
}
