"""canarygate.verbs: what abort, promote, pause and resume decide from a CanaryGate and its Canary.
Covers: abort refuses without a rollout, opens rollback (and, while Waiting, confirm-rollout for one
step, after rollback), warns during a promotion; promote refuses without a Canary, without a rollout,
and when another webhook holds it, opens the holding gate for one step in each phase (also with a
Deployment not ready), nothing when no gate holds or an approval is pending, --full every closed
progress gate; pause closes the pause gates (rollout or sticky); resume removes only live closures
still in force and names gates declared closed.
"""

from __future__ import annotations

import pytest

from canarygate import diagnosis, gates, verbs
from canarygate.annotations import SCOPE_ROLLOUT, SCOPE_STEP, SCOPE_STICKY, LiveChange, RolloutMark
from canarygate.model import Canary, CanaryGate, PromotedCondition, Target
from canarygate.verbs import GateChange

SINCE = "2026-11-22T09:58:10Z"


def gate(declared=None, live=None) -> CanaryGate:
    return CanaryGate(
        name="web",
        namespace="shop",
        target=Target("shop", "web"),
        declared=dict(declared or {}),
        live={c.gate: c for c in (live or [])},
        flagger={},
    )


def canary(phase: str, *, weight: int = 0, max_weight: int = 40) -> Canary:
    status = {"Succeeded": "True", "Failed": "False", "Initialized": "True"}.get(phase, "Unknown")
    return Canary(
        name="web",
        namespace="shop",
        phase=phase,
        canary_weight=weight,
        max_weight=max_weight,
        promoted=PromotedCondition(status, phase, SINCE),
    )


def live(g: str, state: str, *, scope: str = SCOPE_ROLLOUT, active: bool = True) -> LiveChange:
    return LiveChange(g, state, scope, by="alice", at="2026-11-22T10:00:00Z", rollout=RolloutMark(active, SINCE))


# -- abort ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Initialized", ""])
def test_abort_refuses_without_a_rollout(phase):
    plan = verbs.abort(gate(), canary(phase) if phase else None)
    assert plan.changes == () and plan.refused
    assert "nothing to abort" in plan.refused and "kubectl gate open rollback web" in plan.refused


@pytest.mark.parametrize("phase", ["Progressing", "WaitingPromotion"])
def test_abort_opens_rollback_for_this_rollout(phase):
    plan = verbs.abort(gate(), canary(phase))
    assert plan.refused is None and plan.note is None and plan.event == "Aborted"
    assert plan.changes == (GateChange(gates.ROLLBACK, gates.OPENED, SCOPE_ROLLOUT),)


def test_abort_while_waiting_also_lets_the_rollout_start_rollback_first():
    plan = verbs.abort(gate({"confirm-rollout": "closed"}), canary("Waiting"))
    assert plan.changes == (
        GateChange(gates.ROLLBACK, gates.OPENED, SCOPE_ROLLOUT),
        GateChange(gates.CONFIRM_ROLLOUT, gates.OPENED, SCOPE_STEP),
    )


@pytest.mark.parametrize("phase", ["Promoting", "Finalising"])
def test_abort_during_a_promotion_says_it_cannot_stop_it(phase):
    plan = verbs.abort(gate(), canary(phase))
    assert plan.changes == (GateChange(gates.ROLLBACK, gates.OPENED, SCOPE_ROLLOUT),)
    assert plan.note == f"the Canary is {phase}: abort cannot stop a promotion already under way"


# -- promote -------------------------------------------------------------------------------------


def test_promote_refuses_without_a_canary_or_a_rollout():
    assert "kubectl gate apply" in verbs.promote(gate(), None).refused
    assert "no rollout in progress (phase Succeeded)" in verbs.promote(gate(), canary("Succeeded")).refused


def test_promote_refuses_when_another_webhook_holds_the_rollout():
    stuck = diagnosis.Stuck(diagnosis.OTHER_HOOK, gates.CONFIRM_ROLLOUT, "another confirm-rollout webhook holds it", "")
    plan = verbs.promote(gate(), canary("Waiting"), stuck=stuck)
    assert plan.changes == () and plan.refused == (
        "Canary shop/web: another confirm-rollout webhook holds it: ask its owner, or remove it from the "
        "Canary's webhooks"
    )
    # --full is refused too: opening our gates would change nothing
    assert verbs.promote(gate(), canary("Waiting"), full=True, stuck=stuck).refused


