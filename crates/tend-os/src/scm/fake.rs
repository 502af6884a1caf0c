//! [`FakeScm`]: an in-memory Service Control Manager and Windows host that records every
//! call that changes something (and every SCM call) and answers from a small model of
//! the services, with scripted failures and state sequences.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::acl::Ace;
use super::api::{
    Config2, Control, ExitCode, Host, InstalledConfig, RawChange, Rights, ScmApi, ServiceStatus,
    State,
};
use super::dumps::{LocalDumps, Owner};
use super::error::{ACCESS_DENIED, SERVICE_DOES_NOT_EXIST, ScmError};
use super::plan::{ScmPlan, SidType};
use crate::testing::{FakeClock, lock};

/// The pid a fake service runs with once started.
pub const FAKE_PID: u32 = 4242;

/// One service in the fake SCM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeService {
    /// What `QueryServiceConfig` answers.
    pub config: InstalledConfig,
    /// What `QueryServiceStatus` answers once `next` is empty.
    pub status: ServiceStatus,
    /// The statuses the next `QueryServiceStatus` calls answer first, in order.
    pub next: VecDeque<ServiceStatus>,
    /// SERVICE_CONFIG_DELAYED_AUTO_START_INFO; `None`: cannot be read (as under Wine).
    pub delayed: Option<bool>,
    /// SERVICE_CONFIG_SERVICE_SID_INFO; `None`: cannot be read.
    pub sid_type: Option<SidType>,
    /// SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO; `None`: cannot be read.
    pub privileges: Option<Vec<String>>,
    /// SERVICE_CONFIG_DESCRIPTION; `None`: cannot be read.
    pub description: Option<String>,
    /// SERVICE_CONFIG_FAILURE_ACTIONS; `None`: cannot be read.
    pub failure_actions: Option<crate::takeover::ScmFailureActions>,
    /// SERVICE_CONFIG_FAILURE_ACTIONS_FLAG; `None`: cannot be read.
    pub failure_actions_on_non_crash: Option<bool>,
    /// SERVICE_CONFIG_PRESHUTDOWN_INFO; `None`: cannot be read.
    pub preshutdown: Option<Duration>,
}

impl FakeService {
    /// A stopped service running `command_line`, whose settings read back as Windows'
    /// defaults.
    #[must_use]
    pub fn new(command_line: &str) -> Self {
        Self {
            config: InstalledConfig {
                display_name: String::new(),
                command_line: command_line.to_owned(),
                account: Some("LocalSystem".to_owned()),
                dependencies: Vec::new(),
                start: Some(super::plan::StartType::Demand),
            },
            status: stopped(),
            next: VecDeque::new(),
            delayed: Some(false),
            sid_type: Some(SidType::None),
            privileges: Some(Vec::new()),
            description: Some(String::new()),
            failure_actions: Some(crate::takeover::ScmFailureActions {
                reset_secs: Some(0),
                reboot_message: String::new(),
                command: String::new(),
                actions: Vec::new(),
            }),
            failure_actions_on_non_crash: Some(false),
            preshutdown: Some(Duration::from_secs(180)),
        }
    }

    /// As `new`, running (tend's pid [`FAKE_PID`]).
    #[must_use]
    pub fn running(mut self) -> Self {
        self.status = running();
        self
    }
}

/// STOPPED, exit code 0.
#[must_use]
pub fn stopped() -> ServiceStatus {
    ServiceStatus {
        state: State::Stopped,
        pid: None,
        exit: ExitCode::Win32(0),
    }
}

/// RUNNING with pid [`FAKE_PID`].
#[must_use]
pub fn running() -> ServiceStatus {
    ServiceStatus {
        state: State::Running,
        pid: Some(FAKE_PID),
        exit: ExitCode::Win32(0),
    }
}

/// A service handle of the fake: the name and the rights it was opened with.
#[derive(Debug)]
pub struct Handle {
    name: String,
    rights: Rights,
}

