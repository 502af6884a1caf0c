//! Which tend this is: `tend --version`, `--version --json`, `status --json` and the metrics'
//! `tend_build_info` all say the same version, commit, target and profile. Runs on every OS.

use std::process::{Command, Output, Stdio};

const TEND: &str = env!("CARGO_BIN_EXE_tend");
/// The test program, built next to tend. (Not `env!("CARGO_BIN_EXE_tend-fixture")`: the
/// Windows cross build's cargo does not define it for a name with a hyphen.)
fn fixture() -> String {
    std::path::Path::new(TEND)
        .with_file_name(format!("tend-fixture{}", std::env::consts::EXE_SUFFIX))
        .to_string_lossy()
        .into_owned()
}

fn tend(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(TEND)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run tend")
}

fn build_json() -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = tend(&["--version", "--json"], dir.path());
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("--version --json is JSON")
}

#[test]
fn version_line_and_json_agree() {
    let dir = tempfile::tempdir().unwrap();
    let b = build_json();
    assert_eq!(b["version"], env!("CARGO_PKG_VERSION"));
    let commit = b["commit"].as_str().unwrap();
    assert!(!commit.is_empty());
    assert!(b["target"].as_str().unwrap().contains('-'), "{b}");
    assert!(
        ["debug", "release"].contains(&b["profile"].as_str().unwrap()),
        "{b}"
    );

    for flag in ["--version", "-V"] {
        let out = tend(&[flag], dir.path());
        assert!(out.status.success(), "{out:?}");
        let line = String::from_utf8(out.stdout).unwrap();
        let want = format!(
            "tend {} (commit {}, {}, {})\n",
            b["version"].as_str().unwrap(),
            commit.get(..12).unwrap_or(commit),
            b["target"].as_str().unwrap(),
            b["profile"].as_str().unwrap()
        );
        assert_eq!(line, want);
    }
    // --json alone is a usage error, not a silent version print.
    let out = tend(&["--json"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn status_json_and_metrics_carry_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let b = build_json();
    std::fs::create_dir(dir.path().join("metrics")).unwrap();
    let cfg = dir.path().join("svc.toml");
    // The program fails once and is not restarted, so `tend run` ends by itself.
    std::fs::write(
        &cfg,
        format!(
            "name = \"verinfo\"\ncommand = [{:?}, \"--exit\", \"3\"]\n\
             [restart]\npolicy = \"never\"\n[metrics]\ntextfile = \"metrics\"\n",
            fixture()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let run = tend(&["run", cfg], dir.path());
    assert_eq!(run.status.code(), Some(1), "{run:?}");

    let text = std::fs::read_to_string(dir.path().join("metrics/tend_verinfo.prom")).unwrap();
    let want = format!(
        "tend_build_info{{version=\"{}\",commit=\"{}\",target=\"{}\",profile=\"{}\"}} 1\n",
        b["version"].as_str().unwrap(),
        b["commit"].as_str().unwrap(),
        b["target"].as_str().unwrap(),
        b["profile"].as_str().unwrap()
    );
    assert!(text.contains(&want), "{want}\n{text}");
    assert!(text.contains("# TYPE tend_build_info gauge\n"), "{text}");

    let out = tend(&["status", cfg, "--json"], dir.path());
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(s["tend"], b, "{s:#}");
    assert_eq!(s["service"], "verinfo", "{s:#}");
}

#[test]
fn completions_and_man_page_come_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _tend"),
        ("zsh", "#compdef tend"),
        ("fish", "complete -c tend"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = tend(&["completions", shell], dir.path());
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("install") && text.contains("logs"), "{shell}");
    }
    let out = tend(&["man"], dir.path());
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.contains(&format!(
            ".TH tend 1  \"tend {}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{page}"
    );
    let out = tend(&["man", "--out-dir", "pages"], dir.path());
    assert!(out.status.success(), "{out:?}");
    for page in ["tend.1", "tend-run.1", "tend-install.1", "tend-status.1"] {
        assert!(dir.path().join("pages").join(page).is_file(), "{page}");
    }
    assert!(!dir.path().join("pages/tend-console-event.1").exists());
}
