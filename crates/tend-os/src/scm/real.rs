//! The real [`ScmApi`] (the windows-service crate, and windows-sys where it has no call)
//! and the real [`Host`]. Each method is one call; the decisions are in `backend.rs`.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceDependency,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceSidType, ServiceStartType, ServiceState, ServiceType,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use super::acl::Ace;
use super::api::{
    Config2, Control, ExitCode, Host, InstalledConfig, RawChange, Rights, ScmApi, ServiceStatus,
    State,
};
use super::dumps::{LOCAL_DUMPS_KEY, LocalDumps, OWNER_VALUE, Owner};
use super::error::ScmError;
use super::plan::{ScmPlan, SidType, StartType};
use crate::winreg;
use windows_sys::Win32::System::Registry::HKEY_LOCAL_MACHINE;

/// The Service Control Manager of this machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealScm;

/// This machine's files, DACLs, accounts, registry and clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealHost;

/// A windows-service error with its Win32 code (its own text for most is only "IO error
/// in winapi call").
fn err(e: windows_service::Error) -> ScmError {
    match e {
        windows_service::Error::Winapi(io) => ScmError::from(io),
        other => ScmError {
            code: None,
            message: other.to_string(),
        },
    }
}

fn last_error() -> ScmError {
    ScmError::from(io::Error::last_os_error())
}

