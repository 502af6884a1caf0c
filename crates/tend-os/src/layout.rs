//! Where an installed service's files live, per backend and scope.
//!
//! One table, used by the renderers, the plans and (through the CLI) by `tend service`
//! itself, so the config, state and log locations can never disagree between the file
//! that starts tend and the tend that starts.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use tend_core::ServiceName;

/// The OS service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// systemd (Linux).
    Systemd,
    /// launchd (macOS).
    Launchd,
    /// The Windows Service Control Manager (system services).
    Scm,
    /// The Windows per-user Run entry (`--user` services on Windows).
    RunKey,
}

impl Backend {
    /// The manager of this OS for a system service (`user` false) or the user's own.
    #[must_use]
    pub fn native(user: bool) -> Self {
        match (cfg!(windows), cfg!(target_os = "macos"), user) {
            (true, _, false) => Self::Scm,
            (true, _, true) => Self::RunKey,
            (false, true, _) => Self::Launchd,
            (false, false, _) => Self::Systemd,
        }
    }

    /// Its name in messages and in `tend status --json` (`os.manager`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Systemd => "systemd",
            Self::Launchd => "launchd",
            Self::Scm => "scm",
            Self::RunKey => "run-key",
        }
    }
}

/// System-wide service (root / Administrator) or the current user's own service
/// (`tend install --user`), with what the layout of each needs to know about the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A system service: `/etc/systemd/system`, `/Library/LaunchDaemons`, the SCM; needs
    /// root or Administrator.
    System(SystemContext),
    /// A per-user service: `systemctl --user`, `~/Library/LaunchAgents`, the Run entry.
    User(UserContext),
}

impl Scope {
    /// The system scope with the default [`SystemContext`] (all Unix needs).
    #[must_use]
    pub fn system() -> Self {
        Self::System(SystemContext::default())
    }

    /// Whether this is the per-user scope.
    #[must_use]
    pub fn is_user(&self) -> bool {
        matches!(self, Self::User(_))
    }

    /// ` --user` or nothing, for the commands that messages suggest.
    #[must_use]
    pub fn flag(&self) -> &'static str {
        if self.is_user() { " --user" } else { "" }
    }
}

/// What the system scope needs to know about the machine: only Windows has a place that
/// is not fixed. The CLI fills it ([`crate::here`]); nothing here reads the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemContext {
    /// Windows: `%ProgramData%` as the shell names it (FOLDERID_ProgramData), which the
    /// installing Administrator and a LocalSystem service agree on (their environments
    /// need not: under Wine a service sees `ProgramData=C:\users\Public`).
    pub program_data: PathBuf,
}

impl Default for SystemContext {
    fn default() -> Self {
        Self {
            program_data: PathBuf::from(r"C:\ProgramData"),
        }
    }
}

/// What the per-user scope needs to know about the user. The CLI fills it from the
/// process (`getuid()`, `$HOME`, `$XDG_CONFIG_HOME`, `$XDG_STATE_HOME`; on Windows the
/// shell's LocalAppData folder); nothing here reads the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserContext {
    /// The numeric user id (launchd's `gui/<uid>` domain; 0 on Windows).
    pub uid: u32,
    /// The home directory (absolute).
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, if set. Ignored unless absolute, as the XDG spec says.
    pub xdg_config_home: Option<PathBuf>,
    /// `$XDG_STATE_HOME`, if set. Ignored unless absolute.
    pub xdg_state_home: Option<PathBuf>,
    /// Windows: `%LOCALAPPDATA%` (FOLDERID_LocalAppData); `None` means `<home>\AppData\Local`.
    pub local_app_data: Option<PathBuf>,
}

impl UserContext {
    /// A user with no XDG overrides.
    #[must_use]
    pub fn new(uid: u32, home: impl Into<PathBuf>) -> Self {
        Self {
            uid,
            home: home.into(),
            xdg_config_home: None,
            xdg_state_home: None,
            local_app_data: None,
        }
    }

    /// `$XDG_CONFIG_HOME` or `~/.config`.
    #[must_use]
    pub fn config_home(&self) -> PathBuf {
        xdg_or(self.xdg_config_home.as_deref(), &self.home, ".config")
    }

    /// `$XDG_STATE_HOME` or `~/.local/state`.
    #[must_use]
    pub fn state_home(&self) -> PathBuf {
        xdg_or(self.xdg_state_home.as_deref(), &self.home, ".local/state")
    }

