"""Gate resolution: effective state from live, declared and default; rollout scoping of live changes;
one-step consumption; the gate holding a rollout; the closed-gates summary.

Covers: defaults (rollback closed, others opened), declared over default, live over declared,
sticky live changes, live changes ending with their rollout (made during it, made between rollouts,
rollout ended while nobody looked, next rollout started), binding an idle change to the rollout it
meets, consumed one-step changes, unreadable annotations ignored, holding gate per phase.
"""

from __future__ import annotations

import pytest

from canarygate import gates, resolution, rollouts
from canarygate.annotations import LiveChange, RolloutMark
from canarygate.model import parse_canary, parse_canarygate

T0, T1, T2, T3 = "2026-11-22T10:00:00Z", "2026-11-22T10:05:00Z", "2026-11-22T10:10:00Z", "2026-11-22T10:15:00Z"
CONDITION_STATUS = {
    "Initialized": "True",
    "Succeeded": "True",
    "Failed": "False",
    "Initializing": "Unknown",
    "Waiting": "Unknown",
    "Progressing": "Unknown",
    "WaitingPromotion": "Unknown",
    "Promoting": "Unknown",
    "Finalising": "Unknown",
}


def canary(
    phase: str,
    since: str,
    *,
    weight: int = 0,
    iterations: int = 0,
    max_weight: int = 40,
    spec: str = "rev2",
    configs: dict | None = None,
    promoted: str = "rev1",
):
    return parse_canary(
        {
            "metadata": {"name": "demo", "namespace": "demo-ns"},
            "spec": {"analysis": {"maxWeight": max_weight, "stepWeight": 10, "threshold": 2, "interval": "10s"}},
            "status": {
                "phase": phase,
                "canaryWeight": weight,
                "iterations": iterations,
                "lastAppliedSpec": spec,
                "lastPromotedSpec": promoted,
                "trackedConfigs": configs or {},
                "conditions": [
                    {
                        "type": "Promoted",
                        "status": CONDITION_STATUS[phase],
                        "reason": phase,
                        "lastTransitionTime": since,
                    }
                ],
            },
        }
    )


def canarygate(spec_gates: dict | None = None, live: list[LiveChange] = ()):
    return parse_canarygate(
        {
            "metadata": {
                "name": "demo",
                "namespace": "demo-ns",
                "resourceVersion": "7",
                "annotations": {c.key: c.encode() for c in live},
            },
            "spec": {**(spec_gates or {}), "target": {"namespace": "demo-ns", "name": "demo"}},
        }
    )


def change(gate="confirm-promotion", state="opened", scope="rollout", active=True, since=T1):
    return LiveChange(
        gate=gate,
        state=state,
        scope=scope,
        by="alice",
        at=T1,
        reason="CAB-1",
        rollout=RolloutMark(active=active, since=since),
    )


@pytest.mark.parametrize("gate,expected", [(g, "closed" if g == "rollback" else "opened") for g in gates.GATES])
def test_defaults_when_no_canarygate(gate, expected):
    decision = resolution.resolve_gate(None, gate)
    assert (decision.state, decision.source) == (expected, "default")


def test_declared_beats_default_and_live_beats_declared():
    gate = canarygate(
        {"confirm-rollout": "closed", "rollback": "opened"},
        live=[change(gate="confirm-rollout", active=False, since=T0)],
    )
    decisions = resolution.resolve_gates(gate, canary=canary("Succeeded", T0))
    assert (decisions["confirm-rollout"].state, decisions["confirm-rollout"].source) == ("opened", "live")
    assert decisions["confirm-rollout"].set_by == "alice"
    assert decisions["confirm-rollout"].reason == "CAB-1"
    assert (decisions["rollback"].state, decisions["rollback"].source) == ("opened", "declared")
    assert (decisions["pre-rollout"].state, decisions["pre-rollout"].source) == ("opened", "default")


@pytest.mark.parametrize(
    "mark_active,mark_since,now_phase,now_since,in_force",
    [
        # made during a rollout (active since T1)
        (True, T1, "Waiting", T1, True),
        (True, T1, "Progressing", T1, True),  # Waiting -> Progressing keeps the condition's time
        (True, T1, "WaitingPromotion", T1, True),
        (True, T1, "Succeeded", T2, False),  # promoted: over
        (True, T1, "Failed", T2, False),  # rolled back: over
        (True, T1, "Progressing", T3, False),  # a later rollout: the one it was for ended unseen
        # made between rollouts (idle since T0, after the last one ended)
        (False, T0, "Succeeded", T0, True),  # still idle: holds for the next rollout
        (False, T0, "Waiting", T1, True),  # the next rollout
        (False, T0, "Progressing", T1, True),
        (False, T0, "Succeeded", T2, False),  # the next rollout ended
        (False, T0, "Failed", T2, False),
        (False, T0, "Failed", T0, True),  # Failed re-syncs every tick; the condition time stays
        # made before the Canary existed
        (False, "", "Initialized", T0, True),
        (False, "", "Progressing", T1, True),
        (False, "", "Succeeded", T2, False),
    ],
)
def test_live_change_ends_with_its_rollout(mark_active, mark_since, now_phase, now_since, in_force):
    live = change(active=mark_active, since=mark_since)
    current = canary(now_phase, now_since)
    assert rollouts.in_force(live, current) is in_force
    decision = resolution.resolve_gate(
        canarygate({"confirm-promotion": "closed"}, [live]), "confirm-promotion", canary=current
    )
    assert (decision.state, decision.source) == (("opened", "live") if in_force else ("closed", "declared"))


