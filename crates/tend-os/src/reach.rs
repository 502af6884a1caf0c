//! What an installed service will be able to reach: the decision, as a pure function.
//!
//! `tend install` runs as root, which can read and run anything; the service does not. A
//! unit with `DynamicUser=yes` runs as a user that owns nothing, with a private `/tmp` and
//! a read-only file system; `hardening = "strict"` also hides the home directories. So a
//! tend binary in `/tmp`, a program under `/root` or a log directory beside the config
//! install fine and fail only at start (systemd's `203/EXEC`, "permission denied",
//! "read-only file system"). [`check`] finds those at install time from facts the CLI
//! gathers (every path component's type, mode and owner, looked at as root) and the
//! unit's [`Sandbox`], and says for each what is wrong and how to fix it.
//!
//! Only mode bits are read: an ACL that grants more is not seen (the CLI's override flag
//! is for that).

use std::path::{Path, PathBuf};

use tend_core::{Account, Hardening};

use crate::Scope;

/// Who the service runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// root with its capabilities: reads and writes anything, runs any file with an `x`
    /// bit.
    Root,
    /// A user with these ids (a named `account`, the caller of a `--user` unit, or root
    /// without capabilities: `hardening = "strict"`).
    User {
        /// How messages name it (`user \`www-data\``).
        label: String,
        /// The user id.
        uid: u32,
        /// Its primary group.
        gid: u32,
        /// Its supplementary groups.
        groups: Vec<u32>,
    },
    /// systemd's `DynamicUser=yes`: a fresh id that owns nothing outside its own state and
    /// log directories, so only the "other" mode bits count.
    Dynamic,
}

impl Identity {
    fn describe(&self) -> String {
        match self {
            Self::Root => "root".to_owned(),
            Self::User { label, .. } => label.clone(),
            Self::Dynamic => "the service's dynamic user (account = \"isolated\")".to_owned(),
        }
    }
}

/// What a unit's sandbox does to the file system, as far as reaching files goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// Who the service runs as.
    pub identity: Identity,
    /// `PrivateTmp=`: `/tmp` and `/var/tmp` are the service's own, empty.
    pub private_tmp: bool,
    /// `ProtectHome=`.
    pub protect_home: ProtectHome,
    /// `ProtectSystem=strict`: everything is read-only except [`Sandbox::writable`].
    pub read_only_system: bool,
    /// Where the service may write whatever the rest says: `StateDirectory=` and
    /// `LogsDirectory=`, which systemd creates owned by the service's user.
    pub writable: Vec<PathBuf>,
    /// Why it is sandboxed, for messages: `account = "isolated"`, `hardening = "strict"`.
    pub because: String,
}

/// `ProtectHome=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectHome {
    /// Homes as they are.
    No,
    /// `read-only` (implied by `DynamicUser=yes`).
    ReadOnly,
    /// `yes`: `/home`, `/root` and `/run/user` are empty.
    Hidden,
}

/// The home directories `ProtectHome=` covers.
const HOMES: [&str; 3] = ["/home", "/root", "/run/user"];
/// The directories `PrivateTmp=` replaces.
const TMPS: [&str; 2] = ["/tmp", "/var/tmp"];

