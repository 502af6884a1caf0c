#!/usr/bin/env python3
"""Reads tend.exe's version resource and application manifest back from the PE file and
checks them against the release version (scripts/dist-check).

    check_pe.py TEND_EXE VERSION

binutils reads the file: `objdump -f` for the machine, and the MinGW `windres`, which
decompiles the resources to .rc text, for the version resource and the manifest.
"""

import re
import subprocess
import sys

WINDRES = "x86_64-w64-mingw32-windres"


def run(*cmd: str) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit(f"check_pe.py: {cmd[0]} is missing: it comes with binutils and, for windres, "
                 "the MinGW toolchain (../shared/wincross/setup-windows-cross.sh or apt-get install binutils-mingw-w64-x86-64)")
    if r.returncode != 0:
        sys.exit(f"check_pe.py: {' '.join(cmd)} failed: {r.stderr.strip()}")
    return r.stdout


def main() -> int:
    exe, version = sys.argv[1], sys.argv[2]
    problems = []
    if "file format pei-x86-64" not in run("objdump", "-f", exe):
        problems.append("not an x86-64 PE image")
    rc = run(WINDRES, "-i", exe, "-O", "rc")
    fixed = {k: ".".join(re.findall(r"\d+", v)) for k, v in
             re.findall(r"^\s*(FILEVERSION|PRODUCTVERSION)\s+([\d, ]+)$", rc, re.M)}
    strings = dict(re.findall(r'^\s*VALUE "(\w+)", "((?:[^"]|"")*)"$', rc, re.M))
    print("version resource:")
    for k, v in sorted(strings.items()):
        print(f"  {k} = {v}")
    print(f"  (fixed) FileVersion {fixed.get('FILEVERSION')}, ProductVersion {fixed.get('PRODUCTVERSION')}")
    numeric = ".".join(re.match(r"(\d+)\.(\d+)\.(\d+)", version).groups()) + ".0"
    if fixed.get("FILEVERSION") != numeric or fixed.get("PRODUCTVERSION") != numeric:
        problems.append(f"fixed versions are not {numeric}")
    want = {
        "FileVersion": version,
        "ProductVersion": version,
        "ProductName": "tend",
        "CompanyName": "tend",
        "OriginalFilename": "tend.exe",
    }
    for k, v in want.items():
        if strings.get(k) != v:
            problems.append(f"{k} is {strings.get(k)!r}, not {v!r}")
    if not strings.get("FileDescription"):
        problems.append("no FileDescription")
    # The manifest (resource type 24) comes out as one .rc string per line, quotes doubled.
    block = re.search(r"^1 24 .*?^BEGIN$(.*?)^END$", rc, re.M | re.S)
    man = "".join(re.findall(r'^\s*"(.*)"$', block.group(1), re.M)).replace('""', '"') if block else ""
    if not man:
        problems.append("no application manifest (RT_MANIFEST)")
    # No UAC virtualisation: an explicit requestedExecutionLevel (asInvoker) turns it off.
    if not re.search(r'<requestedExecutionLevel level="asInvoker"', man):
        problems.append("manifest: no requestedExecutionLevel asInvoker")
    if not re.search(r"<longPathAware[^>]*>true</longPathAware>", man):
        problems.append("manifest: not longPathAware")
    print("manifest: asInvoker, longPathAware" if not problems else man)
    for p in problems:
        print(f"problem: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