/// An in-memory SCM and Windows host ([`ScmApi`] and [`Host`]).
///
/// `calls()` lists, in order, every SCM call (`open api QUERY_STATUS|START`,
/// `configure api: delayed true`, ...) and every change to the host (`write <path>`,
/// `set_dacl <path> <sddl>`, ...); reads of files and DACLs are not listed. A call whose
/// record starts with a prefix given to [`FakeScm::fail`] fails with that error. The
/// clock only moves when the backend sleeps, so a wait that runs out takes no time.
#[derive(Debug)]
pub struct FakeScm {
    calls: Mutex<Vec<String>>,
    services: Mutex<BTreeMap<String, FakeService>>,
    failures: Mutex<Vec<(String, ScmError)>>,
    /// Statuses a service goes through after a start or a stop control (the last one
    /// stays); without one, a start runs and a stop stops at once.
    after: Mutex<BTreeMap<(String, &'static str), Vec<ServiceStatus>>>,
    files: Mutex<BTreeMap<PathBuf, String>>,
    dirs: Mutex<BTreeSet<PathBuf>>,
    dacls: Mutex<BTreeMap<PathBuf, Option<Vec<Ace>>>>,
    accounts: Mutex<BTreeSet<String>>,
    rights: Mutex<BTreeMap<String, Vec<String>>>,
    env: Mutex<BTreeMap<String, String>>,
    /// LocalDumps keys by lower-case program file name: the key and its owner value.
    local_dumps: Mutex<BTreeMap<String, (LocalDumps, Option<String>)>>,
    exe: PathBuf,
    clock: FakeClock,
}

impl Default for FakeScm {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeScm {
    /// An SCM with no services, an empty disk, tend at `C:\Program Files\tend\tend.exe`.
    #[must_use]
    pub fn new() -> Self {
        Self {
            calls: Mutex::default(),
            services: Mutex::default(),
            failures: Mutex::default(),
            after: Mutex::default(),
            files: Mutex::default(),
            dirs: Mutex::default(),
            dacls: Mutex::default(),
            accounts: Mutex::default(),
            rights: Mutex::default(),
            env: Mutex::default(),
            local_dumps: Mutex::default(),
            exe: PathBuf::from(r"C:\Program Files\tend\tend.exe"),
            clock: FakeClock::new(),
        }
    }

    /// Every call so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// Forgets the calls so far (to assert the next verb's alone).
    pub fn clear_calls(&self) {
        lock(&self.calls).clear();
    }

    /// Adds (or replaces) a service.
    pub fn add_service(&self, name: &str, service: FakeService) -> &Self {
        lock(&self.services).insert(name.to_owned(), service);
        self
    }

    /// A service as the fake has it now.
    #[must_use]
    pub fn service(&self, name: &str) -> Option<FakeService> {
        lock(&self.services).get(name).cloned()
    }

    /// Calls whose record starts with `prefix` fail with `error` from now on.
    pub fn fail(&self, prefix: &str, error: ScmError) -> &Self {
        lock(&self.failures).push((prefix.to_owned(), error));
        self
    }

    /// After `start` (or `stop`: the stop control) of `name`, its status goes through
    /// `statuses` (one per query; the last one stays).
    pub fn after(&self, name: &str, verb: &'static str, statuses: &[ServiceStatus]) -> &Self {
        lock(&self.after).insert((name.to_owned(), verb), statuses.to_vec());
        self
    }

    /// A file on the fake disk.
    pub fn put_file(&self, path: impl Into<PathBuf>, text: &str) -> &Self {
        lock(&self.files).insert(path.into(), text.to_owned());
        self
    }

    /// A file's text.
    #[must_use]
    pub fn file(&self, path: impl AsRef<Path>) -> Option<String> {
        lock(&self.files).get(path.as_ref()).cloned()
    }

