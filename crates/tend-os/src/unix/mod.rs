//! systemd (Linux) and launchd (macOS) behind `tend install`, `uninstall`, `start`, `stop`,
//! `restart`, `reload` and `status`: two backends, [`Systemd`] and [`Launchd`], sharing
//! one flow.
//!
//! [`crate::systemd`] and [`crate::launchd`] build every file and every command line as
//! data; this module decides when to run them: it checks rights and ownership before
//! anything changes, carries the plan out, and reports what happened. The flow of each
//! verb is the same for both managers and written once (`UnixManager`'s provided
//! methods); what differs (which plan, how the manager is asked, what it does after an
//! update, whether `stop` must be waited for) is a hook each backend implements. Everything
//! that touches the machine goes through a seam ([`Runner`] for `systemctl` /
//! `launchctl`, `Fs` for files), so the tests (`tests.rs`) exercise both backends on Linux
//! with a scripted runner and in-memory files.

mod launchd_backend;
mod systemd_backend;
mod takeover;
#[cfg(test)]
mod tests;

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tend_core::{Account, ServiceName, ServiceSpec, StartMode};

use crate::installed::{diff_lines, installed_text, load_options};
use crate::manager::{Access, Changed, Drift, Error, Preflight, Report, ServiceManager, Status};
use crate::reach::{self, Need};
use crate::{
    Applied, Backend, Files, Layout, OwnershipError, RenderError, RunError, RunState, Runner,
    Scope, Step, SystemRunner,
};

pub use launchd_backend::Launchd;
pub use systemd_backend::Systemd;

/// The error for a verb on a system service run without root (exit code 4).
#[must_use]
pub fn need_root(verb: &str) -> Error {
    Error::Permission(format!(
        "`tend {verb}` of a system service needs root: run it as root (sudo tend {verb} ...) or use --user for a service of your own"
    ))
}

