//! The Windows Service Control Manager, through the windows-service crate (never `sc.exe`).

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use tend_core::ServiceSpec;
use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceDependency,
    ServiceErrorControl, ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo,
    ServiceSidType, ServiceStartType, ServiceState, ServiceType,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use tend_core::ServiceName;
use tend_os::{Access, Backend, Changed, Failure, Install, Report, reported};

use super::OsStatus;
use super::scm_plan::{self, Installed, ScmPlan, Setting, SidType, StartType};
use crate::error::CliError;
use crate::place::Scope;
use tend_os::installed_text;

const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
const ERROR_ACCESS_DENIED: i32 = 5;

fn raw(e: &windows_service::Error) -> Option<i32> {
    match e {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    }
}

const ERROR_INVALID_LEVEL: i32 = 124;

/// The OS error of a failed SCM call, readable: windows-service's own text for it is only
/// "IO error in winapi call".
fn os_error(e: &windows_service::Error) -> String {
    match e {
        windows_service::Error::Winapi(io) if io.raw_os_error() == Some(ERROR_INVALID_LEVEL) => {
            format!("{io}: this Windows (or Wine) does not support the setting")
        }
        windows_service::Error::Winapi(io) => io.to_string(),
        other => other.to_string(),
    }
}

fn scm_err(what: impl Into<String>, e: windows_service::Error) -> CliError {
    let what = what.into();
    if raw(&e) == Some(ERROR_ACCESS_DENIED) {
        return CliError::io(
            format!("{what} (run tend from an elevated prompt: Administrator rights are needed)"),
            std::io::Error::from_raw_os_error(ERROR_ACCESS_DENIED),
        );
    }
    match e {
        windows_service::Error::Winapi(io) => CliError::io(what, io),
        other => CliError::io(what, std::io::Error::other(other.to_string())),
    }
}

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, CliError> {
    ServiceManager::local_computer(None::<&str>, access)
        .map_err(|e| scm_err("cannot connect to the Service Control Manager", e))
}

fn open(name: &str, access: ServiceAccess) -> Result<windows_service::service::Service, CliError> {
    let mgr = manager(ServiceManagerAccess::CONNECT)?;
    mgr.open_service(name, access).map_err(|e| {
        if raw(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) {
            CliError::NotInstalled(name.to_owned())
        } else {
            scm_err(format!("cannot open service `{name}`"), e)
        }
    })
}

fn state_word(s: ServiceState) -> &'static str {
    match s {
        ServiceState::Stopped => "STOPPED",
        ServiceState::StartPending => "START_PENDING",
        ServiceState::StopPending => "STOP_PENDING",
        ServiceState::Running => "RUNNING",
        ServiceState::ContinuePending => "CONTINUE_PENDING",
        ServiceState::PausePending => "PAUSE_PENDING",
        ServiceState::Paused => "PAUSED",
    }
}

/// What the SCM says about `name`; `None` if the SCM cannot be asked at all.
pub(crate) fn query(name: &str) -> Option<OsStatus> {
    let mgr = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT).ok()?;
    let svc = match mgr.open_service(
        name,
        ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG,
    ) {
        Ok(s) => s,
        Err(e) if raw(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => {
            return Some(OsStatus {
                installed: false,
                active: false,
                state: "not installed".into(),
                start: None,
                pid: None,
                manager: Some("scm".into()),
                failed: false,
                last_exit: None,
                definition: None,
            });
        }
        Err(_) => return None,
    };
    let st = svc.query_status().ok()?;
    let start = svc.query_config().ok().map(|c| {
        match c.start_type {
            ServiceStartType::AutoStart if query_delayed(&svc) == Some(true) => "delayed-auto",
            ServiceStartType::AutoStart => "auto",
            ServiceStartType::OnDemand => "manual",
            ServiceStartType::Disabled => "disabled",
            _ => "boot",
        }
        .to_owned()
    });
    Some(OsStatus {
        installed: true,
        active: st.current_state != ServiceState::Stopped,
        state: state_word(st.current_state).to_owned(),
        start,
        pid: st.process_id,
        manager: Some("scm".into()),
        failed: false,
        last_exit: None,
        definition: None,
    })
}

/// Whether an installed service's command line is tend's `service <name>`.
fn is_ours(command_line: &Path, name: &str) -> bool {
    let s = command_line.to_string_lossy().to_ascii_lowercase();
    s.contains("tend")
        && s.trim_end()
            .ends_with(&format!(" service {}", name.to_ascii_lowercase()))
}

