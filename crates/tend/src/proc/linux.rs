//! Linux: starting the program the way glibc's `posix_spawn` does, and waiting for it on a
//! pidfd.
//!
//! Why not std's (tokio's) `Command`: tend must set `PR_SET_PDEATHSIG` in the child (so a
//! SIGKILLed tend never leaves its program behind), and that needs `pre_exec`, which makes
//! std fall back from `posix_spawn` to `fork`. A fork of the supervisor copies its page
//! tables and the exec then tears the copy down: about 0.5 ms per start, a third of a
//! restart (bench/README.md, issue 16). `posix_spawn` itself has no attribute for the
//! death signal, and neither process-wrap nor nix offer a vfork-style spawn with one. So
//! this is glibc's `__spawni` in miniature: `clone(CLONE_VM | CLONE_VFORK)` on a stack of
//! its own; the child runs only raw system calls on data the parent prepared, then
//! `execve`; the parent sleeps until the exec (or the child's exit) and reads the child's
//! errno from memory they share.
//!
//! Where the kernel has `clone3` with `CLONE_CLEAR_SIGHAND` (Linux 5.5, x86_64: what tend
//! ships), the child is made by `clone3` instead, which does in the kernel what glibc's
//! child does with 64 `sigaction` calls (reset every handled signal to its default, ~16 µs
//! on the restart's path), hands back the pidfd with the pid, and needs no stack of its
//! own: like `vfork`, the child runs below the sleeping parent's frame. Where `clone3` is
//! refused (an older kernel, a seccomp filter), `clone` on a kept stack does it all.
//!
//! The exit is awaited on a pidfd (Linux 5.3). On an older kernel [`available`] says no and
//! the caller keeps std's path.
#![allow(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use nix::libc;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::unix::Tree;

/// Whether this kernel has pidfds (`pidfd_open`, Linux 5.3); asked once.
pub(super) fn available() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| pidfd_open(std::process::id().cast_signed()).is_ok())
}

fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
    // passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What to run, every byte of it prepared before the clone: the child may not allocate.
pub(super) struct Plan<'a> {
    pub(super) program: &'a Path,
    pub(super) args: &'a [String],
    pub(super) working_dir: &'a Path,
    /// The program's environment: tend's, less `not_inherited`, with these set over it.
    pub(super) env: &'a [(String, String)],
    pub(super) not_inherited: &'a [&'a str],
    /// The write ends for fds 1 and 2; `None` inherits tend's.
    pub(super) stdout: Option<OwnedFd>,
    pub(super) stderr: Option<OwnedFd>,
    pub(super) core_dumps: bool,
}

/// A started program, waited for on its pidfd.
pub(crate) struct Child {
    pid: libc::pid_t,
    pidfd: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
}

impl Child {
    pub(crate) fn id(&self) -> u32 {
        self.pid.cast_unsigned()
    }

    /// Waits for the exit and reaps it; at once when it was reaped before.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(s) = self.status {
                return Ok(s);
            }
            let Some(fd) = &self.pidfd else {
                return Err(io::Error::other("the program's pidfd is gone"));
            };
            let mut ready = fd.readable().await?;
            // A pidfd is readable once the process has exited: the reap does not block.
            match reap(self.pid, libc::WNOHANG)? {
                Some(s) => {
                    self.status = Some(s);
                    self.pidfd = None;
                }
                None => ready.clear_ready(),
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        // Not waited for (its supervisor stopped caring): reap it when it ends, so no
        // zombie is left for the rest of tend's life.
        if let Ok(Some(_)) = reap(self.pid, libc::WNOHANG) {
            return;
        }
        let (pid, pidfd) = (self.pid, self.pidfd.take());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut child = Child {
                    pid,
                    pidfd,
                    status: None,
                };
                let _ = child.wait().await;
            });
        }
    }
}

