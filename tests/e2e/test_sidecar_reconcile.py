"""End to end: ``gate-sidecar --reconcile`` keeps each CanaryGate's Flagger Canary rendered from it.

Covers: a CanaryGate created with plain API writes (as kubectl does) gets its Canary, webhooks at
the sidecar's --endpoint, the user's webhooks kept, and a CanaryReconciled Event; a spec.flagger
change updates it; a live gate change (an annotation) makes no Canary request at all (the
emulator's request log); a spec Flagger's schema rejects gives a ReconcileFailed Event and no
Canary; without the reconciler ClusterRole the write is refused, reported as a Warning naming the
missing permission, and retried until the role is granted (as another service account, bound to
the shipped sidecar role only, so the sidecar's own account is never refused); the Flagger simulator drives the
reconciled Canary through a rollout with the gates answering.

The sidecar runs with the shipped roles only: deploy/sidecar's (from ``sidecar_kubeconfig``) and
deploy/sidecar/reconcile's, applied unchanged here and removed after this module (other modules
check that the sidecar's own role cannot write Canaries).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from helpers.demo_app import create_deployment, new_revision, set_gate_live
from helpers.rbac import SIDECAR_USER

from canarygate.kube.client import MERGE_PATCH, Kube
from canarygate.kube.resources import CANARIES, CANARYGATES
from canarygate.rendering import GATE_NAME_KEY, HOOK_TYPES, SOURCE_ANNOTATION

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RECONCILE = ROOT / "deploy" / "sidecar" / "reconcile"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
#: The account of the "without the reconciler role" test (not the sidecar's own).
OTHER_SA = ("canary-gate-e2e", "sidecar-without-reconciler")
USER_HOOK = {"name": "smoke", "type": "pre-rollout", "url": "http://tester.test/smoke", "timeout": "5s"}


@pytest.fixture
def reconciling(make_sidecar, namespace, reconciler_role):
    """A ``--reconcile`` sidecar for the test's namespace whose --endpoint is its own URL."""

    def start():
        process = make_sidecar("--namespaces", namespace, "--reconcile", wait=False)
        process.stop()  # NB: its port is only known now; start it again with --endpoint pointing there
        process.args = (*process.args, "--endpoint", process.url)
        return process.start()

    return start


def flagger_spec(name="demo", **analysis) -> dict:
    return {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "service": {"port": 8080},
        "skipAnalysis": False,
        "analysis": {
            "interval": "10s",
            "threshold": 2,
            "maxWeight": 40,
            "stepWeight": 10,
            "stepWeightPromotion": 100,
            "webhooks": [dict(USER_HOOK)],
            **analysis,
        },
    }


