"""End to end: the sidecar when things go wrong, and what it asks of the API server.

Covers: a restart mid-rollout answers the same and the rollout goes on; a rollout that ended while
the sidecar was down ends its live change once the sidecar is back; the API server down (fail
closed: 503, rollback not signalled, /readyz 503) and back (answers again); a partition that keeps
sockets open (the emulator's ``faults.hang``: nothing answered, watches silent but open) fails closed
the same way once the bound has passed, and a change made meanwhile is answered once it is lifted;
webhook calls make no API request (the emulator's request log: only the feed's own watches and its
periodic liveness probe appear, however many calls are made); the sidecar's token can do what the shipped ClusterRole
allows and a write outside it is refused; SIGTERM exits 0.
"""

from __future__ import annotations

import time

import kubernetes
import pytest
from helpers.rbac import SIDECAR_USER, wait_allowed

from canarygate import errors
from canarygate.kube.client import MERGE_PATCH, Kube
from canarygate.kube.service import connect_service

pytestmark = pytest.mark.e2e

ANNOTATION = "gate.piggysec.com/"


def body(namespace: str, name: str = "demo", phase: str = "Progressing") -> dict:
    return {
        "name": name,
        "namespace": namespace,
        "phase": phase,
        "checksum": "85d557f47b",
        "metadata": {"gate_name": name, "gate_namespace": namespace},
    }


def create_gate(kube: Kube, namespace: str, **gates: str) -> dict:
    """Creates CanaryGate demo with only the given declared gates (``rollback="opened"``), no Flagger
    part; returns the object as sent."""
    gate = {
        "apiVersion": "piggysec.com/v1alpha1",
        "kind": "CanaryGate",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {name.replace("_", "-"): state for name, state in gates.items()},
    }
    kube.request("POST", f"/apis/piggysec.com/v1alpha1/namespaces/{namespace}/canarygates", body=gate)
    return gate


def test_restart_mid_rollout_answers_the_same(rollouts, sidecar, namespace):
    # NB: while the sidecar restarts, Flagger's rollout hooks fail and count as failed checks; at this
    # time scale a restart spans several ticks, so the threshold is raised to keep the rollout alive.
    rollouts.create(
        confirm_promotion="closed",
        analysis={"interval": "10s", "threshold": 50, "maxWeight": 40, "stepWeight": 10, "stepWeightPromotion": 100},
    )
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")
    before = sidecar.call("confirm-promotion", body(namespace))
    assert sidecar.restart().call("confirm-promotion", body(namespace)) == before
    assert before[0] == 403
    held = rollouts.wait_more_ticks(3)
    assert {t.phase for t in held} == {"WaitingPromotion"}
    rollouts.set_gate("confirm-promotion", "opened")
    rollouts.wait_phase("demo", "Succeeded")


def test_rollout_that_ended_while_the_sidecar_was_down_ends_its_live_change(
    rollouts, sidecar, namespace, kube, wait_until
):
    rollouts.create(confirm_promotion="closed")
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")
    rollouts.set_gate("rollout", "opened")  # bound to this rollout
    sidecar.stop()
    # Metrics fail while nobody answers: Flagger rolls this rollout back without the sidecar.
    kube.request(
        "PATCH",
        f"/apis/flagger.app/v1beta1/namespaces/{namespace}/canaries/demo",
        body={"metadata": {"annotations": {"sandbox.flagger.app/metrics": "fail"}}},
        content_type=MERGE_PATCH,
    )
    rollouts.wait_phase("demo", "Failed")
    assert ANNOTATION + "rollout" in rollouts.gate()["metadata"]["annotations"]
    sidecar.start()
    wait_until(
        lambda: ANNOTATION + "rollout" not in (rollouts.gate()["metadata"].get("annotations") or {}),
        what="the live change of the ended rollout to be removed",
    )
    status, answer = sidecar.call("confirm-promotion", body(namespace))
    assert status == 403 and answer["source"] == "declared"


@pytest.mark.disruptive
def test_api_server_down_fails_closed_and_recovers(apiserver, make_sidecar, kube, namespace, crds, wait_until):
    sidecar = make_sidecar()
    create_gate(kube, namespace, rollback="opened")
    wait_until(lambda: sidecar.call("rollback", body(namespace))[0] == 200, what="the sidecar to see the gate")
    try:
        apiserver.faults.down = True
        status, answer = wait_until(
            lambda: (r := sidecar.call("confirm-rollout", body(namespace)))[0] == 503 and r,
            what="fail closed",
        )
        assert answer["allowed"] is False and answer["state"] == "unknown"
        status, answer = sidecar.call("rollback", body(namespace))
        assert status == 503 and "not signalling a rollback" in answer["message"]
        assert sidecar.get("/readyz")[0] == 503
    finally:
        apiserver.faults.down = False
    wait_until(lambda: sidecar.call("confirm-rollout", body(namespace))[0] == 200, what="answers after recovery")
    assert sidecar.call("rollback", body(namespace))[0] == 200
    assert sidecar.get("/readyz")[0] == 200


