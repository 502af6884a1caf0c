//! The release store of `tend upgrade` (docs/upgrade.md): every release of a service's
//! program that tend put in place or found there, the journal of a change under way, and
//! the lock that keeps two changes of one service apart.
//!
//! ```text
//! <Layout::releases_dir>/            (0700, root's or the user's: as protected as the config copy)
//!   lock                             held (OS file lock) by the tend that changes the service
//!   journal.json                     only while an upgrade or rollback is under way
//!   <id>/release.json                what the release is, and what became of it
//!   <id>/program/<file>              the program file, as it was put in place
//!   <id>/app/                        a directory release's application directory, while it is
//!                                    not the one in place (docs/upgrade.md)
//!   <id>/config.toml                 a release's config copy, when the release has one
//! ```
//!
//! A release directory appears complete or not at all: it is written as `.<id>.tmp`, each
//! file flushed, and renamed. A program file is put in place the same way (a flushed copy
//! next to it, renamed over it), so there is never a half-copied program. A directory
//! release is in exactly one place, `<id>/app/` or the live application directory, and is
//! moved between them by renames on one volume (tend-core's `upgrade::app::moves`).

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tend_core::upgrade::{End, Step};

pub(crate) mod protect;
pub(crate) mod results;
pub(crate) mod swap;

/// What became of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum State {
    /// Complete in the store; not (yet) put in place.
    Staged,
    /// The one in place, verified (or found in place before the first upgrade).
    Current,
    /// Was current before the current one; `tend rollback` goes back to it.
    Previous,
    /// Put in place and failed its verification; rolled back.
    Failed,
    /// Staged, but the change stopped before the service was touched.
    Abandoned,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Staged => "staged",
            Self::Current => "current",
            Self::Previous => "previous",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
        }
    }
}

/// `<id>/release.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Release {
    /// `20261207T064512Z-ab12cd34`: when it was staged (UTC) and its hash, so ids sort by
    /// age and say which build they are.
    pub(crate) id: String,
    /// What kind of release: `program` (a program file), `app` (an application
    /// directory), `config` (a config), or `program+config`, `app+config`.
    pub(crate) kind: String,
    /// When it was staged (RFC 3339).
    pub(crate) created_at: String,
    /// Where it goes: the program file named by `command`.
    pub(crate) target: PathBuf,
    /// The file's name in `<id>/program/`.
    pub(crate) file: String,
    /// SHA-256 of the program file, hex.
    pub(crate) sha256: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// Where `tend upgrade` took it from; `None` for the file found in place.
    pub(crate) source: Option<PathBuf>,
    /// What became of it.
    pub(crate) state: State,
    /// Why it failed (or was abandoned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// Its last stderr lines when it failed by exiting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) stderr: Vec<String>,
    /// How long the service was down when it was put in place, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) downtime_ms: Option<u64>,
    /// When `state` last changed (RFC 3339).
    pub(crate) updated_at: String,
    /// The application directory it goes to (directory releases): the directory holding
    /// the program named by `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) app: Option<PathBuf>,
    /// SHA-256 over the application directory's files (names, modes, contents), without
    /// `[upgrade] preserve`'s: which build of the directory it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tree_sha256: Option<String>,
    /// SHA-256 of `<id>/config.toml`, when the release has a config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) config_sha256: Option<String>,
}

/// `journal.json`: the change under way. Written (durably) before each step, so the next
/// tend knows which step may have been cut short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Journal {
    /// `upgrade` or `rollback`.
    pub(crate) op: String,
    /// The release that ran before.
    pub(crate) from: String,
    /// The release being put in place.
    pub(crate) to: String,
    /// The step about to be done, or being done.
    pub(crate) step: Step,
    /// The tend that writes it.
    pub(crate) pid: u32,
    /// When the change began (RFC 3339).
    pub(crate) started_at: String,
    /// Why `to` failed, once it did (kept for the report after an interruption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// `to`'s last stderr lines, once it failed by exiting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) stderr: Vec<String>,
    /// How the change ended, written before the releases record it and the end is told:
    /// a journal with an end is a change that only has to be recorded and told (again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) end: Option<End>,
}

impl Journal {
    /// A change by this tend, beginning now at [`Step::Staged`].
    pub(crate) fn begin(op: &str, from: &str, to: &str) -> Self {
        Self {
            op: op.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            step: Step::Staged,
            pid: std::process::id(),
            started_at: crate::status::rfc3339(std::time::SystemTime::now()),
            reason: None,
            stderr: Vec::new(),
            end: None,
        }
    }
}

/// The journal file of a change (`journal.json` of a service's store and of a replacement,
/// `host-journal.json` of tend's own store): one format for all of them, pretty JSON only
/// its owner may read, written atomically and durably before each step, removed durably
/// at the end. What is in it is each change's own.
pub(crate) struct JournalFile(pub(crate) PathBuf);

