"""Namespace isolation: a CanaryGate governs a Canary only when both sides agree (issue 9).

The webhook metadata (gate_name/gate_namespace) names it, or, without metadata, it is in the
Canary's own namespace and targets it (or has its name). Another namespace's CanaryGate is never
consumed, read or written for a Canary it does not target; a named CanaryGate that does not exist
is unknown (503), never the defaults.
"""

from __future__ import annotations

import pytest
from sidecar_helpers import call, live_change, make_canary, make_gate, payload

from canarygate import gates

KEY = ("team-a", "web")
NAMING_B = {"gate_name": "web", "gate_namespace": "team-b"}


def canary_call(client, hook, metadata=None, name="web", namespace="team-a"):
    return call(client, hook, payload(name, namespace, metadata=metadata))


@pytest.mark.parametrize("hook", gates.GATES)
def test_a_foreign_canarygate_targeting_a_canary_does_not_take_over_its_answers(cache, client, writer, hook):
    # team-b's CanaryGate aims at team-a's Canary, which names none: team-a's own CanaryGate rules.
    cache.fill(
        gates=[
            make_gate("web", "team-a", **{hook.replace("-", "_"): "closed"}),
            make_gate("web", "team-b", target=KEY, **{h.replace("-", "_"): "opened" for h in gates.GATES}),
        ],
        canaries=[make_canary("web", "team-a")],
    )
    status, body = canary_call(client, hook)
    assert body["canarygate"] == "team-a/web" and body["source"] == "declared"
    assert status != 200  # team-a's closed gate (rollback: not signalled), not team-b's opened one
    assert not any(c[1] == ("team-b", "web") for c in writer.calls)


def test_a_foreign_canarygate_alone_is_not_honoured_without_metadata(cache, client, writer):
    cache.fill(gates=[make_gate("approve-all", "team-b", target=KEY, rollback="opened")])
    status, body = canary_call(client, "rollback")
    # the defaults (rollback closed: not signalled), not team-b's armed rollback
    assert status == 403 and body["canarygate"] == "team-a/web" and body["source"] == "default"
    assert "team-b/approve-all" in body["message"] and "not honoured" in body["message"]


def test_a_foreign_canarygate_targeting_the_canary_is_honoured_when_the_canary_names_it(cache, client):
    # the seed's layout: the CanaryGate lives in its own namespace, the rendered Canary names it
    cache.fill(gates=[make_gate("web", "team-b", target=KEY, confirm_rollout="opened")])
    status, body = canary_call(client, "confirm-rollout", NAMING_B)
    assert status == 200 and body["canarygate"] == "team-b/web" and body["found_by"] == "metadata"


@pytest.mark.parametrize("target", [None, ("team-a", "other"), ("team-c", "web"), ("team-b", "web")])
def test_metadata_naming_another_namespaces_canarygate_that_targets_elsewhere_is_refused(cache, client, writer, target):
    step = live_change("confirm-rollout", "opened", scope="step")
    cache.fill(
        gates=[make_gate("web", "team-b", target=target, live=[step], confirm_rollout="opened", rollback="opened")],
        canaries=[make_canary("web", "team-a", phase="Waiting")],
    )
    for hook in gates.GATES:
        status, body = canary_call(client, hook, NAMING_B)
        assert status == 503 and body["state"] == "unknown" and body["allowed"] is False, hook
        assert "team-b/web" in body["message"] and "another namespace" in body["message"]
    # nothing consumed, nothing written, no event recorded on team-b's CanaryGate
    assert writer.calls == [] and cache.consumed(("team-b", "web")) == frozenset()
    response = client.post("/event", json=payload("web", "team-a", metadata=NAMING_B))
    assert response.get_json()["recorded"] is False and writer.calls == []


def test_a_step_approval_of_another_namespace_cannot_be_used_up_by_a_canary_naming_it(cache, client, writer):
    step = live_change("confirm-promotion", "opened", scope="step")
    cache.fill(
        gates=[make_gate("web", "team-b", target=("team-b", "web"), live=[step])],
        canaries=[make_canary("web", "team-a"), make_canary("web", "team-b")],
    )
    for _ in range(3):
        assert canary_call(client, "confirm-promotion", NAMING_B)[0] == 503
    assert cache.consumed(("team-b", "web")) == frozenset() and writer.calls == []
    # its own Canary still gets the step
    status, body = call(client, "confirm-promotion", payload("web", "team-b"))
    assert status == 200 and body["source"] == "live"


@pytest.mark.parametrize(
    "metadata",
    [
        {"gate_name": "gone"},  # own namespace
        {"gate_name": "gone", "gate_namespace": "team-a"},
        {"gate_name": "gone", "gate_namespace": "team-b"},  # another namespace
    ],
)
@pytest.mark.parametrize("hook", gates.GATES)
def test_a_named_canarygate_that_does_not_exist_is_unknown_not_the_defaults(cache, client, hook, metadata):
    cache.fill(gates=[make_gate("web", "team-a", **{h.replace("-", "_"): "opened" for h in gates.GATES})])
    status, body = canary_call(client, hook, metadata)
    assert status == 503 and body["state"] == "unknown" and body["allowed"] is False
    assert "does not exist" in body["message"] and "gone" in body["message"]


def test_deleting_a_named_canarygate_closes_its_gates(cache, client):
    cache.fill(gates=[make_gate("web", "team-b", target=KEY, confirm_rollout="opened")])
    assert canary_call(client, "confirm-rollout", NAMING_B)[0] == 200
    cache.apply_gate_event("DELETED", make_gate("web", "team-b", target=KEY))
    status, body = canary_call(client, "confirm-rollout", NAMING_B)
    assert status == 503 and "does not exist" in body["message"]


def test_the_defaults_still_apply_to_a_canary_naming_none(cache, client):
    cache.fill(gates=[])
    status, body = canary_call(client, "confirm-traffic-increase")
    assert status == 200 and body["source"] == "default"
    status, body = canary_call(client, "rollback")
    assert status != 200 and body["source"] == "default"


def test_a_foreign_canarygate_is_not_a_rival_of_the_local_one(cache, client):
    # it cannot make the Canary's answers unknown either (no denial of service from another namespace)
    cache.fill(
        gates=[
            make_gate("app", "team-a", target=KEY, confirm_promotion="opened"),
            make_gate("app", "team-b", target=KEY, confirm_promotion="closed"),
        ]
    )
    status, body = canary_call(client, "confirm-promotion")
    assert status == 200 and body["canarygate"] == "team-a/app" and body["found_by"] == "target"


def test_a_refusal_tells_nothing_of_another_namespaces_canarygate(cache, client):
    # whether team-b/secret exists, and what it targets, does not show in the answer
    cache.fill(gates=[make_gate("secret", "team-b", target=("team-c", "payments"), confirm_rollout="opened")])
    named = canary_call(client, "confirm-rollout", {"gate_name": "secret", "gate_namespace": "team-b"})
    missing = canary_call(client, "confirm-rollout", {"gate_name": "absent", "gate_namespace": "team-b"})
    assert named[0] == missing[0] == 503
    assert named[1]["message"].replace("secret", "absent") == missing[1]["message"]
    assert "team-c" not in named[1]["message"] and "payments" not in named[1]["message"]
