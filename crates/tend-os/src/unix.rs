//! systemd (Linux) and launchd (macOS) behind `tend install`, `uninstall`, `start`, `stop`,
//! `restart`, `reload` and `status`.
//!
//! [`crate::systemd`] and [`crate::launchd`] build every file and every command line as
//! data; this module decides when to run them: it checks rights and ownership before
//! anything changes, carries the plan out, and reports what happened. [`Unix`] is the
//! [`ServiceManager`] of both (its [`Unix::kind`] says which), and everything that touches
//! the machine goes through a seam ([`Runner`] for `systemctl` / `launchctl`, `Fs` for
//! files), so the tests below exercise both backends on Linux with a
//! [`crate::testing::FakeRunner`] and in-memory files.

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tend_core::{Account, ServiceName, ServiceSpec, StartMode};

use crate::installed::{diff_lines, installed_text};
use crate::manager::{
    Access, Changed, Error, Failure, Install, Report, ServiceManager, Status, reported,
};
use crate::reach::{self, Need};
use crate::{
    Applied, Backend, Files, Layout, OwnershipError, RunState, Runner, Scope, Step, SystemRunner,
    launchd, systemd,
};

/// The Unix service managers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// systemd (Linux).
    Systemd,
    /// launchd (macOS).
    Launchd,
}

impl Kind {
    /// The backend.
    #[must_use]
    pub fn backend(self) -> Backend {
        match self {
            Self::Systemd => Backend::Systemd,
            Self::Launchd => Backend::Launchd,
        }
    }
}

/// The error for a verb on a system service run without root (exit code 4).
#[must_use]
pub fn need_root(verb: &str) -> Error {
    Error::Permission(format!(
        "`tend {verb}` of a system service needs root: run it as root (sudo tend {verb} ...) or use --user for a service of your own"
    ))
}

/// The file operations of a plan, plus reading what is there before it runs.
pub(crate) trait Fs: Files {
    /// The file's text; `None` when it does not exist.
    fn read(&self, path: &Path) -> io::Result<Option<String>>;
}

/// The real files: every write is a temporary file in the same directory, renamed over the
/// target, so systemd or launchd never reads half a file; modes are set explicitly (not
/// left to the umask); owners are changed only where the plan names one.
pub(crate) struct RealFs;

impl Files for RealFs {
    fn create_dir(&self, path: &Path, mode: u32, owner: Option<&str>) -> io::Result<()> {
        std::fs::create_dir_all(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        if let Some(owner) = owner {
            chown_to_user(path, owner)?;
        }
        Ok(())
    }

    fn write_file(&self, path: &Path, contents: &str, mode: u32) -> io::Result<()> {
        crate::write_atomic(path, contents.as_bytes(), Some(mode))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
}

impl Fs for RealFs {
    fn read(&self, path: &Path) -> io::Result<Option<String>> {
        match std::fs::read_to_string(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `chown owner:<owner's primary group> path`; `owner` is a user name or a numeric uid.
fn chown_to_user(path: &Path, owner: &str) -> io::Result<()> {
    let user = match owner.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
        Err(_) => nix::unistd::User::from_name(owner),
    }
    .map_err(io::Error::from)?;
    let (uid, gid) = match (user, owner.parse::<u32>()) {
        (Some(u), _) => (u.uid.as_raw(), Some(u.gid.as_raw())),
        // A numeric uid without a passwd entry is still a valid owner.
        (None, Ok(uid)) => (uid, None),
        (None, Err(_)) => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("there is no user named `{owner}`"),
            ));
        }
    };
    std::os::unix::fs::chown(path, Some(uid), gid)
}

/// systemd or launchd, and everything a verb touches on the machine.
pub struct Unix<'a> {
    pub(crate) backend: Kind,
    pub(crate) scope: Scope,
    pub(crate) runner: &'a dyn Runner,
    pub(crate) fs: &'a dyn Fs,
    /// Whether tend runs as root (system services need it).
    pub(crate) is_root: bool,
    /// The tend binary the OS manager will run.
    pub(crate) tend_exe: PathBuf,
    /// Between two looks at launchd, which answers `kill` and `kickstart` at once.
    pub(crate) poll: Duration,
    /// What `install` does about paths the service will not reach.
    pub(crate) access: Access,
}

impl Unix<'static> {
    /// The real machine: this OS's manager (launchd on macOS, systemd elsewhere) for
    /// `scope`, `systemctl`/`launchctl`, files, the tend binary that runs.
    #[must_use]
    pub fn real(scope: Scope, access: Access) -> Self {
        Unix {
            backend: if cfg!(target_os = "macos") {
                Kind::Launchd
            } else {
                Kind::Systemd
            },
            scope,
            runner: &SystemRunner,
            fs: &RealFs,
            is_root: nix::unistd::geteuid().is_root(),
            // An empty path fails rendering with "not absolute", which says enough.
            tend_exe: std::env::current_exe().unwrap_or_default(),
            poll: Duration::from_millis(100),
            access,
        }
    }
}

/// How long `tend start` waits for launchd to report tend running.
const LAUNCHD_START_WAIT: Duration = Duration::from_secs(15);

