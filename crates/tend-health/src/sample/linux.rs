//! Linux: the program's process group through `/proc`, or a cgroup v2 through its
//! accounting files.
//!
//! Prefer [`Cgroup`] when tend runs as its own systemd service (`Cgroup::own_service`
//! finds it): the kernel already sums the whole tree, including descendants that left the
//! process group, for the price of a few small reads. It also counts tend itself (a few
//! MiB) and the page cache in active use; the inactive file cache, which the kernel
//! reclaims first, is left out (see [`Cgroup::sample`]). Without
//! such a cgroup (`tend run` in a terminal, another service manager), [`ProcessGroup`] scans
//! `/proc`: Linux has no "members of process group N" query, so every sample reads
//! `/proc/<pid>/stat` of every process on the machine (a few microseconds each: about 1 ms
//! per 200 processes, every `sample_every`).

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Sample, SampleError};

/// Fields of `/proc/<pid>/stat` that sampling needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) pgrp: u32,
    /// utime + stime + cutime + cstime, in clock ticks. The children's part keeps CPU time
    /// of short-lived children that a group member reaped (they vanish from the scan).
    pub(crate) ticks: u64,
    /// Resident pages.
    pub(crate) rss_pages: u64,
}

/// Parses a `/proc/<pid>/stat` line. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) cutime(13)
    // cstime(14) ... rss(21).
    let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // cutime/cstime are signed in the kernel's format; negative never happens in practice.
    let signed = |i: usize| {
        fields
            .get(i)?
            .parse::<i64>()
            .ok()
            .map(|v| u64::try_from(v).unwrap_or(0))
    };
    Some(Stat {
        pgrp: u32::try_from(num(2)?).ok()?,
        ticks: num(11)? + num(12)? + signed(13)? + signed(14)?,
        rss_pages: u64::try_from(fields.get(21)?.parse::<i64>().ok()?).unwrap_or(0),
    })
}

fn sysconf_or(var: nix::unistd::SysconfVar, fallback: u64) -> u64 {
    match nix::unistd::sysconf(var) {
        Ok(Some(v)) => u64::try_from(v).ok().filter(|v| *v > 0).unwrap_or(fallback),
        _ => fallback,
    }
}

/// The members of one process group, found by scanning `/proc`.
#[derive(Debug, Clone)]
pub struct ProcessGroup {
    pgid: u32,
    proc_root: PathBuf,
    ticks_per_sec: u64,
    page_size: u64,
}

impl ProcessGroup {
    /// The group led by `pgid` (tend starts the program as a group leader, so this is the
    /// program's pid).
    #[must_use]
    pub fn new(pgid: u32) -> Self {
        Self {
            pgid,
            proc_root: PathBuf::from("/proc"),
            ticks_per_sec: sysconf_or(nix::unistd::SysconfVar::CLK_TCK, 100),
            page_size: sysconf_or(nix::unistd::SysconfVar::PAGE_SIZE, 4096),
        }
    }

    /// Sums RSS and CPU time over the group's processes. A group with no process left
    /// samples as zero processes.
    ///
    /// # Errors
    /// When `/proc` cannot be listed. Processes that vanish during the scan are skipped.
    pub fn sample(&self) -> Result<Sample, SampleError> {
        let entries = fs::read_dir(&self.proc_root).map_err(|source| SampleError::Read {
            path: self.proc_root.display().to_string(),
            source,
        })?;
        let (mut ticks, mut pages, mut count) = (0u64, 0u64, 0u32);
        let mut buf = String::with_capacity(512);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            buf.clear();
            let path = self.proc_root.join(pid).join("stat");
            // A process may exit between the listing and the read: skip it.
            let Ok(mut f) = fs::File::open(&path) else {
                continue;
            };
            if f.read_to_string(&mut buf).is_err() {
                continue;
            }
            if let Some(stat) = parse_stat(&buf)
                && stat.pgrp == self.pgid
            {
                ticks += stat.ticks;
                pages += stat.rss_pages;
                count += 1;
            }
        }
        let secs = ticks / self.ticks_per_sec;
        let rem = ticks % self.ticks_per_sec;
        Ok(Sample {
            memory_bytes: pages * self.page_size,
            cpu_time: Duration::from_secs(secs)
                + Duration::from_nanos(rem * 1_000_000_000 / self.ticks_per_sec),
            processes: Some(count),
        })
    }
}

/// A cgroup v2 directory whose accounting covers the whole tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    dir: PathBuf,
}

/// Where cgroup v2 is mounted on every systemd system.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup v2 path in `/proc/self/cgroup` (the `0::<path>` line) if it is the cgroup of
/// the systemd unit `unit` (e.g. `web.service`). Anything else (a terminal's scope, another
/// service that happens to run `tend run`, cgroup v1) is not tend's to account.
#[must_use]
pub fn service_cgroup_path<'a>(proc_self_cgroup: &'a str, unit: &str) -> Option<&'a str> {
    let path = proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim_end();
    let last = path.rsplit('/').next()?;
    (last == unit).then_some(path)
}