    /// `%LOCALAPPDATA%` or `<home>\AppData\Local`.
    #[must_use]
    pub fn local_app_data(&self) -> PathBuf {
        self.local_app_data
            .clone()
            .unwrap_or_else(|| win_join(&self.home, r"AppData\Local"))
    }
}

fn xdg_or(var: Option<&Path>, home: &Path, default: &str) -> PathBuf {
    match var {
        Some(p) if is_unix_absolute(p) => p.to_owned(),
        _ => join(home, default),
    }
}

/// The files and directories of one installed service: the one table of where things
/// live, for every backend and both scopes. Install, `tend service`, `tend status`,
/// `tend logs` and uninstall all read it, so they cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// tend's copy of the config, which `tend service <name>` reads.
    pub config: PathBuf,
    /// What defines the service to the OS manager: the unit file or plist; on Windows the
    /// registry key of the service (SCM) or the Run value (per-user), for display.
    pub definition: PathBuf,
    /// tend's state directory for this service (its status file).
    pub state_dir: PathBuf,
    /// The default `[logs] dir` of the installed service.
    pub log_dir: PathBuf,
    /// Where tend's own stdout and stderr go when the OS manager does not keep them
    /// (panics, errors before logging is set up): launchd's file, or the windowless
    /// per-user tend's on Windows. `None` on systemd (the journal) and the SCM (the Event
    /// Log).
    pub stdio_log: Option<PathBuf>,
}

impl Layout {
    /// The layout of service `name` for `backend` in `scope`.
    ///
    /// | | config | definition | state | logs |
    /// |---|---|---|---|---|
    /// | systemd | `/etc/tend/<name>.toml` | `/etc/systemd/system/<name>.service` | `/var/lib/tend/<name>` | `/var/log/tend/<name>` |
    /// | systemd `--user` | `~/.config/tend/<name>.toml` | `~/.config/systemd/user/<name>.service` | `~/.local/state/tend/<name>` | `~/.local/state/log/tend/<name>` |
    /// | launchd | `/etc/tend/<name>.toml` | `/Library/LaunchDaemons/dev.tend.<name>.plist` | `/Library/Application Support/tend/<name>` | `/var/log/tend/<name>` |
    /// | launchd `--user` | `~/.config/tend/<name>.toml` | `~/Library/LaunchAgents/dev.tend.<name>.plist` | `~/Library/Application Support/tend/<name>` | `~/Library/Logs/tend/<name>` |
    /// | SCM | `%ProgramData%\tend\services\<name>.toml` | `HKLM\SYSTEM\CurrentControlSet\Services\<name>` | `%ProgramData%\tend\state\<name>` | `%ProgramData%\tend\logs\<name>` |
    /// | Run entry (`--user`) | `%LOCALAPPDATA%\tend\services\<name>.toml` | `HKCU\Software\Microsoft\Windows\CurrentVersion\Run\tend-<name>` | `%LOCALAPPDATA%\tend\state\<name>` | `%LOCALAPPDATA%\tend\logs\<name>` |
    ///
    /// (`~/.config` and `~/.local/state` honour `$XDG_CONFIG_HOME` and `$XDG_STATE_HOME`;
    /// `[logs] dir` in the config overrides the log directory. The SCM layout does not
    /// depend on the scope's flag: an SCM service is always system-wide, a Run entry always
    /// the user's.)
    #[must_use]
    pub fn new(backend: Backend, scope: &Scope, name: &ServiceName) -> Self {
        let n = name.as_str();
        let root = Path::new("/");
        match (backend, scope) {
            (Backend::Systemd, Scope::System(_)) => Self {
                config: join(root, &format!("etc/tend/{n}.toml")),
                definition: join(root, &format!("etc/systemd/system/{n}.service")),
                state_dir: join(root, &format!("var/lib/tend/{n}")),
                log_dir: join(root, &format!("var/log/tend/{n}")),
                stdio_log: None,
            },
            (Backend::Systemd, Scope::User(u)) => Self {
                config: join(&u.config_home(), &format!("tend/{n}.toml")),
                definition: join(&u.config_home(), &format!("systemd/user/{n}.service")),
                state_dir: join(&u.state_home(), &format!("tend/{n}")),
                // Where systemd >= 254 puts `LogsDirectory=` of user units; older systemd
                // uses ~/.config/log, which is why user units do not use LogsDirectory=.
                log_dir: join(&u.state_home(), &format!("log/tend/{n}")),
                stdio_log: None,
            },
            (Backend::Launchd, Scope::System(_)) => {
                let log_dir = join(root, &format!("var/log/tend/{n}"));
                Self {
                    config: join(root, &format!("etc/tend/{n}.toml")),
                    definition: join(
                        root,
                        &format!("Library/LaunchDaemons/{}.plist", launchd_label(name)),
                    ),
                    state_dir: join(root, &format!("Library/Application Support/tend/{n}")),
                    stdio_log: Some(join(&log_dir, &format!("{n}.launchd.log"))),
                    log_dir,
                }
            }
            (Backend::Launchd, Scope::User(u)) => {
                let log_dir = join(&u.home, &format!("Library/Logs/tend/{n}"));
                Self {
                    config: join(&u.config_home(), &format!("tend/{n}.toml")),
                    definition: join(
                        &u.home,
                        &format!("Library/LaunchAgents/{}.plist", launchd_label(name)),
                    ),
                    state_dir: join(&u.home, &format!("Library/Application Support/tend/{n}")),
                    stdio_log: Some(join(&log_dir, &format!("{n}.launchd.log"))),
                    log_dir,
                }
            }
            (Backend::Scm | Backend::RunKey, _) => {
                let (base, definition, user) = match scope {
                    Scope::User(u) => (
                        u.local_app_data(),
                        format!(r"HKCU\{RUN_KEY}\{}", run_value_name(name)),
                        true,
                    ),
                    Scope::System(s) => (
                        s.program_data.clone(),
                        format!(r"HKLM\SYSTEM\CurrentControlSet\Services\{n}"),
                        false,
                    ),
                };
                let tend = win_join(&base, "tend");
                let state_dir = win_join(&tend, &format!(r"state\{n}"));
                Self {
                    config: win_join(&tend, &format!(r"services\{n}.toml")),
                    definition: PathBuf::from(definition),
                    // The windowless per-user tend's stderr: nobody would see it otherwise.
                    stdio_log: user.then(|| win_join(&state_dir, "service.stderr.log")),
                    state_dir,
                    log_dir: win_join(&tend, &format!(r"logs\{n}")),
                }
            }
        }
    }

