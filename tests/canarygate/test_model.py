"""Parsing CanaryGates, Canaries and live-state annotations.

Covers: both seed CanaryGates parse; target defaults to the CanaryGate's own name; a declared state
we cannot read is refused; the live-state annotation round-trips and rejects bad values; Flagger's
defaults for maxWeight, stepWeights and threshold; state and gate spellings.
"""

from __future__ import annotations

import pytest

from canarygate import annotations, errors, gates
from canarygate.annotations import LiveChange, RolloutMark
from canarygate.model import parse_canary, parse_canarygate


def test_target_defaults_to_own_name():
    gate = parse_canarygate({"metadata": {"name": "web", "namespace": "shop"}, "spec": {}})
    assert str(gate.target) == "shop/web"
    assert gate.declared == {}


def test_unreadable_declared_state_is_refused():
    with pytest.raises(errors.InvalidGate, match=r"spec\.rollback"):
        parse_canarygate({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"rollback": "maybe"}})


@pytest.mark.parametrize("scope", annotations.SCOPES)
def test_live_change_round_trips(scope):
    change = LiveChange(
        gate="rollback",
        state="opened",
        scope=scope,
        by="bob",
        at="2026-11-22T10:00:00Z",
        reason="bad latency: é",
        rollout=RolloutMark(active=True, since="2026-11-22T09:00:00Z"),
    )
    decoded = annotations.decode("rollback", change.encode())
    expected = change if scope != "sticky" else change.bound_to(RolloutMark())
    assert decoded == expected
    assert change.key == "gate.piggysec.com/rollback"


@pytest.mark.parametrize(
    "value,message",
    [
        ("{", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"state":"ajar"}', "unknown gate state"),
        ('{"state":"opened","scope":"forever"}', "unknown scope"),
        ('{"state":"opened","rollout":1}', "rollout"),
    ],
)
def test_bad_annotation_values(value, message):
    with pytest.raises(ValueError, match=message):
        annotations.decode("rollout", value)


@pytest.mark.parametrize(
    "analysis,max_weight,threshold",
    [
        ({"stepWeight": 10}, 100, 1),
        ({"maxWeight": 40, "threshold": 3}, 40, 3),
        ({"stepWeights": [5, 10, 60]}, 60, 1),
        ({"threshold": 0}, 100, 1),
    ],
)
def test_canary_analysis_defaults(analysis, max_weight, threshold):
    canary = parse_canary({"metadata": {"name": "d", "namespace": "n"}, "spec": {"analysis": analysis}})
    assert (canary.max_weight, canary.threshold) == (max_weight, threshold)
    assert canary.phase == "" and not canary.active


@pytest.mark.parametrize(
    "text,state", [("open", "opened"), ("Opened", "opened"), ("close", "closed"), (" closed ", "closed")]
)
def test_state_spellings(text, state):
    assert gates.normalize_state(text) == state


def test_unknown_gate_lists_the_gates():
    with pytest.raises(ValueError, match="confirm-rollout, pre-rollout"):
        gates.check_gate("confirm-rolout")