def test_sticky_change_outlives_rollouts():
    live = change(scope="sticky", active=True, since=T1)
    assert rollouts.in_force(live, canary("Succeeded", T2))
    assert rollouts.in_force(live, canary("Progressing", T3))
    assert rollouts.binding_for(live, canary("Progressing", T3)) is None
    assert "rollout" not in live.encode()


def test_idle_change_is_bound_to_the_rollout_it_meets():
    idle = change(active=False, since=T0)
    assert rollouts.binding_for(idle, canary("Succeeded", T0)) is None  # no rollout yet
    bound = rollouts.binding_for(idle, canary("Waiting", T1, spec="rev1"))  # still the deployed revision
    assert bound is not None and bound.rollout == RolloutMark(active=True, since=T1)
    # once bound, a second rollout does not inherit it, even if nobody saw the first one end
    assert rollouts.in_force(bound, canary("Progressing", T1))
    assert not rollouts.in_force(bound, canary("Progressing", T3))
    # bound again once, to the revision the rollout analyses; then nothing more to write
    assert rollouts.binding_for(bound, canary("Waiting", T1, spec="rev1")) is None
    rebound = rollouts.binding_for(bound, canary("Progressing", T1))
    assert rebound is not None and rebound.rollout.revision
    assert rollouts.binding_for(rebound, canary("Progressing", T1)) is None
    assert rollouts.binding_for(idle, canary("Succeeded", T2)) is None  # expired: nothing to bind


def test_no_canary_means_idle_with_no_time():
    assert rollouts.mark_of(None) == RolloutMark(active=False, since="")
    assert rollouts.in_force(change(active=False, since=""), None)


def test_consumed_step_no_longer_counts():
    step = change(gate="confirm-traffic-increase", scope="step", active=True, since=T1)
    gate = canarygate({"confirm-traffic-increase": "closed"}, [step])
    current = canary("Progressing", T1, weight=10)
    assert resolution.resolve_gate(gate, "confirm-traffic-increase", canary=current).source == "live"
    decision = resolution.resolve_gate(gate, "confirm-traffic-increase", canary=current, consumed={step.identity})
    assert (decision.state, decision.source) == ("closed", "declared")
    # rebinding rewrites the rollout mark, not the change: a used step stays used
    rebound = step.bound_to(RolloutMark(active=True, since=T1, revision="abc"))
    assert rebound.encode() != step.encode() and rebound.identity == step.identity
    gate = canarygate({"confirm-traffic-increase": "closed"}, [rebound])
    assert (
        resolution.resolve_gate(gate, "confirm-traffic-increase", canary=current, consumed={step.identity}).source
        == "declared"
    )


def test_approval_does_not_pass_to_a_newer_revision_mid_analysis():
    # Flagger restarts the analysis in place (same Promoted condition) when a newer revision arrives.
    analysed = canary("WaitingPromotion", T1, spec="rev2")
    approval = change(gate="confirm-promotion", active=True, since=T1).bound_to(rollouts.mark_of(analysed))
    assert approval.rollout.revision
    assert rollouts.in_force(approval, analysed)
    assert not rollouts.in_force(approval, canary("Progressing", T1, spec="rev3"))
    assert not rollouts.in_force(approval, canary("Progressing", T1, spec="rev2", configs={"configmap/app": "ab"}))
    decision = resolution.resolve_gate(
        canarygate({"confirm-promotion": "closed"}, [approval]),
        "confirm-promotion",
        canary=canary("Progressing", T1, spec="rev3"),
    )
    assert (decision.state, decision.source) == ("closed", "declared")


def test_waiting_after_a_failure_already_names_the_new_revision():
    # docs/flagger-contract.md#the-checksum: coming from Failed, Flagger records the waiting revision before
    # confirm-rollout.
    def waiting(applied):
        return parse_canary(
            {
                "metadata": {"name": "d", "namespace": "n"},
                "status": {
                    "phase": "Waiting",
                    "lastAppliedSpec": applied,
                    "lastPromotedSpec": "rev1",
                    "conditions": [
                        {"type": "Promoted", "status": "Unknown", "reason": "Waiting", "lastTransitionTime": T1}
                    ],
                },
            }
        )

    assert rollouts.revision_of(waiting("rev1")) == ""  # from Succeeded: still the deployed revision
    pre_approval = LiveChange(gate="confirm-promotion", state="opened", rollout=rollouts.mark_of(waiting("rev2")))
    assert pre_approval.rollout.revision
    assert not rollouts.in_force(pre_approval, canary("Progressing", T1, spec="rev3"))