impl Unix<'_> {
    /// systemd or launchd.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.backend
    }

    fn layout(&self, name: &ServiceName) -> Layout {
        Layout::new(self.backend.backend(), &self.scope, name)
    }

    fn manager(&self) -> &'static str {
        self.backend.backend().name()
    }

    /// `tend <verb> [--user] <name>`, for messages.
    fn cmd(&self, verb: &str, name: &ServiceName) -> String {
        let flag = if self.scope.is_user() { " --user" } else { "" };
        format!("tend {verb}{flag} {name}")
    }

    fn require_root(&self, verb: &str) -> Result<(), Error> {
        if self.scope.is_user() || self.is_root {
            return Ok(());
        }
        Err(need_root(verb))
    }

    fn read(&self, path: &Path) -> Result<Option<String>, Error> {
        self.fs
            .read(path)
            .map_err(|e| Error::io(format!("cannot read `{}`", path.display()), e))
    }

    /// What the OS manager says about `name`.
    pub(crate) fn query(&self, name: &ServiceName) -> Result<crate::OsStatus, Error> {
        let answer = match self.backend {
            Kind::Systemd => systemd::status(self.runner, name, &self.scope),
            Kind::Launchd => {
                let plist_exists = self
                    .fs
                    .read(&self.layout(name).definition)
                    .ok()
                    .flatten()
                    .is_some();
                launchd::status(self.runner, name, &self.scope, plist_exists)
            }
        };
        answer.map_err(|e| {
            let hint = match (self.backend, self.scope.is_user()) {
                (Kind::Systemd, true) => {
                    " (systemctl --user needs your user manager: a login session, not `sudo -u`)"
                }
                (Kind::Systemd, false) => " (is systemd running?)",
                (Kind::Launchd, true) => " (a --user agent needs a GUI login session)",
                (Kind::Launchd, false) => "",
            };
            Error::Run {
                what: format!("cannot ask {} about `{name}`{hint}", self.manager()),
                source: Box::new(e),
            }
        })
    }

    /// The installed config's `start`, for `tend status` where the OS cannot tell
    /// (launchd has no "enabled" state of its own).
    pub(crate) fn installed_start(&self, name: &ServiceName) -> Option<&'static str> {
        self.installed_spec(&self.layout(name))
            .map(|s| start_word(s.service.start))
    }

    fn apply(&self, what: &str, steps: &[Step]) -> Result<Applied, Error> {
        crate::apply(steps, self.runner, self.fs).map_err(|source| Error::Apply {
            what: what.to_owned(),
            source: Box::new(source),
        })
    }

    /// The installed config, read back through [`Fs`]; `None` if it is missing or does not
    /// load (then callers fall back to defaults).
    fn installed_spec(&self, layout: &Layout) -> Option<ServiceSpec> {
        let text = self.fs.read(&layout.config).ok()??;
        let opts = tend_config::LoadOptions {
            log_dir: tend_config::LogDirDefault::Under(layout.log_dir.parent()?.to_owned()),
        };
        tend_config::parse(&text, &layout.config, &opts)
            .ok()
            .map(|l| l.spec)
    }

    /// The OS status of a service tend installed; [`Error::NotInstalled`] when there is
    /// none, and a refusal when the name belongs to a service tend did not write.
    fn ours(&self, name: &ServiceName) -> Result<(Layout, crate::OsStatus), Error> {
        let layout = self.layout(name);
        let status = self.query(name)?;
        let text = self.read(&layout.definition)?;
        if !status.installed && text.is_none() {
            return Err(Error::NotInstalled(name.to_string()));
        }
        crate::check_ownership(self.backend.backend(), &layout, &status, text.as_deref()).map_err(
            |e| match e {
                OwnershipError::Foreign { path } => Error::Invalid(format!(
                    "service `{name}` was not installed by tend ({}); tend leaves it alone",
                    path.display()
                )),
                e @ OwnershipError::NotGenerated { .. } => {
                    Error::Invalid(format!("service `{name}`: {e}"))
                }
            },
        )?;
        Ok((layout, status))
    }

    /// Why `name` is installed but not by tend (then tend leaves it alone), or `None`.
    pub(crate) fn foreign(&self, name: &ServiceName) -> Option<String> {
        match self.ours(name) {
            Err(Error::Invalid(why)) => Some(why),
            _ => None,
        }
    }

    /// `tend install [--user]`: every check before anything changes; on a first install
    /// that fails half-way, the files written are removed again.
    fn install_with(
        &self,
        spec: &ServiceSpec,
        original: &str,
        r: &mut Report,
    ) -> Result<(), Error> {
        self.require_root("install")?;
        let name = &spec.name;
        let layout = self.layout(name);
        let text = installed_text(spec, original)?;
        let render = |e: crate::RenderError| {
            Error::Invalid(format!(
                "not installing `{name}`: {e} (nothing was changed)"
            ))
        };
        let (steps, definition) = match self.backend {
            Kind::Systemd => {
                let input = systemd::UnitInput::from_spec(spec, &self.tend_exe, self.scope.clone());
                r.warnings.extend(systemd::warnings(&input));
                let unit = systemd::render_unit(&input).map_err(render)?;
                (systemd::install(&input, &text).map_err(render)?, unit)
            }
            Kind::Launchd => {
                let input =
                    launchd::PlistInput::from_spec(spec, &self.tend_exe, self.scope.clone());
                r.warnings.extend(launchd::warnings(&input));
                if spec.service.hardening == tend_core::Hardening::Strict {
                    r.warn(
                        "[service] hardening = \"strict\" has no effect on macOS: launchd has no sandbox a plist can switch on (see docs/macos.md)".to_owned(),
                    );
                }
                let plist = launchd::render_plist(&input).map_err(render)?;
                (launchd::install(&input, &text).map_err(render)?, plist)
            }
        };
        r.warnings
            .extend(env_file_warning(spec, original, self.scope.is_user()));
        self.check_access(spec, original, &layout, r)?;
        self.check_dependencies(spec)?;
        let status = self.query(name)?;
        let old_definition = self.read(&layout.definition)?;
        crate::check_ownership(
            self.backend.backend(),
            &layout,
            &status,
            old_definition.as_deref(),
        )
        .map_err(|e| Error::Invalid(format!("not installing `{name}`: {e}")))?;
        let old_config = self.read(&layout.config)?;
        let was_installed = status.installed || old_definition.is_some();
        let config_diff = diff_lines(old_config.as_deref().unwrap_or(""), &text);
        let definition_diff = diff_lines(old_definition.as_deref().unwrap_or(""), &definition);
        let unchanged = was_installed && config_diff.is_empty() && definition_diff.is_empty();
        let loaded = status.raw_state != "not loaded";

        // From here on, things change. Re-applying an unchanged launchd job would boot it
        // out and back in, which restarts a running service for nothing.
        let skip = unchanged && self.backend == Kind::Launchd && loaded;
        if !skip && let Err(e) = self.apply(&format!("cannot install `{name}`"), &steps) {
            if !was_installed {
                self.roll_back(&layout, old_config.is_some());
            }
            return Err(e);
        }

        let def_word = match self.backend {
            Kind::Systemd => "unit",
            Kind::Launchd => "plist",
        };
        if !was_installed {
            r.changed = Changed::Installed;
            r.say(format!(
                "installed service `{name}` ({}{}, start {}, account {})",
                self.manager(),
                if self.scope.is_user() { " --user" } else { "" },
                start_word(spec.service.start),
                account_word(&spec.service.account),
            ));
            r.say(format!("  config copy: {}", layout.config.display()));
            r.say(format!("  {def_word}: {}", layout.definition.display()));
            r.say(format!("  logs: {}", spec.logs.dir.display()));
            r.say(self.after_first_install(spec));
            return Ok(());
        }
        if unchanged {
            r.say(format!("service `{name}` is installed and unchanged"));
            return Ok(());
        }
        r.changed = Changed::Updated;
        r.say(format!("updated service `{name}`:"));
        for (what, path, diff) in [
            ("config copy", &layout.config, &config_diff),
            (def_word, &layout.definition, &definition_diff),
        ] {
            if !diff.is_empty() {
                r.say(format!("  {what} {}:", path.display()));
                r.lines.extend(diff.iter().map(|l| format!("    {l}")));
            }
        }
        let changed = Differs {
            config: !config_diff.is_empty(),
            definition: !definition_diff.is_empty(),
        };
        self.after_update(spec, &status, changed, r);
        Ok(())
    }

    /// Refuses (or, with [`Access::Warn`], warns about) every path the service's account and
    /// sandbox will not reach: the tend binary, the program, `working_dir`, `env_file` and
    /// the log directory, judged by [`crate::reach::check`] on what root sees now.
    fn check_access(
        &self,
        spec: &ServiceSpec,
        original: &str,
        layout: &Layout,
        r: &mut Report,
    ) -> Result<(), Error> {
        if self.access == Access::Skip {
            return Ok(());
        }
        let name = &spec.name;
        let (sandbox, mut problems) = self.sandbox(spec, layout);
        let mut targets = vec![inspect("the tend binary", Need::Exec, &self.tend_exe)];
        if let tend_core::Program::Path(p) = &spec.command.program {
            targets.push(inspect("command", Need::Exec, p));
        }
        targets.push(inspect("working_dir", Need::Enter, &spec.working_dir));
        if let Some(env) = env_file_path(spec, original) {
            targets.push(inspect("env_file", Need::Read, &env));
        }
        targets.push(inspect("logs.dir", Need::Write, &spec.logs.dir));
        problems.extend(
            reach::check(&sandbox, &targets)
                .iter()
                .map(ToString::to_string),
        );
        if problems.is_empty() {
            return Ok(());
        }
        if self.access == Access::Warn {
            for p in problems {
                r.warn(format!("{p} (installing anyway: --no-access-check)"));
            }
            return Ok(());
        }
        for p in &problems {
            r.problems
                .push(format!("error: {}: {p}", spec.config_path.display()));
        }
        Err(Error::Invalid(format!(
            "not installing `{name}`: the service could not reach what it needs (above); fix that, or install anyway with --no-access-check (nothing was changed)"
        )))
    }

    /// The sandbox the unit (or plist) will give the service, and a problem if its named
    /// account does not exist (systemd would fail the start with 217/USER).
    fn sandbox(&self, spec: &ServiceSpec, layout: &Layout) -> (reach::Sandbox, Vec<String>) {
        let mut problems = Vec::new();
        let user = match (&self.scope, &spec.service.account) {
            (crate::Scope::User(_), _) => Some(current_identity()),
            (crate::Scope::System(_), Account::User { name, .. }) => match lookup_user(name) {
                Some(id) => Some(id),
                None => {
                    problems.push(format!(
                        "[service] account = {name:?}: there is no such user on this machine; create it first (useradd --system {name}) or use account = \"isolated\""
                    ));
                    None
                }
            },
            _ => None,
        };
        let sandbox = match self.backend {
            Kind::Systemd => {
                let writable = vec![layout.state_dir.clone(), layout.log_dir.clone()];
                reach::Sandbox::systemd(
                    &self.scope,
                    &spec.service.account,
                    spec.service.hardening,
                    user,
                    writable,
                )
            }
            // launchd has no sandbox: only the account counts.
            Kind::Launchd => reach::Sandbox {
                identity: user.unwrap_or(reach::Identity::Root),
                private_tmp: false,
                protect_home: reach::ProtectHome::No,
                read_only_system: false,
                writable: vec![layout.state_dir.clone(), layout.log_dir.clone()],
                because: String::new(),
            },
        };
        (sandbox, problems)
    }

    /// Every `depends_on` entry must name a unit (job) the OS manager knows: a typo would
    /// otherwise be installed silently (systemd ignores a `Wants=` of a missing unit).
    fn check_dependencies(&self, spec: &ServiceSpec) -> Result<(), Error> {
        let name = &spec.name;
        let mut missing = Vec::new();
        for dep in &spec.service.depends_on {
            let known = match self.backend {
                Kind::Systemd => {
                    let Ok(unit) = systemd::dependency_unit(dep) else {
                        continue; // rendering already refused it
                    };
                    let argv = systemd::unit_exists_argv(&unit, &self.scope);
                    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                    let out = self.runner.run(&argv).map_err(|source| Error::Run {
                        what: format!("cannot ask systemd about `{unit}` (depends_on of `{name}`)"),
                        source: Box::new(source),
                    })?;
                    systemd::unit_exists(&out.stdout).then_some(()).ok_or(unit)
                }
                Kind::Launchd => launchd::dependency_targets(dep, &self.scope)
                    .iter()
                    .any(|t| self.runner.run(&["launchctl", "print", t]).is_ok())
                    .then_some(())
                    .ok_or_else(|| dep.clone()),
            };
            if let Err(what) = known {
                missing.push((dep.clone(), what));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let list = missing
            .iter()
            .map(|(dep, what)| {
                if dep == what {
                    format!("{dep:?}")
                } else {
                    format!("{dep:?} ({what})")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        Err(Error::Invalid(format!(
            "not installing `{name}`: {}: [service] depends_on names {list}, which {} does not know; install {} first, or fix the name (nothing was changed)",
            spec.config_path.display(),
            self.manager(),
            if missing.len() == 1 { "it" } else { "them" },
        )))
    }

    fn after_first_install(&self, spec: &ServiceSpec) -> String {
        let name = &spec.name;
        match (self.backend, spec.service.start) {
            (_, StartMode::Disabled) => format!(
                "it is disabled (start = \"disabled\"): `{}` refuses it until the config says otherwise",
                self.cmd("start", name)
            ),
            (Kind::Launchd, StartMode::Auto | StartMode::DelayedAuto) => format!(
                "launchd started it (RunAtLoad); see: {}",
                self.cmd("status", name)
            ),
            _ => format!("start it with: {}", self.cmd("start", name)),
        }
    }

    /// After a reinstall that changed something: a running service picks the change up.
    fn after_update(
        &self,
        spec: &ServiceSpec,
        before: &crate::OsStatus,
        changed: Differs,
        r: &mut Report,
    ) {
        let name = &spec.name;
        if !before.active() {
            let starts_on_load = self.backend == Kind::Launchd
                && matches!(spec.service.start, StartMode::Auto | StartMode::DelayedAuto);
            if spec.service.start != StartMode::Disabled && !starts_on_load {
                r.say(format!(
                    "it is not running; start it with: {}",
                    self.cmd("start", name)
                ));
            }
            return;
        }
        match self.backend {
            Kind::Systemd => {
                if changed.config {
                    // ExecReload= sends SIGHUP: tend re-reads its config copy.
                    match self.apply("reload", &systemd::reload(name, &self.scope)) {
                        Ok(_) => r.say("reloaded: tend re-reads the config (SIGHUP)".to_owned()),
                        Err(e) => r.warn(format!(
                            "cannot reload `{name}`: {e}; restart it to apply: {}",
                            self.cmd("restart", name)
                        )),
                    }
                }
                if changed.definition {
                    // The unit (account, timeouts, dependencies) applies only when systemd
                    // starts tend again.
                    r.say(format!(
                        "the unit changed: it applies at the next restart: {}",
                        self.cmd("restart", name)
                    ));
                }
            }
            Kind::Launchd => match spec.service.start {
                // bootout stopped it; RunAtLoad started it again with the new config.
                StartMode::Auto | StartMode::DelayedAuto => {
                    r.say("launchd restarted it with the new config".to_owned());
                }
                // bootout stopped it and loading does not start a manual job: start it
                // again, so a reinstall never leaves a running service stopped.
                StartMode::Manual => {
                    match self.apply("restart", &launchd::start(name, &self.scope)) {
                        Ok(_) => r.say("restarted it with the new config".to_owned()),
                        Err(e) => r.warn(format!(
                            "it was stopped to load the new config and could not be started again: {e}; start it with: {}",
                            self.cmd("start", name)
                        )),
                    }
                }
                StartMode::Disabled => r.say("it is now disabled and stopped".to_owned()),
            },
        }
    }

    /// Removes what a failed first install wrote (best effort: the error being reported
    /// matters more).
    fn roll_back(&self, layout: &Layout, config_existed: bool) {
        let _ = self.fs.remove_file(&layout.definition);
        if !config_existed {
            let _ = self.fs.remove_file(&layout.config);
        }
        if self.backend == Kind::Systemd {
            let mut argv = vec!["systemctl"];
            if self.scope.is_user() {
                argv.push("--user");
            }
            argv.push("daemon-reload");
            let _ = self.runner.run(&argv);
        }
    }

    /// `tend uninstall [--user]`: stop, remove the definition and the config copy. Logs
    /// and state stay.
    fn uninstall_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        self.require_root("uninstall")?;
        let layout = self.layout(name);
        let status = self.query(name)?;
        let definition = self.read(&layout.definition)?;
        let config = self.read(&layout.config)?;
        if !status.installed && definition.is_none() {
            if config.is_some() {
                // Only the config copy is left (an earlier uninstall was interrupted).
                self.apply(
                    &format!("cannot uninstall `{name}`"),
                    &[Step::RemoveFile {
                        path: layout.config.clone(),
                    }],
                )?;
                r.changed = Changed::Uninstalled;
                r.say(format!(
                    "removed the leftover config copy `{}`",
                    layout.config.display()
                ));
                return Ok(());
            }
            return Err(Error::NotInstalled(name.to_string()));
        }
        let (layout, status) = self.ours(name)?;
        let logs = self
            .installed_spec(&layout)
            .map_or_else(|| layout.log_dir.clone(), |s| s.logs.dir);
        let steps = match (self.backend, status.installed) {
            (Kind::Systemd, true) => systemd::uninstall(name, &self.scope),
            // systemd does not know the unit (it was never loaded): only files to remove.
            (Kind::Systemd, false) => {
                let mut argv = vec!["systemctl".to_owned()];
                if self.scope.is_user() {
                    argv.push("--user".to_owned());
                }
                argv.push("daemon-reload".to_owned());
                vec![
                    Step::RemoveFile {
                        path: layout.definition.clone(),
                    },
                    Step::RemoveFile {
                        path: layout.config.clone(),
                    },
                    Step::Run {
                        argv,
                        may_fail: true,
                    },
                ]
            }
            (Kind::Launchd, _) => launchd::uninstall(name, &self.scope),
        };
        self.apply(&format!("cannot uninstall `{name}`"), &steps)?;
        r.changed = Changed::Uninstalled;
        r.say(format!(
            "uninstalled service `{name}`; its logs remain in `{}`",
            logs.display()
        ));
        Ok(())
    }

    /// Refuses to start a service whose installed config says `start = "disabled"`, with
    /// a clearer message than the OS manager's.
    fn refuse_disabled(&self, layout: &Layout, name: &ServiceName) -> Result<(), Error> {
        if self
            .installed_spec(layout)
            .is_some_and(|s| s.service.start == StartMode::Disabled)
        {
            return Err(Error::Invalid(format!(
                "service `{name}` is disabled (start = \"disabled\"): set another start mode in its config and run `tend install` again"
            )));
        }
        Ok(())
    }

    /// `tend start [--user]`: returns once tend runs (systemd: once it sent READY=1).
    fn start_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        self.require_root("start")?;
        let (layout, status) = self.ours(name)?;
        // Waiting out RestartSec= after tend failed is not running: start it now.
        if status.active() && status.state != RunState::Restarting {
            r.say(format!("service `{name}` is already running"));
            return Ok(());
        }
        self.refuse_disabled(&layout, name)?;
        let plan = match self.backend {
            Kind::Systemd => systemd::start(name, &self.scope),
            Kind::Launchd => launchd::start(name, &self.scope),
        };
        self.until_running(name, &layout, "start", &plan, r)
    }

    /// `tend stop [--user]`: returns once tend has exited.
    fn stop_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        self.require_root("stop")?;
        let (layout, status) = self.ours(name)?;
        if !status.active() {
            r.say(format!("service `{name}` is already stopped"));
            return Ok(());
        }
        let what = format!("cannot stop `{name}`");
        match self.backend {
            // systemctl stop waits for tend to exit (at most TimeoutStopSec).
            Kind::Systemd => {
                self.apply(&what, &systemd::stop(name, &self.scope))?;
            }
            // launchctl kill returns at once: wait for tend to be gone.
            Kind::Launchd => {
                self.apply(&what, &launchd::stop(name, &self.scope))?;
                let budget = self.stop_budget(&layout);
                self.wait_for(name, budget, "stop", |s| !s.active())?;
            }
        }
        r.changed = Changed::Stopped;
        r.say(format!("service `{name}` is stopped"));
        Ok(())
    }

    /// `tend restart [--user]`.
    fn restart_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        self.require_root("restart")?;
        let (layout, _) = self.ours(name)?;
        self.refuse_disabled(&layout, name)?;
        let plan = match self.backend {
            Kind::Systemd => systemd::restart(name, &self.scope),
            Kind::Launchd => launchd::restart(name, &self.scope),
        };
        self.until_running(name, &layout, "restart", &plan, r)
    }

    /// `tend reload [--user]`: SIGHUP to tend, which re-reads its config copy.
    fn reload_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        self.require_root("reload")?;
        let (_, status) = self.ours(name)?;
        if !status.active() {
            return Err(Error::Invalid(format!(
                "service `{name}` is not running, so there is nothing to reload; start it with: {}",
                self.cmd("start", name)
            )));
        }
        let steps = match self.backend {
            Kind::Systemd => systemd::reload(name, &self.scope),
            Kind::Launchd => launchd::reload(name, &self.scope),
        };
        self.apply(&format!("cannot reload `{name}`"), &steps)?;
        r.changed = Changed::Reloaded;
        r.say(format!(
            "asked `{name}` to reload: tend re-reads its config (see: {})",
            self.cmd("status", name)
        ));
        Ok(())
    }

    /// The installed config's stop timeout plus the OS manager's margin and a little more.
    fn stop_budget(&self, layout: &Layout) -> Duration {
        self.installed_spec(layout)
            .map_or(Duration::from_secs(10), |s| s.stop.timeout)
            + crate::STOP_MARGIN
            + Duration::from_secs(5)
    }

    /// Carries out a plan that (re)starts tend and reports it running. `systemctl` returns
    /// once tend sent READY=1; `launchctl` returns at once, so launchd is polled.
    fn until_running(
        &self,
        name: &ServiceName,
        layout: &Layout,
        verb: &str,
        plan: &[crate::Step],
        r: &mut Report,
    ) -> Result<(), Error> {
        self.check_installed_config(name, layout, r)?;
        let began = std::time::SystemTime::now();
        self.apply(&format!("cannot {verb} `{name}`"), plan)
            .map_err(|e| self.with_tends_reason(name, layout, began, e))?;
        let now = match self.backend {
            Kind::Systemd => self.query(name)?,
            Kind::Launchd => self.wait_running(name, layout)?,
        };
        r.changed = if verb == "restart" {
            Changed::Restarted
        } else {
            Changed::Started
        };
        r.say(running_line(name, &now));
        Ok(())
    }

    /// tend in the service would exit with code 2 on an installed config that no longer
    /// loads (a file it names was removed, tend was upgraded): say so with tend's own
    /// words (file, line, key, fix) instead of the OS manager's "job failed".
    fn check_installed_config(
        &self,
        name: &ServiceName,
        layout: &Layout,
        r: &mut Report,
    ) -> Result<(), Error> {
        let Some(text) = self.read(&layout.config)? else {
            return Err(Error::Invalid(format!(
                "service `{name}` has no config copy at `{}`: run `tend install` with its config again",
                layout.config.display()
            )));
        };
        let Some(logs) = layout.log_dir.parent() else {
            return Ok(());
        };
        let opts = tend_config::LoadOptions {
            log_dir: tend_config::LogDirDefault::Under(logs.to_owned()),
        };
        match tend_config::parse(&text, &layout.config, &opts) {
            Ok(_) => Ok(()),
            Err(e) => {
                if let tend_config::ConfigError::Invalid { path, problems } = &e {
                    r.problems
                        .extend(problems.iter().map(|p| p.display_in(path).to_string()));
                }
                Err(Error::Invalid(format!(
                    "not starting `{name}`: its installed config `{}` is invalid (above); fix what it names, or fix the config and run `tend install` again",
                    layout.config.display()
                )))
            }
        }
    }

    /// A failed start with what tend itself wrote into its status file during this start
    /// (a config it could not load as the service's account, say), not only the OS
    /// manager's generic failure.
    fn with_tends_reason(
        &self,
        name: &ServiceName,
        layout: &Layout,
        began: std::time::SystemTime,
        e: Error,
    ) -> Error {
        let Some(snap) = crate::supervisor::read(&layout.status_file(name)) else {
            return e;
        };
        // rfc3339 has whole milliseconds: a snapshot of this start is not older than a
        // second before it began.
        let written_now = crate::supervisor::since(&snap.updated_at).is_some_and(|ago| {
            began
                .elapsed()
                .is_ok_and(|since_began| ago <= since_began + Duration::from_secs(1))
        });
        match snap.failed_reason {
            Some(why) if written_now && snap.state == "failed" => {
                Error::Invalid(format!("{}; tend says: {why}", crate::error_chain(&e)))
            }
            _ => e,
        }
    }

    fn wait_running(&self, name: &ServiceName, layout: &Layout) -> Result<crate::OsStatus, Error> {
        self.wait_for(name, LAUNCHD_START_WAIT, "start", |s| {
            s.state == RunState::Running
        })
        .map_err(|e| match &layout.stdio_log {
            Some(log) => Error::Invalid(format!("{e}; see `{}`", log.display())),
            None => e,
        })
    }

    /// Polls the OS manager until `done` holds or `within` passes.
    fn wait_for(
        &self,
        name: &ServiceName,
        within: Duration,
        verb: &str,
        done: impl Fn(&crate::OsStatus) -> bool,
    ) -> Result<crate::OsStatus, Error> {
        let end = Instant::now() + within;
        loop {
            let s = self.query(name)?;
            if done(&s) {
                return Ok(s);
            }
            if Instant::now() >= end {
                let exit = s
                    .last_exit
                    .map(|c| format!(", last exit code {c}"))
                    .unwrap_or_default();
                return Err(Error::io(
                    format!(
                        "`{name}` did not {verb} within {}s ({} says: {}{exit})",
                        within.as_secs(),
                        self.manager(),
                        s.raw_state
                    ),
                    io::Error::from(io::ErrorKind::TimedOut),
                ));
            }
            std::thread::sleep(self.poll);
        }
    }
}

