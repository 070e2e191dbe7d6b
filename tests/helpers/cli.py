"""Shared by the kubectl gate tests: a fixed clock, the seed CanaryGate, golden-file comparison."""

from __future__ import annotations

import os
import pathlib
from datetime import UTC, datetime

GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "kubectl_gate" / "golden"
NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)

SEED = """\
apiVersion: piggysec.com/v1alpha1
kind: CanaryGate
metadata:
  name: demo
  namespace: demo-ns
spec:
  confirm-promotion: closed
  target: {namespace: demo-ns, name: demo}
  flagger:
    targetRef: {apiVersion: apps/v1, kind: Deployment, name: demo}
    service: {port: 8080}
    analysis:
      interval: 10s
      threshold: 2
      maxWeight: 40
      stepWeight: 10
      webhooks:
        - {name: load-test, url: "http://loadtester/", metadata: {cmd: "hey"}}
        - {name: smoke, type: pre-rollout, url: "http://smoke/"}
"""


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    text = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    if os.environ.get("KUBECTL_GATE_REGENERATE"):
        path.write_text(text)
    assert path.exists(), f"golden {name} is missing (write it with KUBECTL_GATE_REGENERATE=1 and review it)"
    assert text == path.read_text(), f"golden {name} differs (regenerate with KUBECTL_GATE_REGENERATE=1)"
