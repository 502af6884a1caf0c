//! `results.jsonl` in a service's release store: one line per change that ended (an upgrade
//! or a rollback, by its tend or finished by the next one after an interruption). Releases
//! are pruned to `[upgrade] keep`; this file is not, so the counts of upgrades by result that
//! the service's metrics expose (`tend_upgrades_total`) only ever grow.
//!
//! The store is root's (0700), and the service's supervisor may run as the service's own
//! account (`DynamicUser=`): so the counts are also published, as `upgrades.json`, into the
//! service's state directory, which the supervisor reads (nothing secret: three numbers).

use std::io::{self, Write as _};
use std::path::Path;

use serde::{Deserialize, Serialize};
use tend_core::upgrade::End;

const FILE: &str = "results.jsonl";

/// The results `tend_upgrades_total` counts, in the order it shows them.
pub(crate) const UPGRADE_RESULTS: [&str; 3] = ["upgraded", "rolled_back", "broken"];

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    time: String,
    op: String,
    end: End,
    from: String,
    to: String,
}

/// Appends how a change ended (flushed: a counter must not go back after a crash).
pub(crate) fn append(store: &Path, op: &str, end: End, from: &str, to: &str) -> io::Result<()> {
    let line = Line {
        time: crate::status::rfc3339(std::time::SystemTime::now()),
        op: op.to_owned(),
        end,
        from: from.to_owned(),
        to: to.to_owned(),
    };
    let mut text = serde_json::to_string(&line).map_err(io::Error::other)?;
    text.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(store.join(FILE))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// How many `tend upgrade`s ended with each of [`UPGRADE_RESULTS`] (a rollback by hand and an
/// abandoned upgrade, which touched nothing, are not counted); every result is present, 0
/// when none ended so. `None` when the store has no results (no upgrade yet) or cannot be
/// read. A line that cannot be read (cut short by a crash) is skipped.
pub(crate) fn upgrade_counts(store: &Path) -> Option<Vec<(String, u64)>> {
    let text = std::fs::read_to_string(store.join(FILE)).ok()?;
    let mut counts: Vec<(String, u64)> = UPGRADE_RESULTS
        .iter()
        .map(|r| ((*r).to_owned(), 0))
        .collect();
    for l in text.lines() {
        let Ok(l) = serde_json::from_str::<Line>(l) else {
            continue;
        };
        if l.op != "upgrade" {
            continue;
        }
        let result = match l.end {
            End::Upgraded => 0,
            End::RolledBack => 1,
            End::Broken => 2,
            End::Abandoned => continue,
        };
        counts[result].1 += 1;
    }
    Some(counts)
}

/// The file in the service's state directory that the supervisor reads the counts from.
const PUBLISHED: &str = "upgrades.json";

/// Writes the counts of `store` into `state_dir` for the supervisor (readable by its
/// account). A state directory that does not exist yet (the service never ran) is left
/// alone: the service manager creates it, with its owner, at the first start.
pub(crate) fn publish(store: &Path, state_dir: &Path) -> io::Result<()> {
    let Some(counts) = upgrade_counts(store) else {
        return Ok(());
    };
    if !state_dir.is_dir() {
        return Ok(());
    }
    let map: serde_json::Map<String, serde_json::Value> = counts
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::from(v)))
        .collect();
    let bytes = serde_json::to_vec(&map).map_err(io::Error::other)?;
    tend_os::write_atomic(&state_dir.join(PUBLISHED), &bytes, Some(0o644))
}

/// The counts [`publish`] wrote into `state_dir`, in the order of [`UPGRADE_RESULTS`]; empty
/// when there are none (no upgrade yet, or `tend run`).
pub(crate) fn published(state_dir: &Path) -> Vec<(String, u64)> {
    let Ok(text) = std::fs::read(state_dir.join(PUBLISHED)) else {
        return Vec::new();
    };
    let Ok(map) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&text)
    else {
        return Vec::new();
    };
    UPGRADE_RESULTS
        .iter()
        .map(|r| {
            (
                (*r).to_owned(),
                map.get(*r).and_then(serde_json::Value::as_u64).unwrap_or(0),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrades_counted_by_result() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(upgrade_counts(dir.path()), None);
        append(dir.path(), "upgrade", End::Upgraded, "a", "b").unwrap();
        append(dir.path(), "upgrade", End::RolledBack, "b", "c").unwrap();
        append(dir.path(), "upgrade", End::RolledBack, "b", "d").unwrap();
        append(dir.path(), "upgrade", End::Abandoned, "b", "e").unwrap();
        append(dir.path(), "rollback", End::Upgraded, "b", "a").unwrap();
        // A line a crash cut short.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .unwrap()
            .write_all(b"{\"time\":")
            .unwrap();
        assert_eq!(
            upgrade_counts(dir.path()).unwrap(),
            [
                ("upgraded".to_owned(), 1),
                ("rolled_back".to_owned(), 2),
                ("broken".to_owned(), 0)
            ]
        );

        let state = tempfile::tempdir().unwrap();
        assert!(published(state.path()).is_empty());
        publish(dir.path(), &state.path().join("missing")).unwrap();
        publish(dir.path(), state.path()).unwrap();
        assert_eq!(published(state.path()), upgrade_counts(dir.path()).unwrap());
    }
}
