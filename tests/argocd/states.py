"""CanaryGates in every state a rollout goes through, with the status the gate sidecar writes.

The status is computed as gate_sidecar.writes does it: the Canary's phase and weight, and the
resolution of the CanaryGate against its Canary (``holding``, ``closedGates``). Some states carry a
lagging phase instead, as sidecars before d4a5b53 wrote it (the phase Flagger's event carried: its
"waiting for approval" event has the phase before Waiting, docs/flagger-contract.md#event-hooks): the
scripts must not be misled by such a status either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from canarygate.model import parse_canary, parse_canarygate
from canarygate.resolution import closed_gates, holding_gate, resolve_gates

NAME, NAMESPACE = "demo", "demo-ns"
PROMOTED_AT = "2026-11-22T09:58:10Z"
ANALYSIS = {"interval": "10s", "threshold": 2, "maxWeight": 40, "stepWeight": 10}


def canary(phase: str, *, weight: int = 0, since: str = PROMOTED_AT) -> dict[str, Any]:
    """A Flagger Canary in ``phase``, with the Promoted condition Flagger sets for it
    (docs/flagger-contract.md#the-promoted-condition)."""
    promoted = {"Initialized": "True", "Succeeded": "True", "Failed": "False"}.get(phase, "Unknown")
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {"analysis": dict(ANALYSIS)},
        "status": {
            "phase": phase,
            "canaryWeight": weight,
            "failedChecks": 0,
            "iterations": 0,
            "lastAppliedSpec": "abc",
            "lastPromotedSpec": "abc" if phase != "Progressing" else "old",
            "conditions": [{"type": "Promoted", "status": promoted, "reason": phase, "lastTransitionTime": since}],
        },
    }


def canarygate(declared: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = dict(declared or {})
    spec["target"] = {"namespace": NAMESPACE, "name": NAME}
    spec["flagger"] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
        "service": {"port": 8080},
        "analysis": dict(ANALYSIS),
    }
    meta: dict[str, Any] = {
        "name": NAME,
        "namespace": NAMESPACE,
        "resourceVersion": "7",
        "generation": 1,
        "uid": "6f0e6d8c-0000-4000-8000-000000000001",
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "piggysec.com/v1alpha1", "kind": "CanaryGate", "metadata": meta, "spec": spec}


