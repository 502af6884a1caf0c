//! `tend apply`'s decision, as data: from the desired set (the configs given) and the facts
//! about what is installed, what to do to each service. Pure: the CLI gathers the facts
//! through the [`crate::ServiceManager`] and the [`crate::Layout`], and carries the plan
//! out with the same verbs `tend install` / `uninstall` / `reload` / `restart` use.
//!
//! The words of [`Action`] are part of `tend apply --json` (docs/cli.md): a contract, so
//! variants are only added.

use std::path::PathBuf;

use serde::Serialize;
use tend_core::{ServiceName, ServiceSpec, StartMode};

/// What is known about one service of the desired set before anything changes.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The config, validated.
    pub spec: ServiceSpec,
    /// What is installed under its name.
    pub found: Found,
}

/// What is installed under a desired service's name.
#[derive(Debug, Clone)]
pub enum Found {
    /// Nothing (no config copy, and the OS manager does not know the name).
    Missing,
    /// A service tend did not install (a distribution's unit, a hand-written file): tend
    /// leaves it alone. The text says why tend thinks so.
    Foreign(String),
    /// A service tend installed (boxed: a spec is large).
    Ours(Box<Installed>),
}

/// A service tend installed, compared with its desired config.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The lines of the config copy that would change ([`crate::diff_lines`]); empty when
    /// the copy is the same text.
    pub config_diff: Vec<String>,
    /// The lines of the definition (unit file, plist) that would change; `None` where the
    /// backend cannot tell without installing (the SCM, the Run entry: only the config copy
    /// is compared there).
    pub definition_diff: Option<Vec<String>>,
    /// The installed config copy, if it still loads (the reload rules compare it).
    pub old: Option<ServiceSpec>,
    /// Whether the OS manager says tend runs now.
    pub running: bool,
    /// What the last `tend apply` wrote the files for but could not finish (its start,
    /// reload or restart failed): this run does it, even though the files now match.
    pub unfinished: Option<Then>,
}

/// What follows an update of the files: the part of an apply that can fail after the
/// files changed, kept as a marker until it succeeded (see [`Installed::unfinished`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Start the service.
    Start,
    /// Reload the running tend.
    Reload,
    /// Restart tend.
    Restart,
}

impl Then {
    /// The marker's text.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Reload => "reload",
            Self::Restart => "restart",
        }
    }

    /// The marker's text read back; `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Start, Self::Reload, Self::Restart]
            .into_iter()
            .find(|t| t.word() == text.trim())
    }
}

/// A service tend installed that may not be in the desired set (`--prune`'s candidates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present {
    /// Its name (the config copy's file name).
    pub name: ServiceName,
    /// Why it is not tend's after all (a config copy next to a unit tend did not write):
    /// then `--prune` leaves it.
    pub foreign: Option<String>,
}

/// What `tend apply` does to one service. Serialized in kebab-case (`update-reload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Not installed: install it (and start it if its start mode is `auto` or
    /// `delayed-auto`).
    Install,
    /// Installed and stopped: update the files; the change applies at its next start.
    Update,
    /// Installed and running: update the files, then tend reloads (what the program sees
    /// restarts the program gracefully, the rest applies live).
    UpdateReload,
    /// Installed and running, with a change a reload cannot apply (the unit, `[service]`,
    /// the display name): update, then restart tend.
    UpdateRestart,
    /// Installed as asked: nothing is touched.
    Unchanged,
    /// Installed by tend and not in the set, with `--prune`: uninstall it.
    Remove,
    /// The name belongs to a service tend did not install: refused, left alone.
    Conflict,
    /// Installed as asked, but the last apply could not start it: start it.
    Start,
}

impl Action {
    /// Whether carrying it out changes the machine.
    #[must_use]
    pub fn changes(self) -> bool {
        !matches!(self, Self::Unchanged | Self::Conflict)
    }

    /// What follows the update of the files, if anything.
    #[must_use]
    pub fn then(self, start: bool) -> Option<Then> {
        match self {
            Self::Install if start => Some(Then::Start),
            Self::Start => Some(Then::Start),
            Self::UpdateReload => Some(Then::Reload),
            Self::UpdateRestart => Some(Then::Restart),
            _ => None,
        }
    }
}

