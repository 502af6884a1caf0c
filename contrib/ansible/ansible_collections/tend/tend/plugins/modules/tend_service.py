#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT OR Apache-2.0
"""The tend.tend.tend_service module: a service under tend, converged with `tend apply`."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: tend_service
short_description: Manage a service supervised by tend
version_added: "0.1.0"
description:
  - Puts a program under tend as an OS service (systemd or launchd) described by one tend
    config, and keeps it as described.
  - The config comes from a file on the managed host (O(src)), inline TOML (O(content)) or
    a dictionary (O(settings)). O(content) and O(settings) are written to
    O(config_dir)/O(name).toml; that file is the service's config from then on.
  - Every change goes through C(tend apply --json), the one idempotent verb of tend, so a
    second run reports C(ok) and touches nothing (no unit file, no config copy, no restart),
    and a changed config is applied by reload or restart by tend's own rules.
  - Check mode runs C(tend apply --check) and changes nothing; diff mode shows how the
    installed config changes, as a unified diff.
  - A config that does not validate fails the task with tend's own errors (file, line and
    key) and changes nothing.
author:
  - tend developers
requirements:
  - tend on the managed host (Linux or macOS).
options:
  name:
    description:
      - The service's name (the config's C(name)).
    type: str
    required: true
  state:
    description:
      - V(present) installs or updates the service (and starts it if its C(start) is
        C(auto) or C(delayed-auto) when it is first installed).
      - V(started) and V(stopped) also make sure it runs or does not.
      - V(restarted) restarts it (always a change).
      - V(absent) uninstalls it (its logs stay) and removes the config file this module
        wrote.
    type: str
    choices: [present, absent, started, stopped, restarted]
    default: present
  src:
    description:
      - A tend config file on the managed host. Relative paths in it resolve against its
        directory.
    type: path
  content:
    description:
      - The config as TOML text.
    type: str
  settings:
    description:
      - The config as a dictionary (sections as nested dictionaries), written as TOML.
        C(name) is set from O(name) when missing.
    type: dict
  config_dir:
    description:
      - Where O(content) and O(settings) are written, as O(name).toml.
    type: path
    default: /etc/tend-ansible
  scope:
    description:
      - V(system) for system services (root), V(user) for the connecting user's own
        services (C(--user)).
    type: str
    choices: [system, user]
    default: system
  wait:
    description:
      - Wait until each changed service runs (and is healthy, with C([health])), as
        C(tend apply --wait); a service that does not fails the task.
    type: bool
    default: false
  tend:
    description:
      - The tend executable on the managed host.
    type: path
    default: tend
notes:
  - Supports check mode and diff mode.
  - Windows hosts are driven by tend's PowerShell DSC resource instead (docs/dsc.md).
seealso:
  - name: tend apply
    description: The verb this module drives; its JSON is a documented contract.
    link: https://example.invalid/tend/docs/cli.md
"""

EXAMPLES = r"""
- name: A Go API under tend, from a config shipped with the build
  tend.tend.tend_service:
    name: api
    src: /opt/api/api.toml
    state: started
    wait: true

- name: The same as a dictionary
  tend.tend.tend_service:
    name: api
    settings:
      command: ["/opt/api/api", "-port", "8080"]
      restart:
        delay: 2s
      health:
        http: http://127.0.0.1:8080/health
    state: started

- name: Gone (its logs stay)
  tend.tend.tend_service:
    name: api
    state: absent
"""

RETURN = r"""
action:
  description: What tend apply decided for the service (install, update, update-reload,
    update-restart, unchanged, start), or remove, start, stop, restart, none.
  returned: always
  type: str
  sample: update-reload
apply:
  description: The document C(tend apply --json) printed (schema 1), when it ran.
  returned: when tend apply ran
  type: dict
state:
  description: The service's state as C(tend list --json) says it after the task
    (running, stopped, ...), or absent.
  returned: always
  type: str
  sample: running
config:
  description: The config file the service was applied from.
  returned: when state is not absent
  type: str
"""

import json
import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule


def toml_value(v):
    """One TOML value: strings as basic strings (JSON's escapes are TOML's), lists inline."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join("%s = %s" % (toml_key(k), toml_value(x)) for k, x in v.items()) + " }"
    raise ValueError("cannot write %r (%s) as TOML" % (v, type(v).__name__))


def toml_key(k):
    k = str(k)
    return k if re.match(r"^[A-Za-z0-9_-]+$", k) else json.dumps(k, ensure_ascii=False)


def to_toml(settings):
    """A dictionary as a TOML document: plain keys first, then one [section] per dict."""
    lines = []
    tables = []
    for k, v in settings.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append("%s = %s" % (toml_key(k), toml_value(v)))
    for k, v in tables:
        lines.append("")
        lines.append("[%s]" % toml_key(k))
        for kk, vv in v.items():
            lines.append("%s = %s" % (toml_key(kk), toml_value(vv)))
    return "\n".join(lines) + "\n"


class Tend(object):
    def __init__(self, module):
        self.module = module
        p = module.params
        self.exe = p["tend"]
        self.scope = ["--user"] if p["scope"] == "user" else []

    def run(self, args, check_rc=False):
        rc, out, err = self.module.run_command([self.exe] + args, check_rc=False)
        if check_rc and rc != 0:
            self.module.fail_json(
                msg="tend %s failed (exit code %d): %s" % (" ".join(args), rc, (err or out).strip()),
                rc=rc,
                stdout=out,
                stderr=err,
            )
        return rc, out, err

    def service(self, name):
        """The service as `tend list --json` has it, or None."""
        rc, out, err = self.run(["list"] + self.scope + ["--json"], check_rc=True)
        try:
            doc = json.loads(out)
        except ValueError:
            self.module.fail_json(msg="tend list --json printed no JSON: %s" % out[:500], stderr=err)
        for s in doc.get("services", []):
            if s.get("name") == name:
                return s
        return None

    def apply(self, config, check, wait):
        args = ["apply"] + self.scope + [config, "--json"]
        if check:
            args.append("--check")
        if wait:
            args.append("--wait")
        rc, out, err = self.run(args)
        try:
            doc = json.loads(out)
        except ValueError:
            self.module.fail_json(
                msg="tend apply printed no JSON (exit code %d): %s" % (rc, (err or out).strip()[:2000]),
                rc=rc,
                stderr=err,
            )
        return rc, doc, err


def failure(doc):
    """tend's own words for why apply failed."""
    if doc.get("error"):
        return doc["error"].get("message", "tend apply failed")
    problems = doc.get("problems") or []
    if problems:
        return "\n".join(
            "%s%s: %s%s"
            % (
                p.get("file") or "",
                ":%s" % p["line"] if p.get("line") else "",
                "%s: " % p["key"] if p.get("key") else "",
                p.get("message", ""),
            )
            for p in problems
            if p.get("severity", "error") == "error"
        ) or "the config is not valid"
    for s in doc.get("services", []):
        if s.get("error"):
            return "%s: %s" % (s.get("name"), s["error"].get("message", "failed"))
    return "tend apply failed (outcome %s)" % doc.get("outcome")


def desired_text(module):
    p = module.params
    if p["content"] is not None:
        return p["content"] if p["content"].endswith("\n") else p["content"] + "\n"
    settings = dict(p["settings"])
    settings.setdefault("name", p["name"])
    try:
        return to_toml(settings)
    except ValueError as e:
        module.fail_json(msg="settings: %s" % e)