impl Sandbox {
    /// The sandbox of a systemd unit rendered for `account` and `hardening` in `scope`,
    /// given the ids of a named account (`None` for the others, or when the user does not
    /// exist: then the CLI reports that first). `state_dir` and `log_dir` are the unit's
    /// `StateDirectory=`/`LogsDirectory=` paths (or, for `--user`, the directories install
    /// creates).
    #[must_use]
    pub fn systemd(
        scope: &Scope,
        account: &Account,
        hardening: Hardening,
        user: Option<Identity>,
        writable: Vec<PathBuf>,
    ) -> Self {
        if scope.is_user() {
            // A user manager applies none of the sandbox; the unit runs as the caller.
            return Self {
                identity: user.unwrap_or(Identity::Root),
                private_tmp: false,
                protect_home: ProtectHome::No,
                read_only_system: false,
                writable,
                because: String::new(),
            };
        }
        let strict = hardening == Hardening::Strict;
        let identity = match account {
            Account::Isolated => Identity::Dynamic,
            Account::System if strict => Identity::User {
                label: "root without capabilities (hardening = \"strict\")".to_owned(),
                uid: 0,
                gid: 0,
                groups: Vec::new(),
            },
            Account::System => Identity::Root,
            _ => user.unwrap_or(Identity::Root),
        };
        let dynamic = identity == Identity::Dynamic;
        let mut writable = writable;
        if dynamic {
            // A dynamic user's directories are symlinks: /var/log/tend/web points to
            // /var/log/private/tend/web, which is what canonical paths show.
            let private: Vec<PathBuf> = writable
                .iter()
                .filter_map(|dir| {
                    let base = dir.ancestors().nth(2)?;
                    Some(base.join("private").join(dir.strip_prefix(base).ok()?))
                })
                .collect();
            writable.extend(private);
        }
        let because = match (dynamic, strict) {
            (_, true) => "hardening = \"strict\"",
            (true, false) => "account = \"isolated\"",
            (false, false) => "",
        };
        Self {
            identity,
            private_tmp: dynamic || strict,
            protect_home: if strict {
                ProtectHome::Hidden
            } else if dynamic {
                ProtectHome::ReadOnly
            } else {
                ProtectHome::No
            },
            read_only_system: dynamic || strict,
            writable,
            because: because.to_owned(),
        }
    }

    fn under_writable(&self, path: &Path) -> bool {
        self.writable.iter().any(|w| path.starts_with(w))
    }
}

