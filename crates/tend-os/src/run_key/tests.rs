//! The Run-entry backend's sequences against [`FakeRunKey`]: what it writes, which Run
//! value it sets or deletes, which tend it starts, signals or terminates, in order; what
//! it reports and exits with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tend_core::{Account, InstallSpec, ServiceName, ServiceSpec, StartMode};

use super::{RunEntry, event_name, run_command};
use crate::testing::{FAKE_TEND_PID, FakeRunKey, Spawn};
use crate::{Changed, Error, Install, ServiceManager, UserContext, exit, run_value_name};

const LOCAL: &str = r"C:\Users\ann\AppData\Local";
const CONFIG: &str = r"C:\Users\ann\AppData\Local\tend\services\api.toml";
const SERVICES: &str = r"C:\Users\ann\AppData\Local\tend\services";
const STATE: &str = r"C:\Users\ann\AppData\Local\tend\state\api";
const LOGS: &str = r"C:\Users\ann\AppData\Local\tend\logs\api";
const COMMAND: &str = r#""C:\Program Files\tend\tend.exe" service --user api"#;
const ORIGINAL: &str = "name = \"api\"\ncommand = [\"C:/app/api.exe\"]\n";

fn name() -> ServiceName {
    ServiceName::new("api").unwrap()
}

fn user() -> UserContext {
    UserContext {
        local_app_data: Some(LOCAL.into()),
        ..UserContext::new(0, r"C:\Users\ann")
    }
}

fn entry(fake: &FakeRunKey) -> RunEntry<&FakeRunKey> {
    RunEntry::new(fake, user())
}

fn status_file() -> PathBuf {
    Path::new(STATE).join("api.status.json")
}

fn spec(start: StartMode) -> ServiceSpec {
    let service = InstallSpec {
        start,
        ..InstallSpec::default()
    };
    crate::testing::windows_spec(service, LOGS)
}

fn install(
    fake: &FakeRunKey,
    s: &ServiceSpec,
    original: &str,
) -> Result<crate::Report, crate::Failure> {
    entry(fake).install(&Install {
        spec: s,
        original,
        leave_running: false,
    })
}

#[test]
fn run_entry_quotes_the_path_and_names_the_service() {
    let name = ServiceName::new("go-svc.2").unwrap();
    assert_eq!(
        run_command(Path::new(r"C:\Program Files\tend e2e\tend.exe"), &name),
        r#""C:\Program Files\tend e2e\tend.exe" service --user go-svc.2"#
    );
    assert_eq!(run_value_name(&name), "tend-go-svc.2");
    assert_eq!(event_name(&name, "stop"), r"Local\tend-go-svc.2-stop");
}

#[test]
fn first_install_writes_the_copy_then_the_logon_entry() {
    let fake = FakeRunKey::new();
    let r = install(&fake, &spec(StartMode::Auto), ORIGINAL).unwrap();
    assert_eq!(
        fake.calls(),
        [
            format!("mkdir {SERVICES}"),
            format!("write {CONFIG}"),
            format!("set_run_value tend-api = {COMMAND}"),
            format!("mkdir {STATE}"),
            format!("mkdir {LOGS}"),
        ]
    );
    assert_eq!(r.changed, Changed::Installed);
    assert_eq!(
        r.lines,
        [
            "installed service `api` for you (start at logon)".to_owned(),
            format!("  config copy: {CONFIG}"),
            format!(
                r"  logon entry: HKCU\Software\Microsoft\Windows\CurrentVersion\Run\tend-api = {COMMAND}"
            ),
            format!("  logs: {LOGS}"),
            "start it now with: tend start --user api".to_owned(),
        ]
    );
    assert_eq!(fake.value("tend-api").as_deref(), Some(COMMAND));
}

