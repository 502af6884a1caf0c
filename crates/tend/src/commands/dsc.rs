//! `tend dsc get|set|test|export|schema`: the `Tend/Service` resource of PowerShell DSC v3
//! (and Azure Machine Configuration, which runs DSC). DSC sends one instance as JSON on
//! stdin and reads JSON from stdout; its manifest (contrib/dsc/tend.dsc.resource.json)
//! names these commands.
//!
//! An adapter, not a second engine: every change goes through `tend apply --json`,
//! `uninstall`, `start` and `stop`, and every read through `tend list --json`, run as
//! child processes of this same binary. Their JSON is the contract the resource builds on,
//! exactly as the Ansible module's, so the two drivers cannot disagree with the verbs.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::process::{Command, ExitCode, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CliError, code};
use crate::place::Scope;

/// The instance schema `tend dsc schema` prints (and the manifest embeds): a contract for
/// configuration documents, so properties are only added.
const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://example.invalid/tend/schemas/dsc/service.json",
  "title": "Tend/Service",
  "description": "A program supervised by tend as an OS service, described by one tend config file.",
  "type": "object",
  "required": ["name"],
  "additionalProperties": false,
  "properties": {
    "name": {
      "type": "string",
      "description": "The service's name (the config's name)."
    },
    "path": {
      "type": "string",
      "description": "The tend config file the service is installed from (set, test). Needed to install; when given, test compares the installed config with it and set applies it (tend apply)."
    },
    "scope": {
      "type": "string",
      "enum": ["system", "user"],
      "default": "system",
      "description": "system services, or the current user's own (--user)."
    },
    "running": {
      "type": "boolean",
      "description": "Whether the service runs. Left out: whatever tend apply leaves it as (a new service with start = auto is started)."
    },
    "state": {
      "type": "string",
      "readOnly": true,
      "description": "The service's state as tend status says it (running, stopped, failed, ...)."
    },
    "_exist": {
      "type": "boolean",
      "default": true,
      "description": "false: the service must not be installed (set uninstalls it; its logs stay)."
    },
    "_inDesiredState": {
      "type": ["boolean", "null"],
      "readOnly": true,
      "description": "test: whether the instance is as asked."
    }
  }
}
"#;

/// One instance, as DSC sends and reads it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Instance {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    running: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(rename = "_exist", default = "yes")]
    exist: bool,
    #[serde(
        rename = "_inDesiredState",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    in_desired_state: Option<bool>,
    /// DSC's own properties (`_metadata`, ...) are accepted and ignored; anything else is
    /// a mistake the schema would refuse, and so does this.
    #[serde(flatten, skip_serializing)]
    rest: BTreeMap<String, Value>,
}

fn yes() -> bool {
    true
}

pub(crate) fn dsc(operation: &str, export_scope: Scope) -> Result<ExitCode, CliError> {
    match operation {
        "schema" => {
            print!("{SCHEMA}");
            Ok(ExitCode::from(code::OK))
        }
        "export" => export(export_scope),
        op => {
            let input = read_input()?;
            let scope = scope_of(&input)?;
            match op {
                "get" => emit(&actual(&input.name, scope)?),
                "test" => emit(&test(&input, scope)?),
                "set" => set(&input, scope),
                other => Err(CliError::Invalid(format!(
                    "dsc {other}: not an operation (get, set, test, export, schema)"
                ))),
            }
        }
    }
}

/// The instance on stdin, checked against the schema's rules.
fn read_input() -> Result<Instance, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::io("cannot read the instance from stdin", e))?;
    parse_input(&text)
}

fn parse_input(text: &str) -> Result<Instance, CliError> {
    let i: Instance = serde_json::from_str(text).map_err(|e| {
        CliError::Invalid(format!(
            "the instance on stdin is not a Tend/Service instance: {e} (see `tend dsc schema`)"
        ))
    })?;
    if let Some(k) = i.rest.keys().find(|k| !k.starts_with('_')) {
        return Err(CliError::Invalid(format!(
            "the instance has an unknown property `{k}` (known: name, path, scope, running, _exist; see `tend dsc schema`)"
        )));
    }
    crate::place::service_name(&i.name).map_err(|e| CliError::Invalid(format!("name: {e}")))?;
    Ok(i)
}

fn scope_of(i: &Instance) -> Result<Scope, CliError> {
    match i.scope.as_deref() {
        None | Some("system") => Ok(Scope::System),
        Some("user") => Ok(Scope::User),
        Some(other) => Err(CliError::Invalid(format!(
            "scope: `{other}` is not `system` or `user`"
        ))),
    }
}

fn user_flag(scope: Scope) -> &'static [&'static str] {
    match scope {
        Scope::System => &[],
        Scope::User => &["--user"],
    }
}

