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
}

/// System-wide service (root) or the current user's own service (`tend install --user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A system service: `/etc/systemd/system`, `/Library/LaunchDaemons`; needs root.
    System,
    /// A per-user service: `systemctl --user`, `~/Library/LaunchAgents`.
    User(UserContext),
}

impl Scope {
    /// Whether this is the per-user scope.
    #[must_use]
    pub fn is_user(&self) -> bool {
        matches!(self, Self::User(_))
    }
}

/// What the per-user scope needs to know about the user. The CLI fills it from the
/// process (`getuid()`, `$HOME`, `$XDG_CONFIG_HOME`, `$XDG_STATE_HOME`); nothing here reads
/// the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserContext {
    /// The numeric user id (launchd's `gui/<uid>` domain).
    pub uid: u32,
    /// The home directory (absolute).
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, if set. Ignored unless absolute, as the XDG spec says.
    pub xdg_config_home: Option<PathBuf>,
    /// `$XDG_STATE_HOME`, if set. Ignored unless absolute.
    pub xdg_state_home: Option<PathBuf>,
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
}

fn xdg_or(var: Option<&Path>, home: &Path, default: &str) -> PathBuf {
    match var {
        Some(p) if is_unix_absolute(p) => p.to_owned(),
        _ => join(home, default),
    }
}

/// The files and directories of one installed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// tend's copy of the config, which `tend service <name>` reads.
    pub config: PathBuf,
    /// The unit file or plist.
    pub service_file: PathBuf,
    /// tend's state directory for this service.
    pub state_dir: PathBuf,
    /// The default `[logs] dir` of the installed service.
    pub log_dir: PathBuf,
    /// Where launchd sends tend's own stdout and stderr (panics, errors before logging is
    /// set up). `None` on systemd, where they go to the journal.
    pub stdio_log: Option<PathBuf>,
}

impl Layout {
    /// The layout of service `name` for `backend` in `scope`.
    ///
    /// | | config | service file | state | logs |
    /// |---|---|---|---|---|
    /// | systemd | `/etc/tend/<name>.toml` | `/etc/systemd/system/<name>.service` | `/var/lib/tend/<name>` | `/var/log/tend/<name>` |
    /// | systemd `--user` | `~/.config/tend/<name>.toml` | `~/.config/systemd/user/<name>.service` | `~/.local/state/tend/<name>` | `~/.local/state/log/tend/<name>` |
    /// | launchd | `/etc/tend/<name>.toml` | `/Library/LaunchDaemons/dev.tend.<name>.plist` | `/Library/Application Support/tend/<name>` | `/var/log/tend/<name>` |
    /// | launchd `--user` | `~/.config/tend/<name>.toml` | `~/Library/LaunchAgents/dev.tend.<name>.plist` | `~/Library/Application Support/tend/<name>` | `~/Library/Logs/tend/<name>` |
    ///
    /// (`~/.config` and `~/.local/state` honour `$XDG_CONFIG_HOME` and `$XDG_STATE_HOME`.)
    #[must_use]
    pub fn new(backend: Backend, scope: &Scope, name: &ServiceName) -> Self {
        let n = name.as_str();
        let root = Path::new("/");
        match (backend, scope) {
            (Backend::Systemd, Scope::System) => Self {
                config: join(root, &format!("etc/tend/{n}.toml")),
                service_file: join(root, &format!("etc/systemd/system/{n}.service")),
                state_dir: join(root, &format!("var/lib/tend/{n}")),
                log_dir: join(root, &format!("var/log/tend/{n}")),
                stdio_log: None,
            },
            (Backend::Systemd, Scope::User(u)) => Self {
                config: join(&u.config_home(), &format!("tend/{n}.toml")),
                service_file: join(&u.config_home(), &format!("systemd/user/{n}.service")),
                state_dir: join(&u.state_home(), &format!("tend/{n}")),
                // Where systemd >= 254 puts `LogsDirectory=` of user units; older systemd
                // uses ~/.config/log, which is why user units do not use LogsDirectory=.
                log_dir: join(&u.state_home(), &format!("log/tend/{n}")),
                stdio_log: None,
            },
            (Backend::Launchd, Scope::System) => {
                let log_dir = join(root, &format!("var/log/tend/{n}"));
                Self {
                    config: join(root, &format!("etc/tend/{n}.toml")),
                    service_file: join(
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
                    service_file: join(
                        &u.home,
                        &format!("Library/LaunchAgents/{}.plist", launchd_label(name)),
                    ),
                    state_dir: join(&u.home, &format!("Library/Application Support/tend/{n}")),
                    stdio_log: Some(join(&log_dir, &format!("{n}.launchd.log"))),
                    log_dir,
                }
            }
        }
    }
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
        let l = Layout::new(Backend::Systemd, &Scope::System, &name());
        assert_eq!(l.config, Path::new("/etc/tend/web.toml"));
        assert_eq!(l.service_file, Path::new("/etc/systemd/system/web.service"));
        assert_eq!(l.state_dir, Path::new("/var/lib/tend/web"));
        assert_eq!(l.log_dir, Path::new("/var/log/tend/web"));
        assert_eq!(l.stdio_log, None);

        let l = Layout::new(Backend::Launchd, &Scope::System, &name());
        assert_eq!(l.config, Path::new("/etc/tend/web.toml"));
        assert_eq!(
            l.service_file,
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
            l.service_file,
            Path::new("/home/ann/.config/systemd/user/web.service")
        );
        assert_eq!(l.state_dir, Path::new("/home/ann/.local/state/tend/web"));
        assert_eq!(l.log_dir, Path::new("/home/ann/.local/state/log/tend/web"));

        u.xdg_config_home = Some("/cfg".into());
        u.xdg_state_home = Some("relative/state".into());
        let l = Layout::new(Backend::Systemd, &Scope::User(u.clone()), &name());
        assert_eq!(l.config, Path::new("/cfg/tend/web.toml"));
        assert_eq!(l.state_dir, Path::new("/home/ann/.local/state/tend/web"));

        let l = Layout::new(Backend::Launchd, &Scope::User(u), &name());
        assert_eq!(l.config, Path::new("/cfg/tend/web.toml"));
        assert_eq!(
            l.service_file,
            Path::new("/home/ann/Library/LaunchAgents/dev.tend.web.plist")
        );
        assert_eq!(l.log_dir, Path::new("/home/ann/Library/Logs/tend/web"));
    }

    #[test]
    fn service_args_per_scope() {
        assert_eq!(service_args(&name(), &Scope::System), ["service", "web"]);
        let user = Scope::User(UserContext::new(1000, "/home/ann"));
        assert_eq!(service_args(&name(), &user), ["service", "--user", "web"]);
    }
}
