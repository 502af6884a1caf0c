//! Who may touch a Windows service's files, as SDDL strings (pure, tested everywhere).
//!
//! - The installed config is what the service runs: only SYSTEM and Administrators may
//!   change it; the service's own account may read it.
//! - The log and state directories are written by the service: its account may modify
//!   them; SYSTEM and Administrators have full control.
//! - Everything is *protected* (no inheritance from `%ProgramData%`, whose default lets
//!   every user create files), so no ordinary user can plant or edit anything.

use tend_core::{Account, Hardening};

/// The SID of `NT SERVICE\<name>`: `S-1-5-80-` and the SHA-1 of the upper-cased name in
/// UTF-16LE, as five little-endian 32-bit numbers. Computed rather than looked up, because
/// it is defined this way and the lookup needs the service to exist already.
pub fn service_sid(name: &str) -> String {
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
pub fn account_sid(account: &Account, service: &str) -> Option<String> {
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
pub fn grantees(account: &Account, service: &str, hardening: Hardening) -> Vec<String> {
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
pub fn services_dir() -> String {
    dacl(&[], READ, true)
}

/// For one installed config file.
pub fn config_file(grantees: &[String]) -> String {
    dacl(grantees, READ, false)
}

/// For the log and state directories of a service.
pub fn writable_dir(grantees: &[String]) -> String {
    dacl(grantees, MODIFY, true)
}

/// Warnings for an `isolated` service whose program or working directory lies in a user's
/// profile (`C:\Users\...`): a virtual account `NT SERVICE\<name>` cannot read other
/// users' profiles by default, so the service would fail to start. A heuristic rather than
/// an effective-access check, which Windows cannot answer reliably for a virtual account
/// that does not exist yet; it catches the common case (a program unpacked in Downloads or
/// on the Desktop). Paths compare case-insensitively, as on Windows.
pub fn profile_warnings(
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

/// One access control entry of a file's DACL, as read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// An allow entry (else a deny entry).
    pub allow: bool,
    /// `S-1-...`.
    pub sid: String,
    /// The access mask.
    pub mask: u32,
    /// INHERIT_ONLY_ACE: applies to children only, not to this object.
    pub inherit_only: bool,
}

/// What the service needs of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Run a program: read and execute.
    Run,
    /// Read a file.
    Read,
    /// Enter a directory (the working directory).
    Enter,
    /// Create and write files in a directory (the log directory).
    Write,
}

impl Need {
    fn mask(self) -> u32 {
        const READ_DATA: u32 = 0x1;
        const ADD_FILE: u32 = 0x2;
        const EXECUTE_OR_TRAVERSE: u32 = 0x20;
        match self {
            Self::Run => READ_DATA | EXECUTE_OR_TRAVERSE,
            Self::Read => READ_DATA,
            Self::Enter => EXECUTE_OR_TRAVERSE,
            Self::Write => ADD_FILE,
        }
    }

    fn words(self) -> (&'static str, &'static str) {
        match self {
            Self::Run => ("run", "(RX)"),
            Self::Read => ("read", "(R)"),
            Self::Enter => ("enter", "(RX)"),
            Self::Write => ("write in", "(OI)(CI)M"),
        }
    }
}

/// Generic rights as the file-specific rights they stand for.
fn map_generic(mask: u32) -> u32 {
    let mut m = mask & 0x0fff_ffff;
    if mask & 0x8000_0000 != 0 {
        m |= 0x0012_0089; // FILE_GENERIC_READ
    }
    if mask & 0x4000_0000 != 0 {
        m |= 0x0012_0116; // FILE_GENERIC_WRITE
    }
    if mask & 0x2000_0000 != 0 {
        m |= 0x0012_00a0; // FILE_GENERIC_EXECUTE
    }
    if mask & 0x1000_0000 != 0 {
        m |= 0x001f_01ff; // FILE_ALL_ACCESS
    }
    m
}

/// The rights a DACL grants a token holding `sids`, as Windows evaluates it: entries in
/// order, a right denied before it is allowed stays denied. `None` is a null DACL, which
/// grants everything.
pub fn granted(dacl: Option<&[Ace]>, sids: &[String]) -> u32 {
    let Some(dacl) = dacl else {
        return u32::MAX;
    };
    let (mut granted, mut denied) = (0u32, 0u32);
    for ace in dacl
        .iter()
        .filter(|a| !a.inherit_only && sids.contains(&a.sid))
    {
        let m = map_generic(ace.mask);
        if ace.allow {
            granted |= m & !denied;
        } else {
            denied |= m & !granted;
        }
    }
    granted
}

/// The SIDs in the token of a service running as `account` (what a DACL is checked
/// against), and for a write-restricted token (`hardening = "strict"`) the SIDs a write
/// must also be granted to. `None` where tend cannot know: LocalSystem (which may do
/// anything) and named users (whose groups only their domain knows).
pub fn token_sids(
    account: &Account,
    service: &str,
    hardening: Hardening,
) -> Option<(Vec<String>, Option<Vec<String>>)> {
    let own = match account {
        Account::Isolated => service_sid(service),
        Account::LocalService => "S-1-5-19".to_owned(),
        Account::NetworkService => "S-1-5-20".to_owned(),
        Account::System | Account::User { .. } => return None,
    };
    let mut sids = vec![own];
    // The service SID is in the token whenever the SID type is not none.
    let with_sid = *account == Account::Isolated || hardening == Hardening::Strict;
    if with_sid && !sids.contains(&service_sid(service)) {
        sids.push(service_sid(service));
    }
    // NT SERVICE\ALL SERVICES, SERVICE, Authenticated Users, Users, Everyone, LOCAL.
    for s in [
        "S-1-5-80-0",
        "S-1-5-6",
        "S-1-5-11",
        "S-1-5-32-545",
        "S-1-1-0",
        "S-1-2-0",
    ] {
        sids.push(s.to_owned());
    }
    let restricted = (hardening == Hardening::Strict).then(|| {
        vec![
            service_sid(service),
            "S-1-1-0".to_owned(),
            "S-1-5-33".to_owned(),
        ]
    });
    Some((sids, restricted))
}

/// A path of the config, what the service needs of it, and its DACL as read
/// (`Ok(None)`: a null DACL; `Err`: unreadable, which is not held against the path).
pub type ReachItem<'a> = (
    &'a str,
    &'a std::path::Path,
    Need,
    Result<Option<Vec<Ace>>, String>,
);

/// What the service account cannot reach, as `(key, message with the fix)`. `items` are
/// the config's paths with what the service needs of each and the DACL read from each
/// (`Ok(None)`: a null DACL; `Err`: unreadable, which is not held against the path).
pub fn reach_problems(
    service: &str,
    account: &Account,
    hardening: Hardening,
    items: &[ReachItem<'_>],
) -> Vec<(String, String)> {
    let Some((sids, restricted)) = token_sids(account, service, hardening) else {
        return Vec::new();
    };
    let who = match account {
        Account::Isolated => format!("NT SERVICE\\{service}"),
        Account::LocalService => "NT AUTHORITY\\LocalService".to_owned(),
        _ => "NT AUTHORITY\\NetworkService".to_owned(),
    };
    let mut out = Vec::new();
    for (key, path, need, dacl) in items {
        let Ok(dacl) = dacl else { continue };
        let want = need.mask();
        let mut ok = granted(dacl.as_deref(), &sids) & want == want;
        if ok
            && *need == Need::Write
            && let Some(r) = &restricted
        {
            ok = granted(dacl.as_deref(), r) & want == want;
        }
        if !ok {
            let (verb, rights) = need.words();
            let grantee = if restricted.is_some() && *need == Need::Write {
                format!("NT SERVICE\\{service}")
            } else {
                who.clone()
            };
            out.push((
                (*key).to_owned(),
                format!(
                    "the service account {who} cannot {verb} `{}`; grant it: icacls \"{}\" /grant \"{grantee}\":{rights} (or move it, e.g. under C:\\Program Files)",
                    path.display(),
                    path.display()
                ),
            ));
        }
    }
    out
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

    fn ace(allow: bool, sid: &str, mask: u32) -> Ace {
        Ace {
            allow,
            sid: sid.into(),
            mask,
            inherit_only: false,
        }
    }

    #[test]
    fn dacl_evaluation_follows_windows_order() {
        let sids = vec!["S-1-1-0".to_owned(), "S-1-5-32-545".to_owned()];
        assert_eq!(granted(None, &sids), u32::MAX);
        assert_eq!(granted(Some(&[]), &sids), 0);
        // Generic read+execute for Users.
        let d = [ace(true, "S-1-5-32-545", 0xa000_0000)];
        assert_eq!(granted(Some(&d), &sids) & 0x21, 0x21);
        // A deny before the allow wins; after it, it does not take back what was granted.
        let d = [ace(false, "S-1-1-0", 0x1), ace(true, "S-1-1-0", 0x1f01ff)];
        assert_eq!(granted(Some(&d), &sids) & 0x1, 0);
        let d = [ace(true, "S-1-1-0", 0x1f01ff), ace(false, "S-1-1-0", 0x1)];
        assert_eq!(granted(Some(&d), &sids) & 0x1, 0x1);
        // Someone else's entry and an inherit-only entry grant nothing.
        let mut io = ace(true, "S-1-1-0", 0x1f01ff);
        io.inherit_only = true;
        let d = [ace(true, "S-1-5-21-1-2-3-1000", 0x1f01ff), io];
        assert_eq!(granted(Some(&d), &sids), 0);
    }

    #[test]
    fn reachability_of_an_isolated_service() {
        use std::path::Path;
        let svc = "TrustedInstaller";
        let sid = service_sid(svc);
        let owner_only = Ok(Some(vec![
            ace(true, "S-1-5-18", 0x1f01ff),
            ace(true, "S-1-5-21-1-2-3-1000", 0x1f01ff),
        ]));
        let users_rx = Ok(Some(vec![ace(true, "S-1-5-32-545", 0x1200a9)]));
        let service_modify = Ok(Some(vec![ace(true, &sid, 0x1301bf)]));
        let everyone_modify = Ok(Some(vec![ace(true, "S-1-1-0", 0x1301bf)]));
        let users_modify = Ok(Some(vec![ace(true, "S-1-5-32-545", 0x1301bf)]));
        let items = [
            (
                "tend.exe",
                Path::new(r"C:\Program Files\tend\tend.exe"),
                Need::Run,
                users_rx.clone(),
            ),
            (
                "command[0]",
                Path::new(r"C:\Users\ann\api.exe"),
                Need::Run,
                owner_only.clone(),
            ),
            (
                "working_dir",
                Path::new(r"C:\srv"),
                Need::Enter,
                users_rx.clone(),
            ),
            (
                "env_file",
                Path::new(r"C:\srv\api.env"),
                Need::Read,
                Err("unreadable".into()),
            ),
            (
                "logs.dir",
                Path::new(r"D:\logs"),
                Need::Write,
                users_modify.clone(),
            ),
        ];
        let p = reach_problems(svc, &Account::Isolated, Hardening::Basic, &items);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "command[0]");
        assert!(
            p[0].1.contains(
                r#"icacls "C:\Users\ann\api.exe" /grant "NT SERVICE\TrustedInstaller":(RX)"#
            ),
            "{}",
            p[0].1
        );
        // strict: a write-restricted token writes only where the service SID or Everyone
        // may, whatever Users may.
        let strict = |dacl| {
            reach_problems(
                svc,
                &Account::Isolated,
                Hardening::Strict,
                &[("logs.dir", Path::new(r"D:\logs"), Need::Write, dacl)],
            )
        };
        assert_eq!(strict(users_modify).len(), 1);
        assert!(strict(service_modify).is_empty());
        assert!(strict(everyone_modify).is_empty());
        // LocalSystem and named users are not judged.
        assert!(reach_problems(svc, &Account::System, Hardening::Strict, &items).is_empty());
    }
}
