//! The Windows Service Control Manager as a [`ServiceManager`]: when to make which SCM
//! call, what to check before anything changes, and what to report.
//!
//! The plan ([`super::plan`]) and the access rules ([`super::acl`]) are pure; this module
//! carries them out through [`ScmApi`] and [`Host`] only, so every sequence below is
//! tested on every OS with [`crate::testing::FakeScm`] (see `tests.rs`).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tend_core::{Account, ServiceName, ServiceSpec};

use super::api::{Config2, Control, ExitCode, Host, Rights, ScmApi, State};
use super::error::ScmError;
use super::plan::{self, Installed, ScmPlan, Setting, SidType, StartType};
use super::{acl, dumps, exit};
use crate::installed::installed_text;
use crate::manager::{
    Access, Changed, Drift, Error, Failure, Install, Preflight, Report, ServiceManager, Status,
    reported,
};
use crate::{Backend, Layout, Scope, SystemContext};

mod takeover;

/// How long `tend start` waits for RUNNING.
const START_WAIT: Duration = Duration::from_secs(60);
/// Between two looks at the SCM.
const POLL: Duration = Duration::from_millis(100);

/// The Windows Service Control Manager: system services.
pub struct Scm<'a, A> {
    api: &'a A,
    host: &'a dyn Host,
    system: SystemContext,
    /// What `install` does about paths the service account will not reach.
    access: Access,
}

impl<'a, A: ScmApi> Scm<'a, A> {
    /// The backend on `api` and `host` (the real ones, or a fake), for the machine
    /// described by `system`.
    #[must_use]
    pub fn new(api: &'a A, host: &'a dyn Host, system: SystemContext, access: Access) -> Self {
        Self {
            api,
            host,
            system,
            access,
        }
    }
}

#[cfg(windows)]
impl Scm<'static, super::real::RealScm> {
    /// The real SCM and machine.
    #[must_use]
    pub fn real(system: SystemContext, access: Access) -> Self {
        Self::new(
            &super::real::RealScm,
            &super::real::RealHost,
            system,
            access,
        )
    }
}

/// An SCM call that failed, with what tend asked of which service. Access denied says
/// how to get the right (its exit code is 4, from the error's code).
fn scm_error(what: impl Into<String>, source: ScmError) -> Error {
    let mut what = what.into();
    if source.access_denied() {
        what.push_str(" (run tend from an elevated prompt: Administrator rights are needed)");
    }
    Error::Scm { what, source }
}

/// The program of an SCM command line: its first word, quoted or not.
fn command_program(command_line: &str) -> Option<PathBuf> {
    let line = command_line.trim_start();
    let word = match line.strip_prefix('"') {
        Some(rest) => rest.split('"').next()?,
        None => line.split_whitespace().next()?,
    };
    (!word.is_empty()).then(|| PathBuf::from(word))
}

/// Whether an installed service's command line is tend's `service <name>`.
fn is_ours(command_line: &str, name: &str) -> bool {
    let s = command_line.to_ascii_lowercase();
    s.contains("tend")
        && s.trim_end()
            .ends_with(&format!(" service {}", name.to_ascii_lowercase()))
}

fn describe_start(plan: &ScmPlan) -> &'static str {
    match (plan.start, plan.delayed) {
        (StartType::Auto, false) => "auto",
        (StartType::Auto, true) => "delayed-auto",
        (StartType::Demand, _) => "manual",
        (StartType::Disabled, _) => "disabled",
    }
}

/// A verb of this backend, reported: `f` says whether there was nothing to do (already
/// so), otherwise the verb made `changed`.
fn verb(
    changed: Changed,
    f: impl FnOnce(&mut Report) -> Result<bool, Error>,
) -> Result<Report, Failure> {
    reported(|r| {
        let already = f(r)?;
        if !already {
            r.changed = changed;
        }
        Ok(())
    })
}

