//! How the program's tree is measured, per OS: the OS-specific half of `[limits]`.

use tend_health::{CpuCounter, Sample, SampleError};

use crate::proc::Tree;

/// How the program's tree is measured.
pub(super) enum Sampler {
    /// This OS has no sampler (macOS).
    #[cfg(not(any(target_os = "linux", windows)))]
    None,
    /// The program's process group, by scanning /proc (a new one per run).
    #[cfg(target_os = "linux")]
    Group(Option<tend_health::sample::linux::ProcessGroup>),
    /// tend's own systemd unit cgroup: the kernel sums the whole tree.
    #[cfg(target_os = "linux")]
    Cgroup(tend_health::sample::linux::Cgroup),
    /// The program's Job Object, through [`Tree::sample`].
    #[cfg(windows)]
    Job,
}

impl Sampler {
    /// The best source for service `name`: its unit's cgroup when tend runs as that systemd
    /// unit, otherwise the program's process group / job.
    pub(super) fn for_service(name: &str) -> Self {
        #[cfg(target_os = "linux")]
        {
            match tend_health::sample::linux::Cgroup::own_service(&format!("{name}.service")) {
                Ok(Some(c)) => Self::Cgroup(c),
                _ => Self::Group(None),
            }
        }
        #[cfg(windows)]
        {
            let _ = name;
            Self::Job
        }
        #[cfg(not(any(target_os = "linux", windows)))]
        {
            let _ = name;
            Self::None
        }
    }

    pub(super) fn available(&self) -> bool {
        #[cfg(not(any(target_os = "linux", windows)))]
        {
            false
        }
        #[cfg(any(target_os = "linux", windows))]
        {
            true
        }
    }

    /// A new run began with main process `pid`.
    pub(super) fn program_started(&mut self, pid: u32, cpu: &mut CpuCounter) {
        match self {
            #[cfg(target_os = "linux")]
            Self::Group(g) => {
                // tend starts the program as a group leader: its pid is the group id.
                *g = Some(tend_health::sample::linux::ProcessGroup::new(pid));
                cpu.tree_changed();
            }
            // The cgroup's counter outlives the program's runs: no new baseline.
            #[cfg(target_os = "linux")]
            Self::Cgroup(_) => {}
            #[cfg(windows)]
            Self::Job => {
                let _ = pid;
                cpu.tree_changed();
            }
            #[cfg(not(any(target_os = "linux", windows)))]
            Self::None => {
                let _ = (pid, cpu);
            }
        }
    }

    pub(super) fn sample(&self, tree: Option<&Tree>) -> Option<Result<Sample, SampleError>> {
        let _ = tree;
        match self {
            #[cfg(target_os = "linux")]
            Self::Group(g) => g
                .as_ref()
                .map(tend_health::sample::linux::ProcessGroup::sample),
            #[cfg(target_os = "linux")]
            Self::Cgroup(c) => Some(c.sample()),
            #[cfg(windows)]
            Self::Job => tree.map(Tree::sample),
            #[cfg(not(any(target_os = "linux", windows)))]
            Self::None => None,
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            #[cfg(target_os = "linux")]
            Self::Group(_) => "the program's process group (/proc)".into(),
            #[cfg(target_os = "linux")]
            Self::Cgroup(c) => format!("the service's cgroup ({})", c.dir().display()),
            #[cfg(windows)]
            Self::Job => "the program's Job Object".into(),
            #[cfg(not(any(target_os = "linux", windows)))]
            Self::None => "nothing (not available on this OS)".into(),
        }
    }

    /// Whether its CPU counter spans the program's runs (a unit's cgroup counts from the
    /// unit's start, not the run's).
    pub(super) fn spans_runs(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            matches!(self, Self::Cgroup(_))
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }
}