@pytest.mark.disruptive
def test_a_partition_that_keeps_sockets_open_fails_closed_and_recovers(
    apiserver, make_sidecar, kube, namespace, crds, wait_until
):
    sidecar = make_sidecar()  # --fail-closed-after 1
    gate = create_gate(kube, namespace, rollback="opened")
    wait_until(lambda: sidecar.call("rollback", body(namespace))[0] == 200, what="the sidecar to see the gate")
    try:
        apiserver.faults.hang = True
        # The API server still holds every socket open but sends nothing: once the bound has passed
        # with nothing arriving, the sidecar must stop answering from memory.
        status, answer = wait_until(
            lambda: (r := sidecar.call("confirm-rollout", body(namespace)))[0] == 503 and r,
            what="fail closed during the partition",
        )
        assert answer["allowed"] is False and answer["state"] == "unknown"
        assert "nothing has arrived from the API server" in answer["message"]
        status, answer = sidecar.call("rollback", body(namespace))
        assert status == 503 and answer["allowed"] is False and "not signalling a rollback" in answer["message"]
        status, ready = sidecar.get("/readyz")
        assert status == 503 and "unreachable" in ready["status"]
        # A change made while the sidecar is cut off (straight into the emulator's store; a stopped
        # real API server takes no writes, so there it is made the moment it answers again)...
        if not getattr(apiserver, "real", False):
            apiserver.apply({**gate, "spec": {"rollback": "closed"}})
            assert sidecar.call("rollback", body(namespace))[0] == 503
    finally:
        apiserver.faults.hang = False
    # ...is what it answers once the API server talks again (on the real tier, once the change written
    # after the partition has arrived: the sidecar may answer from the state before it a moment earlier).
    if getattr(apiserver, "real", False):
        apiserver.apply({**gate, "spec": {"rollback": "closed"}})
    status, answer = wait_until(
        lambda: (
            (r := sidecar.call("rollback", body(namespace)))[0]
            not in (503, *((200,) if getattr(apiserver, "real", False) else ()))
            and r
        ),
        what="answers after the partition",
    )
    assert status == 403 and answer["source"] == "declared"
    assert sidecar.call("confirm-rollout", body(namespace))[0] == 200
    assert sidecar.get("/readyz")[0] == 200


def test_webhook_calls_make_no_api_request(apiserver, sidecar, kube, namespace, crds, wait_until):
    create_gate(kube, namespace, confirm_rollout="opened")
    wait_until(
        lambda: sidecar.call("confirm-rollout", body(namespace))[1]["source"] == "declared",
        what="the sidecar to see the gate",
    )
    started = time.time()
    for hook in (
        "confirm-rollout",
        "pre-rollout",
        "rollout",
        "confirm-traffic-increase",
        "confirm-promotion",
        "post-rollout",
        "rollback",
    ) * 20:
        assert sidecar.call(hook, body(namespace))[0] in (200, 403)
    ended = time.time()
    by_sidecar = [  # NB: the namespace: other workers' sidecars share the account (and write their own)
        r
        for r in apiserver.requests
        if r.user == SIDECAR_USER and started <= r.time <= ended and r.namespace in ("", namespace)
    ]
    # The feed's own traffic goes on whether or not calls come: the liveness probe (GET /version every
    # bound/3), watches reopened when ended, and relists of watches quiet for half the bound (issue 9:
    # contact is fresh data). Anything else would be caused by the calls.
    feed = [r for r in by_sidecar if r.path == "/version" or r.verb in ("watch", "list")]
    # The writer records the calls in the CanaryGate's status off the request path, coalesced (a
    # hook's first call or changed answer, at most once a second): a few writes for 140 calls.
    status = [r for r in by_sidecar if r.verb == "patch" and r.path.endswith("/canarygates/demo/status")]
    assert len(status) <= 3
    assert [r for r in by_sidecar if r not in feed and r not in status] == []
    # Not vacuous: the log does record this sidecar's requests (its probes keep coming).
    wait_until(
        lambda: any(
            r.path == "/version" and r.time > ended and r.user.startswith("system:serviceaccount:canary-gate:")
            for r in apiserver.requests
        ),
        what="a liveness probe in the log",
    )


def test_the_shipped_role_is_enough_and_nothing_more(
    apiserver, api_client, sidecar_kubeconfig, rollouts, namespace, tmp_path
):
    # Everything the rollout scenarios need went through with the role: no refusal in the log (of this
    # test: other workers' sidecars share the account, and some of their tests bind it more or less).
    started = time.time()
    rollouts.create(confirm_rollout="closed")
    rollouts.new_revision()
    rollouts.wait_phase("demo", "Waiting")
    rollouts.set_gate("confirm-rollout", "opened")
    rollouts.wait_phase("demo", "Succeeded")
    refused = [
        r
        for r in apiserver.requests
        if r.user == SIDECAR_USER and r.status == 403 and r.namespace in ("", namespace) and r.time >= started
    ]
    assert refused == []
    # A write outside the role (the Canary itself, a Secret) is refused: asked as an account bound to
    # the shipped ClusterRole alone (the sidecar's own may hold another module's grants meanwhile).
    user = f"system:serviceaccount:{namespace}:shipped-role-only"
    binding = f"shipped-role-only-{namespace}"
    apiserver.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": binding},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "canary-gate-sidecar"},
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )
    try:
        token = f"shipped-role-only-{namespace}"
        apiserver.add_token(token, user)
        config = str(apiserver.write_kubeconfig(tmp_path / "shipped-role-only", token=token))
        wait_allowed(config, verb="watch", group="piggysec.com", resource="canarygates", namespace=namespace)
        own: Kube = connect_service(kubeconfig=config)[0]
        with pytest.raises(errors.Forbidden):
            own.request(
                "PATCH",
                f"/apis/flagger.app/v1beta1/namespaces/{namespace}/canaries/demo",
                body={"spec": {"suspend": True}},
                content_type=MERGE_PATCH,
            )
        with pytest.raises(errors.Forbidden):
            own.request("GET", f"/api/v1/namespaces/{namespace}/secrets")
    finally:
        kubernetes.client.RbacAuthorizationV1Api(api_client).delete_cluster_role_binding(binding)


def test_sigterm_stops_gracefully(sidecar):
    assert sidecar.stop() == 0
    assert "gate-sidecar stopped" in sidecar.log()