fn access(rights: Rights) -> ServiceAccess {
    ServiceAccess::from_bits_truncate(rights.bits())
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

fn state(s: ServiceState) -> State {
    match s {
        ServiceState::Stopped => State::Stopped,
        ServiceState::StartPending => State::StartPending,
        ServiceState::StopPending => State::StopPending,
        ServiceState::Running => State::Running,
        ServiceState::ContinuePending => State::ContinuePending,
        ServiceState::PausePending => State::PausePending,
        ServiceState::Paused => State::Paused,
    }
}

impl ScmApi for RealScm {
    type Manager = ServiceManager;
    type Service = Service;

    fn connect(&self, create: bool) -> Result<ServiceManager, ScmError> {
        let mut a = ServiceManagerAccess::CONNECT;
        if create {
            a |= ServiceManagerAccess::CREATE_SERVICE;
        }
        ServiceManager::local_computer(None::<&str>, a).map_err(err)
    }

    fn open(&self, mgr: &ServiceManager, name: &str, rights: Rights) -> Result<Service, ScmError> {
        mgr.open_service(name, access(rights)).map_err(err)
    }

    fn create(
        &self,
        mgr: &ServiceManager,
        plan: &ScmPlan,
        password: Option<&str>,
        rights: Rights,
    ) -> Result<Service, ScmError> {
        mgr.create_service(&service_info(plan, password), access(rights))
            .map_err(err)
    }

    fn change_config(
        &self,
        svc: &Service,
        plan: &ScmPlan,
        password: Option<&str>,
    ) -> Result<(), ScmError> {
        svc.change_config(&service_info(plan, password))
            .map_err(err)
    }

    fn change_raw(&self, svc: &Service, change: &RawChange) -> Result<(), ScmError> {
        use windows_sys::Win32::System::Services::{
            ChangeServiceConfigW, SERVICE_AUTO_START, SERVICE_DEMAND_START, SERVICE_DISABLED,
            SERVICE_NO_CHANGE,
        };
        let wide = |s: &str| -> Vec<u16> { s.encode_utf16().chain(std::iter::once(0)).collect() };
        let command = change.command_line.as_deref().map(wide);
        let display = change.display_name.as_deref().map(wide);
        let account = change.account.as_deref().map(wide);
        // REG_MULTI_SZ: each name NUL-terminated, and one more NUL (two for none).
        let deps = change.dependencies.as_ref().map(|d| {
            let mut v: Vec<u16> = Vec::new();
            for n in d {
                v.extend(n.encode_utf16());
                v.push(0);
            }
            if d.is_empty() {
                v.push(0);
            }
            v.push(0);
            v
        });
        let ptr = |v: &Option<Vec<u16>>| v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
        let start = match change.start {
            None => SERVICE_NO_CHANGE,
            Some(StartType::Auto) => SERVICE_AUTO_START,
            Some(StartType::Demand) => SERVICE_DEMAND_START,
            Some(StartType::Disabled) => SERVICE_DISABLED,
        };
        // SAFETY: the handle is an open service handle owned by `svc` for the whole call;
        // every string pointer is null or a NUL-terminated (dependencies: double
        // NUL-terminated) UTF-16 buffer that outlives the call.
        #[allow(unsafe_code)]
        let ok = unsafe {
            ChangeServiceConfigW(
                svc.raw_handle(),
                SERVICE_NO_CHANGE,
                start,
                SERVICE_NO_CHANGE,
                ptr(&command),
                std::ptr::null(),
                std::ptr::null_mut(),
                ptr(&deps),
                ptr(&account),
                std::ptr::null(),
                ptr(&display),
            )
        };
        if ok == 0 {
            return Err(last_error());
        }
        Ok(())
    }

    fn configure(&self, svc: &Service, setting: &Config2) -> Result<(), ScmError> {
        match setting {
            Config2::Description(d) => svc.set_description(d).map_err(err),
            Config2::PreshutdownTimeout(t) => svc.set_preshutdown_timeout(*t).map_err(err),
            Config2::Delayed(d) => svc.set_delayed_auto_start(*d).map_err(err),
            Config2::SidType(t) => svc
                .set_config_service_sid_info(match t {
                    SidType::None => ServiceSidType::None,
                    SidType::Unrestricted => ServiceSidType::Unrestricted,
                    SidType::Restricted => ServiceSidType::Restricted,
                })
                .map_err(err),
            Config2::RequiredPrivileges(p) => set_required_privileges(svc, p),
            Config2::FailureActions { reset, restarts } => svc
                .update_failure_actions(ServiceFailureActions {
                    reset_period: ServiceFailureResetPeriod::After(*reset),
                    reboot_msg: None,
                    command: None,
                    actions: Some(
                        restarts
                            .iter()
                            .map(|delay| ServiceAction {
                                action_type: ServiceActionType::Restart,
                                delay: *delay,
                            })
                            .collect(),
                    ),
                })
                .map_err(err),
            Config2::FailureActionsOnNonCrash(b) => svc
                .set_failure_actions_on_non_crash_failures(*b)
                .map_err(err),
            Config2::RecordedFailureActions(a) => {
                if a.actions.iter().any(|x| x.kind == "reboot") {
                    enable_shutdown_privilege();
                }
                svc.update_failure_actions(recorded_failure_actions(a))
                    .map_err(err)
            }
        }
    }

    fn query_config(&self, svc: &Service) -> Result<InstalledConfig, ScmError> {
        let c = svc.query_config().map_err(err)?;
        Ok(InstalledConfig {
            display_name: c.display_name.to_string_lossy().into_owned(),
            command_line: c.executable_path.to_string_lossy().into_owned(),
            account: c.account_name.map(|a| a.to_string_lossy().into_owned()),
            dependencies: c
                .dependencies
                .iter()
                .map(|d| d.to_system_identifier().to_string_lossy().into_owned())
                .collect(),
            start: match c.start_type {
                ServiceStartType::AutoStart => Some(StartType::Auto),
                ServiceStartType::OnDemand => Some(StartType::Demand),
                ServiceStartType::Disabled => Some(StartType::Disabled),
                _ => None,
            },
        })
    }

    fn query_delayed(&self, svc: &Service) -> Result<bool, ScmError> {
        query_delayed(svc)
    }

    fn query_sid_type(&self, svc: &Service) -> Result<SidType, ScmError> {
        Ok(match svc.get_config_service_sid_info().map_err(err)? {
            ServiceSidType::None => SidType::None,
            ServiceSidType::Unrestricted => SidType::Unrestricted,
            ServiceSidType::Restricted => SidType::Restricted,
        })
    }

    fn query_required_privileges(&self, svc: &Service) -> Result<Vec<String>, ScmError> {
        query_required_privileges(svc)
    }

    fn query_description(&self, svc: &Service) -> Result<String, ScmError> {
        query_description(svc)
    }

    fn query_failure_actions(
        &self,
        svc: &Service,
    ) -> Result<crate::takeover::ScmFailureActions, ScmError> {
        let a = svc.get_failure_actions().map_err(err)?;
        Ok(crate::takeover::ScmFailureActions {
            reset_secs: match a.reset_period {
                ServiceFailureResetPeriod::Never => None,
                ServiceFailureResetPeriod::After(d) => Some(d.as_secs()),
            },
            reboot_message: a
                .reboot_msg
                .map(|m| m.to_string_lossy().into_owned())
                .unwrap_or_default(),
            command: a
                .command
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default(),
            actions: a
                .actions
                .unwrap_or_default()
                .iter()
                .map(|x| crate::takeover::ScmFailureAction {
                    kind: match x.action_type {
                        ServiceActionType::None => "none",
                        ServiceActionType::Restart => "restart",
                        ServiceActionType::Reboot => "reboot",
                        ServiceActionType::RunCommand => "run",
                    }
                    .to_owned(),
                    delay_ms: u64::try_from(x.delay.as_millis()).unwrap_or(u64::MAX),
                })
                .collect(),
        })
    }

    fn query_failure_actions_on_non_crash(&self, svc: &Service) -> Result<bool, ScmError> {
        svc.get_failure_actions_on_non_crash_failures().map_err(err)
    }

    fn query_preshutdown(&self, svc: &Service) -> Result<Duration, ScmError> {
        use windows_sys::Win32::System::Services::{
            SERVICE_CONFIG_PRESHUTDOWN_INFO, SERVICE_PRESHUTDOWN_INFO,
        };
        let buf = query_config2(svc, SERVICE_CONFIG_PRESHUTDOWN_INFO)?;
        // SAFETY: on success the buffer (u64-aligned) starts with the struct.
        #[allow(unsafe_code)]
        let ms = unsafe { (*buf.as_ptr().cast::<SERVICE_PRESHUTDOWN_INFO>()).dwPreshutdownTimeout };
        Ok(Duration::from_millis(u64::from(ms)))
    }

    fn query_status(&self, svc: &Service) -> Result<ServiceStatus, ScmError> {
        let st = svc.query_status().map_err(err)?;
        Ok(ServiceStatus {
            state: state(st.current_state),
            pid: st.process_id,
            exit: match st.exit_code {
                ServiceExitCode::Win32(c) => ExitCode::Win32(c),
                ServiceExitCode::ServiceSpecific(c) => ExitCode::ServiceSpecific(c),
            },
        })
    }

    fn start(&self, svc: &Service) -> Result<(), ScmError> {
        svc.start::<&str>(&[]).map_err(err)
    }

    fn control(&self, svc: &Service, control: Control) -> Result<(), ScmError> {
        match control {
            Control::Stop => svc.stop().map(|_| ()).map_err(err),
            Control::ParamChange => param_change(svc),
        }
    }

    fn delete(&self, svc: &Service) -> Result<(), ScmError> {
        svc.delete().map_err(err)
    }
}

/// SERVICE_CONTROL_PARAMCHANGE: windows-service has no call for it; its raw handle does
/// it.
fn param_change(svc: &Service) -> Result<(), ScmError> {
    use windows_sys::Win32::System::Services::{
        ControlService, SERVICE_CONTROL_PARAMCHANGE, SERVICE_STATUS,
    };
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
        return Err(last_error());
    }
    Ok(())
}