impl ServiceManager for Unix<'_> {
    fn backend(&self) -> Backend {
        self.backend.backend()
    }

    fn install(&self, i: &Install<'_>) -> Result<Report, Failure> {
        reported(|r| self.install_with(i.spec, i.original, r))
    }

    fn uninstall(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| self.uninstall_with(name, r))
    }

    fn start(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| self.start_with(name, r))
    }

    fn stop(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| self.stop_with(name, r))
    }

    fn restart(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| self.restart_with(name, r))
    }

    fn reload(&self, name: &ServiceName) -> Result<Report, Failure> {
        reported(|r| self.reload_with(name, r))
    }

    /// The OS's view in the common shape; where launchd cannot say whether the service
    /// starts at boot, the installed config's `start` says it.
    fn status(&self, name: &ServiceName) -> Result<Status, Error> {
        let s = self.query(name)?;
        let mut status = common_status(&s, self.backend.backend());
        if status.start.is_none() && s.installed {
            status.start = self.installed_start(name).map(str::to_owned);
        }
        Ok(status)
    }

    fn not_ours(&self, name: &ServiceName) -> Option<String> {
        self.foreign(name)
    }
}

/// systemd's words, with what it knows about its own restarts of tend when it is in a
/// restart loop (`activating (auto-restart)`): how many, and how the last run ended.
fn unix_state(s: &crate::OsStatus) -> String {
    if s.state != RunState::Restarting {
        return s.raw_state.clone();
    }
    let how = match (s.last_exit, s.last_signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => s.result.clone().unwrap_or_else(|| "unknown".to_owned()),
    };
    let times = s
        .restarts
        .map(|n| format!(", restarted {n} time{}", if n == 1 { "" } else { "s" }))
        .unwrap_or_default();
    format!(
        "{}: tend failed ({how}) and systemd starts it again{times}",
        s.raw_state
    )
}

