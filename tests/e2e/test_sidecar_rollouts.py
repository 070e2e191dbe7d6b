"""End to end: the Flagger simulator runs rollouts against the real sidecar process and the emulator.

Covers: the seed README's two scenarios (a new version paused at confirm-rollout, then opened; a
rollout paused for promotion at 20 %, then promoted on open); a closed confirm-traffic-increase
holding each step, one-step approvals consumed; an opened rollback gate rolling back, and that live
change ending with its rollout (the next rollout is not rolled back); the "held by" Event and the
status written from /event. The sidecar runs with the shipped ClusterRole's rights only.
"""

from __future__ import annotations

import pytest
from helpers.demo_app import HELD_AT_20_PERCENT

pytestmark = pytest.mark.e2e

ANNOTATION = "gate.piggysec.com/"


def annotations(rollouts, name="demo") -> dict:
    return rollouts.gate(name)["metadata"].get("annotations") or {}


def test_seed_scenario_new_version_waits_at_confirm_rollout(rollouts, wait_until):
    rollouts.create(confirm_rollout="closed")
    rollouts.new_revision()
    rollouts.wait_phase("demo", "Waiting")
    held = rollouts.wait_more_ticks(3)
    assert {t.phase for t in held} == {"Waiting"}
    event = wait_until(lambda: rollouts.events(reason="GateHolding"), what="the GateHolding Event")[0]
    assert "confirm-rollout" in event["message"] and "kubectl gate promote demo" in event["message"]
    rollouts.set_gate("confirm-rollout", "opened")
    rollouts.wait_phase("demo", "Succeeded")
    # The approval belonged to that rollout: it is gone once the rollout ended.
    wait_until(lambda: ANNOTATION + "confirm-rollout" not in annotations(rollouts), what="the live change to end")
    status = wait_until(lambda: rollouts.gate().get("status", {}).get("lastEvent"), what="status.lastEvent")
    assert status["message"]


def test_seed_scenario_promotion_paused_at_20_percent_then_promoted(rollouts, wait_until):
    rollouts.create(**HELD_AT_20_PERCENT)
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")
    held = rollouts.wait_more_ticks(3)
    assert {t.phase for t in held} == {"WaitingPromotion"}
    assert all(t.routes.canary == 20 for t in held)  # the new version keeps 20 % of the traffic
    rollouts.set_gate("confirm-promotion", "opened")
    rollouts.wait_phase("demo", "Succeeded")


def test_closed_traffic_increase_holds_each_step_and_a_step_approval_is_used_once(rollouts, wait_until):
    rollouts.create(confirm_traffic_increase="closed")
    rollouts.new_revision()
    rollouts.wait_phase("demo", "Progressing")
    held = rollouts.wait_more_ticks(3)
    assert {t.routes.canary for t in held} == {0}
    rollouts.set_gate("confirm-traffic-increase", "opened", scope="step")
    wait_until(lambda: any(t.routes.canary == 10 for t in rollouts.ticks()), what="one step to 10 %")
    # Consumed on the first "go on": the annotation is removed and the next step is held again.
    wait_until(
        lambda: ANNOTATION + "confirm-traffic-increase" not in annotations(rollouts),
        what="the step approval to be removed",
    )
    held = rollouts.wait_more_ticks(3)
    assert {t.routes.canary for t in held} == {10}
    assert rollouts.phase() == "Progressing"


def test_opened_rollback_gate_rolls_back_and_ends_with_its_rollout(rollouts, wait_until):
    rollouts.create(confirm_promotion="closed")
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")
    rollouts.set_gate("rollback", "opened")
    rollouts.wait_phase("demo", "Failed")
    wait_until(lambda: ANNOTATION + "rollback" not in annotations(rollouts), what="the rollback change to end")
    # The next rollout is not rolled back: the gate is back to its declared (default) state.
    rollouts.set_gate("confirm-promotion", "opened", scope="sticky")
    rollouts.new_revision(version="3")
    rollouts.wait_phase("demo", "Succeeded")


def test_an_unreadable_live_annotation_holds_the_rollout_until_replaced(rollouts, sidecar, kube, namespace):
    from canarygate.kube.client import MERGE_PATCH

    rollouts.create(confirm_promotion="opened")  # declared opened: a guess would let it through
    kube.request(
        "PATCH",
        f"/apis/piggysec.com/v1alpha1/namespaces/{namespace}/canarygates/demo",
        body={
            "metadata": {
                "annotations": {ANNOTATION + "confirm-promotion": '{"state":"close","scope":"Sticky","by":"bob"}'}
            }
        },
        content_type=MERGE_PATCH,
    )
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")
    held = rollouts.wait_more_ticks(3)
    assert {t.phase for t in held} == {"WaitingPromotion"}
    status, answer = sidecar.call(
        "confirm-promotion",
        {
            "name": "demo",
            "namespace": namespace,
            "phase": "WaitingPromotion",
            "metadata": {"gate_name": "demo", "gate_namespace": namespace},
        },
    )
    assert status == 503 and answer["source"] == "invalid" and "Sticky" in answer["problem"]
    assert f"replace it with kubectl gate open|close confirm-promotion demo -n {namespace}" in answer["message"]
    rollouts.set_gate("confirm-promotion", "opened")  # what kubectl gate open writes: replaces the annotation
    rollouts.wait_phase("demo", "Succeeded")
