//! Shared by the integration tests: the tricky inputs and the snapshot/tool helpers.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tend_core::{Account, Hardening, ServiceName, StartMode};
use tend_os::launchd::PlistInput;
use tend_os::systemd::UnitInput;
use tend_os::{Scope, UserContext};

pub fn name(s: &str) -> ServiceName {
    ServiceName::new(s).unwrap()
}

/// A user whose home has a space, a quote, `&`, `%`, `$` and non-ASCII in it.
pub fn user() -> Scope {
    Scope::User(UserContext::new(501, "/home/Ann O'Neil & Co 100% $x ünï"))
}

pub fn ann() -> Account {
    Account::User {
        name: "ann".to_owned(),
        password_env: None,
    }
}

/// One snapshot case: the file name under tests/snapshots and the input.
pub struct UnitCase {
    pub file: &'static str,
    pub input: UnitInput,
}

pub struct PlistCase {
    pub file: &'static str,
    pub input: PlistInput,
}

fn unit(
    name_: &str,
    tend: &str,
    scope: Scope,
    description: &str,
    start: StartMode,
    account: Account,
) -> UnitInput {
    UnitInput {
        tend_path: tend.into(),
        name: name(name_),
        scope,
        description: description.to_owned(),
        start,
        depends_on: Vec::new(),
        account,
        stop_timeout: Duration::from_secs(10),
        watchdog: None,
        hardening: Hardening::Basic,
        dumps: false,
    }
}

/// Every start mode in both scopes, every account a scope accepts, and the awkward
/// characters: spaces, quotes, `%`, `$`, backslashes, newlines and non-ASCII.
pub fn unit_cases() -> Vec<UnitCase> {
    vec![
        UnitCase {
            file: "system-auto-isolated.service",
            input: unit(
                "web",
                "/usr/local/bin/tend",
                Scope::system(),
                "Web API",
                StartMode::Auto,
                Account::Isolated,
            ),
        },
        UnitCase {
            file: "system-auto-isolated-strict.service",
            input: UnitInput {
                hardening: Hardening::Strict,
                ..unit(
                    "web",
                    "/usr/local/bin/tend",
                    Scope::system(),
                    "Web API",
                    StartMode::Auto,
                    Account::Isolated,
                )
            },
        },
        UnitCase {
            file: "system-auto-isolated-dumps.service",
            input: UnitInput {
                dumps: true,
                ..unit(
                    "web",
                    "/usr/local/bin/tend",
                    Scope::system(),
                    "Web API, [diagnostics] dumps = true",
                    StartMode::Auto,
                    Account::Isolated,
                )
            },
        },
        UnitCase {
            file: "system-manual-root-strict.service",
            input: UnitInput {
                hardening: Hardening::Strict,
                ..unit(
                    "cron-like",
                    "/usr/local/bin/tend",
                    Scope::system(),
                    "Root, strict",
                    StartMode::Manual,
                    Account::System,
                )
            },
        },
        UnitCase {
            file: "user-auto-strict.service",
            input: UnitInput {
                hardening: Hardening::Strict,
                ..unit(
                    "notes2",
                    "/usr/bin/tend",
                    user(),
                    "",
                    StartMode::Auto,
                    Account::Isolated,
                )
            },
        },
        UnitCase {
            file: "system-delayed-auto-user.service",
            input: UnitInput {
                depends_on: vec![
                    "postgresql".into(),
                    "redis-server.service".into(),
                    "api.v2".into(),
                    "pg@15-main".into(),
                ],
                stop_timeout: Duration::from_millis(500),
                ..unit(
                    "worker.v2",
                    "/opt/my tools/tend",
                    Scope::system(),
                    "Worker %n: 100% \"quoted\" 'single' $HOME ${PATH} \\back\\slash",
                    StartMode::DelayedAuto,
                    ann(),
                )
            },
        },
        UnitCase {
            file: "system-manual-root.service",
            input: unit(
                "cache_1",
                "/opt/ünï cödé/100% $x/tend",
                Scope::system(),
                "  Übersetzungsdienst ✓ — naïve\nsecond line\tand tab  ",
                StartMode::Manual,
                Account::System,
            ),
        },
        UnitCase {
            file: "system-disabled-isolated.service",
            input: UnitInput {
                watchdog: Some(Duration::from_secs(30)),
                stop_timeout: Duration::from_secs(90),
                ..unit(
                    "legacy-job",
                    "/usr/local/bin/tend",
                    Scope::system(),
                    "ends with a backslash \\",
                    StartMode::Disabled,
                    Account::Isolated,
                )
            },
        },
        UnitCase {
            file: "user-auto.service",
            input: unit(
                "notes",
                "/home/ann/.cargo/bin/tend",
                user(),
                "",
                StartMode::Auto,
                Account::Isolated,
            ),
        },
        UnitCase {
            file: "user-delayed-auto.service",
            input: UnitInput {
                depends_on: vec!["pipewire".into()],
                ..unit(
                    "sync",
                    "/home/ann/my bin/tend",
                    user(),
                    "Sync % $ \" ' \\ ✓",
                    StartMode::DelayedAuto,
                    Account::Isolated,
                )
            },
        },
        UnitCase {
            file: "user-manual.service",
            input: unit(
                "dev-server",
                "/usr/bin/tend",
                user(),
                "Dev server",
                StartMode::Manual,
                Account::Isolated,
            ),
        },
        UnitCase {
            file: "user-disabled.service",
            input: unit(
                "old",
                "/usr/bin/tend",
                user(),
                "Old",
                StartMode::Disabled,
                Account::Isolated,
            ),
        },
    ]
}

