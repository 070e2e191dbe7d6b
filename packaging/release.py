#!/usr/bin/env python3
"""Package built kubectl-gate binaries for a release: archives, checksums, krew manifest, formula.

    python packaging/release.py --binaries dist/bin [--version 0.1.0] [--platforms linux/amd64]
                                [--max-glibc 2.28] [--out dist/release]

--version defaults to the project's one version (canarygate/__init__.py); a different one (say a
tag that was not bumped in the source) is refused. --binaries holds, per platform, what the native
CI jobs built with packaging/build_binary.py --release-name: the PyInstaller onefile binary and
(not for windows) the onedir tree:

    kubectl-gate-linux-amd64    kubectl-gate-linux-amd64-onedir/{kubectl-gate,_internal/}
    kubectl-gate-linux-arm64    kubectl-gate-linux-arm64-onedir/
    kubectl-gate-darwin-amd64   kubectl-gate-darwin-amd64-onedir/
    kubectl-gate-darwin-arm64   kubectl-gate-darwin-arm64-onedir/
    kubectl-gate-windows-amd64.exe

Every executable's header (ELF, Mach-O, PE) must match the OS and CPU in its name (binfmt.py).
For linux, prints the newest glibc the onedir tree needs; --max-glibc refuses a build above it.
--platforms packages only those (the local `make release-linux-amd64`); the formula needs all four
onedir platforms, so it is skipped (and said) otherwise.

Writes to --out:

    kubectl-gate_v<version>_<os>_<arch>.tar.gz   (.zip for windows): the onefile binary, LICENSE
        and, except on windows, the kubectl_complete-gate shim.
    kubectl-gate_v<version>_<os>_<arch>_onedir.tar.gz   (linux, darwin): the onedir tree at the
        top (kubectl-gate, _internal/), LICENSE and the shim. Symlinks in the tree are replaced
        by what they point to, if that is inside the tree; one that dangles or points outside
        fails the release.
    <archive>.sha256         "<hex>  <archive>", read by install.sh
    checksums.txt            every archive, read by install.sh to find the latest release
    gate.yaml                krew/gate.yaml filled in: linux gets the onedir archives (the Linux
        tree holds no symlink, checked here, and starts about 3x faster; a noexec /tmp does not
        break it), darwin and windows the onefile (see the caveats in krew/gate.yaml)
    canary-gate.rb           packaging/homebrew/canary-gate.rb (onedir archives), filled in likewise

Every archive holds regular files and directories only (krew's extractor rejects anything else,
krew#359), with fixed owners and timestamps (SOURCE_DATE_EPOCH), so the bytes are reproducible.

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
from collections.abc import Sequence

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import binfmt

ROOT = pathlib.Path(__file__).resolve().parents[1]
VERSION_SOURCE = ROOT / "canarygate" / "__init__.py"
KREW_ONEDIR_OS = {"linux"}  # krew links bin; onedir needs a symlink-free tree and a bootloader that follows it
KREW_TEMPLATE = ROOT / "krew" / "gate.yaml"
FORMULA_TEMPLATE = ROOT / "packaging" / "homebrew" / "canary-gate.rb"
DEFAULT_BASE_URL = "https://github.com/canary-gate/canary-gate/releases"
PLATFORMS = [("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64"), ("windows", "amd64")]
ONEDIR_PLATFORMS = [p for p in PLATFORMS if p[0] != "windows"]  # Homebrew and install.sh; krew uses onefile
BIN = "kubectl-gate"
SHIM_NAME = "kubectl_complete-gate"
SHIM = f'#!/bin/sh\n# kubectl calls this for `kubectl gate <TAB>` (kubectl >= 1.26).\nexec {BIN} __complete "$@"\n'
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


class ReleaseError(Exception):
    pass


def project_version(source: pathlib.Path = VERSION_SOURCE) -> str:
    """__version__ from canarygate/__init__.py, read without importing it (the one source)."""
    import ast

    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__version__"]:
            return ast.literal_eval(node.value)
    raise ReleaseError(f"no __version__ in {source}")


def parse_platforms(text: str | None) -> list[tuple[str, str]]:
    if not text:
        return list(PLATFORMS)
    wanted = [tuple(item.strip().split("/", 1)) for item in text.split(",") if item.strip()]
    unknown = [w for w in wanted if w not in PLATFORMS]
    if unknown or not wanted:
        raise ReleaseError(
            f"unknown platform(s) {unknown or text!r}: choose from " + ", ".join(f"{o}/{a}" for o, a in PLATFORMS)
        )
    return [p for p in PLATFORMS if p in wanted]


def check_executable(path: pathlib.Path, os_: str, arch: str) -> None:
    try:
        binfmt.check(path, os_, arch)
    except binfmt.FormatError as exc:
        raise ReleaseError(str(exc)) from None


def parse_glibc(text: str) -> tuple[int, int]:
    try:
        major, minor = (int(x) for x in text.split("."))
    except ValueError:
        raise ReleaseError(f"--max-glibc wants MAJOR.MINOR, e.g. 2.28, not {text!r}") from None
    return major, minor


def check_glibc(os_: str, arch: str, files: list[pathlib.Path], limit: tuple[int, int] | None) -> str:
    """The glibc floor of a linux build, as a line to print; raises when above `limit`."""
    floor, which = binfmt.tree_glibc_floor(files)
    if floor is None:
        return f"{os_}/{arch}: needs no versioned glibc symbol"
    text = f"{floor[0]}.{floor[1]}"
    if limit and floor > limit:
        raise ReleaseError(
            f"{os_}/{arch} needs glibc {text} ({which}), above --max-glibc "
            f"{limit[0]}.{limit[1]}: build on an older base (the manylinux_2_28-class container)"
        )
    return f"{os_}/{arch}: needs glibc >= {text} (newest: {pathlib.Path(which).name})"


def tag_of(version: str) -> str:
    bare = version[1:] if version.startswith("v") else version
    if not SEMVER.match(bare):
        raise ReleaseError(f"not a semantic version: {version!r} (expected e.g. 0.1.0)")
    return "v" + bare


def archive_name(tag: str, os_: str, arch: str) -> str:
    return f"{BIN}_{tag}_{os_}_{arch}.{'zip' if os_ == 'windows' else 'tar.gz'}"


def onedir_archive_name(tag: str, os_: str, arch: str) -> str:
    return f"{BIN}_{tag}_{os_}_{arch}_onedir.tar.gz"


def binary_name(os_: str, arch: str) -> str:
    return f"{BIN}-{os_}-{arch}{'.exe' if os_ == 'windows' else ''}"


def onedir_name(os_: str, arch: str) -> str:
    return f"{BIN}-{os_}-{arch}-onedir"


# An archive member: (name, bytes, mode) for a regular file, (name, None, mode) for a directory.
Member = tuple[str, "bytes | None", int]


def tree_members(root: pathlib.Path) -> list[Member]:
    """The onedir tree as regular files and directories only.

    A symlink is replaced by a copy of its target (a file, or a directory recursively) when that
    target is inside the tree; a dangling link, a link out of the tree, a link loop, or anything
    that is not a file, directory or symlink raises ReleaseError: krew's and other strict tar
    extractors reject symlinks (krew#359), and a link out of the tree would not survive install.
    """
    top = root.resolve()
    members: list[Member] = []

    def add(path: pathlib.Path, rel: str, chain: tuple[pathlib.Path, ...]) -> None:
        if path.is_symlink():
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError) as exc:
                raise ReleaseError(
                    f"{root}: symlink {rel} -> {os.readlink(path)} is dangling or a loop ({exc}); "
                    f"release archives hold regular files only"
                ) from None
            if real != top and top not in real.parents:
                raise ReleaseError(
                    f"{root}: symlink {rel} -> {os.readlink(path)} points outside the onedir tree; "
                    f"release archives hold regular files only (krew#359): fix the build"
                )
        else:
            real = path
        if real.is_dir():
            key = real.resolve()
            if key in chain:
                raise ReleaseError(f"{root}: symlink {rel} makes a directory loop")
            if rel:
                members.append((rel, None, 0o755))
            for child in sorted(real.iterdir(), key=lambda p: p.name):
                add(child, f"{rel}/{child.name}" if rel else child.name, (*chain, key))
        elif real.is_file():
            mode = 0o755 if real.stat().st_mode & 0o111 else 0o644
            members.append((rel, real.read_bytes(), mode))
        else:
            raise ReleaseError(f"{root}: {rel} is neither a regular file nor a directory")

    add(root, "", ())
    return members


def sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_tar_gz(path: pathlib.Path, members: Sequence[Member], mtime: int) -> None:
    """Regular files and directories only, sorted (a directory before what it holds), owner 0."""
    with (
        path.open("wb") as f,
        gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=mtime, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, data, mode in sorted(members, key=lambda m: m[0]):
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = mode, mtime
            info.type = tarfile.REGTYPE if data is not None else tarfile.DIRTYPE
            info.size = len(data) if data is not None else 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def write_zip(path: pathlib.Path, members: Sequence[Member], mtime: int) -> None:
    import time

    stamp = max(time.gmtime(mtime)[:6], (1980, 1, 1, 0, 0, 0))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in sorted(members):
            if data is None:  # NB: only onefile archives are zips, and they hold files only
                raise ReleaseError(f"{path.name}: {name} is a directory, which the zip writer does not take")
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = (0o100000 | mode) << 16  # regular file with its mode
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            zf.writestr(info, data)


class Built:
    """What build_archives made: {(os, arch): (archive name, sha256)} per kind, and notes to print."""

    def __init__(self) -> None:
        self.onefile: dict[tuple[str, str], tuple[str, str]] = {}
        self.onedir: dict[tuple[str, str], tuple[str, str]] = {}
        self.symlinked: set[tuple[str, str]] = set()  # onedir trees that held symlinks
        self.notes: list[str] = []

    def krew(self) -> dict[tuple[str, str], tuple[str, str]]:
        """The archive krew installs per platform: onedir on linux, onefile elsewhere."""
        return {key: self.onedir[key] if key[0] in KREW_ONEDIR_OS else value for key, value in self.onefile.items()}


def _write(out: pathlib.Path, name: str, members: Sequence[Member], mtime: int, zip_: bool = False) -> tuple[str, str]:
    path = out / name
    (write_zip if zip_ else write_tar_gz)(path, members, mtime)
    digest = sha256(path)
    (out / f"{name}.sha256").write_text(f"{digest}  {name}\n")
    return name, digest


def build_archives(
    version: str,
    binaries: pathlib.Path,
    license_file: pathlib.Path,
    out: pathlib.Path,
    mtime: int,
    platforms: list[tuple[str, str]] | None = None,
    max_glibc: tuple[int, int] | None = None,
) -> Built:
    tag = tag_of(version)
    platforms = platforms or list(PLATFORMS)
    if not license_file.is_file():
        raise ReleaseError(f"no licence file at {license_file}: krew requires a LICENSE in every archive")
    license_data = license_file.read_bytes()
    out.mkdir(parents=True, exist_ok=True)
    built = Built()
    for os_, arch in platforms:
        src = binaries / binary_name(os_, arch)
        if not src.is_file() or src.is_symlink():
            raise ReleaseError(f"missing binary for {os_}/{arch}: expected a regular file at {src}")
        check_executable(src, os_, arch)
        exe_name = BIN + (".exe" if os_ == "windows" else "")
        members: list[Member] = [(exe_name, src.read_bytes(), 0o755), ("LICENSE", license_data, 0o644)]
        if os_ != "windows":
            members.append((SHIM_NAME, SHIM.encode(), 0o755))
        built.onefile[(os_, arch)] = _write(out, archive_name(tag, os_, arch), members, mtime, os_ == "windows")
    for os_, arch in [p for p in platforms if p in ONEDIR_PLATFORMS]:
        src = binaries / onedir_name(os_, arch)
        if not src.is_dir() or src.is_symlink():
            raise ReleaseError(
                f"missing onedir build for {os_}/{arch}: expected a directory at {src} "
                f"(packaging/build_binary.py --mode onedir --release-name)"
            )
        exe = src / BIN
        if not exe.is_file() or exe.is_symlink() or not os.access(exe, os.X_OK):
            raise ReleaseError(f"{src} has no executable {BIN} at its top")
        check_executable(exe, os_, arch)
        links = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_symlink())
        if links:
            built.symlinked.add((os_, arch))
            if os_ in KREW_ONEDIR_OS:
                raise ReleaseError(
                    f"{src} holds symlinks ({', '.join(links[:3])}): krew installs the {os_} "
                    f"onedir tree and its tar reader refuses symlinks"
                )
        if os_ == "linux":
            files = [src / BIN, *(p for p in (src / "_internal").rglob("*"))]
            built.notes.append(check_glibc(os_, arch, files, max_glibc))
        members = tree_members(src)
        reserved = {"LICENSE", SHIM_NAME} & {m[0] for m in members}
        if reserved:
            raise ReleaseError(f"{src} already holds {sorted(reserved)}, which the archive adds")
        members += [("LICENSE", license_data, 0o644), (SHIM_NAME, SHIM.encode(), 0o755)]
        built.onedir[(os_, arch)] = _write(out, onedir_archive_name(tag, os_, arch), members, mtime)
    every = sorted([*built.onefile.values(), *built.onedir.values()])
    (out / "checksums.txt").write_text("".join(f"{d}  {n}\n" for n, d in every))
    return built


def fill_krew(template: str, tag: str, base_url: str, archives: dict) -> str:
    """The krew manifest for `archives` ({(os, arch): (name, sha256)}); platforms without one are
    dropped (a partial local release), and the caveats' ?ref= pinned to this tag."""
    doc = yaml.safe_load(template)
    old = doc["spec"]["version"]
    doc["spec"]["version"] = tag
    caveats = doc["spec"].get("caveats", "")
    if f"?ref={old}" not in caveats:
        raise ReleaseError(f"krew caveats must pin the manifests to the release (?ref={old})")
    doc["spec"]["caveats"] = caveats.replace(f"?ref={old}", f"?ref={tag}")
    kept, seen = [], set()
    for platform in doc["spec"]["platforms"]:
        labels = platform["selector"]["matchLabels"]
        key = (labels["os"], labels["arch"])
        seen.add(key)
        if key not in archives:
            continue
        name, digest = archives[key]
        onedir = name.endswith("_onedir.tar.gz")
        wanted = {BIN + (".exe" if key[0] == "windows" else ""), "LICENSE"} | ({"_internal"} if onedir else set())
        if {f["from"] for f in platform.get("files", [])} != wanted:
            raise ReleaseError(f"krew manifest: {key[0]}/{key[1]} must install {sorted(wanted)} from {name}")
        platform["uri"] = f"{base_url}/download/{tag}/{name}"
        platform["sha256"] = digest
        kept.append(platform)
    if set(archives) - seen:
        raise ReleaseError(f"krew manifest lacks platforms {sorted(set(archives) - seen)}")
    doc["spec"]["platforms"] = kept
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
    if filled != set(ONEDIR_PLATFORMS):
        raise ReleaseError(f"formula: filled {sorted(filled)}, expected {sorted(ONEDIR_PLATFORMS)}")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--version",
        help="release version, e.g. 0.1.0 (tag v0.1.0); default and only accepted value: canarygate.__version__",
    )
    parser.add_argument("--binaries", required=True, type=pathlib.Path, help="folder of per-platform binaries")
    parser.add_argument("--platforms", help="comma-separated os/arch to package (default: all five)")
    parser.add_argument("--max-glibc", help="refuse a linux build that needs a newer glibc, e.g. 2.28")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "dist" / "release")
    parser.add_argument("--license", type=pathlib.Path, default=ROOT / "LICENSE")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"releases URL (default {DEFAULT_BASE_URL})")
    parser.add_argument("--krew-template", type=pathlib.Path, default=KREW_TEMPLATE)
    parser.add_argument("--formula-template", type=pathlib.Path, default=FORMULA_TEMPLATE)
    parser.add_argument("--version-source", type=pathlib.Path, default=VERSION_SOURCE, help=argparse.SUPPRESS)
    parser.add_argument("--write-back", action="store_true", help="also rewrite the krew and formula templates")
    args = parser.parse_args(argv)
    try:
        source = project_version(args.version_source)
        version = args.version or source
        if tag_of(version) != tag_of(source):
            where = args.version_source
            shown = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
            raise ReleaseError(
                f"version {version} is not the project's version {source} ({shown}): "
                f"bump __version__ there and add a CHANGES.md entry first"
            )
        tag = tag_of(version)
        platforms = parse_platforms(args.platforms)
        if args.write_back and platforms != PLATFORMS:
            raise ReleaseError("--write-back needs every platform: a partial manifest would replace the full one")
        limit = parse_glibc(args.max_glibc) if args.max_glibc else None
        mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01, zip's earliest
        built = build_archives(version, args.binaries, args.license, args.out, mtime, platforms, limit)
        base = args.base_url.rstrip("/")
        krew = fill_krew(args.krew_template.read_text(), tag, base, built.krew())
        formula = None
        if set(built.onedir) == set(ONEDIR_PLATFORMS):
            formula = fill_formula(args.formula_template.read_text(), tag, base, built.onedir)
    except (ReleaseError, OSError) as exc:
        print(f"release.py: error: {exc}", file=sys.stderr)
        return 1
    (args.out / "gate.yaml").write_text(krew)
    written = [args.out / "gate.yaml"]
    if formula is not None:
        (args.out / "canary-gate.rb").write_text(formula)
        written.append(args.out / "canary-gate.rb")
    else:
        (args.out / "canary-gate.rb").unlink(missing_ok=True)
        print(
            "release.py: no Homebrew formula: it needs the onedir builds of "
            + ", ".join(f"{o}/{a}" for o, a in ONEDIR_PLATFORMS)
        )
    if args.write_back:
        args.krew_template.write_text(krew)
        if formula is not None:
            args.formula_template.write_text(formula)
    for note in built.notes:
        print(f"release.py: {note}")
    for name, digest in sorted([*built.onefile.values(), *built.onedir.values()]):
        print(f"{digest}  {args.out / name}")
    print("wrote " + " and ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
