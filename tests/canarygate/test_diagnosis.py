"""Why a rollout is not moving (canarygate.diagnosis): not called, approved and pending, held by
another webhook of the same type; the weight Flagger zeroes in WaitingPromotion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from canarygate import diagnosis, resolution
from canarygate.annotations import annotation_key
from canarygate.model import parse_canary, parse_canarygate

NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
OURS = {
    "name": "confirm-rollout",
    "type": "confirm-rollout",
    "url": "http://sidecar/confirm-rollout",
    "metadata": {"gate_name": "demo", "gate_namespace": "ns"},
}
THEIRS = {"name": "load-test-gate", "type": "confirm-rollout", "url": "http://loadtester/gate/check"}


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def canary(phase="Waiting", webhooks=(OURS,), **analysis):
    return parse_canary(
        {
            "metadata": {"name": "demo", "namespace": "ns"},
            "spec": {
                "analysis": {
                    "interval": "10s",
                    "maxWeight": 40,
                    "stepWeight": 10,
                    "webhooks": list(webhooks),
                    **analysis,
                }
            },
            "status": {
                "phase": phase,
                "conditions": [{"type": "Promoted", "status": "Unknown", "lastTransitionTime": ts(300)}],
            },
        }
    )


def gate(calls=None, opened_ago=None):
    annotations = {}
    if opened_ago is not None:
        annotations[annotation_key("confirm-rollout")] = (
            '{"state":"opened","scope":"rollout","by":"alice","at":"%s","rollout":{"active":true,"since":"%s"}}'  # noqa: UP031 - JSON
            % (ts(opened_ago), ts(300))
        )
    return parse_canarygate(
        {
            "metadata": {"name": "demo", "namespace": "ns", "annotations": annotations},
            "spec": {"confirm-rollout": "closed"},
            "status": {"calls": calls or {}},
        }
    )


def diagnose(g, c):
    decisions = resolution.resolve_gates(g, canary=c)
    return diagnosis.stuck(
        c,
        decisions,
        gate_ref=("ns", "demo"),
        status=g.status,
        now=NOW,
        holding=resolution.holding_gate(decisions, c),
        failing=None,
        started=NOW - timedelta(seconds=300),
    )


def test_not_called_for_several_intervals_points_at_the_webhook_url():
    result = diagnose(gate(calls={"confirm-rollout": {"at": ts(200), "answer": 403}}), canary())
    assert result.kind == diagnosis.NOT_CALLED
    assert "for 20 intervals (200s): check the webhook URL (kubectl gate version" in result.message
    assert diagnose(gate(), canary()).kind == diagnosis.NOT_CALLED  # never called since the start
    recent = gate(calls={"confirm-rollout": {"at": ts(30), "answer": 403}})
    assert diagnose(recent, canary()) is None  # held by our closed gate: show says so itself


def test_an_approval_waits_for_flaggers_next_check():
    result = diagnose(gate(calls={"confirm-rollout": {"at": ts(8), "answer": 403}}, opened_ago=5), canary())
    assert result.kind == diagnosis.APPROVED
    assert result.message == (
        "confirm-rollout approved by alice 5s ago; Flagger picks it up at its next check (within 10s)"
    )


def test_another_webhook_of_the_same_type_holds_the_rollout():
    g = gate(calls={"confirm-rollout": {"at": ts(4), "answer": 200}}, opened_ago=60)
    result = diagnose(g, canary(webhooks=(OURS, THEIRS)))
    assert result.kind == diagnosis.OTHER_HOOK
    assert "another confirm-rollout webhook holds it (load-test-gate)" in result.message
    assert "promote cannot help" in result.message
    assert diagnose(g, canary()) is None  # no other webhook of that type: nothing is claimed


def test_weight_in_waiting_promotion_is_the_max_weight_for_the_canary_strategy():
    assert diagnosis.effective_weight(canary(phase="WaitingPromotion")) == 40
    assert diagnosis.effective_weight(canary(phase="WaitingPromotion", iterations=3)) == 0