def test_change_made_while_waiting_is_bound_to_the_revision_it_lets_in():
    waiting = canary("Waiting", T1, spec="rev1")  # while Waiting, lastAppliedSpec is still the deployed one
    approval = LiveChange(gate="confirm-rollout", state="opened", rollout=rollouts.mark_of(waiting))
    assert approval.rollout == RolloutMark(active=True, since=T1, revision="")
    started = canary("Progressing", T1, spec="rev2")
    assert rollouts.in_force(approval, started)
    bound = rollouts.binding_for(approval, started)
    assert bound is not None and bound.rollout.revision == rollouts.mark_of(started).revision
    assert rollouts.binding_for(bound, started) is None
    assert not rollouts.in_force(bound, canary("Progressing", T1, spec="rev3"))


def test_unreadable_annotation_makes_the_gate_unknown_not_guessed():
    raw = {
        "metadata": {
            "name": "demo",
            "namespace": "demo-ns",
            "annotations": {
                "gate.piggysec.com/confirm-promotion": "opened please",
                "gate.piggysec.com/confirm-rolout": '{"state":"opened"}',
                "gate.piggysec.com/rollback": '{"state":"maybe"}',
            },
        },
        "spec": {"confirm-promotion": "closed"},
    }
    gate = parse_canarygate(raw)
    assert gate.live == {}
    assert len(gate.problems) == 3
    assert set(gate.invalid) == {"confirm-promotion", "rollback"}  # the misspelt gate name is only reported
    for name in ("confirm-promotion", "rollback"):
        decision = resolution.resolve_gate(gate, name)
        assert (decision.state, decision.source, decision.known) == ("closed", "invalid", False)
        assert "cannot be read" in decision.problem
    # a hand-written "close" the parser cannot read must not fall back to an opened default
    typo = parse_canarygate(
        {
            "metadata": {
                "name": "d",
                "namespace": "n",
                "annotations": {"gate.piggysec.com/confirm-rollout": '{"state":"close","scope":"Sticky"}'},
            },
            "spec": {},
        }
    )
    assert resolution.resolve_gate(typo, "confirm-rollout").source == "invalid"


@pytest.mark.parametrize(
    "spec_gates,phase,weight,iterations,expected",
    [
        ({"confirm-rollout": "closed"}, "Waiting", 0, 0, "confirm-rollout"),
        ({"confirm-promotion": "closed"}, "WaitingPromotion", 0, -1, "confirm-promotion"),
        ({"pre-rollout": "closed"}, "Progressing", 0, 0, None),
        ({"confirm-traffic-increase": "closed"}, "Progressing", 10, 0, "confirm-traffic-increase"),
        ({"rollout": "closed"}, "Progressing", 10, 0, None),
        ({"confirm-promotion": "closed"}, "Progressing", 40, 0, "confirm-promotion"),
        ({"confirm-promotion": "closed"}, "Progressing", 20, 0, None),
        ({}, "Progressing", 10, 0, None),
        ({"confirm-rollout": "closed"}, "Succeeded", 0, 0, None),
    ],
)
def test_holding_gate(spec_gates, phase, weight, iterations, expected):
    current = canary(phase, T1, weight=weight, iterations=iterations)
    decisions = resolution.resolve_gates(canarygate(spec_gates), canary=current)
    assert resolution.holding_gate(decisions, current) == expected


@pytest.mark.parametrize(
    "spec_gates,phase,weight,expected",
    [
        ({"pre-rollout": "closed"}, "Progressing", 0, "pre-rollout"),
        ({"pre-rollout": "closed"}, "Progressing", 10, None),
        ({"rollout": "closed"}, "Progressing", 10, "rollout"),
        ({"rollout": "closed"}, "WaitingPromotion", 0, "rollout"),
        ({"rollout": "closed"}, "Waiting", 0, None),
        ({"confirm-traffic-increase": "closed"}, "Progressing", 10, None),
    ],
)
def test_a_closed_check_gate_fails_checks_and_holds_nothing(spec_gates, phase, weight, expected):
    current = canary(phase, T1, weight=weight, iterations=0)
    decisions = resolution.resolve_gates(canarygate(spec_gates), canary=current)
    assert resolution.failing_gate(decisions, current) == expected
    assert resolution.holding_gate(decisions, current) not in ("rollout", "pre-rollout")


def test_closed_gates_lists_armed_rollback():
    decisions = resolution.resolve_gates(canarygate({"confirm-promotion": "closed", "rollback": "opened"}))
    assert resolution.closed_gates(decisions) == ["confirm-promotion", "rollback"]
    assert resolution.closed_gates(resolution.resolve_gates(None)) == []
