//! systemd as a [`ServiceManager`](crate::ServiceManager): the hooks of the shared Unix
//! flow ([`UnixManager`]) where systemd differs from launchd.

use tend_core::{ServiceName, ServiceSpec, StartMode};

use super::{Differs, Machine, UnixManager, service_manager};
use crate::manager::{Error, Report};
use crate::reach;
use crate::{Backend, Layout, RenderError, RunError, Step, systemd};

/// systemd (Linux): system units in `/etc/systemd/system`, `--user` units in
/// `~/.config/systemd/user`.
pub struct Systemd<'a> {
    pub(super) m: Machine<'a>,
}

impl<'a> Systemd<'a> {
    /// systemd on `m`.
    #[must_use]
    pub fn new(m: Machine<'a>) -> Self {
        Self { m }
    }
}

service_manager!(Systemd<'_>);

impl UnixManager for Systemd<'_> {
    const BACKEND: Backend = Backend::Systemd;
    const DEFINITION: &'static str = "unit";

    fn m(&self) -> &Machine<'_> {
        &self.m
    }

    fn ask(&self, name: &ServiceName) -> Result<crate::OsStatus, RunError> {
        systemd::status(self.m.runner, name, &self.m.scope)
    }

    fn ask_hint(&self) -> &'static str {
        if self.m.scope.is_user() {
            " (systemctl --user needs your user manager: a login session, not `sudo -u`)"
        } else {
            " (is systemd running?)"
        }
    }

    fn render(
        &self,
        spec: &ServiceSpec,
        text: &str,
        r: &mut Report,
    ) -> Result<(Vec<Step>, String), RenderError> {
        let input = systemd::UnitInput::from_spec(spec, &self.m.tend_exe, self.m.scope.clone());
        r.warnings.extend(systemd::warnings(&input));
        let unit = systemd::render_unit(&input)?;
        Ok((systemd::install(&input, text)?, unit))
    }

    fn host_words_of(&self, name: &ServiceName, since: std::time::SystemTime) -> Vec<String> {
        let argv = systemd::host_words_argv(name, &self.m.scope, since);
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.m.runner.run(&args).map_or_else(
            |_| Vec::new(),
            |out| {
                out.stdout
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned)
                    .collect()
            },
        )
    }

    fn host_program_of(&self, name: &ServiceName) -> Result<Option<std::path::PathBuf>, Error> {
        let unit = self.layout(name).definition;
        Ok(self
            .m
            .read(&unit)?
            .and_then(|text| systemd::exec_start_program(&text)))
    }

    fn reapply_unchanged(&self, _loaded: bool) -> bool {
        true
    }

    fn sandbox(
        &self,
        spec: &ServiceSpec,
        layout: &Layout,
        user: Option<reach::Identity>,
    ) -> reach::Sandbox {
        let writable = vec![layout.state_dir.clone(), layout.log_dir.clone()];
        reach::Sandbox::systemd(
            &self.m.scope,
            &spec.service.account,
            spec.service.hardening,
            user,
            writable,
        )
    }

    fn knows(&self, spec: &ServiceSpec, dep: &str) -> Result<Result<(), String>, Error> {
        let Ok(unit) = systemd::dependency_unit(dep) else {
            return Ok(Ok(())); // rendering already refused it
        };
        let argv = systemd::unit_exists_argv(&unit, &self.m.scope);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.m.runner.run(&argv).map_err(|source| Error::Run {
            what: format!(
                "cannot ask systemd about `{unit}` (depends_on of `{}`)",
                spec.name
            ),
            source: Box::new(source),
        })?;
        Ok(systemd::unit_exists(&out.stdout).then_some(()).ok_or(unit))
    }

    fn starts_on_load(&self, _start: StartMode) -> bool {
        false
    }

    fn update_running(&self, spec: &ServiceSpec, changed: Differs, r: &mut Report) {
        let name = &spec.name;
        if changed.config {
            // ExecReload= sends SIGHUP: tend re-reads its config copy.
            match self
                .m
                .apply("reload", &systemd::reload(name, &self.m.scope))
            {
                Ok(_) => r.say("reloaded: tend re-reads the config (SIGHUP)"),
                Err(e) => r.warn(format!(
                    "cannot reload `{name}`: {e}; restart it to apply: {}",
                    self.m.cmd("restart", name)
                )),
            }
        }
        if changed.definition {
            // The unit (account, timeouts, dependencies) applies only when systemd starts
            // tend again.
            r.say(format!(
                "the unit changed: it applies at the next restart: {}",
                self.m.cmd("restart", name)
            ));
        }
    }

    fn forget(&self) {
        let argv = self.m.daemon_reload();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let _ = self.m.runner.run(&argv);
    }

    fn uninstall_plan(&self, name: &ServiceName, layout: &Layout, known: bool) -> Vec<Step> {
        if known {
            return systemd::uninstall(name, &self.m.scope);
        }
        // systemd does not know the unit (it was never loaded): only files to remove.
        vec![
            Step::RemoveFile {
                path: layout.definition.clone(),
            },
            Step::RemoveFile {
                path: layout.config.clone(),
            },
            Step::Run {
                argv: self.m.daemon_reload(),
                may_fail: true,
            },
        ]
    }

    fn start_plan(&self, name: &ServiceName) -> Vec<Step> {
        systemd::start(name, &self.m.scope)
    }

    fn restart_plan(&self, name: &ServiceName) -> Vec<Step> {
        systemd::restart(name, &self.m.scope)
    }

    fn reload_plan(&self, name: &ServiceName) -> Vec<Step> {
        systemd::reload(name, &self.m.scope)
    }

    fn stop_now(&self, name: &ServiceName, _layout: &Layout) -> Result<(), Error> {
        // systemctl stop waits for tend to exit (at most TimeoutStopSec).
        self.m.apply(
            &format!("cannot stop `{name}`"),
            &systemd::stop(name, &self.m.scope),
        )?;
        Ok(())
    }

    fn running_now(&self, name: &ServiceName, _layout: &Layout) -> Result<crate::OsStatus, Error> {
        // systemctl start returns once tend sent READY=1.
        self.query(name)
    }
}