    /// The directory of the config copies of this scope (one `<name>.toml` per service).
    #[must_use]
    pub fn config_dir(&self) -> PathBuf {
        parent(&self.config)
    }

    /// The directory under which each installed service of this scope gets its default
    /// log directory `<name>`: where `[logs] dir` defaults to when an installed config
    /// is loaded.
    #[must_use]
    pub fn log_root(&self) -> PathBuf {
        parent(&self.log_dir)
    }

    /// The release store of `tend upgrade` (docs/upgrade.md): `<state root>/.releases/<name>`,
    /// next to the service's state directory, e.g. `/var/lib/tend/.releases/web` or
    /// `%ProgramData%\tend\state\.releases\web`. Not inside the state directory, which the
    /// service's own account may write (a release must be as protected as the config copy);
    /// on the same volume as it, so a release is staged and renamed, never half-copied. A
    /// service name cannot start with `.`, so no service's state directory is this one.
    #[must_use]
    pub fn releases_dir(&self) -> PathBuf {
        let root = parent(&self.state_dir);
        let name = self
            .state_dir
            .to_str()
            .and_then(|s| s.rfind(['/', '\\']).map(|i| (&s[i + 1..], s.as_bytes()[i])));
        match name {
            Some((n, b'\\')) => win_join(&root, &format!(r".releases\{n}")),
            Some((n, _)) => join(&root, &format!(".releases/{n}")),
            None => root.join(".releases"),
        }
    }

    /// Where `tend import --install --replace` keeps what it took over (the record and
    /// backup of the service it replaced, its journal): `<state root>/.replace/<name>`,
    /// next to [`Layout::releases_dir`] and as protected (the backup says what runs as the
    /// service if it is put back).
    #[must_use]
    pub fn replace_dir(&self) -> PathBuf {
        let releases = self.releases_dir().to_string_lossy().into_owned();
        for sep in ['/', '\\'] {
            let dir = format!("{sep}.releases{sep}");
            if let Some(i) = releases.rfind(&dir) {
                return PathBuf::from(format!(
                    "{}{sep}.replace{sep}{}",
                    &releases[..i],
                    &releases[i + dir.len()..]
                ));
            }
        }
        parent(&self.state_dir).join(".replace")
    }

    /// The status file a supervisor keeps in [`Layout::state_dir`].
    #[must_use]
    pub fn status_file(&self, name: &ServiceName) -> PathBuf {
        status_file(&self.state_dir, name.as_str())
    }
}

