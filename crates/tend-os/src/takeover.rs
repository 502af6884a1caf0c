//! `tend import --install --replace`: taking over a service another tool installed, and
//! putting it back when tend's fails to come up.
//!
//! [`Foreign`] is everything a put-back needs, recorded before anything is changed (the
//! CLI writes it to disk, with copies of the files, before the first change). The systemd
//! plans here are pure data, like the install plans in [`crate::systemd`]; the SCM's
//! sequence is in `scm/backend.rs`.

use std::path::{Path, PathBuf};

use crate::plan::Step;
use crate::{Backend, Scope};

/// A service installed by another tool, as it was before tend took it over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Foreign {
    /// Its manager (`systemd`, `scm`).
    pub backend: String,
    /// Its name.
    pub name: String,
    /// It ran (systemd `active`, the SCM's RUNNING or a pending state).
    pub active: bool,
    /// It started at boot (systemd `enabled`; the SCM: start type auto).
    pub enabled: bool,
    /// The files that define it (systemd: the unit file and its drop-ins), with their text.
    #[serde(default)]
    pub files: Vec<SavedFile>,
    /// Its SCM entry (Windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scm: Option<ScmSettings>,
}

/// A file of a foreign service's definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedFile {
    /// Where it was.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// What `QueryServiceConfig` and `QueryServiceConfig2` said about a foreign SCM service:
/// what a put-back writes back with `ChangeServiceConfig(2)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScmSettings {
    /// The command line (ImagePath), exactly as it was.
    pub command_line: String,
    /// The display name.
    pub display_name: String,
    /// The account (`LocalSystem`, `NT AUTHORITY\LocalService`, `.\user`).
    pub account: Option<String>,
    /// Services (and `+group`s) it depends on.
    pub dependencies: Vec<String>,
    /// `auto`, `demand`, `disabled` (`None`: a driver's, never changed).
    pub start: Option<String>,
    /// Delayed auto-start, if it could be read.
    pub delayed: Option<bool>,
    /// The service SID type (`none`, `unrestricted`, `restricted`), if it could be read.
    pub sid_type: Option<String>,
    /// The required privileges, if they could be read.
    pub required_privileges: Option<Vec<String>>,
    /// The description (empty: none), if it could be read. (Records written before tend
    /// read it have none, and a put-back leaves what is there.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What the SCM does when it fails, if it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_actions: Option<ScmFailureActions>,
    /// Whether the failure actions also apply to a stop with an error code, if it could be
    /// read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_actions_on_non_crash: Option<bool>,
    /// The preshutdown timeout in milliseconds, if it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preshutdown_ms: Option<u64>,
}

/// SERVICE_FAILURE_ACTIONS as another tool set it (WinSW's `onfailure`, `sc failure`):
/// every action kind, so a put-back writes back exactly what was there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScmFailureActions {
    /// Seconds without a failure after which the count starts again; `None`: never.
    pub reset_secs: Option<u64>,
    /// The message broadcast before a reboot action (empty: none).
    #[serde(default)]
    pub reboot_message: String,
    /// The command line of a run-command action (empty: none).
    #[serde(default)]
    pub command: String,
    /// One action per failure, in order; the last repeats.
    #[serde(default)]
    pub actions: Vec<ScmFailureAction>,
}

/// One failure action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScmFailureAction {
    /// `none`, `restart`, `reboot` or `run`.
    pub kind: String,
    /// After how long, in milliseconds.
    pub delay_ms: u64,
}

impl Foreign {
    /// The backend it belongs to, by name.
    #[must_use]
    pub fn is(&self, backend: Backend) -> bool {
        self.backend == backend.name()
    }
}

/// `systemctl show`'s properties a take-over records.
pub const SYSTEMD_PROPERTIES: &str = "LoadState,ActiveState,UnitFileState,FragmentPath,DropInPaths";

/// The argv that asks systemd about a foreign unit.
#[must_use]
pub fn systemd_show_argv(name: &str, scope: &Scope) -> Vec<String> {
    systemctl(
        scope,
        &[
            "show",
            &format!("{name}.service"),
            &format!("--property={SYSTEMD_PROPERTIES}"),
            "--no-pager",
        ],
    )
}

/// What `systemctl show` said of a unit, for a take-over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemdUnit {
    /// `LoadState` is not `not-found`.
    pub loaded: bool,
    /// `LoadState=masked`.
    pub masked: bool,
    /// `ActiveState` is active, activating, reloading or deactivating.
    pub active: bool,
    /// `UnitFileState` is `enabled` (or `enabled-runtime`).
    pub enabled: bool,
    /// `FragmentPath`.
    pub fragment: Option<PathBuf>,
    /// `DropInPaths`.
    pub dropins: Vec<PathBuf>,
}

