//! The systemd and launchd backends against a scripted runner and in-memory files.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use crate::testing::{FakeRunner, MemFiles, Reply};
use crate::{Install, RunOutput, UserContext};

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

fn machine<'a>(scope: crate::Scope, runner: &'a Scripted, fs: &'a MemFs) -> Machine<'a> {
    Machine {
        scope,
        runner,
        fs,
        is_root: true,
        tend_exe: "/usr/local/bin/tend".into(),
        poll: Duration::from_millis(1),
        access: Access::Skip,
    }
}

fn systemd<'a>(scope: crate::Scope, runner: &'a Scripted, fs: &'a MemFs) -> Systemd<'a> {
    Systemd::new(machine(scope, runner, fs))
}

fn launchd<'a>(scope: crate::Scope, runner: &'a Scripted, fs: &'a MemFs) -> Launchd<'a> {
    Launchd::new(machine(scope, runner, fs))
}

#[test]
fn start_refuses_an_installed_config_that_no_longer_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, text) = spec(dir.path(), "");
    let (runner, fs) = (Scripted::default(), MemFs::default());
    show(&runner, &[NOT_FOUND]);
    let u = systemd(crate::Scope::system(), &runner, &fs);
    u.install_with(&spec, &text, false, &mut Report::default())
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
    let u = systemd(crate::Scope::system(), &runner, &fs);
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
    // A machine where systemd knows network-online.target, and postgresql.service in
    // `postgresql`'s LoadState.
    let machine = |postgresql: &str| {
        let exists = |unit: &str| format!("systemctl show {unit} --property=LoadState --value");
        let (runner, fs) = (Scripted::default(), MemFs::default());
        show(&runner, &[NOT_FOUND]);
        runner.then(
            &argv(&exists("postgresql.service")),
            &[Reply::ok(postgresql)],
        );
        runner.then(
            &argv(&exists("network-online.target")),
            &[Reply::ok("loaded\n")],
        );
        (runner, fs)
    };
    let (runner, fs) = machine("not-found\n");
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let e = u
        .install_with(&spec, &text, false, &mut Report::default())
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
    let (runner, fs) = machine("loaded\n");
    let u = systemd(crate::Scope::system(), &runner, &fs);
    u.install_with(&spec, &text, false, &mut Report::default())
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
    let u = launchd(crate::Scope::system(), &runner, &fs);
    let e = u
        .install_with(&spec, &text, false, &mut Report::default())
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
    let mut u = systemd(crate::Scope::system(), &runner, &fs);
    u.m.access = Access::Check;
    let e = u
        .install_with(&spec, &text, false, &mut Report::default())
        .unwrap_err();
    assert!(e.to_string().contains("--no-access-check"), "{e}");
    assert_eq!(e.exit_code(), 2);
    assert!(fs.0.file("/etc/tend/web.toml").is_none());
    assert!(runner.calls().is_empty(), "{:?}", runner.calls());

    // --no-access-check: installed, with the problem as a warning.
    u.m.access = Access::Warn;
    let mut r = Report::default();
    show(&runner, &[NOT_FOUND]);
    u.install_with(&spec, &text, false, &mut r).unwrap();
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
    let mut u = systemd(crate::Scope::system(), &runner, &fs);
    u.m.access = Access::Check;
    let mut r = Report::default();
    u.install_with(&spec, &text, false, &mut r).unwrap();
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
    let mut u = systemd(crate::Scope::system(), &runner, &fs);
    u.m.is_root = false;
    let e = u
        .install_with(&spec, &text, false, &mut Report::default())
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
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let mut r = Report::default();
    u.install_with(&spec, &text, false, &mut r).unwrap();
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
    assert!(crate::systemd::is_generated_by_tend(&unit));
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
    let u = systemd(crate::Scope::system(), &runner, &fs);
    u.install_with(&old_spec, &old_text, false, &mut Report::default())
        .unwrap();

    let (spec, text) = spec(dir.path(), "[stop]\ntimeout = \"20s\"\n");
    let runner = Scripted::default();
    show(&runner, &[ACTIVE]);
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let mut r = Report::default();
    u.install_with(&spec, &text, false, &mut r).unwrap();
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
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let mut r = Report::default();
    u.install_with(&spec, &text, false, &mut r).unwrap();
    assert_eq!(r.lines, ["service `web` is installed and unchanged"]);
    assert!(!runner.calls().iter().any(|c| c.contains("reload web")));
}

