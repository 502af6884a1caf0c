//! The SCM backend's sequences, against [`FakeScm`]: what it asks the SCM and changes on
//! the machine, in order, for a first install, an update, a refusal, uninstall, start,
//! stop, restart and reload; and what it reports and exits with.

use std::time::Duration;

use tend_core::{Account, Hardening, InstallSpec, ServiceName, ServiceSpec, StartMode};

use super::acl::{self, Ace};
use super::api::{ExitCode, ServiceStatus, State};
use super::error::ScmError;
use super::{Rights, Scm};
use crate::testing::{FAKE_PID, FakeScm, FakeService, running, stopped};
use crate::{Access, Changed, Error, Install, ServiceManager, SystemContext, exit};

const CONFIG: &str = r"C:\ProgramData\tend\services\api.toml";
const SERVICES: &str = r"C:\ProgramData\tend\services";
const STATE: &str = r"C:\ProgramData\tend\state\api";
const LOGS: &str = r"C:\ProgramData\tend\logs\api";
const ORIGINAL: &str = "name = \"api\"\ncommand = [\"C:/app/api.exe\"]\n";
/// What `open` asks for at install.
const INSTALL_RIGHTS: &str = "QUERY_CONFIG|CHANGE_CONFIG|QUERY_STATUS|START";
/// tend's command line as the SCM stores it.
const OURS: &str = r#""C:\Program Files\tend\tend.exe" service api"#;

fn name() -> ServiceName {
    ServiceName::new("api").unwrap()
}

fn spec(service: InstallSpec) -> ServiceSpec {
    crate::testing::windows_spec(service, LOGS)
}

fn scm(fake: &FakeScm, access: Access) -> Scm<'_, FakeScm> {
    Scm::new(fake, fake, SystemContext::default(), access)
}

fn install(fake: &FakeScm, s: &ServiceSpec) -> Result<crate::Report, crate::Failure> {
    scm(fake, Access::Skip).install(&Install {
        spec: s,
        original: ORIGINAL,
        leave_running: false,
    })
}

fn sddl_calls(grantee: &str) -> Vec<String> {
    let g = [grantee.to_owned()];
    vec![
        format!("set_dacl {SERVICES} {}", acl::services_dir()),
        format!("set_dacl {CONFIG} {}", acl::config_file(&g)),
        format!("set_dacl {STATE} {}", acl::writable_dir(&g)),
        format!("set_dacl {LOGS} {}", acl::writable_dir(&g)),
    ]
}

