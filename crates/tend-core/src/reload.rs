//! What a reloaded config changes, decided without touching anything.
//!
//! Settings the program itself sees (command, arguments, environment, working directory)
//! take a graceful restart of the program to apply. Restart, stop and log settings, and the
//! watching around the program (`[health]`, `[limits]`, `[notify]`, `[metrics]`), apply live
//! to the running supervisor: the program keeps running. Install-level settings (`[service]`,
//! names shown by the OS, the OS's half of `[diagnostics]`) need `tend install` again and are
//! reported, not applied.

use crate::ServiceSpec;

/// The result of comparing the running spec with a newly loaded one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReloadPlan {
    /// The program must be restarted gracefully for the new settings to apply.
    pub restart_program: bool,
    /// `[logs]` changed (applied live).
    pub logs_changed: bool,
    /// `[restart]` or `[stop]` changed (applied live).
    pub policy_changed: bool,
    /// `[health]` changed (applied live: checks start over with a new start period).
    pub health_changed: bool,
    /// `[limits]` changed (applied live: sampling starts over).
    pub limits_changed: bool,
    /// `[notify]` changed (applied live: alerts already queued still go to the old target).
    pub notify_changed: bool,
    /// `[metrics]` changed (applied live: the listener is bound again).
    pub metrics_changed: bool,
    /// Readable changes, one per line, for the operator.
    pub changes: Vec<String>,
    /// Changes that a reload cannot apply (they need `tend install`).
    pub not_applied: Vec<String>,
}

impl ReloadPlan {
    /// Whether anything changed at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.not_applied.is_empty()
    }
}

/// Why a reload is refused outright.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The service's name is its identity: files, OS service and status hang on it.
    #[error(
        "the name cannot change on reload (`{old}` -> `{new}`); install the new name as a new service"
    )]
    NameChanged {
        /// Running name.
        old: String,
        /// Name in the new config.
        new: String,
    },
}

