"""End to end (both tiers): ``kubectl gate list -A`` with CanaryGates stored that our model cannot read.

The objects are planted past the API server's validation, as an older CRD schema (the Go
original's) leaves them: on the sandbox in the emulator's store, on the real tier straight into
etcd (:meth:`sandbox.cluster.handle.ClusterHandle.put_stored`). One has ``spec.target`` as a string,
one an unknown ``spec.confirm-promotion`` state. Each shows in its row with every gate unknown, the
reason is printed once on stderr, the good CanaryGate lists as usual, and the exit code is 1.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from canarygate.kube.resources import CANARYGATES
from kubectl_gate.cli import cli

pytestmark = pytest.mark.e2e


def _gate(namespace: str, name: str, spec: dict) -> dict:
    return {
        "apiVersion": "piggysec.com/v1alpha1",
        "kind": "CanaryGate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _plant(apiserver, obj: dict) -> None:
    """Store ``obj`` as is, past validation."""
    if getattr(apiserver, "real", False):
        apiserver.put_stored(obj, "canarygates")
    else:
        obj = json.loads(json.dumps(obj))
        obj["metadata"].update(uid=f"uid-{obj['metadata']['name']}", creationTimestamp="2026-01-01T00:00:00Z")
        apiserver.store.put(("piggysec.com", "canarygates"), obj, "ADDED")


def test_list_all_namespaces_shows_unreadable_canarygates_in_their_rows(apiserver, crds, kube, kubeconfig, namespace):
    kube.request("POST", CANARYGATES.path(namespace), body=_gate(namespace, "good", {"confirm-promotion": "closed"}))
    _plant(apiserver, _gate(namespace, "bad-target", {"target": f"{namespace}/web"}))
    _plant(apiserver, _gate(namespace, "bad-state", {"confirm-promotion": "maybe"}))
    # the API server serves them as stored (the planting reached it)
    names = {i["metadata"]["name"] for i in kube.request("GET", CANARYGATES.path(namespace))["items"]}
    assert names == {"good", "bad-target", "bad-state"}

    result = CliRunner().invoke(cli, ["list", "-A", "--kubeconfig", kubeconfig])
    assert result.exit_code == 1, result.output
    rows = {row[1]: row for row in (line.split() for line in result.stdout.splitlines()) if row[:1] == [namespace]}
    assert set(rows) == {"good", "bad-target", "bad-state"}, result.stdout
    assert "confirm-promotion" in " ".join(rows["good"]) and "unknown" not in " ".join(rows["good"])
    for bad in ("bad-target", "bad-state"):
        assert "confirm-promotion(unknown)" in " ".join(rows[bad]), result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:") and namespace in line]
    assert len(errors) == 2, result.stderr
    assert any("bad-target" in e and "malformed" in e for e in errors), errors
    assert any("bad-state" in e and "spec.confirm-promotion" in e and "maybe" in e for e in errors), errors

    # -o json: every item, the unreadable ones with every gate unknown
    result = CliRunner().invoke(cli, ["list", "-A", "-o", "json", "--kubeconfig", kubeconfig])
    assert result.exit_code == 1, result.output
    items = {
        i["metadata"]["name"]: i for i in json.loads(result.stdout)["items"] if i["metadata"]["namespace"] == namespace
    }
    assert set(items) == {"good", "bad-target", "bad-state"}
    assert "confirm-promotion" in items["bad-state"]["unknown"] and not items["good"]["unknown"]