impl Cgroup {
    /// The cgroup at `dir` (for a cgroup tend created itself, or tests).
    #[must_use]
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// tend's own cgroup, if tend runs as the systemd unit `unit` on cgroup v2 with memory
    /// and CPU accounting on; `None` otherwise (then use [`ProcessGroup`]).
    ///
    /// # Errors
    /// When `/proc/self/cgroup` cannot be read.
    pub fn own_service(unit: &str) -> Result<Option<Self>, SampleError> {
        let path = "/proc/self/cgroup";
        let text = fs::read_to_string(path).map_err(|source| SampleError::Read {
            path: path.into(),
            source,
        })?;
        let Some(rel) = service_cgroup_path(&text, unit) else {
            return Ok(None);
        };
        let dir = Path::new(CGROUP_ROOT).join(rel.trim_start_matches('/'));
        let accounted = dir.join("memory.current").is_file() && dir.join("cpu.stat").is_file();
        Ok(accounted.then_some(Self { dir }))
    }

    /// The cgroup's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads `memory.current` minus the reclaimable `inactive_file` of `memory.stat` (the
    /// "working set", as container runtimes report it), `cpu.stat` (`usage_usec`), and counts
    /// `cgroup.procs`.
    ///
    /// Why not `memory.current` alone: it includes page cache, and tend writes the
    /// program's logs from inside the same cgroup. A chatty program would grow towards its
    /// memory limit on cache the kernel drops at will; inactive file pages are exactly the
    /// part it reclaims first.
    ///
    /// # Errors
    /// When a file cannot be read or does not have the expected content.
    pub fn sample(&self) -> Result<Sample, SampleError> {
        let read = |name: &str| {
            let path = self.dir.join(name);
            fs::read_to_string(&path).map_err(|source| SampleError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let parse_err = |name: &str, detail: &str| SampleError::Parse {
            path: self.dir.join(name).display().to_string(),
            detail: detail.into(),
        };
        let current = read("memory.current")?
            .trim()
            .parse::<u64>()
            .map_err(|_| parse_err("memory.current", "not a number"))?;
        // Missing (an old kernel, a controller not enabled): count everything rather than
        // fail the sample.
        let inactive_file = read("memory.stat")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("inactive_file "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(0);
        let memory_bytes = current.saturating_sub(inactive_file);
        let usage_usec = read("cpu.stat")?
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| parse_err("cpu.stat", "no usage_usec line"))?;
        // The process count is informative only: a missing file is not worth failing for.
        let processes = read("cgroup.procs")
            .ok()
            .and_then(|t| u32::try_from(t.lines().filter(|l| !l.is_empty()).count()).ok());
        Ok(Sample {
            memory_bytes,
            cpu_time: Duration::from_micros(usage_usec),
            processes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 7 3 20 0 1 0 12345 1000000 300 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                pgrp: 4242,
                ticks: 310,
                rss_pages: 300
            })
        );
        assert_eq!(parse_stat("12 (x) S 1"), None, "truncated");
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn service_cgroups() {
        let cases = [
            (
                "0::/system.slice/web.service\n",
                "web.service",
                Some("/system.slice/web.service"),
            ),
            ("0::/system.slice/web.service", "api.service", None),
            (
                "0::/user.slice/user-1000.slice/session-3.scope\n",
                "web.service",
                None,
            ),
            // Hybrid hierarchy: the v2 line is still the one that counts.
            (
                "12:memory:/system.slice/web.service\n0::/system.slice/web.service\n",
                "web.service",
                Some("/system.slice/web.service"),
            ),
            // cgroup v1 only.
            ("4:memory:/system.slice/web.service\n", "web.service", None),
            ("", "web.service", None),
        ];
        for (text, unit, want) in cases {
            assert_eq!(service_cgroup_path(text, unit), want, "{text:?}");
        }
    }

    #[test]
    fn cgroup_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("memory.current"), "52428800\n").unwrap();
        fs::write(
            dir.path().join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
        )
        .unwrap();
        fs::write(dir.path().join("cgroup.procs"), "10\n11\n12\n").unwrap();
        let s = Cgroup::at(dir.path()).sample().unwrap();
        assert_eq!(
            s.memory_bytes,
            50 * 1024 * 1024,
            "no memory.stat: everything"
        );
        fs::write(
            dir.path().join("memory.stat"),
            "anon 41943040\nfile 10485760\nactive_file 2097152\ninactive_file 8388608\n",
        )
        .unwrap();
        let s = Cgroup::at(dir.path()).sample().unwrap();
        assert_eq!(
            s,
            Sample {
                memory_bytes: 42 * 1024 * 1024,
                cpu_time: Duration::from_millis(2500),
                processes: Some(3)
            }
        );
        fs::write(dir.path().join("cpu.stat"), "user_usec 1\n").unwrap();
        let e = Cgroup::at(dir.path()).sample().unwrap_err().to_string();
        assert!(e.contains("no usage_usec"), "{e}");
        let e = Cgroup::at(dir.path().join("missing")).sample().unwrap_err();
        assert!(matches!(e, SampleError::Read { .. }), "{e}");
    }
}
