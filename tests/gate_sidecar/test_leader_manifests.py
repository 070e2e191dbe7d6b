"""The shipped Deployment is highly available and its reconciler may use exactly the Lease it elects on.

Covers: 2 replicas, both behind the Service (no leader-only readiness); a rolling update that never
drops below the replicas wanted; spread over nodes and zones; a PodDisruptionBudget selecting the
very pods and keeping one; the reconcile component's Role granting the Lease verbs gate_sidecar.leader
uses (create; get and update on the default name only) to the sidecar's service account.
"""

from __future__ import annotations

import pathlib

import yaml

from gate_sidecar.__main__ import _lease_ref

SIDECAR = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "sidecar"


def load(path: pathlib.Path) -> dict:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return doc


def test_deployment_runs_two_spread_replicas_kept_by_a_budget():
    deployment = load(SIDECAR / "deployment.yaml")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod_labels = spec["template"]["metadata"]["labels"]
    keys = set()
    for constraint in spec["template"]["spec"]["topologySpreadConstraints"]:
        assert constraint["maxSkew"] == 1
        assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()
        keys.add(constraint["topologyKey"])
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    budget = load(SIDECAR / "poddisruptionbudget.yaml")
    assert budget["kind"] == "PodDisruptionBudget" and budget["apiVersion"] == "policy/v1"
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < spec["replicas"]  # drains can proceed, one stays
    assert "poddisruptionbudget.yaml" in load(SIDECAR / "kustomization.yaml")["resources"]


def test_reconcile_component_grants_the_lease_the_elector_uses(tmp_path, monkeypatch):
    role = load(SIDECAR / "reconcile" / "role.yaml")
    binding = load(SIDECAR / "reconcile" / "rolebinding.yaml")
    granted = {
        (v, name)
        for rule in role["rules"]
        if rule["resources"] == ["leases"] and rule["apiGroups"] == ["coordination.k8s.io"]
        for v in rule["verbs"]
        for name in rule.get("resourceNames", ["*"])
    }
    import gate_sidecar.__main__ as entry

    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("canary-gate\n")
    monkeypatch.setattr(entry, "SERVICE_ACCOUNT_NAMESPACE", str(namespace_file))
    namespace, name = _lease_ref(None)
    assert namespace == "canary-gate"
    assert granted == {("create", "*"), ("get", name), ("update", name)}
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "canary-gate-sidecar", "namespace": "canary-gate"}
    ]
    kust = load(SIDECAR / "reconcile" / "kustomization.yaml")
    assert {"role.yaml", "rolebinding.yaml"} <= set(kust["resources"])
    monkeypatch.setattr(entry, "SERVICE_ACCOUNT_NAMESPACE", str(tmp_path / "absent"))
    assert _lease_ref(None) is None  # outside a pod: no election, this process reconciles alone
    assert _lease_ref("ns/lease") == ("ns", "lease")
