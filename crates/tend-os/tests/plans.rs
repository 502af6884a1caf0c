//! Every verb's plan, for both backends and both scopes: the exact argv the fake runner
//! sees, and the files written (path, mode, owner), carried out through `apply`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{ann, name, user};
use tend_core::{Account, ServiceName, StartMode};
use tend_os::launchd::{self, PlistInput};
use tend_os::systemd::{self, UnitInput};
use tend_os::testing::{FakeRunner, MemFiles, Reply};
use tend_os::{OsStatus, RunError, RunState, Scope, Step, apply};

const CONFIG: &str = "name = \"web\"\ncommand = [\"/usr/bin/web\"]\n";

fn argvs(v: &[&[&str]]) -> Vec<Vec<String>> {
    v.iter()
        .map(|a| a.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

/// Applies `plan` with a fake runner and in-memory files; returns both for inspection.
fn run_plan(plan: &[Step]) -> (FakeRunner, MemFiles) {
    let runner = FakeRunner::new();
    let files = MemFiles::new();
    apply(plan, &runner, &files).unwrap();
    (runner, files)
}

fn unit_input(scope: Scope, start: StartMode, account: Account) -> UnitInput {
    UnitInput {
        tend_path: "/usr/local/bin/tend".into(),
        name: name("web"),
        scope,
        description: "Web".into(),
        start,
        depends_on: Vec::new(),
        account,
        stop_timeout: Duration::from_secs(10),
        watchdog: None,
        hardening: tend_core::Hardening::Basic,
        dumps: false,
    }
}

fn plist_input(scope: Scope, start: StartMode, account: Account) -> PlistInput {
    PlistInput {
        tend_path: "/usr/local/bin/tend".into(),
        name: name("web"),
        scope,
        start,
        account,
        stop_timeout: Duration::from_secs(10),
        depends_on: Vec::new(),
    }
}

const HOME: &str = "/home/Ann O'Neil & Co 100% $x ünï";

#[test]
fn systemd_install_system_auto() {
    let input = unit_input(Scope::system(), StartMode::Auto, Account::Isolated);
    let plan = systemd::install(&input, CONFIG).unwrap();
    let (runner, files) = run_plan(&plan);
    assert_eq!(
        runner.calls(),
        argvs(&[
            &["systemctl", "daemon-reload"],
            &["systemctl", "enable", "web.service"],
        ])
    );
    assert_eq!(files.dir("/etc/tend"), Some((0o755, None)));
    // A dynamic user must be able to read tend's copy of the config.
    assert_eq!(
        files.file("/etc/tend/web.toml"),
        Some((CONFIG.to_owned(), 0o644))
    );
    assert_eq!(
        files.file("/etc/systemd/system/web.service"),
        Some((systemd::render_unit(&input).unwrap(), 0o644))
    );
    // The unit file is written before systemd is told to reload.
    let write = plan
        .iter()
        .position(|s| matches!(s, Step::WriteFile { path, .. } if path.ends_with("web.service")));
    let reload = plan
        .iter()
        .position(|s| matches!(s, Step::Run { argv, .. } if argv[1] == "daemon-reload"));
    assert!(write < reload);
}

#[test]
fn systemd_install_start_modes_and_accounts() {
    for (start, verb) in [
        (StartMode::Auto, "enable"),
        (StartMode::DelayedAuto, "enable"),
        (StartMode::Manual, "disable"),
        (StartMode::Disabled, "disable"),
    ] {
        let plan = systemd::install(&unit_input(Scope::system(), start, ann()), CONFIG).unwrap();
        let (runner, _) = run_plan(&plan);
        assert_eq!(
            runner.calls().last().unwrap(),
            &["systemctl", verb, "web.service"],
            "{start:?}"
        );
    }
    // Root's config copy is private.
    let plan = systemd::install(
        &unit_input(Scope::system(), StartMode::Auto, Account::System),
        CONFIG,
    )
    .unwrap();
    let (_, files) = run_plan(&plan);
    assert_eq!(files.file("/etc/tend/web.toml").unwrap().1, 0o600);
}

#[test]
fn systemd_install_user() {
    let input = unit_input(user(), StartMode::Auto, Account::Isolated);
    let plan = systemd::install(&input, CONFIG).unwrap();
    let (runner, files) = run_plan(&plan);
    assert_eq!(
        runner.calls(),
        argvs(&[
            &["systemctl", "--user", "daemon-reload"],
            &["systemctl", "--user", "enable", "web.service"],
        ])
    );
    let home = Path::new(HOME);
    assert_eq!(files.dir(home.join(".config/tend")), Some((0o700, None)));
    assert_eq!(
        files.file(home.join(".config/tend/web.toml")).unwrap().1,
        0o600
    );
    for d in [
        ".config/systemd/user",
        ".local/state/tend/web",
        ".local/state/log/tend/web",
    ] {
        assert_eq!(files.dir(home.join(d)), Some((0o755, None)), "{d}");
    }
    let (unit, mode) = files
        .file(home.join(".config/systemd/user/web.service"))
        .unwrap();
    assert_eq!(mode, 0o644);
    assert!(unit.contains("ExecStart=/usr/local/bin/tend service --user web\n"));
}

/// The non-install verbs of one backend and scope, with the argv each must run.
type VerbCase = (
    &'static str,
    fn(&ServiceName, &Scope) -> Vec<Step>,
    Vec<Vec<String>>,
);

fn check_verbs(scope: &Scope, cases: Vec<VerbCase>) {
    for (verb, plan_of, expected) in cases {
        let (runner, _) = run_plan(&plan_of(&name("web"), scope));
        assert_eq!(runner.calls(), expected, "{verb} ({scope:?})");
    }
}

#[test]
fn systemd_verbs_system_and_user() {
    for (scope, pre) in [
        (Scope::system(), vec!["systemctl"]),
        (user(), vec!["systemctl", "--user"]),
    ] {
        let c = |args: &[&str]| -> Vec<String> {
            pre.iter().chain(args).map(|s| (*s).to_owned()).collect()
        };
        check_verbs(
            &scope,
            vec![
                (
                    "start",
                    systemd::start,
                    vec![
                        c(&["reset-failed", "web.service"]),
                        c(&["start", "web.service"]),
                    ],
                ),
                ("stop", systemd::stop, vec![c(&["stop", "web.service"])]),
                (
                    "restart",
                    systemd::restart,
                    vec![
                        c(&["reset-failed", "web.service"]),
                        c(&["restart", "web.service"]),
                    ],
                ),
                (
                    "reload",
                    systemd::reload,
                    vec![c(&["reload", "web.service"])],
                ),
                (
                    "uninstall",
                    systemd::uninstall,
                    vec![
                        c(&["stop", "web.service"]),
                        c(&["disable", "web.service"]),
                        c(&["daemon-reload"]),
                        c(&["reset-failed", "web.service"]),
                    ],
                ),
            ],
        );
    }
}

#[test]
fn systemd_uninstall_removes_unit_and_config_only() {
    let plan = systemd::uninstall(&name("web"), &Scope::system());
    let removed: Vec<&Path> = plan
        .iter()
        .filter_map(|s| match s {
            Step::RemoveFile { path } => Some(path.as_path()),
            _ => None,
        })
        .collect();
    assert_eq!(
        removed,
        [
            Path::new("/etc/systemd/system/web.service"),
            Path::new("/etc/tend/web.toml")
        ]
    );
    // reset-failed of a unit that never failed is an error systemctl may report; tolerated.
    assert!(matches!(
        plan.last(),
        Some(Step::Run { may_fail: true, .. })
    ));
}

#[test]
fn systemd_start_tolerates_reset_failed_but_not_start() {
    let runner = FakeRunner::new();
    runner.reply(
        &["systemctl", "reset-failed", "web.service"],
        Reply::exit(1, "Unit web.service not loaded."),
    );
    let applied = apply(
        &systemd::start(&name("web"), &Scope::system()),
        &runner,
        &MemFiles::new(),
    )
    .unwrap();
    assert_eq!(applied.tolerated.len(), 1);

    runner.reply(
        &["systemctl", "start", "web.service"],
        Reply::exit(
            1,
            "Job for web.service failed because the control process exited with error code.",
        ),
    );
    let err = apply(
        &systemd::start(&name("web"), &Scope::system()),
        &runner,
        &MemFiles::new(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("step 2 (run systemctl start web.service)"),
        "{msg}"
    );
    assert!(msg.contains("exit code 1"), "{msg}");
}

#[test]
fn systemd_status_asks_show_and_parses_it() {
    let runner = FakeRunner::new();
    let argv = systemd::status_argv(&name("web"), &Scope::system());
    assert_eq!(
        argv,
        [
            "systemctl",
            "show",
            "web.service",
            "--property=LoadState,ActiveState,SubState,UnitFileState,MainPID,ExecMainCode,ExecMainStatus,FragmentPath,NRestarts,Result",
            "--no-pager"
        ]
    );
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    runner.reply(
        &args,
        Reply::ok(
            "MainPID=77\nLoadState=loaded\nActiveState=active\nSubState=running\n\
             UnitFileState=enabled\nExecMainCode=0\nExecMainStatus=0\n\
             FragmentPath=/etc/systemd/system/web.service\n",
        ),
    );
    let s = systemd::status(&runner, &name("web"), &Scope::system()).unwrap();
    assert!(s.installed && s.active());
    assert_eq!((s.pid, s.enabled), (Some(77), Some(true)));
    assert_eq!(runner.calls(), vec![argv.clone()]);

    let user_argv = systemd::status_argv(&name("web"), &user());
    assert_eq!(&user_argv[..3], ["systemctl", "--user", "show"]);
    let s = systemd::status(&FakeRunner::new(), &name("web"), &user()).unwrap();
    assert_eq!(s, OsStatus::not_installed());

    let no_systemd = FakeRunner::new();
    no_systemd.reply(&args, Reply::SpawnError(std::io::ErrorKind::NotFound));
    assert!(matches!(
        systemd::status(&no_systemd, &name("web"), &Scope::system()),
        Err(RunError::Spawn { .. })
    ));
}

#[test]
fn launchd_install_system() {
    let input = plist_input(Scope::system(), StartMode::Auto, ann());
    let plan = launchd::install(&input, CONFIG).unwrap();
    let (runner, files) = run_plan(&plan);
    let plist = "/Library/LaunchDaemons/dev.tend.web.plist";
    assert_eq!(
        runner.calls(),
        argvs(&[
            &["launchctl", "bootout", "system/dev.tend.web"],
            &["launchctl", "enable", "system/dev.tend.web"],
            &["launchctl", "bootstrap", "system", plist],
        ])
    );
    // Unloading an old version is allowed to fail: on a first install there is none.
    assert!(matches!(&plan[4], Step::Run { argv, may_fail: true } if argv[1] == "bootout"));
    assert_eq!(
        files.file(plist),
        Some((launchd::render_plist(&input).unwrap(), 0o644))
    );
    assert_eq!(files.file("/etc/tend/web.toml").unwrap().1, 0o644);
    // The service's user must be able to write its logs and state.
    assert_eq!(
        files.dir("/var/log/tend/web"),
        Some((0o755, Some("ann".into())))
    );
    assert_eq!(
        files.dir("/Library/Application Support/tend/web"),
        Some((0o755, Some("ann".into())))
    );
}

#[test]
fn launchd_install_disabled_is_not_loaded() {
    let input = plist_input(Scope::system(), StartMode::Disabled, Account::System);
    let (runner, files) = run_plan(&launchd::install(&input, CONFIG).unwrap());
    assert_eq!(
        runner.calls(),
        argvs(&[
            &["launchctl", "bootout", "system/dev.tend.web"],
            &["launchctl", "disable", "system/dev.tend.web"],
        ])
    );
    assert_eq!(files.file("/etc/tend/web.toml").unwrap().1, 0o600);
    assert_eq!(files.dir("/var/log/tend/web"), Some((0o755, None)));
}

#[test]
fn launchd_install_user() {
    let scope = user();
    for start in [StartMode::Auto, StartMode::DelayedAuto, StartMode::Manual] {
        let input = plist_input(scope.clone(), start, Account::Isolated);
        let (runner, files) = run_plan(&launchd::install(&input, CONFIG).unwrap());
        let plist = format!("{HOME}/Library/LaunchAgents/dev.tend.web.plist");
        assert_eq!(
            runner.calls(),
            argvs(&[
                &["launchctl", "bootout", "gui/501/dev.tend.web"],
                &["launchctl", "enable", "gui/501/dev.tend.web"],
                &["launchctl", "bootstrap", "gui/501", &plist],
            ]),
            "{start:?}"
        );
        let home = Path::new(HOME);
        assert_eq!(
            files.file(home.join(".config/tend/web.toml")).unwrap().1,
            0o600
        );
        for d in [
            "Library/LaunchAgents",
            "Library/Logs/tend/web",
            "Library/Application Support/tend/web",
        ] {
            assert_eq!(files.dir(home.join(d)), Some((0o755, None)), "{d}");
        }
    }
}

#[test]
fn launchd_verbs_system_and_user() {
    for (scope, target) in [
        (Scope::system(), "system/dev.tend.web"),
        (user(), "gui/501/dev.tend.web"),
    ] {
        let c = |args: &[&str]| -> Vec<String> {
            std::iter::once("launchctl")
                .chain(args.iter().copied())
                .chain([target])
                .map(str::to_owned)
                .collect()
        };
        check_verbs(
            &scope,
            vec![
                ("start", launchd::start, vec![c(&["kickstart"])]),
                ("stop", launchd::stop, vec![c(&["kill", "SIGTERM"])]),
                ("restart", launchd::restart, vec![c(&["kickstart", "-k"])]),
                ("reload", launchd::reload, vec![c(&["kill", "SIGHUP"])]),
                ("uninstall", launchd::uninstall, vec![c(&["bootout"])]),
            ],
        );
        let plan = launchd::uninstall(&name("web"), &scope);
        assert!(matches!(&plan[0], Step::Run { may_fail: true, .. }));
        assert_eq!(plan.len(), 3);
    }
}

#[test]
fn launchd_status_loaded_unloaded_and_errors() {
    let web = name("web");
    let argv = launchd::print_argv(&web, &Scope::system());
    assert_eq!(argv, ["launchctl", "print", "system/dev.tend.web"]);
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();

    let runner = FakeRunner::new();
    runner.reply(
        &args,
        Reply::ok("system/dev.tend.web = {\n\tstate = running\n\tpid = 12\n}\n"),
    );
    let s = launchd::status(&runner, &web, &Scope::system(), true).unwrap();
    assert_eq!((s.state, s.pid), (RunState::Running, Some(12)));

    let unknown = Reply::Exit {
        code: 113,
        stdout: String::new(),
        stderr: "Could not find service \"dev.tend.web\" in domain for system".into(),
    };
    runner.reply(&args, unknown);
    let s = launchd::status(&runner, &web, &Scope::system(), true).unwrap();
    assert!(s.installed && !s.active());
    assert_eq!(s.raw_state, "not loaded");
    assert_eq!(
        launchd::status(&runner, &web, &Scope::system(), false).unwrap(),
        OsStatus::not_installed()
    );

    runner.reply(&args, Reply::exit(1, "Operation not permitted"));
    assert!(launchd::status(&runner, &web, &Scope::system(), true).is_err());

    let user_argv = launchd::print_argv(&web, &user());
    assert_eq!(user_argv[2], "gui/501/dev.tend.web");
}

#[test]
fn inputs_from_a_loaded_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("svc.toml");
    std::fs::write(
        &path,
        r#"
name = "demo"
display_name = "Demo service"
description = "What it does"
command = ["sh", "-c", "sleep 1"]

[stop]
timeout = "25s"

[service]
start = "delayed-auto"
depends_on = ["postgresql"]
account = "ann"
"#,
    )
    .unwrap();
    let spec = tend_config::load(&path, &tend_config::LoadOptions::default())
        .unwrap()
        .spec;
    let u = UnitInput::from_spec(&spec, "/usr/local/bin/tend", Scope::system());
    assert_eq!(u.name.as_str(), "demo");
    assert_eq!(u.description, "What it does");
    assert_eq!(u.start, StartMode::DelayedAuto);
    assert_eq!(u.depends_on, ["postgresql"]);
    assert_eq!(u.account, ann());
    assert_eq!(u.stop_timeout, Duration::from_secs(25));
    assert_eq!(u.watchdog, None);
    let unit = systemd::render_unit(&u).unwrap();
    assert!(unit.contains("\nTimeoutStopSec=35s\n"), "{unit}");
    assert!(unit.contains("\nUser=ann\n"), "{unit}");

    let p = PlistInput::from_spec(&spec, "/usr/local/bin/tend", Scope::system());
    assert_eq!(p.stop_timeout, Duration::from_secs(25));
    let w = launchd::warnings(&p);
    assert!(w.iter().any(|w| w.contains("depends_on")), "{w:?}");
    assert!(w.iter().any(|w| w.contains("delayed-auto")), "{w:?}");

    // Without a description, the display name describes the unit.
    let mut spec2 = spec;
    spec2.description = None;
    let u = UnitInput::from_spec(&spec2, "/usr/local/bin/tend", Scope::system());
    assert_eq!(u.description, "Demo service");
}

#[test]
fn systemd_warnings() {
    let mut input = unit_input(user(), StartMode::DelayedAuto, Account::Isolated);
    input.depends_on = vec!["x".into()];
    let w = systemd::warnings(&input);
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w.iter().any(|w| w.contains("loginctl enable-linger")));

    input.scope = Scope::system();
    input.account = Account::User {
        name: "ann".into(),
        password_env: Some("PW".into()),
    };
    let w = systemd::warnings(&input);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("password_env"));
}