/// `waitpid` on this one child; `None` while it runs (with `WNOHANG`).
fn reap(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid place for the kernel to write the wait status.
        let r = unsafe { libc::waitpid(pid, &raw mut status, flags) };
        if r == pid {
            return Ok(Some(ExitStatus::from_raw(status)));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn c_string(s: &OsStr, what: &str) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// Everything the child reads, by raw pointers into memory the parent owns and keeps
/// alive (it is asleep) until the exec.
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    parent: libc::pid_t,
    null: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    core_dumps: bool,
    /// The kernel already reset the handled signals (`CLONE_CLEAR_SIGHAND`).
    handlers_cleared: bool,
    /// The errno of the step that failed; 0 while none did.
    errno: AtomicI32,
}

/// Starts the program as the leader of a new process group. Must run in a tokio runtime
/// with its I/O driver (tend's are built with `enable_all`): the pidfd is registered with it
/// after the start, when a missing driver could only panic.
pub(super) fn spawn(plan: Plan<'_>) -> io::Result<(Child, Tree)> {
    // The pidfd is watched by the runtime's reactor: without one, start nothing.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other(
            "tend started a program outside its runtime",
        ));
    }
    let program = c_string(plan.program.as_os_str(), "the program's path")?;
    let mut argv_owned = Vec::with_capacity(plan.args.len() + 1);
    argv_owned.push(program.clone());
    for a in plan.args {
        argv_owned.push(c_string(OsStr::new(a), "an argument")?);
    }
    let env_owned = environment(plan.env, plan.not_inherited)?;
    let argv: Vec<*const libc::c_char> = argv_owned
        .iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env_owned
        .entries()
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let cwd = c_string(plan.working_dir.as_os_str(), "the working directory")?;
    // Every fd the child dup2s from is above 2, so no dup2 can overwrite a source that a
    // later one still needs (tend's own 0-2 may be closed, and then a new fd could land
    // there).
    let null = dev_null()?;
    let stdout = plan.stdout.map(above_stdio).transpose()?;
    let stderr = plan.stderr.map(above_stdio).transpose()?;
    let mut args = ChildArgs {
        program: program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd.as_ptr(),
        parent: std::process::id().cast_signed(),
        null,
        stdout: stdout.as_ref().map_or(-1, AsRawFd::as_raw_fd),
        stderr: stderr.as_ref().map_or(-1, AsRawFd::as_raw_fd),
        core_dumps: plan.core_dumps,
        handlers_cleared: false,
        errno: AtomicI32::new(0),
    };
    let (pid, pidfd) = {
        // No signal handler of tend's may run in the child while it shares tend's memory:
        // all are blocked around the clone (but libc's internal ones, which nothing sends
        // to the child), and the child has every handler reset before it unblocks (glibc's
        // and musl's posix_spawn do the same).
        let _blocked = BlockedSignals::all()?;
        match clone3_child(&mut args)? {
            Some(started) => started,
            None => (clone_child(&mut args)?, None),
        }
    };
    let errno = args.errno.load(Ordering::Acquire);
    if errno != 0 {
        // It exited with 127 before running anything: reap it here.
        let _ = reap(pid, 0);
        return Err(io::Error::from_raw_os_error(errno));
    }
    let watch = |fd: OwnedFd| {
        // SAFETY: the AsyncFd owns the OwnedFd, so the fd stays open and the same for as
        // long as the registration.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(io::Error::from)
    };
    let pidfd = match pidfd.map_or_else(|| pidfd_open(pid), Ok).and_then(watch) {
        Ok(fd) => fd,
        Err(e) => {
            // Without a pidfd nobody could tell when it ends: it must not run unwatched.
            // SAFETY: plain kill(2) of the group it leads.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = reap(pid, 0);
            return Err(io::Error::new(
                e.kind(),
                format!("cannot watch the started program: {e}"),
            ));
        }
    };
    Ok((
        Child {
            pid,
            pidfd: Some(pidfd),
            status: None,
        },
        Tree::of(pid),
    ))
}

/// The child made by `clone(2)` on this thread's kept stack (where `clone3` is refused).
/// Returns its pid.
fn clone_child(args: &mut ChildArgs) -> io::Result<libc::pid_t> {
    args.handlers_cleared = false;
    // The child's stack: this thread's, kept from one spawn to the next (a fresh mapping
    // each time costs a mmap, page faults and a munmap per start).
    let stack = match STACK.take() {
        Some(s) => s,
        None => ChildStack::new()?,
    };
    let top = stack.top();
    // SAFETY: `child_main` reads `args` and stores only its atomic `errno` (alive, and
    // ours mutably: this frame sleeps until the child execs or exits, CLONE_VFORK) and
    // makes async-signal-safe system calls on its own stack `top`, which stays allocated
    // for as long. SIGCHLD as the exit signal makes it
    // an ordinary child for waitpid.
    let pid = unsafe {
        libc::clone(
            child_main,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_mut(args).cast(),
        )
    };
    stack.release();
    STACK.set(Some(stack));
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid)
}

