//! The SCM's take-over and put-back of a service another tool registered (NSSM, WinSW,
//! shawl, ...), for `tend import --install --replace`.
//!
//! The foreign service is **repointed**, not deleted and recreated: a take-over under the
//! same name changes only its command line (to tend's `service <name>`, which the install
//! that follows completes with tend's settings), and a put-back writes the recorded
//! command line, display name, start type, dependencies and account back with one
//! `ChangeServiceConfig`, and the delayed start, SID type, required privileges,
//! description, failure actions and preshutdown timeout with `ChangeServiceConfig2`.
//! Deleting would lose what the SCM has no call to read back and recreate: the registry
//! key's subkeys (NSSM keeps its whole configuration in `Parameters`, WinSW and shawl
//! nothing there but others do), the service's security descriptor, its triggers; and a deleted service stays "marked for deletion" while any
//! handle is open (a Services console), so a recreate can fail half-way. Repointing leaves
//! all of that where it is. The description, the failure actions (every action kind, the
//! reboot message, the command, and the non-crash flag) and the preshutdown timeout, which
//! tend's install writes too, go back with `ChangeServiceConfig2` as well; one the SCM
//! would not give at the take-over is said in the report. Not recorded: the error control
//! and the service type, which tend writes as normal and own process, as NSSM, WinSW and
//! shawl register them.

use std::io;
use std::time::Duration;

use tend_core::ServiceName;

use super::super::api::{Config2, Control, RawChange, Rights, ScmApi, State};
use super::super::plan::{SidType, StartType};
use super::{Scm, is_ours, scm_error};
use crate::Backend;
use crate::manager::{Error, Report};
use crate::takeover::{Foreign, ScmSettings};

fn start_word(s: StartType) -> &'static str {
    match s {
        StartType::Auto => "auto",
        StartType::Demand => "demand",
        StartType::Disabled => "disabled",
    }
}

fn start_of(word: &str) -> Option<StartType> {
    match word {
        "auto" => Some(StartType::Auto),
        "demand" => Some(StartType::Demand),
        "disabled" => Some(StartType::Disabled),
        _ => None,
    }
}

fn sid_word(s: SidType) -> &'static str {
    match s {
        SidType::None => "none",
        SidType::Unrestricted => "unrestricted",
        SidType::Restricted => "restricted",
    }
}

fn sid_of(word: &str) -> Option<SidType> {
    match word {
        "none" => Some(SidType::None),
        "unrestricted" => Some(SidType::Unrestricted),
        "restricted" => Some(SidType::Restricted),
        _ => None,
    }
}

