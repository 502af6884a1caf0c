//! `tend upgrade --user` refusals and `--check` on Linux, with the real binary against a
//! temporary home and a stand-in `systemctl` that only answers `show` (it runs nothing, so
//! the flow that stops, swaps, starts and verifies is tested under a real systemd instead:
//! tests/systemd/t-upgrade.sh). What is tested here is that every refusal happens before
//! anything changes: the program file, the release store, and the calls to systemctl.
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{FIXTURE, TEND};

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let h = Self {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        for d in ["home", "cfg", "state", "app", "bin"] {
            std::fs::create_dir_all(h.path(d)).expect("mkdir");
        }
        // The stand-in systemctl: logs its calls; `show` answers "installed, stopped".
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{log}'\ncase \"$*\" in *\" show \"*) printf 'LoadState=loaded\\nActiveState=inactive\\nSubState=dead\\nUnitFileState=enabled\\nMainPID=0\\nFragmentPath=%s\\n' '{unit}' ;; esac\nexit 0\n",
            log = h.path("systemctl.log").display(),
            unit = h.path("cfg/systemd/user/svc.service").display()
        );
        h.exec("bin/systemctl", script.as_bytes());
        h
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn exec(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::write(&p, bytes).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(TEND)
            .args(args)
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("cfg"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("PATH", path)
            .env_remove("NOTIFY_SOCKET")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run tend");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Installs `svc` running `command` (a TOML array's items).
    fn install(&self, command: &str) {
        let cfg = self.path("app/svc.toml");
        std::fs::write(&cfg, format!("name = \"svc\"\ncommand = [{command}]\n")).expect("write");
        let (code, out, err) = self.run(&["install", "--user", cfg.to_str().expect("utf-8")]);
        assert_eq!(code, 0, "{out}\n{err}");
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.path("systemctl.log")).unwrap_or_default()
    }
}

