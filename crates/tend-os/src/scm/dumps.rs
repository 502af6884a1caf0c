//! `[diagnostics] dumps` on Windows: Windows Error Reporting keeps a dump of a crashed
//! program when `HKLM\SOFTWARE\Microsoft\Windows\Windows Error Reporting\LocalDumps\<exe>`
//! exists. The key is per program file name, machine-wide, and may be shared with another
//! service (or set by the operator), so tend marks the keys it creates and only ever
//! changes or removes its own.
//!
//! The decision ([`step`]) is pure; the backend reads the key's owner and carries it out
//! through [`super::Host`].

use std::path::{Path, PathBuf};

use tend_core::{Program, ServiceSpec};

/// The parent of every LocalDumps key, under HKEY_LOCAL_MACHINE.
pub const LOCAL_DUMPS_KEY: &str = r"SOFTWARE\Microsoft\Windows\Windows Error Reporting\LocalDumps";

/// The value tend adds to a key it created: the service's name. WER ignores values it
/// does not know.
pub const OWNER_VALUE: &str = "TendService";

/// A LocalDumps key as tend writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDumps {
    /// The program's file name (`api.exe`): the key's name.
    pub exe: String,
    /// `DumpFolder`.
    pub folder: PathBuf,
    /// `DumpCount`.
    pub count: u32,
    /// `DumpType` (1 mini, 2 full).
    pub kind: u32,
}

/// Who holds a LocalDumps key now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// There is no key for this program.
    Absent,
    /// A key that tend did not create (the operator's, or another tool's).
    NotTend,
    /// A key tend created for this service.
    Tend(String),
}

/// The key `spec` wants, dumps going to `<state_dir>\dumps`; `None` without
/// `[diagnostics] dumps`.
#[must_use]
pub fn wanted(spec: &ServiceSpec, state_dir: &Path) -> Option<LocalDumps> {
    if !spec.diagnostics.dumps {
        return None;
    }
    Some(LocalDumps {
        exe: exe_name(&spec.command.program)?,
        folder: dumps_dir(state_dir),
        count: spec.diagnostics.dump_count,
        kind: spec.diagnostics.dump_type.wer_value(),
    })
}

/// Where a service's dumps go: `dumps` in its state directory.
#[must_use]
pub fn dumps_dir(state_dir: &Path) -> PathBuf {
    let mut s = state_dir.as_os_str().to_owned();
    s.push(r"\dumps");
    PathBuf::from(s)
}

/// The image file name WER matches: the last component of the program's path (split at
/// `\` or `/`, whatever the host), `.exe` added to a bare name searched in PATH.
fn exe_name(program: &Program) -> Option<String> {
    let text = match program {
        Program::Path(p) => p.to_string_lossy().into_owned(),
        Program::Search(name) => name.clone(),
    };
    let file = text.rsplit(['\\', '/']).next().filter(|f| !f.is_empty())?;
    if matches!(program, Program::Search(_)) && !file.contains('.') {
        return Some(format!("{file}.exe"));
    }
    Some(file.to_owned())
}

/// One thing to do about a LocalDumps key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create or update the key (ours, or none yet).
    Set(LocalDumps),
    /// Remove the key of this program file name (ours, no longer wanted).
    Remove(String),
    /// Leave a key alone, and say why.
    Leave(String),
}

/// What install does for `service`, which wanted `before` (the installed config, if any)
/// and wants `after`; `owner` says who holds the key of a program file name now.
#[must_use]
pub fn steps(
    service: &str,
    before: Option<&LocalDumps>,
    after: Option<&LocalDumps>,
    owner: impl Fn(&str) -> Owner,
) -> Vec<Step> {
    let mut out = Vec::new();
    let ours = |exe: &str| owner(exe) == Owner::Tend(service.to_owned());
    if let Some(b) = before
        && after.is_none_or(|a| !a.exe.eq_ignore_ascii_case(&b.exe))
        && ours(&b.exe)
    {
        out.push(Step::Remove(b.exe.clone()));
    }
    if let Some(a) = after {
        match owner(&a.exe) {
            Owner::Absent => out.push(Step::Set(a.clone())),
            Owner::Tend(s) if s.eq_ignore_ascii_case(service) => out.push(Step::Set(a.clone())),
            Owner::Tend(other) => out.push(Step::Leave(format!(
                "[diagnostics] dumps: crash dumps of `{}` are already set up by service `{other}` (the same program file name); they go to its folder, and its settings stay",
                a.exe
            ))),
            Owner::NotTend => out.push(Step::Leave(format!(
                "[diagnostics] dumps: a Windows Error Reporting LocalDumps key for `{}` exists that tend did not create; left as it is (dumps go where it says): delete it to let tend manage it",
                a.exe
            ))),
        }
    }
    out
}

