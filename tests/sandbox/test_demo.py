"""The first ``make demo`` (``python -m sandbox.demo``), run to its end.

Covers:
- it starts the API emulator and the Flagger simulator, installs the CRDs with kubectl and
  creates the namespace, Deployment and Canary;
- after the image change, ``kubectl get canaries`` output (each command printed before its
  output) shows the rollout going Initialized -> Progressing with rising weights ->
  Promoting -> Finalising -> Succeeded;
- the primary Deployment ends on the new image, Flagger's events are listed, and the demo
  exits 0 after stopping everything it started.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
@pytest.mark.kubectl
def test_demo_runs_to_succeeded():
    proc = subprocess.run([sys.executable, "-m", "sandbox.demo"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{proc.stderr}"
    assert "$ kubectl apply -f deploy/crd/canarygate.yaml" in out
    assert "$ kubectl set image deployment/podinfo podinfo=ghcr.io/stefanprodan/podinfo:6.0.1 -n demo" in out
    rows = re.findall(r"^podinfo\s+(Initialized|Progressing|Promoting|Finalising|Succeeded)\s+(\d+)\s",
                      out, re.MULTILINE)
    phases = [phase for phase, _ in rows]
    assert phases[0] == "Initialized" and phases[-1] == "Succeeded"
    order = ["Initialized", "Progressing", "Promoting", "Finalising", "Succeeded"]
    seen = [order.index(p) for p in phases]
    assert seen == sorted(seen), phases
    weights = [int(w) for phase, w in rows if phase == "Progressing"]
    assert max(weights) == 40 and weights == sorted(weights)
    assert out.count("$ kubectl get canaries -n demo") == len(rows)
    assert re.search(r"^podinfo-primary\s.*podinfo:6\.0\.1$", out, re.MULTILINE)
    assert "Promotion completed! Scaling down podinfo.demo" in out
    assert out.rstrip().endswith("Demo complete: the canary rollout Succeeded.")
