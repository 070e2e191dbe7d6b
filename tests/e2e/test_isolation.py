"""End to end (both tiers): namespace isolation and contained bad data, through a real sidecar process.

A CanaryGate of another namespace does not take over a Canary's answers, is honoured only when the
Canary names it and it targets that Canary, and is never answered for (nor written) otherwise; a
named CanaryGate that is deleted makes its gates unknown (503), not open; a CanaryGate carrying a
10,000-deep live annotation makes only its own gate unknown while another CanaryGate's changes keep
arriving and /readyz stays truthful. Nothing here stops or pauses the API server.
"""

from __future__ import annotations

import uuid

import kubernetes
import pytest
from click.testing import CliRunner

from canarygate import errors
from canarygate.kube.resources import CANARYGATES
from kubectl_gate.cli import cli

pytestmark = pytest.mark.e2e

LIVE = "gate.piggysec.com/"
DEEP = "[" * 10_000 + "]" * 10_000


@pytest.fixture
def other_namespace(api_client):
    core = kubernetes.client.CoreV1Api(api_client)
    name = f"t-isolation-other-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"sandbox.test/owner": "pytest"}}})
    yield name
    core.delete_namespace(name)


def canarygate(namespace, name, *, target=None, annotations=None, **declared):
    spec = {k.replace("_", "-"): v for k, v in declared.items()}
    if target:
        spec["target"] = {"namespace": target[0], "name": target[1]}
    return {
        "apiVersion": "piggysec.com/v1alpha1",
        "kind": "CanaryGate",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": spec,
    }


def call_body(namespace, name, metadata=None):
    body = {"name": name, "namespace": namespace, "phase": "Progressing", "checksum": "85d557f47b"}
    if metadata:
        body["metadata"] = metadata
    return body


def test_namespaces_are_isolated(make_sidecar, kube, namespace, other_namespace, wait_until):
    sidecar = make_sidecar("--namespaces", f"{namespace},{other_namespace}")
    web = (namespace, "web")
    # other_namespace's CanaryGate aims at this namespace's Canary, all gates opened (rollback armed)
    kube.request(
        "POST",
        CANARYGATES.path(other_namespace),
        body=canarygate(other_namespace, "takeover", target=web, rollback="opened", confirm_promotion="opened"),
    )
    kube.request(
        "POST",
        CANARYGATES.path(other_namespace),
        body=canarygate(other_namespace, "elsewhere", target=(other_namespace, "app"), confirm_promotion="opened"),
    )
    kube.request("POST", CANARYGATES.path(namespace), body=canarygate(namespace, "web", confirm_promotion="closed"))
    naming = {"gate_name": "takeover", "gate_namespace": other_namespace}

    def answered():
        return sidecar.call("confirm-promotion", call_body(namespace, "web", naming))[0] == 200

    wait_until(answered, what="the sidecar to see the CanaryGates")
    wait_until(
        lambda: (
            sidecar.call("confirm-promotion", call_body(namespace, "web"))[1].get("canarygate") == f"{namespace}/web"
            and sidecar.call("confirm-promotion", call_body(namespace, "web"))[1].get("source") == "declared"
        ),
        what="the sidecar to see this namespace's CanaryGate",
    )

    # without metadata: this namespace's own CanaryGate rules (closed), the other's is not honoured
    status, body = sidecar.call("confirm-promotion", call_body(namespace, "web"))
    assert status == 403 and body["canarygate"] == f"{namespace}/web"
    status, body = sidecar.call("rollback", call_body(namespace, "web"))
    assert status != 200 and body["canarygate"] == f"{namespace}/web"  # rollback not signalled
    # named by the Canary and targeting it: honoured (the seed's layout)
    status, body = sidecar.call("rollback", call_body(namespace, "web", naming))
    assert status == 200 and body["canarygate"] == f"{other_namespace}/takeover"
    # named, but targeting another Canary: refused, with the reason
    elsewhere = {"gate_name": "elsewhere", "gate_namespace": other_namespace}
    status, body = sidecar.call("confirm-promotion", call_body(namespace, "web", elsewhere))
    assert status == 503 and body["state"] == "unknown" and "another namespace" in body["message"]
    # named and deleted: unknown, not the defaults (which would open confirm-promotion)
    kube.request("DELETE", CANARYGATES.path(other_namespace, "takeover"))

    def refused():
        status, body = sidecar.call("confirm-promotion", call_body(namespace, "web", naming))
        return status == 503 and "does not exist" in body["message"]

    wait_until(refused, what="the deletion to reach the sidecar")
    # nothing was written to the other namespace's CanaryGate by these calls
    other = kube.request("GET", CANARYGATES.path(other_namespace, "elsewhere"))
    assert not (other.get("status") or {}) and not any(
        k.startswith(LIVE) for k in (other["metadata"].get("annotations") or {})
    )


def test_a_deep_live_annotation_is_contained(make_sidecar, kube, kubeconfig, namespace, wait_until):
    sidecar = make_sidecar("--namespaces", namespace)
    kube.request("POST", CANARYGATES.path(namespace), body=canarygate(namespace, "good", confirm_promotion="closed"))
    try:
        kube.request(
            "POST",
            CANARYGATES.path(namespace),
            body=canarygate(
                namespace, "deep", annotations={LIVE + "confirm-promotion": DEEP}, confirm_promotion="opened"
            ),
        )
        planted = True
    except errors.GateError as e:  # an admission policy of the cluster may refuse it: contained there
        assert "denied" in str(e).lower() or "invalid" in str(e).lower(), e
        planted = False
    good = {"gate_name": "good", "gate_namespace": namespace}
    deep = {"gate_name": "deep", "gate_namespace": namespace}
    wait_until(
        lambda: sidecar.call("confirm-promotion", call_body(namespace, "good", good))[0] == 403,
        what="the sidecar to see the CanaryGates",
    )
    if planted:

        def unknown():
            status, body = sidecar.call("confirm-promotion", call_body(namespace, "deep", deep))
            return status == 503 and "nested too deep" in body["message"]

        wait_until(unknown, what="the deep CanaryGate to be cached, its gate unknown")
    # the cache still takes changes after it, and /readyz tells the truth (200: it is fresh)
    kube.request(
        "PATCH",
        CANARYGATES.path(namespace, "good"),
        body={"spec": {"confirm-promotion": "opened"}},
        content_type="application/merge-patch+json",
    )
    wait_until(
        lambda: sidecar.call("confirm-promotion", call_body(namespace, "good", good))[0] == 200,
        what="a change made after the deep annotation to arrive",
    )
    assert sidecar.get("/readyz")[0] == 200
    if planted:
        assert sidecar.call("confirm-promotion", call_body(namespace, "deep", deep))[0] == 503
    # and kubectl gate list -A lists every CanaryGate, the deep one included
    result = CliRunner().invoke(cli, ["list", "-A", "--kubeconfig", kubeconfig])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()]
    assert any(namespace in row and "good" in row for row in rows), result.output
    assert not planted or any(namespace in row and "deep" in row for row in rows), result.output