fn common_status(s: &crate::OsStatus, backend: Backend) -> Status {
    Status {
        installed: s.installed,
        active: s.active(),
        state: unix_state(s),
        start: s
            .enabled
            .map(|e| if e { "enabled" } else { "disabled" }.to_owned()),
        pid: s.pid,
        manager: Some(backend.name().to_owned()),
        failed: s.state == RunState::Failed,
        last_exit: s.last_exit,
        definition: s.definition.clone(),
    }
}

/// What a reinstall changed.
#[derive(Debug, Clone, Copy)]
struct Differs {
    config: bool,
    definition: bool,
}

fn running_line(name: &ServiceName, s: &crate::OsStatus) -> String {
    match s.pid {
        Some(pid) => format!("service `{name}` is running (tend pid {pid})"),
        None => format!("service `{name}` is {}", s.raw_state),
    }
}

fn start_word(s: StartMode) -> &'static str {
    StartMode::ALL
        .iter()
        .find(|(m, _)| *m == s)
        .map_or("auto", |(_, w)| w)
}

fn account_word(a: &Account) -> String {
    match a {
        Account::Isolated => "isolated".to_owned(),
        Account::System => "system".to_owned(),
        Account::LocalService => "local-service".to_owned(),
        Account::NetworkService => "network-service".to_owned(),
        Account::User { name, .. } => name.clone(),
    }
}