impl<A: ScmApi> Scm<'_, A> {
    fn layout(&self, name: &ServiceName) -> Layout {
        Layout::new(Backend::Scm, &Scope::System(self.system.clone()), name)
    }

    fn connect(&self, create: bool) -> Result<A::Manager, Error> {
        self.api
            .connect(create)
            .map_err(|e| scm_error("cannot connect to the Service Control Manager", e))
    }

    /// Opens an installed service; [`Error::NotInstalled`] when there is none.
    fn open(&self, name: &ServiceName, rights: Rights) -> Result<A::Service, Error> {
        let mgr = self.connect(false)?;
        self.api.open(&mgr, name.as_str(), rights).map_err(|e| {
            if e.no_such_service() {
                Error::NotInstalled(name.to_string())
            } else {
                scm_error(format!("cannot open service `{name}`"), e)
            }
        })
    }

    fn state(&self, svc: &A::Service) -> Option<State> {
        self.api.query_status(svc).map(|s| s.state).ok()
    }

    /// What the SCM says about `name`.
    fn query(&self, name: &ServiceName) -> Result<Status, Error> {
        let mgr = self.connect(false)?;
        let svc = match self.api.open(
            &mgr,
            name.as_str(),
            Rights::QUERY_STATUS | Rights::QUERY_CONFIG,
        ) {
            Ok(s) => s,
            Err(e) if e.no_such_service() => return Ok(Status::not_installed(Backend::Scm)),
            Err(e) => return Err(scm_error(format!("cannot open service `{name}`"), e)),
        };
        let st = self
            .api
            .query_status(&svc)
            .map_err(|e| scm_error(format!("cannot query service `{name}`"), e))?;
        let start = self.api.query_config(&svc).ok().map(|c| {
            match c.start {
                Some(StartType::Auto) if self.api.query_delayed(&svc).ok() == Some(true) => {
                    "delayed-auto"
                }
                Some(StartType::Auto) => "auto",
                Some(StartType::Demand) => "manual",
                Some(StartType::Disabled) => "disabled",
                None => "boot",
            }
            .to_owned()
        });
        Ok(Status {
            installed: true,
            active: st.state != State::Stopped,
            state: st.state.word().to_owned(),
            start,
            pid: st.pid,
            manager: Some(Backend::Scm.name().into()),
            failed: false,
            last_exit: None,
            definition: None,
        })
    }

    /// Fails unless `account` exists (virtual and built-in accounts always do).
    fn check_account(&self, account: &str) -> Result<(), Error> {
        self.host.lookup_account(account).map_err(|e| {
            Error::Invalid(format!(
                "service.account: the account `{account}` does not exist on this machine ({e}); use isolated, system, local-service, network-service or an existing user"
            ))
        })
    }

    /// Refuses an install whose service account could not run tend or the program, enter
    /// the working directory or write a custom log directory ([`Scm::reach`]); with
    /// `--no-access-check` says each problem as a warning and goes on.
    fn check_reach(&self, spec: &ServiceSpec, exe: &Path, r: &mut Report) -> Result<(), Error> {
        if self.access == Access::Skip {
            return Ok(());
        }
        let problems = self.reach(spec, exe);
        if problems.is_empty() {
            return Ok(());
        }
        if self.access == Access::Warn {
            for p in problems {
                r.warn(format!("{p} (installing anyway: --no-access-check)"));
            }
            return Ok(());
        }
        let mut msg = format!(
            "not installing `{}`: its service account could not reach what it needs (nothing was changed); fix that, or install anyway with --no-access-check:",
            spec.name
        );
        for p in problems {
            msg.push_str(&format!("\n  {p}"));
        }
        Err(Error::Invalid(msg))
    }

    /// What `install` checks and `doctor` reports: each path the service account could
    /// not use (`key: why`), as [`acl`] decides from the DACLs. tend's own directories
    /// under ProgramData get their rules at install, so they are not asked about.
    fn reach(&self, spec: &ServiceSpec, exe: &Path) -> Vec<String> {
        use acl::Need;
        let mut paths: Vec<(&str, &Path, Need)> = vec![("tend.exe", exe, Need::Run)];
        if let tend_core::Program::Path(p) = &spec.command.program {
            paths.push(("command[0]", p, Need::Run));
        }
        paths.push(("working_dir", &spec.working_dir, Need::Enter));
        if spec.logs.dir != self.layout(&spec.name).log_dir && self.host.is_dir(&spec.logs.dir) {
            paths.push(("logs.dir", &spec.logs.dir, Need::Write));
        }
        let items: Vec<_> = paths
            .into_iter()
            .map(|(k, p, n)| (k, p, n, self.host.read_dacl(p).map_err(|e| e.to_string())))
            .collect();
        acl::reach_problems(
            spec.name.as_str(),
            &spec.service.account,
            spec.service.hardening,
            &items,
        )
        .into_iter()
        .map(|(key, p)| format!("{key}: {p}"))
        .collect()
    }

    /// `tend doctor`: the account and [`Scm::reach`] as `install` checks them, and the
    /// installed SCM entry and config copy against what `install` would write now.
    fn preflight_with(&self, spec: &ServiceSpec, original: &str) -> Result<Preflight, Error> {
        let name = &spec.name;
        let exe = self
            .host
            .current_exe()
            .map_err(|e| Error::io("cannot find tend's own executable", e))?;
        // The environment only gives the password, which doctor neither needs nor may see
        // (it runs in another shell than the install did).
        let (plan, _) = plan::plan(spec, &exe, |_| Some(String::new()))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let account = match (&spec.service.account, &plan.account) {
            (Account::User { .. }, Some(account)) => Some(
                self.check_account(account)
                    .map_err(|e| crate::error_chain(&e)),
            ),
            _ => None,
        };
        let logon_right = match (&spec.service.account, &plan.account) {
            (Account::User { .. }, Some(account)) => Some(
                self.host
                    .account_rights(account)
                    .map(|r| r.iter().any(|r| r == "SeServiceLogonRight"))
                    .map_err(|e| e.to_string()),
            ),
            _ => None,
        };
        let access = Ok(self.reach(spec, &exe));
        let mgr = self.connect(false)?;
        let drift = match self.api.open(&mgr, name.as_str(), Rights::QUERY_CONFIG) {
            Err(e) if e.no_such_service() => Drift::NotInstalled,
            Err(e) => Drift::Unknown(format!("cannot open service `{name}`: {e}")),
            Ok(svc) => {
                // The SCM entry is compared with what the installed copy plans (what the
                // service runs from); the config given, with the copy.
                let layout = self.layout(name);
                let copy = self.host.read(&layout.config).ok().flatten();
                let installed = copy
                    .as_deref()
                    .and_then(|c| crate::installed::installed_spec(&layout, c));
                let want = match &installed {
                    Some(i) => plan::plan(i, &exe, |_| Some(String::new()))
                        .map(|(p, _)| p)
                        .map_err(|e| Error::Invalid(e.to_string()))?,
                    None => plan.clone(),
                };
                match (copy, self.installed_plan(&svc, &want)) {
                    (_, Err(e)) => Drift::Unknown(crate::error_chain(&e)),
                    (None, _) => Drift::Unknown(format!(
                        "the config copy `{}` is missing",
                        layout.config.display()
                    )),
                    (Some(copy), Ok((old, _))) => Drift::Compared {
                        config: crate::diff_lines(&copy, &installed_text(spec, original)?),
                        definition: plan::changes(&old, &want),
                    },
                }
            }
        };
        Ok(Preflight {
            account,
            logon_right,
            access,
            drift,
        })
    }

    /// What is installed under the name, as a plan (to compare with the new one), and the
    /// `ChangeServiceConfig2` settings the SCM could read back. A service tend did not
    /// install is refused.
    fn installed_plan(
        &self,
        svc: &A::Service,
        plan: &ScmPlan,
    ) -> Result<(ScmPlan, Installed), Error> {
        let name = &plan.name;
        let cfg = self
            .api
            .query_config(svc)
            .map_err(|e| scm_error(format!("cannot read service `{name}`"), e))?;
        if !is_ours(&cfg.command_line, name) {
            return Err(Error::Invalid(format!(
                "a service named `{name}` already exists and is not managed by tend (it runs `{}`); choose another name",
                cfg.command_line
            )));
        }
        let installed = Installed {
            delayed: self.api.query_delayed(svc).ok(),
            sid_type: self.api.query_sid_type(svc).ok(),
            required_privileges: self.api.query_required_privileges(svc).ok(),
        };
        let mut p = plan.clone();
        p.display_name = cfg.display_name;
        p.account = cfg
            .account
            .filter(|a| !a.eq_ignore_ascii_case("LocalSystem"));
        p.dependencies = cfg.dependencies;
        p.start = match cfg.start {
            Some(StartType::Auto) => StartType::Auto,
            Some(StartType::Disabled) => StartType::Disabled,
            _ => StartType::Demand,
        };
        // What cannot be read is shown as unchanged rather than guessed.
        p.delayed = installed.delayed.unwrap_or(plan.delayed);
        p.sid_type = installed.sid_type.unwrap_or(plan.sid_type);
        p.required_privileges = installed
            .required_privileges
            .clone()
            .unwrap_or_else(|| plan.required_privileges.clone());
        Ok((p, installed))
    }

    /// `tend install`. Every check happens before anything changes; if creating the
    /// service fails, the config copy is removed again.
    fn install_with(
        &self,
        spec: &ServiceSpec,
        original: &str,
        leave_running: bool,
        r: &mut Report,
    ) -> Result<(), Error> {
        let name = &spec.name;
        let exe = self
            .host
            .current_exe()
            .map_err(|e| Error::io("cannot find tend's own executable", e))?;
        let (plan, password) = plan::plan(spec, &exe, |v| self.host.env(v))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        if let Account::User { .. } = &spec.service.account
            && let Some(account) = &plan.account
        {
            self.check_account(account)?;
        }
        self.check_reach(spec, &exe, r)?;
        let text = installed_text(spec, original)?;
        let mgr = self.connect(true)?;
        plan::check_dependencies(&plan.dependencies, |dep| {
            !matches!(
                self.api.open(&mgr, dep, Rights::QUERY_STATUS),
                Err(e) if e.no_such_service()
            )
        })
        .map_err(|e| Error::Invalid(e.to_string()))?;
        let rights =
            Rights::QUERY_CONFIG | Rights::CHANGE_CONFIG | Rights::QUERY_STATUS | Rights::START;
        let existing = match self.api.open(&mgr, name.as_str(), rights) {
            Ok(svc) => Some(svc),
            Err(e) if e.no_such_service() => None,
            Err(e) => return Err(scm_error(format!("cannot open service `{name}`"), e)),
        };
        let (old_plan, installed) = match &existing {
            Some(svc) => {
                let (p, i) = self.installed_plan(svc, &plan)?;
                (Some(p), i)
            }
            None => (None, Installed::default()),
        };

        // From here on, things change.
        let layout = self.layout(name);
        let config = layout.config.clone();
        let previous = self.host.read(&config).ok().flatten();
        let dir = layout.config_dir();
        self.host
            .create_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot create `{}`", dir.display()), e))?;
        self.host
            .write(&config, &text)
            .map_err(|e| Error::io(format!("cannot write `{}`", config.display()), e))?;
        let svc = match existing {
            Some(svc) => {
                self.api
                    .change_config(&svc, &plan, password.as_deref())
                    .map_err(|e| scm_error(format!("cannot update service `{name}`"), e))?;
                svc
            }
            None => match self.api.create(&mgr, &plan, password.as_deref(), rights) {
                Ok(svc) => svc,
                Err(e) => {
                    let _ = self.host.remove_file(&config);
                    return Err(scm_error(format!("cannot create service `{name}`"), e));
                }
            },
        };
        self.configure(&svc, &plan, &installed, r);
        if let Err(e) = self.host.register_event_source(name.as_str()) {
            r.warn(format!("cannot register the Event Log source: {e}"));
        }
        for dir in [&layout.state_dir, &spec.logs.dir] {
            if let Err(e) = self.host.create_dir_all(dir) {
                r.warn(format!("cannot create `{}`: {e}", dir.display()));
            }
        }
        self.set_access_rules(spec, &layout, r);
        let before = previous
            .as_deref()
            .and_then(|t| crate::installed::installed_spec(&layout, t));
        self.set_dumps(spec, before.as_ref(), &layout, r);
        match old_plan {
            None => {
                r.changed = Changed::Installed;
                r.say(format!(
                    "installed service `{name}` (start {}, account {})\nconfig copied to `{}`\nstart it with: tend start {name}",
                    describe_start(&plan),
                    plan.account.as_deref().unwrap_or("LocalSystem"),
                    config.display()
                ));
            }
            Some(old) => {
                let scm_changes = plan::changes(&old, &plan);
                let config_changed = previous.as_deref() != Some(text.as_str());
                if scm_changes.is_empty() && !config_changed {
                    r.say(format!("service `{name}` is installed and unchanged"));
                    return Ok(());
                }
                r.changed = Changed::Updated;
                r.say(format!("updated service `{name}`:"));
                for c in &scm_changes {
                    r.say(format!("  {c}"));
                }
                if config_changed {
                    r.say("  config file changed");
                }
                let running = self.state(&svc) == Some(State::Running);
                // With `leave_running`, the caller (`tend apply`) reloads or restarts it by
                // its own rules.
                let running = running && !leave_running;
                if !scm_changes.is_empty() && running {
                    r.say(format!("restart it to apply: tend restart {name}"));
                } else if config_changed && running {
                    // What tend supervises lives in the config: a reload applies it (and
                    // restarts the program gracefully only if its command or env changed).
                    return self.reload_with(name, r);
                }
            }
        }
        Ok(())
    }

    /// The `ChangeServiceConfig2` settings: each one that fails is a warning (Wine lacks
    /// several), not a failed install.
    fn configure(&self, svc: &A::Service, plan: &ScmPlan, installed: &Installed, r: &mut Report) {
        let mut calls = vec![
            (
                "cannot set the description",
                Config2::Description(plan.description.clone()),
            ),
            (
                "cannot set the preshutdown timeout",
                Config2::PreshutdownTimeout(plan.preshutdown_timeout),
            ),
        ];
        for setting in plan::settings(plan, installed) {
            calls.push(match setting {
                Setting::Delayed(d) => ("cannot set delayed auto-start", Config2::Delayed(d)),
                Setting::SidType(t) => (
                    match t {
                        SidType::Restricted => {
                            "cannot make the service SID restricted (hardening = \"strict\"): the service runs less hardened than configured"
                        }
                        _ => "cannot set the service SID type (NT SERVICE accounts need it)",
                    },
                    Config2::SidType(t),
                ),
                Setting::RequiredPrivileges(p) => (
                    if p.is_empty() {
                        "cannot give the service back all of its account's privileges"
                    } else {
                        "cannot drop the privileges the service does not need (hardening = \"strict\"): the service runs less hardened than configured"
                    },
                    Config2::RequiredPrivileges(p),
                ),
            });
        }
        calls.push((
            "cannot set failure actions",
            Config2::FailureActions {
                reset: plan.failure_reset,
                restarts: plan.failure_actions.iter().map(|a| a.delay).collect(),
            },
        ));
        calls.push((
            "cannot apply failure actions to non-crash failures",
            Config2::FailureActionsOnNonCrash(plan.failure_actions_on_non_crash),
        ));
        for (what, setting) in calls {
            if let Err(e) = self.api.configure(svc, &setting) {
                r.warn(format!("{what}: {e}"));
            }
        }
    }

    /// Who may touch what ([`acl`]). Only paths tend owns under ProgramData: a custom
    /// `[logs] dir` keeps the ACL its owner gave it.
    fn set_access_rules(&self, spec: &ServiceSpec, layout: &Layout, r: &mut Report) {
        let grantees = acl::grantees(
            &spec.service.account,
            spec.name.as_str(),
            spec.service.hardening,
        );
        let mut rules = vec![
            (layout.config_dir(), acl::services_dir()),
            (layout.config.clone(), acl::config_file(&grantees)),
            (layout.state_dir.clone(), acl::writable_dir(&grantees)),
        ];
        if spec.logs.dir == layout.log_dir {
            rules.push((spec.logs.dir.clone(), acl::writable_dir(&grantees)));
        }
        for (path, sddl) in rules {
            if let Err(e) = self.host.set_dacl(&path, &sddl) {
                r.warn(format!(
                    "cannot set the access rules of `{}`: {e}",
                    path.display()
                ));
            }
        }
    }

    /// `[diagnostics] dumps`: the LocalDumps keys ([`dumps::steps`]). A failure is a
    /// warning: the service runs, only without dumps.
    fn set_dumps(
        &self,
        spec: &ServiceSpec,
        before: Option<&ServiceSpec>,
        layout: &Layout,
        r: &mut Report,
    ) {
        let owner = |exe: &str| {
            self.host
                .local_dumps_owner(exe)
                .unwrap_or(dumps::Owner::NotTend)
        };
        let before = before.and_then(|b| dumps::wanted(b, &layout.state_dir));
        let after = dumps::wanted(spec, &layout.state_dir);
        for step in dumps::steps(spec.name.as_str(), before.as_ref(), after.as_ref(), owner) {
            match step {
                dumps::Step::Set(d) => {
                    if let Err(e) = self.host.create_dir_all(&d.folder) {
                        r.warn(format!("cannot create `{}`: {e}", d.folder.display()));
                    }
                    match self.host.set_local_dumps(&d, spec.name.as_str()) {
                        Ok(()) => r.say(format!(
                            "crash dumps of `{}` go to `{}` (Windows Error Reporting, newest {})",
                            d.exe,
                            d.folder.display(),
                            d.count
                        )),
                        Err(e) => r.warn(format!(
                            "[diagnostics] dumps: cannot set up Windows Error Reporting: {e}"
                        )),
                    }
                }
                dumps::Step::Remove(exe) => {
                    if let Err(e) = self.host.remove_local_dumps(&exe) {
                        r.warn(format!("{e}"));
                    }
                }
                dumps::Step::Leave(why) => r.warn(why),
            }
        }
    }

    /// How long to wait for a stop: the installed config's stop timeout plus a margin.
    fn stop_budget(&self, name: &ServiceName) -> Duration {
        self.installed_spec(&self.layout(name))
            .map_or(Duration::from_secs(10), |s| s.stop.timeout)
            + Duration::from_secs(30)
    }

    /// The installed config copy, if it loads.
    fn installed_spec(&self, layout: &Layout) -> Option<ServiceSpec> {
        let text = self.host.read(&layout.config).ok()??;
        crate::installed::installed_spec(layout, &text)
    }

    /// Polls until the service is in `want`; its pid then.
    fn wait_state(
        &self,
        svc: &A::Service,
        want: State,
        within: Duration,
    ) -> Result<Option<u32>, Error> {
        let end = self.host.now() + within;
        let mut seen_other = false;
        loop {
            let st = self
                .api
                .query_status(svc)
                .map_err(|e| scm_error("cannot query the service", e))?;
            if st.state == want {
                return Ok(st.pid);
            }
            // Waiting for RUNNING, a STOPPED after START_PENDING means the start failed:
            // say why at once instead of waiting out the budget.
            if want == State::Running && st.state == State::Stopped && seen_other {
                let why = match st.exit {
                    ExitCode::ServiceSpecific(exit::CONFIG) => {
                        "the installed config could not be loaded".to_owned()
                    }
                    ExitCode::ServiceSpecific(exit::GAVE_UP) => {
                        "the program failed and tend gave up".to_owned()
                    }
                    other => format!("exit code {other:?}"),
                };
                return Err(Error::Failed(format!(
                    "the service stopped while starting: {why}; see the Event Log (Application log, source = the service name) and `tend logs`"
                )));
            }
            seen_other |= st.state != State::Stopped;
            if self.host.now() >= end {
                return Err(Error::io(
                    format!(
                        "the service did not reach {} within {}s (now {})",
                        want.word(),
                        within.as_secs(),
                        st.state.word()
                    ),
                    io::Error::from(io::ErrorKind::TimedOut),
                ));
            }
            self.host.sleep(POLL);
        }
    }

    /// `tend start`: start and wait until RUNNING. Whether it already ran.
    fn start_with(&self, name: &ServiceName, r: &mut Report) -> Result<bool, Error> {
        let svc = self.open(name, Rights::START | Rights::QUERY_STATUS)?;
        if self.state(&svc) == Some(State::Running) {
            r.say(format!("service `{name}` is already running"));
            return Ok(true);
        }
        self.api
            .start(&svc)
            .map_err(|e| scm_error(format!("cannot start service `{name}`"), e))?;
        let pid = self.wait_state(&svc, State::Running, START_WAIT)?;
        r.say(format!(
            "service `{name}` is running{}",
            pid.map(|p| format!(" (tend pid {p})")).unwrap_or_default()
        ));
        Ok(false)
    }

    /// `tend stop`: stop and wait until STOPPED. Whether it was already stopped.
    fn stop_with(&self, name: &ServiceName, r: &mut Report) -> Result<bool, Error> {
        let svc = self.open(name, Rights::STOP | Rights::QUERY_STATUS)?;
        if self.state(&svc) == Some(State::Stopped) {
            r.say(format!("service `{name}` is already stopped"));
            return Ok(true);
        }
        // Wine answers RUNNING rather than STOP_PENDING here: the wait below is what counts.
        self.api
            .control(&svc, Control::Stop)
            .map_err(|e| scm_error(format!("cannot stop service `{name}`"), e))?;
        self.wait_state(&svc, State::Stopped, self.stop_budget(name))?;
        r.say(format!("service `{name}` is stopped"));
        Ok(false)
    }

    /// `tend uninstall`: stop, delete the service, its config copy, its state and its
    /// Event Log source. Logs stay.
    fn uninstall_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        let svc = self.open(
            name,
            Rights::STOP | Rights::QUERY_STATUS | Rights::DELETE | Rights::QUERY_CONFIG,
        )?;
        let cfg = self
            .api
            .query_config(&svc)
            .map_err(|e| scm_error(format!("cannot read service `{name}`"), e))?;
        if !is_ours(&cfg.command_line, name.as_str()) {
            return Err(Error::Invalid(format!(
                "service `{name}` is not managed by tend (it runs `{}`); not touching it",
                cfg.command_line
            )));
        }
        if self.state(&svc) != Some(State::Stopped) {
            let _ = self.api.control(&svc, Control::Stop);
            self.wait_state(&svc, State::Stopped, self.stop_budget(name))?;
        }
        self.api
            .delete(&svc)
            .map_err(|e| scm_error(format!("cannot delete service `{name}`"), e))?;
        // The SCM removes a deleted service once its last handle is closed.
        drop(svc);
        let layout = self.layout(name);
        let installed = self.installed_spec(&layout);
        let logs = installed
            .as_ref()
            .map_or_else(|| layout.log_dir.clone(), |s| s.logs.dir.clone());
        let wanted = installed
            .as_ref()
            .and_then(|s| dumps::wanted(s, &layout.state_dir));
        if let Some(exe) = dumps::on_uninstall(name.as_str(), wanted.as_ref(), |exe| {
            self.host
                .local_dumps_owner(exe)
                .unwrap_or(dumps::Owner::NotTend)
        }) && let Err(e) = self.host.remove_local_dumps(&exe)
        {
            r.warn(format!("{e}"));
        }
        match self.host.remove_file(&layout.config) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => r.warn(format!("cannot remove `{}`: {e}", layout.config.display())),
        }
        // tend's own state (the status file) goes with the service; logs stay.
        if let Err(e) = self.host.remove_dir_all(&layout.state_dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            r.warn(format!(
                "cannot remove `{}`: {e}",
                layout.state_dir.display()
            ));
        }
        if let Err(e) = self.host.remove_event_source(name.as_str()) {
            r.warn(format!("{e}"));
        }
        r.uninstalled(name, &logs);
        Ok(())
    }

    /// `tend reload`: SERVICE_CONTROL_PARAMCHANGE, which `tend service` turns into the
    /// same reload as SIGHUP on Unix. The result (applied or rejected) is in `tend status`
    /// and the service's log; the SCM only says the control was delivered.
    fn reload_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        let svc = self.open(name, Rights::PAUSE_CONTINUE | Rights::QUERY_STATUS)?;
        if self.state(&svc) != Some(State::Running) {
            return Err(Error::Invalid(format!(
                "service `{name}` is not running: nothing to reload (start it with `tend start {name}`)"
            )));
        }
        self.api
            .control(&svc, Control::ParamChange)
            .map_err(|e| scm_error(format!("cannot send a reload to service `{name}`"), e))?;
        r.say(format!(
            "reload sent to service `{name}`; `tend status {name}` shows whether it was applied"
        ));
        Ok(())
    }
}

