"""End to end: the sidecar highly available: several replicas answering, one reconciling on a Lease.

Covers (both tiers; on the real tier the Lease is the real API server's coordination.k8s.io/v1):
two ``--reconcile`` replicas hold one Lease between them and both answer webhooks; a CanaryGate's
Canary is reconciled; the leader killed (SIGKILL: no release) is replaced within the lease time and
the new leader reconciles a CanaryGate created after; a leader stopped with SIGTERM hands the Lease
over at once; a one-step approval, CLI-written or hand-written (the README's example), asked of two
replicas at once many times, passes exactly once.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml
from helpers.rbac import SIDECAR_GROUPS, SIDECAR_USER, wait_subject_allowed
from helpers.tiers import REAL

from canarygate.kube.canarygates import write_live_change
from canarygate.kube.client import MERGE_PATCH, Kube
from canarygate.kube.resources import CANARIES, CANARYGATES
from gate_sidecar.leader import LEASES

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RECONCILE = ROOT / "deploy" / "sidecar" / "reconcile"
#: Real Flagger and RBAC propagation are slower: waits are stretched (they end when their condition holds).
SLOW = 3.0 if REAL else 1.0
LEASE_SECONDS = 4.0
STEP = "confirm-traffic-increase"


@pytest.fixture
def lease_roles(apiserver, api_client, namespace, reconciler_role):
    """The reconcile component's roles, unchanged: its ClusterRole (``reconciler_role``) and its
    Lease Role bound in the test's namespace (both tiers run the sidecar as its own service account)."""
    for name in ("role.yaml", "rolebinding.yaml"):
        doc = yaml.safe_load((RECONCILE / name).read_text())
        doc["metadata"]["namespace"] = namespace
        apiserver.apply(doc)
    if REAL:  # kube-apiserver's authorizer sees a new binding a moment after it is written
        wait_subject_allowed(
            api_client,
            SIDECAR_USER,
            SIDECAR_GROUPS,
            group="coordination.k8s.io",
            resource="leases",
            verb="create",
            namespace=namespace,
        )


def create_gate(kube: Kube, namespace: str, name: str) -> None:
    flagger = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "service": {"port": 8080},
        "analysis": {"interval": "10s", "threshold": 2, "maxWeight": 40, "stepWeight": 10},
    }
    kube.request(
        "POST",
        CANARYGATES.path(namespace),
        body={
            "apiVersion": "piggysec.com/v1alpha1",
            "kind": "CanaryGate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"target": {"namespace": namespace, "name": name}, "flagger": flagger},
        },
    )


def has_canary(kube: Kube, namespace: str, name: str) -> bool:
    items = kube.request("GET", CANARIES.path(namespace)).get("items") or []
    return any(c["metadata"]["name"] == name for c in items)


def holder(kube: Kube, namespace: str) -> str:
    try:
        lease = kube.request("GET", LEASES.path(namespace, "canary-gate-reconciler"))
    except Exception:  # noqa: BLE001 - any failure (the API server down too) reads as no holder
        return ""
    return (lease.get("spec") or {}).get("holderIdentity") or ""


@pytest.fixture
def replicas(make_sidecar, namespace, monkeypatch, lease_roles):
    """Two --reconcile replicas electing on <namespace>/canary-gate-reconciler; POD_NAME names each."""
    started = {}
    for name in ("replica-a", "replica-b"):
        monkeypatch.setenv("POD_NAME", name)
        started[name] = make_sidecar(
            "--namespaces",
            namespace,
            "--reconcile",
            "--endpoint",
            "http://gate.test",
            "--lease",
            f"{namespace}/canary-gate-reconciler",
            "--lease-seconds",
            str(LEASE_SECONDS),
        )
    return started


def body(namespace: str, name: str) -> dict:
    return {
        "name": name,
        "namespace": namespace,
        "phase": "Progressing",
        "checksum": "c",
        "metadata": {"gate_name": name, "gate_namespace": namespace},
    }