/// What root sees of `path`: each component of its canonical form (symlinks followed) from
/// `/` down, as far as it exists.
fn inspect(key: &str, need: Need, path: &Path) -> reach::Target {
    use std::os::unix::fs::MetadataExt as _;
    let (real, exists) = match std::fs::canonicalize(path) {
        Ok(p) => (p, true),
        Err(_) => (path.to_owned(), false),
    };
    let mut chain = Vec::new();
    let mut acc = PathBuf::new();
    for c in real.components() {
        acc.push(c);
        let Ok(m) = std::fs::metadata(&acc) else {
            break;
        };
        let kind = if m.is_dir() {
            reach::Kind::Dir
        } else if m.is_file() {
            reach::Kind::File
        } else {
            reach::Kind::Other
        };
        chain.push(reach::Entry {
            path: acc.clone(),
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        });
    }
    reach::Target {
        key: key.to_owned(),
        path: path.to_owned(),
        need,
        chain,
        exists,
    }
}

/// The ids of user `name` (a name or a numeric uid), with its supplementary groups.
fn lookup_user(name: &str) -> Option<reach::Identity> {
    let user = match name.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
        Err(_) => nix::unistd::User::from_name(name),
    }
    .ok()??;
    let groups = std::ffi::CString::new(user.name.clone())
        .ok()
        .and_then(|n| nix::unistd::getgrouplist(&n, user.gid).ok())
        .unwrap_or_default();
    Some(reach::Identity::User {
        label: format!("user `{}`", user.name),
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups: groups.iter().map(|g| g.as_raw()).collect(),
    })
}

/// The user running tend (a `--user` service runs as them).
fn current_identity() -> reach::Identity {
    reach::Identity::User {
        label: "you".to_owned(),
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        groups: nix::unistd::getgroups()
            .unwrap_or_default()
            .iter()
            .map(|g| g.as_raw())
            .collect(),
    }
}

/// The config's `env_file`, resolved as the service will (against `base_dir`).
fn env_file_path(spec: &ServiceSpec, original: &str) -> Option<PathBuf> {
    let table: toml::Table = toml::from_str(original).ok()?;
    let rel = table.get("env_file")?.as_str()?;
    Some(spec.base_dir.join(rel))
}

