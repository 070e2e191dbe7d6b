"""Both PyInstaller builds of kubectl-gate made at once: for the packaging tests and benchmarks/cli.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_onefile_and_onedir(dist: Path, work: Path, caches: Path, *, timeout: float = 900) -> None:
    """Runs packaging/build_binary.py ``--mode onefile`` and ``--mode onedir`` side by side into ``dist``
    (``--no-smoke --release-name``: the release copies land in ``dist/bin``), each with its own
    PyInstaller cache ``caches/pyinstaller-MODE`` (two builds sharing one would clash); asserts
    both succeed, with the failing build's output."""
    builds = {}
    for mode in ("onefile", "onedir"):
        env = {**os.environ, "PYINSTALLER_CONFIG_DIR": str(caches / f"pyinstaller-{mode}")}
        builds[mode] = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "packaging" / "build_binary.py"),
                "--mode",
                mode,
                "--dist",
                str(dist),
                "--work",
                str(work),
                "--no-smoke",
                "--release-name",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=env,
        )
    for mode, proc in builds.items():
        output, _ = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"build_binary.py --mode {mode} failed:\n{output}"