/// What uninstall does: remove the key if it is this service's.
#[must_use]
pub fn on_uninstall(
    service: &str,
    installed: Option<&LocalDumps>,
    owner: impl Fn(&str) -> Owner,
) -> Option<String> {
    let d = installed?;
    (owner(&d.exe) == Owner::Tend(service.to_owned())).then(|| d.exe.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dumps(exe: &str) -> LocalDumps {
        LocalDumps {
            exe: exe.into(),
            folder: r"C:\ProgramData\tend\state\api\dumps".into(),
            count: 10,
            kind: 1,
        }
    }

    #[test]
    fn exe_names_as_wer_matches_them() {
        let cases = [
            (
                Program::Path(r"C:\apps\api\api.exe".into()),
                Some("api.exe"),
            ),
            (Program::Path("/opt/api/api".into()), Some("api")),
            (Program::Search("api".into()), Some("api.exe")),
            (Program::Search("api.com".into()), Some("api.com")),
            (Program::Path(r"C:\apps\".into()), None),
        ];
        for (program, want) in cases {
            assert_eq!(exe_name(&program).as_deref(), want, "{program:?}");
        }
    }

    #[test]
    fn install_sets_its_own_key_and_leaves_everyone_elses() {
        let a = dumps("api.exe");
        let b = dumps("api2.exe");
        type Case<'a> = (
            &'a str,
            Option<&'a LocalDumps>,
            Option<&'a LocalDumps>,
            fn(&str) -> Owner,
            Vec<Step>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "new, no key",
                None,
                Some(&a),
                |_| Owner::Absent,
                vec![Step::Set(a.clone())],
            ),
            (
                "ours already",
                Some(&a),
                Some(&a),
                |_| Owner::Tend("api".into()),
                vec![Step::Set(a.clone())],
            ),
            (
                "off: ours removed",
                Some(&a),
                None,
                |_| Owner::Tend("api".into()),
                vec![Step::Remove("api.exe".into())],
            ),
            (
                "off: not ours kept",
                Some(&a),
                None,
                |_| Owner::NotTend,
                vec![],
            ),
            (
                "never on",
                None,
                None,
                |_| Owner::Tend("api".into()),
                vec![],
            ),
            (
                "program renamed",
                Some(&a),
                Some(&b),
                |e| {
                    if e == "api.exe" {
                        Owner::Tend("api".into())
                    } else {
                        Owner::Absent
                    }
                },
                vec![Step::Remove("api.exe".into()), Step::Set(b.clone())],
            ),
        ];
        for (what, before, after, owner, want) in cases {
            assert_eq!(steps("api", before, after, owner), want, "{what}");
        }
        let other = steps("api", None, Some(&a), |_| Owner::Tend("web".into()));
        assert!(
            matches!(&other[..], [Step::Leave(w)] if w.contains("service `web`")),
            "{other:?}"
        );
        let foreign = steps("api", None, Some(&a), |_| Owner::NotTend);
        assert!(
            matches!(&foreign[..], [Step::Leave(w)] if w.contains("did not create")),
            "{foreign:?}"
        );
    }

    #[test]
    fn uninstall_removes_only_its_own_key() {
        let a = dumps("api.exe");
        assert_eq!(
            on_uninstall("api", Some(&a), |_| Owner::Tend("api".into())).as_deref(),
            Some("api.exe")
        );
        assert_eq!(
            on_uninstall("api", Some(&a), |_| Owner::Tend("web".into())),
            None
        );
        assert_eq!(on_uninstall("api", Some(&a), |_| Owner::NotTend), None);
        assert_eq!(
            on_uninstall("api", None, |_| Owner::Tend("api".into())),
            None
        );
    }
}