fn plist(name_: &str, tend: &str, scope: Scope, start: StartMode, account: Account) -> PlistInput {
    PlistInput {
        tend_path: tend.into(),
        name: name(name_),
        scope,
        start,
        account,
        stop_timeout: Duration::from_secs(10),
        depends_on: Vec::new(),
    }
}

pub fn plist_cases() -> Vec<PlistCase> {
    vec![
        PlistCase {
            file: "system-auto-root.plist",
            input: plist(
                "web",
                "/usr/local/bin/tend",
                Scope::system(),
                StartMode::Auto,
                Account::System,
            ),
        },
        PlistCase {
            file: "system-delayed-auto-user.plist",
            input: PlistInput {
                stop_timeout: Duration::from_millis(2500),
                ..plist(
                    "worker.v2",
                    "/Applications/My & <Tools> \"100%\" 'q' $x ünï/tend",
                    Scope::system(),
                    StartMode::DelayedAuto,
                    ann(),
                )
            },
        },
        PlistCase {
            file: "system-manual-user.plist",
            input: plist(
                "cache_1",
                "/usr/local/bin/tend",
                Scope::system(),
                StartMode::Manual,
                Account::User {
                    name: "_www".into(),
                    password_env: None,
                },
            ),
        },
        PlistCase {
            file: "system-disabled-root.plist",
            input: plist(
                "legacy-job",
                "/usr/local/bin/tend",
                Scope::system(),
                StartMode::Disabled,
                Account::System,
            ),
        },
        PlistCase {
            file: "user-auto.plist",
            input: plist(
                "notes",
                "/Users/ann/bin/tend",
                user(),
                StartMode::Auto,
                Account::Isolated,
            ),
        },
        PlistCase {
            file: "user-delayed-auto.plist",
            input: plist(
                "sync",
                "/opt/homebrew/bin/tend",
                user(),
                StartMode::DelayedAuto,
                Account::Isolated,
            ),
        },
        PlistCase {
            file: "user-manual.plist",
            input: plist(
                "dev-server",
                "/opt/homebrew/bin/tend",
                user(),
                StartMode::Manual,
                Account::Isolated,
            ),
        },
        PlistCase {
            file: "user-disabled.plist",
            input: plist(
                "old",
                "/opt/homebrew/bin/tend",
                user(),
                StartMode::Disabled,
                Account::Isolated,
            ),
        },
    ]
}

pub fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// Compares `actual` with the stored snapshot, or rewrites it when `UPDATE_SNAPSHOTS=1`.
/// Returns a description of the mismatch instead of panicking, so one run reports every
/// stale snapshot.
pub fn check_snapshot(file: &str, actual: &str) -> Result<(), String> {
    let path = snapshot_dir().join(file);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(snapshot_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return Ok(());
    }
    let expected = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}; run `UPDATE_SNAPSHOTS=1 cargo test -p tend-os` to create it",
            path.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    let (line, exp, act) = expected
        .lines()
        .zip(actual.lines())
        .enumerate()
        .find(|(_, (e, a))| e != a)
        .map_or_else(
            || {
                (
                    expected.lines().count().min(actual.lines().count()) + 1,
                    "",
                    "",
                )
            },
            |(i, (e, a))| (i + 1, e, a),
        );
    Err(format!(
        "{} differs at line {line}:\n  expected: {exp:?}\n  actual:   {act:?}\n--- actual ---\n{actual}--- (UPDATE_SNAPSHOTS=1 rewrites it after review)",
        path.display()
    ))
}

/// Whether an external tool the tests rely on is present. Missing in CI (`CI=true`) is a
/// failure, because the check it enables would silently not run; missing on a developer's
/// machine skips the check with a note.
pub fn require_tool(program: &str, args: &[&str], why: &str, install_hint: &str) -> bool {
    let found = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    let msg = format!("{program} not found: {why} ({install_hint})");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{msg}; it must be installed in CI"
    );
    eprintln!("note: skipping: {msg}");
    false
}
