//! Watching a program just started under tend until it passes or fails its verification:
//! `tend upgrade`'s (and `--self`'s) release check and `tend import --install --replace`'s
//! check of tend's new service. The verdict is tend-core's (`upgrade::verdict`); this only
//! reads the supervisor's status file and polls.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use tend_core::upgrade::{Rules, Sample, Verdict, Watch, verdict};

/// How often the status file is read.
const POLL: Duration = Duration::from_millis(200);

/// Why a verification failed, and the program's last stderr lines when it exited.
pub(crate) type Failed = (String, Vec<String>);

/// What the status file `file` says now, reduced to what the verdict needs; `None` while
/// there is none written at or after `since` (an older one is the previous run's).
pub(crate) fn sample(file: &Path, since: Option<SystemTime>) -> Option<Sample> {
    let s = crate::status::read(file).ok().flatten().filter(|s| {
        since.is_none_or(|t| {
            chrono::DateTime::parse_from_rfc3339(&s.updated_at)
                .is_ok_and(|u| SystemTime::from(u) >= t)
        })
    })?;
    Some(Sample {
        state: s.state.clone(),
        pid: s.pid,
        restarts: s.restarts_total,
        health: s.health.as_ref().map(|h| h.state.clone()),
        health_reason: s.health.as_ref().and_then(|h| h.reason.clone()),
        last_exit: s
            .last_exit
            .as_ref()
            .map(|e| (e.description.clone(), e.stderr.clone())),
    })
}

/// Polls `file` until the verdict under `rules`: `Ok(pid)` of the run that passed. `seen`
/// gets every sample (to time the downtime); `command` runs `[upgrade] verify_command` when
/// the verdict asks for it.
pub(crate) fn watch(
    rules: Rules,
    file: &Path,
    since: Option<SystemTime>,
    mut seen: impl FnMut(&Sample),
    mut command: impl FnMut() -> Result<(), Failed>,
) -> Result<u32, Failed> {
    let began = Instant::now();
    let mut w = Watch::default();
    loop {
        let s = sample(file, since);
        if let Some(s) = &s {
            seen(s);
        }
        match verdict(rules, &mut w, s.as_ref(), began.elapsed()) {
            Verdict::Wait => std::thread::sleep(POLL),
            Verdict::RunCommand => {
                command()?;
                w.command_passed = true;
            }
            Verdict::Pass => return Ok(s.and_then(|s| s.pid).unwrap_or_default()),
            Verdict::Fail(why, lines) => return Err((why, lines)),
        }
    }
}