/// Parses [`systemd_show_argv`]'s answer.
#[must_use]
pub fn parse_systemd_unit(out: &str) -> SystemdUnit {
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .map(str::trim)
            .unwrap_or_default()
    };
    let load = get("LoadState");
    SystemdUnit {
        loaded: !load.is_empty() && load != "not-found",
        masked: load == "masked",
        active: matches!(
            get("ActiveState"),
            "active" | "activating" | "reloading" | "deactivating"
        ),
        enabled: matches!(get("UnitFileState"), "enabled" | "enabled-runtime"),
        fragment: Some(get("FragmentPath"))
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        dropins: get("DropInPaths")
            .split_whitespace()
            .map(PathBuf::from)
            .collect(),
    }
}

/// The take-over of foreign unit `foreign` by tend's service `into`: stop it, and keep it
/// from starting at boot; when tend's takes its name, remove its files (drop-ins too: they
/// would apply to tend's unit of that name), then reload systemd. The files are in the
/// record (and its backup) before this runs.
#[must_use]
pub fn systemd_take_over(foreign: &Foreign, into: &str, scope: &Scope) -> Vec<Step> {
    let unit = format!("{}.service", foreign.name);
    let mut steps = vec![Step::run(&systemctl(scope, &["stop", &unit]))];
    if foreign.enabled {
        steps.push(Step::run(&systemctl(scope, &["disable", &unit])));
    }
    if into == foreign.name {
        // Drop-ins first: a unit file without its drop-ins is still the old unit, a drop-in
        // without its unit file would be a broken unit of tend's name.
        for f in foreign.files.iter().rev() {
            steps.push(Step::RemoveFile {
                path: f.path.clone(),
            });
        }
    }
    steps.push(Step::run(&systemctl(scope, &["daemon-reload"])));
    // A failed state of the old unit would otherwise show under tend's.
    steps.push(Step::try_run(&systemctl(scope, &["reset-failed", &unit])));
    steps
}

/// The put-back of a foreign unit (tend's service of its name is already gone): its files
/// as they were, a reload, and enabled and started as it was.
#[must_use]
pub fn systemd_put_back(foreign: &Foreign, scope: &Scope) -> Vec<Step> {
    let unit = format!("{}.service", foreign.name);
    let mut steps = Vec::new();
    let unit_dir = foreign
        .files
        .first()
        .and_then(|f| f.path.parent())
        .map(Path::to_path_buf);
    for f in &foreign.files {
        // A drop-in directory went with its files only if it was emptied by the take-over;
        // the unit's own directory always exists.
        if let Some(dir) = f.path.parent()
            && Some(dir) != unit_dir.as_deref()
        {
            steps.push(Step::CreateDir {
                path: dir.to_owned(),
                mode: 0o755,
                owner: None,
            });
        }
        steps.push(Step::WriteFile {
            path: f.path.clone(),
            contents: f.text.clone(),
            mode: 0o644,
        });
    }
    steps.push(Step::run(&systemctl(scope, &["daemon-reload"])));
    if foreign.enabled {
        steps.push(Step::run(&systemctl(scope, &["enable", &unit])));
    }
    if foreign.active {
        steps.push(Step::try_run(&systemctl(scope, &["reset-failed", &unit])));
        steps.push(Step::run(&systemctl(scope, &["start", &unit])));
    }
    steps
}