/// This OS's manager for `scope` on the real machine: launchd on macOS, systemd elsewhere.
#[must_use]
pub fn native(scope: Scope, access: Access) -> Box<dyn ServiceManager> {
    let machine = Machine::real(scope, access);
    if cfg!(target_os = "macos") {
        Box::new(Launchd::new(machine))
    } else {
        Box::new(Systemd::new(machine))
    }
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
        crate::fs::read_text(path)
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

/// What both Unix backends work with: the scope, the seams to the machine, and the tend
/// binary the manager will run.
pub struct Machine<'a> {
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

impl Machine<'static> {
    /// The real machine: `systemctl`/`launchctl`, files, the tend binary that runs.
    #[must_use]
    pub fn real(scope: Scope, access: Access) -> Self {
        Machine {
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

impl Machine<'_> {
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
        crate::installed::installed_spec(layout, &text)
    }

    /// The installed config's stop timeout plus the OS manager's margin and a little more.
    fn stop_budget(&self, layout: &Layout) -> Duration {
        self.installed_spec(layout)
            .map_or(Duration::from_secs(10), |s| s.stop.timeout)
            + crate::STOP_MARGIN
            + Duration::from_secs(5)
    }

    /// `systemctl [--user] daemon-reload`.
    fn daemon_reload(&self) -> Vec<String> {
        let mut argv = vec!["systemctl".to_owned()];
        if self.scope.is_user() {
            argv.push("--user".to_owned());
        }
        argv.push("daemon-reload".to_owned());
        argv
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
        match tend_config::parse(&text, &layout.config, &load_options(layout)) {
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

    /// The identity the service will run as (a `--user` service: the user; a named
    /// account: that user), and a problem if the named account does not exist (systemd
    /// would fail the start with 217/USER).
    fn service_identity(&self, spec: &ServiceSpec) -> (Option<reach::Identity>, Option<String>) {
        let mut problem = None;
        let user = match (&self.scope, &spec.service.account) {
            (crate::Scope::User(_), _) => Some(current_identity()),
            (crate::Scope::System(_), Account::User { name, .. }) => match lookup_user(name) {
                Some(id) => Some(id),
                None => {
                    problem = Some(format!(
                        "[service] account = {name:?}: there is no such user on this machine; create it first (useradd --system {name}) or use account = \"isolated\""
                    ));
                    None
                }
            },
            _ => None,
        };
        (user, problem)
    }
}

/// What a reinstall changed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Differs {
    config: bool,
    definition: bool,
}

/// A Unix service manager: the hooks where systemd and launchd differ (required methods),
/// and the flow of every verb written once on top of them (provided methods). Implemented
/// by [`Systemd`] and [`Launchd`]; their [`ServiceManager`] implementations call the
/// provided methods.
pub(crate) trait UnixManager {
    /// Which manager.
    const BACKEND: Backend;
    /// What its service definition is called in messages: `unit`, `plist`.
    const DEFINITION: &'static str;

    /// The machine and the scope.
    fn m(&self) -> &Machine<'_>;

    /// Asks the manager about `name`.
    fn ask(&self, name: &ServiceName) -> Result<crate::OsStatus, RunError>;
    /// What to try when the manager cannot be asked, for the error message.
    fn ask_hint(&self) -> &'static str;
    /// The install plan and the definition's text (warnings about the config go into `r`).
    fn render(
        &self,
        spec: &ServiceSpec,
        text: &str,
        r: &mut Report,
    ) -> Result<(Vec<Step>, String), RenderError>;
    /// Whether an unchanged reinstall still carries out the plan. (Re-applying an
    /// unchanged launchd job would boot it out and back in, which restarts a running
    /// service for nothing.)
    fn reapply_unchanged(&self, loaded: bool) -> bool;
    /// The sandbox the definition gives the service running as `user`.
    fn sandbox(
        &self,
        spec: &ServiceSpec,
        layout: &Layout,
        user: Option<reach::Identity>,
    ) -> reach::Sandbox;
    /// Whether the manager knows `dep` (a `depends_on` entry): `Err(what)` names what it
    /// does not know; `Ok(Err(..))` is a failure to ask.
    fn knows(&self, spec: &ServiceSpec, dep: &str) -> Result<Result<(), String>, Error>;
    /// Whether loading the definition starts the service (launchd's RunAtLoad).
    fn starts_on_load(&self, start: StartMode) -> bool;
    /// After a reinstall that changed something of a running service: how it picks the
    /// change up.
    fn update_running(&self, spec: &ServiceSpec, changed: Differs, r: &mut Report);
    /// Removes what a failed first install left with the manager itself (beyond files).
    fn forget(&self);
    /// The uninstall plan; `known` is whether the manager knows the service.
    fn uninstall_plan(&self, name: &ServiceName, layout: &Layout, known: bool) -> Vec<Step>;
    /// The plan of `tend start`.
    fn start_plan(&self, name: &ServiceName) -> Vec<Step>;
    /// The plan of `tend restart`.
    fn restart_plan(&self, name: &ServiceName) -> Vec<Step>;
    /// The plan of `tend reload`.
    fn reload_plan(&self, name: &ServiceName) -> Vec<Step>;
    /// `tend stop`'s plan, carried out and waited for as the manager needs.
    fn stop_now(&self, name: &ServiceName, layout: &Layout) -> Result<(), Error>;
    /// After a start or restart plan: the manager's word that tend runs.
    fn running_now(&self, name: &ServiceName, layout: &Layout) -> Result<crate::OsStatus, Error>;

    /// [`crate::ServiceManager::host_program`]: `None` unless the manager's definition
    /// says.
    fn host_program_of(&self, name: &ServiceName) -> Result<Option<std::path::PathBuf>, Error> {
        let _ = name;
        Ok(None)
    }

    /// [`crate::ServiceManager::host_words`]: none unless the manager keeps them.
    fn host_words_of(&self, name: &ServiceName, since: std::time::SystemTime) -> Vec<String> {
        let _ = (name, since);
        Vec::new()
    }

    /// Where the service's files are.
    fn layout(&self, name: &ServiceName) -> Layout {
        Layout::new(Self::BACKEND, &self.m().scope, name)
    }

    /// What the OS manager says about `name`.
    fn query(&self, name: &ServiceName) -> Result<crate::OsStatus, Error> {
        self.ask(name).map_err(|e| Error::Run {
            what: format!(
                "cannot ask {} about `{name}`{}",
                Self::BACKEND.name(),
                self.ask_hint()
            ),
            source: Box::new(e),
        })
    }

    /// The installed config's `start`, for `tend status` where the OS cannot tell
    /// (launchd has no "enabled" state of its own).
    fn installed_start(&self, name: &ServiceName) -> Option<&'static str> {
        self.m()
            .installed_spec(&self.layout(name))
            .map(|s| start_word(s.service.start))
    }

    /// The OS status of a service tend installed; [`Error::NotInstalled`] when there is
    /// none, and a refusal when the name belongs to a service tend did not write.
    fn ours(&self, name: &ServiceName) -> Result<(Layout, crate::OsStatus), Error> {
        let layout = self.layout(name);
        let status = self.query(name)?;
        let text = self.m().read(&layout.definition)?;
        if !status.installed && text.is_none() {
            return Err(Error::NotInstalled(name.to_string()));
        }
        crate::check_ownership(Self::BACKEND, &layout, &status, text.as_deref()).map_err(|e| {
            match e {
                OwnershipError::Foreign { path } => Error::Invalid(format!(
                    "service `{name}` was not installed by tend ({}); tend leaves it alone",
                    path.display()
                )),
                e @ OwnershipError::NotGenerated { .. } => {
                    Error::Invalid(format!("service `{name}`: {e}"))
                }
            }
        })?;
        Ok((layout, status))
    }

    /// Why `name` is installed but not by tend (then tend leaves it alone), or `None`.
    fn foreign(&self, name: &ServiceName) -> Option<String> {
        match self.ours(name) {
            Err(Error::Invalid(why)) => Some(why),
            _ => None,
        }
    }

    /// The OS's view in the common shape; where launchd cannot say whether the service
    /// starts at boot, the installed config's `start` says it.
    fn status_of(&self, name: &ServiceName) -> Result<Status, Error> {
        let s = self.query(name)?;
        let mut status = common_status(&s, Self::BACKEND);
        if status.start.is_none() && s.installed {
            status.start = self.installed_start(name).map(str::to_owned);
        }
        Ok(status)
    }

    /// `tend install [--user]`: every check before anything changes; on a first install
    /// that fails half-way, the files written are removed again.
    fn install_with(
        &self,
        spec: &ServiceSpec,
        original: &str,
        leave_running: bool,
        r: &mut Report,
    ) -> Result<(), Error> {
        let m = self.m();
        m.require_root("install")?;
        let name = &spec.name;
        let layout = self.layout(name);
        let text = installed_text(spec, original)?;
        let (steps, definition) = self.render(spec, &text, r).map_err(|e| {
            Error::Invalid(format!(
                "not installing `{name}`: {e} (nothing was changed)"
            ))
        })?;
        r.warnings
            .extend(env_file_warning(spec, original, m.scope.is_user()));
        self.check_access(spec, original, &layout, r)?;
        self.check_dependencies(spec)?;
        let status = self.query(name)?;
        let old_definition = m.read(&layout.definition)?;
        crate::check_ownership(Self::BACKEND, &layout, &status, old_definition.as_deref())
            .map_err(|e| Error::Invalid(format!("not installing `{name}`: {e}")))?;
        let old_config = m.read(&layout.config)?;
        let was_installed = status.installed || old_definition.is_some();
        let config_diff = diff_lines(old_config.as_deref().unwrap_or(""), &text);
        let definition_diff = diff_lines(old_definition.as_deref().unwrap_or(""), &definition);
        let unchanged = was_installed && config_diff.is_empty() && definition_diff.is_empty();
        let loaded = status.raw_state != "not loaded";

        // From here on, things change.
        let skip = unchanged && !self.reapply_unchanged(loaded);
        if !skip && let Err(e) = m.apply(&format!("cannot install `{name}`"), &steps) {
            if !was_installed {
                self.roll_back(&layout, old_config.is_some());
            }
            return Err(e);
        }

        if !was_installed {
            r.changed = Changed::Installed;
            r.say(format!(
                "installed service `{name}` ({}{}, start {}, account {})",
                Self::BACKEND.name(),
                if m.scope.is_user() { " --user" } else { "" },
                start_word(spec.service.start),
                spec.service.account.as_str(),
            ));
            r.say(format!("  config copy: {}", layout.config.display()));
            r.say(format!(
                "  {}: {}",
                Self::DEFINITION,
                layout.definition.display()
            ));
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
            (Self::DEFINITION, &layout.definition, &definition_diff),
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
        if status.active() && !leave_running {
            self.update_running(spec, changed, r);
        } else if spec.service.start != StartMode::Disabled
            && !self.starts_on_load(spec.service.start)
        {
            r.say(format!(
                "it is not running; start it with: {}",
                m.cmd("start", name)
            ));
        }
        Ok(())
    }

    /// The lines of the definition an install of `spec` would change (`tend apply`).
    fn definition_diff_with(
        &self,
        spec: &ServiceSpec,
        original: &str,
    ) -> Result<Option<Vec<String>>, Error> {
        let text = installed_text(spec, original)?;
        let (_, definition) = self
            .render(spec, &text, &mut Report::default())
            .map_err(|e| Error::Invalid(format!("not installing `{}`: {e}", spec.name)))?;
        let old = self.m().read(&self.layout(&spec.name).definition)?;
        Ok(Some(diff_lines(old.as_deref().unwrap_or(""), &definition)))
    }

    /// Refuses (or, with [`Access::Warn`], warns about) every path the service's account
    /// and sandbox will not reach, and a named account that does not exist: what
    /// [`UnixManager::reach`] finds.
    fn check_access(
        &self,
        spec: &ServiceSpec,
        original: &str,
        layout: &Layout,
        r: &mut Report,
    ) -> Result<(), Error> {
        let m = self.m();
        if m.access == Access::Skip {
            return Ok(());
        }
        let name = &spec.name;
        let (account, problems) = self.reach(spec, original, layout);
        let problems: Vec<String> = account.into_iter().chain(problems).collect();
        if problems.is_empty() {
            return Ok(());
        }
        if m.access == Access::Warn {
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

    /// What `install` checks and `doctor` reports: whether a named account exists (the
    /// first value: why not), and every path the service will not reach: the tend binary,
    /// the program, `working_dir`, `env_file` and the log directory, judged by
    /// [`crate::reach::check`] on what root sees now.
    fn reach(
        &self,
        spec: &ServiceSpec,
        original: &str,
        layout: &Layout,
    ) -> (Option<String>, Vec<String>) {
        let m = self.m();
        let (user, account) = m.service_identity(spec);
        let sandbox = self.sandbox(spec, layout, user);
        let mut targets = vec![inspect("the tend binary", Need::Exec, &m.tend_exe)];
        if let tend_core::Program::Path(p) = &spec.command.program {
            targets.push(inspect("command", Need::Exec, p));
        }
        targets.push(inspect("working_dir", Need::Enter, &spec.working_dir));
        if let Some(env) = env_file_path(spec, original) {
            targets.push(inspect("env_file", Need::Read, &env));
        }
        targets.push(inspect("logs.dir", Need::Write, &spec.logs.dir));
        let problems = reach::check(&sandbox, &targets)
            .iter()
            .map(ToString::to_string)
            .collect();
        (account, problems)
    }

    /// `tend doctor`: [`UnixManager::reach`], and the installed config copy and
    /// definition against what `install` would write for `spec` now.
    fn preflight_with(&self, spec: &ServiceSpec, original: &str) -> Result<Preflight, Error> {
        let m = self.m();
        let layout = self.layout(&spec.name);
        let (account, access) = self.reach(spec, original, &layout);
        let named = matches!(
            (&m.scope, &spec.service.account),
            (crate::Scope::System(_), Account::User { .. })
        );
        let old_config = m.read(&layout.config)?;
        let old_definition = m.read(&layout.definition)?;
        let text = installed_text(spec, original)?;
        let drift = match (&old_config, &old_definition) {
            (None, None) => Drift::NotInstalled,
            (None, Some(_)) => Drift::Unknown(format!(
                "the config copy `{}` is missing",
                layout.config.display()
            )),
            // The definition is compared with what the installed copy renders to (what the
            // service runs from); the config given, with the copy.
            (Some(copy), old_definition) => match crate::installed::installed_spec(&layout, copy) {
                None => Drift::Unknown(format!(
                    "the config copy `{}` does not load",
                    layout.config.display()
                )),
                Some(installed) => {
                    let (_, definition) = self
                        .render(&installed, copy, &mut Report::default())
                        .map_err(|e| {
                            Error::Invalid(format!("cannot render `{}`: {e}", spec.name))
                        })?;
                    Drift::Compared {
                        config: diff_lines(copy, &text),
                        definition: diff_lines(
                            old_definition.as_deref().unwrap_or(""),
                            &definition,
                        ),
                    }
                }
            },
        };
        Ok(Preflight {
            account: named.then(|| account.map_or(Ok(()), Err)),
            logon_right: None,
            access: Ok(access),
            drift,
        })
    }

    /// Every `depends_on` entry must name a unit (job) the OS manager knows: a typo would
    /// otherwise be installed silently (systemd ignores a `Wants=` of a missing unit).
    fn check_dependencies(&self, spec: &ServiceSpec) -> Result<(), Error> {
        let name = &spec.name;
        let mut missing = Vec::new();
        for dep in &spec.service.depends_on {
            if let Err(what) = self.knows(spec, dep)? {
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
            Self::BACKEND.name(),
            if missing.len() == 1 { "it" } else { "them" },
        )))
    }

    /// What to do after a first install.
    fn after_first_install(&self, spec: &ServiceSpec) -> String {
        let name = &spec.name;
        let m = self.m();
        if spec.service.start == StartMode::Disabled {
            format!(
                "it is disabled (start = \"disabled\"): `{}` refuses it until the config says otherwise",
                m.cmd("start", name)
            )
        } else if self.starts_on_load(spec.service.start) {
            format!(
                "launchd started it (RunAtLoad); see: {}",
                m.cmd("status", name)
            )
        } else {
            format!("start it with: {}", m.cmd("start", name))
        }
    }

    /// Removes what a failed first install wrote (best effort: the error being reported
    /// matters more).
    fn roll_back(&self, layout: &Layout, config_existed: bool) {
        let m = self.m();
        let _ = m.fs.remove_file(&layout.definition);
        if !config_existed {
            let _ = m.fs.remove_file(&layout.config);
        }
        self.forget();
    }

    /// `tend uninstall [--user]`: stop, remove the definition and the config copy. Logs
    /// and state stay.
    fn uninstall_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        let m = self.m();
        m.require_root("uninstall")?;
        let layout = self.layout(name);
        let status = self.query(name)?;
        let definition = m.read(&layout.definition)?;
        let config = m.read(&layout.config)?;
        if !status.installed && definition.is_none() {
            if config.is_some() {
                // Only the config copy is left (an earlier uninstall was interrupted).
                m.apply(
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
        let logs = m
            .installed_spec(&layout)
            .map_or_else(|| layout.log_dir.clone(), |s| s.logs.dir);
        let steps = self.uninstall_plan(name, &layout, status.installed);
        m.apply(&format!("cannot uninstall `{name}`"), &steps)?;
        r.uninstalled(name, &logs);
        Ok(())
    }

    /// `tend start [--user]`: returns once tend runs (systemd: once it sent READY=1).
    fn start_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        self.m().require_root("start")?;
        let (layout, status) = self.ours(name)?;
        // Waiting out RestartSec= after tend failed is not running: start it now.
        if status.active() && status.state != RunState::Restarting {
            r.say(format!("service `{name}` is already running"));
            return Ok(());
        }
        self.m().refuse_disabled(&layout, name)?;
        self.until_running(name, &layout, "start", &self.start_plan(name), r)
    }

    /// `tend stop [--user]`: returns once tend has exited.
    fn stop_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        self.m().require_root("stop")?;
        let (layout, status) = self.ours(name)?;
        if !status.active() {
            r.say(format!("service `{name}` is already stopped"));
            return Ok(());
        }
        self.stop_now(name, &layout)?;
        r.changed = Changed::Stopped;
        r.say(format!("service `{name}` is stopped"));
        Ok(())
    }

    /// `tend restart [--user]`.
    fn restart_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        self.m().require_root("restart")?;
        let (layout, _) = self.ours(name)?;
        self.m().refuse_disabled(&layout, name)?;
        self.until_running(name, &layout, "restart", &self.restart_plan(name), r)
    }

    /// `tend reload [--user]`: SIGHUP to tend, which re-reads its config copy.
    fn reload_with(&self, name: &ServiceName, r: &mut Report) -> Result<(), Error> {
        let m = self.m();
        m.require_root("reload")?;
        let (_, status) = self.ours(name)?;
        if !status.active() {
            return Err(Error::Invalid(format!(
                "service `{name}` is not running, so there is nothing to reload; start it with: {}",
                m.cmd("start", name)
            )));
        }
        m.apply(&format!("cannot reload `{name}`"), &self.reload_plan(name))?;
        r.changed = Changed::Reloaded;
        r.say(format!(
            "asked `{name}` to reload: tend re-reads its config (see: {})",
            m.cmd("status", name)
        ));
        Ok(())
    }

    /// Carries out a plan that (re)starts tend and reports it running.
    fn until_running(
        &self,
        name: &ServiceName,
        layout: &Layout,
        verb: &str,
        plan: &[Step],
        r: &mut Report,
    ) -> Result<(), Error> {
        let m = self.m();
        m.check_installed_config(name, layout, r)?;
        let began = std::time::SystemTime::now();
        m.apply(&format!("cannot {verb} `{name}`"), plan)
            .map_err(|e| m.with_tends_reason(name, layout, began, e))?;
        let now = self.running_now(name, layout)?;
        r.changed = if verb == "restart" {
            Changed::Restarted
        } else {
            Changed::Started
        };
        r.say(running_line(name, &now));
        Ok(())
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
                        Self::BACKEND.name(),
                        s.raw_state
                    ),
                    io::Error::from(io::ErrorKind::TimedOut),
                ));
            }
            std::thread::sleep(self.m().poll);
        }
    }
}