def create_gate(kube: Kube, namespace: str, name="demo", flagger=None, **declared) -> dict:
    spec = {k.replace("_", "-"): v for k, v in declared.items()}
    spec["target"] = {"namespace": namespace, "name": name}
    spec["flagger"] = flagger_spec(name) if flagger is None else flagger
    return kube.request(
        "POST",
        CANARYGATES.path(namespace),
        body={
            "apiVersion": "piggysec.com/v1alpha1",
            "kind": "CanaryGate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        },
    )


def canary(kube: Kube, namespace: str, name="demo") -> dict | None:
    items = kube.request("GET", CANARIES.path(namespace)).get("items") or []
    return next((c for c in items if c["metadata"]["name"] == name), None)


def events(kube: Kube, namespace: str, reason: str, name="demo") -> list[dict]:
    items = kube.request("GET", f"/api/v1/namespaces/{namespace}/events").get("items") or []
    return [
        e
        for e in items
        if e.get("reason") == reason
        and e["involvedObject"].get("kind") == "CanaryGate"
        and e["involvedObject"].get("name") == name
    ]


def canary_requests(apiserver, namespace: str, since: float) -> list:
    return [
        r
        for r in apiserver.requests
        if r.user == SIDECAR_USER
        and r.resource == "canaries"
        and r.time >= since
        and r.verb not in ("list", "watch")
        and r.namespace == namespace
    ]


def test_canary_created_updated_and_live_changes_write_nothing(apiserver, kube, namespace, reconciling, wait_until):
    sidecar = reconciling()
    create_gate(kube, namespace, confirm_promotion="closed")
    created = wait_until(lambda: canary(kube, namespace), what="the reconciled Canary")
    hooks = created["spec"]["analysis"]["webhooks"]
    assert [h["type"] for h in hooks] == [*HOOK_TYPES, "pre-rollout"]
    assert all(h["url"] == f"{sidecar.url}/{h['type']}" for h in hooks[:-1])
    assert all(h["metadata"][GATE_NAME_KEY] == "demo" for h in hooks[:-1])
    assert hooks[-1] == USER_HOOK
    assert created["metadata"]["annotations"][SOURCE_ANNOTATION] == f"{namespace}/demo"
    event = wait_until(lambda: events(kube, namespace, "CanaryReconciled"), what="CanaryReconciled")[0]
    assert event["type"] == "Normal" and "created" in event["message"]

    # spec.flagger changes: the Canary follows.
    kube.request(
        "PATCH",
        CANARYGATES.path(namespace, "demo"),
        content_type=MERGE_PATCH,
        body={"spec": {"flagger": {"analysis": {"stepWeight": 20}}}},
    )
    wait_until(lambda: canary(kube, namespace)["spec"]["analysis"]["stepWeight"] == 20, what="the update")
    wait_until(lambda: len(events(kube, namespace, "CanaryReconciled")) == 2, what="a second CanaryReconciled")
    assert canary(kube, namespace)["spec"]["analysis"]["webhooks"][-1] == USER_HOOK

    # A live gate change is an annotation: the sidecar answers from it and asks nothing about Canaries.
    since = time.time()
    set_gate_live(kube, namespace, "demo", "confirm-promotion", "opened", scope="sticky")
    body = {
        "name": "demo",
        "namespace": namespace,
        "phase": "Progressing",
        "checksum": "x",
        "metadata": {"gate_name": "demo", "gate_namespace": namespace},
    }
    wait_until(lambda: sidecar.call("confirm-promotion", body)[1]["source"] == "live", what="the live change")
    time.sleep(0.3)
    # The log does see the reconciler's Canary requests (so the check below is not vacuous)...
    assert {r.verb for r in canary_requests(apiserver, namespace, 0)} >= {"get", "create", "update"}
    assert canary_requests(apiserver, namespace, since) == []
    assert len(events(kube, namespace, "CanaryReconciled")) == 2
    refused = [r for r in apiserver.requests if r.user == SIDECAR_USER and r.status == 403 and r.namespace == namespace]
    assert refused == []


def test_an_invalid_spec_is_reported_and_no_canary_made(kube, namespace, reconciling, wait_until):
    reconciling()
    bad = flagger_spec()
    del bad["targetRef"]
    create_gate(kube, namespace, flagger=bad)
    event = wait_until(lambda: events(kube, namespace, "ReconcileFailed"), what="ReconcileFailed")[0]
    assert event["type"] == "Warning"
    assert "invalid for Flagger" in event["message"] and "targetRef" in event["message"]
    time.sleep(0.3)
    assert canary(kube, namespace) is None
    assert len(events(kube, namespace, "ReconcileFailed")) == 1


@pytest.fixture
def without_reconciler_role(apiserver, reconciler_role, kube, tmp_path):
    """A kubeconfig for another service account bound to the sidecar's shipped ClusterRole only, and
    a function granting it the reconciler's. NB: not the sidecar's own account, whose refusals other
    modules count."""
    token = "no-reconciler-" + secrets.token_hex(8)
    apiserver.add_token(
        token,
        f"system:serviceaccount:{OTHER_SA[0]}:{OTHER_SA[1]}",
        ("system:serviceaccounts", f"system:serviceaccounts:{OTHER_SA[0]}"),
    )
    subjects = [{"kind": "ServiceAccount", "namespace": OTHER_SA[0], "name": OTHER_SA[1]}]

    def bind(name: str, role: str) -> None:
        apiserver.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "subjects": subjects,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            }
        )

    bind("e2e-no-reconciler", "canary-gate-sidecar")
    bound = ["e2e-no-reconciler"]

    def grant() -> None:
        bind("e2e-no-reconciler-granted", "canary-gate-reconciler")
        bound.append("e2e-no-reconciler-granted")

    yield apiserver.write_kubeconfig(tmp_path / "no-reconciler", token=token), grant
    for name in bound:
        kube.request("DELETE", f"{RBAC}/clusterrolebindings/{name}")


def test_without_the_reconciler_role_the_refusal_is_reported_and_retried(
    kube, namespace, make_sidecar, without_reconciler_role, wait_until
):
    kubeconfig, grant = without_reconciler_role
    # NB: the last --kubeconfig wins: this sidecar runs as the account without the reconciler role.
    make_sidecar(
        "--namespaces", namespace, "--reconcile", "--endpoint", "http://sidecar.test", "--kubeconfig", kubeconfig
    )
    create_gate(kube, namespace)
    event = wait_until(lambda: events(kube, namespace, "ReconcileFailed"), what="ReconcileFailed")[0]
    assert event["type"] == "Warning"
    message = event["message"]
    assert 'cannot create resource "canaries"' in message and 'API group "flagger.app"' in message
    assert "canary-gate-reconciler" in message
    assert canary(kube, namespace) is None
    grant()  # the retry (with backoff) goes through
    created = wait_until(lambda: canary(kube, namespace), timeout=10, what="the Canary after the grant")
    assert created["spec"]["analysis"]["webhooks"][0]["url"] == "http://sidecar.test/confirm-rollout"
    wait_until(lambda: events(kube, namespace, "CanaryReconciled"), what="CanaryReconciled")
    assert len(events(kube, namespace, "ReconcileFailed")) == 1  # once, however many retries


def test_flagger_rolls_out_the_reconciled_canary_with_the_gates_answering(
    kube, namespace, reconciling, flagger, wait_until
):
    reconciling()
    create_deployment(kube, namespace)
    analysis = {"maxWeight": 20, "stepWeight": 20, "webhooks": []}
    create_gate(kube, namespace, flagger=flagger_spec(**analysis), confirm_promotion="closed")
    flagger.wait_for_phase(namespace, "demo", "Initialized", timeout=15)
    new_revision(kube, namespace)
    flagger.wait_for_phase(namespace, "demo", "WaitingPromotion", timeout=15)
    start = len(flagger.history(namespace, "demo"))
    wait_until(lambda: len(flagger.history(namespace, "demo")) >= start + 2, what="two held ticks")
    assert flagger.history(namespace, "demo")[-1].phase == "WaitingPromotion"
    set_gate_live(kube, namespace, "demo", "confirm-promotion", "opened", scope="rollout")
    flagger.wait_for_phase(namespace, "demo", "Succeeded", timeout=15)