/// What every install does after the SCM has the service: the settings, the Event Log
/// source, the directories and their rules.
fn after_create(settings: &[&str]) -> Vec<String> {
    let mut out = vec![
        "configure api: description \"API server (supervised by tend)\"".to_owned(),
        "configure api: preshutdown 30s".to_owned(),
    ];
    out.extend(settings.iter().map(|s| format!("configure api: {s}")));
    out.extend([
        "configure api: failure actions restart after [5, 30, 60]s, reset 86400s".to_owned(),
        "configure api: failure actions on non-crash true".to_owned(),
        "register_event_source api".to_owned(),
        format!("mkdir {STATE}"),
        format!("mkdir {LOGS}"),
    ]);
    out.extend(sddl_calls(&acl::service_sid("api")));
    out
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn first_install_writes_the_copy_creates_the_service_then_configures_it() {
    let fake = FakeScm::new();
    let r = install(&fake, &spec(InstallSpec::default())).unwrap();
    let mut want = vec![
        "connect create".to_owned(),
        format!("open api {INSTALL_RIGHTS}"),
        format!("mkdir {SERVICES}"),
        format!("write {CONFIG}"),
        r"create api start Auto account NT SERVICE\api password none".to_owned(),
    ];
    want.extend(after_create(&["sid Unrestricted"]));
    assert_eq!(fake.calls(), want);
    assert_eq!(r.changed, Changed::Installed);
    assert_eq!(
        r.lines,
        [format!(
            "installed service `api` (start auto, account NT SERVICE\\api)\nconfig copied to `{CONFIG}`\nstart it with: tend start api"
        )]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let copy = fake.file(CONFIG).unwrap();
    assert!(
        copy.contains("base_dir = 'C:/app'") && copy.ends_with(ORIGINAL),
        "{copy}"
    );
    let svc = fake.service("api").unwrap();
    assert_eq!(svc.config.command_line, OURS);
}

#[test]
fn reinstall_reads_what_is_installed_and_changes_only_what_differs() {
    let fake = FakeScm::new();
    install(&fake, &spec(InstallSpec::default())).unwrap();
    fake.clear_calls();

    // The same config again: the SCM is read, settings already so are not asked again.
    let r = install(&fake, &spec(InstallSpec::default())).unwrap();
    let mut want = vec![
        "connect create".to_owned(),
        format!("open api {INSTALL_RIGHTS}"),
        "query_config api".to_owned(),
        "query_delayed api".to_owned(),
        "query_sid_type api".to_owned(),
        "query_required_privileges api".to_owned(),
        format!("mkdir {SERVICES}"),
        format!("write {CONFIG}"),
        r"change_config api start Auto account NT SERVICE\api password none".to_owned(),
    ];
    want.extend(after_create(&[]));
    assert_eq!(fake.calls(), want);
    assert_eq!(r.changed, Changed::Nothing);
    assert_eq!(r.lines, ["service `api` is installed and unchanged"]);

    // Stricter and delayed, while stopped: what changed is listed, the new settings made.
    fake.clear_calls();
    let r = install(
        &fake,
        &spec(InstallSpec {
            start: StartMode::DelayedAuto,
            hardening: Hardening::Strict,
            ..InstallSpec::default()
        }),
    )
    .unwrap();
    let calls = fake.calls();
    let configured: Vec<&str> = calls
        .iter()
        .filter_map(|c| c.strip_prefix("configure api: "))
        .collect();
    assert_eq!(
        configured,
        [
            "description \"API server (supervised by tend)\"",
            "preshutdown 30s",
            "delayed true",
            "sid Restricted",
            "privileges [SeChangeNotifyPrivilege]",
            "failure actions restart after [5, 30, 60]s, reset 86400s",
            "failure actions on non-crash true",
        ]
    );
    assert_eq!(r.changed, Changed::Updated);
    assert_eq!(
        r.lines,
        [
            "updated service `api`:",
            "  start: Auto -> Auto (delayed)",
            "  service SID: Unrestricted -> Restricted",
            "  privileges: all of the account's -> SeChangeNotifyPrivilege",
        ]
    );
    let svc = fake.service("api").unwrap();
    assert_eq!(svc.delayed, Some(true));
    assert_eq!(
        svc.privileges.as_deref(),
        Some(&["SeChangeNotifyPrivilege".to_owned()][..])
    );
}

#[test]
fn an_update_of_a_running_service_says_restart_or_reloads() {
    let fake = FakeScm::new();
    install(&fake, &spec(InstallSpec::default())).unwrap();
    let mut svc = fake.service("api").unwrap();
    svc.status = running();
    fake.add_service("api", svc);

    // An SCM setting changed: only a restart applies it.
    fake.clear_calls();
    let manual = spec(InstallSpec {
        start: StartMode::Manual,
        ..InstallSpec::default()
    });
    let r = install(&fake, &manual).unwrap();
    assert_eq!(
        r.lines,
        [
            "updated service `api`:",
            "  start: Auto -> Demand",
            "restart it to apply: tend restart api",
        ]
    );
    assert_eq!(fake.calls().last().unwrap(), "query_status api");

    // Only the config changed: the running tend is asked to reload it.
    fake.clear_calls();
    let r = scm(&fake, Access::Skip)
        .install(&Install {
            spec: &manual,
            original: "name = \"api\"\ncommand = [\"C:/app/api.exe\", \"--v2\"]\n",
            leave_running: false,
        })
        .unwrap();
    assert_eq!(r.changed, Changed::Updated);
    assert_eq!(
        r.lines,
        [
            "updated service `api`:",
            "  config file changed",
            "reload sent to service `api`; `tend status api` shows whether it was applied",
        ]
    );
    let calls = fake.calls();
    assert_eq!(
        strs(&calls[calls.len() - 5..]),
        [
            "query_status api",
            "connect",
            "open api QUERY_STATUS|PAUSE_CONTINUE",
            "query_status api",
            "control api ParamChange",
        ]
    );
}

/// `tend apply` updates with `leave_running` and then reloads or restarts by its own rules:
/// the install itself sends nothing to the running tend.
#[test]
fn an_update_that_leaves_the_running_service_sends_it_nothing() {
    let fake = FakeScm::new();
    install(&fake, &spec(InstallSpec::default())).unwrap();
    let mut svc = fake.service("api").unwrap();
    svc.status = running();
    fake.add_service("api", svc);
    fake.clear_calls();
    let r = scm(&fake, Access::Skip)
        .install(&Install {
            spec: &spec(InstallSpec::default()),
            original: "name = \"api\"\ncommand = [\"C:/app/api.exe\", \"--v3\"]\n",
            leave_running: true,
        })
        .unwrap();
    assert_eq!(r.changed, Changed::Updated);
    assert_eq!(r.lines, ["updated service `api`:", "  config file changed"]);
    assert!(
        !fake.calls().iter().any(|c| c.starts_with("control ")),
        "{:?}",
        fake.calls()
    );
}

#[test]
fn install_refuses_a_service_tend_did_not_install_and_changes_nothing() {
    let fake = FakeScm::new();
    fake.add_service(
        "api",
        FakeService::new(r"C:\Windows\system32\svchost.exe -k api"),
    );
    let f = install(&fake, &spec(InstallSpec::default())).unwrap_err();
    assert!(matches!(f.error, Error::Invalid(_)), "{:?}", f.error);
    assert_eq!(f.error.exit_code(), exit::INVALID);
    assert!(
        f.error.to_string().contains(
            "is not managed by tend (it runs `C:\\Windows\\system32\\svchost.exe -k api`)"
        ),
        "{}",
        f.error
    );
    assert_eq!(
        fake.calls(),
        [
            "connect create".to_owned(),
            format!("open api {INSTALL_RIGHTS}"),
            "query_config api".to_owned(),
        ]
    );
    assert_eq!(fake.file(CONFIG), None);
}

#[test]
fn not_ours_names_a_foreign_service_and_only_reads() {
    let fake = FakeScm::new();
    fake.add_service("api", FakeService::new(r"C:\tools\nssm.exe"));
    let why = scm(&fake, Access::Check).not_ours(&name()).unwrap();
    assert!(
        why.contains("is not managed by tend (it runs `C:\\tools\\nssm.exe`)"),
        "{why}"
    );
    assert!(
        fake.calls()
            .iter()
            .all(|c| !c.starts_with("control") && !c.starts_with("delete")),
        "{:?}",
        fake.calls()
    );
    // tend's own service, and no service at all: nothing to say.
    let ours = FakeScm::new();
    install(&ours, &spec(InstallSpec::default())).unwrap();
    assert_eq!(scm(&ours, Access::Check).not_ours(&name()), None);
    assert_eq!(scm(&FakeScm::new(), Access::Check).not_ours(&name()), None);
}

#[test]
fn a_failed_create_removes_the_copy_and_keeps_the_os_error() {
    let fake = FakeScm::new();
    fake.fail(
        "create api",
        ScmError::os(5, "Access is denied. (os error 5)"),
    );
    let f = install(&fake, &spec(InstallSpec::default())).unwrap_err();
    assert_eq!(
        strs(&fake.calls()[2..]),
        [
            SERVICES_MKDIR,
            &format!("write {CONFIG}"),
            r"create api start Auto account NT SERVICE\api password none",
            &format!("remove {CONFIG}"),
        ]
    );
    assert_eq!(fake.file(CONFIG), None);
    match &f.error {
        Error::Scm { what, source } => {
            assert_eq!(source.code, Some(5));
            assert!(what.starts_with("cannot create service `api`"), "{what}");
            assert!(what.contains("elevated prompt"), "{what}");
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(f.error.exit_code(), exit::PERMISSION);
    assert_eq!(f.report.changed, Changed::Nothing);

    // Any other SCM failure is the OS's (5), with its code kept.
    let fake = FakeScm::new();
    fake.fail(
        "create api",
        ScmError::os(1073, "The specified service already exists."),
    );
    let f = install(&fake, &spec(InstallSpec::default())).unwrap_err();
    assert_eq!(f.error.exit_code(), exit::OS);
    assert!(matches!(&f.error, Error::Scm { source, .. } if source.code == Some(1073)));
}

const SERVICES_MKDIR: &str = r"mkdir C:\ProgramData\tend\services";

#[test]
fn settings_the_scm_refuses_are_warnings_not_failures() {
    let fake = FakeScm::new();
    fake.fail(
        "configure api: failure actions on",
        ScmError::os(124, "The system call level is not correct. (os error 124)"),
    );
    fake.fail("register_event_source", ScmError::os(5, "denied"));
    let r = install(&fake, &spec(InstallSpec::default())).unwrap();
    assert_eq!(r.changed, Changed::Installed);
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(
        r.warnings[0].starts_with("cannot apply failure actions to non-crash failures: ")
            && r.warnings[0].ends_with("this Windows (or Wine) does not support the setting"),
        "{}",
        r.warnings[0]
    );
    assert!(r.warnings[1].starts_with("cannot register the Event Log source: "));
}

#[test]
fn install_checks_dependencies_accounts_and_passwords_before_anything_changes() {
    // A dependency the SCM does not know.
    let fake = FakeScm::new();
    fake.add_service("Tcpip", FakeService::new("tcpip.sys"));
    let deps = spec(InstallSpec {
        depends_on: vec![
            "Tcpip".into(),
            "+NetworkProvider".into(),
            "NoSuchSvc".into(),
        ],
        ..InstallSpec::default()
    });
    let f = install(&fake, &deps).unwrap_err();
    assert!(
        f.error.to_string().starts_with("service.depends_on[2]:"),
        "{}",
        f.error
    );
    assert_eq!(
        fake.calls(),
        [
            "connect create",
            "open Tcpip QUERY_STATUS",
            "open NoSuchSvc QUERY_STATUS",
        ]
    );

    // A named user that does not exist, and one whose password variable is not set.
    let fake = FakeScm::new();
    let user = |password_env: Option<&str>| {
        spec(InstallSpec {
            account: Account::User {
                name: r"CORP\svc".into(),
                password_env: password_env.map(str::to_owned),
            },
            ..InstallSpec::default()
        })
    };
    let f = install(&fake, &user(None)).unwrap_err();
    assert_eq!(f.error.exit_code(), exit::INVALID);
    assert!(
        f.error
            .to_string()
            .contains(r"the account `CORP\svc` does not exist"),
        "{}",
        f.error
    );
    let f = install(&fake, &user(Some("SVC_PW"))).unwrap_err();
    assert!(
        f.error.to_string().contains("`SVC_PW` is not set"),
        "{}",
        f.error
    );
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());

    // With both, the SCM gets the account and its password.
    fake.put_account(r"CORP\svc").put_env("SVC_PW", "s3cret");
    install(&fake, &user(Some("SVC_PW"))).unwrap();
    assert!(
        fake.calls()
            .contains(&r"create api start Auto account CORP\svc password given".to_owned()),
        "{:?}",
        fake.calls()
    );
}

#[test]
fn install_refuses_what_the_service_account_cannot_reach_unless_told() {
    let owner_only = Some(vec![Ace {
        allow: true,
        sid: "S-1-5-21-1-2-3-1000".into(),
        mask: 0x1f_01ff,
        inherit_only: false,
    }]);
    let users_rx = Some(vec![Ace {
        allow: true,
        sid: "S-1-5-32-545".into(),
        mask: 0x12_00a9,
        inherit_only: false,
    }]);
    let fake = FakeScm::new();
    fake.put_dacl(r"C:\Program Files\tend\tend.exe", users_rx.clone())
        .put_dacl("C:/app/api.exe", owner_only)
        .put_dacl("C:/app", users_rx);
    let s = spec(InstallSpec::default());
    let i = Install {
        spec: &s,
        original: ORIGINAL,
        leave_running: false,
    };
    let f = scm(&fake, Access::Check).install(&i).unwrap_err();
    assert_eq!(f.error.exit_code(), exit::INVALID);
    let msg = f.error.to_string();
    assert!(
        msg.contains("nothing was changed") && msg.contains("\n  command[0]: "),
        "{msg}"
    );
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());

    let r = scm(&fake, Access::Warn).install(&i).unwrap();
    assert_eq!(r.changed, Changed::Installed);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].starts_with("command[0]: ")
            && r.warnings[0].ends_with("(installing anyway: --no-access-check)")
    );
}