    /// A directory on the fake disk (what `is_dir` answers).
    pub fn put_dir(&self, path: impl Into<PathBuf>) -> &Self {
        lock(&self.dirs).insert(path.into());
        self
    }

    /// The DACL `read_dacl` answers for `path` (by default, unreadable).
    pub fn put_dacl(&self, path: impl Into<PathBuf>, dacl: Option<Vec<Ace>>) -> &Self {
        lock(&self.dacls).insert(path.into(), dacl);
        self
    }

    /// An account that exists.
    pub fn put_account(&self, account: &str) -> &Self {
        lock(&self.accounts).insert(account.to_owned());
        self
    }

    /// The rights the LSA lists for `account` (without: they cannot be read, as under
    /// Wine).
    pub fn put_rights(&self, account: &str, rights: &[&str]) -> &Self {
        lock(&self.rights).insert(
            account.to_owned(),
            rights.iter().map(|r| (*r).to_owned()).collect(),
        );
        self
    }

    /// An environment variable.
    pub fn put_env(&self, var: &str, value: &str) -> &Self {
        lock(&self.env).insert(var.to_owned(), value.to_owned());
        self
    }

    /// A LocalDumps key that is there already, marked as `owner`'s (`None`: not tend's).
    pub fn put_local_dumps(&self, exe: &str, owner: Option<&str>) -> &Self {
        let key = LocalDumps {
            exe: exe.to_owned(),
            folder: PathBuf::from(r"C:\dumps"),
            count: 10,
            kind: 1,
        };
        lock(&self.local_dumps).insert(exe.to_ascii_lowercase(), (key, owner.map(str::to_owned)));
        self
    }

    /// The LocalDumps key of a program file name, and its owner value.
    #[must_use]
    pub fn local_dumps(&self, exe: &str) -> Option<(LocalDumps, Option<String>)> {
        lock(&self.local_dumps)
            .get(&exe.to_ascii_lowercase())
            .cloned()
    }

    /// How long the backend slept, in all.
    #[must_use]
    pub fn slept(&self) -> Duration {
        self.clock.slept()
    }

    /// Records a call and answers with a scripted failure, if one matches.
    fn call(&self, record: String) -> Result<(), ScmError> {
        let failure = lock(&self.failures)
            .iter()
            .find(|(p, _)| record.starts_with(p.as_str()))
            .map(|(_, e)| e.clone());
        lock(&self.calls).push(record);
        failure.map_or(Ok(()), Err)
    }

    fn io(&self, record: String) -> io::Result<()> {
        self.call(record).map_err(|e| match e.code {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::other(e.message),
        })
    }

    fn need(h: &Handle, rights: Rights) -> Result<(), ScmError> {
        if h.rights.contains(rights) {
            Ok(())
        } else {
            Err(ScmError::os(
                ACCESS_DENIED,
                format!("Access is denied: opened with {}, needs {rights}", h.rights),
            ))
        }
    }

    /// One `QueryServiceConfig2` answer, recorded as `verb name`: the setting, or the
    /// invalid level a Windows (or Wine) that cannot read it gives.
    fn config2<T>(
        &self,
        h: &Handle,
        verb: &str,
        get: impl FnOnce(&FakeService) -> Option<T>,
    ) -> Result<T, ScmError> {
        self.call(format!("{verb} {}", h.name))?;
        Self::need(h, Rights::QUERY_CONFIG)?;
        self.with(h, |s| get(s).ok_or_else(invalid_level))
    }

    fn with<T>(
        &self,
        h: &Handle,
        f: impl FnOnce(&mut FakeService) -> Result<T, ScmError>,
    ) -> Result<T, ScmError> {
        match lock(&self.services).get_mut(&h.name) {
            Some(s) => f(s),
            None => Err(no_such_service()),
        }
    }