/// `<dir>/<name>.status.json`: the supervisor's status file (in the state directory of an
/// installed service, next to the logs for `tend run`).
#[must_use]
pub fn status_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.status.json"))
}

/// The per-user Run key, under HKEY_CURRENT_USER.
pub const RUN_KEY: &str = r"Software\Microsoft\Windows\CurrentVersion\Run";

/// The Run value of a per-user Windows service: `tend-<name>`.
#[must_use]
pub fn run_value_name(name: &ServiceName) -> String {
    format!("tend-{name}")
}

/// The launchd label of a service: `dev.tend.<name>`.
pub(crate) fn launchd_label(name: &ServiceName) -> String {
    format!("dev.tend.{name}")
}

/// The arguments after the tend binary that the OS manager passes: `service <name>`, or
/// `service --user <name>` for the per-user scope (so `tend service` looks for the config
/// and logs in the user's directories of [`Layout`]). The CLI must accept exactly this.
#[must_use]
pub fn service_args(name: &ServiceName, scope: &Scope) -> Vec<String> {
    let mut v = vec!["service".to_owned()];
    if scope.is_user() {
        v.push("--user".to_owned());
    }
    v.push(name.as_str().to_owned());
    v
}

/// The arguments of tend's hidden `upgrade-recover` sub-command for a service: what its
/// start runs first (systemd `ExecStartPre=`), to end an upgrade a killed tend left.
#[must_use]
pub fn upgrade_recover_args(name: &ServiceName, scope: &Scope) -> Vec<String> {
    let mut v = vec!["upgrade-recover".to_owned()];
    if scope.is_user() {
        v.push("--user".to_owned());
    }
    v.push(name.as_str().to_owned());
    v
}

/// `base\rel` with Windows' separator whatever the host: Windows paths must render the
/// same when the tests run on Linux.
fn win_join(base: &Path, rel: &str) -> PathBuf {
    let mut s: OsString = base.as_os_str().to_owned();
    if !s.as_encoded_bytes().ends_with(b"\\") && !s.as_encoded_bytes().ends_with(b"/") {
        s.push("\\");
    }
    s.push(rel);
    PathBuf::from(s)
}

/// The directory of a layout path, whatever the host: split at the last `/` or `\`, as
/// `Path::parent` on Linux does not split `C:\ProgramData\tend\services\web.toml` and
/// the Windows backends' tests run there too. The last component is a service's file or
/// directory, and a service name contains neither separator. A path that is not UTF-8 can
/// only be a Unix one: `Path::parent` is right for it.
fn parent(path: &Path) -> PathBuf {
    match path
        .to_str()
        .and_then(|s| s.rfind(['/', '\\']).map(|i| &s[..i]))
    {
        Some(dir) => PathBuf::from(dir),
        None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    }
}

/// `base/rel` with a `/` separator whatever the host: these are paths on the target (Linux
/// or macOS), and must render the same when the tests run on Windows.
pub(crate) fn join(base: &Path, rel: &str) -> PathBuf {
    let mut s: OsString = base.as_os_str().to_owned();
    if !s.as_encoded_bytes().ends_with(b"/") {
        s.push("/");
    }
    s.push(rel);
    PathBuf::from(s)
}