/// `tend apply` compares first (`definition_diff` changes nothing) and then updates a
/// running service with `leave_running`, to reload or restart it by its own rules.
#[test]
fn systemd_definition_diff_compares_and_leave_running_does_not_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (old_spec, old_text) = spec(dir.path(), "[stop]\ntimeout = \"5s\"\n");
    let (runner, fs) = (Scripted::default(), MemFs::default());
    show(&runner, &[NOT_FOUND]);
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let install = |spec, original| Install {
        spec,
        original,
        leave_running: true,
    };
    let new = u
        .definition_diff(&install(&old_spec, &old_text))
        .unwrap()
        .unwrap();
    assert!(new.iter().all(|l| l.starts_with("+ ")), "{new:?}");
    u.install_with(&old_spec, &old_text, false, &mut Report::default())
        .unwrap();
    let same = u.definition_diff(&install(&old_spec, &old_text)).unwrap();
    assert_eq!(same, Some(vec![]));

    let (spec, text) = spec(dir.path(), "[stop]\ntimeout = \"20s\"\n");
    let runner = Scripted::default();
    show(&runner, &[ACTIVE]);
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let before = fs.0.file("/etc/systemd/system/web.service").unwrap();
    assert_eq!(
        u.definition_diff(&install(&spec, &text)).unwrap().unwrap(),
        ["- TimeoutStopSec=15s", "+ TimeoutStopSec=30s"]
    );
    assert!(runner.calls().is_empty(), "comparing asks nothing");
    assert_eq!(
        fs.0.file("/etc/systemd/system/web.service").unwrap(),
        before
    );
    let mut r = Report::default();
    u.install_with(&spec, &text, true, &mut r).unwrap();
    assert_eq!(r.changed, Changed::Updated);
    assert_eq!(
        runner.calls(),
        [
            SHOW,
            "systemctl daemon-reload",
            "systemctl enable web.service"
        ],
        "no reload: the caller decides"
    );
}

#[test]
fn install_refuses_a_unit_tend_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, text) = spec(dir.path(), "");
    let (runner, fs) = (Scripted::default(), MemFs::default());
    show(
        &runner,
        &["LoadState=loaded\nActiveState=active\nFragmentPath=/lib/systemd/system/web.service\n"],
    );
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let e = u
        .install_with(&spec, &text, false, &mut Report::default())
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
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let e = u
        .install_with(&spec, &text, false, &mut Report::default())
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
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let e = u
        .install_with(&spec, &text, false, &mut Report::default())
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
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let m: &dyn ServiceManager = &u;
    assert_eq!(m.backend(), Backend::Systemd);
    let f = m.start(&spec.name).unwrap_err();
    assert!(matches!(f.error, Error::NotInstalled(_)), "{f}");
    assert_eq!(f.error.exit_code(), crate::exit::NOT_INSTALLED);
    assert_eq!(f.report.changed, Changed::Nothing);
    let install = Install {
        spec: &spec,
        original: &text,
        leave_running: false,
    };
    let r = m.install(&install).unwrap();
    assert_eq!(r.changed, Changed::Installed);
    assert!(
        r.lines[0].starts_with("installed service `web` (systemd"),
        "{r:?}"
    );

    let runner = Scripted::default();
    show(&runner, &[INACTIVE]);
    let u = systemd(crate::Scope::system(), &runner, &fs);
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
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let mut r = Report::default();
    for verb in [
        Systemd::start_with,
        Systemd::stop_with,
        Systemd::restart_with,
        Systemd::reload_with,
        Systemd::uninstall_with,
    ] {
        let e = verb(&u, &spec.name, &mut r).unwrap_err();
        assert!(matches!(e, Error::NotInstalled(_)), "{e}");
        assert_eq!(e.exit_code(), 3);
    }
    u.install_with(&spec, &text, false, &mut r).unwrap();

    let runner = Scripted::default();
    // reload's look, start's look before and after.
    show(&runner, &[INACTIVE, INACTIVE, ACTIVE]);
    let u = systemd(crate::Scope::system(), &runner, &fs);
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
    let u = systemd(crate::Scope::system(), &runner, &fs);
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
        &["LoadState=loaded\nActiveState=active\nFragmentPath=/lib/systemd/system/web.service\n"],
    );
    let u = systemd(crate::Scope::system(), &runner, &fs);
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
    let mut u = launchd(user(), &runner, &fs);
    u.m.is_root = false;
    let mut r = Report::default();
    u.install_with(&spec, &text, false, &mut r).unwrap();
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
    let u = launchd(user(), &runner, &fs);
    let mut r = Report::default();
    u.install_with(&spec, &text, false, &mut r).unwrap();
    assert_eq!(runner.calls(), [PRINT]);
    assert_eq!(r.lines, ["service `web` is installed and unchanged"]);
}

