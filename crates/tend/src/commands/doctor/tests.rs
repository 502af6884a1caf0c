//! [`judge`] on facts made by hand: for every check, the facts that make it pass and those
//! that make it fail (or warn, or not apply).

use super::*;

const GIB: u64 = 1 << 30;

/// A service that is fine in every way.
fn fine() -> Facts {
    Facts {
        target: "web.toml".into(),
        flag: "",
        config_warnings: vec![],
        preflight: Ok(Preflight {
            account: None,
            logon_right: None,
            access: Ok(vec![]),
            drift: Drift::Compared {
                config: vec![],
                definition: vec![],
            },
        }),
        account: "isolated".into(),
        logon_right: LogonRight::NotApplicable("built-in".into()),
        log_space: LogSpace {
            dir: "/var/log/tend/web".into(),
            free: Ok(100 * GIB),
            budget: Some(GIB),
        },
        port: Some(Port {
            key: "health.http",
            addr: "127.0.0.1:8080".into(),
            answering: true,
        }),
        run: Run::Running,
        clock: Clock {
            now: 2_000_000_000,
            built: 1_900_000_000,
            local: "2033-05-18T05:33:20+02:00".into(),
            zone_problem: None,
        },
        last_run: Some(LastRun {
            state: "running".into(),
            reason: None,
            stderr: vec![],
            last_crash: None,
        }),
        unfinished: Some(vec![]),
    }
}