/// `clone3` refused once, with this errno (0: not refused): not asked again.
static CLONE3_REFUSED: AtomicI32 = AtomicI32::new(0);

#[cfg(test)]
thread_local! {
    /// Makes this thread's spawns take the `clone(2)` path, as on a kernel without `clone3`.
    static WITHOUT_CLONE3: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// This thread's starts made by `clone3`, for the tests to see which path was taken.
    static CLONE3_STARTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The child made by `clone3` with `CLONE_CLEAR_SIGHAND` and `CLONE_PIDFD`: its pid and
/// pidfd, or `None` where the kernel (or a seccomp filter) refuses that.
#[cfg(target_arch = "x86_64")]
fn clone3_child(args: &mut ChildArgs) -> io::Result<Option<(libc::pid_t, Option<OwnedFd>)>> {
    /// The kernel's `struct clone_args` as of Linux 5.3 (`CLONE_ARGS_SIZE_VER0`).
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
    }
    /// Linux 5.5; not in the libc crate for every target.
    const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
    #[cfg(test)]
    if WITHOUT_CLONE3.get() {
        return Ok(None);
    }
    if CLONE3_REFUSED.load(Ordering::Relaxed) != 0 {
        return Ok(None);
    }
    args.handlers_cleared = true;
    let mut pidfd: libc::c_int = -1;
    let cl = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) as u64
            | CLONE_CLEAR_SIGHAND,
        pidfd: std::ptr::from_mut(&mut pidfd) as u64,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        // No stack of its own: the child runs below this frame, on this thread's stack,
        // as a vfork child does (the parent sleeps until the exec or the child's exit).
        stack: 0,
        stack_size: 0,
        tls: 0,
    };
    let ret: i64;
    // SAFETY: a raw clone3. In the parent it is an ordinary system call that writes the
    // pidfd into `pidfd` and changes rax, rcx and r11. The child (rax 0) shares this
    // memory and, with no stack given, this stack pointer: it calls `child_main` at once,
    // which uses only the stack below it (the asm is not `nostack`, so nothing of the
    // parent's lives there) and reads `args`, storing only its atomic `errno` (alive, and
    // ours mutably: this frame sleeps until the child execs or exits, CLONE_VFORK);
    // `child_main` never returns (execve or _exit), and if it did, the child would exit. The compiler sees only the parent's path.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "call r13",
            "mov edi, 127",
            "mov eax, {exit}",
            "syscall",
            "ud2",
            "2:",
            exit = const libc::SYS_exit,
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &raw const cl,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") std::ptr::from_mut(args),
            in("r13") child_main as extern "C" fn(*mut libc::c_void) -> libc::c_int,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    if ret < 0 {
        let errno = i32::try_from(-ret).unwrap_or(libc::EINVAL);
        return match errno {
            // No clone3 (before 5.3, or a seccomp filter's ENOSYS, as Docker's), no
            // CLONE_CLEAR_SIGHAND (before 5.5), or a filter that says no outright.
            libc::ENOSYS | libc::EINVAL | libc::E2BIG | libc::EPERM => {
                CLONE3_REFUSED.store(errno, Ordering::Relaxed);
                Ok(None)
            }
            _ => Err(io::Error::from_raw_os_error(errno)),
        };
    }
    #[cfg(test)]
    CLONE3_STARTS.set(CLONE3_STARTS.get() + 1);
    let pid = libc::pid_t::try_from(ret).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: the kernel just returned this fd to us (CLONE_PIDFD) and nothing else owns it.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    Ok(Some((pid, pidfd)))
}

/// Other architectures take the `clone(2)` path (tend ships for x86_64).
#[cfg(not(target_arch = "x86_64"))]
fn clone3_child(_: &mut ChildArgs) -> io::Result<Option<(libc::pid_t, Option<OwnedFd>)>> {
    Ok(None)
}