/// One service's line of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The service.
    pub name: ServiceName,
    /// Its config file in the set (`None` for a service pruned).
    pub file: Option<PathBuf>,
    /// What to do.
    pub action: Action,
    /// Why, in a few words (why a reload is not enough, what it leaves alone).
    pub reason: String,
    /// Whether to start it after installing (new services with an automatic start mode).
    pub start: bool,
    /// The lines of the config copy that change (`- old` / `+ new`).
    pub diff: Vec<String>,
}

/// The plan: one [`Step`] per desired service, in the order given, then the services
/// `--prune` removes (by name).
///
/// `present` is every service tend has a config copy of in this scope.
#[must_use]
pub fn plan(desired: &[Desired], present: &[Present], prune: bool) -> Vec<Step> {
    let mut steps: Vec<Step> = desired.iter().map(decide).collect();
    if prune {
        let mut gone: Vec<&Present> = present
            .iter()
            .filter(|p| !desired.iter().any(|d| d.spec.name == p.name))
            .collect();
        gone.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        for p in gone {
            let (action, reason) = match &p.foreign {
                None => (Action::Remove, "not in the set (--prune)".to_owned()),
                Some(why) => (Action::Conflict, format!("not removed: {why}")),
            };
            steps.push(Step {
                name: p.name.clone(),
                file: None,
                action,
                reason,
                start: false,
                diff: Vec::new(),
            });
        }
    }
    steps
}