impl JournalFile {
    /// The journal; `None` when there is none.
    pub(crate) fn read<T: serde::de::DeserializeOwned>(&self) -> io::Result<Option<T>> {
        match std::fs::read(&self.0) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("`{}` is not a journal: {e}", self.0.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn write<T: Serialize>(&self, j: &T) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(j).map_err(io::Error::other)?;
        tend_os::write_atomic(&self.0, &bytes, Some(0o600))
    }

    /// Removes it, and makes the removal durable: the change is over.
    pub(crate) fn remove(&self) -> io::Result<()> {
        match std::fs::remove_file(&self.0) {
            Ok(()) => sync_dir(self.0.parent().unwrap_or(Path::new("."))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// What a release is made of, for [`Store::stage_parts`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    /// The program file (`program/<file>`): the operator's, the one in a new application
    /// directory, or the one in place.
    pub(crate) program: &'a Path,
    /// A new application directory, copied whole as `app/`.
    pub(crate) app: Option<&'a Path>,
    /// The live application directory the release goes to (directory releases, also one
    /// found in place, whose directory is not copied: it is the live one).
    pub(crate) live: Option<&'a Path>,
    /// `[upgrade] preserve`: left out of the directory's hash.
    pub(crate) preserve: &'a [String],
    /// A config copy's text.
    pub(crate) config: Option<&'a str>,
    /// The program is the operator's new one (not the one in place, as for a config-only
    /// release).
    pub(crate) new_program: bool,
}

impl<'a> Parts<'a> {
    /// A program file only.
    pub(crate) fn program(program: &'a Path) -> Self {
        Self {
            program,
            app: None,
            live: None,
            preserve: &[],
            config: None,
            new_program: true,
        }
    }

    /// The release's `kind`.
    pub(crate) fn kind(&self) -> &'static str {
        match (self.live.is_some(), self.config.is_some(), self.new_program) {
            (true, true, _) => "app+config",
            (true, false, _) => "app",
            (false, true, true) => "program+config",
            (false, true, false) => "config",
            (false, false, _) => "program",
        }
    }
}

/// The store of one service.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub(crate) dir: PathBuf,
}

/// The held lock of a service's store: released when dropped (and by the OS when tend dies).
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// Why [`Store::open_locked`] failed.
#[derive(Debug)]
pub(crate) enum OpenError {
    Create(io::Error),
    Protect(io::Error),
    Lock(LockError),
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another tend holds it: its pid, as it wrote it.
    Busy(Option<u32>),
    Io(io::Error),
}

impl Store {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.json")
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// Creates the store's directory (0700: the releases are as protected as the config
    /// copy, and the journal decides what runs as the service).
    pub(crate) fn create(&self) -> io::Result<()> {
        create_private_dir(&self.dir)
    }

    /// Takes the lock, without waiting: a second upgrade must be told, not queued behind
    /// the first one's verification.
    pub(crate) fn lock(&self) -> Result<Lock, LockError> {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.lock_path())
            .map_err(LockError::Io)?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = f.read_to_string(&mut text);
                return Err(LockError::Busy(text.trim().parse().ok()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        // Who holds it, for the second tend's message. Not needed for the lock itself.
        let _ = f.set_len(0);
        let _ = f.write_all(std::process::id().to_string().as_bytes());
        Ok(Lock { _file: f })
    }

    /// The journal of a change under way; `None` when there is none.
    pub(crate) fn journal(&self) -> io::Result<Option<Journal>> {
        JournalFile(self.journal_path()).read()
    }

    /// Writes the journal durably (before the step it names is done).
    pub(crate) fn write_journal(&self, j: &Journal) -> io::Result<()> {
        JournalFile(self.journal_path()).write(j)
    }

    /// Removes the journal durably: the change is over.
    pub(crate) fn end_journal(&self) -> io::Result<()> {
        JournalFile(self.journal_path()).remove()
    }

    /// Every complete release, oldest first (ids sort by age).
    pub(crate) fn releases(&self) -> io::Result<Vec<Release>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            // `.<id>.tmp`: a release being staged, or one a killed tend left half-written.
            if name.starts_with('.') || !e.file_type()?.is_dir() {
                continue;
            }
            if let Some(r) = self.release(&name)? {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Release `id`; `None` when there is none.
    pub(crate) fn release(&self, id: &str) -> io::Result<Option<Release>> {
        match std::fs::read(self.dir.join(id).join("release.json")) {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records what became of a release (durably: history must not go back after a crash).
    pub(crate) fn save(&self, r: &Release) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(r).map_err(io::Error::other)?;
        tend_os::write_atomic(
            &self.dir.join(&r.id).join("release.json"),
            &bytes,
            Some(0o600),
        )
    }

    /// The program file of a release, in the store.
    pub(crate) fn program_file(&self, r: &Release) -> PathBuf {
        self.dir.join(&r.id).join("program").join(&r.file)
    }

    /// Copies `source` into the store as a new release for `target`, complete or not at
    /// all: written under `.<id>.tmp`, flushed, renamed to `<id>`. (The program form alone;
    /// the CLI stages every form with [`Store::stage_parts`].)
    #[cfg(test)]
    pub(crate) fn stage(
        &self,
        source: &Path,
        target: &Path,
        from_operator: bool,
        state: State,
    ) -> io::Result<Release> {
        self.stage_parts(
            &Parts::program(source),
            target,
            from_operator.then_some(source),
            state,
        )
    }

    /// The application directory of a release, while it is in the store.
    pub(crate) fn app_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("app")
    }

    /// The config copy of a release.
    pub(crate) fn config_file(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("config.toml")
    }

    /// Adds a config to a release that has none (the config in place when an upgrade with
    /// `--config` begins, so that undoing it puts that config back).
    pub(crate) fn add_config(&self, r: &mut Release, text: &str) -> io::Result<()> {
        tend_os::write_atomic(&self.config_file(&r.id), text.as_bytes(), Some(0o600))?;
        r.config_sha256 = Some(sha256_bytes(text.as_bytes()));
        if !r.kind.ends_with("config") {
            r.kind.push_str("+config");
        }
        self.save(r)
    }

    /// Stages a release of `parts` for `target`, complete or not at all: written under
    /// `.<id>.tmp`, each file flushed, renamed to `<id>`. `source`: what the operator
    /// gave (`None`: what was found in place).
    pub(crate) fn stage_parts(
        &self,
        parts: &Parts<'_>,
        target: &Path,
        source: Option<&Path>,
        state: State,
    ) -> io::Result<Release> {
        self.create()?;
        let sha256 = sha256_file(parts.program)?;
        let now = std::time::SystemTime::now();
        let stamp = chrono::DateTime::<chrono::Utc>::from(now)
            .format("%Y%m%dT%H%M%SZ")
            .to_string();
        let mut id = format!("{stamp}-{}", &sha256[..8]);
        let mut n = 2;
        while self.dir.join(&id).exists() {
            id = format!("{stamp}-{}-{n}", &sha256[..8]);
            n += 1;
        }
        let file = target.file_name().map_or_else(
            || "program".to_owned(),
            |f| f.to_string_lossy().into_owned(),
        );
        let tmp = self.dir.join(format!(".{id}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        create_private_dir(&tmp)?;
        create_private_dir(&tmp.join("program"))?;
        let size = copy_durably(
            parts.program,
            &tmp.join("program").join(&file),
            parts.program,
        )?;
        let mut tree_sha256 = None;
        if let Some(live) = parts.live {
            // The build's files get the owner of the directory they replace (the service's
            // account may own it); their modes are the build's.
            let owner = owner_of(live);
            match parts.app {
                Some(app) => {
                    tree_sha256 = Some(tree_sha256_of(app, parts.preserve)?);
                    copy_tree(app, &tmp.join("app"), owner)?;
                }
                None => tree_sha256 = Some(tree_sha256_of(live, parts.preserve)?),
            }
        }
        let mut config_sha256 = None;
        if let Some(text) = parts.config {
            tend_os::write_atomic(&tmp.join("config.toml"), text.as_bytes(), Some(0o600))?;
            config_sha256 = Some(sha256_bytes(text.as_bytes()));
        }
        let at = crate::status::rfc3339(now);
        let release = Release {
            id: id.clone(),
            kind: parts.kind().to_owned(),
            created_at: at.clone(),
            target: target.to_owned(),
            file,
            sha256,
            size,
            source: source.map(Path::to_owned),
            state,
            reason: None,
            stderr: Vec::new(),
            downtime_ms: None,
            updated_at: at,
            app: parts.live.map(Path::to_owned),
            tree_sha256,
            config_sha256,
        };
        let bytes = serde_json::to_vec_pretty(&release).map_err(io::Error::other)?;
        tend_os::write_atomic(&tmp.join("release.json"), &bytes, Some(0o600))?;
        sync_dir(&tmp.join("program"))?;
        sync_dir(&tmp)?;
        std::fs::rename(&tmp, self.dir.join(&id))?;
        sync_dir(&self.dir)?;
        Ok(release)
    }

    /// Removes a release from the store (`[upgrade] keep`).
    pub(crate) fn remove(&self, id: &str) -> io::Result<()> {
        std::fs::remove_dir_all(self.dir.join(id))
    }

    /// Creates the store (`system`: with the protected DACL of a system service's store on
    /// Windows) and takes its lock; what a killed tend left half-staged goes.
    pub(crate) fn open_locked(&self, system: bool) -> Result<Lock, OpenError> {
        self.create().map_err(OpenError::Create)?;
        if system {
            protect::system_store(&self.dir).map_err(OpenError::Protect)?;
        }
        let lock = self.lock().map_err(OpenError::Lock)?;
        self.sweep();
        Ok(lock)
    }

    /// The release in place at `target`: the newest current release whose program is the
    /// file there (`live`: its SHA-256); else that file is recorded now as the current
    /// release (made of `parts`; the first upgrade, or a file replaced by hand since) and the
    /// releases that were current become previous. `true` with a release recorded now.
    pub(crate) fn in_place(
        &self,
        target: &Path,
        live: &str,
        parts: &Parts<'_>,
    ) -> io::Result<(Release, bool)> {
        let releases = self.releases()?;
        if let Some(r) = releases
            .iter()
            .rev()
            .find(|r| r.state == State::Current && r.sha256 == live)
        {
            return Ok((r.clone(), false));
        }
        for mut r in releases.into_iter().filter(|r| r.state == State::Current) {
            r.state = State::Previous;
            self.save_now(&mut r)?;
        }
        Ok((self.stage_parts(parts, target, None, State::Current)?, true))
    }

    /// Release `id`, which must be there.
    pub(crate) fn get(&self, id: &str) -> io::Result<Release> {
        self.release(id)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("release `{id}` is missing from `{}`", self.dir.display()),
            )
        })
    }

    /// [`save`](Self::save), stamped now.
    pub(crate) fn save_now(&self, r: &mut Release) -> io::Result<()> {
        r.updated_at = crate::status::rfc3339(std::time::SystemTime::now());
        self.save(r)
    }

    /// Records how the change from release `from` to `to` ended (their states; `to`'s
    /// reason and last stderr lines when it failed, its downtime when it is in place), then
    /// keeps the newest `keep` releases, and always the current one and the newest previous
    /// one (what a rollback goes back to). A release that cannot be removed is said on
    /// stderr: pruning never fails a change.
    pub(crate) fn record_end(
        &self,
        from: &str,
        to: &str,
        end: End,
        failed: (Option<&str>, &[String]),
        downtime: Option<std::time::Duration>,
        keep: usize,
    ) -> io::Result<()> {
        let (from_state, to_state) = states_after(end);
        if let Ok(Some(mut r)) = self.release(to) {
            r.state = to_state;
            if to_state == State::Current {
                r.reason = None;
                r.stderr.clear();
                r.downtime_ms = downtime.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            } else {
                r.reason = failed.0.map(str::to_owned);
                r.stderr = failed.1.to_vec();
            }
            self.save_now(&mut r)?;
        }
        if let Ok(Some(mut r)) = self.release(from) {
            r.state = from_state;
            self.save_now(&mut r)?;
        }
        let releases = self.releases()?;
        let newest_previous = releases
            .iter()
            .rev()
            .find(|r| r.state == State::Previous)
            .map(|r| r.id.clone());
        let n = releases.len();
        for (i, r) in releases.iter().enumerate() {
            if i + keep >= n || r.state == State::Current || Some(&r.id) == newest_previous.as_ref()
            {
                continue;
            }
            if let Err(e) = self.remove(&r.id) {
                let _ = writeln!(
                    io::stderr(),
                    "warning: cannot remove old release {}: {e}",
                    r.id
                );
            }
        }
        Ok(())
    }

    /// Removes what a killed tend left half-staged (`.<id>.tmp`).
    pub(crate) fn sweep(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with('.') && n.ends_with(".tmp") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// Puts release `r`'s program file in place at its target: a flushed copy next to the
/// target, renamed over it, so a reader (or a start) sees the old file or the new one (a
/// file Windows will not replace because it is in use is moved aside first: [`swap`]). The
/// new file gets the old one's permissions (and owner, on Unix): the service's account
/// must still be allowed to run it.
pub(crate) fn put_in_place(store: &Store, r: &Release) -> io::Result<()> {
    let target = &r.target;
    // Already in place (an undo step done again after an interruption): nothing to do.
    if sha256_file(target).is_ok_and(|s| s == r.sha256) {
        return Ok(());
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tend-new.{}", r.file, std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let like = if target.exists() {
        target.clone()
    } else {
        store.program_file(r)
    };
    let result = copy_durably(&store.program_file(r), &tmp, &like)
        .and_then(|_| swap::replace(&tmp, target, &store.dir, swap::IN_USE_WAIT));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// Puts release `wanted`'s application directory in place at `live`, from whatever state
/// a swap (or a cut-short one) left: the renames are tend-core's `upgrade::app::moves`.
/// `other`: the release the change comes from or goes to (the live directory becomes its
/// `app/`). `carry`: before the renames, `preserve`'s paths are copied from the live
/// directory into the wanted one (a forward swap; an undo puts the old directory back as
/// it was at the stop). Returns whether anything moved.
pub(crate) fn put_app_in_place(
    store: &Store,
    live: &Path,
    wanted: &Release,
    other: Option<&Release>,
    carry: Option<&[String]>,
) -> io::Result<bool> {
    use tend_core::upgrade::app::{Move, Problem, moves};
    let wanted_dir = store.app_dir(&wanted.id);
    let other_dir = other.map(|o| store.app_dir(&o.id));
    let live_meta = std::fs::symlink_metadata(live).ok();
    let plan = moves(
        live_meta.is_some(),
        wanted_dir.is_dir(),
        other_dir.as_ref().is_some_and(|d| d.is_dir()),
    )
    .map_err(|p| match p {
        Problem::Missing => io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "release {}'s directory is neither in place at `{}` nor in the store",
                wanted.id,
                live.display()
            ),
        ),
        Problem::Unknown => io::Error::other(format!(
            "`{}` is neither release {} nor {}: it was replaced by hand; tend leaves it alone",
            live.display(),
            wanted.id,
            other.map_or("?", |o| o.id.as_str())
        )),
    })?;
    if plan.is_empty() {
        return Ok(false);
    }
    if let (Some(preserve), Some(_)) = (carry, &live_meta) {
        carry_preserved(live, &wanted_dir, preserve)?;
    }
    // The directory in place keeps the old one's mode and owner: the service's account
    // must reach it as before. Read before the live one moves.
    let like = live_meta.or_else(|| {
        other_dir
            .as_ref()
            .and_then(|d| std::fs::symlink_metadata(d).ok())
    });
    let parent = live.parent().unwrap_or(Path::new("/"));
    for m in plan {
        match m {
            Move::LiveToStore => {
                let to = other_dir.as_ref().ok_or_else(|| {
                    io::Error::other("no release to move the directory in place to")
                })?;
                swap::rename_dir(live, to, swap::IN_USE_WAIT)?;
                sync_dir(parent)?;
                sync_dir(to.parent().unwrap_or(&store.dir))?;
                pause_between_renames();
            }
            Move::StoreToLive => {
                if let Some(m) = &like {
                    set_like(&wanted_dir, m)?;
                }
                swap::rename_dir(&wanted_dir, live, swap::IN_USE_WAIT)?;
                sync_dir(parent)?;
                sync_dir(&store.dir.join(&wanted.id))?;
            }
        }
    }
    Ok(true)
}

/// The test hook of docs/upgrade.md ("Testing") in the middle of a directory swap:
/// `TEND_UPGRADE_PAUSE=app-moved` stops tend for good once the live directory went into
/// the store and before the new one came in (the live path is empty), so a test can kill
/// it there.
fn pause_between_renames() {
    if std::env::var("TEND_UPGRADE_PAUSE").is_ok_and(|v| v == "app-moved") {
        let _ = writeln!(
            io::stderr(),
            "paused before step `app-moved` (TEND_UPGRADE_PAUSE; tend pid {})",
            std::process::id()
        );
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Copies each of `preserve`'s paths that exists in `live` into `staged` (replacing what
/// the build has there), with owners and modes: data the service's account wrote stays its.
fn carry_preserved(live: &Path, staged: &Path, preserve: &[String]) -> io::Result<()> {
    for p in preserve {
        // Through a link, a path would read (or, as root, write) outside the directories:
        // the live one's links may be the service account's making. A link at the path
        // itself is copied as a link.
        for base in [live, staged] {
            let mut at = base.to_owned();
            let parts: Vec<_> = Path::new(p).components().collect();
            for c in &parts[..parts.len().saturating_sub(1)] {
                at.push(c);
                if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "[upgrade] preserve path `{p}` goes through the symbolic link `{}`; \
                             tend carries only paths inside the application directory",
                            at.display()
                        ),
                    ));
                }
            }
        }
        let src = live.join(p);
        if std::fs::symlink_metadata(&src).is_err() {
            continue;
        }
        let dst = staged.join(p);
        match std::fs::symlink_metadata(&dst) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dst)?,
            Ok(_) => std::fs::remove_file(&dst)?,
            Err(_) => {}
        }
        if let Some(d) = dst.parent() {
            std::fs::create_dir_all(d)?;
        }
        copy_tree(&src, &dst, None)?;
        sync_dir(dst.parent().unwrap_or(staged))?;
    }
    Ok(())
}