    /// Puts the statuses scripted for `verb` in the service's queue, or `default`.
    fn then(&self, h: &Handle, verb: &'static str, default: ServiceStatus) {
        let script = lock(&self.after).get(&(h.name.clone(), verb)).cloned();
        let _ = self.with(h, |s| {
            match script {
                Some(list) => s.next = list.into(),
                None => {
                    s.next.clear();
                    s.status = default;
                }
            }
            Ok(())
        });
    }
}

fn no_such_service() -> ScmError {
    ScmError::os(
        SERVICE_DOES_NOT_EXIST,
        "The specified service does not exist as an installed service. (os error 1060)",
    )
}

fn apply_plan(s: &mut FakeService, plan: &ScmPlan) {
    s.config = InstalledConfig {
        display_name: plan.display_name.clone(),
        command_line: format!("\"{}\" {}", plan.exe.display(), plan.args.join(" ")),
        account: Some(
            plan.account
                .clone()
                .unwrap_or_else(|| "LocalSystem".to_owned()),
        ),
        dependencies: plan.dependencies.clone(),
        start: Some(plan.start),
    };
}

impl ScmApi for FakeScm {
    type Manager = bool;
    type Service = Handle;

    fn connect(&self, create: bool) -> Result<bool, ScmError> {
        self.call(if create { "connect create" } else { "connect" }.to_owned())?;
        Ok(create)
    }

    fn open(&self, _mgr: &bool, name: &str, rights: Rights) -> Result<Handle, ScmError> {
        self.call(format!("open {name} {rights}"))?;
        if !lock(&self.services).contains_key(name) {
            return Err(no_such_service());
        }
        Ok(Handle {
            name: name.to_owned(),
            rights,
        })
    }

    fn create(
        &self,
        mgr: &bool,
        plan: &ScmPlan,
        password: Option<&str>,
        rights: Rights,
    ) -> Result<Handle, ScmError> {
        self.call(format!(
            "create {} start {:?} account {} password {}",
            plan.name,
            plan.start,
            plan.account.as_deref().unwrap_or("LocalSystem"),
            password.map_or("none", |_| "given")
        ))?;
        if !mgr {
            return Err(ScmError::os(
                ACCESS_DENIED,
                "Access is denied: no CREATE_SERVICE",
            ));
        }
        let mut s = FakeService::new("");
        apply_plan(&mut s, plan);
        lock(&self.services).insert(plan.name.clone(), s);
        Ok(Handle {
            name: plan.name.clone(),
            rights,
        })
    }

    fn change_config(
        &self,
        svc: &Handle,
        plan: &ScmPlan,
        password: Option<&str>,
    ) -> Result<(), ScmError> {
        self.call(format!(
            "change_config {} start {:?} account {} password {}",
            svc.name,
            plan.start,
            plan.account.as_deref().unwrap_or("LocalSystem"),
            password.map_or("none", |_| "given")
        ))?;
        Self::need(svc, Rights::CHANGE_CONFIG)?;
        self.with(svc, |s| {
            apply_plan(s, plan);
            Ok(())
        })
    }

    fn change_raw(&self, svc: &Handle, change: &RawChange) -> Result<(), ScmError> {
        self.call(format!("change_raw {} {change}", svc.name))?;
        Self::need(svc, Rights::CHANGE_CONFIG)?;
        self.with(svc, |s| {
            let c = &mut s.config;
            if let Some(v) = &change.command_line {
                c.command_line.clone_from(v);
            }
            if let Some(v) = &change.display_name {
                c.display_name.clone_from(v);
            }
            if let Some(v) = change.start {
                c.start = Some(v);
            }
            if let Some(v) = &change.dependencies {
                c.dependencies.clone_from(v);
            }
            if let Some(v) = &change.account {
                c.account = Some(v.clone());
            }
            Ok(())
        })
    }