#[test]
fn launchd_stop_and_start_wait_for_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, text) = spec(dir.path(), "[service]\nstart = \"manual\"\n");
    let (runner, fs) = (Scripted::default(), MemFs::default());
    runner.then(&argv(PRINT), &[Reply::exit(113, "Could not find service")]);
    let u = launchd(user(), &runner, &fs);
    let mut r = Report::default();
    u.install_with(&spec, &text, false, &mut r).unwrap();
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
    let u = launchd(user(), &runner, &fs);
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
    let u = launchd(user(), &runner, &fs);
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
    let mut u = launchd(user(), &runner, &fs);
    u.m.poll = Duration::from_millis(50);
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
    let u = launchd(crate::Scope::system(), &runner, &fs);
    u.install_with(&spec, &text, false, &mut Report::default())
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
    let u = launchd(crate::Scope::system(), &runner, &fs);
    let mut r = Report::default();
    u.install_with(&spec, &text, false, &mut r).unwrap();
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

#[test]
fn two_backends_behind_one_seam() {
    let (runner, fs) = (Scripted::default(), MemFs::default());
    let s: &dyn ServiceManager = &systemd(crate::Scope::system(), &runner, &fs);
    let l: &dyn ServiceManager = &launchd(user(), &runner, &fs);
    assert_eq!(
        (s.backend(), l.backend()),
        (Backend::Systemd, Backend::Launchd)
    );
    assert_eq!(Systemd::DEFINITION, "unit");
    assert_eq!(Launchd::DEFINITION, "plist");
}

#[test]
fn preflight_compares_what_is_installed_with_what_install_would_write() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, text) = spec(dir.path(), "");
    let (runner, fs) = (Scripted::default(), MemFs::default());
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let doctor = |spec: &ServiceSpec, text: &str| {
        u.preflight(&Install {
            spec,
            original: text,
            leave_running: false,
        })
        .unwrap()
    };
    // Nothing installed yet; a built-in account has nothing to look up.
    let p = doctor(&spec, &text);
    assert_eq!(p.drift, Drift::NotInstalled);
    assert_eq!(p.account, None);
    assert!(p.access.is_ok());
    // doctor changes nothing and asks systemctl nothing.
    assert!(runner.calls().is_empty(), "{:?}", runner.calls());
    assert!(fs.0.file("/etc/tend/web.toml").is_none());

    show(&runner, &[NOT_FOUND]);
    u.install_with(&spec, &text, false, &mut Report::default())
        .unwrap();
    let p = doctor(&spec, &text);
    assert_eq!(
        p.drift,
        Drift::Compared {
            config: vec![],
            definition: vec![]
        }
    );

    // A hand-edited unit is drift of the definition.
    let unit = "/etc/systemd/system/web.service";
    let (old, mode) = fs.0.file(unit).unwrap();
    fs.0.write_file(Path::new(unit), &old.replace("Restart=", "#Restart="), mode)
        .unwrap();
    let Drift::Compared { config, definition } = doctor(&spec, &text).drift else {
        panic!("not compared");
    };
    assert!(config.is_empty(), "{config:?}");
    assert!(
        definition.iter().any(|l| l.starts_with("- #Restart=")),
        "{definition:?}"
    );

    // A config changed since the install is drift of the copy.
    let (spec2, text2) = spec_with(dir.path(), "[stop]\ntimeout = \"5s\"\n");
    let Drift::Compared { config, .. } = doctor(&spec2, &text2).drift else {
        panic!("not compared");
    };
    assert!(config.contains(&"+ [stop]".to_owned()), "{config:?}");
}

/// [`spec`] under another name for the closure above (which borrows `spec`).
fn spec_with(dir: &Path, extra: &str) -> (ServiceSpec, String) {
    spec(dir, extra)
}

#[test]
fn preflight_says_a_missing_account_as_install_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, text) = spec(
        dir.path(),
        "[service]\naccount = \"no-such-user-tend-test\"\n",
    );
    let (runner, fs) = (Scripted::default(), MemFs::default());
    let mut u = systemd(crate::Scope::system(), &runner, &fs);
    let p = u
        .preflight(&Install {
            spec: &spec,
            original: &text,
            leave_running: false,
        })
        .unwrap();
    let Some(Err(why)) = &p.account else {
        panic!("{:?}", p.account);
    };
    assert!(why.contains("no such user"), "{why}");
    // install refuses the same thing, in the same words.
    u.m.access = Access::Check;
    let mut r = Report::default();
    u.install_with(&spec, &text, false, &mut r).unwrap_err();
    assert!(
        r.problems.iter().any(|l| l.ends_with(why.as_str())),
        "{r:?}"
    );
}

const LEGACY_SHOW: &str = "systemctl show legacy.service --property=LoadState,ActiveState,UnitFileState,FragmentPath,DropInPaths --no-pager";
const LEGACY_STATUS: &str = "systemctl show legacy.service --property=LoadState,ActiveState,SubState,UnitFileState,MainPID,ExecMainCode,ExecMainStatus,FragmentPath,NRestarts,Result --no-pager";