fn systemctl(scope: &Scope, args: &[&str]) -> Vec<String> {
    let mut v = vec!["systemctl".to_owned()];
    if scope.is_user() {
        v.push("--user".to_owned());
    }
    v.extend(args.iter().map(|s| (*s).to_owned()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(active: bool, enabled: bool) -> Foreign {
        Foreign {
            backend: "systemd".into(),
            name: "legacy".into(),
            active,
            enabled,
            files: vec![
                SavedFile {
                    path: "/etc/systemd/system/legacy.service".into(),
                    text: "[Service]\nExecStart=/srv/app\n".into(),
                },
                SavedFile {
                    path: "/etc/systemd/system/legacy.service.d/env.conf".into(),
                    text: "[Service]\nEnvironment=A=1\n".into(),
                },
            ],
            scm: None,
        }
    }

    fn argv(s: &Step) -> String {
        match s {
            Step::Run { argv, may_fail } => {
                format!(
                    "{}{}",
                    argv.join(" "),
                    if *may_fail { " (may fail)" } else { "" }
                )
            }
            Step::RemoveFile { path } => format!("rm {}", path.display()),
            Step::WriteFile { path, mode, .. } => format!("write {} {mode:o}", path.display()),
            Step::CreateDir { path, mode, .. } => format!("mkdir {} {mode:o}", path.display()),
        }
    }

    #[test]
    fn show_output_is_parsed() {
        let u = parse_systemd_unit(
            "LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\
             FragmentPath=/etc/systemd/system/legacy.service\n\
             DropInPaths=/etc/systemd/system/legacy.service.d/a.conf /run/x.conf\n",
        );
        assert!(u.loaded && u.active && u.enabled && !u.masked);
        assert_eq!(
            u.fragment.as_deref(),
            Some(Path::new("/etc/systemd/system/legacy.service"))
        );
        assert_eq!(u.dropins.len(), 2);
        let none = parse_systemd_unit("LoadState=not-found\nActiveState=inactive\nFragmentPath=\n");
        assert!(!none.loaded && !none.active && none.fragment.is_none());
    }

    #[test]
    fn take_over_under_the_same_name_removes_the_files_drop_ins_first() {
        let steps = systemd_take_over(&legacy(true, true), "legacy", &Scope::system());
        let got: Vec<String> = steps.iter().map(argv).collect();
        assert_eq!(
            got,
            [
                "systemctl stop legacy.service",
                "systemctl disable legacy.service",
                "rm /etc/systemd/system/legacy.service.d/env.conf",
                "rm /etc/systemd/system/legacy.service",
                "systemctl daemon-reload",
                "systemctl reset-failed legacy.service (may fail)",
            ]
        );
    }

    #[test]
    fn take_over_under_a_new_name_only_stops_and_disables() {
        let steps = systemd_take_over(&legacy(true, false), "web", &Scope::system());
        let got: Vec<String> = steps.iter().map(argv).collect();
        assert_eq!(
            got,
            [
                "systemctl stop legacy.service",
                "systemctl daemon-reload",
                "systemctl reset-failed legacy.service (may fail)",
            ]
        );
    }

    #[test]
    fn put_back_restores_files_then_enables_and_starts_as_before() {
        let steps = systemd_put_back(&legacy(true, true), &Scope::system());
        let got: Vec<String> = steps.iter().map(argv).collect();
        assert_eq!(
            got,
            [
                "write /etc/systemd/system/legacy.service 644",
                "mkdir /etc/systemd/system/legacy.service.d 755",
                "write /etc/systemd/system/legacy.service.d/env.conf 644",
                "systemctl daemon-reload",
                "systemctl enable legacy.service",
                "systemctl reset-failed legacy.service (may fail)",
                "systemctl start legacy.service",
            ]
        );
        // Stopped and disabled before: only the files come back.
        let quiet = systemd_put_back(&legacy(false, false), &Scope::system());
        assert_eq!(
            quiet.iter().map(argv).next_back().unwrap(),
            "systemctl daemon-reload"
        );
        if let Step::WriteFile { contents, .. } = &quiet[0] {
            assert_eq!(contents, "[Service]\nExecStart=/srv/app\n");
        }
    }

    #[test]
    fn the_record_round_trips_through_json() {
        let f = legacy(true, true);
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<Foreign>(&json).unwrap(), f);
    }

    #[test]
    fn an_scm_record_round_trips_and_one_written_before_the_failure_actions_still_loads() {
        let scm = ScmSettings {
            command_line: r"C:\nssm\nssm.exe".into(),
            display_name: "API".into(),
            account: Some("LocalSystem".into()),
            dependencies: vec!["Tcpip".into()],
            start: Some("auto".into()),
            delayed: Some(false),
            sid_type: Some("none".into()),
            required_privileges: Some(Vec::new()),
            description: Some("Runs the API".into()),
            failure_actions: Some(ScmFailureActions {
                reset_secs: None,
                reboot_message: String::new(),
                command: "notify.cmd".into(),
                actions: vec![ScmFailureAction {
                    kind: "run".into(),
                    delay_ms: 5000,
                }],
            }),
            failure_actions_on_non_crash: Some(true),
            preshutdown_ms: Some(180_000),
        };
        let f = Foreign {
            backend: "scm".into(),
            name: "api".into(),
            active: true,
            enabled: true,
            files: Vec::new(),
            scm: Some(scm),
        };
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<Foreign>(&json).unwrap(), f);
        // A record written before tend read these: nothing of them to put back.
        let old = r#"{"backend":"scm","name":"api","active":true,"enabled":true,"scm":{
            "command_line":"nssm.exe","display_name":"API","account":null,"dependencies":[],
            "start":"auto","delayed":null,"sid_type":null,"required_privileges":null}}"#;
        let read = serde_json::from_str::<Foreign>(old).unwrap().scm.unwrap();
        assert_eq!(
            (
                read.description,
                read.failure_actions,
                read.failure_actions_on_non_crash
            ),
            (None, None, None)
        );
    }
}