def write_if_changed(path, text, mode=0o644):
    """Writes `text` to `path` unless it holds it already (atomically). True if written."""
    try:
        with open(path, "r") as f:
            if f.read() == text:
                return False
    except (IOError, OSError):
        pass
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(
                type="str",
                default="present",
                choices=["present", "absent", "started", "stopped", "restarted"],
            ),
            src=dict(type="path"),
            content=dict(type="str"),
            settings=dict(type="dict"),
            config_dir=dict(type="path", default="/etc/tend-ansible"),
            scope=dict(type="str", default="system", choices=["system", "user"]),
            wait=dict(type="bool", default=False),
            tend=dict(type="path", default="tend"),
        ),
        mutually_exclusive=[("src", "content", "settings")],
        required_if=[("state", "present", ("src", "content", "settings"), True)],
        supports_check_mode=True,
    )
    p = module.params
    name = p["name"]
    check = module.check_mode
    tend = Tend(module)
    result = dict(changed=False, action="none")

    if p["state"] == "absent":
        svc = tend.service(name)
        written = os.path.join(p["config_dir"], name + ".toml")
        if svc is not None:
            result.update(changed=True, action="remove")
            if not check:
                tend.run(["uninstall"] + tend.scope + [name], check_rc=True)
        if p["src"] is None and os.path.exists(written):
            result["changed"] = True
            if not check:
                os.unlink(written)
        result["state"] = "absent"
        module.exit_json(**result)

    has_config = any(p[k] is not None for k in ("src", "content", "settings"))
    config_for_check = None
    if has_config:
        if p["src"] is not None:
            config = p["src"]
            if not os.path.isfile(config):
                module.fail_json(msg="src: `%s` is not a file on the managed host" % config)
            wrote = False
        else:
            text = desired_text(module)
            config = os.path.join(p["config_dir"], name + ".toml")
            try:
                with open(config) as f:
                    wrote = f.read() != text
            except (IOError, OSError):
                wrote = True
            if check:
                # Judged from a file in the same directory (relative paths and base_dir
                # resolve alike); without the directory, it can only be a new install.
                if os.path.isdir(p["config_dir"]):
                    fd, probe = tempfile.mkstemp(prefix=".check-", suffix=".toml", dir=p["config_dir"])
                    with os.fdopen(fd, "w") as f:
                        f.write(text)
                    config_for_check = probe
                else:
                    config_for_check = None
            else:
                if not os.path.isdir(p["config_dir"]):
                    os.makedirs(p["config_dir"], 0o755)
                if wrote:
                    # Judged before it replaces the file the service runs from: a config
                    # tend refuses changes nothing, not even this file.
                    fd, probe = tempfile.mkstemp(prefix=".new-", suffix=".toml", dir=p["config_dir"])
                    try:
                        with os.fdopen(fd, "w") as f:
                            f.write(text)
                        rc, doc, err = tend.apply(probe, True, False)
                    finally:
                        os.unlink(probe)
                    if doc.get("outcome") not in ("unchanged", "changed", "pending"):
                        module.fail_json(msg=failure(doc), rc=rc, apply=doc, stderr=err)
                    write_if_changed(config, text)
        result["config"] = config
        if check and p["src"] is None and config_for_check is None:
            result.update(changed=True, action="install")
        else:
            target = config_for_check if (check and p["src"] is None) else config
            try:
                rc, doc, err = tend.apply(target, check, p["wait"])
            finally:
                if check and p["src"] is None:
                    os.unlink(target)
            result["apply"] = doc
            outcome = doc.get("outcome")
            if outcome not in ("unchanged", "changed", "pending"):
                module.fail_json(msg=failure(doc), rc=rc, apply=doc, stderr=err)
            mine = [s for s in doc.get("services", []) if s.get("name") == name]
            if not mine:
                module.fail_json(
                    msg="the config names service `%s`, not `%s`"
                    % (", ".join(s.get("name", "?") for s in doc.get("services", [])), name),
                    apply=doc,
                )
            svc_doc = mine[0]
            result["action"] = svc_doc.get("action", "none")
            result["changed"] = bool(svc_doc.get("changed")) or svc_doc.get("result") == "pending" or wrote
            if module._diff and svc_doc.get("unified_diff"):
                result["diff"] = dict(prepared=svc_doc["unified_diff"])
            elif module._diff and svc_doc.get("diff"):
                result["diff"] = dict(prepared="\n".join(svc_doc["diff"]) + "\n")

    svc = tend.service(name)
    if svc is None and not (check and result["changed"]):
        module.fail_json(msg="service `%s` is not installed: give src, content or settings" % name, **result)
    # tend status's states: running, starting, backoff and stopping mean the service is
    # up (LSB "running"); stopped, idle, failed and restarting (a loop that is down) not.
    # A service check mode would install is not up either.
    up = svc is not None and svc.get("state") in ("running", "starting", "backoff", "stopping")
    verb = None
    if p["state"] == "started" and not up:
        verb = "start"
    elif p["state"] == "stopped" and up:
        verb = "stop"
    elif p["state"] == "restarted":
        verb = "restart"
    if verb:
        result["changed"] = True
        if result["action"] in ("none", "unchanged"):
            result["action"] = verb
        if not check:
            tend.run([verb] + tend.scope + [name], check_rc=True)
            svc = tend.service(name)
    result["state"] = svc.get("state") if svc else "absent"
    module.exit_json(**result)


if __name__ == "__main__":
    main()
