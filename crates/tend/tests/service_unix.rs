//! `tend service --user`, `install --user` and friends on Linux, against a temporary home:
//! the real binary, a real notification socket, and a stand-in `systemctl` on PATH (no
//! running systemd is needed, or touched).
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{FIXTURE, TEND, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A home of its own: `$HOME`, `$XDG_CONFIG_HOME`, `$XDG_STATE_HOME`, a bin dir for the
/// stand-in systemctl, and an app dir for the service's files.
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
        h
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn tend(&self, args: &[&str]) -> Command {
        let mut c = Command::new(TEND);
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.args(args)
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("cfg"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("PATH", path)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    /// Runs `tend <args>` to completion: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.tend(args).output().expect("run tend");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
        p
    }
}

/// Receives notifications on a socket of our own, as systemd would.
struct Manager {
    sock: UnixDatagram,
    seen: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Self {
        let sock = UnixDatagram::bind(path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        Self {
            sock,
            seen: Vec::new(),
        }
    }

    /// Collects datagrams until one satisfies `want` (returned) or `within` passes.
    fn wait_for(&mut self, within: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let end = Instant::now() + within;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(msg.clone());
                if want(&msg) {
                    return Some(msg);
                }
            }
        }
        None
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.0.id() as i32), sig).expect("signal tend");
    }

    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let mut code = None;
        wait_until(within, || {
            code = self
                .0
                .try_wait()
                .ok()
                .flatten()
                .map(|s| s.code().unwrap_or(-1));
            code.is_some()
        });
        code
    }
}

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn service_user_notifies_ready_status_watchdog_and_stopping() {
    let h = Home::new();
    let app = h.path("app");
    // The program records its environment, then runs until stopped.
    h.write(
        "cfg/tend/svc.toml",
        &format!(
            "base_dir = '{}'\nname = \"svc\"\ncommand = [\"sh\", \"-c\", \"env > env.txt; exec '{FIXTURE}' --sleep --print 2\"]\n[stop]\ntimeout = \"5s\"\n",
            app.display()
        ),
    );
    let sock = h.path("notify.sock");
    let mut manager = Manager::bind(&sock);
    let mut tend = Running(
        h.tend(&["service", "--user", "svc"])
            .env("NOTIFY_SOCKET", &sock)
            .env("WATCHDOG_USEC", "200000")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(h.path("tend.err")).expect("err file"))
            .spawn()
            .expect("spawn tend service"),
    );
    let err = || std::fs::read_to_string(h.path("tend.err")).unwrap_or_default();

    let ready = manager
        .wait_for(WAIT, |m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1; got {:?}\n{}", manager.seen, err()));
    assert!(
        ready.contains("STATUS=started pid "),
        "READY=1 comes with the first status: {ready:?}"
    );
    // Pets every 100 ms (half of WATCHDOG_USEC); two in a row show it keeps going.
    for _ in 0..2 {
        assert!(
            manager.wait_for(WAIT, |m| m == "WATCHDOG=1").is_some(),
            "no WATCHDOG=1; got {:?}",
            manager.seen
        );
    }

    // The program never sees tend's notification variables.
    assert!(wait_until(WAIT, || std::fs::read_to_string(
        app.join("env.txt")
    )
    .is_ok_and(|e| e.contains("PATH="))));
    let env = std::fs::read_to_string(app.join("env.txt")).expect("env.txt");
    for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        assert!(!env.contains(&format!("{var}=")), "{var} leaked:\n{env}");
    }

    // State and logs go where the user layout says (XDG_STATE_HOME).
    let status = h.path("state/tend/svc/svc.status.json");
    assert!(
        wait_until(WAIT, || std::fs::read_to_string(&status)
            .is_ok_and(|s| s.contains("\"running\""))),
        "status file {}\n{}",
        status.display(),
        err()
    );
    assert!(
        wait_until(WAIT, || std::fs::read_to_string(
            h.path("state/log/tend/svc/svc.out.log")
        )
        .is_ok_and(|s| s.contains("line 2"))),
        "{}",
        err()
    );

    tend.signal(Signal::SIGTERM);
    let stopping = manager.wait_for(WAIT, |m| m.contains("STOPPING=1"));
    assert!(stopping.is_some(), "no STOPPING=1; got {:?}", manager.seen);
    assert_eq!(tend.wait_exit(WAIT), Some(0), "{}", err());
    let last = manager.wait_for(WAIT, |m| m.contains("STATUS=stopped"));
    assert!(last.is_some(), "{:?}", manager.seen);
}

