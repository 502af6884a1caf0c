#!/usr/bin/env python3
"""Makes the Windows zip, the .deb and the package manifests of a release (scripts/dist).

Each package has one template under packaging/; `@NAME@` placeholders are filled with the
version, URLs and checksums, and a placeholder left unfilled is an error. Everything is
byte-for-byte reproducible: file times come from SOURCE_DATE_EPOCH, owners are root, and
archive members are sorted. Standard library only (dpkg-deb makes the .deb).
"""

import argparse
import datetime
import email.utils
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fill(template: Path, values: dict) -> str:
    text = template.read_text(encoding="utf-8")
    text = re.sub(r"@([A-Z0-9_]+)@", lambda m: str(values.get(m.group(1), m.group(0))), text)
    left = sorted(set(re.findall(r"@[A-Z0-9_]+@", text)))
    if left:
        sys.exit(f"package.py: {template}: no value for {', '.join(left)}")
    return text


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def zip_deterministic(dest: Path, members: list, epoch: int) -> None:
    """members: (name in zip, source path, unix mode). Fixed times, sorted, no extra fields."""
    # DOS times cannot go before 1980.
    stamp = max(epoch, 315532800)
    date_time = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).timetuple()[:6]
    with zipfile.ZipFile(dest, "w") as z:
        for name, src, mode in sorted(members):
            info = zipfile.ZipInfo(name, date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that external_attr carries the mode
            info.external_attr = (0o100000 | mode) << 16
            z.writestr(info, Path(src).read_bytes(), compresslevel=9)


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    # mtime 0 and no file name in the header: same input, same bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as g:
        g.write(data)
    return buf.getvalue()


def build_deb(root: Path, out: Path, values: dict, epoch: int) -> Path:
    pkg = root / "packaging" / "deb"
    stage = Path(tempfile.mkdtemp(prefix="tend-deb."))
    files = {}  # path in package -> (bytes, mode)
    files["usr/bin/tend"] = ((out / "tend").read_bytes(), 0o755)
    for page in sorted((out / "man").glob("*.1")):
        files[f"usr/share/man/man1/{page.name}.gz"] = (gzip_bytes(page.read_bytes()), 0o644)
    comp = out / "completions"
    files["usr/share/bash-completion/completions/tend"] = ((comp / "tend.bash").read_bytes(), 0o644)
    files["usr/share/zsh/vendor-completions/_tend"] = ((comp / "_tend").read_bytes(), 0o644)
    files["usr/share/fish/vendor_completions.d/tend.fish"] = ((comp / "tend.fish").read_bytes(), 0o644)
    files["usr/share/doc/tend/copyright"] = ((pkg / "copyright").read_bytes(), 0o644)
    files["usr/share/doc/tend/changelog.Debian.gz"] = (
        gzip_bytes(fill(pkg / "changelog.in", values).encode()),
        0o644,
    )
    files["usr/share/lintian/overrides/tend"] = ((pkg / "lintian-overrides").read_bytes(), 0o644)

    size_kib = sum((len(data) + 1023) // 1024 for data, _ in files.values())
    control = fill(pkg / "control.in", {**values, "INSTALLED_SIZE": size_kib})
    md5sums = "".join(
        f"{hashlib.md5(data).hexdigest()}  {path}\n" for path, (data, _) in sorted(files.items())
    )
    dirs = set()
    for path, (data, mode) in files.items():
        dest = stage / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        dest.chmod(mode)
        parent = Path(path).parent
        while str(parent) != ".":
            dirs.add(parent)
            parent = parent.parent
    (stage / "DEBIAN").mkdir(exist_ok=True)
    write(stage / "DEBIAN" / "control", control)
    write(stage / "DEBIAN" / "md5sums", md5sums)
    for d in ["DEBIAN", *map(str, dirs)]:
        (stage / d).chmod(0o755)
    (stage / "DEBIAN" / "control").chmod(0o644)
    (stage / "DEBIAN" / "md5sums").chmod(0o644)
    stage.chmod(0o755)
    # The tar members get these times; dpkg-deb takes the ar member times from
    # SOURCE_DATE_EPOCH itself.
    for p in [stage, *stage.rglob("*")]:
        os.utime(p, (epoch, epoch), follow_symlinks=False)
    deb = out / f"tend_{values['DEB_VERSION']}_amd64.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "-z9", "--threads-max=1", "--build", str(stage), str(deb)],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)},
    )
    shutil.rmtree(stage)
    return deb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=Path, required=True, help="the checkout (packaging/ is read)")
    ap.add_argument("--out", type=Path, required=True, help="dist/, with tend, tend.exe, man/, completions/")
    ap.add_argument("--version", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--epoch", type=int, required=True)
    ap.add_argument("--url", required=True, help="where this release's files are downloadable")
    a = ap.parse_args()

    out, tmpl = a.out, a.root / "packaging"
    url = a.url.rstrip("/")
    when = datetime.datetime.fromtimestamp(a.epoch, datetime.timezone.utc)
    homepage = "https://example.invalid/tend"
    for line in (a.root / "Cargo.toml").read_text().splitlines():
        m = re.match(r'\s*repository\s*=\s*"([^"]+)"', line)
        if m:
            homepage = m.group(1)
            break

    # The Windows zip: what winget, Scoop and Chocolatey download.
    zip_name = f"tend-{a.version}-windows-x86_64.zip"
    zip_deterministic(
        out / zip_name,
        [
            ("tend.exe", out / "tend.exe", 0o755),
            ("completions/tend.ps1", out / "completions" / "tend.ps1", 0o644),
            # PowerShell DSC v3 finds a resource by its manifest next to the executable on
            # PATH (docs/dsc.md).
            ("tend.dsc.resource.json", a.root / "contrib" / "dsc" / "tend.dsc.resource.json", 0o644),
        ],
        a.epoch,
    )
    src_name = f"tend-{a.version}-src.tar.gz"
    values = {
        "VERSION": a.version,
        # Debian: a pre-release part sorts before the release with `~`; `-1` is the package
        # revision (tend is packaged from its upstream release, not a Debian-native package).
        "DEB_VERSION": a.version.replace("-", "~", 1) + "-1",
        "COMMIT": a.commit,
        "COMMIT_SHORT": a.commit[:12],
        "HOMEPAGE": homepage,
        "RELEASE_DATE": when.strftime("%Y-%m-%d"),
        "RFC2822_DATE": email.utils.format_datetime(when),
        "WIN_ZIP_NAME": zip_name,
        "WIN_ZIP_URL": f"{url}/{zip_name}",
        "WIN_ZIP_SHA256": sha256(out / zip_name),
        "WIN_ZIP_SHA256_UPPER": sha256(out / zip_name).upper(),
        "SRC_URL": f"{url}/{src_name}",
        "SRC_SHA256": sha256(out / src_name),
    }

    deb = build_deb(a.root, out, values, a.epoch)

    pk = out / "packages"
    wg = pk / "winget" / "manifests" / "t" / "Tend" / "Tend" / a.version
    for name in ["Tend.Tend.yaml", "Tend.Tend.installer.yaml", "Tend.Tend.locale.en-US.yaml"]:
        write(wg / name, fill(tmpl / "winget" / f"{name}.in", values))
    write(pk / "scoop" / "tend.json", fill(tmpl / "scoop" / "tend.json.in", values))
    ch = pk / "chocolatey"
    write(ch / "tend.nuspec", fill(tmpl / "chocolatey" / "tend.nuspec.in", values))
    scripts = ["chocolateyinstall.ps1", "chocolateybeforemodify.ps1", "chocolateyuninstall.ps1"]
    for name in scripts:
        # PowerShell 5 reads a BOM-less script as the ANSI code page: keep them ASCII.
        text = fill(tmpl / "chocolatey" / "tools" / f"{name}.in", values)
        text.encode("ascii")
        write(ch / "tools" / name, text.replace("\n", "\r\n"))
    nupkg_chocolatey(ch, a.version, a.epoch)
    write(pk / "homebrew" / "tend.rb", fill(tmpl / "homebrew" / "tend.rb.in", values))
    print(f"package.py: {zip_name}, {deb.name}, packages/ (winget, scoop, chocolatey, homebrew)")


def nupkg_chocolatey(ch: Path, version: str, epoch: int) -> None:
    """The .nupkg `choco pack` would make: an OPC zip with the nuspec and tools/."""
    staged = ch / "nupkg-parts"
    staged.mkdir(exist_ok=True)
    (staged / "[Content_Types].xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" />'
        '<Default Extension="nuspec" ContentType="application/octet" />'
        '<Default Extension="ps1" ContentType="application/octet" />'
        "</Types>"
    )
    (staged / ".rels").write_text(
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Type="http://schemas.microsoft.com/packaging/2010/07/manifest" '
        'Target="/tend.nuspec" Id="R0" />'
        "</Relationships>"
    )
    members = [
        ("[Content_Types].xml", staged / "[Content_Types].xml", 0o644),
        ("_rels/.rels", staged / ".rels", 0o644),
        ("tend.nuspec", ch / "tend.nuspec", 0o644),
    ]
    members += [(f"tools/{p.name}", p, 0o644) for p in sorted((ch / "tools").iterdir())]
    zip_deterministic(ch / f"tend.{version}.nupkg", members, epoch)
    shutil.rmtree(staged)


if __name__ == "__main__":
    main()