/// Gives `dir` the mode (and owner, as root on Unix) of `meta`.
fn set_like(dir: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    std::fs::set_permissions(dir, meta.permissions())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::lchown(dir, Some(meta.uid()), Some(meta.gid()))?;
        }
    }
    Ok(())
}

/// A file's owner (uid, gid), to give to copies: only as root (only root may give a file
/// away) and on Unix.
type Owner = Option<(u32, u32)>;

fn owner_of(path: &Path) -> Owner {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if nix::unistd::geteuid().is_root() {
            return std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()));
        }
    }
    let _ = path;
    None
}

/// Copies the file, directory or symbolic link `src` to the new `dst`, recursively, each
/// file and directory flushed: modes are `src`'s; owners `owner`'s, or `src`'s (as root)
/// when `None`. Anything but files, directories and links is refused.
pub(crate) fn copy_tree(src: &Path, dst: &Path, owner: Owner) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    let ft = meta.file_type();
    #[cfg(unix)]
    let keep = {
        use std::os::unix::fs::MetadataExt as _;
        nix::unistd::geteuid()
            .is_root()
            .then(|| owner.unwrap_or((meta.uid(), meta.gid())))
    };
    if ft.is_symlink() {
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
            if let Some((u, g)) = keep {
                std::os::unix::fs::lchown(dst, Some(u), Some(g))?;
            }
            return Ok(());
        }
        // Windows: a link is copied as what it points to.
        #[cfg(not(unix))]
        return copy_tree_followed(src, dst, owner);
    }
    if ft.is_dir() {
        std::fs::create_dir(dst)?;
        let mut names: Vec<_> = std::fs::read_dir(src)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for n in names {
            copy_tree(&src.join(&n), &dst.join(&n), owner)?;
        }
        std::fs::set_permissions(dst, meta.permissions())?;
        #[cfg(unix)]
        if let Some((u, g)) = keep {
            std::os::unix::fs::lchown(dst, Some(u), Some(g))?;
        }
        return sync_dir(dst);
    }
    if ft.is_file() {
        let mut from = File::open(src)?;
        let mut to = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dst)?;
        io::copy(&mut from, &mut to)?;
        to.set_permissions(meta.permissions())?;
        #[cfg(unix)]
        if let Some((u, g)) = keep {
            std::os::unix::fs::fchown(&to, Some(u), Some(g))?;
        }
        return to.sync_all();
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "`{}` is not a file, directory or symbolic link; tend copies only those",
            src.display()
        ),
    ))
}

