//! A permission error is reported as one, with the OS's words, not as "does not exist" or
//! "not an existing directory" (`Path::is_dir` and `exists` answer "no" to both). Only
//! root can produce it here (it runs tend as `nobody` with `setpriv`); as another user the
//! test says so and passes.
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `tend ARGS` as `nobody` (uid 65534), with its stderr.
fn as_nobody(args: &[&Path]) -> Option<(i32, String)> {
    if !nix_is_root() {
        eprintln!("note: skipped: only root can run tend as another user");
        return None;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_tend"))
        .args(args)
        .output()
        .expect("setpriv (util-linux)");
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn nix_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn a_working_dir_the_user_cannot_reach_says_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let private = dir.path().join("private");
    std::fs::create_dir_all(private.join("work")).unwrap();
    std::fs::write(private.join("server"), "#!/bin/sh\n").unwrap();
    chmod(&private.join("server"), 0o755);
    chmod(&private, 0o700);
    let cfg = dir.path().join("web.toml");
    std::fs::write(
        &cfg,
        "name = \"web\"\ncommand = [\"private/server\"]\nworking_dir = \"private/work\"\n",
    )
    .unwrap();
    chmod(&cfg, 0o644);
    let Some((code, err)) = as_nobody(&[Path::new("validate"), &cfg]) else {
        return;
    };
    assert_eq!(code, 0, "warnings only: {err}");
    assert!(!err.contains("not an existing directory"), "{err}");
    assert!(!err.contains("does not exist"), "{err}");
    assert!(
        err.contains("working_dir") && err.contains("Permission denied (os error 13)"),
        "{err}"
    );
    assert!(
        err.contains("command[0]") && err.matches("Permission denied").count() >= 2,
        "{err}"
    );
}

#[test]
fn a_log_dir_the_user_cannot_create_exits_with_the_permission_code() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let private = dir.path().join("private");
    std::fs::create_dir_all(&private).unwrap();
    chmod(&private, 0o700);
    let cfg = dir.path().join("web.toml");
    std::fs::write(
        &cfg,
        format!(
            "name = \"web\"\ncommand = [\"/bin/true\"]\n[logs]\ndir = \"{}\"\n",
            private.join("logs").display()
        ),
    )
    .unwrap();
    chmod(&cfg, 0o644);
    let Some((code, err)) = as_nobody(&[Path::new("run"), &cfg]) else {
        return;
    };
    // docs/cli.md: 4 is "tend lacks a permission", whichever file it was.
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("cannot open the logs of `web`") && err.contains("Permission denied"),
        "{err}"
    );
}