/// Secrets belong in `env_file`, which stays where the operator keeps it (tend reads it
/// through `base_dir` when the service starts; it is not copied, so there is one copy of
/// each secret). Warns when other users can read it. (A file the service's account cannot
/// read at all is [`Unix::check_access`]'s refusal.)
fn env_file_warning(spec: &ServiceSpec, original: &str, user_scope: bool) -> Option<String> {
    let path = env_file_path(spec, original)?;
    let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o777;
    // A dynamic user reads only world-readable files: nothing to warn about there.
    let isolated_system = !user_scope && spec.service.account == Account::Isolated;
    (!isolated_system && mode & 0o077 != 0).then(|| {
        format!(
            "env_file `{}` (mode {mode:04o}) can be read by other users; secrets belong in a file only the service's account can read: chmod 600 it",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Mutex;

    use crate::testing::{FakeRunner, MemFiles, Reply};
    use crate::{RunError, RunOutput, UserContext};

    use super::*;

    /// In-memory files, readable.
    #[derive(Default)]
    struct MemFs(MemFiles);

    impl Files for MemFs {
        fn create_dir(&self, path: &Path, mode: u32, owner: Option<&str>) -> io::Result<()> {
            self.0.create_dir(path, mode, owner)
        }
        fn write_file(&self, path: &Path, contents: &str, mode: u32) -> io::Result<()> {
            self.0.write_file(path, contents, mode)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            self.0.remove_file(path)
        }
    }

    impl Fs for MemFs {
        fn read(&self, path: &Path) -> io::Result<Option<String>> {
            Ok(self.0.file(path).map(|(text, _)| text))
        }
    }

    /// A runner whose answer to an argv can change from call to call (launchd is polled):
    /// each argv answers from its queue, repeating the last reply; anything else as
    /// [`FakeRunner`] (success, empty output).
    #[derive(Default)]
    struct Scripted {
        inner: FakeRunner,
        queues: Mutex<BTreeMap<Vec<String>, VecDeque<Reply>>>,
    }

    impl Scripted {
        fn then(&self, argv: &[&str], replies: &[Reply]) {
            let key = argv.iter().map(|s| (*s).to_owned()).collect();
            self.queues
                .lock()
                .unwrap()
                .insert(key, replies.iter().cloned().collect());
        }
        fn calls(&self) -> Vec<String> {
            self.inner.calls().iter().map(|c| c.join(" ")).collect()
        }
    }

    impl Runner for Scripted {
        fn run(&self, argv: &[&str]) -> Result<RunOutput, RunError> {
            let key: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
            let next = {
                let mut q = self.queues.lock().unwrap();
                q.get_mut(&key).and_then(|q| {
                    if q.len() > 1 {
                        q.pop_front()
                    } else {
                        q.front().cloned()
                    }
                })
            };
            if let Some(reply) = next {
                self.inner.reply(argv, reply);
            }
            self.inner.run(argv)
        }
    }

    const SHOW: &str = "systemctl show web.service --property=LoadState,ActiveState,SubState,UnitFileState,MainPID,ExecMainCode,ExecMainStatus,FragmentPath,NRestarts,Result --no-pager";

    fn argv(s: &str) -> Vec<&str> {
        s.split(' ').collect()
    }

    fn show(runner: &Scripted, replies: &[&str]) {
        let r: Vec<Reply> = replies.iter().map(|s| Reply::ok(s)).collect();
        runner.then(&argv(SHOW), &r);
    }

    const NOT_FOUND: &str = "LoadState=not-found\nActiveState=inactive\n";
    const ACTIVE: &str = "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nMainPID=4242\nFragmentPath=/etc/systemd/system/web.service\n";
    const INACTIVE: &str = "LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=enabled\nMainPID=0\nFragmentPath=/etc/systemd/system/web.service\n";

    fn unix<'a>(
        backend: Kind,
        scope: crate::Scope,
        runner: &'a Scripted,
        fs: &'a MemFs,
    ) -> Unix<'a> {
        Unix {
            backend,
            scope,
            runner,
            fs,
            is_root: true,
            tend_exe: "/usr/local/bin/tend".into(),
            poll: Duration::from_millis(1),
            access: Access::Skip,
        }
    }

    #[test]
    fn start_refuses_an_installed_config_that_no_longer_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(dir.path(), "");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        u.install_with(&spec, &text, &mut Report::default())
            .unwrap();
        // The copy breaks (here: a key tend does not know; in life, an env_file removed).
        fs.write_file(
            Path::new("/etc/tend/web.toml"),
            "name = \"web\"\ncommand = [\"/bin/true\"]\nrestart = 3\n",
            0o644,
        )
        .unwrap();
        let runner = Scripted::default();
        show(&runner, &[INACTIVE]);
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let e = u
            .start_with(&spec.name, &mut Report::default())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("its installed config `/etc/tend/web.toml` is invalid"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
        assert_eq!(runner.calls(), [SHOW], "systemctl start is not even tried");
        let e = u
            .restart_with(&spec.name, &mut Report::default())
            .unwrap_err();
        assert!(e.to_string().contains("is invalid"), "{e}");
    }

    #[test]
    fn depends_on_must_name_units_systemd_knows() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(
            dir.path(),
            "[service]\ndepends_on = [\"postgresql\", \"network-online.target\"]\n",
        );
        let exists = |unit: &str| format!("systemctl show {unit} --property=LoadState --value");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        runner.then(
            &argv(&exists("postgresql.service")),
            &[Reply::ok("not-found\n")],
        );
        runner.then(
            &argv(&exists("network-online.target")),
            &[Reply::ok("loaded\n")],
        );
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let e = u
            .install_with(&spec, &text, &mut Report::default())
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(
                "depends_on names \"postgresql\" (postgresql.service), which systemd does not know"
            ),
            "{msg}"
        );
        assert!(msg.contains("nothing was changed"), "{msg}");
        assert_eq!(e.exit_code(), 2);
        assert!(fs.0.file("/etc/tend/web.toml").is_none());
        assert!(fs.0.file("/etc/systemd/system/web.service").is_none());
        assert!(!runner.calls().iter().any(|c| c.contains("daemon-reload")));

        // Once it exists, the same config installs.
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        runner.then(
            &argv(&exists("postgresql.service")),
            &[Reply::ok("loaded\n")],
        );
        runner.then(
            &argv(&exists("network-online.target")),
            &[Reply::ok("loaded\n")],
        );
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        u.install_with(&spec, &text, &mut Report::default())
            .unwrap();
    }

    #[test]
    fn depends_on_must_name_jobs_launchd_knows() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(
            dir.path(),
            "[service]\naccount = \"system\"\ndepends_on = [\"redis\", \"com.example.db\"]\n",
        );
        let (runner, fs) = (Scripted::default(), MemFs::default());
        let gone = [Reply::exit(113, "Could not find service")];
        runner.then(&["launchctl", "print", "system/dev.tend.web"], &gone);
        runner.then(&["launchctl", "print", "system/redis"], &gone);
        runner.then(&["launchctl", "print", "system/dev.tend.redis"], &gone);
        runner.then(
            &["launchctl", "print", "system/com.example.db"],
            &[Reply::ok("state = running\n")],
        );
        let u = unix(Kind::Launchd, crate::Scope::system(), &runner, &fs);
        let e = u
            .install_with(&spec, &text, &mut Report::default())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("depends_on names \"redis\", which launchd does not know"),
            "{e}"
        );
        assert!(fs.0.file("/etc/tend/web.toml").is_none());
    }

    #[test]
    fn install_refuses_what_the_service_cannot_reach() {
        // The program in /tmp: an isolated unit gets a private /tmp, where it is not.
        let dir = tempfile::Builder::new().tempdir_in("/tmp").unwrap();
        let prog = dir.path().join("server");
        std::fs::write(&prog, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let text = format!(
            "name = \"web\"\ncommand = [{:?}]\nworking_dir = \"/\"\n",
            prog.display().to_string()
        );
        let path = dir.path().join("web.toml");
        std::fs::write(&path, &text).unwrap();
        let opts = tend_config::LoadOptions {
            log_dir: tend_config::LogDirDefault::Under("/var/log/tend".into()),
        };
        let spec = tend_config::load(&path, &opts).unwrap().spec;
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        let mut u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        u.access = Access::Check;
        let e = u
            .install_with(&spec, &text, &mut Report::default())
            .unwrap_err();
        assert!(e.to_string().contains("--no-access-check"), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert!(fs.0.file("/etc/tend/web.toml").is_none());
        assert!(runner.calls().is_empty(), "{:?}", runner.calls());

        // --no-access-check: installed, with the problem as a warning.
        u.access = Access::Warn;
        let mut r = Report::default();
        show(&runner, &[NOT_FOUND]);
        u.install_with(&spec, &text, &mut r).unwrap();
        let w = r.warnings.join("\n");
        assert!(w.contains("command `"), "{w}");
        assert!(w.contains("private /tmp"), "{w}");
        assert!(fs.0.file("/etc/tend/web.toml").is_some());

        // As root (account = "system") the same program is reachable.
        let text = format!("{text}[service]\naccount = \"system\"\n");
        std::fs::write(&path, &text).unwrap();
        let spec = tend_config::load(&path, &opts).unwrap().spec;
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        let mut u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        u.access = Access::Check;
        let mut r = Report::default();
        u.install_with(&spec, &text, &mut r).unwrap();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    fn spec(dir: &Path, extra: &str) -> (ServiceSpec, String) {
        let text = format!("name = \"web\"\ncommand = [\"/bin/sh\", \"-c\", \"sleep 1\"]\n{extra}");
        let path = dir.join("web.toml");
        std::fs::write(&path, &text).unwrap();
        let opts = tend_config::LoadOptions {
            log_dir: tend_config::LogDirDefault::Under("/var/log/tend".into()),
        };
        (tend_config::load(&path, &opts).unwrap().spec, text)
    }

    #[test]
    fn system_install_needs_root_and_changes_nothing_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(dir.path(), "");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        let mut u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        u.is_root = false;
        let e = u
            .install_with(&spec, &text, &mut Report::default())
            .unwrap_err();
        assert!(matches!(e, Error::Permission(_)), "{e}");
        assert!(e.to_string().contains("run it as root"), "{e}");
        assert_eq!(e.exit_code(), 4);
        assert!(runner.calls().is_empty());
        assert!(fs.read(Path::new("/etc/tend/web.toml")).unwrap().is_none());
    }

    #[test]
    fn systemd_first_install_writes_copy_and_unit_then_enables() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(dir.path(), "");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let mut r = Report::default();
        u.install_with(&spec, &text, &mut r).unwrap();
        assert_eq!(
            runner.calls(),
            [
                SHOW,
                "systemctl daemon-reload",
                "systemctl enable web.service"
            ]
        );
        let (copy, mode) = fs.0.file("/etc/tend/web.toml").unwrap();
        assert_eq!(mode, 0o644);
        assert!(
            copy.contains(&format!("base_dir = '{}'", dir.path().display())),
            "{copy}"
        );
        assert!(copy.ends_with(&text));
        let (unit, _) = fs.0.file("/etc/systemd/system/web.service").unwrap();
        assert!(systemd::is_generated_by_tend(&unit));
        assert!(unit.contains("ExecStart=/usr/local/bin/tend service web"));
        let out = r.lines.join("\n");
        assert!(
            out.contains("installed service `web` (systemd, start auto, account isolated)"),
            "{out}"
        );
        assert!(out.contains("start it with: tend start web"), "{out}");
    }

    #[test]
    fn systemd_reinstall_shows_the_diff_and_reloads_a_running_service() {
        let dir = tempfile::tempdir().unwrap();
        let (old_spec, old_text) = spec(dir.path(), "[stop]\ntimeout = \"5s\"\n");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        u.install_with(&old_spec, &old_text, &mut Report::default())
            .unwrap();

        let (spec, text) = spec(dir.path(), "[stop]\ntimeout = \"20s\"\n");
        let runner = Scripted::default();
        show(&runner, &[ACTIVE]);
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let mut r = Report::default();
        u.install_with(&spec, &text, &mut r).unwrap();
        let out = r.lines.join("\n");
        assert!(out.contains("updated service `web`:"), "{out}");
        assert!(
            out.contains("    - timeout = \"5s\"\n    + timeout = \"20s\""),
            "{out}"
        );
        assert!(
            out.contains("    - TimeoutStopSec=15s\n    + TimeoutStopSec=30s"),
            "{out}"
        );
        assert!(out.contains("reloaded"), "{out}");
        assert_eq!(
            runner.calls(),
            [
                SHOW,
                "systemctl daemon-reload",
                "systemctl enable web.service",
                "systemctl reload web.service"
            ]
        );

        // Again with the same config: nothing to say, nothing reloaded.
        let runner = Scripted::default();
        show(&runner, &[ACTIVE]);
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let mut r = Report::default();
        u.install_with(&spec, &text, &mut r).unwrap();
        assert_eq!(r.lines, ["service `web` is installed and unchanged"]);
        assert!(!runner.calls().iter().any(|c| c.contains("reload web")));
    }

    #[test]
    fn install_refuses_a_unit_tend_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(dir.path(), "");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(
            &runner,
            &[
                "LoadState=loaded\nActiveState=active\nFragmentPath=/lib/systemd/system/web.service\n",
            ],
        );
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let e = u
            .install_with(&spec, &text, &mut Report::default())
            .unwrap_err();
        assert!(
            e.to_string().contains("/lib/systemd/system/web.service"),
            "{e}"
        );
        assert_eq!(runner.calls(), [SHOW]);
        assert!(fs.0.file("/etc/tend/web.toml").is_none());

        // A hand-written file at tend's own path.
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        fs.write_file(
            Path::new("/etc/systemd/system/web.service"),
            "[Unit]\n",
            0o644,
        )
        .unwrap();
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let e = u
            .install_with(&spec, &text, &mut Report::default())
            .unwrap_err();
        assert!(e.to_string().contains("was not written by tend"), "{e}");
        assert_eq!(runner.calls(), [SHOW]);
    }

    #[test]
    fn a_failed_first_install_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(dir.path(), "");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        runner.then(
            &["systemctl", "enable", "web.service"],
            &[Reply::exit(1, "Failed to enable unit")],
        );
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let e = u
            .install_with(&spec, &text, &mut Report::default())
            .unwrap_err();
        assert!(e.to_string().contains("Failed to enable unit"), "{e}");
        assert_eq!(e.exit_code(), 5);
        assert!(fs.0.file("/etc/tend/web.toml").is_none());
        assert!(fs.0.file("/etc/systemd/system/web.service").is_none());
        assert_eq!(runner.calls().last().unwrap(), "systemctl daemon-reload");
    }

    /// Through the seam the CLI uses: what changed, what was said, and a failure that
    /// keeps its report and its exit code.
    #[test]
    fn the_service_manager_reports_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(dir.path(), "");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let m: &dyn ServiceManager = &u;
        assert_eq!(m.backend(), Backend::Systemd);
        let f = m.start(&spec.name).unwrap_err();
        assert!(matches!(f.error, Error::NotInstalled(_)), "{f}");
        assert_eq!(f.error.exit_code(), crate::exit::NOT_INSTALLED);
        assert_eq!(f.report.changed, Changed::Nothing);
        let install = Install {
            spec: &spec,
            original: &text,
        };
        let r = m.install(&install).unwrap();
        assert_eq!(r.changed, Changed::Installed);
        assert!(
            r.lines[0].starts_with("installed service `web` (systemd"),
            "{r:?}"
        );

        let runner = Scripted::default();
        show(&runner, &[INACTIVE]);
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let m: &dyn ServiceManager = &u;
        let r = m.install(&install).unwrap();
        assert_eq!(r.changed, Changed::Nothing);
        let s = m.status(&spec.name).unwrap();
        assert_eq!(
            (s.installed, s.active, s.manager.as_deref()),
            (true, false, Some("systemd"))
        );
        assert_eq!(s.start.as_deref(), Some("enabled"));
        assert_eq!(m.not_ours(&spec.name), None);
    }

    #[test]
    fn systemd_verbs_run_systemctl_and_check_state_first() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(dir.path(), "");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let mut r = Report::default();
        for verb in [
            Unix::start_with,
            Unix::stop_with,
            Unix::restart_with,
            Unix::reload_with,
            Unix::uninstall_with,
        ] {
            let e = verb(&u, &spec.name, &mut r).unwrap_err();
            assert!(matches!(e, Error::NotInstalled(_)), "{e}");
            assert_eq!(e.exit_code(), 3);
        }
        u.install_with(&spec, &text, &mut r).unwrap();

        let runner = Scripted::default();
        // reload's look, start's look before and after.
        show(&runner, &[INACTIVE, INACTIVE, ACTIVE]);
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let mut r = Report::default();
        let e = u.reload_with(&spec.name, &mut r).unwrap_err();
        assert!(e.to_string().contains("not running"), "{e}");
        u.start_with(&spec.name, &mut r).unwrap();
        assert_eq!(r.lines, ["service `web` is running (tend pid 4242)"]);
        assert_eq!(
            runner.calls()[2..],
            [
                "systemctl reset-failed web.service",
                "systemctl start web.service",
                SHOW
            ]
        );

        let runner = Scripted::default();
        show(&runner, &[ACTIVE]);
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let mut r = Report::default();
        u.reload_with(&spec.name, &mut r).unwrap();
        u.stop_with(&spec.name, &mut r).unwrap();
        u.uninstall_with(&spec.name, &mut r).unwrap();
        let calls = runner.calls();
        assert!(calls.contains(&"systemctl reload web.service".to_owned()));
        assert!(calls.contains(&"systemctl stop web.service".to_owned()));
        assert!(calls.contains(&"systemctl disable web.service".to_owned()));
        assert!(fs.0.was_removed("/etc/systemd/system/web.service"));
        assert!(fs.0.was_removed("/etc/tend/web.toml"));
        assert!(
            r.lines
                .last()
                .unwrap()
                .contains("its logs remain in `/var/log/tend/web`"),
            "{:?}",
            r.lines
        );

        // Someone else's unit of that name is left alone.
        let runner = Scripted::default();
        show(
            &runner,
            &[
                "LoadState=loaded\nActiveState=active\nFragmentPath=/lib/systemd/system/web.service\n",
            ],
        );
        let u = unix(Kind::Systemd, crate::Scope::system(), &runner, &fs);
        let e = u.stop_with(&spec.name, &mut r).unwrap_err();
        assert!(e.to_string().contains("was not installed by tend"), "{e}");
        assert_eq!(runner.calls(), [SHOW]);
    }

    fn user() -> crate::Scope {
        crate::Scope::User(UserContext::new(501, "/Users/ann"))
    }

    const PRINT: &str = "launchctl print gui/501/dev.tend.web";
    const PLIST: &str = "/Users/ann/Library/LaunchAgents/dev.tend.web.plist";

    fn print(state: &str, exit: &str) -> Reply {
        Reply::ok(&format!(
            "gui/501/dev.tend.web = {{\n\tpath = {PLIST}\n\tstate = {state}\n\tlast exit code = {exit}\n}}\n"
        ))
    }

    #[test]
    fn launchd_user_install_bootstraps_the_agent_and_needs_no_root() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(dir.path(), "");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        runner.then(&argv(PRINT), &[Reply::exit(113, "Could not find service")]);
        let mut u = unix(Kind::Launchd, user(), &runner, &fs);
        u.is_root = false;
        let mut r = Report::default();
        u.install_with(&spec, &text, &mut r).unwrap();
        assert_eq!(
            runner.calls(),
            [
                PRINT.to_owned(),
                "launchctl bootout gui/501/dev.tend.web".to_owned(),
                "launchctl enable gui/501/dev.tend.web".to_owned(),
                format!("launchctl bootstrap gui/501 {PLIST}"),
            ]
        );
        let (copy, mode) = fs.0.file("/Users/ann/.config/tend/web.toml").unwrap();
        assert_eq!(mode, 0o600);
        assert!(copy.contains("base_dir = "));
        let (plist, _) = fs.0.file(PLIST).unwrap();
        assert!(plist.contains("<string>--user</string>"), "{plist}");
        let out = r.lines.join("\n");
        assert!(out.contains("launchd started it (RunAtLoad)"), "{out}");
        assert!(out.contains("tend status --user web"), "{out}");

        // Unchanged and loaded: the job is not booted out (that would restart it).
        let runner = Scripted::default();
        runner.then(&argv(PRINT), &[print("running", "(never exited)")]);
        let u = unix(Kind::Launchd, user(), &runner, &fs);
        let mut r = Report::default();
        u.install_with(&spec, &text, &mut r).unwrap();
        assert_eq!(runner.calls(), [PRINT]);
        assert_eq!(r.lines, ["service `web` is installed and unchanged"]);
    }

    #[test]
    fn launchd_stop_and_start_wait_for_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(dir.path(), "[service]\nstart = \"manual\"\n");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        runner.then(&argv(PRINT), &[Reply::exit(113, "Could not find service")]);
        let u = unix(Kind::Launchd, user(), &runner, &fs);
        let mut r = Report::default();
        u.install_with(&spec, &text, &mut r).unwrap();
        assert!(
            r.lines
                .join("\n")
                .contains("start it with: tend start --user web")
        );

        // Running, still running after the SIGTERM, then gone.
        let runner = Scripted::default();
        runner.then(
            &argv(PRINT),
            &[
                print("running", "(never exited)"),
                print("running", "(never exited)"),
                print("not running", "0"),
            ],
        );
        let u = unix(Kind::Launchd, user(), &runner, &fs);
        let mut r = Report::default();
        u.stop_with(&spec.name, &mut r).unwrap();
        assert_eq!(r.lines, ["service `web` is stopped"]);
        assert_eq!(
            runner.calls(),
            [
                PRINT,
                "launchctl kill SIGTERM gui/501/dev.tend.web",
                PRINT,
                PRINT
            ]
        );

        let runner = Scripted::default();
        runner.then(
            &argv(PRINT),
            &[
                print("not running", "0"),
                print("spawn scheduled", "0"),
                Reply::ok("state = running\npid = 77\n"),
            ],
        );
        let u = unix(Kind::Launchd, user(), &runner, &fs);
        let mut r = Report::default();
        u.start_with(&spec.name, &mut r).unwrap();
        assert_eq!(r.lines, ["service `web` is running (tend pid 77)"]);
        assert!(
            runner
                .calls()
                .contains(&"launchctl kickstart gui/501/dev.tend.web".to_owned())
        );

        // A tend that does not come up: the error names launchd's state and tend's log.
        let runner = Scripted::default();
        runner.then(&argv(PRINT), &[print("not running", "2")]);
        let mut u = unix(Kind::Launchd, user(), &runner, &fs);
        u.poll = Duration::from_millis(50);
        let started = Instant::now();
        let e = u
            .wait_for(&spec.name, Duration::from_millis(300), "start", |s| {
                s.state == RunState::Running
            })
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(e.to_string().contains("last exit code 2"), "{e}");
    }

    #[test]
    fn launchd_reinstall_of_a_running_manual_job_starts_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let (spec, text) = spec(
            dir.path(),
            "[service]\nstart = \"manual\"\naccount = \"system\"\n",
        );
        let (runner, fs) = (Scripted::default(), MemFs::default());
        runner.then(
            &["launchctl", "print", "system/dev.tend.web"],
            &[Reply::exit(113, "Could not find service")],
        );
        let u = unix(Kind::Launchd, crate::Scope::system(), &runner, &fs);
        u.install_with(&spec, &text, &mut Report::default())
            .unwrap();

        let (spec, text) = super::tests::spec(
            dir.path(),
            "[service]\nstart = \"manual\"\naccount = \"system\"\n[stop]\ntimeout = \"30s\"\n",
        );
        let runner = Scripted::default();
        runner.then(
            &["launchctl", "print", "system/dev.tend.web"],
            &[Reply::ok(
                "state = running\npid = 9\npath = /Library/LaunchDaemons/dev.tend.web.plist\n",
            )],
        );
        let u = unix(Kind::Launchd, crate::Scope::system(), &runner, &fs);
        let mut r = Report::default();
        u.install_with(&spec, &text, &mut r).unwrap();
        let out = r.lines.join("\n");
        assert!(out.contains("<integer>20</integer>"), "{out}");
        assert!(out.contains("<integer>40</integer>"), "{out}");
        assert!(out.contains("restarted it with the new config"), "{out}");
        assert_eq!(
            runner.calls()[1..],
            [
                "launchctl bootout system/dev.tend.web",
                "launchctl enable system/dev.tend.web",
                "launchctl bootstrap system /Library/LaunchDaemons/dev.tend.web.plist",
                "launchctl kickstart system/dev.tend.web",
            ]
        );
    }

    #[test]
    fn real_files_are_written_atomically_with_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        RealFs.create_dir(&sub, 0o700, None).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sub), 0o700);
        let f = sub.join("web.toml");
        RealFs.write_file(&f, "one\n", 0o600).unwrap();
        RealFs.write_file(&f, "two\n", 0o644).unwrap();
        assert_eq!(RealFs.read(&f).unwrap().as_deref(), Some("two\n"));
        assert_eq!(mode(&f), 0o644);
        assert_eq!(
            std::fs::read_dir(&sub).unwrap().count(),
            1,
            "no temporary file left"
        );
        assert_eq!(RealFs.read(&sub.join("none")).unwrap(), None);
        let e = RealFs
            .create_dir(&sub, 0o755, Some("no-such-user-tend-test"))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    }

    #[test]
    fn env_file_modes_are_checked_against_the_account() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("secrets.env");
        std::fs::write(&env, "TOKEN=x\n").unwrap();
        let (spec, text) = spec(dir.path(), "env_file = \"secrets.env\"\n");
        let set = |m| std::fs::set_permissions(&env, std::fs::Permissions::from_mode(m)).unwrap();
        set(0o644);
        let w = env_file_warning(&spec, &text, true).unwrap();
        assert!(w.contains("chmod 600"), "{w}");
        assert_eq!(
            env_file_warning(&spec, &text, false),
            None,
            "isolated needs it readable"
        );
        set(0o600);
        assert_eq!(env_file_warning(&spec, &text, true), None);
        assert_eq!(
            env_file_warning(&spec, &text, false),
            None,
            "an unreadable file is check_access's refusal"
        );
    }
}
