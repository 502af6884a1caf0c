//! Build identity for `tend --version` (src/version.rs), and the Windows resources (version
//! info and application manifest) embedded into tend.exe.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    build_info();
    windows_resources();
}

/// `TEND_BUILD_COMMIT`, `TEND_BUILD_TARGET`, `TEND_BUILD_PROFILE` for `env!` in version.rs.
fn build_info() {
    println!("cargo:rerun-if-env-changed=TEND_BUILD_COMMIT");
    // scripts/dist names the commit explicitly; a build from a source tarball has no git to
    // ask and may set it by hand. Otherwise git says, and a new commit reruns this script.
    let commit = match std::env::var("TEND_BUILD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => git_commit().unwrap_or_else(|| "unknown".to_owned()),
    };
    let target = std::env::var("TARGET").unwrap_or_default();
    // Cargo's PROFILE is `release` for release-based profiles and `debug` otherwise.
    let profile = std::env::var("PROFILE").unwrap_or_default();
    println!("cargo:rustc-env=TEND_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=TEND_BUILD_TARGET={target}");
    println!("cargo:rustc-env=TEND_BUILD_PROFILE={profile}");
}

/// HEAD's hash, and rerun-if-changed on the files that move when HEAD does.
fn git_commit() -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    // HEAD itself (a checkout), the branch it points at (a commit), packed refs (gc).
    let mut watch = vec![git(&["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(git(&["rev-parse", "--git-path", &branch])?);
    }
    watch.push(git(&["rev-parse", "--git-path", "packed-refs"])?);
    for p in watch {
        let p = Path::new(&p);
        let p = if p.is_absolute() {
            p.to_owned()
        } else {
            dir.join(p)
        };
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    Some(commit)
}

fn windows_resources() {
    println!("cargo:rerun-if-changed=windows/tend.rc");
    println!("cargo:rerun-if-changed=windows/tend.manifest");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    let num = |key: &str| std::env::var(key).unwrap_or_else(|_| "0".into());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let macros = [
        format!("VER_MAJOR={}", num("CARGO_PKG_VERSION_MAJOR")),
        format!("VER_MINOR={}", num("CARGO_PKG_VERSION_MINOR")),
        format!("VER_PATCH={}", num("CARGO_PKG_VERSION_PATCH")),
        format!("VER_STRING=\\\"{version}\\\""),
    ];
    // Only the `tend` binary gets them (not the test fixture).
    embed_resource::compile_for("windows/tend.rc", ["tend"], &macros)
        .manifest_required()
        .expect("embedding the Windows resources (needs a resource compiler: x86_64-w64-mingw32-windres)");
}