/// One path component as root sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The component's full path.
    pub path: PathBuf,
    /// What is there.
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The type of an [`Entry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// Anything else (device, socket, ...).
    Other,
}

/// What the service must be able to do with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Run it (the tend binary, the program).
    Exec,
    /// Read it (`env_file`).
    Read,
    /// Make it its working directory.
    Enter,
    /// Create files in it (the log directory); tend creates it when it is missing.
    Write,
}

/// One path to check: which key it comes from, what is needed, and what root found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The config key, or `the tend binary`.
    pub key: String,
    /// The path as configured (absolute).
    pub path: PathBuf,
    /// What the service needs of it.
    pub need: Need,
    /// The components from `/` down to the path, as far as they exist (the last entry is
    /// the path itself when it exists). Built from the canonical path, so symlinks are
    /// already followed.
    pub chain: Vec<Entry>,
    /// Whether the chain reaches the path (it exists).
    pub exists: bool,
}

/// Why the service cannot use a path, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The config key, or `the tend binary`.
    pub key: String,
    /// The path as configured.
    pub path: PathBuf,
    /// What goes wrong.
    pub why: String,
    /// How to fix it.
    pub fix: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} `{}`: {}; {}",
            self.key,
            self.path.display(),
            self.why,
            self.fix
        )
    }
}

const R: u32 = 4;
const W: u32 = 2;
const X: u32 = 1;

/// Whether `who` has all of `want` (a mix of [`R`], [`W`], [`X`]) on `e`.
fn allowed(who: &Identity, e: &Entry, want: u32) -> bool {
    let bits = |shift: u32| (e.mode >> shift) & 0o7;
    match who {
        // root needs an x bit somewhere to run a file; it bypasses the rest.
        Identity::Root => want & X == 0 || e.kind == Kind::Dir || e.mode & 0o111 != 0,
        Identity::User {
            uid, gid, groups, ..
        } => {
            let b = if *uid == e.uid {
                bits(6)
            } else if *gid == e.gid || groups.contains(&e.gid) {
                bits(3)
            } else {
                bits(0)
            };
            b & want == want
        }
        Identity::Dynamic => bits(0) & want == want,
    }
}

fn mode_owner(e: &Entry) -> String {
    format!("mode {:04o}, owner uid {}", e.mode & 0o7777, e.uid)
}

/// Every problem the service would have with `targets`; empty when it can use them all.
#[must_use]
pub fn check(sandbox: &Sandbox, targets: &[Target]) -> Vec<Problem> {
    targets
        .iter()
        .filter_map(|t| check_one(sandbox, t))
        .collect()
}

fn check_one(sb: &Sandbox, t: &Target) -> Option<Problem> {
    let problem = |why: String, fix: String| {
        Some(Problem {
            key: t.key.clone(),
            path: t.path.clone(),
            why,
            fix,
        })
    };
    // The canonical path decides (a symlink from /usr/local/bin into /tmp is still /tmp).
    let real = if t.exists {
        t.chain
            .last()
            .map_or(t.path.as_path(), |e| e.path.as_path())
    } else {
        t.path.as_path()
    };
    let place = match t.need {
        Need::Exec if t.key == "the tend binary" => "e.g. /usr/local/bin",
        Need::Write => "its default, /var/log/tend/<name> (remove [logs] dir)",
        _ => "e.g. /opt/<name> or /srv/<name>",
    };
    if sb.private_tmp && TMPS.iter().any(|d| real.starts_with(d)) {
        return problem(
            format!(
                "the service gets a private /tmp and /var/tmp ({}), where this does not exist",
                sb.because
            ),
            format!("move it out of /tmp and /var/tmp, {place}"),
        );
    }
    let in_home = HOMES.iter().any(|d| real.starts_with(d));
    if sb.protect_home == ProtectHome::Hidden && in_home {
        return problem(
            format!(
                "home directories (/home, /root, /run/user) are hidden from the service ({})",
                sb.because
            ),
            format!("move it out of home directories, {place}, or set hardening = \"basic\""),
        );
    }
    // systemd creates StateDirectory=/LogsDirectory= for the service's user, also when a
    // dynamic user's real ones sit under /var/{lib,log}/private (mode 0700).
    if t.need == Need::Write && sb.under_writable(real) {
        return None;
    }
    let who = sb.identity.describe();
    let (dirs, last) = match (t.exists, t.chain.split_last()) {
        (true, Some((last, dirs))) => (dirs, Some(last)),
        _ => (t.chain.as_slice(), None),
    };
    for d in dirs {
        if d.kind != Kind::Dir {
            return problem(
                format!("`{}` is not a directory", d.path.display()),
                "fix the path".to_owned(),
            );
        }
        if !allowed(&sb.identity, d, X) {
            return problem(
                format!(
                    "{who} cannot enter `{}` ({})",
                    d.path.display(),
                    mode_owner(d)
                ),
                format!(
                    "move it to a directory every user can enter, {place}, or let {who} in (chmod o+x `{}`)",
                    d.path.display()
                ),
            );
        }
    }
    match (t.need, last) {
        (Need::Write, _) => {
            let read_only = !sb.under_writable(real)
                && (sb.read_only_system || (sb.protect_home != ProtectHome::No && in_home));
            if read_only {
                return problem(
                    format!(
                        "the file system is read-only for the service ({}) except its state and log directories",
                        sb.because
                    ),
                    format!(
                        "use {place}, or a named account (account = \"<user>\") with hardening = \"basic\""
                    ),
                );
            }
            // tend creates a missing log directory: then its nearest parent must be writable.
            let dir = last.or(dirs.last())?;
            if dir.kind != Kind::Dir {
                return problem("is not a directory".to_owned(), "fix [logs] dir".to_owned());
            }
            if !allowed(&sb.identity, dir, W | X) {
                return problem(
                    format!(
                        "{who} cannot create files in `{}` ({})",
                        dir.path.display(),
                        mode_owner(dir)
                    ),
                    format!("make it writable for {who} (chown it to the account), or use {place}"),
                );
            }
            None
        }
        // Existence is tend-config's to report (with the key and line); nothing to add.
        (_, None) => None,
        (Need::Exec, Some(f)) => {
            if f.kind != Kind::File {
                return problem("is not a file".to_owned(), "fix the path".to_owned());
            }
            if allowed(&sb.identity, f, X) {
                return None;
            }
            problem(
                format!("{who} cannot run it ({})", mode_owner(f)),
                format!("chmod a+rx it, or {place}"),
            )
        }
        (Need::Read, Some(f)) => {
            if allowed(&sb.identity, f, R) {
                return None;
            }
            let fix = if sb.identity == Identity::Dynamic {
                "a dynamic user reads only world-readable files: for a secret, run the service as a named account that owns the file (account = \"<user>\", chmod 600), or chmod o+r it".to_owned()
            } else {
                format!("chown it to {who} (and chmod 600), or chmod o+r it")
            };
            problem(format!("{who} cannot read it ({})", mode_owner(f)), fix)
        }
        (Need::Enter, Some(d)) => {
            if d.kind != Kind::Dir {
                return problem(
                    "is not a directory".to_owned(),
                    "fix working_dir".to_owned(),
                );
            }
            if allowed(&sb.identity, d, X) {
                return None;
            }
            problem(
                format!("{who} cannot enter it ({})", mode_owner(d)),
                format!("chmod o+x it, or {place}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(path: &str, mode: u32, uid: u32) -> Entry {
        Entry {
            path: path.into(),
            kind: Kind::Dir,
            mode,
            uid,
            gid: uid,
        }
    }

    fn file(path: &str, mode: u32, uid: u32) -> Entry {
        Entry {
            kind: Kind::File,
            ..dir(path, mode, uid)
        }
    }

    /// `/`, then each component of `path` as a root-owned 0755 directory, then `last`.
    fn chain(path: &str, last: Option<Entry>) -> Vec<Entry> {
        let mut v = vec![dir("/", 0o755, 0)];
        let p = Path::new(path);
        // Joined with `/` by hand: `PathBuf::push` would use `\` on a Windows host.
        let mut acc = String::new();
        let comps: Vec<_> = p.components().skip(1).collect();
        let n = comps.len() - usize::from(last.is_some());
        for c in &comps[..n] {
            acc.push('/');
            acc.push_str(&c.as_os_str().to_string_lossy());
            v.push(dir(&acc, 0o755, 0));
        }
        v.extend(last);
        v
    }

    fn target(key: &str, need: Need, path: &str, chain: Vec<Entry>, exists: bool) -> Target {
        Target {
            key: key.into(),
            path: path.into(),
            need,
            chain,
            exists,
        }
    }

    fn tend_at(path: &str, mode: u32) -> Target {
        target(
            "the tend binary",
            Need::Exec,
            path,
            chain(path, Some(file(path, mode, 0))),
            true,
        )
    }

    fn sandbox(account: Account, hardening: Hardening, user: Option<Identity>) -> Sandbox {
        Sandbox::systemd(
            &Scope::system(),
            &account,
            hardening,
            user,
            vec!["/var/lib/tend/web".into(), "/var/log/tend/web".into()],
        )
    }

    fn bob() -> Identity {
        Identity::User {
            label: "user `bob`".into(),
            uid: 1000,
            gid: 1000,
            groups: vec![50],
        }
    }

    fn named() -> Account {
        Account::User {
            name: "bob".into(),
            password_env: None,
        }
    }

    /// One row: the sandbox, the target, and a piece of the expected problem (`None`: fine).
    #[test]
    fn verdicts() {
        let isolated = sandbox(Account::Isolated, Hardening::Basic, None);
        let isolated_strict = sandbox(Account::Isolated, Hardening::Strict, None);
        let root = sandbox(Account::System, Hardening::Basic, None);
        let root_strict = sandbox(Account::System, Hardening::Strict, None);
        let bob_basic = sandbox(named(), Hardening::Basic, Some(bob()));
        let bob_strict = sandbox(named(), Hardening::Strict, Some(bob()));
        let mut root_home = chain("/root/bin/tend", Some(file("/root/bin/tend", 0o755, 0)));
        root_home[1] = dir("/root", 0o700, 0);
        let mut home_bob = chain(
            "/home/bob/app/server",
            Some(file("/home/bob/app/server", 0o750, 1000)),
        );
        home_bob[2] = dir("/home/bob", 0o750, 1000);
        let env = |mode, uid| {
            target(
                "env_file",
                Need::Read,
                "/etc/web/secrets.env",
                chain(
                    "/etc/web/secrets.env",
                    Some(file("/etc/web/secrets.env", mode, uid)),
                ),
                true,
            )
        };
        let logs = |path: &str, exists: bool| {
            let last = exists.then(|| dir(path, 0o755, 0));
            let mut c = chain(path, last);
            if !exists {
                c.pop();
            }
            target("logs.dir", Need::Write, path, c, exists)
        };
        let bob_logs = {
            let mut t = logs("/srv/web/logs", true);
            t.chain.last_mut().unwrap().uid = 1000;
            t
        };
        let workdir = |mode| {
            target(
                "working_dir",
                Need::Enter,
                "/srv/web",
                chain("/srv/web", Some(dir("/srv/web", mode, 0))),
                true,
            )
        };
        let cases: Vec<(&str, &Sandbox, Target, Option<&str>)> = vec![
            (
                "tend in /usr/local/bin",
                &isolated,
                tend_at("/usr/local/bin/tend", 0o755),
                None,
            ),
            (
                "tend in /tmp, isolated",
                &isolated,
                tend_at("/tmp/tend", 0o755),
                Some("private /tmp"),
            ),
            (
                "tend in /var/tmp, strict root",
                &root_strict,
                tend_at("/var/tmp/x/tend", 0o755),
                Some("private /tmp"),
            ),
            (
                "tend in /tmp, root basic: fine",
                &root,
                tend_at("/tmp/tend", 0o755),
                None,
            ),
            (
                "tend under /root, isolated",
                &isolated,
                target(
                    "the tend binary",
                    Need::Exec,
                    "/root/bin/tend",
                    root_home.clone(),
                    true,
                ),
                Some("cannot enter `/root` (mode 0700"),
            ),
            (
                "tend under /root, root basic",
                &root,
                target(
                    "the tend binary",
                    Need::Exec,
                    "/root/bin/tend",
                    root_home.clone(),
                    true,
                ),
                None,
            ),
            (
                "tend under /root, strict: hidden",
                &root_strict,
                target(
                    "the tend binary",
                    Need::Exec,
                    "/root/bin/tend",
                    root_home,
                    true,
                ),
                Some("hidden"),
            ),
            (
                "tend not executable by others",
                &isolated,
                tend_at("/usr/local/bin/tend", 0o750),
                Some("cannot run it (mode 0750"),
            ),
            (
                "tend without any x bit, root",
                &root,
                tend_at("/usr/local/bin/tend", 0o644),
                Some("root cannot run it"),
            ),
            (
                "program in bob's home, bob",
                &bob_basic,
                target(
                    "command",
                    Need::Exec,
                    "/home/bob/app/server",
                    home_bob.clone(),
                    true,
                ),
                None,
            ),
            (
                "program in bob's home, isolated",
                &isolated,
                target(
                    "command",
                    Need::Exec,
                    "/home/bob/app/server",
                    home_bob.clone(),
                    true,
                ),
                Some("cannot enter `/home/bob`"),
            ),
            (
                "program in bob's home, bob strict",
                &bob_strict,
                target(
                    "command",
                    Need::Exec,
                    "/home/bob/app/server",
                    home_bob,
                    true,
                ),
                Some("hidden"),
            ),
            ("env_file 0644", &isolated, env(0o644, 0), None),
            (
                "env_file 0600 root, isolated",
                &isolated,
                env(0o600, 0),
                Some("dynamic user reads only world-readable"),
            ),
            ("env_file 0600 bob, bob", &bob_basic, env(0o600, 1000), None),
            (
                "env_file 0600 root, bob",
                &bob_basic,
                env(0o600, 0),
                Some("user `bob` cannot read it"),
            ),
            (
                "env_file 0640 group 50, bob",
                &bob_basic,
                {
                    let mut t = env(0o640, 0);
                    t.chain.last_mut().unwrap().gid = 50;
                    t
                },
                None,
            ),
            (
                "env_file 0600 root, strict root",
                &root_strict,
                env(0o600, 0),
                None,
            ),
            (
                "env_file 0600 bob, strict root",
                &root_strict,
                env(0o600, 1000),
                Some("root without capabilities"),
            ),
            (
                "default log dir, isolated",
                &isolated,
                logs("/var/log/tend/web", false),
                None,
            ),
            (
                "default log dir after a first start: /var/log/private/tend/web",
                &isolated,
                {
                    let mut t = logs("/var/log/private/tend/web", true);
                    t.path = "/var/log/tend/web".into();
                    t.chain[3].mode = 0o700;
                    t
                },
                None,
            ),
            (
                "relative log dir, isolated",
                &isolated,
                logs("/srv/web/logs", true),
                Some("read-only"),
            ),
            (
                "log dir, isolated strict",
                &isolated_strict,
                logs("/srv/web/logs", true),
                Some("read-only"),
            ),
            ("log dir of bob's, bob", &bob_basic, bob_logs.clone(), None),
            (
                "log dir of bob's, bob strict",
                &bob_strict,
                bob_logs,
                Some("read-only"),
            ),
            (
                "root's log dir, bob",
                &bob_basic,
                logs("/srv/web/logs", true),
                Some("cannot create files in `/srv/web/logs`"),
            ),
            (
                "missing log dir, root",
                &root,
                logs("/srv/web/logs", false),
                None,
            ),
            (
                "missing log dir, bob: parent is root's",
                &bob_basic,
                logs("/srv/web/logs", false),
                Some("cannot create files in `/srv/web`"),
            ),
            ("working_dir 0755", &isolated, workdir(0o755), None),
            (
                "working_dir 0700",
                &isolated,
                workdir(0o700),
                Some("cannot enter it"),
            ),
        ];
        let mut failures = Vec::new();
        for (what, sb, t, want) in cases {
            let got = check(sb, std::slice::from_ref(&t));
            let text = got.first().map(ToString::to_string);
            let ok = match (&text, want) {
                (None, None) => true,
                (Some(t), Some(w)) => t.contains(w),
                _ => false,
            };
            if !ok {
                failures.push(format!("{what}: want {want:?}, got {text:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn problems_name_the_key_the_path_and_a_fix() {
        let sb = sandbox(Account::Isolated, Hardening::Basic, None);
        let p = check(&sb, &[tend_at("/tmp/tend", 0o755)]);
        assert_eq!(
            p[0].to_string(),
            "the tend binary `/tmp/tend`: the service gets a private /tmp and /var/tmp (account = \"isolated\"), where this does not exist; move it out of /tmp and /var/tmp, e.g. /usr/local/bin"
        );
    }

    #[test]
    fn user_units_have_no_sandbox() {
        let sb = Sandbox::systemd(
            &Scope::User(crate::UserContext::new(1000, "/home/bob")),
            &Account::Isolated,
            Hardening::Strict,
            Some(bob()),
            Vec::new(),
        );
        assert_eq!(sb.identity, bob());
        assert!(!sb.private_tmp && !sb.read_only_system);
        assert_eq!(sb.protect_home, ProtectHome::No);
    }
}
