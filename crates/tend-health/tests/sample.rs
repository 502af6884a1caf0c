//! Sampling real process trees.

mod common;

use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use tend_health::sample::linux::{Cgroup, ProcessGroup};

    /// A shell script as the leader of its own process group, killed with the group.
    struct Group(std::process::Child);

    impl Group {
        fn start(script: &str) -> Self {
            use std::os::unix::process::CommandExt as _;
            let child = std::process::Command::new("sh")
                .args(["-c", script])
                .process_group(0)
                .spawn()
                .unwrap();
            Self(child)
        }

        fn pgid(&self) -> u32 {
            self.0.id()
        }
    }

    impl Drop for Group {
        fn drop(&mut self) {
            let pgid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).unwrap());
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = self.0.wait();
        }
    }

    #[tokio::test]
    async fn the_whole_group_is_counted() {
        let g = Group::start("sleep 60 & sleep 60 & wait");
        let sampler = ProcessGroup::new(g.pgid());
        let mut last = None;
        let all_three = common::eventually(T, || {
            let s = sampler.sample().unwrap();
            last = Some(s);
            s.processes == Some(3)
        })
        .await;
        assert!(all_three, "sh and two sleeps: {last:?}");
        let s = last.unwrap();
        assert!(s.memory_bytes > 0, "{s:?}");
    }

    #[tokio::test]
    async fn cpu_time_grows_while_busy() {
        let g = Group::start("while :; do :; done");
        let sampler = ProcessGroup::new(g.pgid());
        let mut last = None;
        let busy = common::eventually(T, || {
            let s = sampler.sample().unwrap();
            last = Some(s);
            s.cpu_time >= Duration::from_millis(200)
        })
        .await;
        assert!(busy, "{last:?}");
    }

    #[test]
    fn an_empty_group_samples_as_nothing() {
        // pid 0 never leads a group a process scan can find (the kernel's own threads
        // report pgrp 0, so use a pid number that cannot exist instead).
        let s = ProcessGroup::new(u32::MAX).sample().unwrap();
        assert_eq!(s.processes, Some(0));
        assert_eq!(s.memory_bytes, 0);
    }

    #[test]
    fn a_foreign_cgroup_is_not_ours() {
        assert_eq!(
            Cgroup::own_service("tend-test-no-such-unit.service").unwrap(),
            None
        );
    }
}

#[cfg(windows)]
mod windows {
    #![allow(unsafe_code, reason = "the test builds its own job object")]

    use super::*;
    use std::os::windows::io::{AsRawHandle as _, BorrowedHandle};
    use std::process::Stdio;

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, TerminateJobObject,
    };

    struct Job(HANDLE);

    impl Drop for Job {
        fn drop(&mut self) {
            // SAFETY: the handle came from CreateJobObjectW and is closed once, here.
            unsafe {
                TerminateJobObject(self.0, 1);
                CloseHandle(self.0);
            }
        }
    }

    #[tokio::test]
    async fn the_job_is_sampled() {
        // SAFETY: null attributes and name are allowed; the result is checked.
        let job = Job(unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) });
        assert!(!job.0.is_null());
        // `cmd` with an open stdin waits for commands: a process that stays.
        let mut child = std::process::Command::new("cmd")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // SAFETY: both handles are live (the child is not waited for yet).
        let ok = unsafe { AssignProcessToJobObject(job.0, child.as_raw_handle()) };
        assert_ne!(ok, 0, "{}", std::io::Error::last_os_error());
        // SAFETY: the job handle stays open until `job` drops at the end of the test.
        let handle = unsafe { BorrowedHandle::borrow_raw(job.0) };
        let mut last = None;
        let seen = common::eventually(T, || {
            let s = tend_health::sample::windows::sample_job(handle).unwrap();
            last = Some(s);
            s.processes >= Some(1) && s.memory_bytes > 0
        })
        .await;
        assert!(seen, "{last:?}");
        drop(job);
        let _ = child.kill();
        let _ = child.wait();
    }
}