#[test]
fn uninstall_stops_deletes_and_removes_the_copy_state_and_source() {
    let fake = FakeScm::new();
    let original = format!("{ORIGINAL}[logs]\ndir = \"elsewhere\"\n");
    scm(&fake, Access::Skip)
        .install(&Install {
            spec: &spec(InstallSpec::default()),
            original: &original,
            leave_running: false,
        })
        .unwrap();
    let mut svc = fake.service("api").unwrap();
    svc.status = running();
    fake.add_service("api", svc);
    fake.clear_calls();

    let r = scm(&fake, Access::Check).uninstall(&name()).unwrap();
    assert_eq!(
        fake.calls(),
        [
            "connect".to_owned(),
            "open api QUERY_CONFIG|QUERY_STATUS|STOP|DELETE".to_owned(),
            "query_config api".to_owned(),
            "query_status api".to_owned(),
            "control api Stop".to_owned(),
            "query_status api".to_owned(),
            "delete api".to_owned(),
            format!("remove {CONFIG}"),
            format!("rmdir {STATE}"),
            "remove_event_source api".to_owned(),
        ]
    );
    assert_eq!(r.changed, Changed::Uninstalled);
    // The installed config's `[logs] dir` (under base_dir, joined with this host's
    // separator), not the default log directory.
    assert_eq!(
        r.lines
            .iter()
            .map(|l| l.replace('\\', "/"))
            .collect::<Vec<_>>(),
        ["uninstalled service `api`; its logs remain in `C:/app/elsewhere`"]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(fake.service("api"), None);

    // Again: not installed (exit code 3), nothing touched.
    fake.clear_calls();
    let f = scm(&fake, Access::Check).uninstall(&name()).unwrap_err();
    assert!(matches!(f.error, Error::NotInstalled(_)));
    assert_eq!(f.error.exit_code(), exit::NOT_INSTALLED);
    assert_eq!(
        fake.calls(),
        ["connect", "open api QUERY_CONFIG|QUERY_STATUS|STOP|DELETE"]
    );
}

#[test]
fn uninstall_leaves_a_service_tend_did_not_install_alone() {
    let fake = FakeScm::new();
    fake.add_service("api", FakeService::new(r"C:\other\api.exe").running());
    let f = scm(&fake, Access::Check).uninstall(&name()).unwrap_err();
    assert_eq!(f.error.exit_code(), exit::INVALID);
    assert!(
        f.error.to_string().contains("not touching it"),
        "{}",
        f.error
    );
    assert_eq!(
        fake.calls(),
        [
            "connect",
            "open api QUERY_CONFIG|QUERY_STATUS|STOP|DELETE",
            "query_config api",
        ]
    );
    assert!(fake.service("api").is_some());
}

#[test]
fn start_waits_for_running_and_says_why_a_start_failed() {
    let fake = FakeScm::new();
    fake.add_service("api", FakeService::new(OURS));
    let m = scm(&fake, Access::Check);
    let r = m.start(&name()).unwrap();
    assert_eq!(
        fake.calls(),
        [
            "connect",
            "open api QUERY_STATUS|START",
            "query_status api",
            "start api",
            "query_status api",
        ]
    );
    assert_eq!(r.changed, Changed::Started);
    assert_eq!(
        r.lines,
        [format!("service `api` is running (tend pid {FAKE_PID})")]
    );

    // Already running: nothing asked of the SCM beyond its state.
    fake.clear_calls();
    let r = m.start(&name()).unwrap();
    assert_eq!(r.changed, Changed::Nothing);
    assert_eq!(r.lines, ["service `api` is already running"]);
    assert_eq!(fake.calls().len(), 3);

    // tend exits while starting with the config's exit code: said at once, not after 60 s.
    let pending = ServiceStatus {
        state: State::StartPending,
        pid: Some(7),
        exit: ExitCode::Win32(0),
    };
    let config_failed = ServiceStatus {
        state: State::Stopped,
        pid: None,
        exit: ExitCode::ServiceSpecific(super::exit::CONFIG),
    };
    fake.add_service("api", FakeService::new(OURS));
    fake.after("api", "start", &[pending, config_failed]);
    let f = m.start(&name()).unwrap_err();
    assert!(matches!(f.error, Error::Failed(_)), "{:?}", f.error);
    assert_eq!(f.error.exit_code(), exit::OS);
    assert!(
        f.error.to_string().starts_with(
            "the service stopped while starting: the installed config could not be loaded;"
        ),
        "{}",
        f.error
    );
    assert_eq!(fake.slept(), Duration::from_millis(100));

    // Stuck in START_PENDING: the wait runs out after 60 s (on the fake clock).
    fake.add_service("api", FakeService::new(OURS));
    fake.after("api", "start", &[pending]);
    let before = fake.slept();
    let f = m.start(&name()).unwrap_err();
    assert_eq!(
        f.error.to_string(),
        "the service did not reach RUNNING within 60s (now START_PENDING): timed out"
    );
    assert_eq!(fake.slept() - before, Duration::from_secs(60));
}

#[test]
fn stop_waits_as_long_as_the_installed_config_allows() {
    let fake = FakeScm::new();
    fake.add_service("api", FakeService::new(OURS).running());
    let m = scm(&fake, Access::Check);
    let r = m.stop(&name()).unwrap();
    assert_eq!(
        fake.calls(),
        [
            "connect",
            "open api QUERY_STATUS|STOP",
            "query_status api",
            "control api Stop",
            "query_status api",
        ]
    );
    assert_eq!(r.changed, Changed::Stopped);
    assert_eq!(r.lines, ["service `api` is stopped"]);
    let r = m.stop(&name()).unwrap();
    assert_eq!(
        (r.changed, r.lines[0].as_str()),
        (Changed::Nothing, "service `api` is already stopped")
    );

    // Stuck stopping: the budget is the installed config's stop timeout plus 30 s (10 s
    // when there is no config copy to read).
    let stopping = ServiceStatus {
        state: State::StopPending,
        pid: Some(FAKE_PID),
        exit: ExitCode::Win32(0),
    };
    fake.add_service("api", FakeService::new(OURS).running());
    fake.after("api", "stop", &[stopping]);
    let f = m.stop(&name()).unwrap_err();
    assert!(
        f.error
            .to_string()
            .starts_with("the service did not reach STOPPED within 40s"),
        "{}",
        f.error
    );

    fake.put_file(
        CONFIG,
        "base_dir = 'C:/app'\nname = \"api\"\ncommand = [\"C:/app/api.exe\"]\n[stop]\ntimeout = \"20s\"\n",
    );
    fake.add_service("api", FakeService::new(OURS).running());
    let f = m.stop(&name()).unwrap_err();
    assert!(
        f.error
            .to_string()
            .starts_with("the service did not reach STOPPED within 50s"),
        "{}",
        f.error
    );
}

#[test]
fn restart_is_stop_then_start() {
    let fake = FakeScm::new();
    fake.add_service("api", FakeService::new(OURS).running());
    let r = scm(&fake, Access::Check).restart(&name()).unwrap();
    assert_eq!(
        fake.calls(),
        [
            "connect",
            "open api QUERY_STATUS|STOP",
            "query_status api",
            "control api Stop",
            "query_status api",
            "connect",
            "open api QUERY_STATUS|START",
            "query_status api",
            "start api",
            "query_status api",
        ]
    );
    assert_eq!(r.changed, Changed::Restarted);
    assert_eq!(
        r.lines,
        [
            "service `api` is stopped".to_owned(),
            format!("service `api` is running (tend pid {FAKE_PID})"),
        ]
    );
}

#[test]
fn reload_needs_a_running_service_and_sends_paramchange() {
    let fake = FakeScm::new();
    fake.add_service("api", FakeService::new(OURS));
    let m = scm(&fake, Access::Check);
    let f = m.reload(&name()).unwrap_err();
    assert_eq!(f.error.exit_code(), exit::INVALID);
    assert!(
        f.error
            .to_string()
            .contains("is not running: nothing to reload")
    );

    fake.add_service("api", FakeService::new(OURS).running());
    fake.clear_calls();
    let r = m.reload(&name()).unwrap();
    assert_eq!(r.changed, Changed::Reloaded);
    assert_eq!(
        fake.calls(),
        [
            "connect",
            "open api QUERY_STATUS|PAUSE_CONTINUE",
            "query_status api",
            "control api ParamChange",
        ]
    );

    // The control refused: the SCM's code and the operation stay in the error.
    fake.fail(
        "control api ParamChange",
        ScmError::os(1052, "The requested control is not valid for this service."),
    );
    let f = m.reload(&name()).unwrap_err();
    match &f.error {
        Error::Scm { what, source } => {
            assert_eq!(what, "cannot send a reload to service `api`");
            assert_eq!(source.code, Some(1052));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(f.error.exit_code(), exit::OS);
}

#[test]
fn the_rights_each_verb_opens_with_are_enough_for_its_calls() {
    // The fake refuses a call the handle was not opened for, as Windows does: every
    // sequence above passing means each verb asked for what it uses. Here, the refusal
    // itself.
    let fake = FakeScm::new();
    fake.add_service("api", FakeService::new(OURS));
    let mgr = super::ScmApi::connect(&fake, false).unwrap();
    let h = super::ScmApi::open(&fake, &mgr, "api", Rights::QUERY_STATUS).unwrap();
    let e = super::ScmApi::start(&fake, &h).unwrap_err();
    assert!(e.access_denied(), "{e}");
}

#[test]
fn status_in_the_common_shape() {
    let fake = FakeScm::new();
    let m = scm(&fake, Access::Check);
    let s = m.status(&name()).unwrap();
    assert_eq!(s, crate::Status::not_installed(crate::Backend::Scm));
    assert_eq!(
        fake.calls(),
        ["connect", "open api QUERY_CONFIG|QUERY_STATUS"]
    );

    install(
        &fake,
        &spec(InstallSpec {
            start: StartMode::DelayedAuto,
            ..InstallSpec::default()
        }),
    )
    .unwrap();
    let mut svc = fake.service("api").unwrap();
    svc.status = running();
    fake.add_service("api", svc);
    let s = m.status(&name()).unwrap();
    assert!(s.installed && s.active);
    assert_eq!(s.state, "RUNNING");
    assert_eq!(s.start.as_deref(), Some("delayed-auto"));
    assert_eq!(s.pid, Some(FAKE_PID));
    assert_eq!(s.manager.as_deref(), Some("scm"));

    // Under Wine the delayed flag cannot be read: plain auto.
    let mut svc = fake.service("api").unwrap();
    svc.delayed = None;
    svc.status = stopped();
    fake.add_service("api", svc);
    let s = m.status(&name()).unwrap();
    assert_eq!((s.active, s.start.as_deref()), (false, Some("auto")));

    // No SCM to ask: an error that says so, with the OS's code.
    let fake = FakeScm::new();
    fake.fail(
        "connect",
        ScmError::os(1722, "The RPC server is unavailable."),
    );
    let e = scm(&fake, Access::Check).status(&name()).unwrap_err();
    assert!(
        matches!(&e, Error::Scm { source, .. } if source.code == Some(1722)),
        "{e:?}"
    );
}

#[test]
fn rights_read_as_the_scm_names_them() {
    assert_eq!(
        (Rights::START | Rights::QUERY_STATUS).to_string(),
        "QUERY_STATUS|START"
    );
    assert_eq!((Rights::DELETE | Rights::STOP).bits(), 0x1_0020);
}

#[test]
fn dumps_set_up_windows_error_reporting_and_only_tends_own_key_is_ever_removed() {
    use tend_core::{DiagnosticsSpec, DumpType};
    let dumps_original =
        format!("{ORIGINAL}[diagnostics]\ndumps = true\ndump_count = 3\ndump_type = \"full\"\n");
    let mut with = spec(InstallSpec::default());
    with.diagnostics = DiagnosticsSpec {
        dumps: true,
        dump_count: 3,
        dump_type: DumpType::Full,
    };
    let install_with = |fake: &FakeScm| {
        scm(fake, Access::Skip)
            .install(&Install {
                spec: &with,
                original: &dumps_original,
                leave_running: false,
            })
            .unwrap()
    };
    let set = format!(r"set_local_dumps api.exe folder={STATE}\dumps count=3 type=2 owner=api");

    // First install: the folder, then the key, marked as api's.
    let fake = FakeScm::new();
    let r = install_with(&fake);
    let calls = fake.calls();
    let at = |c: &str| calls.iter().position(|x| x == c);
    assert!(
        at(&format!(r"mkdir {STATE}\dumps")) < at(&set) && at(&set).is_some(),
        "{calls:#?}"
    );
    assert!(
        r.lines
            .iter()
            .any(|l| l.contains(&format!(r"crash dumps of `api.exe` go to `{STATE}\dumps`"))),
        "{:?}",
        r.lines
    );
    assert_eq!(
        fake.local_dumps("api.exe").unwrap().1.as_deref(),
        Some("api")
    );

    // dumps = false again: tend's key goes.
    fake.clear_calls();
    install(&fake, &spec(InstallSpec::default())).unwrap();
    assert!(
        fake.calls()
            .contains(&"remove_local_dumps api.exe".to_owned())
    );
    assert_eq!(fake.local_dumps("api.exe"), None);

    // On again, then uninstall: the key goes with the service.
    install_with(&fake);
    fake.clear_calls();
    scm(&fake, Access::Check).uninstall(&name()).unwrap();
    assert!(
        fake.calls()
            .contains(&"remove_local_dumps api.exe".to_owned()),
        "{:#?}",
        fake.calls()
    );
    assert_eq!(fake.local_dumps("api.exe"), None);

    // A key tend did not create, or another service's: left alone, with a warning, at
    // install and at uninstall.
    for (owner, says) in [(None, "did not create"), (Some("web"), "service `web`")] {
        let fake = FakeScm::new();
        fake.put_local_dumps("api.exe", owner);
        let r = install_with(&fake);
        assert!(
            r.warnings.iter().any(|w| w.contains(says)),
            "{:?}",
            r.warnings
        );
        scm(&fake, Access::Check).uninstall(&name()).unwrap();
        assert!(
            !fake
                .calls()
                .iter()
                .any(|c| c.starts_with("set_local_dumps") || c.starts_with("remove_local_dumps")),
            "{:#?}",
            fake.calls()
        );
        assert_eq!(fake.local_dumps("api.exe").unwrap().1.as_deref(), owner);
    }

    // The registry refusing is a warning: the service is installed, without dumps.
    let fake = FakeScm::new();
    fake.fail(
        "set_local_dumps",
        ScmError::os(5, "Access is denied. (os error 5)"),
    );
    let r = install_with(&fake);
    assert_eq!(r.changed, Changed::Installed);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("cannot set up Windows Error Reporting")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn preflight_checks_the_account_and_compares_the_installed_service() {
    let fake = FakeScm::new();
    let user = spec(InstallSpec {
        account: Account::User {
            name: r"CORP\svc".into(),
            password_env: Some("SVC_PW".into()),
        },
        ..InstallSpec::default()
    });
    let doctor = |s: &ServiceSpec| {
        scm(&fake, Access::Check)
            .preflight(&Install {
                spec: s,
                original: ORIGINAL,
                leave_running: false,
            })
            .unwrap()
    };
    // Not installed; the account does not exist (and no password is needed to say so).
    let p = doctor(&user);
    assert_eq!(p.drift, crate::Drift::NotInstalled);
    let Some(Err(why)) = &p.account else {
        panic!("{:?}", p.account)
    };
    assert!(
        why.contains(r"the account `CORP\svc` does not exist"),
        "{why}"
    );
    assert_eq!(p.access, Ok(vec![]));
    fake.put_account(r"CORP\svc");
    assert_eq!(doctor(&user).account, Some(Ok(())));
    // The logon right: unknown without an LSA (Wine), then as the LSA lists it.
    assert!(
        matches!(doctor(&user).logon_right, Some(Err(_))),
        "{:?}",
        doctor(&user).logon_right
    );
    fake.put_rights(r"CORP\svc", &["SeBatchLogonRight"]);
    assert_eq!(doctor(&user).logon_right, Some(Ok(false)));
    fake.put_rights(r"CORP\svc", &["SeServiceLogonRight"]);
    assert_eq!(doctor(&user).logon_right, Some(Ok(true)));
    assert_eq!(doctor(&spec(InstallSpec::default())).logon_right, None);

    // Installed as configured: no drift; changed behind tend's back: the setting.
    // (The display name is the one ORIGINAL, the copy, gives.)
    let mut s = spec(InstallSpec::default());
    s.display_name = "api".into();
    install(&fake, &s).unwrap();
    let calls = fake.calls().len();
    assert_eq!(
        doctor(&s).drift,
        crate::Drift::Compared {
            config: vec![],
            definition: vec![]
        }
    );
    let mut svc = fake.service("api").unwrap();
    svc.config.start = Some(super::plan::StartType::Disabled);
    fake.add_service("api", svc);
    let crate::Drift::Compared { definition, config } = doctor(&s).drift else {
        panic!("not compared")
    };
    assert_eq!(definition.len(), 1, "{definition:?}");
    assert!(config.is_empty(), "{config:?}");
    // doctor only asks.
    assert!(
        fake.calls()[calls..]
            .iter()
            .all(|c| c.starts_with("connect") || c.starts_with("open") || c.starts_with("query")),
        "{:?}",
        &fake.calls()[calls..]
    );
}

/// NSSM's service as NSSM registers it: its own nssm.exe, LocalSystem, auto start, running.
const NSSM: &str = r"C:\tools\nssm.exe";

fn nssm_service() -> FakeService {
    let mut s = FakeService::new(NSSM).running();
    s.config.display_name = "API (NSSM)".into();
    s.config.start = Some(super::plan::StartType::Auto);
    s.config.dependencies = vec!["Tcpip".into()];
    s.description = Some("Runs the API".into());
    s.failure_actions = Some(legacy_failure_actions());
    s.failure_actions_on_non_crash = Some(true);
    s.preshutdown = Some(std::time::Duration::from_secs(42));
    s
}

/// What `sc failure api reset= 86400 command= "C:\ops\notify.cmd" actions=
/// restart/10000/run/20000//0` leaves: every action kind tend's own install does not use.
fn legacy_failure_actions() -> crate::takeover::ScmFailureActions {
    let action = |kind: &str, delay_ms| crate::takeover::ScmFailureAction {
        kind: kind.to_owned(),
        delay_ms,
    };
    crate::takeover::ScmFailureActions {
        reset_secs: Some(86400),
        reboot_message: String::new(),
        command: r"C:\ops\notify.cmd".to_owned(),
        actions: vec![
            action("restart", 10_000),
            action("run", 20_000),
            action("none", 0),
        ],
    }
}

#[test]
fn take_over_repoints_the_service_and_put_back_writes_back_what_was_recorded() {
    let fake = FakeScm::new();
    fake.add_service("api", nssm_service());
    fake.add_service("Tcpip", FakeService::new("tcpip").running());
    let m = scm(&fake, Access::Skip);
    let foreign = m.record_foreign(&name()).unwrap();
    assert!(foreign.active && foreign.enabled);
    let old = foreign.scm.clone().unwrap();
    assert_eq!(old.command_line, NSSM);
    assert_eq!(old.dependencies, ["Tcpip"]);
    assert_eq!(old.description.as_deref(), Some("Runs the API"));
    assert_eq!(old.failure_actions, Some(legacy_failure_actions()));
    assert_eq!(old.failure_actions_on_non_crash, Some(true));
    assert!(
        fake.calls()
            .iter()
            .all(|c| !c.starts_with("change") && !c.starts_with("control")),
        "recording changes nothing: {:?}",
        fake.calls()
    );

    fake.clear_calls();
    m.take_over(&foreign, &name()).unwrap();
    assert_eq!(
        fake.calls(),
        [
            "connect",
            "open api CHANGE_CONFIG|QUERY_STATUS|STOP",
            "query_status api",
            "control api Stop",
            "query_status api",
            &format!("change_raw api command {OURS}"),
        ]
    );
    // tend's install now sees its own service of that name and updates it, with its own
    // description and failure actions.
    install(&fake, &spec(InstallSpec::default())).unwrap();
    let ours = fake.service("api").unwrap();
    assert!(ours.config.command_line.contains("tend.exe"));
    assert_ne!(ours.description.as_deref(), Some("Runs the API"));
    assert_ne!(ours.failure_actions, Some(legacy_failure_actions()));
    assert_ne!(ours.preshutdown, Some(std::time::Duration::from_secs(42)));

    fake.clear_calls();
    let r = m.put_back(&foreign, &name()).unwrap();
    let svc = fake.service("api").unwrap();
    assert_eq!(svc.config.command_line, NSSM);
    assert_eq!(svc.config.display_name, "API (NSSM)");
    assert_eq!(svc.config.dependencies, ["Tcpip"]);
    assert_eq!(svc.config.start, Some(super::plan::StartType::Auto));
    // tend's install made it `NT SERVICE\api`: the account goes back too.
    assert_eq!(svc.config.account.as_deref(), Some("LocalSystem"));
    // So do the description and the failure actions, every kind of them.
    assert_eq!(svc.description.as_deref(), Some("Runs the API"));
    assert_eq!(svc.failure_actions, Some(legacy_failure_actions()));
    assert_eq!(svc.failure_actions_on_non_crash, Some(true));
    assert_eq!(svc.preshutdown, Some(std::time::Duration::from_secs(42)));
    assert!(r.warnings.is_empty(), "{r:?}");
    assert_eq!(svc.status.state, State::Running);
    let calls = fake.calls();
    assert!(
        calls.contains(&format!(
            "change_raw api command {NSSM} display \"API (NSSM)\" start Auto depends [Tcpip] account LocalSystem"
        )),
        "{calls:?}"
    );
    assert!(calls.contains(&format!("remove {CONFIG}")), "{calls:?}");
    assert!(calls.iter().any(|c| c == "start api"), "{calls:?}");
    assert!(
        !calls.iter().any(|c| c.starts_with("delete")),
        "never deleted: {calls:?}"
    );
    assert!(r.lines.iter().any(|l| l.contains("runs again")), "{r:?}");
}

#[test]
fn take_over_under_a_new_name_disables_the_old_service_and_put_back_enables_it() {
    let fake = FakeScm::new();
    fake.add_service("legacy", nssm_service());
    fake.add_service("Tcpip", FakeService::new("tcpip").running());
    let m = scm(&fake, Access::Skip);
    let legacy = ServiceName::new("legacy").unwrap();
    let foreign = m.record_foreign(&legacy).unwrap();
    m.take_over(&foreign, &name()).unwrap();
    let svc = fake.service("legacy").unwrap();
    assert_eq!(svc.config.start, Some(super::plan::StartType::Disabled));
    assert_eq!(svc.config.command_line, NSSM, "its command line stays");
    assert_eq!(svc.status.state, State::Stopped);
    install(&fake, &spec(InstallSpec::default())).unwrap();
    m.put_back(&foreign, &name()).unwrap();
    assert!(fake.service("api").is_none(), "tend's service went");
    let svc = fake.service("legacy").unwrap();
    assert_eq!(svc.config.start, Some(super::plan::StartType::Auto));
    assert_eq!(svc.status.state, State::Running);
    // Only the start type was changed, and only it is written back: the account that is
    // still the recorded one is not touched (the SCM keeps a user account's password), nor
    // are the description, failure actions and preshutdown timeout tend never wrote there.
    assert!(
        fake.calls()
            .contains(&"change_raw legacy start Auto".to_owned()),
        "{:?}",
        fake.calls()
    );
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| c.starts_with("configure legacy: description")
                || c.starts_with("configure legacy: failure")
                || c.starts_with("configure legacy: preshutdown")),
        "{:?}",
        fake.calls()
    );
}

#[test]
fn a_put_back_says_what_it_could_not_read_or_write_back_and_still_starts_the_service() {
    let fake = FakeScm::new();
    let mut old = nssm_service();
    // As a Windows (or Wine) that cannot read it, or an action kind it cannot parse.
    old.failure_actions = None;
    fake.add_service("api", old);
    fake.add_service("Tcpip", FakeService::new("tcpip").running());
    let m = scm(&fake, Access::Skip);
    let foreign = m.record_foreign(&name()).unwrap();
    m.take_over(&foreign, &name()).unwrap();
    install(&fake, &spec(InstallSpec::default())).unwrap();
    // And the SCM refuses the description (a reboot action without SeShutdownPrivilege
    // is refused the same way).
    fake.fail(
        "configure api: description",
        ScmError::os(1314, "A required privilege is not held by the client."),
    );
    let r = m.put_back(&foreign, &name()).unwrap();
    let svc = fake.service("api").unwrap();
    assert_eq!(svc.config.command_line, NSSM);
    assert_eq!(svc.status.state, State::Running, "started all the same");
    assert_eq!(
        svc.preshutdown,
        Some(std::time::Duration::from_secs(42)),
        "the rest went back"
    );
    assert!(
        r.warnings.iter().any(|w| w.contains(
            "`api`'s failure actions could not be read when it was taken over: what tend's install wrote stays"
        )),
        "{r:?}"
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("cannot put back `api`'s description") && w.contains("privilege")),
        "{r:?}"
    );
}

#[test]
fn take_over_refuses_tends_own_service_and_a_missing_one() {
    let fake = FakeScm::new();
    let m = scm(&fake, Access::Skip);
    assert!(matches!(
        m.record_foreign(&name()),
        Err(Error::NotInstalled(_))
    ));
    fake.add_service("api", FakeService::new(OURS));
    let e = m.record_foreign(&name()).unwrap_err();
    assert!(e.to_string().contains("already tend's"), "{e}");
    assert_eq!(e.exit_code(), exit::INVALID);
}

#[test]
fn put_back_leaves_an_account_that_is_still_the_recorded_one() {
    let fake = FakeScm::new();
    let mut svc = nssm_service();
    svc.config.account = Some(r".\svcuser".into());
    fake.add_service("api", svc);
    let m = scm(&fake, Access::Skip);
    let foreign = m.record_foreign(&name()).unwrap();
    // Taken over, then put back before tend's install changed the account.
    m.take_over(&foreign, &name()).unwrap();
    fake.clear_calls();
    m.put_back(&foreign, &name()).unwrap();
    let raw: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("change_raw"))
        .collect();
    assert_eq!(
        raw,
        [format!(
            "change_raw api command {NSSM} display \"API (NSSM)\" start Auto depends [Tcpip]"
        )]
    );
    assert_eq!(
        fake.service("api").unwrap().config.account.as_deref(),
        Some(r".\svcuser")
    );
}
