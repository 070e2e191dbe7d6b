"""CLI benchmark: ``kubectl gate show NAME`` against ``kubectl get canarygate NAME -o yaml`` on the
same sandbox API in the same run (budget: the plugin within 2x of kubectl; docs/architecture.md#budgets).

Both run as fresh processes, interleaved, ``ROUNDS`` times each; the medians are compared. Also
timed: ``kubectl-gate version --client`` and ``kubectl-gate __complete`` (no API client import), and
the two PyInstaller builds, made for the run, printing their version (budget: under 0.5 s) and
running ``show``: the onefile binary (what krew users run) and the onedir build, called through a
symlink as Homebrew and install.sh install it.

    .venv/bin/python -m benchmarks.cli [--binaries DIST] [--before ONEFILE]

``--binaries DIST`` times the builds already in DIST (``DIST/kubectl-gate`` and
``DIST/onedir/kubectl-gate/``, as packaging/build_binary.py lays them out) instead of building;
``--before ONEFILE`` also times another onefile build in the same rounds, interleaved, so that a
change to the build is measured before and after under the same load.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox.harness import canarygate_yaml, prepare
from tests.helpers.binaries import build_onefile_and_onedir

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ROUNDS = 15
BUDGET = 2.0
BINARY_VERSION_BUDGET = 0.5

GATE = canarygate_yaml("demo", "bench")


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.decode()}")
    return elapsed


def build_binaries(where: Path) -> dict[str, Path]:
    """The onefile and onedir kubectl-gate built by packaging/build_binary.py into ``where``, side by
    side (each with its own PyInstaller cache); the onedir one is reached through a symlink in
    ``where/bin``, the way Homebrew and install.sh install it."""
    build_onefile_and_onedir(where / "dist", where / "work", where)
    link = where / "bin" / "kubectl-gate"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(where / "dist" / "onedir" / "kubectl-gate" / "kubectl-gate")
    return {"onefile": where / "dist" / "kubectl-gate", "onedir": link}


def prebuilt(dist: Path, where: Path) -> dict[str, Path]:
    """The builds already in ``dist``; the onedir one through a symlink, as :func:`build_binaries`."""
    link = where / "bin" / "kubectl-gate"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to((dist / "onedir" / "kubectl-gate" / "kubectl-gate").resolve())
    return {"onefile": dist / "kubectl-gate", "onedir": link}


def run(rounds: int = ROUNDS, *, binaries_dir: Path | None = None, before: Path | None = None) -> dict:
    """Medians in seconds and the show/get ratio."""
    from sandbox.apiserver import ApiServer

    with ApiServer() as srv, tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp) / "binary"
        binaries = prebuilt(binaries_dir, where) if binaries_dir else build_binaries(where)
        config = prepare(srv, "bench", Path(tmp) / "config")
        env = {
            **os.environ,
            "KUBECONFIG": str(config),
            "KUBECACHEDIR": str(Path(tmp) / "cache"),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        gate_file = Path(tmp) / "gate.yaml"
        gate_file.write_text(GATE)
        subprocess.run(
            [str(BIN / "kubectl-gate"), "apply", "-f", str(gate_file)], env=env, check=True, capture_output=True
        )
        commands = {
            "kubectl gate show demo": [str(BIN / "kubectl-gate"), "show", "demo"],
            "kubectl get canarygate demo -o yaml": [str(BIN / "kubectl"), "get", "canarygate", "demo", "-o", "yaml"],
            "kubectl-gate version --client": [str(BIN / "kubectl-gate"), "version", "--client"],
            "kubectl-gate __complete open ''": [str(BIN / "kubectl-gate"), "__complete", "open", ""],
            "binary: kubectl-gate version --client": [str(binaries["onefile"]), "version", "--client"],
            "binary: kubectl-gate show demo": [str(binaries["onefile"]), "show", "demo"],
            "onedir: kubectl-gate version --client": [str(binaries["onedir"]), "version", "--client"],
            "onedir: kubectl-gate show demo": [str(binaries["onedir"]), "show", "demo"],
        }
        if before is not None:
            commands["before: onefile kubectl-gate version --client"] = [str(before), "version", "--client"]
        for argv in commands.values():  # warm caches (pyc, kubectl discovery cache)
            _time(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, argv in commands.items():
                samples[name].append(_time(argv, env))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratio = medians["kubectl gate show demo"] / medians["kubectl get canarygate demo -o yaml"]
    binary_version = medians["binary: kubectl-gate version --client"]
    onedir_version = medians["onedir: kubectl-gate version --client"]
    result = {
        "rounds": rounds,
        "medians": medians,
        "show_over_get": ratio,
        "budget": BUDGET,
        "within_budget": ratio <= BUDGET,
        "binary_version": binary_version,
        "binary_version_within_budget": binary_version < BINARY_VERSION_BUDGET,
        "onedir_version": onedir_version,
        "onedir_version_within_budget": onedir_version < BINARY_VERSION_BUDGET,
        "before_version": medians.get("before: onefile kubectl-gate version --client"),
    }
    print_table(result)
    return result


def print_table(result: dict) -> None:
    from tabulate import tabulate

    rows = [[name, f"{value * 1000:.0f} ms"] for name, value in result["medians"].items()]
    print(tabulate(rows, headers=["command", f"median of {result['rounds']}"], tablefmt="simple"))
    print(
        f"\nshow / get = {result['show_over_get']:.2f}x (budget {result['budget']:.0f}x): "
        f"{'within budget' if result['within_budget'] else 'OVER BUDGET'}"
    )
    for label, key in (
        ("onefile (krew on macOS and Windows)", "binary_version"),
        ("onedir (krew on Linux, Homebrew, install.sh)", "onedir_version"),
    ):
        print(
            f"{label} version --client = {result[key] * 1000:.0f} ms (budget "
            f"{BINARY_VERSION_BUDGET * 1000:.0f} ms): "
            f"{'within budget' if result[key + '_within_budget'] else 'OVER BUDGET'}"
        )
    print(
        f"onefile / onedir start-up (version --client, same run, interleaved) = "
        f"{result['binary_version'] / result['onedir_version']:.1f}x"
    )
    if result.get("before_version"):
        print(
            f"onefile version --client before / after (same run, interleaved) = "
            f"{result['before_version'] * 1000:.0f} ms / {result['binary_version'] * 1000:.0f} ms"
        )


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--binaries", type=Path, help="time the builds in this dist folder instead of building")
    parser.add_argument("--before", type=Path, help="also time this onefile build, interleaved")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    run(args.rounds, binaries_dir=args.binaries, before=args.before)


if __name__ == "__main__":
    main()