#[test]
fn a_manual_or_disabled_service_has_no_logon_entry() {
    let fake = FakeRunKey::new();
    let r = install(
        &fake,
        &spec(StartMode::Disabled),
        &format!("{ORIGINAL}[service]\nstart = \"disabled\"\n"),
    )
    .unwrap();
    assert!(
        fake.calls()
            .contains(&"delete_run_value tend-api".to_owned())
    );
    assert_eq!(fake.value("tend-api"), None);
    assert_eq!(
        r.lines.last().unwrap(),
        "it is disabled (start = \"disabled\"): `tend start --user` refuses it"
    );
    // Starting it is refused before anything runs.
    fake.clear_calls();
    let f = entry(&fake).start(&name()).unwrap_err();
    assert_eq!(f.error.exit_code(), exit::INVALID);
    assert!(f.error.to_string().contains("is disabled"), "{}", f.error);
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[test]
fn reinstall_shows_what_changed_and_reloads_a_running_tend() {
    let fake = FakeRunKey::new();
    install(&fake, &spec(StartMode::Auto), ORIGINAL).unwrap();
    fake.clear_calls();
    let r = install(&fake, &spec(StartMode::Auto), ORIGINAL).unwrap();
    assert_eq!(r.changed, Changed::Nothing);
    assert_eq!(r.lines, ["service `api` is installed and unchanged"]);

    // Manual now, and a new argument, while tend runs: both diffs, and a reload.
    fake.running(status_file(), 55);
    fake.clear_calls();
    let r = install(
        &fake,
        &spec(StartMode::Manual),
        "name = \"api\"\ncommand = [\"C:/app/api.exe\", \"--v2\"]\n",
    )
    .unwrap();
    assert_eq!(r.changed, Changed::Updated);
    assert_eq!(
        r.lines,
        [
            "updated service `api`:".to_owned(),
            format!("  config copy {CONFIG}:"),
            "    - command = [\"C:/app/api.exe\"]".to_owned(),
            "    + command = [\"C:/app/api.exe\", \"--v2\"]".to_owned(),
            r"  logon entry HKCU\Software\Microsoft\Windows\CurrentVersion\Run\tend-api:"
                .to_owned(),
            format!("    - at logon: {COMMAND}"),
            "    + manual (no logon entry)".to_owned(),
            "reloaded: tend re-reads the config".to_owned(),
        ]
    );
    assert_eq!(
        fake.calls(),
        [
            format!("mkdir {SERVICES}"),
            format!("write {CONFIG}"),
            "delete_run_value tend-api".to_owned(),
            format!("mkdir {STATE}"),
            format!("mkdir {LOGS}"),
            r"set_event Local\tend-api-reload".to_owned(),
        ]
    );
}

/// `tend apply` updates with `leave_running`, then reloads or restarts by its own rules.
#[test]
fn an_update_that_leaves_the_running_tend_sends_it_nothing() {
    let fake = FakeRunKey::new();
    install(&fake, &spec(StartMode::Auto), ORIGINAL).unwrap();
    fake.running(status_file(), 55);
    fake.clear_calls();
    let r = entry(&fake)
        .install(&Install {
            spec: &spec(StartMode::Auto),
            original: "name = \"api\"\ncommand = [\"C:/app/api.exe\", \"--v2\"]\n",
            leave_running: true,
        })
        .unwrap();
    assert_eq!(r.changed, Changed::Updated);
    assert!(
        !fake.calls().iter().any(|c| c.starts_with("set_event")),
        "{:?}",
        fake.calls()
    );
}

#[test]
fn install_refuses_an_account_and_undoes_a_failed_first_install() {
    let fake = FakeRunKey::new();
    let mut s = spec(StartMode::Auto);
    s.service.account = Account::System;
    let f = install(&fake, &s, ORIGINAL).unwrap_err();
    assert_eq!(f.error.exit_code(), exit::INVALID);
    assert!(fake.calls().is_empty());

    // The registry refuses the entry: the new copy goes again, the OS error stays.
    fake.fail("set_run_value", 5);
    let f = install(&fake, &spec(StartMode::Auto), ORIGINAL).unwrap_err();
    assert_eq!(
        fake.calls(),
        [
            format!("mkdir {SERVICES}"),
            format!("write {CONFIG}"),
            format!("set_run_value tend-api = {COMMAND}"),
            format!("remove {CONFIG}"),
        ]
    );
    match &f.error {
        Error::Io { what, source } => {
            assert_eq!(what, "cannot install `api`");
            assert_eq!(source.raw_os_error(), Some(5));
        }
        e => panic!("{e:?}"),
    }
    // ERROR_ACCESS_DENIED is a missing right; on Linux the same number is EIO.
    #[cfg(windows)]
    assert_eq!(f.error.exit_code(), exit::PERMISSION);
    assert_eq!(fake.file(CONFIG), None);
}

#[test]
fn start_waits_until_tend_reports_and_says_why_it_did_not() {
    let fake = FakeRunKey::new();
    install(&fake, &spec(StartMode::Auto), ORIGINAL).unwrap();
    fake.clear_calls();
    let r = entry(&fake).start(&name()).unwrap();
    assert_eq!(fake.calls(), ["spawn api"]);
    assert_eq!(r.changed, Changed::Started);
    assert_eq!(
        r.lines,
        [format!(
            "service `api` is running (tend pid {FAKE_TEND_PID})"
        )]
    );
    let r = entry(&fake).start(&name()).unwrap();
    assert_eq!(r.changed, Changed::Nothing);
    assert_eq!(
        r.lines,
        [format!(
            "service `api` is already running (tend pid {FAKE_TEND_PID})"
        )]
    );

    let fresh = || {
        let fake = FakeRunKey::new();
        install(&fake, &spec(StartMode::Auto), ORIGINAL).unwrap();
        fake
    };
    let fake = fresh();
    fake.on_spawn(Spawn::Exits {
        status: "exit code: 2".into(),
        stderr: "error: the config no longer loads\n".into(),
    });
    let f = entry(&fake).start(&name()).unwrap_err();
    assert!(matches!(f.error, Error::Failed(_)));
    assert_eq!(f.error.exit_code(), exit::OS);
    assert_eq!(
        f.error.to_string(),
        "tend for `api` exited at once (exit code: 2): error: the config no longer loads"
    );

    let fake = fresh();
    fake.on_spawn(Spawn::Fails("cannot start `C:/app/api.exe`".into()));
    let f = entry(&fake).start(&name()).unwrap_err();
    assert_eq!(
        f.error.to_string(),
        "`api` failed at once: cannot start `C:/app/api.exe`; see `tend logs api`"
    );

    let fake = fresh();
    fake.on_spawn(Spawn::Silent);
    let f = entry(&fake).start(&name()).unwrap_err();
    assert!(
        f.error.to_string().starts_with(&format!(
            "tend for `api` (pid {FAKE_TEND_PID}) did not report the program started within 15s"
        )),
        "{}",
        f.error
    );
    assert_eq!(fake.slept(), Duration::from_secs(15));
}

#[test]
fn stop_asks_then_terminates_after_the_budget() {
    let fake = FakeRunKey::new();
    install(&fake, &spec(StartMode::Auto), ORIGINAL).unwrap();
    fake.running(status_file(), 55);
    fake.clear_calls();
    let r = entry(&fake).stop(&name()).unwrap();
    assert_eq!(
        fake.calls(),
        [r"set_event Local\tend-api-stop", "wait_exit 55 25s"]
    );
    assert_eq!(r.changed, Changed::Stopped);
    assert_eq!(r.lines, ["service `api` is stopped"]);
    assert!(r.warnings.is_empty());
    let r = entry(&fake).stop(&name()).unwrap();
    assert_eq!(r.lines, ["service `api` is already stopped"]);

    // A tend that does not stop in time is terminated; its job object ends the program.
    fake.running(status_file(), 56);
    fake.obeys_stop(false);
    fake.clear_calls();
    let r = entry(&fake).stop(&name()).unwrap();
    assert_eq!(
        fake.calls(),
        [
            r"set_event Local\tend-api-stop",
            "wait_exit 56 25s",
            "terminate 56",
            "wait_exit 56 10s",
        ]
    );
    assert_eq!(
        r.warnings,
        [
            "tend (pid 56) did not stop within 25s",
            "terminated tend (pid 56); its job object ended the program's processes",
        ]
    );
    assert_eq!(r.changed, Changed::Stopped);
    assert!(!fake.is_alive(56));
}

#[test]
fn restart_and_reload() {
    let fake = FakeRunKey::new();
    install(&fake, &spec(StartMode::Auto), ORIGINAL).unwrap();
    let f = entry(&fake).reload(&name()).unwrap_err();
    assert_eq!(f.error.exit_code(), exit::INVALID);
    assert!(
        f.error.to_string().contains("is not running"),
        "{}",
        f.error
    );

    fake.running(status_file(), 55);
    fake.clear_calls();
    let r = entry(&fake).reload(&name()).unwrap();
    assert_eq!(r.changed, Changed::Reloaded);
    assert_eq!(fake.calls(), [r"set_event Local\tend-api-reload"]);

    fake.clear_calls();
    let r = entry(&fake).restart(&name()).unwrap();
    assert_eq!(
        fake.calls(),
        [
            r"set_event Local\tend-api-stop",
            "wait_exit 55 25s",
            "spawn api"
        ]
    );
    assert_eq!(r.changed, Changed::Restarted);
}

#[test]
fn uninstall_stops_and_removes_the_entry_and_copy_but_not_the_logs() {
    let fake = FakeRunKey::new();
    install(&fake, &spec(StartMode::Auto), ORIGINAL).unwrap();
    fake.running(status_file(), 55);
    fake.clear_calls();
    let r = entry(&fake).uninstall(&name()).unwrap();
    assert_eq!(
        fake.calls(),
        [
            r"set_event Local\tend-api-stop".to_owned(),
            "wait_exit 55 25s".to_owned(),
            "delete_run_value tend-api".to_owned(),
            format!("remove {CONFIG}"),
        ]
    );
    assert_eq!(r.changed, Changed::Uninstalled);
    assert_eq!(
        r.lines,
        [
            "service `api` is stopped".to_owned(),
            // The installed config's `[logs] dir`, as tend-config joins it on this host.
            format!(
                "uninstalled service `api`; its logs remain in `{}`",
                Path::new(r"C:\Users\ann\AppData\Local\tend\logs")
                    .join("api")
                    .display()
            ),
        ]
    );
    let f = entry(&fake).uninstall(&name()).unwrap_err();
    assert!(matches!(f.error, Error::NotInstalled(_)));
    assert_eq!(f.error.exit_code(), exit::NOT_INSTALLED);
}

#[test]
fn status_in_the_common_shape() {
    let fake = FakeRunKey::new();
    let s = entry(&fake).status(&name()).unwrap();
    assert_eq!(s, crate::Status::not_installed(crate::Backend::RunKey));
    install(&fake, &spec(StartMode::Auto), ORIGINAL).unwrap();
    let s = entry(&fake).status(&name()).unwrap();
    assert_eq!(
        (s.state.as_str(), s.start.as_deref()),
        ("stopped", Some("at logon"))
    );
    assert_eq!(
        s.definition.as_deref(),
        Some(Path::new(
            r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\tend-api"
        ))
    );
    fake.running(status_file(), 55);
    let s = entry(&fake).status(&name()).unwrap();
    assert!(s.active);
    assert_eq!((s.state.as_str(), s.pid), ("running", Some(55)));
    assert_eq!(s.manager.as_deref(), Some("run-key"));
}

#[test]
fn dumps_for_a_user_service_are_a_warning_not_a_machine_wide_key() {
    let fake = FakeRunKey::new();
    let mut s = spec(StartMode::Auto);
    s.diagnostics.dumps = true;
    let r = install(&fake, &s, ORIGINAL).unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("[diagnostics] dumps: Windows Error Reporting keeps dumps only for a system-wide service")),
        "{:?}",
        r.warnings
    );
    assert!(
        !fake.calls().iter().any(|c| c.contains("dumps")),
        "{:?}",
        fake.calls()
    );
}