fn decide(d: &Desired) -> Step {
    let spec = &d.spec;
    let step = |action, reason: &str, diff: Vec<String>| Step {
        name: spec.name.clone(),
        file: Some(spec.config_path.clone()),
        action,
        reason: reason.to_owned(),
        start: false,
        diff,
    };
    let i = match &d.found {
        Found::Missing => {
            let auto = matches!(spec.service.start, StartMode::Auto | StartMode::DelayedAuto);
            let mut s = step(
                Action::Install,
                if auto {
                    "new; started (start = auto)"
                } else {
                    "new; not started (its start mode is not automatic)"
                },
                Vec::new(),
            );
            s.start = auto;
            return s;
        }
        Found::Foreign(why) => return step(Action::Conflict, why, Vec::new()),
        Found::Ours(i) => i,
    };
    let definition_changed = i.definition_diff.as_ref().is_some_and(|d| !d.is_empty());
    if i.config_diff.is_empty() && !definition_changed {
        return match (i.unfinished, i.running) {
            (None, _) => step(Action::Unchanged, "installed as asked", Vec::new()),
            (Some(Then::Start), false) => step(
                Action::Start,
                "installed as asked, but the last apply could not start it",
                Vec::new(),
            ),
            (Some(Then::Start), true) => step(
                Action::Unchanged,
                "installed as asked, and running since the last apply",
                Vec::new(),
            ),
            (Some(Then::Reload), true) => step(
                Action::UpdateReload,
                "the last apply updated it but could not reload it",
                Vec::new(),
            ),
            (Some(Then::Restart), true) => step(
                Action::UpdateRestart,
                "the last apply updated it but could not restart it",
                Vec::new(),
            ),
            (Some(_), false) => step(
                Action::Update,
                "not running: the last apply's change applies at its next start",
                Vec::new(),
            ),
        };
    }
    let diff = i.config_diff.clone();
    if !i.running {
        return step(
            Action::Update,
            "not running: the change applies at its next start",
            diff,
        );
    }
    // The reload rules (tend-core's `reload::diff`) say what a running tend can take live.
    let reload = match &i.old {
        Some(old) => tend_core::reload::diff(old, spec).ok(),
        None => None,
    };
    let (action, reason) = match reload {
        _ if definition_changed => (
            Action::UpdateRestart,
            "the service definition changed, which applies only when tend starts again".to_owned(),
        ),
        None => (
            Action::UpdateRestart,
            "the installed config no longer loads, so it cannot be compared".to_owned(),
        ),
        Some(r) if !r.not_applied.is_empty() => (Action::UpdateRestart, r.not_applied.join("; ")),
        Some(r) if r.changes.is_empty() => (
            // Only text a spec does not hold (a comment, the layout): reloading is harmless.
            Action::UpdateReload,
            "only the text of the config changed".to_owned(),
        ),
        Some(r) => (Action::UpdateReload, r.changes.join("; ")),
    };
    step(action, &reason, diff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tend_core::{CommandSpec, InstallSpec, LogSpec, Program, RestartSpec, StopSpec};

    fn spec(name: &str) -> ServiceSpec {
        ServiceSpec {
            name: ServiceName::new(name).unwrap(),
            display_name: name.into(),
            description: None,
            config_path: format!("/srv/set/{name}.toml").into(),
            base_dir: "/srv".into(),
            command: CommandSpec {
                program: Program::Path("/srv/app".into()),
                args: vec![],
            },
            working_dir: "/srv".into(),
            env: vec![],
            restart: RestartSpec::default(),
            stop: StopSpec::default(),
            diagnostics: tend_core::DiagnosticsSpec::default(),
            upgrade: tend_core::UpgradeSpec::default(),
            logs: LogSpec::with_dir(format!("/var/log/tend/{name}").into()),
            service: InstallSpec::default(),
            health: None,
            limits: None,
            notify: None,
            metrics: None,
        }
    }

    fn ours(old: Option<ServiceSpec>, config: bool, unit: Option<bool>, running: bool) -> Found {
        let lines = |b: bool| if b { vec!["+ x".to_owned()] } else { vec![] };
        Found::Ours(Box::new(Installed {
            config_diff: lines(config),
            definition_diff: unit.map(lines),
            old,
            running,
            unfinished: None,
        }))
    }

    #[test]
    fn each_service_gets_its_action() {
        type Edit = fn(&mut ServiceSpec);
        let none: Edit = |_| {};
        let args: Edit = |s| s.command.args.push("-v".into());
        let stop: Edit = |s| s.stop.timeout = std::time::Duration::from_secs(1);
        let start: Edit = |s| s.service.start = StartMode::Manual;
        // (what, old spec edited by, config differs, unit differs, running, want, start)
        type Case = (&'static str, Option<Edit>, bool, Option<bool>, bool, Action);
        let cases: [Case; 11] = [
            (
                "same text, same unit",
                Some(none),
                false,
                Some(false),
                true,
                Action::Unchanged,
            ),
            (
                "same text, unit unknown",
                Some(none),
                false,
                None,
                true,
                Action::Unchanged,
            ),
            (
                "stopped, changed",
                Some(args),
                true,
                Some(false),
                false,
                Action::Update,
            ),
            (
                "stopped, unit changed",
                Some(none),
                false,
                Some(true),
                false,
                Action::Update,
            ),
            (
                "running, args",
                Some(args),
                true,
                Some(false),
                true,
                Action::UpdateReload,
            ),
            (
                "running, stop",
                Some(stop),
                true,
                Some(false),
                true,
                Action::UpdateReload,
            ),
            (
                "running, comment",
                Some(none),
                true,
                Some(false),
                true,
                Action::UpdateReload,
            ),
            (
                "running, [service]",
                Some(start),
                true,
                Some(true),
                true,
                Action::UpdateRestart,
            ),
            (
                "running, [service], unit unknown",
                Some(start),
                true,
                None,
                true,
                Action::UpdateRestart,
            ),
            (
                "running, only the unit",
                Some(none),
                false,
                Some(true),
                true,
                Action::UpdateRestart,
            ),
            (
                "running, old copy broken",
                None,
                true,
                Some(false),
                true,
                Action::UpdateRestart,
            ),
        ];
        for (what, edit, config, unit, running, want) in cases {
            let old = edit.map(|e| {
                let mut s = spec("web");
                e(&mut s);
                s
            });
            let d = Desired {
                spec: spec("web"),
                found: ours(old, config, unit, running),
            };
            let steps = plan(&[d], &[], false);
            assert_eq!(steps.len(), 1, "{what}");
            assert_eq!(steps[0].action, want, "{what}: {}", steps[0].reason);
            assert!(!steps[0].start, "{what}: only new services are started");
            assert_eq!(steps[0].diff.is_empty(), !config, "{what}");
        }
    }

    #[test]
    fn what_the_last_apply_could_not_finish_is_done_now() {
        // (unfinished, running, want)
        let cases = [
            (Then::Start, false, Action::Start),
            (Then::Start, true, Action::Unchanged),
            (Then::Reload, true, Action::UpdateReload),
            (Then::Restart, true, Action::UpdateRestart),
            (Then::Reload, false, Action::Update),
            (Then::Restart, false, Action::Update),
        ];
        for (then, running, want) in cases {
            let Found::Ours(mut i) = ours(Some(spec("web")), false, Some(false), running) else {
                unreachable!()
            };
            i.unfinished = Some(then);
            let steps = plan(
                &[Desired {
                    spec: spec("web"),
                    found: Found::Ours(i),
                }],
                &[],
                false,
            );
            assert_eq!(steps[0].action, want, "{then:?} running={running}");
            assert_eq!(Then::parse(then.word()), Some(then));
        }
        assert_eq!(Then::parse("other"), None);
    }

    #[test]
    fn new_services_start_only_with_an_automatic_start_mode() {
        for (mode, start) in [
            (StartMode::Auto, true),
            (StartMode::DelayedAuto, true),
            (StartMode::Manual, false),
            (StartMode::Disabled, false),
        ] {
            let mut s = spec("web");
            s.service.start = mode;
            let steps = plan(
                &[Desired {
                    spec: s,
                    found: Found::Missing,
                }],
                &[],
                false,
            );
            assert_eq!(steps[0].action, Action::Install);
            assert_eq!(steps[0].start, start, "{mode:?}");
        }
    }

    #[test]
    fn a_foreign_service_is_a_conflict_and_left_alone() {
        let steps = plan(
            &[Desired {
                spec: spec("ssh"),
                found: Found::Foreign("ssh.service was not written by tend".into()),
            }],
            &[],
            true,
        );
        assert_eq!(steps[0].action, Action::Conflict);
        assert!(!steps[0].action.changes());
        assert!(steps[0].reason.contains("not written by tend"));
    }

    #[test]
    fn prune_removes_only_what_tend_installed_and_the_set_lacks() {
        let present = |n: &str, foreign: Option<&str>| Present {
            name: ServiceName::new(n).unwrap(),
            foreign: foreign.map(str::to_owned),
        };
        let desired = [Desired {
            spec: spec("web"),
            found: ours(Some(spec("web")), false, Some(false), true),
        }];
        let installed = [
            present("zeta", None),
            present("web", None),
            present("hand", Some("its unit was not written by tend")),
            present("alpha", None),
        ];
        let names = |steps: &[Step]| {
            steps
                .iter()
                .map(|s| (s.name.to_string(), s.action))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&plan(&desired, &installed, false)),
            [("web".to_owned(), Action::Unchanged)],
            "without --prune nothing else is looked at"
        );
        assert_eq!(
            names(&plan(&desired, &installed, true)),
            [
                ("web".to_owned(), Action::Unchanged),
                ("alpha".to_owned(), Action::Remove),
                ("hand".to_owned(), Action::Conflict),
                ("zeta".to_owned(), Action::Remove),
            ]
        );
    }

    #[test]
    fn the_json_words_are_the_documented_ones() {
        let words: Vec<String> = [
            Action::Install,
            Action::Update,
            Action::UpdateReload,
            Action::UpdateRestart,
            Action::Unchanged,
            Action::Remove,
            Action::Conflict,
            Action::Start,
        ]
        .iter()
        .map(|a| serde_json::to_string(a).unwrap())
        .collect();
        assert_eq!(
            words,
            [
                "\"install\"",
                "\"update\"",
                "\"update-reload\"",
                "\"update-restart\"",
                "\"unchanged\"",
                "\"remove\"",
                "\"conflict\"",
                "\"start\""
            ]
        );
    }
}
