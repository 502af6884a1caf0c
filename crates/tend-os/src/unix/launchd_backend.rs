//! launchd as a [`ServiceManager`](crate::ServiceManager): the hooks of the shared Unix
//! flow ([`UnixManager`]) where launchd differs from systemd.

use std::time::Duration;

use tend_core::{ServiceName, ServiceSpec, StartMode};

use super::{Differs, Machine, UnixManager, service_manager};
use crate::manager::{Error, Report};
use crate::reach;
use crate::{Backend, Layout, RenderError, RunError, RunState, Step, launchd};

/// How long `tend start` waits for launchd to report tend running.
const START_WAIT: Duration = Duration::from_secs(15);

/// launchd (macOS): daemons in `/Library/LaunchDaemons`, `--user` agents in
/// `~/Library/LaunchAgents`.
pub struct Launchd<'a> {
    pub(super) m: Machine<'a>,
}

impl<'a> Launchd<'a> {
    /// launchd on `m`.
    #[must_use]
    pub fn new(m: Machine<'a>) -> Self {
        Self { m }
    }
}

service_manager!(Launchd<'_>);

impl UnixManager for Launchd<'_> {
    const BACKEND: Backend = Backend::Launchd;
    const DEFINITION: &'static str = "plist";

    fn m(&self) -> &Machine<'_> {
        &self.m
    }

    fn ask(&self, name: &ServiceName) -> Result<crate::OsStatus, RunError> {
        let plist_exists = self
            .m
            .fs
            .read(&self.layout(name).definition)
            .ok()
            .flatten()
            .is_some();
        launchd::status(self.m.runner, name, &self.m.scope, plist_exists)
    }

    fn ask_hint(&self) -> &'static str {
        if self.m.scope.is_user() {
            " (a --user agent needs a GUI login session)"
        } else {
            ""
        }
    }

    fn render(
        &self,
        spec: &ServiceSpec,
        text: &str,
        r: &mut Report,
    ) -> Result<(Vec<Step>, String), RenderError> {
        let input = launchd::PlistInput::from_spec(spec, &self.m.tend_exe, self.m.scope.clone());
        r.warnings.extend(launchd::warnings(&input));
        if spec.service.hardening == tend_core::Hardening::Strict {
            r.warn(
                "[service] hardening = \"strict\" has no effect on macOS: launchd has no sandbox a plist can switch on (see docs/macos.md)",
            );
        }
        let plist = launchd::render_plist(&input)?;
        Ok((launchd::install(&input, text)?, plist))
    }

    fn reapply_unchanged(&self, loaded: bool) -> bool {
        // Booting a loaded job out and back in would restart it for nothing.
        !loaded
    }

    fn sandbox(
        &self,
        _spec: &ServiceSpec,
        layout: &Layout,
        user: Option<reach::Identity>,
    ) -> reach::Sandbox {
        // launchd has no sandbox: only the account counts.
        reach::Sandbox {
            identity: user.unwrap_or(reach::Identity::Root),
            private_tmp: false,
            protect_home: reach::ProtectHome::No,
            read_only_system: false,
            writable: vec![layout.state_dir.clone(), layout.log_dir.clone()],
            because: String::new(),
        }
    }

    fn knows(&self, _spec: &ServiceSpec, dep: &str) -> Result<Result<(), String>, Error> {
        Ok(launchd::dependency_targets(dep, &self.m.scope)
            .iter()
            .any(|t| self.m.runner.run(&["launchctl", "print", t]).is_ok())
            .then_some(())
            .ok_or_else(|| dep.to_owned()))
    }

    fn starts_on_load(&self, start: StartMode) -> bool {
        matches!(start, StartMode::Auto | StartMode::DelayedAuto)
    }

    fn update_running(&self, spec: &ServiceSpec, _changed: Differs, r: &mut Report) {
        let name = &spec.name;
        match spec.service.start {
            // bootout stopped it; RunAtLoad started it again with the new config.
            StartMode::Auto | StartMode::DelayedAuto => {
                r.say("launchd restarted it with the new config");
            }
            // bootout stopped it and loading does not start a manual job: start it again,
            // so a reinstall never leaves a running service stopped.
            StartMode::Manual => match self
                .m
                .apply("restart", &launchd::start(name, &self.m.scope))
            {
                Ok(_) => r.say("restarted it with the new config"),
                Err(e) => r.warn(format!(
                    "it was stopped to load the new config and could not be started again: {e}; start it with: {}",
                    self.m.cmd("start", name)
                )),
            },
            StartMode::Disabled => r.say("it is now disabled and stopped"),
        }
    }

    fn forget(&self) {
        // launchd keeps no cache of plists to refresh (systemd's daemon-reload): removing the
        // files, which the shared roll-back does, is all.
    }

    fn uninstall_plan(&self, name: &ServiceName, _layout: &Layout, _known: bool) -> Vec<Step> {
        launchd::uninstall(name, &self.m.scope)
    }

    fn start_plan(&self, name: &ServiceName) -> Vec<Step> {
        launchd::start(name, &self.m.scope)
    }

    fn restart_plan(&self, name: &ServiceName) -> Vec<Step> {
        launchd::restart(name, &self.m.scope)
    }

    fn reload_plan(&self, name: &ServiceName) -> Vec<Step> {
        launchd::reload(name, &self.m.scope)
    }

    fn stop_now(&self, name: &ServiceName, layout: &Layout) -> Result<(), Error> {
        // launchctl kill returns at once: wait for tend to be gone.
        self.m.apply(
            &format!("cannot stop `{name}`"),
            &launchd::stop(name, &self.m.scope),
        )?;
        let budget = self.m.stop_budget(layout);
        self.wait_for(name, budget, "stop", |s| !s.active())?;
        Ok(())
    }

    fn running_now(&self, name: &ServiceName, layout: &Layout) -> Result<crate::OsStatus, Error> {
        // launchctl kickstart returns at once: poll until launchd says it runs.
        self.wait_for(name, START_WAIT, "start", |s| s.state == RunState::Running)
            .map_err(|e| match &layout.stdio_log {
                Some(log) => Error::Invalid(format!("{e}; see `{}`", log.display())),
                None => e,
            })
    }
}