    fn configure(&self, svc: &Handle, setting: &Config2) -> Result<(), ScmError> {
        self.call(format!("configure {}: {setting}", svc.name))?;
        Self::need(svc, Rights::CHANGE_CONFIG)?;
        self.with(svc, |s| {
            match setting {
                Config2::Delayed(d) => s.delayed = Some(*d),
                Config2::SidType(t) => s.sid_type = Some(*t),
                Config2::RequiredPrivileges(p) => s.privileges = Some(p.clone()),
                Config2::Description(d) => s.description = Some(d.clone()),
                // As the SCM: the reboot message and the command stay as they were.
                Config2::FailureActions { reset, restarts } => {
                    let old = s.failure_actions.take();
                    s.failure_actions = Some(crate::takeover::ScmFailureActions {
                        reset_secs: Some(reset.as_secs()),
                        reboot_message: old
                            .as_ref()
                            .map(|o| o.reboot_message.clone())
                            .unwrap_or_default(),
                        command: old.map(|o| o.command).unwrap_or_default(),
                        actions: restarts
                            .iter()
                            .map(|d| crate::takeover::ScmFailureAction {
                                kind: "restart".to_owned(),
                                delay_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                            })
                            .collect(),
                    });
                }
                Config2::RecordedFailureActions(a) => s.failure_actions = Some(a.clone()),
                Config2::FailureActionsOnNonCrash(b) => s.failure_actions_on_non_crash = Some(*b),
                Config2::PreshutdownTimeout(t) => s.preshutdown = Some(*t),
            }
            Ok(())
        })
    }

    fn query_config(&self, svc: &Handle) -> Result<InstalledConfig, ScmError> {
        self.call(format!("query_config {}", svc.name))?;
        Self::need(svc, Rights::QUERY_CONFIG)?;
        self.with(svc, |s| Ok(s.config.clone()))
    }

    fn query_delayed(&self, svc: &Handle) -> Result<bool, ScmError> {
        self.config2(svc, "query_delayed", |s| s.delayed)
    }

    fn query_sid_type(&self, svc: &Handle) -> Result<SidType, ScmError> {
        self.config2(svc, "query_sid_type", |s| s.sid_type)
    }

    fn query_required_privileges(&self, svc: &Handle) -> Result<Vec<String>, ScmError> {
        self.config2(svc, "query_required_privileges", |s| s.privileges.clone())
    }

    fn query_description(&self, svc: &Handle) -> Result<String, ScmError> {
        self.config2(svc, "query_description", |s| s.description.clone())
    }

    fn query_failure_actions(
        &self,
        svc: &Handle,
    ) -> Result<crate::takeover::ScmFailureActions, ScmError> {
        self.config2(svc, "query_failure_actions", |s| s.failure_actions.clone())
    }

    fn query_failure_actions_on_non_crash(&self, svc: &Handle) -> Result<bool, ScmError> {
        self.config2(svc, "query_failure_actions_on_non_crash", |s| {
            s.failure_actions_on_non_crash
        })
    }

    fn query_preshutdown(&self, svc: &Handle) -> Result<Duration, ScmError> {
        self.config2(svc, "query_preshutdown", |s| s.preshutdown)
    }

    fn query_status(&self, svc: &Handle) -> Result<ServiceStatus, ScmError> {
        self.call(format!("query_status {}", svc.name))?;
        Self::need(svc, Rights::QUERY_STATUS)?;
        self.with(svc, |s| {
            if let Some(next) = s.next.pop_front() {
                s.status = next;
            }
            Ok(s.status)
        })
    }

    fn start(&self, svc: &Handle) -> Result<(), ScmError> {
        self.call(format!("start {}", svc.name))?;
        Self::need(svc, Rights::START)?;
        self.then(svc, "start", running());
        Ok(())
    }

    fn control(&self, svc: &Handle, control: Control) -> Result<(), ScmError> {
        self.call(format!("control {} {control:?}", svc.name))?;
        match control {
            Control::Stop => {
                Self::need(svc, Rights::STOP)?;
                self.then(svc, "stop", stopped());
            }
            Control::ParamChange => Self::need(svc, Rights::PAUSE_CONTINUE)?,
        }
        Ok(())
    }