#[cfg(not(unix))]
fn copy_tree_followed(src: &Path, dst: &Path, owner: Owner) -> io::Result<()> {
    let meta = std::fs::metadata(src)?;
    if meta.is_dir() {
        std::fs::create_dir(dst)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()), owner)?;
        }
        Ok(())
    } else {
        std::fs::copy(src, dst).map(|_| ())
    }
}

/// SHA-256 over a directory's entries, sorted by path: each one's relative path, kind,
/// mode (Unix) and content (a file's SHA-256, a link's target). `preserve`'s paths are
/// left out: they are the running release's data, not the build.
pub(crate) fn tree_sha256_of(dir: &Path, preserve: &[String]) -> io::Result<String> {
    fn walk(
        root: &Path,
        rel: &str,
        preserve: &[String],
        ctx: &mut ring::digest::Context,
    ) -> io::Result<()> {
        let path = if rel.is_empty() {
            root.to_owned()
        } else {
            root.join(rel)
        };
        let mut names: Vec<String> = std::fs::read_dir(&path)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for n in names {
            let r = if rel.is_empty() {
                n.clone()
            } else {
                format!("{rel}/{n}")
            };
            if tend_core::upgrade::app::preserved(&r, preserve) {
                continue;
            }
            let p = root.join(&r);
            let meta = std::fs::symlink_metadata(&p)?;
            #[cfg(unix)]
            let mode = {
                use std::os::unix::fs::PermissionsExt as _;
                meta.permissions().mode() & 0o7777
            };
            #[cfg(not(unix))]
            let mode = u32::from(meta.permissions().readonly());
            let ft = meta.file_type();
            let (kind, content) = if ft.is_symlink() {
                ("l", std::fs::read_link(&p)?.to_string_lossy().into_owned())
            } else if ft.is_dir() {
                ("d", String::new())
            } else {
                ("f", sha256_file(&p)?)
            };
            ctx.update(format!("{r}\0{kind}\0{mode:o}\0{content}\n").as_bytes());
            if ft.is_dir() {
                walk(root, &r, preserve, ctx)?;
            }
        }
        Ok(())
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    walk(dir, "", preserve, &mut ctx)?;
    Ok(hex(ctx.finish().as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of bytes, hex.
pub(crate) fn sha256_bytes(b: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
}

/// Whether two paths are on one volume (Unix: the same device), so that a directory can
/// be renamed from one to the other. `b` may not exist yet: its nearest existing ancestor
/// counts. Elsewhere `true` (Windows: a rename across volumes fails, and the swap with it,
/// before anything moved).
pub(crate) fn same_volume(a: &Path, b: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let mut bb = b;
        let mb = loop {
            match std::fs::metadata(bb) {
                Ok(m) => break m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    bb = bb.parent().ok_or(e)?;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(std::fs::metadata(a)?.dev() == mb.dev())
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        Ok(true)
    }
}

/// What `tend upgrade` refuses before it touches anything: a file that is missing, not a
/// regular file, not a program this OS can run, or not executable.
pub(crate) fn check_runnable(file: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(file).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => "does not exist".to_owned(),
        _ => format!("cannot be read: {e}"),
    })?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let mut head = [0u8; 4];
    let n = File::open(file)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| format!("cannot be read: {e}"))?;
    if !is_runnable_here(&head[..n]) {
        return Err(format!(
            "is not a program this OS can run (expected {}, found {})",
            if cfg!(windows) {
                "a PE executable (MZ)"
            } else if cfg!(target_os = "macos") {
                "a Mach-O executable or a #! script"
            } else {
                "an ELF executable or a #! script"
            },
            describe_magic(&head[..n])
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err("is not executable (chmod +x it)".into());
        }
    }
    Ok(())
}

/// Whether a file starting with `head` is a program of this OS.
pub(crate) fn is_runnable_here(head: &[u8]) -> bool {
    if cfg!(windows) {
        head.starts_with(b"MZ")
    } else if cfg!(target_os = "macos") {
        head.starts_with(b"#!")
            || [
                [0xfe, 0xed, 0xfa, 0xcf],
                [0xcf, 0xfa, 0xed, 0xfe],
                [0xca, 0xfe, 0xba, 0xbe],
                [0xfe, 0xed, 0xfa, 0xce],
                [0xce, 0xfa, 0xed, 0xfe],
            ]
            .iter()
            .any(|m| head.starts_with(m))
    } else {
        head.starts_with(b"\x7fELF") || head.starts_with(b"#!")
    }
}

fn describe_magic(head: &[u8]) -> String {
    if head.starts_with(b"MZ") {
        "a Windows PE file".into()
    } else if head.starts_with(b"\x7fELF") {
        "a Linux ELF file".into()
    } else if head.is_empty() {
        "an empty file".into()
    } else {
        format!(
            "bytes {}",
            head.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
}

/// Whether tend can create files in `dir` (the program's directory): tried, not guessed
/// from modes, since ACLs, read-only mounts and immutable flags all decide too.
pub(crate) fn check_writable(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!(".tend-upgrade-check.{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("tend cannot write in `{}`: {e}", dir.display())),
    }
}

/// SHA-256 of a file, hex.
pub(crate) fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(hex(ctx.finish().as_ref()))
}

/// Copies `from` to the new file `to` and flushes it; `to` gets `like`'s permissions (and
/// owner on Unix). Returns the size.
fn copy_durably(from: &Path, to: &Path, like: &Path) -> io::Result<u64> {
    let mut src = File::open(from)?;
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let n = io::copy(&mut src, &mut dst)?;
    let meta = std::fs::metadata(like)?;
    dst.set_permissions(meta.permissions())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        // Only root may give a file away; a user's own files are already the user's.
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::fchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        }
    }
    dst.sync_all()?;
    Ok(n)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }
    // Windows: the directory inherits %ProgramData%\tend's (or the user's) ACL, which the
    // install already restricts.
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Flushes a directory, so a rename or removal in it survives a crash (Unix; NTFS
/// journals them).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    let _ = dir;
    Ok(())
}

/// The state a release takes when a change ends so, for (`from`, `to`).
pub(crate) fn states_after(end: End) -> (State, State) {
    match end {
        End::Upgraded => (State::Previous, State::Current),
        End::Abandoned => (State::Current, State::Abandoned),
        End::RolledBack | End::Broken => (State::Current, State::Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_of_this_os() {
        let elf = b"\x7fELF";
        let pe = b"MZ\x90\x00";
        if cfg!(windows) {
            assert!(is_runnable_here(pe) && !is_runnable_here(elf));
        } else if cfg!(target_os = "linux") {
            assert!(is_runnable_here(elf) && is_runnable_here(b"#!/b"));
            assert!(!is_runnable_here(pe) && !is_runnable_here(b""));
        }
        assert_eq!(describe_magic(pe), "a Windows PE file");
        assert_eq!(describe_magic(b"ab"), "bytes 61 62");
    }

    #[test]
    fn a_staged_release_is_complete_and_put_in_place_with_the_old_mode() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir(&app).unwrap();
        let target = app.join("api");
        std::fs::write(&target, b"#!/bin/sh\necho old\n").unwrap();
        let new = dir.path().join("api-new");
        std::fs::write(&new, b"#!/bin/sh\necho new\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o751)).unwrap();
            std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let store = Store::new(dir.path().join("releases"));
        let r = store.stage(&new, &target, true, State::Staged).unwrap();
        assert_eq!(r.sha256, sha256_file(&new).unwrap());
        assert_eq!(r.size, 19);
        assert_eq!(store.releases().unwrap(), std::slice::from_ref(&r));
        assert!(
            !dir.path()
                .join("releases")
                .join(format!(".{}.tmp", r.id))
                .exists()
        );

        put_in_place(&store, &r).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"#!/bin/sh\necho new\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o751, "the old file's mode, not the source's");
        }
        // No leftovers next to the program.
        let names: Vec<_> = std::fs::read_dir(&app)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["api"]);
        // Again: already in place.
        put_in_place(&store, &r).unwrap();
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    fn chmod(p: &Path, m: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    /// The directory form: a build staged whole, swapped in with `preserve` carried over
    /// and the old directory's mode, swapped back by the undo, and put back from the state
    /// a crash between the two renames leaves.
    #[test]
    fn an_application_directory_is_swapped_by_renames_and_back() {
        let d = tempfile::tempdir().unwrap();
        let live = d.path().join("opt/api");
        std::fs::create_dir_all(live.join("data")).unwrap();
        std::fs::create_dir_all(live.join("lib")).unwrap();
        std::fs::write(live.join("api"), b"#!/bin/sh\necho v1\n").unwrap();
        std::fs::write(live.join("lib/old.so"), b"v1").unwrap();
        std::fs::write(live.join("data/db"), b"the data").unwrap();
        #[cfg(unix)]
        chmod(&live.join("api"), 0o751);
        #[cfg(unix)]
        chmod(&live.join("data/db"), 0o600);
        #[cfg(unix)]
        chmod(&live, 0o750);
        let build = d.path().join("build");
        std::fs::create_dir_all(build.join("data")).unwrap();
        std::fs::create_dir_all(build.join("lib")).unwrap();
        std::fs::write(build.join("api"), b"#!/bin/sh\necho v2\n").unwrap();
        std::fs::write(build.join("lib/new.so"), b"v2").unwrap();
        std::fs::write(build.join("data/shipped"), b"default").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("new.so", build.join("lib/current.so")).unwrap();
        #[cfg(unix)]
        chmod(&build.join("api"), 0o755);
        #[cfg(unix)]
        chmod(&build.join("lib/new.so"), 0o640);
        #[cfg(unix)]
        chmod(&build, 0o777);
        let preserve = vec!["data".to_owned()];
        let store = Store::new(d.path().join("releases"));
        let target = live.join("api");
        let from = store
            .stage_parts(
                &Parts {
                    live: Some(&live),
                    preserve: &preserve,
                    new_program: false,
                    ..Parts::program(&target)
                },
                &target,
                None,
                State::Current,
            )
            .unwrap();
        assert_eq!(from.kind, "app");
        assert!(
            !store.app_dir(&from.id).exists(),
            "the one in place is not copied"
        );
        let to = store
            .stage_parts(
                &Parts {
                    app: Some(&build),
                    live: Some(&live),
                    preserve: &preserve,
                    ..Parts::program(&build.join("api"))
                },
                &target,
                Some(&build),
                State::Staged,
            )
            .unwrap();
        assert_eq!(to.kind, "app");
        #[cfg(unix)]
        assert_eq!(mode(&store.app_dir(&to.id).join("lib/new.so")), 0o640);

        assert!(put_app_in_place(&store, &live, &to, Some(&from), Some(&preserve)).unwrap());
        assert_eq!(
            std::fs::read(live.join("api")).unwrap(),
            b"#!/bin/sh\necho v2\n"
        );
        assert_eq!(std::fs::read(live.join("data/db")).unwrap(), b"the data");
        assert!(
            !live.join("data/shipped").exists(),
            "preserve replaces the build's copy"
        );
        assert!(!live.join("lib/old.so").exists());
        #[cfg(unix)]
        assert_eq!(
            std::fs::read_link(live.join("lib/current.so")).unwrap(),
            Path::new("new.so")
        );
        #[cfg(unix)]
        assert_eq!(mode(&live), 0o750, "the old directory's mode");
        #[cfg(unix)]
        assert_eq!(mode(&live.join("api")), 0o755, "the build's file modes");
        #[cfg(unix)]
        assert_eq!(mode(&live.join("data/db")), 0o600);
        assert_eq!(
            tree_sha256_of(&live, &preserve).unwrap(),
            to.tree_sha256.clone().unwrap()
        );
        assert!(store.app_dir(&from.id).join("lib/old.so").exists());
        assert!(!store.app_dir(&to.id).exists());
        // Done again (an interrupted swap redone): nothing moves.
        assert!(!put_app_in_place(&store, &live, &to, Some(&from), Some(&preserve)).unwrap());

        // The undo: the old directory as it was at the stop.
        std::fs::write(live.join("data/db"), b"written by v2").unwrap();
        assert!(put_app_in_place(&store, &live, &from, Some(&to), None).unwrap());
        assert_eq!(
            std::fs::read(live.join("api")).unwrap(),
            b"#!/bin/sh\necho v1\n"
        );
        assert_eq!(std::fs::read(live.join("data/db")).unwrap(), b"the data");
        assert!(store.app_dir(&to.id).join("lib/new.so").exists());

        // Killed between the two renames of a swap: the live path is empty.
        std::fs::rename(&live, store.app_dir(&from.id)).unwrap();
        assert!(put_app_in_place(&store, &live, &from, Some(&to), None).unwrap());
        assert_eq!(
            std::fs::read(live.join("api")).unwrap(),
            b"#!/bin/sh\necho v1\n"
        );
        assert!(!store.app_dir(&from.id).exists());

        // A directory put there by hand while both are in the store: left alone.
        std::fs::rename(&live, store.app_dir(&from.id)).unwrap();
        std::fs::create_dir(&live).unwrap();
        let e = put_app_in_place(&store, &live, &from, Some(&to), None).unwrap_err();
        assert!(e.to_string().contains("replaced by hand"), "{e}");
    }

    /// A `preserve` path through a link (the service's account may make one in the live
    /// directory) is refused, not followed.
    #[cfg(unix)]
    #[test]
    fn preserve_does_not_follow_links() {
        let d = tempfile::tempdir().unwrap();
        let (live, staged, elsewhere) = (
            d.path().join("live"),
            d.path().join("staged"),
            d.path().join("elsewhere"),
        );
        for dir in [&live, &staged, &elsewhere] {
            std::fs::create_dir(dir).unwrap();
        }
        std::fs::write(elsewhere.join("secret"), b"x").unwrap();
        std::os::unix::fs::symlink(&elsewhere, live.join("data")).unwrap();
        let e = carry_preserved(&live, &staged, &["data/secret".to_owned()]).unwrap_err();
        assert!(
            e.to_string().contains("goes through the symbolic link"),
            "{e}"
        );
        assert!(!staged.join("data").exists());
        // The link itself is carried as a link.
        carry_preserved(&live, &staged, &["data".to_owned()]).unwrap();
        assert!(
            std::fs::symlink_metadata(staged.join("data"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_release_with_a_config_says_so() {
        let d = tempfile::tempdir().unwrap();
        let prog = d.path().join("api");
        std::fs::write(&prog, b"#!/bin/sh\n").unwrap();
        let store = Store::new(d.path().join("r"));
        let r = store
            .stage_parts(
                &Parts {
                    config: Some("name = 'api'\n"),
                    new_program: false,
                    ..Parts::program(&prog)
                },
                &prog,
                None,
                State::Staged,
            )
            .unwrap();
        assert_eq!(r.kind, "config");
        assert_eq!(
            std::fs::read_to_string(store.config_file(&r.id)).unwrap(),
            "name = 'api'\n"
        );
        assert_eq!(r.config_sha256, Some(sha256_bytes(b"name = 'api'\n")));
        let mut p = store.stage(&prog, &prog, true, State::Current).unwrap();
        store.add_config(&mut p, "x = 1\n").unwrap();
        assert_eq!(
            store.release(&p.id).unwrap().unwrap().kind,
            "program+config"
        );
    }

    #[test]
    fn the_lock_keeps_a_second_holder_out_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("r"));
        store.create().unwrap();
        let held = store.lock().unwrap();
        match store.lock() {
            Err(LockError::Busy(pid)) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(held);
        store.lock().unwrap();
    }

    #[test]
    fn journal_round_trip_and_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_owned());
        assert_eq!(store.journal().unwrap(), None);
        let j = Journal {
            op: "upgrade".into(),
            from: "a".into(),
            to: "b".into(),
            step: Step::Swap,
            pid: 1,
            started_at: "now".into(),
            reason: None,
            stderr: vec![],
            end: Some(End::Broken),
        };
        store.write_journal(&j).unwrap();
        assert_eq!(store.journal().unwrap(), Some(j));
        store.end_journal().unwrap();
        assert_eq!(store.journal().unwrap(), None);
        store.end_journal().unwrap();
    }
}
