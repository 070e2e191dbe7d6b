"""CLI benchmark: ``kubectl gate show NAME`` against ``kubectl get canarygate NAME -o yaml`` on the
same sandbox API in the same run (budget: the plugin within 2x of kubectl; DESIGN.md "Budgets").

Both run as fresh processes, interleaved, ``ROUNDS`` times each; the medians are compared. Also
timed: ``kubectl-gate version --client`` and ``kubectl-gate __complete`` (no API client import), and
the PyInstaller onefile binary, built for the run, printing its version (budget: under 0.5 s) and
running ``show`` (what krew, Homebrew and install.sh users run).

    .venv/bin/python -m benchmarks.cli
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ROUNDS = 15
BUDGET = 2.0
BINARY_VERSION_BUDGET = 0.5

GATE = """\
apiVersion: piggysec.com/v1alpha1
kind: CanaryGate
metadata: {name: demo, namespace: bench}
spec:
  confirm-promotion: closed
  target: {namespace: bench, name: demo}
  flagger:
    targetRef: {apiVersion: apps/v1, kind: Deployment, name: demo}
    service: {port: 8080}
    analysis: {interval: 10s, threshold: 2, maxWeight: 40, stepWeight: 10}
"""


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.decode()}")
    return elapsed


def build_binary(where: Path) -> Path:
    """The onefile kubectl-gate built by packaging/build_binary.py into ``where``."""
    subprocess.run([sys.executable, str(ROOT / "packaging" / "build_binary.py"), "--dist", str(where / "dist"),
                    "--work", str(where / "work"), "--no-smoke"], check=True, capture_output=True, timeout=900)
    return where / "dist" / "kubectl-gate"


def run(rounds: int = ROUNDS) -> dict:
    """Medians in seconds and the show/get ratio."""
    from sandbox.apiserver import ApiServer

    with ApiServer() as srv, tempfile.TemporaryDirectory() as tmp:
        binary = build_binary(Path(tmp) / "binary")
        config = srv.write_kubeconfig(Path(tmp) / "config", namespace="bench")
        for path in (ROOT / "deploy/crd/canarygate.yaml", ROOT / "canarygate/data/flagger-canary-crd.yaml"):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    srv.apply(doc)
        srv.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
        env = {**os.environ, "KUBECONFIG": str(config), "KUBECACHEDIR": str(Path(tmp) / "cache"),
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        gate_file = Path(tmp) / "gate.yaml"
        gate_file.write_text(GATE)
        subprocess.run([str(BIN / "kubectl-gate"), "apply", "-f", str(gate_file)], env=env, check=True,
                       capture_output=True)
        commands = {
            "kubectl gate show demo": [str(BIN / "kubectl-gate"), "show", "demo"],
            "kubectl get canarygate demo -o yaml": [str(BIN / "kubectl"), "get", "canarygate", "demo", "-o", "yaml"],
            "kubectl-gate version --client": [str(BIN / "kubectl-gate"), "version", "--client"],
            "kubectl-gate __complete open ''": [str(BIN / "kubectl-gate"), "__complete", "open", ""],
            "binary: kubectl-gate version --client": [str(binary), "version", "--client"],
            "binary: kubectl-gate show demo": [str(binary), "show", "demo"],
        }
        for argv in commands.values():  # warm caches (pyc, kubectl discovery cache)
            _time(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, argv in commands.items():
                samples[name].append(_time(argv, env))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratio = medians["kubectl gate show demo"] / medians["kubectl get canarygate demo -o yaml"]
    binary_version = medians["binary: kubectl-gate version --client"]
    result = {"rounds": rounds, "medians": medians, "show_over_get": ratio, "budget": BUDGET,
              "within_budget": ratio <= BUDGET, "binary_version": binary_version,
              "binary_version_within_budget": binary_version < BINARY_VERSION_BUDGET}
    print_table(result)
    return result


def print_table(result: dict) -> None:
    from tabulate import tabulate

    rows = [[name, f"{value * 1000:.0f} ms"] for name, value in result["medians"].items()]
    print(tabulate(rows, headers=["command", f"median of {result['rounds']}"], tablefmt="simple"))
    print(f"\nshow / get = {result['show_over_get']:.2f}x (budget {result['budget']:.0f}x): "
          f"{'within budget' if result['within_budget'] else 'OVER BUDGET'}")
    print(f"binary version --client = {result['binary_version'] * 1000:.0f} ms (budget "
          f"{BINARY_VERSION_BUDGET * 1000:.0f} ms): "
          f"{'within budget' if result['binary_version_within_budget'] else 'OVER BUDGET'}")


if __name__ == "__main__":
    run()