/// SERVICE_CONFIG_DELAYED_AUTO_START_INFO, which windows-service cannot read.
fn query_delayed(svc: &Service) -> Result<bool, ScmError> {
    use windows_sys::Win32::System::Services::{
        SERVICE_CONFIG_DELAYED_AUTO_START_INFO, SERVICE_DELAYED_AUTO_START_INFO,
    };
    let buf = query_config2(svc, SERVICE_CONFIG_DELAYED_AUTO_START_INFO)?;
    // SAFETY: on success the buffer (u64-aligned) starts with the struct.
    #[allow(unsafe_code)]
    let delayed =
        unsafe { (*buf.as_ptr().cast::<SERVICE_DELAYED_AUTO_START_INFO>()).fDelayedAutostart };
    Ok(delayed != 0)
}

/// What a put-back writes: everything recorded, and an empty reboot message or command
/// written as empty (which removes tend's, were there one) rather than left alone.
fn recorded_failure_actions(a: &crate::takeover::ScmFailureActions) -> ServiceFailureActions {
    ServiceFailureActions {
        // The SCM's period is a u32 of seconds, u32::MAX meaning never (windows-service
        // panics on more).
        reset_period: a.reset_secs.map_or(ServiceFailureResetPeriod::Never, |s| {
            ServiceFailureResetPeriod::After(Duration::from_secs(s.min(u64::from(u32::MAX - 1))))
        }),
        reboot_msg: Some(OsString::from(&a.reboot_message)),
        command: Some(OsString::from(&a.command)),
        actions: Some(
            a.actions
                .iter()
                .map(|x| ServiceAction {
                    action_type: match x.kind.as_str() {
                        "restart" => ServiceActionType::Restart,
                        "reboot" => ServiceActionType::Reboot,
                        "run" => ServiceActionType::RunCommand,
                        _ => ServiceActionType::None,
                    },
                    // The SCM's delay is a u32 of milliseconds (windows-service panics on more).
                    delay: Duration::from_millis(x.delay_ms.min(u64::from(u32::MAX))),
                })
                .collect(),
        ),
    }
}