def sidecar_status(
    gate: dict[str, Any],
    canary_raw: dict[str, Any],
    *,
    event_phase: str | None = None,
    message: str = "",
    failure: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The status gate_sidecar.writes writes after an event with ``message``; ``event_phase``, the
    event's phase, is written instead of the Canary's when given (a lagging status)."""
    parsed_canary = parse_canary(canary_raw)
    decisions = resolve_gates(parse_canarygate(gate), canary=parsed_canary)
    phase = parsed_canary.phase if event_phase is None else event_phase
    status = {
        "target": f"{NAMESPACE}/{NAME}",
        "phase": phase,
        "checksum": "7d4c9f8b",
        "holding": holding_gate(decisions, parsed_canary) or "",
        "closedGates": ",".join(closed_gates(decisions)),
        "lastEvent": {
            "message": message,
            "type": "Normal",
            "phase": phase,
            "checksum": "7d4c9f8b",
            "time": "2026-11-22T10:00:00Z",
        },
        "observedGeneration": 1,
        "canaryWeight": parsed_canary.canary_weight,
    }
    if failure:
        status["failure"] = failure
    return status


@dataclass(frozen=True)
class State:
    """One CanaryGate as Argo CD reads it, the Canary it drives, and what each script must make of it."""

    name: str
    gate: dict[str, Any]
    canary: dict[str, Any] | None
    health: str
    message: str  # a part of the health message a user must see
    #: The actions discovery enables (the others are disabled).
    enabled: frozenset[str] = field(default_factory=frozenset)


def _state(
    name,
    declared,
    canary_raw,
    health,
    message,
    enabled,
    *,
    event_phase=None,
    event_message="",
    annotations=None,
    failure=None,
) -> State:
    gate = canarygate(declared, annotations)
    gate["status"] = sidecar_status(gate, canary_raw, event_phase=event_phase, message=event_message, failure=failure)
    return State(name, gate, canary_raw, health, message, frozenset(enabled))


HOLD = {"promote", "promote-full", "pause", "abort"}
RUNNING = {"pause", "abort"}


def states() -> list[State]:
    """Every state of a rollout, and the ones where the status lags or is absent."""
    no_status = canarygate({"confirm-rollout": "closed"})
    empty_status = canarygate()
    empty_status["status"] = {}
    return [
        State("no status", no_status, None, "Healthy", "No rollout reported yet", frozenset()),
        State("empty status", empty_status, None, "Healthy", "No rollout reported yet", frozenset()),
        _state("initializing", {}, canary("Initializing"), "Healthy", "phase Initializing, no rollout", ()),
        _state("initialized", {}, canary("Initialized"), "Healthy", "phase Initialized, no rollout", ()),
        _state(
            "waiting at confirm-rollout",
            {"confirm-rollout": "closed"},
            canary("Waiting"),
            "Suspended",
            "Gate confirm-rollout holds the rollout of Canary demo-ns/demo",
            HOLD,
        ),
        _state(
            "waiting, confirm-rollout approved",
            {},
            canary("Waiting"),
            "Suspended",
            "Canary demo-ns/demo is Waiting and gate confirm-rollout is open: Flagger goes on at its next check",
            {"pause", "abort"},
        ),
        # Lagging statuses: Flagger's "Halt ... waiting for approval" event carries the phase before Waiting.
        _state(
            "waiting, status from the event before Waiting",
            {"confirm-rollout": "closed"},
            canary("Waiting"),
            "Suspended",
            "Gate confirm-rollout holds",
            HOLD,
            event_phase="Succeeded",
        ),
        _state(
            "waiting after a failed rollout",
            {"confirm-rollout": "closed"},
            canary("Waiting"),
            "Suspended",
            "Gate confirm-rollout holds",
            HOLD,
            event_phase="Failed",
        ),
        _state(
            "progressing",
            {},
            canary("Progressing", weight=20),
            "Progressing",
            "Rollout of Canary demo-ns/demo in progress (phase Progressing, canary weight 20%)",
            RUNNING,
        ),
        _state(
            "progressing, held at a traffic step",
            {"confirm-traffic-increase": "closed"},
            canary("Progressing", weight=10),
            "Suspended",
            "Gate confirm-traffic-increase holds the rollout of Canary demo-ns/demo: the next traffic step",
            HOLD,
        ),
        _state(
            "progressing at max weight, promotion held",
            {"confirm-promotion": "closed"},
            canary("Progressing", weight=40),
            "Suspended",
            "Gate confirm-promotion holds",
            HOLD,
        ),
        _state(
            "waiting for promotion",
            {"confirm-promotion": "closed"},
            canary("WaitingPromotion"),
            "Suspended",
            "Gate confirm-promotion holds the rollout of Canary demo-ns/demo: promotion waits for approval",
            HOLD,
        ),
        _state(
            "paused",
            {},
            canary("Progressing", weight=10),
            "Suspended",
            "Gate confirm-traffic-increase holds",
            {"promote", "promote-full", "resume", "abort"},
            annotations={
                "gate.piggysec.com/confirm-traffic-increase": _live("closed"),
                "gate.piggysec.com/confirm-promotion": _live("closed"),
            },
        ),
        _state("promoting", {}, canary("Promoting", weight=40), "Progressing", "in progress (phase Promoting", ()),
        _state("finalising", {}, canary("Finalising"), "Progressing", "in progress (phase Finalising", ()),
        _state(
            "succeeded",
            {"confirm-promotion": "closed"},
            canary("Succeeded"),
            "Healthy",
            "Canary demo-ns/demo: phase Succeeded, no rollout in progress",
            (),
        ),
        _state(
            "failed",
            {},
            canary("Failed"),
            "Degraded",
            "The last rollout of Canary demo-ns/demo failed and was rolled back: Rolling back demo.demo-ns "
            "failed checks threshold reached 2 (Halt advancement demo.demo-ns external check rollout failed)",
            (),
            event_message="Post-rollout check post-rollout passed",
            failure={
                "message": "Rolling back demo.demo-ns failed checks threshold reached 2",
                "check": "Halt advancement demo.demo-ns external check rollout failed",
                "time": "2026-11-22T10:02:00Z",
            },
        ),
        _state(
            "failed, no failure recorded",
            {},
            canary("Failed"),
            "Degraded",
            "failed and was rolled back: Canary failed! Scaling down demo.demo-ns",
            (),
            event_message="Canary failed! Scaling down demo.demo-ns",
        ),
        _state("terminating", {}, canary("Terminating"), "Healthy", "phase Terminating", ()),
    ]


def _live(state: str, scope: str = "rollout") -> str:
    from canarygate.annotations import LiveChange, RolloutMark

    return LiveChange(
        "confirm-traffic-increase",
        state,
        scope,
        "alice",
        "2026-11-22T09:59:00Z",
        rollout=RolloutMark(True, PROMOTED_AT),
    ).encode()
