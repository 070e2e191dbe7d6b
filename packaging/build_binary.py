#!/usr/bin/env python3
"""Build the `kubectl-gate` binary with PyInstaller (onefile or onedir), then smoke-test it.

    .venv/bin/python packaging/build_binary.py [--mode onefile|onedir] [--dist dist] [--release-name]

Builds whatever `kubectl_gate.cli:main` is at the time, from packaging/pyinstaller/kubectl-gate.spec:

    --mode onefile (default)  dist/kubectl-gate (kubectl-gate.exe on Windows): one self-extracting
                              file, for krew on macOS and Windows; unpacks itself on every run
    --mode onedir             dist/onedir/kubectl-gate/{kubectl-gate,_internal/}: for krew on Linux,
                              Homebrew and install.sh; starts several times faster (docs/packaging.md#binaries)

PYTHONHASHSEED=0 and SOURCE_DATE_EPOCH (default: the last commit's time) make two builds on the
same machine byte-identical (docs/packaging.md#reproducible-builds). Then runs `kubectl-gate --help`,
`kubectl-gate version --client` and `kubectl-gate install --crd-only` (package data) from the build and
prints the start-up time; a failing smoke test fails the build.
--measure N times N runs of each and prints the medians.

--release-name also copies the build to where packaging/release.py expects it:
dist/bin/kubectl-gate-<os>-<arch>[.exe] (onefile) or the folder dist/bin/kubectl-gate-<os>-<arch>-onedir/.
PyInstaller is not a cross-compiler: run this on each platform, once per mode.
Needs `pip install 'pyinstaller>=6.10,<7'` in the same environment as the project.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "pyinstaller" / "kubectl-gate.spec"


def platform_tag() -> str:
    os_ = {"linux": "linux", "darwin": "darwin", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{os_}-{arch}"


def source_date_epoch() -> str:
    if "SOURCE_DATE_EPOCH" in os.environ:
        return os.environ["SOURCE_DATE_EPOCH"]
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip().isdigit():
            return out.stdout.strip()
    except OSError:
        pass
    return "315532800"


#: `install --crd-only` reads package data: the manifests must be inside the binary.
SMOKE = (["--help"], ["version", "--client"], ["install", "--crd-only"])


def built_binary(dist: pathlib.Path, mode: str) -> pathlib.Path:
    """Where a build with this --dist and --mode puts the executable."""
    exe = "kubectl-gate.exe" if sys.platform == "win32" else "kubectl-gate"
    return dist / exe if mode == "onefile" else dist / "onedir" / "kubectl-gate" / exe


def tree_size(path: pathlib.Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def measure(binary: pathlib.Path, rounds: int) -> dict[str, float]:
    """Median wall time in seconds of `rounds` runs of each smoke command (after one warm-up run)."""
    medians = {}
    for args in SMOKE:
        subprocess.run([str(binary), *args], capture_output=True, timeout=120, check=True)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            subprocess.run([str(binary), *args], capture_output=True, timeout=120, check=True)
            times.append(time.perf_counter() - start)
        medians[" ".join(args)] = statistics.median(times)
    return medians


def smoke(binary: pathlib.Path) -> None:
    for args in SMOKE:
        start = time.perf_counter()
        result = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(
                f"build_binary: smoke test `kubectl-gate {' '.join(args)}` failed "
                f"(exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )
        first = (result.stdout.strip().splitlines() or [""])[0]
        print(f"build_binary: kubectl-gate {' '.join(args)}: ok in {elapsed * 1000:.0f} ms: {first}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mode",
        choices=["onefile", "onedir"],
        default="onefile",
        help="onefile (krew on macOS and Windows; the default) or onedir (krew on Linux, Homebrew, install.sh)",
    )
    parser.add_argument(
        "--compress",
        choices=["yes", "no"],
        default="no",
        help="onefile: zlib-compress what the file unpacks at every start (smaller file, slower start; "
        "docs/packaging.md#binaries); default no",
    )
    parser.add_argument("--dist", type=pathlib.Path, default=ROOT / "dist")
    parser.add_argument("--work", type=pathlib.Path, default=ROOT / "build" / "pyinstaller")
    parser.add_argument("--release-name", action="store_true", help="also copy to dist/bin/kubectl-gate-<os>-<arch>")
    parser.add_argument("--no-smoke", action="store_true", help="skip running the built binary")
    parser.add_argument(
        "--measure",
        type=int,
        default=0,
        metavar="N",
        help="time N runs of --help and version --client and print the medians",
    )
    args = parser.parse_args(argv)

    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        print("build_binary: PyInstaller is not installed: pip install 'pyinstaller>=6.10,<7'", file=sys.stderr)
        return 2
    probe = subprocess.run(
        [sys.executable, "-c", "from kubectl_gate.cli import main"], cwd=ROOT, capture_output=True, text=True
    )
    if probe.returncode != 0:
        print(f"build_binary: cannot import kubectl_gate.cli:main:\n{probe.stderr}", file=sys.stderr)
        return 2

    env = dict(os.environ, PYTHONHASHSEED="0", SOURCE_DATE_EPOCH=source_date_epoch())
    distpath = args.dist if args.mode == "onefile" else args.dist / "onedir"
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(distpath),
        "--workpath",
        str(args.work / args.mode),
        str(SPEC),
        "--",
        "--mode",
        args.mode,
        "--compress",
        args.compress,
    ]
    print("build_binary:", " ".join(cmd))
    if subprocess.run(cmd, cwd=ROOT, env=env).returncode != 0:
        print("build_binary: PyInstaller failed", file=sys.stderr)
        return 1
    binary = built_binary(args.dist, args.mode)
    built = binary if args.mode == "onefile" else binary.parent
    print(f"build_binary: built {args.mode} {built} ({tree_size(built) / 1e6:.1f} MB)")
    if args.mode == "onedir":
        links = sorted(str(p.relative_to(built)) for p in built.rglob("*") if p.is_symlink())
        if links:  # release.py dereferences those inside the tree (krew#359 style extractors)
            print(f"build_binary: note: {len(links)} symlink(s) in the onedir tree: {', '.join(links[:5])}")
    if not args.no_smoke:
        smoke(binary)
    if args.measure > 0:
        for command, seconds in measure(binary, args.measure).items():
            print(f"build_binary: {args.mode} kubectl-gate {command}: median of {args.measure} {seconds * 1000:.0f} ms")
    if args.release_name:
        target = args.dist / "bin" / f"kubectl-gate-{platform_tag()}{binary.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if args.mode == "onefile":
            shutil.copy2(binary, target)
        else:
            target = target.with_name(target.name + "-onedir")
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(built, target, symlinks=True)  # release.py decides about symlinks
        print(f"build_binary: copied to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