/// Fails unless `account` exists (virtual and built-in accounts always do).
fn check_account(account: &str) -> Result<(), CliError> {
    use windows_sys::Win32::Security::{LookupAccountNameW, SID_NAME_USE};
    let name: Vec<u16> = account.encode_utf16().chain(std::iter::once(0)).collect();
    let (mut sid_len, mut dom_len, mut use_) = (0u32, 0u32, SID_NAME_USE::default());
    // SAFETY: a size query: null buffers with zero lengths; the outputs are locals.
    #[allow(unsafe_code)]
    let ok = unsafe {
        LookupAccountNameW(
            std::ptr::null(),
            name.as_ptr(),
            std::ptr::null_mut(),
            &raw mut sid_len,
            std::ptr::null_mut(),
            &raw mut dom_len,
            &raw mut use_,
        )
    };
    let err = std::io::Error::last_os_error();
    // ERROR_INSUFFICIENT_BUFFER means "it exists, give me room for its SID".
    if ok != 0 || err.raw_os_error() == Some(122) {
        return Ok(());
    }
    Err(CliError::Invalid(format!(
        "service.account: the account `{account}` does not exist on this machine ({err}); use isolated, system, local-service, network-service or an existing user"
    )))
}

fn service_info(plan: &ScmPlan, password: Option<&str>) -> ServiceInfo {
    ServiceInfo {
        name: OsString::from(&plan.name),
        display_name: OsString::from(&plan.display_name),
        service_type: ServiceType::OWN_PROCESS,
        start_type: match plan.start {
            StartType::Auto => ServiceStartType::AutoStart,
            StartType::Demand => ServiceStartType::OnDemand,
            StartType::Disabled => ServiceStartType::Disabled,
        },
        error_control: ServiceErrorControl::Normal,
        executable_path: plan.exe.clone(),
        launch_arguments: plan.args.iter().map(OsString::from).collect(),
        dependencies: plan
            .dependencies
            .iter()
            .map(|d| ServiceDependency::Service(OsString::from(d)))
            .collect(),
        account_name: plan.account.as_ref().map(OsString::from),
        account_password: password.map(OsString::from),
    }
}