impl<A: ScmApi> Scm<'_, A> {
    /// What the foreign service `name` is, read with query rights only.
    pub(super) fn record_foreign_with(&self, name: &ServiceName) -> Result<Foreign, Error> {
        let svc = self.open(name, Rights::QUERY_CONFIG | Rights::QUERY_STATUS)?;
        let cfg = self
            .api
            .query_config(&svc)
            .map_err(|e| scm_error(format!("cannot read service `{name}`"), e))?;
        if is_ours(&cfg.command_line, name.as_str()) {
            return Err(Error::Invalid(format!(
                "`{name}` is already tend's service (it runs `{}`); there is nothing to take over: `tend install` updates it",
                cfg.command_line
            )));
        }
        let st = self
            .api
            .query_status(&svc)
            .map_err(|e| scm_error(format!("cannot query service `{name}`"), e))?;
        let Some(start) = cfg.start else {
            return Err(Error::Invalid(format!(
                "`{name}` is a driver's service (boot or system start): tend does not take it over"
            )));
        };
        Ok(Foreign {
            backend: Backend::Scm.name().to_owned(),
            name: name.to_string(),
            active: st.state != State::Stopped,
            enabled: start == StartType::Auto,
            files: Vec::new(),
            scm: Some(ScmSettings {
                command_line: cfg.command_line,
                display_name: cfg.display_name,
                account: cfg.account,
                dependencies: cfg.dependencies,
                start: Some(start_word(start).to_owned()),
                delayed: self.api.query_delayed(&svc).ok(),
                sid_type: self
                    .api
                    .query_sid_type(&svc)
                    .ok()
                    .map(|t| sid_word(t).to_owned()),
                required_privileges: self.api.query_required_privileges(&svc).ok(),
                description: self.api.query_description(&svc).ok(),
                failure_actions: self.api.query_failure_actions(&svc).ok(),
                failure_actions_on_non_crash: self
                    .api
                    .query_failure_actions_on_non_crash(&svc)
                    .ok(),
                preshutdown_ms: self
                    .api
                    .query_preshutdown(&svc)
                    .ok()
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            }),
        })
    }

    /// Stops the foreign service; under the same name, points it at tend (the install
    /// then writes the rest); for a new name, sets it to start disabled.
    pub(super) fn take_over_with(
        &self,
        foreign: &Foreign,
        into: &ServiceName,
        r: &mut Report,
    ) -> Result<(), Error> {
        let name = self.foreign_name(foreign)?;
        let svc = self.open(
            &name,
            Rights::STOP | Rights::QUERY_STATUS | Rights::CHANGE_CONFIG,
        )?;
        self.stop_handle(&svc, &name)?;
        let (change, said) = if into == &name {
            let exe = self
                .host
                .current_exe()
                .map_err(|e| Error::io("cannot find tend's own executable", e))?;
            (
                RawChange {
                    command_line: Some(format!("\"{}\" service {name}", exe.display())),
                    ..RawChange::default()
                },
                "pointed it at tend",
            )
        } else {
            (
                RawChange {
                    start: Some(StartType::Disabled),
                    ..RawChange::default()
                },
                "set it to start disabled",
            )
        };
        self.api
            .change_raw(&svc, &change)
            .map_err(|e| scm_error(format!("cannot change service `{name}`"), e))?;
        r.say(format!(
            "stopped service `{name}` and {said} (its old settings are recorded)"
        ));
        Ok(())
    }

    /// Removes tend's `into` (or, under the same name, stops it and takes tend's config
    /// copy away) and writes the foreign service's recorded settings back; starts it if
    /// it ran.
    pub(super) fn put_back_with(
        &self,
        foreign: &Foreign,
        into: &ServiceName,
        r: &mut Report,
    ) -> Result<(), Error> {
        let name = self.foreign_name(foreign)?;
        let Some(old) = &foreign.scm else {
            return Err(Error::Invalid(format!(
                "the record of `{name}` has no SCM settings to put back"
            )));
        };
        let change = if into == &name {
            RawChange {
                command_line: Some(old.command_line.clone()),
                display_name: Some(old.display_name.clone()),
                start: old.start.as_deref().and_then(start_of),
                dependencies: Some(old.dependencies.clone()),
                account: old.account.clone(),
            }
        } else {
            let mut gone = Report::default();
            match self.uninstall_with(into, &mut gone) {
                Ok(()) => r.say(format!("removed tend's service `{into}`")),
                Err(Error::NotInstalled(_)) => {}
                Err(e) => return Err(e),
            }
            RawChange {
                start: old.start.as_deref().and_then(start_of),
                ..RawChange::default()
            }
        };
        let svc = self.open(
            &name,
            Rights::STOP
                | Rights::QUERY_STATUS
                | Rights::CHANGE_CONFIG
                | Rights::START
                | Rights::QUERY_CONFIG,
        )?;
        self.stop_handle(&svc, &name)?;
        let mut change = change;
        // No password is given back (tend never has the old one): an account that is still
        // the one recorded is left alone, so a user account keeps the secret the SCM holds.
        if let (Some(want), Ok(now)) = (&change.account, self.api.query_config(&svc))
            && now
                .account
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(want))
        {
            change.account = None;
        }
        self.api
            .change_raw(&svc, &change)
            .map_err(|e| scm_error(format!("cannot put service `{name}` back"), e))?;
        let mut settings = Vec::new();
        if let Some(d) = old.delayed {
            settings.push(Config2::Delayed(d));
        }
        if let Some(t) = old.sid_type.as_deref().and_then(sid_of) {
            settings.push(Config2::SidType(t));
        }
        if let Some(p) = &old.required_privileges {
            settings.push(Config2::RequiredPrivileges(p.clone()));
        }
        // Under the same name tend's install wrote its own description, failure actions
        // and preshutdown timeout over these; under a new name they were never changed.
        if into == &name {
            let recorded = [
                (
                    "description",
                    old.description.clone().map(Config2::Description),
                ),
                (
                    "failure actions",
                    old.failure_actions
                        .clone()
                        .map(Config2::RecordedFailureActions),
                ),
                (
                    "failure actions flag",
                    old.failure_actions_on_non_crash
                        .map(Config2::FailureActionsOnNonCrash),
                ),
                (
                    "preshutdown timeout",
                    old.preshutdown_ms
                        .map(|ms| Config2::PreshutdownTimeout(Duration::from_millis(ms))),
                ),
            ];
            let mut unread = Vec::new();
            for (what, setting) in recorded {
                match setting {
                    Some(s) => settings.push(s),
                    None => unread.push(what),
                }
            }
            if !unread.is_empty() {
                r.warn(format!(
                    "`{name}`'s {} could not be read when it was taken over: what tend's install wrote stays",
                    unread.join(", ")
                ));
            }
        }
        for s in &settings {
            if let Err(e) = self.api.configure(&svc, s) {
                r.warn(format!("cannot put back `{name}`'s {s}: {e}"));
            }
        }
        if into == &name {
            // tend's files of the name go with it; its logs stay (they say why it failed).
            let layout = self.layout(into);
            if let Err(e) = self.host.remove_file(&layout.config)
                && e.kind() != io::ErrorKind::NotFound
            {
                r.warn(format!("cannot remove `{}`: {e}", layout.config.display()));
            }
            if let Err(e) = self.host.remove_event_source(into.as_str()) {
                r.warn(format!("{e}"));
            }
        }
        r.say(format!(
            "put service `{name}` back as it was (runs `{}`)",
            old.command_line
        ));
        if foreign.active {
            self.api
                .start(&svc)
                .map_err(|e| scm_error(format!("cannot start service `{name}`"), e))?;
            let pid = self.wait_state(&svc, State::Running, super::START_WAIT)?;
            r.say(format!(
                "service `{name}` runs again{}",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ));
        }
        Ok(())
    }

    fn foreign_name(&self, foreign: &Foreign) -> Result<ServiceName, Error> {
        if !foreign.is(Backend::Scm) {
            return Err(crate::manager::unsupported(Backend::Scm));
        }
        ServiceName::new(&foreign.name)
            .map_err(|e| Error::Invalid(format!("`{}`: {e}", foreign.name)))
    }

    /// Stops the service behind `svc` and waits for STOPPED (already stopped: nothing).
    fn stop_handle(&self, svc: &A::Service, name: &ServiceName) -> Result<(), Error> {
        if self.state(svc) == Some(State::Stopped) {
            return Ok(());
        }
        self.api
            .control(svc, Control::Stop)
            .map_err(|e| scm_error(format!("cannot stop service `{name}`"), e))?;
        self.wait_state(svc, State::Stopped, self.stop_budget(name))?;
        Ok(())
    }
}