/// Enables SeShutdownPrivilege in this process's token: `ChangeServiceConfig2` refuses
/// failure actions that include a reboot without it, and an administrator's token holds it
/// disabled. Best effort: where it cannot be enabled, the write fails and the put-back says
/// so.
fn enable_shutdown_privilege() {
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LUID};
    use windows_sys::Win32::Security::{
        AdjustTokenPrivileges, LUID_AND_ATTRIBUTES, LookupPrivilegeValueW, SE_PRIVILEGE_ENABLED,
        SE_SHUTDOWN_NAME, TOKEN_ADJUST_PRIVILEGES, TOKEN_PRIVILEGES, TOKEN_QUERY,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of this process; `token` receives a handle closed below.
    #[allow(unsafe_code)]
    if unsafe {
        OpenProcessToken(
            GetCurrentProcess(),
            TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY,
            &raw mut token,
        )
    } == 0
    {
        return;
    }
    let mut luid = LUID {
        LowPart: 0,
        HighPart: 0,
    };
    // SAFETY: a NUL-terminated constant name and a LUID to fill; then one privilege, sized
    // as its struct, with no previous state asked for; the token is open and closed once.
    #[allow(unsafe_code)]
    unsafe {
        if LookupPrivilegeValueW(std::ptr::null(), SE_SHUTDOWN_NAME, &raw mut luid) != 0 {
            let privileges = TOKEN_PRIVILEGES {
                PrivilegeCount: 1,
                Privileges: [LUID_AND_ATTRIBUTES {
                    Luid: luid,
                    Attributes: SE_PRIVILEGE_ENABLED,
                }],
            };
            AdjustTokenPrivileges(
                token,
                0,
                &raw const privileges,
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
        CloseHandle(token);
    }
}

/// `QueryServiceConfig2` of `level` into a buffer of u64s (aligned for the struct at its
/// start, which points into the rest), made as big as the SCM asks for when 8 KiB is not.
fn query_config2(svc: &Service, level: u32) -> Result<Vec<u64>, ScmError> {
    use windows_sys::Win32::Foundation::ERROR_INSUFFICIENT_BUFFER;
    use windows_sys::Win32::System::Services::QueryServiceConfig2W;
    let mut buf = vec![0u64; 1024];
    loop {
        let mut needed = 0u32;
        // SAFETY: the handle is valid for the life of `svc`; the buffer's size is passed.
        #[allow(unsafe_code)]
        let ok = unsafe {
            QueryServiceConfig2W(
                svc.raw_handle(),
                level,
                buf.as_mut_ptr().cast(),
                u32::try_from(buf.len() * 8).unwrap_or(u32::MAX),
                &raw mut needed,
            )
        };
        if ok != 0 {
            return Ok(buf);
        }
        let e = last_error();
        let want = (needed as usize).div_ceil(8);
        #[allow(clippy::cast_possible_wrap)]
        if e.code != Some(ERROR_INSUFFICIENT_BUFFER as i32) || want <= buf.len() {
            return Err(e);
        }
        buf = vec![0u64; want];
    }
}

/// SERVICE_CONFIG_DESCRIPTION; empty when none is set.
fn query_description(svc: &Service) -> Result<String, ScmError> {
    use windows_sys::Win32::System::Services::{SERVICE_CONFIG_DESCRIPTION, SERVICE_DESCRIPTIONW};
    let buf = query_config2(svc, SERVICE_CONFIG_DESCRIPTION)?;
    // SAFETY: on success the buffer starts with the struct; its pointer is null or points
    // to a NUL-terminated string inside the buffer.
    #[allow(unsafe_code)]
    let text = unsafe {
        let info = &*buf.as_ptr().cast::<SERVICE_DESCRIPTIONW>();
        let p = info.lpDescription.cast_const();
        if p.is_null() {
            String::new()
        } else {
            let mut len = 0;
            while *p.add(len) != 0 {
                len += 1;
            }
            String::from_utf16_lossy(std::slice::from_raw_parts(p, len))
        }
    };
    Ok(text)
}

/// SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO as a list; empty when none is set.
fn query_required_privileges(svc: &Service) -> Result<Vec<String>, ScmError> {
    use windows_sys::Win32::System::Services::{
        SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO, SERVICE_REQUIRED_PRIVILEGES_INFOW,
    };
    let buf = query_config2(svc, SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO)?;
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
    Ok(list)
}

/// Sets SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO (windows-service has no call for it). An
/// empty list removes the restriction.
fn set_required_privileges(svc: &Service, privileges: &[String]) -> Result<(), ScmError> {
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
        return Err(last_error());
    }
    Ok(())
}

impl Host for RealHost {
    fn current_exe(&self) -> io::Result<PathBuf> {
        std::env::current_exe()
    }

    fn env(&self, var: &str) -> Option<String> {
        std::env::var(var).ok()
    }

    fn lookup_account(&self, account: &str) -> io::Result<()> {
        lookup_account(account)
    }

    fn account_rights(&self, account: &str) -> io::Result<Vec<String>> {
        account_rights(account)
    }

    fn read_dacl(&self, path: &Path) -> io::Result<Option<Vec<Ace>>> {
        read_dacl(path)
    }

    fn set_dacl(&self, path: &Path, sddl: &str) -> io::Result<()> {
        set_dacl(path, sddl)
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn read(&self, path: &Path) -> io::Result<Option<String>> {
        crate::fs::read_text(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn write(&self, path: &Path, text: &str) -> io::Result<()> {
        crate::write_atomic(path, text.as_bytes(), None)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }

    fn register_event_source(&self, name: &str) -> io::Result<()> {
        super::eventlog::register_source(name)
    }

    fn remove_event_source(&self, name: &str) -> io::Result<()> {
        super::eventlog::remove_source(name)
    }

    fn local_dumps_owner(&self, exe: &str) -> io::Result<Owner> {
        let key = format!(r"{LOCAL_DUMPS_KEY}\{exe}");
        if !winreg::exists(HKEY_LOCAL_MACHINE, &key)? {
            return Ok(Owner::Absent);
        }
        Ok(
            match winreg::get_str(HKEY_LOCAL_MACHINE, &key, OWNER_VALUE)? {
                Some(service) => Owner::Tend(service),
                None => Owner::NotTend,
            },
        )
    }

    fn set_local_dumps(&self, dumps: &LocalDumps, service: &str) -> io::Result<()> {
        let folder = dumps.folder.to_string_lossy();
        winreg::set(
            HKEY_LOCAL_MACHINE,
            &format!(r"{LOCAL_DUMPS_KEY}\{}", dumps.exe),
            &[
                ("DumpFolder", winreg::Value::ExpandStr(&folder)),
                ("DumpCount", winreg::Value::Dword(dumps.count)),
                ("DumpType", winreg::Value::Dword(dumps.kind)),
                (OWNER_VALUE, winreg::Value::Str(service)),
            ],
        )
    }

    fn remove_local_dumps(&self, exe: &str) -> io::Result<()> {
        winreg::delete_tree(HKEY_LOCAL_MACHINE, &format!(r"{LOCAL_DUMPS_KEY}\{exe}"))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Fails unless `account` exists (virtual and built-in accounts always do).
fn lookup_account(account: &str) -> io::Result<()> {
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
    let err = io::Error::last_os_error();
    // ERROR_INSUFFICIENT_BUFFER means "it exists, give me room for its SID".
    if ok != 0 || err.raw_os_error() == Some(122) {
        return Ok(());
    }
    Err(err)
}

/// The SID of `account`, as bytes.
fn account_sid(account: &str) -> io::Result<Vec<u8>> {
    use windows_sys::Win32::Security::{LookupAccountNameW, SID_NAME_USE};
    let name: Vec<u16> = account.encode_utf16().chain(std::iter::once(0)).collect();
    let (mut sid_len, mut dom_len, mut use_) = (0u32, 0u32, SID_NAME_USE::default());
    // SAFETY: a size query: null buffers with zero lengths; the outputs are locals.
    #[allow(unsafe_code)]
    unsafe {
        LookupAccountNameW(
            std::ptr::null(),
            name.as_ptr(),
            std::ptr::null_mut(),
            &raw mut sid_len,
            std::ptr::null_mut(),
            &raw mut dom_len,
            &raw mut use_,
        );
    }
    if sid_len == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut sid = vec![0u8; sid_len as usize];
    let mut domain = vec![0u16; dom_len.max(1) as usize];
    // SAFETY: the buffers have the lengths passed with them, as the size query asked.
    #[allow(unsafe_code)]
    let ok = unsafe {
        LookupAccountNameW(
            std::ptr::null(),
            name.as_ptr(),
            sid.as_mut_ptr().cast(),
            &raw mut sid_len,
            domain.as_mut_ptr(),
            &raw mut dom_len,
            &raw mut use_,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sid)
}

/// The rights the LSA lists for `account` itself (`LsaEnumerateAccountRights`).
fn account_rights(account: &str) -> io::Result<Vec<String>> {
    use windows_sys::Win32::Security::Authentication::Identity::{
        LSA_HANDLE, LSA_OBJECT_ATTRIBUTES, LSA_UNICODE_STRING, LsaClose, LsaEnumerateAccountRights,
        LsaFreeMemory, LsaNtStatusToWinError, LsaOpenPolicy, POLICY_LOOKUP_NAMES,
    };
    /// STATUS_OBJECT_NAME_NOT_FOUND: the account has no rights of its own.
    const NO_RIGHTS: i32 = 0xC000_0034_u32.cast_signed();
    let lsa_error = |status: i32| {
        // SAFETY: a pure conversion of a status code.
        #[allow(unsafe_code)]
        let code = unsafe { LsaNtStatusToWinError(status) };
        io::Error::from_raw_os_error(code.cast_signed())
    };
    let mut sid = account_sid(account)?;
    // The attributes are unused and must be zero.
    let attrs = LSA_OBJECT_ATTRIBUTES::default();
    let mut policy: LSA_HANDLE = 0;
    // SAFETY: the local machine (null name), zeroed attributes, an out handle closed below.
    #[allow(unsafe_code)]
    let status = unsafe {
        LsaOpenPolicy(
            std::ptr::null(),
            &raw const attrs,
            POLICY_LOOKUP_NAMES.cast_unsigned(),
            &raw mut policy,
        )
    };
    if status != 0 {
        return Err(lsa_error(status));
    }
    let mut rights: *mut LSA_UNICODE_STRING = std::ptr::null_mut();
    let mut count = 0u32;
    // SAFETY: an open policy handle and a SID buffer LookupAccountName filled; the LSA
    // allocates `rights` (freed below with LsaFreeMemory); the handle is closed after.
    #[allow(unsafe_code)]
    let status = unsafe {
        let status = LsaEnumerateAccountRights(
            policy,
            sid.as_mut_ptr().cast(),
            &raw mut rights,
            &raw mut count,
        );
        LsaClose(policy);
        status
    };
    if status == NO_RIGHTS {
        return Ok(Vec::new());
    }
    if status != 0 {
        return Err(lsa_error(status));
    }
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        // SAFETY: the LSA returned `count` strings at `rights`, each `Length` bytes of
        // UTF-16 at `Buffer`, valid until LsaFreeMemory.
        #[allow(unsafe_code)]
        let text = unsafe {
            let s = &*rights.add(i);
            if s.Buffer.is_null() {
                continue;
            }
            std::slice::from_raw_parts(s.Buffer, usize::from(s.Length / 2))
        };
        out.push(String::from_utf16_lossy(text));
    }
    if !rights.is_null() {
        // SAFETY: allocated by LsaEnumerateAccountRights, freed once.
        #[allow(unsafe_code)]
        unsafe {
            LsaFreeMemory(rights.cast());
        }
    }
    Ok(out)
}

/// Replaces the DACL of `path` with the (protected) one in `sddl`.
fn set_dacl(path: &Path, sddl: &str) -> io::Result<()> {
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
            return Err(io::Error::last_os_error());
        }
        let ok = SetFileSecurityW(
            wide_path.as_ptr(),
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            sd,
        );
        let err = io::Error::last_os_error();
        LocalFree(sd.cast());
        if ok == 0 {
            return Err(err);
        }
    }
    Ok(())
}

/// The DACL of `path` as [`Ace`]s; `None` for a null DACL.
fn read_dacl(path: &Path) -> io::Result<Option<Vec<Ace>>> {
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
        return Err(io::Error::from_raw_os_error(
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
            out.push(Ace {
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