/// `tend install` on Windows. Every check happens before anything changes; if creating the
/// service fails, the config copy is removed again.
fn install(
    spec: &ServiceSpec,
    original: &str,
    check_access: bool,
    r: &mut Report,
) -> Result<(), CliError> {
    let name = spec.name.as_str();
    let exe = std::env::current_exe()
        .map_err(|e| CliError::io("cannot find tend's own executable", e))?;
    let (plan, password) = scm_plan::plan(spec, &exe, |v| std::env::var(v).ok())
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    if let tend_core::Account::User { .. } = &spec.service.account
        && let Some(account) = &plan.account
    {
        check_account(account)?;
    }
    check_reach(spec, &exe, check_access, r)?;
    let text = installed_text(spec, original)?;
    let mgr = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    scm_plan::check_dependencies(&plan.dependencies, |dep| {
        !matches!(
            mgr.open_service(dep, ServiceAccess::QUERY_STATUS),
            Err(e) if raw(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST)
        )
    })
    .map_err(|e| CliError::Invalid(e.to_string()))?;
    let access = ServiceAccess::QUERY_CONFIG
        | ServiceAccess::CHANGE_CONFIG
        | ServiceAccess::QUERY_STATUS
        | ServiceAccess::START;
    let existing = match mgr.open_service(name, access) {
        Ok(svc) => Some(svc),
        Err(e) if raw(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => None,
        Err(e) => return Err(scm_err(format!("cannot open service `{name}`"), e)),
    };
    let mut old_plan = None;
    let mut installed = Installed::default();
    if let Some(svc) = &existing {
        let cfg = svc
            .query_config()
            .map_err(|e| scm_err(format!("cannot read service `{name}`"), e))?;
        if !is_ours(&cfg.executable_path, name) {
            return Err(CliError::Invalid(format!(
                "a service named `{name}` already exists and is not managed by tend (it runs `{}`); choose another name",
                cfg.executable_path.display()
            )));
        }
        let mut p = plan.clone();
        p.display_name = cfg.display_name.to_string_lossy().into_owned();
        p.account = cfg
            .account_name
            .map(|a| a.to_string_lossy().into_owned())
            .filter(|a| !a.eq_ignore_ascii_case("LocalSystem"));
        p.dependencies = cfg
            .dependencies
            .iter()
            .map(|d| d.to_system_identifier().to_string_lossy().into_owned())
            .collect();
        p.start = match cfg.start_type {
            ServiceStartType::AutoStart => StartType::Auto,
            ServiceStartType::Disabled => StartType::Disabled,
            _ => StartType::Demand,
        };
        installed = Installed {
            delayed: query_delayed(svc),
            sid_type: svc.get_config_service_sid_info().ok().map(|t| match t {
                ServiceSidType::None => SidType::None,
                ServiceSidType::Unrestricted => SidType::Unrestricted,
                ServiceSidType::Restricted => SidType::Restricted,
            }),
            required_privileges: query_required_privileges(svc),
        };
        // What cannot be read is shown as unchanged rather than guessed.
        p.delayed = installed.delayed.unwrap_or(plan.delayed);
        p.sid_type = installed.sid_type.unwrap_or(plan.sid_type);
        p.required_privileges = installed
            .required_privileges
            .clone()
            .unwrap_or_else(|| plan.required_privileges.clone());
        old_plan = Some(p);
    }

    // From here on, things change.
    let layout = layout(name)?;
    let config_path = layout.config.clone();
    let previous = std::fs::read_to_string(&config_path).ok();
    write_atomic(&config_path, text.as_bytes())?;
    let info = service_info(&plan, password.as_deref());
    let svc = match existing {
        Some(svc) => {
            svc.change_config(&info)
                .map_err(|e| scm_err(format!("cannot update service `{name}`"), e))?;
            svc
        }
        None => match mgr.create_service(&info, access) {
            Ok(svc) => svc,
            Err(e) => {
                let _ = std::fs::remove_file(&config_path);
                return Err(scm_err(format!("cannot create service `{name}`"), e));
            }
        },
    };
    let mut warn = |what: &str, e: &dyn std::fmt::Display| {
        r.warn(format!("{what}: {e}"));
    };
    if let Err(e) = svc.set_description(&plan.description) {
        warn("cannot set the description", &os_error(&e));
    }
    if let Err(e) = svc.set_preshutdown_timeout(plan.preshutdown_timeout) {
        warn("cannot set the preshutdown timeout", &os_error(&e));
    }
    for setting in scm_plan::settings(&plan, &installed) {
        let (what, result) = match &setting {
            Setting::Delayed(d) => (
                "cannot set delayed auto-start",
                svc.set_delayed_auto_start(*d),
            ),
            Setting::SidType(t) => (
                match t {
                    SidType::Restricted => {
                        "cannot make the service SID restricted (hardening = \"strict\"): the service runs less hardened than configured"
                    }
                    _ => "cannot set the service SID type (NT SERVICE accounts need it)",
                },
                svc.set_config_service_sid_info(match t {
                    SidType::None => ServiceSidType::None,
                    SidType::Unrestricted => ServiceSidType::Unrestricted,
                    SidType::Restricted => ServiceSidType::Restricted,
                }),
            ),
            Setting::RequiredPrivileges(p) => (
                if p.is_empty() {
                    "cannot give the service back all of its account's privileges"
                } else {
                    "cannot drop the privileges the service does not need (hardening = \"strict\"): the service runs less hardened than configured"
                },
                set_required_privileges(&svc, p),
            ),
        };
        if let Err(e) = result {
            warn(what, &os_error(&e));
        }
    }
    let actions = ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(plan.failure_reset),
        reboot_msg: None,
        command: None,
        actions: Some(
            plan.failure_actions
                .iter()
                .map(|r| ServiceAction {
                    action_type: ServiceActionType::Restart,
                    delay: r.delay,
                })
                .collect(),
        ),
    };
    if let Err(e) = svc.update_failure_actions(actions) {
        warn("cannot set failure actions", &os_error(&e));
    }
    if let Err(e) = svc.set_failure_actions_on_non_crash_failures(plan.failure_actions_on_non_crash)
    {
        warn(
            "cannot apply failure actions to non-crash failures",
            &os_error(&e),
        );
    }
    if let Err(e) = super::eventlog::register_source(name) {
        warn("cannot register the Event Log source", &e);
    }
    for dir in [layout.state_dir.clone(), spec.logs.dir.clone()] {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            warn(&format!("cannot create `{}`", dir.display()), &e);
        }
    }
    // Who may touch what (os/acl.rs). Only paths tend owns under ProgramData: a custom
    // `[logs] dir` keeps the ACL its owner gave it.
    let grantees = super::acl::grantees(&spec.service.account, name, spec.service.hardening);
    let mut acls = vec![
        (
            config_path.parent().map(Path::to_path_buf),
            super::acl::services_dir(),
        ),
        (
            Some(config_path.clone()),
            super::acl::config_file(&grantees),
        ),
        (
            Some(layout.state_dir.clone()),
            super::acl::writable_dir(&grantees),
        ),
    ];
    if spec.logs.dir == layout.log_dir {
        acls.push((
            Some(spec.logs.dir.clone()),
            super::acl::writable_dir(&grantees),
        ));
    }
    for (path, sddl) in acls {
        if let Some(path) = path
            && let Err(e) = set_dacl(&path, &sddl)
        {
            warn(
                &format!("cannot set the access rules of `{}`", path.display()),
                &e,
            );
        }
    }
    match old_plan {
        None => {
            r.changed = Changed::Installed;
            r.say(format!("installed service `{name}` (start {}, account {})\nconfig copied to `{}`\nstart it with: tend start {name}",
                describe_start(&plan),
                plan.account.as_deref().unwrap_or("LocalSystem"),
                config_path.display()
            ));
        }
        Some(old) => {
            let scm_changes = scm_plan::changes(&old, &plan);
            let config_changed = previous.as_deref() != Some(text.as_str());
            if scm_changes.is_empty() && !config_changed {
                r.say(format!("service `{name}` is installed and unchanged"));
            } else {
                r.changed = Changed::Updated;
                r.say(format!("updated service `{name}`:"));
                for c in &scm_changes {
                    r.say(format!("  {c}"));
                }
                if config_changed {
                    r.say("  config file changed");
                }
                let running =
                    svc.query_status().map(|s| s.current_state).ok() == Some(ServiceState::Running);
                if !scm_changes.is_empty() && running {
                    r.say(format!("restart it to apply: tend restart {name}"));
                } else if config_changed && running {
                    // What tend supervises lives in the config: a reload applies it (and
                    // restarts the program gracefully only if its command or env changed).
                    return reload(name, r);
                }
            }
        }
    }
    Ok(())
}

