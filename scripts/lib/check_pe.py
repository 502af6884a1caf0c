#!/usr/bin/env python3
"""Reads tend.exe's version resource and application manifest back from the PE file and
checks them against the release version (scripts/dist-check).

    check_pe.py TEND_EXE VERSION
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import binfmt  # noqa: E402


def main() -> int:
    exe, version = Path(sys.argv[1]), sys.argv[2]
    data = exe.read_bytes()
    info = binfmt.pe_info(data)
    vi = binfmt.version_info(data)
    print(f"machine 0x{info['machine']:x}, timestamp {info['timestamp']}, version resource:")
    for k, v in sorted(vi["strings"].items()):
        print(f"  {k} = {v}")
    print(f"  (fixed) FileVersion {vi['file_version']}, ProductVersion {vi['product_version']}")
    problems = []
    if info["machine"] != 0x8664:
        problems.append("not an x86-64 image")
    numeric = ".".join(re.match(r"(\d+)\.(\d+)\.(\d+)", version).groups()) + ".0"
    if vi["file_version"] != numeric or vi["product_version"] != numeric:
        problems.append(f"fixed versions are not {numeric}")
    want = {
        "FileVersion": version,
        "ProductVersion": version,
        "ProductName": "tend",
        "CompanyName": "tend",
        "OriginalFilename": "tend.exe",
    }
    for k, v in want.items():
        if vi["strings"].get(k) != v:
            problems.append(f"{k} is {vi['strings'].get(k)!r}, not {v!r}")
    if not vi["strings"].get("FileDescription"):
        problems.append("no FileDescription")
    man = binfmt.manifest(data)
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