    fn delete(&self, svc: &Handle) -> Result<(), ScmError> {
        self.call(format!("delete {}", svc.name))?;
        Self::need(svc, Rights::DELETE)?;
        lock(&self.services).remove(&svc.name);
        Ok(())
    }
}

/// ERROR_INVALID_LEVEL: what Wine answers for most `QueryServiceConfig2` levels.
fn invalid_level() -> ScmError {
    ScmError::os(
        super::error::INVALID_LEVEL,
        "The system call level is not correct. (os error 124)",
    )
}

impl Host for FakeScm {
    fn current_exe(&self) -> io::Result<PathBuf> {
        Ok(self.exe.clone())
    }

    fn env(&self, var: &str) -> Option<String> {
        lock(&self.env).get(var).cloned()
    }

    fn lookup_account(&self, account: &str) -> io::Result<()> {
        if lock(&self.accounts).contains(account) {
            Ok(())
        } else {
            // ERROR_NONE_MAPPED.
            Err(io::Error::from_raw_os_error(1332))
        }
    }

    fn account_rights(&self, account: &str) -> io::Result<Vec<String>> {
        lock(&self.rights)
            .get(account)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "the LSA cannot be asked"))
    }

    fn read_dacl(&self, path: &Path) -> io::Result<Option<Vec<Ace>>> {
        lock(&self.dacls)
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn set_dacl(&self, path: &Path, sddl: &str) -> io::Result<()> {
        self.io(format!("set_dacl {} {sddl}", path.display()))
    }

    fn is_dir(&self, path: &Path) -> bool {
        lock(&self.dirs).contains(path)
    }

    fn read(&self, path: &Path) -> io::Result<Option<String>> {
        Ok(lock(&self.files).get(path).cloned())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.io(format!("mkdir {}", path.display()))?;
        lock(&self.dirs).insert(path.to_owned());
        Ok(())
    }

    fn write(&self, path: &Path, text: &str) -> io::Result<()> {
        self.io(format!("write {}", path.display()))?;
        lock(&self.files).insert(path.to_owned(), text.to_owned());
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.io(format!("remove {}", path.display()))?;
        match lock(&self.files).remove(path) {
            Some(_) => Ok(()),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.io(format!("rmdir {}", path.display()))?;
        if lock(&self.dirs).remove(path) {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    }

    fn register_event_source(&self, name: &str) -> io::Result<()> {
        self.io(format!("register_event_source {name}"))
    }

    fn remove_event_source(&self, name: &str) -> io::Result<()> {
        self.io(format!("remove_event_source {name}"))
    }

    fn local_dumps_owner(&self, exe: &str) -> io::Result<Owner> {
        Ok(
            match lock(&self.local_dumps).get(&exe.to_ascii_lowercase()) {
                None => Owner::Absent,
                Some((_, None)) => Owner::NotTend,
                Some((_, Some(s))) => Owner::Tend(s.clone()),
            },
        )
    }

    fn set_local_dumps(&self, dumps: &LocalDumps, service: &str) -> io::Result<()> {
        self.io(format!(
            "set_local_dumps {} folder={} count={} type={} owner={service}",
            dumps.exe,
            dumps.folder.display(),
            dumps.count,
            dumps.kind
        ))?;
        lock(&self.local_dumps).insert(
            dumps.exe.to_ascii_lowercase(),
            (dumps.clone(), Some(service.to_owned())),
        );
        Ok(())
    }

    fn remove_local_dumps(&self, exe: &str) -> io::Result<()> {
        self.io(format!("remove_local_dumps {exe}"))?;
        lock(&self.local_dumps).remove(&exe.to_ascii_lowercase());
        Ok(())
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn sleep(&self, d: Duration) {
        self.clock.sleep(d);
    }
}