/// Refuses an install whose service account could not run tend or the program, enter the
/// working directory or write a custom log directory (os/acl.rs decides from the DACLs).
/// tend's own directories under ProgramData get their rules at install, so they are not
/// asked about.
/// Refuses the install when the service account could not reach what it needs; with
/// `--no-access-check` (`enforce` false) says each problem as a warning and goes on.
fn check_reach(
    spec: &ServiceSpec,
    exe: &Path,
    enforce: bool,
    r: &mut Report,
) -> Result<(), CliError> {
    use super::acl::Need;
    let mut paths: Vec<(&str, &Path, Need)> = vec![("tend.exe", exe, Need::Run)];
    if let tend_core::Program::Path(p) = &spec.command.program {
        paths.push(("command[0]", p, Need::Run));
    }
    paths.push(("working_dir", &spec.working_dir, Need::Enter));
    if spec.logs.dir != layout(spec.name.as_str())?.log_dir && spec.logs.dir.is_dir() {
        paths.push(("logs.dir", &spec.logs.dir, Need::Write));
    }
    let items: Vec<_> = paths
        .into_iter()
        .map(|(k, p, n)| (k, p, n, read_dacl(p).map_err(|e| e.to_string())))
        .collect();
    let problems = super::acl::reach_problems(
        spec.name.as_str(),
        &spec.service.account,
        spec.service.hardening,
        &items,
    );
    if problems.is_empty() {
        return Ok(());
    }
    if !enforce {
        for (key, p) in problems {
            r.warn(format!("{key}: {p} (installing anyway: --no-access-check)"));
        }
        return Ok(());
    }
    let mut msg = format!(
        "not installing `{}`: its service account could not reach what it needs (nothing was changed); fix that, or install anyway with --no-access-check:",
        spec.name
    );
    for (key, p) in problems {
        msg.push_str(&format!("\n  {key}: {p}"));
    }
    Err(CliError::Invalid(msg))
}