@pytest.mark.parametrize(
    "declared, phase, weight, expected",
    [
        ({"confirm-rollout": "closed"}, "Waiting", 0, gates.CONFIRM_ROLLOUT),
        ({"confirm-traffic-increase": "closed"}, "Progressing", 10, gates.CONFIRM_TRAFFIC_INCREASE),
        ({"confirm-promotion": "closed"}, "Progressing", 40, gates.CONFIRM_PROMOTION),
        ({"confirm-promotion": "closed"}, "WaitingPromotion", 0, gates.CONFIRM_PROMOTION),
    ],
)
def test_promote_opens_the_holding_gate_for_one_step(declared, phase, weight, expected):
    plan = verbs.promote(gate(declared), canary(phase, weight=weight))
    assert plan.refused is None and plan.event == "Promoted"
    assert plan.changes == (GateChange(expected, gates.OPENED, SCOPE_STEP),)


@pytest.mark.parametrize(
    "declared, phase, weight",
    [
        ({}, "Waiting", 0),  # confirm-rollout open: Flagger goes on by itself at its next check
        ({}, "WaitingPromotion", 0),
        ({"confirm-promotion": "closed"}, "Progressing", 10),  # not at max weight yet: nothing holds
        ({"rollout": "closed"}, "Progressing", 10),  # a check gate fails checks; it holds nothing
    ],
)
def test_promote_writes_nothing_when_no_gate_holds(declared, phase, weight):
    plan = verbs.promote(gate(declared), canary(phase, weight=weight))
    assert plan.refused is None and plan.changes == () and plan.note is None


def test_promote_with_an_approval_pending_writes_nothing_and_says_so():
    approved = gate({"confirm-rollout": "closed"}, [live(gates.CONFIRM_ROLLOUT, gates.OPENED, scope=SCOPE_STEP)])
    stuck = diagnosis.Stuck(diagnosis.APPROVED, gates.CONFIRM_ROLLOUT, "confirm-rollout approved by alice 5s ago", "")
    plan = verbs.promote(approved, canary("Waiting"), stuck=stuck)
    assert plan.changes == () and plan.note == "confirm-rollout approved by alice 5s ago"


def test_promote_full_opens_every_closed_progress_gate_for_this_rollout():
    declared = {"confirm-rollout": "closed", "rollout": "closed", "confirm-promotion": "closed", "rollback": "closed"}
    plan = verbs.promote(gate(declared), canary("Progressing", weight=10), full=True)
    assert plan.changes == tuple(
        GateChange(g, gates.OPENED, SCOPE_ROLLOUT)
        for g in (gates.CONFIRM_ROLLOUT, gates.ROLLOUT, gates.CONFIRM_PROMOTION)
    )
    assert verbs.promote(gate(), canary("Progressing"), full=True).changes == ()


# -- pause, resume -------------------------------------------------------------------------------


@pytest.mark.parametrize("sticky, scope", [(False, SCOPE_ROLLOUT), (True, SCOPE_STICKY)])
def test_pause_closes_the_gates_that_wait(sticky, scope):
    plan = verbs.pause(sticky=sticky)
    assert plan.event == "Paused"
    assert plan.changes == (
        GateChange(gates.CONFIRM_TRAFFIC_INCREASE, gates.CLOSED, scope),
        GateChange(gates.CONFIRM_PROMOTION, gates.CLOSED, scope),
    )


def test_resume_removes_live_closures_in_force_and_names_declared_ones():
    paused = gate(
        {"confirm-promotion": "closed"},
        [live(gates.CONFIRM_TRAFFIC_INCREASE, gates.CLOSED), live(gates.CONFIRM_PROMOTION, gates.CLOSED)],
    )
    plan = verbs.resume(paused, canary("Progressing", weight=10))
    assert plan.event == "Resumed"
    assert plan.changes == (
        GateChange(gates.CONFIRM_TRAFFIC_INCREASE, None),
        GateChange(gates.CONFIRM_PROMOTION, None),
    )
    assert plan.still_closed == (gates.CONFIRM_PROMOTION,)


def test_resume_leaves_live_openings_and_ended_closures_alone():
    ended = canary("Succeeded")  # the closures were made during a rollout that has ended since
    ended = Canary(**{**ended.__dict__, "promoted": PromotedCondition("True", "Succeeded", "2026-11-22T11:00:00Z")})
    paused = gate((), [live(gates.CONFIRM_TRAFFIC_INCREASE, gates.CLOSED), live(gates.CONFIRM_PROMOTION, gates.OPENED)])
    assert verbs.resume(paused, ended).changes == ()
    assert verbs.resume(paused, canary("Progressing")).changes == (GateChange(gates.CONFIRM_TRAFFIC_INCREASE, None),)