/// Absolute in the Unix sense (starts with `/`), whatever the host: `Path::is_absolute`
/// wants a drive letter on Windows.
pub(crate) fn is_unix_absolute(p: &Path) -> bool {
    p.as_os_str().as_encoded_bytes().first() == Some(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> ServiceName {
        ServiceName::new("web").unwrap()
    }

    #[test]
    fn system_layouts() {
        let l = Layout::new(Backend::Systemd, &Scope::system(), &name());
        assert_eq!(l.config, Path::new("/etc/tend/web.toml"));
        assert_eq!(l.definition, Path::new("/etc/systemd/system/web.service"));
        assert_eq!(l.state_dir, Path::new("/var/lib/tend/web"));
        assert_eq!(l.log_dir, Path::new("/var/log/tend/web"));
        assert_eq!(l.stdio_log, None);
        assert_eq!(l.config_dir(), Path::new("/etc/tend"));
        assert_eq!(l.log_root(), Path::new("/var/log/tend"));
        assert_eq!(l.releases_dir(), Path::new("/var/lib/tend/.releases/web"));
        assert_eq!(l.replace_dir(), Path::new("/var/lib/tend/.replace/web"));

        let l = Layout::new(Backend::Launchd, &Scope::system(), &name());
        assert_eq!(l.config, Path::new("/etc/tend/web.toml"));
        assert_eq!(
            l.definition,
            Path::new("/Library/LaunchDaemons/dev.tend.web.plist")
        );
        assert_eq!(
            l.state_dir,
            Path::new("/Library/Application Support/tend/web")
        );
        assert_eq!(
            l.stdio_log.as_deref(),
            Some(Path::new("/var/log/tend/web/web.launchd.log"))
        );
    }

    #[test]
    fn user_layouts_honour_absolute_xdg_only() {
        let mut u = UserContext::new(501, "/home/ann/");
        let l = Layout::new(Backend::Systemd, &Scope::User(u.clone()), &name());
        assert_eq!(l.config, Path::new("/home/ann/.config/tend/web.toml"));
        assert_eq!(
            l.definition,
            Path::new("/home/ann/.config/systemd/user/web.service")
        );
        assert_eq!(l.state_dir, Path::new("/home/ann/.local/state/tend/web"));
        assert_eq!(l.log_dir, Path::new("/home/ann/.local/state/log/tend/web"));
        assert_eq!(
            l.releases_dir(),
            Path::new("/home/ann/.local/state/tend/.releases/web")
        );

        u.xdg_config_home = Some("/cfg".into());
        u.xdg_state_home = Some("relative/state".into());
        let l = Layout::new(Backend::Systemd, &Scope::User(u.clone()), &name());
        assert_eq!(l.config, Path::new("/cfg/tend/web.toml"));
        assert_eq!(l.state_dir, Path::new("/home/ann/.local/state/tend/web"));

        let l = Layout::new(Backend::Launchd, &Scope::User(u), &name());
        assert_eq!(l.config, Path::new("/cfg/tend/web.toml"));
        assert_eq!(
            l.definition,
            Path::new("/home/ann/Library/LaunchAgents/dev.tend.web.plist")
        );
        assert_eq!(l.log_dir, Path::new("/home/ann/Library/Logs/tend/web"));
    }

    #[test]
    fn windows_layouts() {
        let system = Scope::System(SystemContext {
            program_data: r"D:\Data".into(),
        });
        let l = Layout::new(Backend::Scm, &system, &name());
        assert_eq!(l.config, Path::new(r"D:\Data\tend\services\web.toml"));
        assert_eq!(l.state_dir, Path::new(r"D:\Data\tend\state\web"));
        assert_eq!(
            l.releases_dir(),
            Path::new(r"D:\Data\tend\state\.releases\web")
        );
        assert_eq!(
            l.replace_dir(),
            Path::new(r"D:\Data\tend\state\.replace\web")
        );
        assert_eq!(l.log_dir, Path::new(r"D:\Data\tend\logs\web"));
        // On every host, not only on Windows.
        assert_eq!(l.config_dir(), Path::new(r"D:\Data\tend\services"));
        assert_eq!(l.log_root(), Path::new(r"D:\Data\tend\logs"));
        assert_eq!(
            l.definition,
            Path::new(r"HKLM\SYSTEM\CurrentControlSet\Services\web")
        );
        assert_eq!(l.stdio_log, None);
        assert_eq!(
            Layout::new(Backend::Scm, &Scope::system(), &name()).config,
            Path::new(r"C:\ProgramData\tend\services\web.toml")
        );

        let mut u = UserContext::new(0, r"C:\Users\ann");
        let l = Layout::new(Backend::RunKey, &Scope::User(u.clone()), &name());
        assert_eq!(
            l.config,
            Path::new(r"C:\Users\ann\AppData\Local\tend\services\web.toml")
        );
        u.local_app_data = Some(r"E:\Local\".into());
        let l = Layout::new(Backend::RunKey, &Scope::User(u), &name());
        assert_eq!(l.config, Path::new(r"E:\Local\tend\services\web.toml"));
        assert_eq!(l.state_dir, Path::new(r"E:\Local\tend\state\web"));
        assert_eq!(l.log_dir, Path::new(r"E:\Local\tend\logs\web"));
        assert_eq!(
            l.stdio_log.as_deref(),
            Some(Path::new(r"E:\Local\tend\state\web\service.stderr.log"))
        );
        assert_eq!(
            l.definition,
            Path::new(r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\tend-web")
        );
    }

    #[test]
    fn service_args_per_scope() {
        assert_eq!(service_args(&name(), &Scope::system()), ["service", "web"]);
        let user = Scope::User(UserContext::new(1000, "/home/ann"));
        assert_eq!(service_args(&name(), &user), ["service", "--user", "web"]);
    }
}