/// The DACL of `path` as [`Ace`](super::acl::Ace)s; `None` for a null DACL.
fn read_dacl(path: &Path) -> std::io::Result<Option<Vec<super::acl::Ace>>> {
    use std::os::windows::ffi::OsStrExt as _;
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Authorization::{
        ConvertSidToStringSidW, GetNamedSecurityInfoW, SE_FILE_OBJECT,
    };
    use windows_sys::Win32::Security::{
        ACCESS_ALLOWED_ACE, ACE_HEADER, ACL, DACL_SECURITY_INFORMATION, GetAce, INHERIT_ONLY_ACE,
        PSECURITY_DESCRIPTOR,
    };
    const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
    const ACCESS_DENIED_ACE_TYPE: u8 = 1;
    let wide: Vec<u16> = path
        .as_os_str()
        .encode_wide()
        .chain(std::iter::once(0))
        .collect();
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: NUL-terminated path; on success `sd` is allocated by the system (freed with
    // LocalFree below) and `dacl` points into it.
    #[allow(unsafe_code)]
    let rc = unsafe {
        GetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &raw mut dacl,
            std::ptr::null_mut(),
            &raw mut sd,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(
            i32::try_from(rc).unwrap_or(i32::MAX),
        ));
    }
    if dacl.is_null() {
        // SAFETY: allocated by GetNamedSecurityInfoW, freed once.
        #[allow(unsafe_code)]
        unsafe {
            LocalFree(sd.cast());
        }
        return Ok(None);
    }
    let mut out = Vec::new();
    // SAFETY: `dacl` is valid while `sd` lives; each ACE is read through GetAce, and only
    // allowed/denied ACEs (whose layout is ACCESS_ALLOWED_ACE) are interpreted.
    #[allow(unsafe_code)]
    unsafe {
        for i in 0..u32::from((*dacl).AceCount) {
            let mut p: *mut core::ffi::c_void = std::ptr::null_mut();
            if GetAce(dacl, i, &raw mut p) == 0 {
                continue;
            }
            let header = &*p.cast::<ACE_HEADER>();
            if header.AceType != ACCESS_ALLOWED_ACE_TYPE && header.AceType != ACCESS_DENIED_ACE_TYPE
            {
                continue;
            }
            let ace = p.cast::<ACCESS_ALLOWED_ACE>();
            let sid = (&raw const (*ace).SidStart).cast_mut().cast();
            let mut s: windows_sys::core::PWSTR = std::ptr::null_mut();
            if ConvertSidToStringSidW(sid, &raw mut s) == 0 {
                continue;
            }
            let mut len = 0;
            while *s.add(len) != 0 {
                len += 1;
            }
            let text = String::from_utf16_lossy(std::slice::from_raw_parts(s, len));
            LocalFree(s.cast());
            out.push(super::acl::Ace {
                allow: header.AceType == ACCESS_ALLOWED_ACE_TYPE,
                sid: text,
                mask: (*ace).Mask,
                inherit_only: u32::from(header.AceFlags) & INHERIT_ONLY_ACE != 0,
            });
        }
        LocalFree(sd.cast());
    }
    Ok(Some(out))
}

/// SERVICE_CONFIG_DELAYED_AUTO_START_INFO, which windows-service cannot read.
fn query_delayed(svc: &Service) -> Option<bool> {
    use windows_sys::Win32::System::Services::{
        QueryServiceConfig2W, SERVICE_CONFIG_DELAYED_AUTO_START_INFO,
        SERVICE_DELAYED_AUTO_START_INFO,
    };
    let mut info = SERVICE_DELAYED_AUTO_START_INFO {
        fDelayedAutostart: 0,
    };
    let mut needed = 0u32;
    // SAFETY: the handle is valid for the life of `svc`; the buffer is the struct this
    // info level fills, with its exact size.
    #[allow(unsafe_code)]
    let ok = unsafe {
        QueryServiceConfig2W(
            svc.raw_handle(),
            SERVICE_CONFIG_DELAYED_AUTO_START_INFO,
            std::ptr::from_mut(&mut info).cast(),
            u32::try_from(std::mem::size_of_val(&info)).unwrap_or(u32::MAX),
            &raw mut needed,
        )
    };
    (ok != 0).then_some(info.fDelayedAutostart != 0)
}

/// SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO as a list; empty when none is set.
fn query_required_privileges(svc: &Service) -> Option<Vec<String>> {
    use windows_sys::Win32::System::Services::{
        QueryServiceConfig2W, SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO,
        SERVICE_REQUIRED_PRIVILEGES_INFOW,
    };
    // u64s: aligned for the struct at the start, which points into the rest.
    let mut buf = vec![0u64; 1024];
    let mut needed = 0u32;
    // SAFETY: the handle is valid for the life of `svc`; the buffer's size is passed.
    #[allow(unsafe_code)]
    let ok = unsafe {
        QueryServiceConfig2W(
            svc.raw_handle(),
            SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO,
            buf.as_mut_ptr().cast(),
            u32::try_from(buf.len() * 8).unwrap_or(u32::MAX),
            &raw mut needed,
        )
    };
    if ok == 0 {
        return None;
    }
    // SAFETY: on success the buffer starts with the struct; its pointer is null or points
    // to a double-NUL-terminated multi-string inside the buffer.
    #[allow(unsafe_code)]
    let list = unsafe {
        let info = &*buf.as_ptr().cast::<SERVICE_REQUIRED_PRIVILEGES_INFOW>();
        let mut out = Vec::new();
        let mut p = info.pmszRequiredPrivileges.cast_const();
        while !p.is_null() && *p != 0 {
            let mut len = 0;
            while *p.add(len) != 0 {
                len += 1;
            }
            out.push(String::from_utf16_lossy(std::slice::from_raw_parts(p, len)));
            p = p.add(len + 1);
        }
        out
    };
    Some(list)
}

