#!/usr/bin/env python3
"""Build the onefile `kubectl-gate` binary with PyInstaller, then smoke-test it.

    .venv/bin/python packaging/build_binary.py [--dist dist] [--release-name]

Builds whatever `kubectl_gate.cli:main` is at the time, from packaging/pyinstaller/kubectl-gate.spec,
into dist/kubectl-gate (kubectl-gate.exe on Windows). PYTHONHASHSEED=0 and SOURCE_DATE_EPOCH
(default: the last commit's time) make two builds on the same machine byte-identical (§6.5).
Then runs `kubectl-gate --help` and `kubectl-gate version --client` from the built file and prints
the start-up time; a failing smoke test fails the build.

--release-name also copies the binary to dist/bin/kubectl-gate-<os>-<arch>[.exe], the name
packaging/release.py expects. PyInstaller is not a cross-compiler: run this on each platform.
Needs `pip install 'pyinstaller>=6.10,<7'` in the same environment as the project.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import shutil
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


def smoke(binary: pathlib.Path) -> None:
    for args in (["--help"], ["version", "--client"]):
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
    parser.add_argument("--dist", type=pathlib.Path, default=ROOT / "dist")
    parser.add_argument("--work", type=pathlib.Path, default=ROOT / "build" / "pyinstaller")
    parser.add_argument("--release-name", action="store_true", help="also copy to dist/bin/kubectl-gate-<os>-<arch>")
    parser.add_argument("--no-smoke", action="store_true", help="skip running the built binary")
    args = parser.parse_args(argv)

    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        print("build_binary: PyInstaller is not installed: pip install 'pyinstaller>=6.10,<7'", file=sys.stderr)
        return 2
    probe = subprocess.run([sys.executable, "-c", "from kubectl_gate.cli import main"], cwd=ROOT,
                           capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"build_binary: cannot import kubectl_gate.cli:main:\n{probe.stderr}", file=sys.stderr)
        return 2

    env = dict(os.environ, PYTHONHASHSEED="0", SOURCE_DATE_EPOCH=source_date_epoch())
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
           "--distpath", str(args.dist), "--workpath", str(args.work), str(SPEC)]
    print("build_binary:", " ".join(cmd))
    if subprocess.run(cmd, cwd=ROOT, env=env).returncode != 0:
        print("build_binary: PyInstaller failed", file=sys.stderr)
        return 1
    binary = args.dist / ("kubectl-gate.exe" if sys.platform == "win32" else "kubectl-gate")
    print(f"build_binary: built {binary} ({binary.stat().st_size / 1e6:.1f} MB)")
    if not args.no_smoke:
        smoke(binary)
    if args.release_name:
        target = args.dist / "bin" / f"kubectl-gate-{platform_tag()}{binary.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, target)
        print(f"build_binary: copied to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
