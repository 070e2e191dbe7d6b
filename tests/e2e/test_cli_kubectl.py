"""``kubectl gate apply`` through real kubectl (the installed plugin): a file is applied whole or not
at all when the CRD schema rejects any document, and a write the API server refuses part-way is
reported with what was applied and what was not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import SEED

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def kubectl_gate(kubeconfig: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``kubectl gate ARGS`` run by the real kubectl, which finds the plugin on PATH."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "KUBECONFIG": kubeconfig,
           "KUBECACHEDIR": os.environ.get("KUBECACHEDIR", "/tmp/kubectl-gate-test-cache"), **(env or {})}
    return subprocess.run([str(BIN / "kubectl"), "gate", *args], capture_output=True, text=True, env=env, timeout=60)


def gate_doc(namespace: str, name: str, target_ns: str | None = None, **spec: str) -> str:
    text = SEED.replace("demo-ns", namespace).replace("name: demo\n  namespace", f"name: {name}\n  namespace")
    text = text.replace(f"target: {{namespace: {namespace}, name: demo}}",
                        f"target: {{namespace: {target_ns or namespace}, name: {name}}}")
    for key, value in spec.items():
        text = text.replace("spec:\n", f"spec:\n  {key}: {value}\n", 1)
    return text


def names(kubectl, namespace: str, kind: str) -> list[str]:
    out = kubectl("get", kind, "-n", namespace, "-o", "json").stdout
    return sorted(item["metadata"]["name"] for item in json.loads(out)["items"])


def test_a_value_the_crd_rejects_in_the_second_document_applies_nothing(kubeconfig, crds, namespace, kubectl,
                                                                           tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text(gate_doc(namespace, "first") + "---\n" + gate_doc(namespace, "second", **{"confirm-rollout": "close"}))
    proc = kubectl_gate(kubeconfig, "apply", "-f", str(path), "-n", namespace)
    assert proc.returncode == 1, proc
    assert "nothing was applied (none of the CanaryGates first, second)" in proc.stderr, proc.stderr
    assert (f"{path} (document 2): CanaryGate second: spec.confirm-rollout: 'close' is not one of "
            "['opened', 'closed']") in proc.stderr, proc.stderr
    assert proc.stdout == ""
    assert names(kubectl, namespace, "canarygates.piggysec.com") == []
    assert names(kubectl, namespace, "canaries.flagger.app") == []
    # NB: the same value the API server itself refuses, so the schema read is the one it enforces
    refused = kubectl("apply", "-n", namespace, "-f", "-", check=False,
                      input=gate_doc(namespace, "second", **{"confirm-rollout": "close"}))
    assert refused.returncode != 0 and "confirm-rollout" in refused.stderr, refused


def test_a_write_refused_part_way_says_what_was_applied_and_what_was_not(kubeconfig, crds, namespace, kubectl,
                                                                          tmp_path):
    """The second CanaryGate's Canary lives in a namespace that does not exist: only the server knows."""
    path = tmp_path / "gates.yaml"
    missing = f"{namespace}-missing"
    path.write_text(gate_doc(namespace, "first") + "---\n" + gate_doc(namespace, "second", target_ns=missing)
                    + "---\n" + gate_doc(namespace, "third"))
    proc = kubectl_gate(kubeconfig, "apply", "-f", str(path), "-n", namespace)
    assert proc.returncode == 1, proc
    err = proc.stderr
    assert "the file was applied in part" in err, err
    assert "canary.flagger.app/second failed:" in err and missing in err, err
    assert ("applied: canarygate.piggysec.com/first (created), canary.flagger.app/first (created), "
            "canarygate.piggysec.com/second (created)") in err, err
    assert "not applied: canary.flagger.app/second, canarygate.piggysec.com/third, canary.flagger.app/third" in err
    assert names(kubectl, namespace, "canarygates.piggysec.com") == ["first", "second"]
    assert names(kubectl, namespace, "canaries.flagger.app") == ["first"]
