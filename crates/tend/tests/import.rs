//! `tend import`: for each source format, a source (written from the tool's docs) that runs
//! the fixture with arguments holding spaces and quotes and with environment variables is
//! imported, validated and run; the running program's real argv and environment are
//! checked, and so is the restart intent (a program that exits 1 is restarted, or not).
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::{Env, FIXTURE, wait_until};

/// The fixture's arguments after its path, the same in every source.
fn want_args(env: &Env) -> Vec<String> {
    [
        "--dump",
        &env.path("dump").display().to_string(),
        "--counter",
        &env.path("count").display().to_string(),
        "--arg",
        "hello world",
        "--arg",
        "it\"s",
        "--exit",
        "1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Writes the source, imports it, validates the result, runs it and checks what the program
/// got. Returns the imported TOML.
fn import_and_run(env: &Env, from: &str, file: &str, source: &str, restarts: bool) -> String {
    let dir = env.dir.path().display().to_string();
    let text = source.replace("{fixture}", FIXTURE).replace("{dir}", &dir);
    std::fs::write(env.path(file), text).unwrap();
    let (code, toml, err) = env.run(&["import", "--from", from, file]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(env.path("imported.toml"), &toml).unwrap();
    let (code, out, err) = env.run(&["validate", "imported.toml"]);
    assert_eq!(code, 0, "{out}{err}\n{toml}");

    let mut tend = env.spawn(&["run", "imported.toml"]);
    let starts = |n: usize| env.read("count").lines().count() >= n;
    if restarts {
        assert!(
            wait_until(Duration::from_secs(20), || starts(2)),
            "not restarted: {}\n{toml}",
            tend.stderr()
        );
        tend.signal(nix::sys::signal::Signal::SIGTERM);
        tend.wait_exit(Duration::from_secs(20))
            .expect("tend stopped");
    } else {
        let status = tend.wait_exit(Duration::from_secs(20)).expect("tend ended");
        assert_eq!(status.code(), Some(1), "{}", tend.stderr());
        assert_eq!(env.read("count").lines().count(), 1, "{toml}");
    }

    let dump = env.read("dump");
    let argv: Vec<String> = dump
        .lines()
        .filter_map(|l| l.strip_prefix("arg "))
        .map(str::to_owned)
        .collect();
    assert_eq!(argv[1..], want_args(env)[..], "{dump}\n{toml}");
    for var in ["GREETING=hello world", "QUOTE=it\"s"] {
        assert!(
            dump.lines().any(|l| l == format!("env {var}")),
            "{var} missing:\n{dump}\n{toml}"
        );
    }
    toml
}

#[test]
fn systemd_unit() {
    let env = Env::new();
    let toml = import_and_run(
        &env,
        "systemd",
        "fix.service",
        r#"[Unit]
Description=fixture

[Service]
Environment="GREETING=hello world" 'QUOTE=it"s'
ExecStart={fixture} --dump {dir}/dump --counter {dir}/count \
    --arg "${GREETING}" --arg 'it"s' --exit 1
Restart=on-failure
RestartSec=200ms
Nice=5
"#,
        true,
    );
    assert!(
        toml.contains("# systemd Nice=5: tend has no priority"),
        "{toml}"
    );
}

#[test]
fn systemd_unit_without_restart_is_not_restarted() {
    let env = Env::new();
    import_and_run(
        &env,
        "systemd",
        "once.service",
        "[Service]\nEnvironment=\"GREETING=hello world\" 'QUOTE=it\"s'\nExecStart={fixture} --dump {dir}/dump --counter {dir}/count --arg \"hello world\" --arg 'it\"s' --exit 1\n",
        false,
    );
}

#[test]
fn supervisord_conf() {
    let env = Env::new();
    let toml = import_and_run(
        &env,
        "supervisord",
        "supervisord.conf",
        r#"[program:fix]
command={fixture} --dump %(here)s/dump --counter %(here)s/count --arg "hello world" --arg 'it"s' --exit 1
environment=GREETING="hello world",QUOTE="it\"s"
autorestart=unexpected
umask=022
"#,
        true,
    );
    assert!(toml.contains("# supervisord umask = 022"), "{toml}");
}

#[test]
fn pm2_ecosystem_file() {
    let env = Env::new();
    let toml = import_and_run(
        &env,
        "pm2",
        "ecosystem.config.js",
        r#"// pm2 ecosystem file
module.exports = {
  apps: [{
    name: 'fix',
    script: '{fixture}',
    args: "--dump {dir}/dump --counter {dir}/count --arg 'hello world' --arg 'it\"s' --exit 1",
    env: { GREETING: 'hello world', QUOTE: 'it"s', },
    restart_delay: 200,
    instances: 2,
  }],
};
"#,
        true,
    );
    assert!(toml.contains("# pm2 instances = 2"), "{toml}");
}

#[test]
fn nssm_dump() {
    let env = Env::new();
    // As `nssm dump fix` prints it: values quoted by NSSM's quote() (`\"` for a quote,
    // backslashes before it doubled).
    let toml = import_and_run(
        &env,
        "nssm",
        "fix.nssm.txt",
        r#"C:\nssm\nssm.exe install fix {fixture}
C:\nssm\nssm.exe set fix AppParameters "--dump {dir}/dump --counter {dir}/count --arg \"hello world\" --arg \"it\\\"s\" --exit 1"
C:\nssm\nssm.exe set fix AppEnvironmentExtra ":GREETING=hello world"
C:\nssm\nssm.exe set fix AppEnvironmentExtra "+QUOTE=it\"s"
C:\nssm\nssm.exe set fix AppExit Default Restart
C:\nssm\nssm.exe set fix AppRestartDelay 200
C:\nssm\nssm.exe set fix AppPriority BELOW_NORMAL_PRIORITY_CLASS
C:\nssm\nssm.exe set fix DisplayName fix
C:\nssm\nssm.exe set fix ObjectName LocalSystem
C:\nssm\nssm.exe set fix Start SERVICE_AUTO_START
"#,
        true,
    );
    assert!(
        toml.contains("# nssm AppPriority = BELOW_NORMAL_PRIORITY_CLASS: tend has no priority"),
        "{toml}"
    );
}

#[test]
fn shawl_command_line() {
    let env = Env::new();
    let toml = import_and_run(
        &env,
        "shawl",
        "shawl.txt",
        r#""C:\Program Files\shawl\shawl.exe" run --name fix --restart-delay 200 --priority below-normal --env "GREETING=hello world" --env "QUOTE=it\"s" -- {fixture} --dump {dir}/dump --counter {dir}/count --arg "hello world" --arg "it\"s" --exit 1"#,
        true,
    );
    assert!(toml.contains("# shawl --priority below-normal"), "{toml}");
}

#[test]
fn winsw_xml() {
    let env = Env::new();
    let toml = import_and_run(
        &env,
        "winsw",
        "fix.xml",
        r#"<service>
  <id>fix</id>
  <name>Fixture</name>
  <executable>{fixture}</executable>
  <arguments>--dump %BASE%/dump --counter {dir}/count --arg "hello world" --arg "it\"s" --exit 1</arguments>
  <env name="GREETING" value="hello world"/>
  <env name="QUOTE" value="it&quot;s"/>
  <onfailure action="restart" delay="1 sec"/>
  <priority>idle</priority>
</service>
"#,
        true,
    );
    assert!(toml.contains("# WinSW priority = idle"), "{toml}");
}

#[test]
fn winsw_yaml() {
    let env = Env::new();
    import_and_run(
        &env,
        "winsw",
        "fix.yml",
        "id: fix\nexecutable: {fixture}\narguments: >\n  --dump {dir}/dump --counter {dir}/count\n  --arg \"hello world\" --arg \"it\\\"s\" --exit 1\nenv:\n  - name: GREETING\n    value: hello world\n  - name: QUOTE\n    value: 'it\"s'\nonFailure:\n  - action: restart\n",
        true,
    );
}

#[test]
fn servy_export() {
    let env = Env::new();
    let toml = import_and_run(
        &env,
        "servy",
        "fix.json",
        r#"{
  "Name": "fix",
  "ExecutablePath": "{fixture}",
  "Parameters": "--dump {dir}/dump --counter {dir}/count --arg \"hello world\" --arg \"it\\\"s\" --exit 1",
  "EnvironmentVariables": "GREETING=hello world;QUOTE=it\\\"s",
  "RecoveryAction": 2,
  "MaxRestartAttempts": 3,
  "HeartbeatInterval": 5,
  "Priority": 1
}"#,
        true,
    );
    assert!(toml.contains("# Servy Priority = 1"), "{toml}");
}

#[test]
fn several_programs_go_to_files_and_are_not_overwritten() {
    let env = Env::new();
    std::fs::write(
        env.path("supervisord.conf"),
        "[program:a]\ncommand=/bin/true\n\n[program:b]\ncommand=/bin/false\n",
    )
    .unwrap();
    let import = |force: &[&str]| {
        let args = [
            "import",
            "--from",
            "supervisord",
            "supervisord.conf",
            "--out",
            "conf",
        ];
        env.run(&[&args[..], force].concat())
    };
    let (code, out, err) = import(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("wrote conf/a.toml") && out.contains("wrote conf/b.toml"),
        "{out}"
    );
    let (code, _, err) = env.run(&["validate", "conf/b.toml"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = import(&[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("already exist") && err.contains("--force"),
        "{err}"
    );
    let (code, _, err) = import(&["--force"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn bad_input_names_file_line_and_setting() {
    let env = Env::new();
    std::fs::write(
        env.path("eco.config.js"),
        "module.exports = {\n  apps: [{\n    script: path.join(__dirname, 'a.js'),\n  }],\n};\n",
    )
    .unwrap();
    let (code, _, err) = env.run(&["import", "--from", "pm2", "eco.config.js"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("eco.config.js:3:") && err.contains("JavaScript"),
        "{err}"
    );
    let (code, _, err) = env.run(&["import", "--from", "nssm", "no-such-service"]);
    assert_eq!(code, 2);
    assert!(err.contains("no such file"), "{err}");
}

/// `--install` takes one program: a source with several is refused before anything is
/// asked of the machine (no root needed to hear it), naming them and the way out.
#[test]
fn install_refuses_a_source_with_several_programs() {
    let env = Env::new();
    std::fs::write(
        env.path("supervisord.conf"),
        "[program:a]\ncommand=/bin/true\n[program:b]\ncommand=/bin/true\n",
    )
    .unwrap();
    let (code, out, err) = env.run(&[
        "import",
        "--from",
        "supervisord",
        "supervisord.conf",
        "--install",
        "--replace",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("holds 2 programs (a, b)"), "{err}");
    assert!(err.contains("--out DIR"), "{err}");
}

/// The flags of `--install` mean nothing without it, and a name tend cannot use is
/// refused naming the flag.
#[test]
fn install_flags_need_install_and_a_valid_name() {
    let env = Env::new();
    std::fs::write(
        env.path("web.service"),
        format!("[Service]\nExecStart={FIXTURE} --sleep\n"),
    )
    .unwrap();
    let (code, _, err) = env.run(&["import", "--from", "systemd", "web.service", "--replace"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--install"), "{err}");
    let (code, _, err) = env.run(&[
        "import",
        "--from",
        "systemd",
        "web.service",
        "--install",
        "--name",
        "no spaces please",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--name \"no spaces please\""), "{err}");
}