def test_one_leader_reconciles_and_another_takes_over_within_the_lease_time(replicas, kube, namespace, wait_until):
    leader = wait_until(lambda: holder(kube, namespace).split("_")[0], timeout=20 * SLOW, what="a Lease holder")
    create_gate(kube, namespace, "first")
    wait_until(lambda: has_canary(kube, namespace, "first"), timeout=30 * SLOW, what="the Canary reconciled")
    for process in replicas.values():  # every replica answers
        assert process.call("confirm-rollout", body(namespace, "first"))[0] == 200
    other = next(n for n in replicas if n != leader)
    replicas[leader].proc.send_signal(signal.SIGKILL)  # dies without releasing the Lease
    replicas[leader].proc.wait()
    replicas[leader].proc = None
    died = time.monotonic()
    wait_until(
        lambda: holder(kube, namespace).startswith(other + "_"),
        timeout=LEASE_SECONDS * 3,
        interval=0.1,
        what="the other replica holding the Lease",
    )
    took = time.monotonic() - died
    # Within the lease time, plus one try interval (lease/5) and the tier's latency.
    assert took <= LEASE_SECONDS * 1.2 + 2.0, took
    create_gate(kube, namespace, "second")
    wait_until(lambda: has_canary(kube, namespace, "second"), timeout=30 * SLOW, what="the new leader reconciling")
    lease = kube.request("GET", LEASES.path(namespace, "canary-gate-reconciler"))["spec"]
    assert lease["leaseTransitions"] >= 1


def test_a_leader_stopped_with_sigterm_hands_the_lease_over_at_once(replicas, kube, namespace, wait_until):
    leader = wait_until(lambda: holder(kube, namespace).split("_")[0], timeout=20 * SLOW, what="a Lease holder")
    other = next(n for n in replicas if n != leader)
    assert replicas[leader].stop() == 0
    stopped = time.monotonic()
    wait_until(
        lambda: holder(kube, namespace).startswith(other + "_"),
        timeout=LEASE_SECONDS * 3,
        interval=0.1,
        what="the other replica holding the Lease",
    )
    assert time.monotonic() - stopped < LEASE_SECONDS, "the Lease was not released on SIGTERM"


HANDWRITTEN = '{"state": "opened", "scope": "step", "by": "alice", "at": "2026-11-22T10:00:00Z"}'


@pytest.mark.parametrize("written", ["cli", "handwritten"])
def test_a_one_step_approval_asked_of_two_replicas_at_once_passes_once(
    make_sidecar, kube, namespace, written, wait_until
):
    kube.request(
        "POST",
        CANARYGATES.path(namespace),
        body={
            "apiVersion": "piggysec.com/v1alpha1",
            "kind": "CanaryGate",
            "metadata": {"name": "demo", "namespace": namespace},
            "spec": {"target": {"namespace": namespace, "name": "demo"}, STEP: "closed"},
        },
    )
    a, b = make_sidecar("--namespaces", namespace), make_sidecar("--namespaces", namespace)
    key = "gate.piggysec.com/" + STEP
    if written == "cli":
        write_live_change(
            kube, namespace, "demo", gate=STEP, state="opened", by="alice", at="2026-11-22T10:00:00Z", scope="step"
        )
    else:
        kube.request(
            "PATCH",
            CANARYGATES.path(namespace, "demo"),
            content_type=MERGE_PATCH,
            body={"metadata": {"annotations": {key: HANDWRITTEN}}},
        )

    def seen_by(process):
        return process.call(STEP, body(namespace, "demo"))  # NB: a 200 here would use the approval

    # Wait until both caches hold it, by /readyz only (asking would use it): then ask both at once.
    time.sleep(1.0 * SLOW)
    answers: list[int] = []
    lock = threading.Lock()

    def ask(process):
        for _ in range(10):
            status = seen_by(process)[0]
            with lock:
                answers.append(status)

    threads = [threading.Thread(target=ask, args=(p,)) for p in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert answers.count(200) == 1, sorted(answers)
    assert set(answers) <= {200, 403, 503}
    annotations = kube.request("GET", CANARYGATES.path(namespace, "demo"))["metadata"].get("annotations") or {}
    assert key not in annotations  # recorded as used in the API
    assert json.loads(HANDWRITTEN)["scope"] == "step"
