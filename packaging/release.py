#!/usr/bin/env python3
"""Package built kubectl-gate binaries for a release: archives, checksums, krew manifest, formula.

    python packaging/release.py --version 0.1.0 --binaries build/bin [--out dist/release]

--binaries holds one PyInstaller onefile binary per platform, as the native CI jobs produced them:

    kubectl-gate-linux-amd64    kubectl-gate-linux-arm64
    kubectl-gate-darwin-amd64   kubectl-gate-darwin-arm64
    kubectl-gate-windows-amd64.exe

Writes to --out:

    kubectl-gate_v<version>_<os>_<arch>.tar.gz   (.zip for windows): the binary, LICENSE and,
        except on windows, the kubectl_complete-gate shim; regular files only (krew rejects
        symlinks), fixed owners and timestamps (SOURCE_DATE_EPOCH), so the bytes are reproducible
    <archive>.sha256         "<hex>  <archive>", read by install.sh
    checksums.txt            every archive, read by install.sh to find the latest release
    gate.yaml                krew/gate.yaml with version, URIs and sha256 filled in
    canary-gate.rb           packaging/homebrew/canary-gate.rb, filled in likewise

With --write-back, also rewrites krew/gate.yaml and packaging/homebrew/canary-gate.rb in place.
Only the standard library and PyYAML are used.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import pathlib
import re
import sys
import tarfile
import zipfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
KREW_TEMPLATE = ROOT / "krew" / "gate.yaml"
FORMULA_TEMPLATE = ROOT / "packaging" / "homebrew" / "canary-gate.rb"
DEFAULT_BASE_URL = "https://github.com/canary-gate/canary-gate/releases"
PLATFORMS = [("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64"), ("windows", "amd64")]
BIN = "kubectl-gate"
SHIM_NAME = "kubectl_complete-gate"
SHIM = f'#!/bin/sh\n# kubectl calls this for `kubectl gate <TAB>` (kubectl >= 1.26).\nexec {BIN} __complete "$@"\n'
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


class ReleaseError(Exception):
    pass


def tag_of(version: str) -> str:
    bare = version[1:] if version.startswith("v") else version
    if not SEMVER.match(bare):
        raise ReleaseError(f"not a semantic version: {version!r} (expected e.g. 0.1.0)")
    return "v" + bare


def archive_name(tag: str, os_: str, arch: str) -> str:
    return f"{BIN}_{tag}_{os_}_{arch}.{'zip' if os_ == 'windows' else 'tar.gz'}"


def binary_name(os_: str, arch: str) -> str:
    return f"{BIN}-{os_}-{arch}{'.exe' if os_ == 'windows' else ''}"


def sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_tar_gz(path: pathlib.Path, members: list[tuple[str, bytes, int]], mtime: int) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, mtime
            info.type = tarfile.REGTYPE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    with path.open("wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=mtime, compresslevel=9) as gz:
        gz.write(raw.getvalue())


def write_zip(path: pathlib.Path, members: list[tuple[str, bytes, int]], mtime: int) -> None:
    import time

    stamp = max(time.gmtime(mtime)[:6], (1980, 1, 1, 0, 0, 0))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in sorted(members):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = (0o100000 | mode) << 16  # regular file with its mode
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            zf.writestr(info, data)


def build_archives(
    version: str, binaries: pathlib.Path, license_file: pathlib.Path, out: pathlib.Path, mtime: int
) -> dict[tuple[str, str], tuple[str, str]]:
    """Returns {(os, arch): (archive name, sha256)}."""
    tag = tag_of(version)
    if not license_file.is_file():
        raise ReleaseError(f"no licence file at {license_file}: krew requires a LICENSE in every archive")
    license_data = license_file.read_bytes()
    out.mkdir(parents=True, exist_ok=True)
    result: dict[tuple[str, str], tuple[str, str]] = {}
    for os_, arch in PLATFORMS:
        src = binaries / binary_name(os_, arch)
        if not src.is_file() or src.is_symlink():
            raise ReleaseError(f"missing binary for {os_}/{arch}: expected a regular file at {src}")
        exe = BIN + (".exe" if os_ == "windows" else "")
        members = [(exe, src.read_bytes(), 0o755), ("LICENSE", license_data, 0o644)]
        if os_ != "windows":
            members.append((SHIM_NAME, SHIM.encode(), 0o755))
        name = archive_name(tag, os_, arch)
        path = out / name
        (write_zip if os_ == "windows" else write_tar_gz)(path, members, mtime)
        digest = sha256(path)
        (out / f"{name}.sha256").write_text(f"{digest}  {name}\n")
        result[(os_, arch)] = (name, digest)
    (out / "checksums.txt").write_text("".join(f"{d}  {n}\n" for n, d in sorted(result.values())))
    return result


def fill_krew(template: str, tag: str, base_url: str, archives: dict) -> str:
    doc = yaml.safe_load(template)
    doc["spec"]["version"] = tag
    seen = set()
    for platform in doc["spec"]["platforms"]:
        labels = platform["selector"]["matchLabels"]
        key = (labels["os"], labels["arch"])
        if key not in archives:
            raise ReleaseError(f"krew manifest names {key}, which has no archive")
        name, digest = archives[key]
        platform["uri"] = f"{base_url}/download/{tag}/{name}"
        platform["sha256"] = digest
        seen.add(key)
    if seen != set(archives):
        raise ReleaseError(f"krew manifest lacks platforms {sorted(set(archives) - seen)}")
    return f"# Generated by packaging/release.py for {tag}.\n" + yaml.safe_dump(doc, sort_keys=False, width=100)


FORMULA_ARCH = {"on_arm": "arm64", "on_intel": "amd64"}
FORMULA_OS = {"on_macos": "darwin", "on_linux": "linux"}


def fill_formula(template: str, tag: str, base_url: str, archives: dict) -> str:
    lines = template.splitlines(keepends=True)
    os_ = arch = None
    filled = set()
    for i, line in enumerate(lines):
        word = line.strip().split(" ")[0]
        if word in FORMULA_OS:
            os_ = FORMULA_OS[word]
        elif word in FORMULA_ARCH:
            arch = FORMULA_ARCH[word]
        elif word == "url" and os_ and arch:
            name, digest = archives[(os_, arch)]
            indent = line[: len(line) - len(line.lstrip())]
            lines[i] = f'{indent}url "{base_url}/download/{tag}/{name}"\n'
            if not lines[i + 1].strip().startswith("sha256 "):
                raise ReleaseError(f"formula: no sha256 line after the {os_}/{arch} url")
            lines[i + 1] = f'{indent}sha256 "{digest}"\n'
            filled.add((os_, arch))
            arch = None
    wanted = {k for k in archives if k[0] != "windows"}
    if filled != wanted:
        raise ReleaseError(f"formula: filled {sorted(filled)}, expected {sorted(wanted)}")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", required=True, help="release version, e.g. 0.1.0 (tag v0.1.0)")
    parser.add_argument("--binaries", required=True, type=pathlib.Path, help="folder of per-platform binaries")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "dist" / "release")
    parser.add_argument("--license", type=pathlib.Path, default=ROOT / "LICENSE")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"releases URL (default {DEFAULT_BASE_URL})")
    parser.add_argument("--krew-template", type=pathlib.Path, default=KREW_TEMPLATE)
    parser.add_argument("--formula-template", type=pathlib.Path, default=FORMULA_TEMPLATE)
    parser.add_argument("--write-back", action="store_true", help="also rewrite the krew and formula templates")
    args = parser.parse_args(argv)
    try:
        tag = tag_of(args.version)
        mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01, zip's earliest
        archives = build_archives(args.version, args.binaries, args.license, args.out, mtime)
        base = args.base_url.rstrip("/")
        krew = fill_krew(args.krew_template.read_text(), tag, base, archives)
        formula = fill_formula(args.formula_template.read_text(), tag, base, archives)
    except (ReleaseError, OSError) as exc:
        print(f"release.py: error: {exc}", file=sys.stderr)
        return 1
    (args.out / "gate.yaml").write_text(krew)
    (args.out / "canary-gate.rb").write_text(formula)
    if args.write_back:
        args.krew_template.write_text(krew)
        args.formula_template.write_text(formula)
    for name, digest in sorted(archives.values()):
        print(f"{digest}  {args.out / name}")
    print(f"wrote {args.out / 'gate.yaml'} and {args.out / 'canary-gate.rb'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