#[test]
fn refusals_change_nothing_and_check_only_looks() {
    let h = Home::new();
    let program = h.exec("app/server", &std::fs::read(FIXTURE).expect("fixture"));
    h.install(&format!("\"{}\", \"--sleep\"", program.display()));
    let before = std::fs::read(&program).expect("program");
    let calls = h.calls();
    let store = h.path("state/tend/.releases/svc");

    let text = h.exec("app/notes.txt", b"just text\n");
    let unexec = h.path("app/server-new");
    std::fs::write(&unexec, b"\x7fELF rest").expect("write");
    let cases: [(&str, &str, i32, &str); 4] = [
        (
            "a text file",
            text.to_str().unwrap(),
            2,
            "is not a program this OS can run",
        ),
        ("a missing file", "/nonexistent/server", 2, "does not exist"),
        (
            "a directory without the program",
            "/",
            2,
            "(the program `command` names, in the new directory) does not exist",
        ),
        (
            "not executable",
            unexec.to_str().unwrap(),
            2,
            "is not executable (chmod +x it)",
        ),
    ];
    for (what, file, want, says) in cases {
        let (code, out, err) = h.run(&["upgrade", "--user", "svc", file]);
        assert_eq!(code, want, "{what}: {out}\n{err}");
        assert!(err.contains(says), "{what}: {err}");
        assert!(err.contains("nothing was changed"), "{what}: {err}");
    }
    let (code, out, err) = h.run(&["upgrade", "--user", "nosuch", program.to_str().unwrap()]);
    assert_eq!(code, 3, "not installed: {out}\n{err}");

    // --check: says what would happen, exit 0, and writes nothing.
    let new = h.exec(
        "app/server-v2",
        &[std::fs::read(FIXTURE).unwrap(), b"v2".to_vec()].concat(),
    );
    let (code, out, err) = h.run(&["upgrade", "--user", "svc", new.to_str().unwrap(), "--check"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("would replace"), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    let (code, out, _) = h.run(&[
        "upgrade",
        "--user",
        "svc",
        new.to_str().unwrap(),
        "--check",
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["check"], true);
    assert_eq!(v["target"], program.to_str().unwrap());

    assert_eq!(std::fs::read(&program).expect("program"), before);
    assert!(!store.exists(), "no release store for refusals and --check");
    assert_eq!(
        h.calls(),
        calls,
        "the service was not asked to stop or start"
    );
    let (code, out, _) = h.run(&["history", "--user", "svc"]);
    assert_eq!(code, 0);
    assert!(out.contains("has no releases yet"), "{out}");
    let (code, _, err) = h.run(&["rollback", "--user", "svc"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no previous release"), "{err}");
}

#[test]
fn a_program_found_on_path_cannot_be_upgraded() {
    let h = Home::new();
    h.install("\"sleep\", \"60\"");
    let new = h.exec("app/sleep2", &std::fs::read(FIXTURE).expect("fixture"));
    let (code, _, err) = h.run(&["upgrade", "--user", "svc", new.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`command` runs `sleep`, found on PATH"),
        "{err}"
    );
}

/// The directory form and `--config`: every refusal before anything changes, and
/// `--check` only looks.
#[test]
fn directory_and_config_refusals_change_nothing() {
    let h = Home::new();
    let program = h.exec("app/server", &std::fs::read(FIXTURE).expect("fixture"));
    h.install(&format!("\"{}\", \"--sleep\"", program.display()));
    let calls = h.calls();
    let store = h.path("state/tend/.releases/svc");
    let config_copy = h.path("cfg/tend/svc.toml");
    let copy_before = std::fs::read(&config_copy).expect("config copy");

    std::fs::create_dir_all(h.path("dist/v2")).expect("mkdir");
    h.exec(
        "dist/v2/server",
        &[std::fs::read(FIXTURE).unwrap(), b"v2".to_vec()].concat(),
    );
    std::fs::create_dir_all(h.path("dist/empty")).expect("mkdir");
    std::fs::write(
        h.path("other.toml"),
        format!("name = \"other\"\ncommand = [\"{}\"]\n", program.display()),
    )
    .expect("write");
    std::fs::write(
        h.path("bad.toml"),
        "name = \"svc\"\ncommand = [\"/x\"]\n[restart]\npolicy = \"sometimes\"\n",
    )
    .expect("write");
    std::fs::write(
        h.path("svc2.toml"),
        format!(
            "name = \"svc\"\ndescription = \"second\"\ncommand = [\"{}\", \"--sleep\"]\n",
            program.display()
        ),
    )
    .expect("write");
    let p = |rel: &str| h.path(rel).to_str().expect("utf-8").to_owned();
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "a directory without the program",
            vec![p("dist/empty")],
            "dist/empty/server` (the program `command` names, in the new directory) does not exist",
        ),
        (
            "the directory in place",
            vec![p("app")],
            "is the application directory in place",
        ),
        (
            "another service's config",
            vec!["--config".into(), p("other.toml")],
            "is the config of `other`, not of `svc`",
        ),
        (
            "an invalid config",
            vec!["--config".into(), p("bad.toml")],
            "restart.policy",
        ),
    ];
    for (what, args, says) in cases {
        let mut argv = vec!["upgrade", "--user", "svc"];
        argv.extend(args.iter().map(String::as_str));
        let (code, out, err) = h.run(&argv);
        assert_eq!(code, 2, "{what}: {out}\n{err}");
        assert!(err.contains(says), "{what}: {err}");
    }

    let (code, out, err) = h.run(&["upgrade", "--user", "svc", &p("dist/v2"), "--check"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "would replace the application directory `{}`",
            p("app")
        )),
        "{out}"
    );
    let (code, out, err) = h.run(&[
        "upgrade",
        "--user",
        "svc",
        "--config",
        &p("svc2.toml"),
        "--check",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("in place of the config copy"), "{out}");
    assert!(
        out.contains("+ description = \"second\""),
        "the change: {out}"
    );
    assert!(
        out.contains("the config is valid for this service"),
        "{out}"
    );

    assert!(!store.exists(), "no release store for refusals and --check");
    assert_eq!(std::fs::read(&config_copy).expect("copy"), copy_before);
    assert_eq!(h.calls(), calls, "the service was not asked anything more");
}

/// A program in a directory shared with other programs: the directory form is refused
/// with how to fix it.
#[test]
fn a_shared_directory_cannot_be_swapped() {
    let h = Home::new();
    h.install("\"/usr/bin/env\", \"sleep\", \"60\"");
    std::fs::create_dir_all(h.path("dist")).expect("mkdir");
    h.exec("dist/env", &std::fs::read(FIXTURE).expect("fixture"));
    let dist = h.path("dist");
    let (code, _, err) = h.run(&["upgrade", "--user", "svc", dist.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`/usr/bin` is a directory shared with other programs"),
        "{err}"
    );
    assert!(err.contains("a directory of its own"), "{err}");
}