/// Sets SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO (windows-service has no call for it). An
/// empty list removes the restriction.
fn set_required_privileges(svc: &Service, privileges: &[String]) -> windows_service::Result<()> {
    use windows_sys::Win32::System::Services::{
        ChangeServiceConfig2W, SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO,
        SERVICE_REQUIRED_PRIVILEGES_INFOW,
    };
    let mut multi: Vec<u16> = Vec::new();
    for p in privileges {
        multi.extend(p.encode_utf16());
        multi.push(0);
    }
    multi.extend([0, 0]);
    let mut info = SERVICE_REQUIRED_PRIVILEGES_INFOW {
        pmszRequiredPrivileges: multi.as_mut_ptr(),
    };
    // SAFETY: the handle is valid for the life of `svc`; `info` points to a
    // double-NUL-terminated multi-string that outlives the call.
    #[allow(unsafe_code)]
    let ok = unsafe {
        ChangeServiceConfig2W(
            svc.raw_handle(),
            SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO,
            std::ptr::from_mut(&mut info).cast(),
        )
    };
    if ok == 0 {
        return Err(windows_service::Error::Winapi(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn describe_start(plan: &ScmPlan) -> &'static str {
    match (plan.start, plan.delayed) {
        (StartType::Auto, false) => "auto",
        (StartType::Auto, true) => "delayed-auto",
        (StartType::Demand, _) => "manual",
        (StartType::Disabled, _) => "disabled",
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::io(format!("cannot create `{}`", dir.display()), e))?;
    tend_os::write_atomic(path, bytes, None)
        .map_err(|e| CliError::io(format!("cannot write `{}`", path.display()), e))
}

/// How long to wait for a stop: the installed config's stop timeout plus a margin.
fn stop_budget(name: &str) -> Duration {
    let installed = || -> Result<_, CliError> {
        let load = crate::place::load_options(Scope::System)?;
        Ok(tend_config::load(&layout(name)?.config, &load)?.spec)
    };
    installed().map_or(Duration::from_secs(10), |s| s.stop.timeout) + Duration::from_secs(30)
}

/// Where the files of SCM service `name` live.
fn layout(name: &str) -> Result<tend_os::Layout, CliError> {
    crate::place::place(Scope::System, &crate::place::service_name(name)?)
}

fn wait_state(
    svc: &windows_service::service::Service,
    want: ServiceState,
    within: Duration,
) -> Result<Option<u32>, CliError> {
    let end = Instant::now() + within;
    let mut seen_other = false;
    loop {
        let st = svc
            .query_status()
            .map_err(|e| scm_err("cannot query the service", e))?;
        if st.current_state == want {
            return Ok(st.process_id);
        }
        // Waiting for RUNNING, a STOPPED after START_PENDING means the start failed: say why
        // at once instead of waiting out the budget.
        if want == ServiceState::Running && st.current_state == ServiceState::Stopped && seen_other
        {
            let why = match st.exit_code {
                windows_service::service::ServiceExitCode::ServiceSpecific(
                    scm_plan::exit::CONFIG,
                ) => "the installed config could not be loaded".to_owned(),
                windows_service::service::ServiceExitCode::ServiceSpecific(
                    scm_plan::exit::GAVE_UP,
                ) => "the program failed and tend gave up".to_owned(),
                other => format!("exit code {other:?}"),
            };
            return Err(CliError::io(
                format!(
                    "the service stopped while starting: {why}; see the Event Log (Application log, source = the service name) and `tend logs`"
                ),
                std::io::Error::other("start failed"),
            ));
        }
        seen_other |= st.current_state != ServiceState::Stopped;
        if Instant::now() >= end {
            return Err(CliError::io(
                format!(
                    "the service did not reach {} within {}s (now {})",
                    state_word(want),
                    within.as_secs(),
                    state_word(st.current_state)
                ),
                std::io::Error::from(std::io::ErrorKind::TimedOut),
            ));
        }
        // The SCM has no change notification that works under Wine; poll briefly.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `tend start <name>`: start and wait until RUNNING.
fn start(name: &str, r: &mut Report) -> Result<bool, CliError> {
    let svc = open(name, ServiceAccess::START | ServiceAccess::QUERY_STATUS)?;
    if svc.query_status().map(|s| s.current_state).ok() == Some(ServiceState::Running) {
        r.say(format!("service `{name}` is already running"));
        return Ok(true);
    }
    svc.start::<&str>(&[])
        .map_err(|e| scm_err(format!("cannot start service `{name}`"), e))?;
    let pid = wait_state(&svc, ServiceState::Running, Duration::from_secs(60))?;
    r.say(format!(
        "service `{name}` is running{}",
        pid.map(|p| format!(" (tend pid {p})")).unwrap_or_default()
    ));
    Ok(false)
}

/// `tend stop <name>`: stop and wait until STOPPED.
fn stop(name: &str, r: &mut Report) -> Result<bool, CliError> {
    let svc = open(name, ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)?;
    if svc.query_status().map(|s| s.current_state).ok() == Some(ServiceState::Stopped) {
        r.say(format!("service `{name}` is already stopped"));
        return Ok(true);
    }
    // Wine answers RUNNING rather than STOP_PENDING here: the wait below is what counts.
    svc.stop()
        .map_err(|e| scm_err(format!("cannot stop service `{name}`"), e))?;
    wait_state(&svc, ServiceState::Stopped, stop_budget(name))?;
    r.say(format!("service `{name}` is stopped"));
    Ok(false)
}

/// `tend uninstall <name>`: stop, delete the service, its config copy and its Event Log
/// source. Logs stay.
fn uninstall(name: &str, r: &mut Report) -> Result<(), CliError> {
    let svc = open(
        name,
        ServiceAccess::STOP
            | ServiceAccess::QUERY_STATUS
            | ServiceAccess::DELETE
            | ServiceAccess::QUERY_CONFIG,
    )?;
    let cfg = svc
        .query_config()
        .map_err(|e| scm_err(format!("cannot read service `{name}`"), e))?;
    if !is_ours(&cfg.executable_path, name) {
        return Err(CliError::Invalid(format!(
            "service `{name}` is not managed by tend (it runs `{}`); not touching it",
            cfg.executable_path.display()
        )));
    }
    if svc.query_status().map(|s| s.current_state).ok() != Some(ServiceState::Stopped) {
        let _ = svc.stop();
        wait_state(&svc, ServiceState::Stopped, stop_budget(name))?;
    }
    svc.delete()
        .map_err(|e| scm_err(format!("cannot delete service `{name}`"), e))?;
    drop(svc);
    let layout = layout(name)?;
    let config = layout.config.clone();
    match std::fs::remove_file(&config) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            r.warn(format!("cannot remove `{}`: {e}", config.display()));
        }
    }
    // tend's own state (the status file) goes with the service; logs stay.
    let state = layout.state_dir.clone();
    if let Err(e) = std::fs::remove_dir_all(&state)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        r.warn(format!("cannot remove `{}`: {e}", state.display()));
    }
    if let Err(e) = super::eventlog::remove_source(name) {
        r.warn(format!("{e}"));
    }
    r.say(format!(
        "uninstalled service `{name}`; its logs remain in `{}`",
        layout.log_dir.display()
    ));
    Ok(())
}

/// Replaces the DACL of `path` with the (protected) one in `sddl`.
fn set_dacl(path: &Path, sddl: &str) -> std::io::Result<()> {
    use std::os::windows::ffi::OsStrExt as _;
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Authorization::ConvertStringSecurityDescriptorToSecurityDescriptorW;
    use windows_sys::Win32::Security::{
        DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
        SetFileSecurityW,
    };
    const SDDL_REVISION_1: u32 = 1;
    let wide_sddl: Vec<u16> = sddl.encode_utf16().chain(std::iter::once(0)).collect();
    let wide_path: Vec<u16> = path
        .as_os_str()
        .encode_wide()
        .chain(std::iter::once(0))
        .collect();
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: NUL-terminated SDDL; on success the system allocates `sd`, freed below with
    // LocalFree as documented.
    #[allow(unsafe_code)]
    unsafe {
        if ConvertStringSecurityDescriptorToSecurityDescriptorW(
            wide_sddl.as_ptr(),
            SDDL_REVISION_1,
            &raw mut sd,
            std::ptr::null_mut(),
        ) == 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let ok = SetFileSecurityW(
            wide_path.as_ptr(),
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            sd,
        );
        let err = std::io::Error::last_os_error();
        LocalFree(sd.cast());
        if ok == 0 {
            return Err(err);
        }
    }
    Ok(())
}

/// `tend reload <name>`: SERVICE_CONTROL_PARAMCHANGE, which `tend service` turns into the
/// same reload as SIGHUP on Unix. The result (applied or rejected) is in `tend status` and
/// the service's log; the SCM only says the control was delivered.
fn reload(name: &str, r: &mut Report) -> Result<(), CliError> {
    use windows_sys::Win32::System::Services::{
        ControlService, SERVICE_CONTROL_PARAMCHANGE, SERVICE_STATUS,
    };
    let svc = open(
        name,
        ServiceAccess::PAUSE_CONTINUE | ServiceAccess::QUERY_STATUS,
    )?;
    if svc.query_status().map(|s| s.current_state).ok() != Some(ServiceState::Running) {
        return Err(CliError::Invalid(format!(
            "service `{name}` is not running: nothing to reload (start it with `tend start {name}`)"
        )));
    }
    // windows-service has no call for PARAMCHANGE; its raw handle does it.
    // SAFETY: the handle is valid for the life of `svc`; `status` is a local out parameter.
    #[allow(unsafe_code)]
    let ok = unsafe {
        let mut status: SERVICE_STATUS = std::mem::zeroed();
        ControlService(
            svc.raw_handle(),
            SERVICE_CONTROL_PARAMCHANGE,
            &raw mut status,
        )
    };
    if ok == 0 {
        return Err(CliError::io(
            format!("cannot send a reload to service `{name}`"),
            std::io::Error::last_os_error(),
        ));
    }
    r.say(format!(
        "reload sent to service `{name}`; `tend status {name}` shows whether it was applied"
    ));
    Ok(())
}

/// The Windows Service Control Manager as a [`ServiceManager`].
pub(crate) struct Scm {
    /// What `install` does about paths the service account will not reach.
    pub(crate) access: Access,
}

/// A verb of this module, reported: `f` says whether there was nothing to do (already
/// so), otherwise the verb made `changed`.
fn verb(
    changed: Changed,
    f: impl FnOnce(&mut Report) -> Result<bool, CliError>,
) -> Result<Report, Failure> {
    reported(|r| {
        let already = f(r)?;
        if !already {
            r.changed = changed;
        }
        Ok(())
    })
}

impl tend_os::ServiceManager for Scm {
    fn backend(&self) -> Backend {
        Backend::Scm
    }

    fn install(&self, i: &Install<'_>) -> Result<Report, Failure> {
        reported(|r| {
            Ok(install(
                i.spec,
                i.original,
                self.access == Access::Check,
                r,
            )?)
        })
    }

    fn uninstall(&self, name: &ServiceName) -> Result<Report, Failure> {
        verb(Changed::Uninstalled, |r| {
            uninstall(name.as_str(), r).map(|()| false)
        })
    }

    fn start(&self, name: &ServiceName) -> Result<Report, Failure> {
        verb(Changed::Started, |r| start(name.as_str(), r))
    }

    fn stop(&self, name: &ServiceName) -> Result<Report, Failure> {
        verb(Changed::Stopped, |r| stop(name.as_str(), r))
    }

    fn restart(&self, name: &ServiceName) -> Result<Report, Failure> {
        verb(Changed::Restarted, |r| {
            stop(name.as_str(), r)?;
            start(name.as_str(), r).map(|_| false)
        })
    }

    fn reload(&self, name: &ServiceName) -> Result<Report, Failure> {
        verb(Changed::Reloaded, |r| {
            reload(name.as_str(), r).map(|()| false)
        })
    }

    fn status(&self, name: &ServiceName) -> Result<OsStatus, tend_os::Error> {
        query(name.as_str()).ok_or_else(|| {
            tend_os::Error::io(
                "cannot ask the Service Control Manager",
                std::io::Error::other("not available"),
            )
        })
    }
}
