//! What a killed tend left unfinished: the journals of `tend upgrade`/`rollback` and of
//! `tend import --install --replace`, read for `tend status`'s warnings. Apart from both
//! verbs so that `status` needs neither of them (and they may use `status`).

use serde::{Deserialize, Serialize};
use tend_core::replace::Step;

use crate::place::{self, Scope};
use crate::release::Store;

/// What is written before each step (`journal.json` in the replace directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Journal {
    /// The service taken over (`None`: a plain `--install`, nothing to put back).
    pub(crate) foreign: Option<String>,
    /// tend's service.
    pub(crate) into: String,
    pub(crate) step: Step,
    pub(crate) pid: u32,
    pub(crate) started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) stderr: Vec<String>,
}

/// What `tend status NAME` says of a replacement of `NAME` that a killed tend left
/// unfinished (or that runs now); `None` when there is none.
pub(crate) fn replacement(name: &str, scope: Scope) -> Option<String> {
    let name = place::service_name(name).ok()?;
    let dir = place::place(scope, &name).ok()?.replace_dir();
    let j: Journal = crate::release::JournalFile(dir.join("journal.json"))
        .read()
        .ok()??;
    let old = j.foreign.as_deref().unwrap_or("(none)");
    if crate::release::Store::new(dir.clone()).lock().is_err() {
        return Some(format!(
            "the replacement of `{old}` by tend's `{}` is under way (step `{}`)",
            j.into,
            j.step.as_str()
        ));
    }
    Some(format!(
        "the replacement of `{old}` by tend's `{}` was interrupted before step `{}`; run the same `tend import ... --install --replace` again: it puts `{old}` back first (its record and files are in `{}`)",
        j.into,
        j.step.as_str(),
        dir.display()
    ))
}

/// What `tend status NAME` says of an upgrade or rollback that a killed tend left
/// unfinished; `None` when there is none (or the store cannot be read: it is root's).
pub(crate) fn upgrade(name: &str, scope: Scope) -> Option<String> {
    let name = place::service_name(name).ok()?;
    let store = Store::new(place::place(scope, &name).ok()?.releases_dir());
    let j = store.journal().ok()??;
    // A change under way holds the lock: that one is not interrupted, only busy.
    if store.lock().is_err() {
        return Some(format!(
            "the {} of `{name}` is under way (step `{}`)",
            j.op,
            j.step.as_str()
        ));
    }
    Some(format!(
        "the {} of `{name}` ({} -> {}) was interrupted before step `{}`; `tend history{} {name}` \
         finishes it (undoes it, back to release {})",
        j.op,
        j.from,
        j.to,
        j.step.as_str(),
        scope.flag(),
        j.from
    ))
}

/// What `tend status` says of a change of tend's own binary (`tend upgrade --self`) that a
/// killed tend left unfinished, or that runs now; `None` when there is none.
pub(crate) fn host(scope: Scope) -> Option<String> {
    let dir = place::host_releases_dir(scope).ok()?;
    let j: serde_json::Value = crate::release::JournalFile(dir.join("host-journal.json"))
        .read()
        .ok()??;
    let field = |k: &str| j.get(k).and_then(serde_json::Value::as_str).unwrap_or("?");
    let (op, step, from) = (field("op"), field("step"), field("from"));
    if Store::new(dir.clone()).lock().is_err() {
        return Some(format!(
            "an {op} of tend itself is under way (step `{step}`): services are being restarted on it"
        ));
    }
    Some(format!(
        "an {op} of tend itself was interrupted before step `{step}`; `tend history --self{}` \
         finishes it (undoes it: tend release {from} back, the services moved restarted on it)",
        scope.flag()
    ))
}