impl<A: ScmApi> ServiceManager for Scm<'_, A> {
    fn backend(&self) -> Backend {
        Backend::Scm
    }

    fn install(&self, i: &Install<'_>) -> Result<Report, Failure> {
        reported(|r| self.install_with(i.spec, i.original, i.leave_running, r))
    }

    fn uninstall(&self, name: &ServiceName) -> Result<Report, Failure> {
        verb(Changed::Uninstalled, |r| {
            self.uninstall_with(name, r).map(|()| false)
        })
    }

    fn start(&self, name: &ServiceName) -> Result<Report, Failure> {
        verb(Changed::Started, |r| self.start_with(name, r))
    }

    fn stop(&self, name: &ServiceName) -> Result<Report, Failure> {
        verb(Changed::Stopped, |r| self.stop_with(name, r))
    }

    fn restart(&self, name: &ServiceName) -> Result<Report, Failure> {
        verb(Changed::Restarted, |r| {
            self.stop_with(name, r)?;
            self.start_with(name, r).map(|_| false)
        })
    }

    fn preflight(&self, i: &Install<'_>) -> Result<Preflight, Error> {
        self.preflight_with(i.spec, i.original)
    }

    fn record_foreign(&self, name: &ServiceName) -> Result<crate::Foreign, Error> {
        self.record_foreign_with(name)
    }

    fn take_over(&self, foreign: &crate::Foreign, into: &ServiceName) -> Result<Report, Failure> {
        reported(|r| self.take_over_with(foreign, into, r))
    }

    fn put_back(&self, foreign: &crate::Foreign, into: &ServiceName) -> Result<Report, Failure> {
        reported(|r| self.put_back_with(foreign, into, r))
    }

    fn reload(&self, name: &ServiceName) -> Result<Report, Failure> {
        verb(Changed::Reloaded, |r| {
            self.reload_with(name, r).map(|()| false)
        })
    }

    fn status(&self, name: &ServiceName) -> Result<Status, Error> {
        self.query(name)
    }

    fn host_program(&self, name: &ServiceName) -> Result<Option<PathBuf>, Error> {
        let svc = self.open(name, Rights::QUERY_CONFIG)?;
        let cfg = self
            .api
            .query_config(&svc)
            .map_err(|e| scm_error(format!("cannot read service `{name}`"), e))?;
        Ok(command_program(&cfg.command_line))
    }

    /// A service of this name whose command line is not tend's `service <name>` (NSSM's,
    /// WinSW's, or one replaced by hand): what `apply --prune` must leave alone.
    fn not_ours(&self, name: &ServiceName) -> Option<String> {
        let mgr = self.connect(false).ok()?;
        let svc = self
            .api
            .open(&mgr, name.as_str(), Rights::QUERY_CONFIG)
            .ok()?;
        let cfg = self.api.query_config(&svc).ok()?;
        (!is_ours(&cfg.command_line, name.as_str())).then(|| {
            format!(
                "service `{name}` is not managed by tend (it runs `{}`)",
                cfg.command_line
            )
        })
    }
}