/// This tend run as a child: (exit code, stdout). Its stderr goes to DSC's stderr, where
/// DSC shows it; stdout stays DSC's JSON only.
fn tend(args: &[&str]) -> Result<(u8, String), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::io("cannot find tend's own executable", e))?;
    let out = Command::new(&exe)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| {
            CliError::io(
                format!("cannot run `{} {}`", exe.display(), args.join(" ")),
                e,
            )
        })?;
    let rc = out
        .status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(code::OS);
    Ok((rc, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// `tend list --json` of a scope: the services' entries.
fn listed(scope: Scope) -> Result<Vec<Value>, CliError> {
    let mut args = vec!["list", "--json"];
    args.extend_from_slice(user_flag(scope));
    let (rc, out) = tend(&args)?;
    if rc != code::OK {
        return Err(CliError::Invalid(format!(
            "tend list --json failed (exit code {rc})"
        )));
    }
    let v: Value = serde_json::from_str(&out)
        .map_err(|e| CliError::Invalid(format!("tend list --json printed no JSON: {e}")))?;
    Ok(v["services"].as_array().cloned().unwrap_or_default())
}

fn instance_of(entry: &Value, scope: Scope) -> Instance {
    let state = entry["state"].as_str().map(str::to_owned);
    Instance {
        name: entry["name"].as_str().unwrap_or_default().to_owned(),
        scope: Some(scope.word().to_owned()),
        running: Some(state.as_deref() == Some("running")),
        state,
        exist: true,
        ..Instance::default()
    }
}

/// The actual state of `name`: `get`.
fn actual(name: &str, scope: Scope) -> Result<Instance, CliError> {
    Ok(listed(scope)?
        .iter()
        .find(|e| e["name"] == name)
        .map_or_else(
            || Instance {
                name: name.to_owned(),
                scope: Some(scope.word().to_owned()),
                exist: false,
                ..Instance::default()
            },
            |e| instance_of(e, scope),
        ))
}

/// `tend apply --json` of one file: (exit code, document).
fn apply(path: &str, scope: Scope, check: bool) -> Result<(u8, Value), CliError> {
    let mut args = vec!["apply", path, "--json"];
    args.extend_from_slice(user_flag(scope));
    if check {
        args.push("--check");
    }
    let (rc, out) = tend(&args)?;
    let doc = serde_json::from_str(&out).map_err(|e| {
        CliError::Invalid(format!("tend apply printed no JSON (exit code {rc}): {e}"))
    })?;
    Ok((rc, doc))
}

/// Refuses, before anything is applied, a file that describes another service. A file
/// that does not load is left to apply, which lists every problem.
fn names_the_service(path: &str, name: &str) -> Result<(), CliError> {
    let opts = tend_config::LoadOptions::default();
    match tend_config::load(std::path::Path::new(path), &opts) {
        Ok(l) if l.spec.name.as_str() != name => Err(CliError::Invalid(format!(
            "path: the config names service `{}`, not `{name}` (nothing was changed)",
            l.spec.name
        ))),
        _ => Ok(()),
    }
}

/// tend's own words for a failed apply.
fn apply_failure(doc: &Value) -> String {
    if let Some(m) = doc["error"]["message"].as_str() {
        return m.to_owned();
    }
    let problems: Vec<String> = doc["problems"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    format!(
                        "{}{}: {}{}",
                        p["file"].as_str().unwrap_or_default(),
                        p["line"]
                            .as_u64()
                            .map(|l| format!(":{l}"))
                            .unwrap_or_default(),
                        p["key"]
                            .as_str()
                            .filter(|k| !k.is_empty())
                            .map(|k| format!("{k}: "))
                            .unwrap_or_default(),
                        p["message"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if !problems.is_empty() {
        return problems.join("\n");
    }
    doc["services"]
        .as_array()
        .and_then(|s| s.iter().find_map(|e| e["error"]["message"].as_str()))
        .unwrap_or("tend apply failed")
        .to_owned()
}

/// `test`: the actual state, with whether it is as `want` asks.
fn test(want: &Instance, scope: Scope) -> Result<Instance, CliError> {
    let mut now = actual(&want.name, scope)?;
    let mut ok = now.exist == want.exist;
    if ok && want.exist {
        if let Some(path) = &want.path {
            names_the_service(path, &want.name)?;
            let (rc, doc) = apply(path, scope, true)?;
            match doc["outcome"].as_str() {
                Some("unchanged") => {}
                Some("pending") => ok = false,
                _ => {
                    return Err(CliError::Invalid(format!(
                        "{} (exit code {rc})",
                        apply_failure(&doc)
                    )));
                }
            }
        }
        if let Some(r) = want.running {
            ok &= now.running == Some(r);
        }
    }
    now.in_desired_state = Some(ok);
    Ok(now)
}

/// `set`: make it so, then say how it is.
fn set(want: &Instance, scope: Scope) -> Result<ExitCode, CliError> {
    let name = want.name.as_str();
    let now = actual(name, scope)?;
    if !want.exist {
        if now.exist {
            let mut args = vec!["uninstall"];
            args.extend_from_slice(user_flag(scope));
            args.push(name);
            run_verb(&args)?;
        }
        return emit(&actual(name, scope)?);
    }
    match &want.path {
        Some(path) => {
            names_the_service(path, name)?;
            let (rc, doc) = apply(path, scope, false)?;
            if !matches!(doc["outcome"].as_str(), Some("unchanged" | "changed")) {
                let _ = writeln!(std::io::stderr(), "error: {}", apply_failure(&doc));
                return Ok(ExitCode::from(if rc == code::OK { code::OS } else { rc }));
            }
        }
        None if !now.exist => {
            return Err(CliError::Invalid(format!(
                "path: `{name}` is not installed; give the config file to install it from"
            )));
        }
        None => {}
    }
    let after = actual(name, scope)?;
    let verb = match want.running {
        Some(true) if after.running != Some(true) => Some("start"),
        Some(false) if after.running == Some(true) => Some("stop"),
        _ => None,
    };
    if let Some(verb) = verb {
        let mut args = vec![verb];
        args.extend_from_slice(user_flag(scope));
        args.push(name);
        run_verb(&args)?;
    }
    emit(&actual(name, scope)?)
}

/// A verb whose words are for people: on stderr, so stdout stays JSON.
fn run_verb(args: &[&str]) -> Result<(), CliError> {
    let (rc, out) = tend(args)?;
    let _ = std::io::stderr().write_all(out.as_bytes());
    if rc == code::OK {
        Ok(())
    } else {
        Err(CliError::Invalid(format!(
            "tend {} failed (exit code {rc})",
            args.join(" ")
        )))
    }
}

/// `export`: every service of the scope, one JSON line each.
fn export(scope: Scope) -> Result<ExitCode, CliError> {
    let mut out = String::new();
    for e in listed(scope)? {
        out.push_str(
            &serde_json::to_string(&instance_of(&e, scope))
                .map_err(|e| CliError::io("cannot write JSON", std::io::Error::other(e)))?,
        );
        out.push('\n');
    }
    super::print_text(&out, "the instances")
}

fn emit(i: &Instance) -> Result<ExitCode, CliError> {
    let mut s = serde_json::to_string(i)
        .map_err(|e| CliError::io("cannot write JSON", std::io::Error::other(e)))?;
    s.push('\n');
    super::print_text(&s, "the instance")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_json_and_names_every_property_an_instance_has() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let props: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let full = Instance {
            name: "api".into(),
            path: Some("/srv/api.toml".into()),
            scope: Some("system".into()),
            running: Some(true),
            state: Some("running".into()),
            exist: true,
            in_desired_state: Some(true),
            rest: BTreeMap::new(),
        };
        let v = serde_json::to_value(&full).unwrap();
        for k in v.as_object().unwrap().keys() {
            assert!(props.contains(&k.as_str()), "{k} is not in the schema");
        }
    }

    #[test]
    fn the_manifest_names_these_operations_and_tends_exit_codes() {
        let m: Value = serde_json::from_str(include_str!(
            "../../../../contrib/dsc/tend.dsc.resource.json"
        ))
        .unwrap();
        assert_eq!(m["type"], "Tend/Service");
        assert_eq!(m["version"], env!("CARGO_PKG_VERSION"));
        for op in ["get", "set", "test", "export"] {
            assert_eq!(m[op]["executable"], "tend", "{op}");
            assert_eq!(m[op]["args"], serde_json::json!(["dsc", op]), "{op}");
            if op != "export" {
                assert_eq!(m[op]["input"], "stdin", "{op}");
            }
        }
        // set deletes on `_exist: false` itself, and both report the state after.
        assert_eq!(m["set"]["handlesExist"], true);
        assert_eq!(
            (&m["set"]["return"], &m["test"]["return"]),
            (&Value::from("state"), &Value::from("state"))
        );
        assert_eq!(
            m["schema"]["command"]["args"],
            serde_json::json!(["dsc", "schema"])
        );
        for (c, _) in m["exitCodes"].as_object().unwrap() {
            let c: u8 = c.parse().unwrap();
            assert!(
                [
                    code::OK,
                    code::PROGRAM_FAILED,
                    code::INVALID,
                    code::NOT_INSTALLED,
                    code::PERMISSION,
                    code::OS
                ]
                .contains(&c),
                "{c}"
            );
        }
    }

    #[test]
    fn input_is_checked_like_the_schema_says() {
        let i = parse_input(r#"{"name":"api","_metadata":{"x":1}}"#).unwrap();
        assert!(i.exist, "_exist defaults to true");
        let cases = [
            (r#"{"nmae":"api"}"#, "not a Tend/Service instance"),
            (
                r#"{"name":"api","runing":true}"#,
                "unknown property `runing`",
            ),
            (r#"{"name":"a/b"}"#, "name:"),
            (
                r#"{"name":"api","_exist":"no"}"#,
                "not a Tend/Service instance",
            ),
        ];
        for (text, says) in cases {
            let e = parse_input(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        let bad_scope = parse_input(r#"{"name":"api","scope":"machine"}"#).unwrap();
        assert!(
            scope_of(&bad_scope)
                .unwrap_err()
                .to_string()
                .contains("scope:")
        );
    }
}