/// The [`ServiceManager`] of a [`UnixManager`]: each verb is its flow, reported.
macro_rules! service_manager {
    ($t:ty) => {
        impl $crate::ServiceManager for $t {
            fn backend(&self) -> $crate::Backend {
                <Self as $crate::unix::UnixManager>::BACKEND
            }

            fn install(&self, i: &$crate::Install<'_>) -> Result<$crate::Report, $crate::Failure> {
                $crate::reported(|r| self.install_with(i.spec, i.original, i.leave_running, r))
            }

            fn definition_diff(
                &self,
                i: &$crate::Install<'_>,
            ) -> Result<Option<Vec<String>>, $crate::Error> {
                self.definition_diff_with(i.spec, i.original)
            }

            fn uninstall(
                &self,
                name: &tend_core::ServiceName,
            ) -> Result<$crate::Report, $crate::Failure> {
                $crate::reported(|r| self.uninstall_with(name, r))
            }

            fn start(
                &self,
                name: &tend_core::ServiceName,
            ) -> Result<$crate::Report, $crate::Failure> {
                $crate::reported(|r| self.start_with(name, r))
            }

            fn stop(
                &self,
                name: &tend_core::ServiceName,
            ) -> Result<$crate::Report, $crate::Failure> {
                $crate::reported(|r| self.stop_with(name, r))
            }

            fn restart(
                &self,
                name: &tend_core::ServiceName,
            ) -> Result<$crate::Report, $crate::Failure> {
                $crate::reported(|r| self.restart_with(name, r))
            }

            fn reload(
                &self,
                name: &tend_core::ServiceName,
            ) -> Result<$crate::Report, $crate::Failure> {
                $crate::reported(|r| self.reload_with(name, r))
            }

            fn status(
                &self,
                name: &tend_core::ServiceName,
            ) -> Result<$crate::Status, $crate::Error> {
                self.status_of(name)
            }

            fn not_ours(&self, name: &tend_core::ServiceName) -> Option<String> {
                self.foreign(name)
            }

            fn host_words(
                &self,
                name: &tend_core::ServiceName,
                since: std::time::SystemTime,
            ) -> Vec<String> {
                self.host_words_of(name, since)
            }

            fn host_program(
                &self,
                name: &tend_core::ServiceName,
            ) -> Result<Option<std::path::PathBuf>, $crate::Error> {
                self.host_program_of(name)
            }

            fn preflight(
                &self,
                i: &$crate::Install<'_>,
            ) -> Result<$crate::Preflight, $crate::Error> {
                self.preflight_with(i.spec, i.original)
            }

            fn record_foreign(
                &self,
                name: &tend_core::ServiceName,
            ) -> Result<$crate::Foreign, $crate::Error> {
                $crate::unix::takeover::record(self, name)
            }

            fn take_over(
                &self,
                foreign: &$crate::Foreign,
                into: &tend_core::ServiceName,
            ) -> Result<$crate::Report, $crate::Failure> {
                $crate::reported(|r| $crate::unix::takeover::take_over(self, foreign, into, r))
            }

            fn put_back(
                &self,
                foreign: &$crate::Foreign,
                into: &tend_core::ServiceName,
            ) -> Result<$crate::Report, $crate::Failure> {
                $crate::reported(|r| $crate::unix::takeover::put_back(self, foreign, into, r))
            }
        }
    };
}
pub(crate) use service_manager;

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
/// read at all is [`UnixManager::check_access`]'s refusal.)
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