/// Compares `old` (running) with `new` (just loaded and validated).
pub fn diff(old: &ServiceSpec, new: &ServiceSpec) -> Result<ReloadPlan, ReloadError> {
    if old.name != new.name {
        return Err(ReloadError::NameChanged {
            old: old.name.to_string(),
            new: new.name.to_string(),
        });
    }
    let mut plan = ReloadPlan::default();
    if old.command != new.command {
        plan.restart_program = true;
        plan.changes
            .push("command changed (the program restarts)".into());
    }
    if old.working_dir != new.working_dir {
        plan.restart_program = true;
        plan.changes
            .push("working_dir changed (the program restarts)".into());
    }
    if old.env != new.env {
        plan.restart_program = true;
        plan.changes
            .push("environment changed (the program restarts)".into());
    }
    if old.restart != new.restart {
        plan.policy_changed = true;
        plan.changes.push("[restart] changed (applied live)".into());
    }
    if old.stop != new.stop {
        plan.policy_changed = true;
        plan.changes.push("[stop] changed (applied live)".into());
    }
    if old.logs != new.logs {
        plan.logs_changed = true;
        plan.changes.push("[logs] changed (applied live)".into());
    }
    // The watching around the program: nothing the program sees, so never a restart.
    if old.health != new.health {
        plan.health_changed = true;
        plan.changes.push("[health] changed (applied live)".into());
    }
    if old.limits != new.limits {
        plan.limits_changed = true;
        plan.changes.push("[limits] changed (applied live)".into());
    }
    if old.notify != new.notify {
        plan.notify_changed = true;
        plan.changes.push("[notify] changed (applied live)".into());
    }
    if old.metrics != new.metrics {
        plan.metrics_changed = true;
        plan.changes.push("[metrics] changed (applied live)".into());
    }
    if old.diagnostics != new.diagnostics {
        // GOTRACEBACK is in the program's environment; the OS's dump settings (WER
        // LocalDumps, LimitCORE=) are written by install.
        plan.restart_program = true;
        plan.changes
            .push("[diagnostics] changed (the program restarts)".into());
        plan.not_applied.push(
            "[diagnostics] changed: run `tend install` again for the OS's dump settings".into(),
        );
    }
    if old.service != new.service {
        plan.not_applied
            .push("[service] changed: run `tend install` again to apply it".into());
    }
    if old.display_name != new.display_name || old.description != new.description {
        plan.not_applied
            .push("display_name/description changed: run `tend install` again to apply it".into());
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{HealthSpec, LimitsSpec, MetricsSpec, NotifySpec};
    use crate::{
        CommandSpec, InstallSpec, LogSpec, Program, RestartSpec, ServiceName, StartMode, StopSpec,
    };
    use std::time::Duration;

    fn spec() -> ServiceSpec {
        ServiceSpec {
            name: ServiceName::new("svc").unwrap(),
            display_name: "svc".into(),
            description: None,
            config_path: "/etc/tend/svc.toml".into(),
            base_dir: "/srv".into(),
            command: CommandSpec {
                program: Program::Path("/srv/app".into()),
                args: vec!["--port".into(), "1".into()],
            },
            working_dir: "/srv".into(),
            env: vec![("A".into(), "1".into())],
            restart: RestartSpec::default(),
            stop: StopSpec::default(),
            logs: LogSpec::with_dir("/var/log/tend/svc".into()),
            service: InstallSpec::default(),
            health: None,
            limits: None,
            notify: None,
            metrics: None,
            diagnostics: crate::DiagnosticsSpec::default(),
            upgrade: crate::UpgradeSpec::default(),
        }
    }

    #[test]
    fn each_kind_of_change_is_classified() {
        type Edit = fn(&mut ServiceSpec);
        let cases: [(&str, Edit, bool, bool, bool, usize); 9] = [
            ("nothing", |_| {}, false, false, false, 0),
            (
                "args",
                |s| s.command.args.push("-v".into()),
                true,
                false,
                false,
                0,
            ),
            ("env", |s| s.env[0].1 = "2".into(), true, false, false, 0),
            (
                "working_dir",
                |s| s.working_dir = "/tmp".into(),
                true,
                false,
                false,
                0,
            ),
            (
                "restart",
                |s| s.restart.delay = Duration::from_secs(9),
                false,
                true,
                false,
                0,
            ),
            (
                "stop",
                |s| s.stop.timeout = Duration::from_secs(1),
                false,
                true,
                false,
                0,
            ),
            ("logs", |s| s.logs.max_size = 4096, false, false, true, 0),
            (
                "service",
                |s| s.service.start = StartMode::Manual,
                false,
                false,
                false,
                1,
            ),
            (
                "diagnostics",
                |s| s.diagnostics.dumps = true,
                true,
                false,
                false,
                1,
            ),
        ];
        for (what, edit, restart, policy, logs, not_applied) in cases {
            let old = spec();
            let mut new = spec();
            edit(&mut new);
            let p = diff(&old, &new).unwrap();
            assert_eq!(p.restart_program, restart, "{what}");
            assert_eq!(p.policy_changed, policy, "{what}");
            assert_eq!(p.logs_changed, logs, "{what}");
            assert_eq!(p.not_applied.len(), not_applied, "{what}");
            assert_eq!(p.is_empty(), what == "nothing", "{what}");
        }
    }

    #[test]
    fn watching_changes_apply_live_without_a_restart() {
        type Edit = fn(&mut ServiceSpec);
        type Flag = fn(&ReloadPlan) -> bool;
        let cases: [(&str, Edit, Flag); 6] = [
            (
                "[health] added",
                |s| {
                    s.health = Some(HealthSpec {
                        silence: Some(Duration::from_secs(60)),
                        ..HealthSpec::default()
                    });
                },
                |p| p.health_changed,
            ),
            (
                "[health] removed",
                |s| s.health = None,
                |p| p.health_changed,
            ),
            (
                "[limits]",
                |s| {
                    s.limits = Some(LimitsSpec {
                        memory: Some(1 << 20),
                        ..LimitsSpec::default()
                    });
                },
                |p| p.limits_changed,
            ),
            (
                "[notify]",
                |s| s.notify = Some(NotifySpec::default()),
                |p| p.notify_changed,
            ),
            (
                "[metrics]",
                |s| s.metrics = Some(MetricsSpec::default()),
                |p| p.metrics_changed,
            ),
            (
                "[health] interval",
                |s| {
                    if let Some(h) = &mut s.health {
                        h.interval = Duration::from_secs(1);
                    }
                },
                |p| p.health_changed,
            ),
        ];
        for (what, edit, flag) in cases {
            let mut old = spec();
            old.health = Some(HealthSpec {
                silence: Some(Duration::from_secs(5)),
                ..HealthSpec::default()
            });
            let mut new = old.clone();
            edit(&mut new);
            let p = diff(&old, &new).unwrap();
            assert!(flag(&p), "{what}: {p:?}");
            assert!(!p.restart_program, "{what}");
            assert!(!p.policy_changed && !p.logs_changed, "{what}");
            assert_eq!(p.changes.len(), 1, "{what}: {:?}", p.changes);
            assert!(p.changes[0].ends_with("(applied live)"), "{what}");
        }
    }

    #[test]
    fn name_change_is_refused() {
        let mut new = spec();
        new.name = ServiceName::new("other").unwrap();
        assert!(matches!(
            diff(&spec(), &new),
            Err(ReloadError::NameChanged { .. })
        ));
    }
}