/// The spawn child's stack size. It runs a handful of system calls in one frame; glibc
/// gives its spawn child 32 KiB plus the argument area, this is as much with room to spare.
const STACK_SIZE: usize = 64 * 1024;

thread_local! {
    /// The last spawn's child stack, for the next (tend spawns from one thread; a test
    /// harness from many, each with its own).
    static STACK: std::cell::Cell<Option<ChildStack>> = const { std::cell::Cell::new(None) };
}

/// A mapping for the spawn child's stack, with a guard page below it: an overflow faults
/// instead of writing over tend's memory, which the child shares. Only the pages the child
/// touches (its one frame, at the top) are ever resident.
struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

impl ChildStack {
    const GUARD: usize = 4096;

    fn new() -> io::Result<Self> {
        let len = STACK_SIZE + Self::GUARD;
        // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Self { base, len };
        // SAFETY: the lowest page of the mapping just made.
        if unsafe { libc::mprotect(base, Self::GUARD, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The top, 16-byte aligned (page-aligned, in fact): the stack grows down on every
    /// Linux target tend ships for.
    fn top(&self) -> *mut libc::c_void {
        self.base.cast::<u8>().wrapping_add(self.len).cast()
    }
}

impl ChildStack {
    /// Hands the pages the child touched back to the kernel: kept, they would be a dozen
    /// KiB of every supervisor's resident memory for the rest of its life (issue 16's PSS
    /// goal), for the cost of one madvise and a few page faults at the next start.
    fn release(&self) {
        // SAFETY: the mapping made by `new`, which no child runs on any more. Its contents
        // need not survive: each child starts with a fresh frame.
        unsafe { libc::madvise(self.base, self.len, libc::MADV_DONTNEED) };
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made by `new`, no longer used (no child runs on it: the
        // spawn that lent it has returned).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// `/dev/null` for the program's stdin (a service has no input), opened once.
fn dev_null() -> io::Result<RawFd> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd.as_raw_fd());
    }
    let fd = std::fs::File::open("/dev/null")
        .map_err(|e| io::Error::new(e.kind(), format!("/dev/null: {e}")))?;
    let fd = above_stdio(fd.into())?;
    // Two first spawns at once: one fd is kept, the other closed.
    Ok(NULL.get_or_init(|| fd).as_raw_fd())
}

/// A program's environment as `execve` takes it: `K=V\0` entries one after the other, in
/// one allocation (dozens of small strings would cost a supervisor several KiB of heap for
/// as long as it lives: issue 16's PSS goal).
struct EnvBlock {
    bytes: Vec<u8>,
}

impl EnvBlock {
    /// A pointer to each entry, valid while the block lives.
    fn entries(&self) -> impl Iterator<Item = *const libc::c_char> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            let rest = self.bytes.get(at..).filter(|r| !r.is_empty())?;
            let entry = rest.as_ptr().cast::<libc::c_char>();
            at += rest
                .iter()
                .position(|&b| b == 0)
                .map_or(rest.len(), |n| n + 1);
            Some(entry)
        })
    }
}

/// The environment block for config variables `set`: tend's own environment less
/// `not_inherited`, with `set` over it (a later entry wins), as std's `Command` would give
/// it (std sorts and drops duplicate names; this keeps `environ`'s order, and `set`
/// replaces a name's first entry). The last block made is kept for the next start with the
/// same `set`: tend never changes its own environment (Rust 2024 makes `set_var` unsafe,
/// and tend does not call it), so a restart copies no variable; a reload that changes `env`,
/// or the give-up hook (its own `TEND_*` variables), makes a new one.
fn environment(set: &[(String, String)], not_inherited: &[&str]) -> io::Result<Arc<EnvBlock>> {
    /// The config's variables and the block made for them.
    type Made = (Vec<(String, String)>, Arc<EnvBlock>);
    static LAST: Mutex<Option<Made>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((key, block)) = &*last
        && key.as_slice() == set
    {
        return Ok(Arc::clone(block));
    }
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !not_inherited.iter().any(|n| k == n))
        .collect();
    for (k, v) in set {
        match env.iter_mut().find(|(ek, _)| ek == k.as_str()) {
            Some(e) => e.1 = v.into(),
            None => env.push((k.into(), v.into())),
        }
    }
    let len = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut bytes = Vec::with_capacity(len);
    for (k, v) in &env {
        if k.as_bytes().contains(&0) || v.as_bytes().contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an environment variable contains a NUL byte",
            ));
        }
        bytes.extend_from_slice(k.as_bytes());
        bytes.push(b'=');
        bytes.extend_from_slice(v.as_bytes());
        bytes.push(0);
    }
    let block = Arc::new(EnvBlock { bytes });
    *last = Some((set.to_vec(), Arc::clone(&block)));
    Ok(block)
}

fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new one or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Every signal blocked in this thread until dropped.
struct BlockedSignals(libc::sigset_t);

impl BlockedSignals {
    fn all() -> io::Result<Self> {
        // SAFETY: sigset_t is plain data that sigfillset initialises; pthread_sigmask
        // writes the old mask into `old`.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&raw mut all);
            let r = libc::pthread_sigmask(libc::SIG_SETMASK, &raw const all, &raw mut old);
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            Ok(Self(old))
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `all`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &raw const self.0, std::ptr::null_mut());
        }
    }
}

/// The handler of `sig` (`SIG_DFL`, `SIG_IGN` or a function's address), by a raw
/// `rt_sigaction` that takes no lock (safe in the spawn child); `None` if the kernel says no.
fn handler_of(sig: libc::c_int) -> Option<libc::sighandler_t> {
    let mut old = [0u64; 4];
    // SAFETY: rt_sigaction with no new action writes the kernel's struct sigaction (at most
    // four words on the architectures tend ships for) into `old`; 8 is the kernel's sigset
    // size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            std::ptr::null::<u64>(),
            old.as_mut_ptr(),
            8usize,
        )
    };
    (r == 0).then(|| old[0] as libc::sighandler_t)
}

/// The child, between clone and exec. It shares tend's memory and tend's thread's TLS
/// (errno): it may only make system calls on what `ChildArgs` points at, never allocate,
/// lock or unwind. Any failure stores the errno for the parent and exits 127.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive until this child execs or exits.
    let a = unsafe { &*(arg as *const ChildArgs) };
    // SAFETY: every call below is an async-signal-safe system call wrapper on valid
    // pointers (the parent's prepared strings, zeroed plain-data structs on this stack).
    unsafe {
        let fail = |a: &ChildArgs| -> libc::c_int {
            // Reads errno, allocates nothing.
            let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            a.errno
                .store(if e == 0 { libc::EINVAL } else { e }, Ordering::Release);
            libc::_exit(127)
        };
        // Signals: handlers of tend's become the default (exec would do it, but a signal
        // between the unblock and the exec must not run tend's code here); SIGPIPE too,
        // which Rust's runtime ignores and std's Command also resets. Other ignored signals
        // stay ignored, as with fork and exec. Raw rt_sigaction, not libc's sigaction:
        // musl's takes a lock for SIGABRT, and both libcs refuse their own internal
        // signals (32 to 34), whose handlers must go too. The kernel's struct starts with
        // the handler on every architecture tend ships for; four zeroed words hold it
        // whole (handler, flags, restorer, mask) and say SIG_DFL.
        let dfl = [0u64; 4];
        let to_default = |sig: libc::c_int| {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        if a.handlers_cleared {
            // clone3 reset the handled ones (CLONE_CLEAR_SIGHAND): SIGPIPE is left.
            to_default(libc::SIGPIPE);
        } else {
            for sig in 1..=64 {
                if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                    continue;
                }
                let Some(handler) = handler_of(sig) else {
                    continue;
                };
                if sig == libc::SIGPIPE || (handler != libc::SIG_IGN && handler != libc::SIG_DFL) {
                    to_default(sig);
                }
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &raw const empty, std::ptr::null_mut()) != 0 {
            return fail(a);
        }
        if libc::setpgid(0, 0) != 0 {
            return fail(a);
        }
        // If tend dies, even by SIGKILL, the kernel kills the program. The signal is tied
        // to the *thread* that cloned, which is why tend spawns only from its
        // single-threaded runtime's main thread.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
            return fail(a);
        }
        // tend may have died before the prctl: then nobody would ever kill this one.
        if libc::getppid() != a.parent {
            libc::_exit(1);
        }
        if a.core_dumps {
            // Up to the hard limit, which an unprivileged process may do: systemd's
            // default is 0 soft, unlimited hard; the unit says LimitCORE=infinity.
            let mut lim: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_CORE, &raw mut lim) != 0 {
                return fail(a);
            }
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_CORE, &raw const lim) != 0 {
                return fail(a);
            }
        }
        // dup2 clears close-on-exec on the copy; the originals close at exec.
        if libc::dup2(a.null, 0) < 0 {
            return fail(a);
        }
        if a.stdout >= 0 && libc::dup2(a.stdout, 1) < 0 {
            return fail(a);
        }
        if a.stderr >= 0 && libc::dup2(a.stderr, 2) < 0 {
            return fail(a);
        }
        if libc::chdir(a.cwd) != 0 {
            return fail(a);
        }
        libc::execve(a.program, a.argv, a.envp);
        fail(a)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::PathBuf;

    use tend_core::{CommandSpec, Program};

    use nix::libc;

    use super::super::{Launch, Output, spawn};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// `path`, without arguments.
    fn at(path: impl Into<PathBuf>) -> CommandSpec {
        CommandSpec {
            program: Program::Path(path.into()),
            args: vec![],
        }
    }

    fn sh(script: &str) -> CommandSpec {
        CommandSpec {
            program: Program::Path(PathBuf::from("/bin/sh")),
            args: vec!["-c".to_owned(), script.to_owned()],
        }
    }

    /// Runs `command` captured; its exit status and its stdout and stderr.
    fn run(
        command: &CommandSpec,
        dir: &std::path::Path,
        env: &[(String, String)],
        core_dumps: bool,
    ) -> Result<(std::process::ExitStatus, String, String), String> {
        rt().block_on(async {
            let launch = Launch {
                command,
                working_dir: dir,
                env,
                output: Output::Capture,
                core_dumps,
            };
            let mut s = spawn(&launch)?;
            assert!(
                matches!(s.child, super::super::Child::Pidfd(_)),
                "the Linux spawn"
            );
            let status = s.child.wait().await.map_err(|e| e.to_string())?;
            let (mut out, mut err) = (String::new(), String::new());
            s.stdout.unwrap().read_to_string(&mut out).unwrap();
            s.stderr.unwrap().read_to_string(&mut err).unwrap();
            // A second wait answers at once with the same status.
            assert_eq!(s.child.wait().await.unwrap().code(), status.code());
            Ok((status, out, err))
        })
    }

    /// Whether this spawn is the one in use here: a kernel before 5.3, or a seccomp filter
    /// that refuses `pidfd_open` (Docker before 20.10), keeps std's `Command`, which the
    /// rest of the suite covers.
    fn pidfds() -> bool {
        let yes = super::available();
        if !yes {
            eprintln!("skipped: no pidfd_open here, so tend starts programs with std's Command");
        }
        yes
    }

    fn status_field(status: &str, key: &str) -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }

    /// Whether the running kernel is at least `major.minor`.
    fn kernel_at_least(major: u32, minor: u32) -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
    }

    /// Runs `check` on the `clone3` path, then on the `clone(2)` path as where `clone3` is
    /// refused, and sees that each round took its path.
    fn on_both_paths(mut check: impl FnMut()) {
        for without_clone3 in [false, true] {
            super::WITHOUT_CLONE3.set(without_clone3);
            let before = super::CLONE3_STARTS.get();
            check();
            let by_clone3 = super::CLONE3_STARTS.get() > before;
            if without_clone3 {
                assert!(!by_clone3, "the second round took clone3");
            } else if let refused @ 1.. =
                super::CLONE3_REFUSED.load(std::sync::atomic::Ordering::Relaxed)
            {
                // A kernel that has clone3 and CLONE_CLEAR_SIGHAND refuses only through a
                // filter (ENOSYS, EPERM); anything else there is tend's own arguments being
                // wrong, which the fallback would otherwise hide.
                assert!(
                    matches!(refused, libc::ENOSYS | libc::EPERM) || !kernel_at_least(5, 5),
                    "clone3 refused with errno {refused} on a kernel that has it"
                );
                eprintln!("clone3 is refused here (errno {refused}): both rounds took clone(2)");
            } else {
                assert!(by_clone3, "the first round did not take clone3");
            }
        }
        super::WITHOUT_CLONE3.set(false);
    }

    #[test]
    fn the_program_starts_as_std_would_start_it() {
        if !pidfds() {
            return;
        }
        on_both_paths(starts_as_std_would);
    }

    fn starts_as_std_would() {
        let dir = tempfile::tempdir().unwrap();
        let script = "echo \"cwd=$(pwd)\"; echo \"var=$TEND_T_VAR\"; echo \"path=$PATH\"; \
             echo \"stdin=$(readlink /proc/self/fd/0)\"; \
             echo \"pgid=$(cut -d' ' -f5 /proc/$$/stat) pid=$$\"; \
             echo on-stderr >&2; exit 7";
        let env = [("TEND_T_VAR".to_owned(), "set by the config".to_owned())];
        let (status, out, err) = run(&sh(script), dir.path(), &env, false).unwrap();
        assert_eq!(status.code(), Some(7));
        assert_eq!(err, "on-stderr\n");
        let cwd = dir.path().canonicalize().unwrap();
        assert!(out.contains(&format!("cwd={}\n", cwd.display())), "{out}");
        assert!(out.contains("var=set by the config\n"), "{out}");
        // tend's own environment is inherited.
        let path = std::env::var("PATH").unwrap_or_default();
        assert!(out.contains(&format!("path={path}\n")), "{out}");
        assert!(out.contains("stdin=/dev/null\n"), "{out}");
        let ids = out.lines().find(|l| l.starts_with("pgid=")).unwrap();
        let (pgid, pid) = ids.split_once(' ').unwrap();
        assert_eq!(
            pgid.trim_start_matches("pgid="),
            pid.trim_start_matches("pid="),
            "a group of its own"
        );
    }

    #[test]
    fn the_program_starts_with_no_signal_blocked_and_sigpipe_not_ignored() {
        if !pidfds() {
            return;
        }
        // Another ignored signal stays ignored, as with fork and exec. Nothing in this test
        // binary uses SIGUSR2 (a program another test starts meanwhile inherits it
        // ignored, which none looks at); the default is back at the end.
        // SAFETY: sets SIGUSR2's disposition to SIG_IGN, no handler code involved.
        unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
        // Also when an assert below fails: the default goes back when this is dropped.
        struct RestoreDefault;
        impl Drop for RestoreDefault {
            fn drop(&mut self) {
                // SAFETY: puts SIGUSR2's default disposition back.
                unsafe { libc::signal(libc::SIGUSR2, libc::SIG_DFL) };
            }
        }
        let _default = RestoreDefault;
        // Read from outside while it sleeps: a shell reading its own status would show the
        // mask it holds while it waits for `cat`.
        let dir = tempfile::tempdir().unwrap();
        let command = CommandSpec {
            program: Program::Path(PathBuf::from("/bin/sleep")),
            args: vec!["30".to_owned()],
        };
        on_both_paths(|| starts_with_a_clean_mask(&command, dir.path()));
    }

    fn starts_with_a_clean_mask(command: &CommandSpec, dir: &std::path::Path) {
        rt().block_on(async {
            let launch = Launch {
                command,
                working_dir: dir,
                env: &[],
                output: Output::Capture,
                core_dumps: false,
            };
            let mut s = spawn(&launch).unwrap();
            let theirs = std::fs::read_to_string(format!("/proc/{}/status", s.pid)).unwrap();
            s.tree.kill().unwrap();
            assert!(!s.child.wait().await.unwrap().success());
            let ours = std::fs::read_to_string("/proc/self/status").unwrap();
            let ign = |s: &str| u64::from_str_radix(&status_field(s, "SigIgn:"), 16).unwrap();
            // SIGPIPE is signal 13: bit 12. The Rust runtime ignores it in this test process.
            assert_ne!(
                ign(&ours) & (1 << 12),
                0,
                "the test runs with SIGPIPE ignored"
            );
            assert_eq!(ign(&theirs) & (1 << 12), 0, "{theirs}");
            // SIGUSR2 is signal 12: bit 11.
            assert_ne!(ign(&theirs) & (1 << 11), 0, "{theirs}");
            assert_eq!(
                status_field(&theirs, "SigBlk:"),
                "0000000000000000",
                "{theirs}"
            );
        });
    }

    #[test]
    fn the_raw_handler_query_reads_what_libc_set() {
        // What the child's reset relies on: a wrong struct size would make every query
        // fail, and no handler would ever be reset. The Rust runtime ignores SIGPIPE and
        // handles SIGSEGV (stack overflows) in this process.
        assert_eq!(super::handler_of(libc::SIGPIPE), Some(libc::SIG_IGN));
        let segv = super::handler_of(libc::SIGSEGV).unwrap();
        assert!(segv != libc::SIG_DFL && segv != libc::SIG_IGN, "{segv:#x}");
        assert_eq!(super::handler_of(libc::SIGKILL), Some(libc::SIG_DFL));
        assert_eq!(super::handler_of(65), None);
    }

    #[test]
    fn a_later_config_variable_wins_and_systemd_s_are_not_inherited() {
        if !pidfds() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("TEND_T_TWICE".to_owned(), "first".to_owned()),
            ("TEND_T_TWICE".to_owned(), "second".to_owned()),
            ("HOME".to_owned(), "/from/config".to_owned()),
        ];
        let script = "echo \"$TEND_T_TWICE $HOME ${NOTIFY_SOCKET-unset}\"; env | grep -c '^HOME='";
        let (_, out, _) = run(&sh(script), dir.path(), &env, false).unwrap();
        assert_eq!(out, "second /from/config unset\n1\n");
        // A reload that changes `env` gets a new block; going back gets the old values.
        let changed = [("TEND_T_TWICE".to_owned(), "changed".to_owned())];
        let (_, out, _) = run(&sh(script), dir.path(), &changed, false).unwrap();
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(out, format!("changed {home} unset\n1\n"));
        let (_, out, _) = run(&sh(script), dir.path(), &env, false).unwrap();
        assert_eq!(out, "second /from/config unset\n1\n");
    }

    #[test]
    fn core_dumps_raise_the_soft_limit_to_the_hard_one() {
        if !pidfds() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = "echo \"$(ulimit -S -c) $(ulimit -H -c)\"";
        let (_, out, _) = run(&sh(script), dir.path(), &[], true).unwrap();
        let (soft, hard) = out.trim().split_once(' ').unwrap();
        assert_eq!(soft, hard);
    }

    #[test]
    fn a_program_that_cannot_be_executed_is_an_error_with_its_reason() {
        if !pidfds() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let no_interp = dir.path().join("no-interp");
        std::fs::write(&no_interp, "#!/nonexistent/interpreter\n").unwrap();
        std::fs::set_permissions(&no_interp, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bad_arg = CommandSpec {
            program: Program::Path(PathBuf::from("/bin/sh")),
            args: vec!["a\0b".to_owned()],
        };
        on_both_paths(|| {
            for (command, want) in [
                (at(&plain), "is not executable (permission denied)"),
                (
                    at(&no_interp),
                    "could not be executed (missing file or interpreter)",
                ),
                (bad_arg.clone(), "contains a NUL byte"),
            ] {
                let e = run(&command, dir.path(), &[], false).unwrap_err();
                assert!(e.contains(want), "{e}");
            }
        });
    }

    #[test]
    fn a_failed_start_is_worded_by_what_is_missing() {
        if !pidfds() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let e = run(&sh("exit 0"), &gone, &[], false).unwrap_err();
        assert!(e.contains("working_dir") && e.contains("gone"), "{e}");
        let not_a_file = at(dir.path());
        let e = run(&not_a_file, dir.path(), &[], false).unwrap_err();
        assert!(e.contains("is not a file"), "{e}");
        let missing = at(dir.path().join("nope"));
        let e = run(&missing, dir.path(), &[], false).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn a_child_dropped_unwaited_is_reaped_when_it_ends() {
        if !pidfds() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        let pid = rt.block_on(async {
            let command = sh("read line");
            let launch = Launch {
                command: &command,
                working_dir: dir.path(),
                env: &[],
                output: Output::Capture,
                core_dumps: false,
            };
            let s = spawn(&launch).unwrap();
            let pid = s.pid;
            drop(s.child);
            // stdin is /dev/null: `read` ends at once; its reaper task must take it.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::path::Path::new(&format!("/proc/{pid}")).exists() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{pid} was never reaped"
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            pid
        });
        assert!(pid > 0);
    }
}
