#!/usr/bin/env python3
"""The release's standalone SBOM: CycloneDX 1.5 JSON, made from the dependency lists that
`cargo auditable` embedded in the binaries (section .dep-v0, zlib-compressed JSON), so the
file says exactly what the shipped bytes were built from, per binary.

    sbom.py --version V --commit C --epoch E --out tend-V.cdx.json dist/tend dist/tend.exe
    sbom.py --dump BINARY      # print the embedded list (what `cargo audit bin` reads)

Deterministic: the timestamp is SOURCE_DATE_EPOCH, the serial number is derived from the
commit, and components are sorted.
"""

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import uuid
import zlib
from pathlib import Path


def embedded(path: Path) -> dict:
    # binutils' objcopy reads ELF and PE alike; it writes a copy of the binary too, so both
    # outputs go to a temp dir.
    with tempfile.TemporaryDirectory() as tmp:
        dep = Path(tmp) / "dep-v0"
        r = subprocess.run(["objcopy", f"--dump-section=.dep-v0={dep}", str(path), str(Path(tmp) / "copy")],
                           capture_output=True, text=True)
        if r.returncode != 0 or not dep.exists():
            sys.exit(f"sbom.py: {path} has no .dep-v0 section ({r.stderr.strip()}): "
                     "was it built with `cargo auditable build`?")
        raw = dep.read_bytes()
    return json.loads(zlib.decompress(raw))


def purl(p: dict) -> str:
    if p.get("source") == "crates.io":
        return f"pkg:cargo/{p['name']}@{p['version']}"
    # Workspace crates (source "local") have no registry; name them as what they are.
    return f"pkg:cargo/{p['name']}@{p['version']}?repository_url=local"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", type=Path)
    ap.add_argument("--version")
    ap.add_argument("--commit")
    ap.add_argument("--epoch", type=int)
    ap.add_argument("--out", type=Path)
    ap.add_argument("binaries", nargs="*", type=Path)
    a = ap.parse_args()
    if a.dump:
        json.dump(embedded(a.dump), sys.stdout, indent=2)
        print()
        return
    if not (a.version and a.commit and a.epoch is not None and a.out and a.binaries):
        ap.error("--version, --commit, --epoch, --out and at least one binary are needed")

    components = {}  # bom-ref -> component
    deps = {}  # bom-ref -> set of bom-refs
    root_ref = f"pkg:cargo/tend@{a.version}?repository_url=local"
    for binary in a.binaries:
        pkgs = embedded(binary)["packages"]
        refs = [purl(p) for p in pkgs]
        for p, ref in zip(pkgs, refs):
            deps.setdefault(ref, set()).update(refs[i] for i in p.get("dependencies", []))
            if p.get("root"):
                continue
            c = components.setdefault(
                ref,
                {
                    "type": "library",
                    "bom-ref": ref,
                    "name": p["name"],
                    "version": p["version"],
                    "purl": ref,
                    "properties": [],
                },
            )
            # Which binary carries it: Linux and Windows link different OS crates.
            c["properties"].append({"name": "tend:binary", "value": binary.name})
            c["properties"].append({"name": "cargo:kind", "value": p.get("kind", "runtime")})
    for c in components.values():
        c["properties"] = sorted({(x["name"], x["value"]) for x in c["properties"]})
        c["properties"] = [{"name": n, "value": v} for n, v in c["properties"]]
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'tend-sbom:' + a.commit)}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.datetime.fromtimestamp(a.epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "cargo-auditable"}]},
            "component": {
                "type": "application",
                "bom-ref": root_ref,
                "name": "tend",
                "version": a.version,
                "purl": root_ref,
                "properties": [{"name": "git:commit", "value": a.commit}],
            },
        },
        "components": [components[k] for k in sorted(components)],
        "dependencies": [{"ref": k, "dependsOn": sorted(v)} for k, v in sorted(deps.items())],
    }
    a.out.write_text(json.dumps(bom, indent=2) + "\n")
    print(f"sbom.py: {len(components)} components from {', '.join(b.name for b in a.binaries)}")


if __name__ == "__main__":
    main()
