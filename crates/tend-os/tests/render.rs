//! Snapshot tests of every rendered unit and plist, plus the checks that the real tools
//! accept them: `systemd-analyze verify` for units, Python's `plistlib` for plists, and
//! (best effort) `systemd --test` to see the Description exactly as systemd parsed it.
//!
//! `UPDATE_SNAPSHOTS=1 cargo test -p tend-os` rewrites tests/snapshots/ after a deliberate
//! change; review the diff before committing it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{check_snapshot, plist_cases, require_tool, unit_cases};
use tend_core::Account;
use tend_os::launchd::{self, render_plist};
use tend_os::systemd::{self, render_unit};
use tend_os::{Backend, Layout, RenderError, Scope};

#[test]
fn unit_snapshots() {
    let errors: Vec<String> = unit_cases()
        .iter()
        .filter_map(|c| {
            let text = render_unit(&c.input).unwrap_or_else(|e| panic!("{}: {e}", c.file));
            assert!(systemd::is_generated_by_tend(&text), "{}", c.file);
            check_snapshot(c.file, &text).err()
        })
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

#[test]
fn plist_snapshots() {
    let errors: Vec<String> = plist_cases()
        .iter()
        .filter_map(|c| {
            let text = render_plist(&c.input).unwrap_or_else(|e| panic!("{}: {e}", c.file));
            assert!(launchd::is_generated_by_tend(&text), "{}", c.file);
            check_snapshot(c.file, &text).err()
        })
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

#[test]
fn accounts_a_backend_cannot_use_are_typed_errors() {
    let base = &unit_cases()[0].input;
    let with = |account: Account, scope: Scope| systemd::UnitInput {
        account,
        scope,
        ..base.clone()
    };
    assert_eq!(
        render_unit(&with(Account::LocalService, Scope::system())).unwrap_err(),
        RenderError::WindowsOnlyAccount {
            account: "local-service",
            os: "Linux"
        }
    );
    assert_eq!(
        render_unit(&with(Account::NetworkService, common::user())).unwrap_err(),
        RenderError::WindowsOnlyAccount {
            account: "network-service",
            os: "Linux"
        }
    );
    assert_eq!(
        render_unit(&with(Account::System, common::user())).unwrap_err(),
        RenderError::AccountInUserScope {
            account: "system".into()
        }
    );
    assert_eq!(
        render_unit(&with(common::ann(), common::user())).unwrap_err(),
        RenderError::AccountInUserScope {
            account: "ann".into()
        }
    );
    let windows_user = Account::User {
        name: "CORP\\ann".into(),
        password_env: Some("PW".into()),
    };
    assert!(matches!(
        render_unit(&with(windows_user, Scope::system())).unwrap_err(),
        RenderError::InvalidUserName { .. }
    ));
    let bad_dep = systemd::UnitInput {
        depends_on: vec!["Tcpip Service".into()],
        ..base.clone()
    };
    assert!(matches!(
        render_unit(&bad_dep).unwrap_err(),
        RenderError::InvalidDependency { .. }
    ));

    let p = &plist_cases()[0].input;
    let with = |account: Account, scope: Scope| launchd::PlistInput {
        account,
        scope,
        ..p.clone()
    };
    assert_eq!(
        render_plist(&with(Account::Isolated, Scope::system())).unwrap_err(),
        RenderError::IsolatedUnsupported
    );
    assert_eq!(
        render_plist(&with(Account::LocalService, Scope::system())).unwrap_err(),
        RenderError::WindowsOnlyAccount {
            account: "local-service",
            os: "macOS"
        }
    );
    assert_eq!(
        render_plist(&with(Account::System, common::user())).unwrap_err(),
        RenderError::AccountInUserScope {
            account: "system".into()
        }
    );
    // The message tells the user what to do.
    assert!(
        RenderError::IsolatedUnsupported
            .to_string()
            .contains("set account = \"system\"")
    );
}

#[test]
fn tend_paths_systemd_cannot_execute_are_typed_errors() {
    let base = &unit_cases()[0].input;
    for (path, what) in [
        ("tend", "relative"),
        ("/opt/a\"b/tend", "quote"),
        ("/opt/a\\b/tend", "backslash"),
        ("/opt/a\nb/tend", "newline"),
    ] {
        let input = systemd::UnitInput {
            tend_path: path.into(),
            ..base.clone()
        };
        assert!(render_unit(&input).is_err(), "{what}");
    }
    let p = &plist_cases()[0].input;
    let input = launchd::PlistInput {
        tend_path: "/opt/a\nb/tend".into(),
        ..p.clone()
    };
    assert!(matches!(
        render_plist(&input).unwrap_err(),
        RenderError::UnsupportedChar { .. }
    ));
}

/// A throwaway executable at a path with a space, `%`, `$` and non-ASCII characters, which
/// `systemd-analyze verify` requires to exist.
fn fake_tend(dir: &Path) -> PathBuf {
    // `%n` would expand to the unit name if the path were not escaped.
    let bin_dir = dir.join("my tools 50%n $x ünï");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let tend = bin_dir.join("tend");
    std::fs::write(&tend, "#!/bin/sh\nexit 0\n").unwrap();
    // chmod(1) rather than PermissionsExt keeps this file free of cfg(unix); the test only
    // gets here on Linux.
    chmod("755", &tend);
    tend
}

fn chmod(mode: &str, path: &Path) {
    let st = Command::new("chmod").arg(mode).arg(path).status().unwrap();
    assert!(st.success(), "chmod {mode} {}", path.display());
}

#[test]
fn units_pass_systemd_analyze_verify() {
    if !cfg!(target_os = "linux") {
        eprintln!("note: skipping systemd-analyze verify: not on Linux");
        return;
    }
    if !require_tool(
        "systemd-analyze",
        &["--version"],
        "rendered units are not checked by systemd",
        "apt-get install -y systemd",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tend = fake_tend(tmp.path());
    // A per-user verify needs a runtime directory for the (simulated) user manager.
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    chmod("700", &runtime);

    let mut failures = Vec::new();
    for case in unit_cases() {
        let input = systemd::UnitInput {
            tend_path: tend.clone(),
            ..case.input
        };
        let text = render_unit(&input).unwrap();
        // verify takes the unit name from the file name; one directory per case keeps
        // each run to exactly one unit of ours.
        let dir = tmp.path().join(case.file);
        std::fs::create_dir(&dir).unwrap();
        let unit_path = dir.join(systemd::unit_name(&input.name));
        std::fs::write(&unit_path, &text).unwrap();

        let mut cmd = Command::new("systemd-analyze");
        cmd.arg("verify");
        if input.scope.is_user() {
            cmd.arg("--user").env("XDG_RUNTIME_DIR", &runtime);
        }
        let out = cmd.arg("--man=no").arg(&unit_path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // verify exits 0 on warnings such as "Unknown key"; any line about our file counts.
        let ours: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(&*dir.to_string_lossy()) || l.contains(input.name.as_str()))
            .collect();
        if !out.status.success() || !ours.is_empty() {
            failures.push(format!(
                "{} ({}): {}\n{text}",
                case.file,
                out.status,
                stderr.trim()
            ));
        } else if !stderr.trim().is_empty() {
            eprintln!("note: systemd-analyze about other units: {}", stderr.trim());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn plists_are_valid_property_lists() {
    if cfg!(windows) {
        eprintln!("note: skipping the plistlib check on Windows");
        return;
    }
    if !require_tool(
        "python3",
        &["--version"],
        "rendered plists are not parsed",
        "apt-get install -y python3",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for case in plist_cases() {
        let path = tmp.path().join(case.file);
        std::fs::write(&path, render_plist(&case.input).unwrap()).unwrap();
        files.push(path);
    }
    // plistlib rejects anything that is not a well-formed property list; the JSON dump lets
    // the test compare the parsed values, which is what proves the XML escaping.
    let script = "import json, plistlib, sys\n\
        print(json.dumps([plistlib.load(open(p, 'rb')) for p in sys.argv[1:]]))";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "plistlib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for (case, p) in plist_cases().iter().zip(&parsed) {
        let i = &case.input;
        let layout = Layout::new(Backend::Launchd, &i.scope, &i.name);
        let mut args = vec![i.tend_path.to_str().unwrap().to_owned()];
        args.extend(tend_os::service_args(&i.name, &i.scope));
        assert_eq!(p["Label"], launchd::label(&i.name), "{}", case.file);
        assert_eq!(
            p["ProgramArguments"],
            serde_json::json!(args),
            "{}",
            case.file
        );
        let stdio = layout.stdio_log.unwrap();
        assert_eq!(
            p["StandardOutPath"],
            stdio.to_str().unwrap(),
            "{}",
            case.file
        );
        assert_eq!(
            p["StandardErrorPath"],
            stdio.to_str().unwrap(),
            "{}",
            case.file
        );
        assert_eq!(
            p["KeepAlive"],
            serde_json::json!({"Crashed": true}),
            "{}",
            case.file
        );
        let user = match &i.account {
            Account::User { name, .. } => serde_json::json!(name),
            _ => serde_json::Value::Null,
        };
        assert_eq!(p["UserName"], user, "{}", case.file);
        let secs = (i.stop_timeout + tend_os::STOP_MARGIN).as_secs_f64().ceil();
        assert_eq!(p["ExitTimeOut"].as_f64(), Some(secs), "{}", case.file);
    }
}

/// Best effort, never required: `systemd --test` dumps each unit as systemd parsed it,
/// which shows that `%`, a trailing backslash, newlines and non-ASCII in the description
/// come out as meant. It refuses to run as root, so as root it runs as `nobody`.
#[test]
fn descriptions_survive_systemd_parsing() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Some(systemd_bin) = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("note: skipping the systemd --test round trip: no systemd binary");
        return;
    };
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let tmp = tempfile::tempdir().unwrap();
    chmod("755", tmp.path());
    let tend = fake_tend(tmp.path());
    for case in unit_cases() {
        let input = systemd::UnitInput {
            tend_path: tend.clone(),
            scope: Scope::system(),
            ..case.input
        };
        let dir = tmp.path().join(case.file);
        std::fs::create_dir(&dir).unwrap();
        chmod("755", &dir);
        let unit = systemd::unit_name(&input.name);
        std::fs::write(dir.join(&unit), render_unit(&input).unwrap()).unwrap();

        let mut cmd = if root {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                systemd_bin,
            ]);
            c
        } else {
            Command::new(systemd_bin)
        };
        let Ok(out) = cmd
            .args(["--test", "--system", "--no-pager"])
            .arg(format!("--unit={unit}"))
            .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()))
            .env("SYSTEMD_LOG_LEVEL", "err")
            .output()
        else {
            eprintln!("note: skipping the systemd --test round trip: cannot run it");
            return;
        };
        let dump = String::from_utf8_lossy(&out.stdout);
        let header = format!("-> Unit {unit}:");
        let Some(block) = dump.split(&header).nth(1) else {
            eprintln!(
                "note: skipping the systemd --test round trip: no dump ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        };
        let block = block.split("-> Unit ").next().unwrap_or_default();
        let description = block
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("Description: "))
            .unwrap_or_default();
        let one_line: String = input
            .description
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let expected = match one_line.trim() {
            "" => input.name.as_str(),
            s => s,
        };
        assert_eq!(description, expected, "{}", case.file);
    }
}

/// docs/linux.md explains every directive `hardening = "strict"` sets, and only those.
#[test]
fn every_strict_directive_is_documented() {
    let doc = include_str!("../../../docs/linux.md");
    let section = doc
        .split("## Hardening")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/linux.md has a ## Hardening section");
    let documented: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |"))
        .map(|(d, _)| d)
        .collect();
    let set: Vec<&str> = systemd::STRICT_DIRECTIVES.iter().map(|(d, _)| *d).collect();
    assert_eq!(documented, set, "the table in docs/linux.md#hardening");
}