fn verdict(f: &Facts, id: &str) -> Check {
    judge(f)
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

#[test]
fn one_check_per_id_in_order_and_all_pass_on_a_fine_service() {
    let checks = judge(&fine());
    let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
    assert_eq!(ids, IDS);
    for c in &checks {
        assert!(
            matches!(c.status, Status::Ok | Status::Skip),
            "{}: {:?} {}",
            c.id,
            c.status,
            c.message
        );
    }
}

#[test]
fn each_check_fails_warns_or_passes_on_its_facts() {
    type Edit = fn(&mut Facts);
    let cases: Vec<(&str, Edit, Status, &str)> = vec![
        ("config", |_| {}, Status::Ok, "loads"),
        (
            "config",
            |f| f.config_warnings = vec!["web.toml:2: command: `srv` not found".into()],
            Status::Fail,
            "install refuses",
        ),
        ("access", |_| {}, Status::Ok, "can reach"),
        (
            "access",
            |f| {
                if let Ok(p) = &mut f.preflight {
                    p.access = Ok(vec!["command `/tmp/x`: private /tmp".into()]);
                }
            },
            Status::Fail,
            "cannot reach 1",
        ),
        (
            "access",
            |f| {
                if let Ok(p) = &mut f.preflight {
                    p.access = Err("this service manager does not check it".into());
                }
            },
            Status::Warn,
            "not checked",
        ),
        (
            "access",
            |f| f.preflight = Err("no systemd".into()),
            Status::Warn,
            "not checked: no systemd",
        ),
        ("account", |_| {}, Status::Ok, "always exists"),
        (
            "account",
            |f| {
                f.account = "www".into();
                if let Ok(p) = &mut f.preflight {
                    p.account = Some(Ok(()));
                }
            },
            Status::Ok,
            "`www` exists",
        ),
        (
            "account",
            |f| {
                f.account = "nobody2".into();
                if let Ok(p) = &mut f.preflight {
                    p.account = Some(Err("create it first".into()));
                }
            },
            Status::Fail,
            "`nobody2` does not exist",
        ),
        ("logon-right", |_| {}, Status::Skip, "built-in"),
        (
            "logon-right",
            |f| {
                f.logon_right = LogonRight::Unknown {
                    account: r"CORP\svc".into(),
                    why: "no LSA under Wine".into(),
                }
            },
            Status::Warn,
            "unknown",
        ),
        (
            "logon-right",
            |f| f.logon_right = LogonRight::Granted(r"CORP\svc".into()),
            Status::Ok,
            "may log on as a service",
        ),
        (
            "logon-right",
            |f| f.logon_right = LogonRight::NotListed(r"CORP\svc".into()),
            Status::Warn,
            "does not list",
        ),
        ("log-space", |_| {}, Status::Ok, "free for at most"),
        (
            "log-space",
            |f| f.log_space.free = Ok(GIB / 2),
            Status::Fail,
            "less than",
        ),
        (
            "log-space",
            |f| f.log_space.budget = None,
            Status::Warn,
            "nothing caps",
        ),
        (
            "log-space",
            |f| f.log_space.free = Err("EIO".into()),
            Status::Warn,
            "cannot tell",
        ),
        ("port", |_| {}, Status::Ok, "answers"),
        (
            "port",
            |f| f.port.as_mut().unwrap().answering = false,
            Status::Fail,
            "nothing answers",
        ),
        (
            "port",
            |f| {
                f.run = Run::Down;
                f.port.as_mut().unwrap().answering = false;
            },
            Status::Ok,
            "is free",
        ),
        (
            "port",
            |f| f.run = Run::Down,
            Status::Fail,
            "something else already answers",
        ),
        (
            "port",
            |f| f.run = Run::Changing("backoff".into()),
            Status::Skip,
            "backoff",
        ),
        ("port", |f| f.port = None, Status::Skip, "no [health]"),
        ("drift", |_| {}, Status::Ok, "what the config renders to"),
        (
            "drift",
            |f| {
                if let Ok(p) = &mut f.preflight {
                    p.drift = Drift::Compared {
                        config: vec![],
                        definition: vec!["- Restart=no".into(), "+ Restart=on-failure".into()],
                    };
                }
            },
            Status::Fail,
            "changed by hand",
        ),
        (
            "drift",
            |f| {
                if let Ok(p) = &mut f.preflight {
                    p.drift = Drift::Compared {
                        config: vec!["+ [stop]".into()],
                        definition: vec![],
                    };
                }
            },
            Status::Warn,
            "differs from the installed copy",
        ),
        (
            "drift",
            |f| {
                if let Ok(p) = &mut f.preflight {
                    p.drift = Drift::NotInstalled;
                }
            },
            Status::Skip,
            "not installed",
        ),
        ("clock", |_| {}, Status::Ok, "local time"),
        (
            "clock",
            |f| f.clock.now = f.clock.built - 1,
            Status::Fail,
            "before this tend was made",
        ),
        (
            "clock",
            |f| {
                // A build that could not tell its date: no verdict on the clock.
                f.clock.built = 0;
                f.clock.now = 0;
            },
            Status::Ok,
            "local time",
        ),
        (
            "clock",
            |f| f.clock.zone_problem = Some("TZ=Nowhere names no time zone".into()),
            Status::Warn,
            "TZ=Nowhere",
        ),
        ("last-failure", |_| {}, Status::Ok, "has not failed"),
        (
            "last-failure",
            |f| {
                f.last_run = Some(LastRun {
                    state: "failed".into(),
                    reason: Some("gave up after 5 restarts".into()),
                    stderr: vec!["panic: no config".into()],
                    last_crash: None,
                })
            },
            Status::Fail,
            "failed: gave up after 5 restarts",
        ),
        (
            "last-failure",
            |f| f.last_run = None,
            Status::Skip,
            "not run yet",
        ),
        ("unfinished", |_| {}, Status::Ok, "no upgrade"),
        (
            "unfinished",
            |f| {
                f.unfinished = Some(vec![
                    "the upgrade of `web` (a -> b) was interrupted before step `swap`".into(),
                ])
            },
            Status::Warn,
            "left unfinished",
        ),
        (
            "unfinished",
            |f| f.unfinished = None,
            Status::Skip,
            "not looked",
        ),
    ];
    for (id, edit, want, says) in cases {
        let mut f = fine();
        edit(&mut f);
        let c = verdict(&f, id);
        assert_eq!(c.status, want, "{id}: {}", c.message);
        assert!(
            c.message.contains(says),
            "{id}: {:?} lacks {says:?}",
            c.message
        );
        if matches!(c.status, Status::Fail) {
            assert!(!c.fix.is_empty(), "{id}: a failure says how to fix it");
        }
    }
}

#[test]
fn a_failure_carries_the_programs_last_stderr_lines() {
    let mut f = fine();
    f.last_run = Some(LastRun {
        state: "failed".into(),
        reason: None,
        stderr: vec!["open /etc/app.yml: no such file".into()],
        last_crash: Some("2026-12-07T03:00:00+00:00: exited with code 2".into()),
    });
    let c = verdict(&f, "last-failure");
    assert_eq!(
        c.details,
        [
            "stderr: open /etc/app.yml: no such file",
            "last crash: 2026-12-07T03:00:00+00:00: exited with code 2"
        ]
    );
    assert!(c.fix.contains("tend start web.toml"), "{}", c.fix);
}

#[test]
fn the_retention_budget_is_active_plus_rotated_per_stream() {
    let mut l = tend_core::LogSpec::with_dir("/l".into());
    l.max_size = 10;
    l.keep = 3;
    l.max_total = 0;
    assert_eq!(retention_budget(&l), Some((10 + 30) * 2));
    l.max_total = 15;
    assert_eq!(retention_budget(&l), Some((10 + 15) * 2));
    l.keep = 0;
    assert_eq!(retention_budget(&l), Some((10 + 15) * 2));
    l.mode = tend_core::LogMode::Combined;
    assert_eq!(retention_budget(&l), Some(10 + 15));
    l.max_total = 0;
    assert_eq!(retention_budget(&l), None, "neither keep nor max_total");
    l.keep = 3;
    l.max_size = 0;
    assert_eq!(retention_budget(&l), None, "max_size = 0 never rotates");
}

#[test]
fn the_table_has_one_line_per_check_and_the_fix_of_each_problem() {
    let mut f = fine();
    f.log_space.free = Ok(1);
    let text = render("web", &judge(&f));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ok    config"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FAIL  log-space     `/var/log/tend/web` has 1 B free")),
        "{text}"
    );
    assert!(text.contains("-> free space there"), "{text}");
    assert!(text.ends_with("web: 1 failed, 0 warnings\n"), "{text}");
}