#[test]
fn service_user_with_a_bad_config_says_so_and_exits_2() {
    let h = Home::new();
    h.write(
        "cfg/tend/bad.toml",
        "name = \"bad\"\n[restart]\npolicy = \"sometimes\"\n",
    );
    let sock = h.path("notify.sock");
    let mut manager = Manager::bind(&sock);
    let out = h
        .tend(&["service", "--user", "bad"])
        .env("NOTIFY_SOCKET", &sock)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("restart.policy"), "{stderr}");
    let status = manager.wait_for(WAIT, |m| m.starts_with("STATUS="));
    assert!(
        status.is_some_and(|s| s.contains("cannot load the config")),
        "{:?}",
        manager.seen
    );

    let (code, _, err) = h.run(&["service", "--user", "missing"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = h.run(&["service", "--user", "../escape"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a valid service name"), "{err}");
}

/// A stand-in for `systemctl`: logs its arguments, and answers `show` from the unit
/// file's presence, the way systemd would after a daemon-reload.
fn fake_systemctl(h: &Home) {
    let script = format!(
        r#"#!/bin/sh
echo "$*" >> '{log}'
unit='{cfg}/systemd/user/svc.service'
case "$*" in
  *" show "*)
    if [ -f "$unit" ]; then
      printf 'LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=enabled\nMainPID=0\nFragmentPath=%s\n' "$unit"
    else
      printf 'LoadState=not-found\nActiveState=inactive\n'
    fi ;;
esac
exit 0
"#,
        log = h.path("systemctl.log").display(),
        cfg = h.path("cfg").display()
    );
    let p = h.write("bin/systemctl", &script);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn install_user_writes_the_unit_and_copy_and_uninstall_removes_them() {
    let h = Home::new();
    fake_systemctl(&h);
    let cfg = h.write(
        "app/svc.toml",
        &format!("name = \"svc\"\ncommand = [\"{FIXTURE}\", \"--sleep\"]\n"),
    );
    let cfg = cfg.to_str().expect("utf-8");
    let (code, out, err) = h.run(&["install", "--user", cfg]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("installed service `svc` (systemd --user"),
        "{out}"
    );
    assert!(
        err.contains("starts when you log in"),
        "tend-os warnings are shown: {err}"
    );

    let copy = h.path("cfg/tend/svc.toml");
    let mode = std::fs::metadata(&copy).expect("copy").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&copy).expect("copy");
    assert!(
        text.contains(&format!("base_dir = '{}'", h.path("app").display())),
        "{text}"
    );
    let unit = std::fs::read_to_string(h.path("cfg/systemd/user/svc.service")).expect("unit");
    assert!(
        unit.contains(&format!("ExecStart={TEND} service --user svc")),
        "{unit}"
    );
    assert!(h.path("state/tend/svc").is_dir());
    assert!(h.path("state/log/tend/svc").is_dir());
    let log = std::fs::read_to_string(h.path("systemctl.log")).expect("log");
    let calls: Vec<&str> = log.lines().collect();
    assert_eq!(calls.len(), 3, "{log}");
    assert!(calls[0].starts_with("--user show svc.service"), "{log}");
    assert_eq!(
        calls[1..],
        ["--user daemon-reload", "--user enable svc.service"]
    );

    // Again, changed: the diff of the copy.
    std::fs::write(
        h.path("app/svc.toml"),
        format!("name = \"svc\"\ncommand = [\"{FIXTURE}\", \"--sleep\", \"--print\", \"1\"]\n"),
    )
    .expect("rewrite");
    let (code, out, err) = h.run(&["install", "--user", cfg]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("updated service `svc`:"), "{out}");
    assert!(
        out.contains(&format!("    - command = [\"{FIXTURE}\", \"--sleep\"]")),
        "{out}"
    );
    assert!(
        out.contains("it is not running; start it with: tend start --user svc"),
        "{out}"
    );

    let (code, out, err) = h.run(&["status", "--user", "svc", "--json"]);
    assert_eq!(code, 3, "installed and stopped\n{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["os"]["manager"], "systemd");
    assert_eq!(report["os"]["installed"], true);
    let (code, out, _) = h.run(&["status", "--user"]);
    assert_eq!(code, 0);
    assert!(out.contains("svc "), "{out}");

    let (code, out, err) = h.run(&["uninstall", "--user", "svc"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!copy.exists());
    assert!(!h.path("cfg/systemd/user/svc.service").exists());
    assert!(out.contains("its logs remain in"), "{out}");
    let (code, _, err) = h.run(&["uninstall", "--user", "svc"]);
    assert_eq!(code, 3, "not installed any more: {err}");
    let (code, _, err) = h.run(&["stop", "--user", "svc"]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn install_user_refuses_an_account_and_changes_nothing() {
    let h = Home::new();
    fake_systemctl(&h);
    let cfg = h.write(
        "app/svc.toml",
        &format!("name = \"svc\"\ncommand = [\"{FIXTURE}\"]\n[service]\naccount = \"system\"\n"),
    );
    let (code, _, err) = h.run(&["install", "--user", cfg.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot be used with --user"), "{err}");
    assert!(!h.path("cfg/tend/svc.toml").exists());
}
