"""``make demo`` (``python -m sandbox.demo``), run to its end: the whole gate flow on the sandbox.

Covers what a person watching the demo sees:
- the CRDs installed with kubectl, the sidecar started with the shipped ClusterRole, the CanaryGate
  and its Canary created with ``kubectl gate apply`` (each command printed before its output);
- version 2 held at confirm-rollout (``kubectl gate show`` says so and how to go on), opened, traffic
  stepping 10..40, held at confirm-promotion, promoted, Succeeded;
- the live approval ended with its rollout: confirm-rollout is back to its declared state;
- version 3 approved for one step, aborted, rolled back (``wait --for failed``), the primary still on
  version 2; the audit Events name who did what and why; exit 0 after stopping everything.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def section(out: str, title: str) -> str:
    """The demo's output from the step titled ``title`` to the next step."""
    start = out.index(f"==> {title}")
    end = out.find("\n==> ", start + 1)
    return out[start : end if end != -1 else None]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.kubectl
def test_demo_tells_the_whole_story():
    proc = subprocess.run([sys.executable, "-m", "sandbox.demo"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    out = proc.stdout
    assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{proc.stderr}"
    assert "$ kubectl apply -f deploy/crd/canarygate.yaml" in out
    assert re.search(r"gate-sidecar \S+ ready at http://127\.0\.0\.1:\d+ as system:serviceaccount:canary-gate:", out)
    created = section(out, "Create the CanaryGate")
    assert "canarygate.piggysec.com/demo created" in created and "canary.flagger.app/demo created" in created

    held = section(out, "Release version 2")
    assert "confirm-rollout (declared); to go on: kubectl gate promote demo -n demo-ns" in held
    assert re.search(r"^Phase:\s+Waiting$", held, re.MULTILINE)

    steps = section(out, "Traffic steps up")
    weights = [int(w) for w in re.findall(r"Progressing weight (\d+)/40", steps)]
    assert {10, 20, 30, 40} <= set(weights) and weights == sorted(weights)
    assert "confirm-promotion (declared); to go on: kubectl gate promote demo -n demo-ns" in steps
    assert re.search(
        r"^confirm-rollout\s+opened\s+live\s+admin\s+\S+\s+rollout\s+CAB-42 approved$", steps, re.MULTILINE
    )

    promoted = section(out, "Promote")
    assert "Canary demo-ns/demo promoted" in promoted
    assert re.search(r"^demo\s+Succeeded\s+0\s", promoted, re.MULTILINE)

    after = section(out, "The approval ended with its rollout")
    assert re.search(r"^confirm-rollout\s+closed\s+declared\s*$", after, re.MULTILINE)

    aborted = section(out, "Release version 3")
    assert "Canary demo-ns/demo failed (rolled back)" in aborted
    assert re.search(r"^demo\s+Failed\s+0\s", aborted, re.MULTILINE)
    assert re.search(r"^demo-primary\s.*podinfo:6\.0\.1$", aborted, re.MULTILINE)

    audit = section(out, "Who did what")
    assert re.search(r"^Aborted\s+admin opened rollback for this rollout: error budget burning$", audit, re.MULTILINE)
    assert re.search(
        r"^GateOpened\s+admin opened confirm-rollout for this rollout: CAB-42 approved$", audit, re.MULTILINE
    )
    assert "Demo complete" in out
    assert out.rstrip().endswith("Stopped the gate sidecar, the Flagger simulator and the API emulator")
