//! `tend validate`.
#![cfg(unix)]

mod common;

use common::Env;

#[test]
fn three_mistakes_print_three_errors_with_key_paths_and_exit_2() {
    let env = Env::new();
    let cfg = env.config(
        "name = \"demo\"\ncommand = [\"{fixture}\"]\n[restart]\npolicy = \"sometimes\"\nmax_delay = \"5x\"\n[stop]\ntimout = \"3s\"\n",
    );
    let (code, out, err) = env.run(&["validate", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("error: ") && l.contains("svc.toml:"))
        .collect();
    assert_eq!(errors.len(), 3, "{err}");
    assert!(
        errors[0].contains("svc.toml:4: restart.policy: \"sometimes\" is not one of"),
        "{err}"
    );
    assert!(errors[1].contains(
        "svc.toml:5: restart.max_delay: \"5x\" is not a duration (examples: \"500ms\", \"30s\", \"5m\")"
    ));
    assert!(errors[2].contains("svc.toml:7: stop.timout: unknown key (did you mean `timeout`?)"));
    assert!(
        err.lines().last().unwrap().contains("has 3 error(s)"),
        "{err}"
    );
}

#[test]
fn valid_config_exits_0_and_warnings_do_not_fail() {
    let env = Env::new();
    let cfg = env.config("name = \"demo\"\ncommand = [\"./later\"]\n");
    let (code, out, err) = env.run(&["validate", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("is valid (service `demo`, 1 warning(s))"),
        "{out}"
    );
    assert!(
        err.contains("warning:") && err.contains("command[0]"),
        "{err}"
    );
}

#[test]
fn missing_file_and_bad_usage() {
    let env = Env::new();
    let (code, _, err) = env.run(&["validate", "nope.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("nope.toml"), "{err}");
    let (code, _, _) = env.run(&["frobnicate"]);
    assert_eq!(code, 2);
}