#[test]
fn take_over_records_first_then_frees_the_name_and_put_back_restores_it() {
    let (runner, fs) = (Scripted::default(), MemFs::default());
    let unit = "[Service]\nExecStart=/srv/legacy --port 8080\n";
    let dropin = "[Service]\nEnvironment=MODE=prod\n";
    fs.write_file(Path::new("/etc/systemd/system/legacy.service"), unit, 0o644)
        .unwrap();
    fs.write_file(
        Path::new("/etc/systemd/system/legacy.service.d/env.conf"),
        dropin,
        0o644,
    )
    .unwrap();
    runner.then(
        &argv(LEGACY_SHOW),
        &[Reply::ok(
            "LoadState=loaded\nActiveState=active\nUnitFileState=enabled\nFragmentPath=/etc/systemd/system/legacy.service\nDropInPaths=/etc/systemd/system/legacy.service.d/env.conf\n",
        )],
    );
    let u = systemd(crate::Scope::system(), &runner, &fs);
    let name = ServiceName::new("legacy").unwrap();
    let foreign = u.record_foreign(&name).unwrap();
    assert!(foreign.active && foreign.enabled);
    assert_eq!(foreign.files.len(), 2);
    assert_eq!(foreign.files[0].text, unit);
    assert_eq!(runner.calls(), [LEGACY_SHOW], "recording changes nothing");

    u.take_over(&foreign, &name).unwrap();
    assert!(fs.0.file("/etc/systemd/system/legacy.service").is_none());
    assert!(
        fs.0.file("/etc/systemd/system/legacy.service.d/env.conf")
            .is_none()
    );
    assert_eq!(
        runner.calls()[1..],
        [
            "systemctl stop legacy.service",
            "systemctl disable legacy.service",
            "systemctl daemon-reload",
            "systemctl reset-failed legacy.service",
        ]
    );

    // tend's service never got installed: the put-back only restores.
    show(&runner, &[NOT_FOUND]);
    runner.then(&argv(LEGACY_STATUS), &[Reply::ok(NOT_FOUND)]);
    let before = runner.calls().len();
    let r = u.put_back(&foreign, &name).unwrap();
    assert_eq!(
        fs.0.file("/etc/systemd/system/legacy.service").unwrap().0,
        unit
    );
    assert_eq!(
        fs.0.file("/etc/systemd/system/legacy.service.d/env.conf")
            .unwrap()
            .0,
        dropin
    );
    assert_eq!(
        runner.calls()[before..],
        [
            LEGACY_STATUS,
            "systemctl daemon-reload",
            "systemctl enable legacy.service",
            "systemctl reset-failed legacy.service",
            "systemctl start legacy.service",
        ]
    );
    assert!(
        r.lines
            .iter()
            .any(|l| l.contains("put `legacy.service` back")),
        "{r:?}"
    );
}

#[test]
fn take_over_refuses_tends_own_a_packages_unit_and_a_missing_one() {
    let (runner, fs) = (Scripted::default(), MemFs::default());
    let name = ServiceName::new("legacy").unwrap();
    runner.then(&argv(LEGACY_SHOW), &[Reply::ok(NOT_FOUND)]);
    let u = systemd(crate::Scope::system(), &runner, &fs);
    assert!(matches!(
        u.record_foreign(&name),
        Err(Error::NotInstalled(_))
    ));
    runner.then(
        &argv(LEGACY_SHOW),
        &[Reply::ok(
            "LoadState=loaded\nActiveState=active\nFragmentPath=/usr/lib/systemd/system/legacy.service\n",
        )],
    );
    let e = u.record_foreign(&name).unwrap_err();
    assert!(e.to_string().contains("not a package's"), "{e}");
    assert_eq!(e.exit_code(), 2);
    runner.then(
        &argv(LEGACY_SHOW),
        &[Reply::ok(
            "LoadState=loaded\nActiveState=active\nFragmentPath=/etc/systemd/system/legacy.service\n",
        )],
    );
    fs.write_file(
        Path::new("/etc/systemd/system/legacy.service"),
        &format!("{}\n[Service]\n", crate::systemd::GENERATED_MARKER),
        0o644,
    )
    .unwrap();
    let e = u.record_foreign(&name).unwrap_err();
    assert!(e.to_string().contains("already tend's"), "{e}");
    // launchd has no take-over yet: said, not attempted.
    let l = launchd(crate::Scope::system(), &runner, &fs);
    let e = l.record_foreign(&name).unwrap_err();
    assert!(e.to_string().contains("not supported for launchd"), "{e}");
}
