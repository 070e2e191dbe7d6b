"""What ``list``, ``show``, ``wait`` and the actions look at: a CanaryGate, its Canary and the
gates' decisions, assembled from already fetched data (pure; no API calls here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from canarygate import diagnosis, rendering, resolution
from canarygate import gates as gate_names
from canarygate.calls import Call, read_calls
from canarygate.diagnosis import Stuck, effective_weight
from canarygate.model import Canary, CanaryGate
from canarygate.readiness import Readiness, blocking
from canarygate.times import parse_time


@dataclass(frozen=True)
class GateView:
    gate: CanaryGate
    canary: Canary | None
    decisions: dict[str, resolution.Decision]
    holding: str | None
    closed: list[str]
    #: hook type -> whether the Canary sends it to the sidecar for this CanaryGate; None without a Canary.
    coverage: dict[str, bool] | None
    gate_events: list[Mapping[str, Any]] = field(default_factory=list)
    canary_event: Mapping[str, Any] | None = None
    #: The closed check gate Flagger calls now: each call a failed check (resolution.failing_gate).
    failing: str | None = None
    #: The canary and primary Deployments' readiness (read while a rollout runs; else empty).
    readiness: list[Readiness] = field(default_factory=list)
    #: Why the rollout is not moving when no gate of ours holds it (canarygate.diagnosis), if known.
    stuck: Stuck | None = None
    #: The calls the sidecar recorded (status.calls).
    calls: dict[str, Call] = field(default_factory=dict)

    @property
    def not_ready(self) -> list[Readiness]:
        """The Deployments whose not being ready stops Flagger from calling any hook now."""
        return blocking(self.readiness, self.canary.phase) if self.canary is not None else []

    @property
    def unknown(self) -> list[str]:
        """Gates whose state cannot be known: their live-state annotation cannot be read."""
        return [d.gate for d in self.decisions.values() if not d.known]

    @property
    def missing_hooks(self) -> list[str]:
        return [hook for hook, ok in (self.coverage or {}).items() if not ok]

    @property
    def weight(self) -> str:
        if self.canary is None:
            return "-"
        return f"{effective_weight(self.canary)}/{self.canary.max_weight}"


def build_view(
    gate: CanaryGate,
    canary: Canary | None,
    *,
    gate_events: Sequence[Mapping[str, Any]] = (),
    canary_events: Sequence[Mapping[str, Any]] = (),
    readiness: Sequence[Readiness] = (),
    now: datetime | None = None,
) -> GateView:
    decisions = resolution.resolve_gates(gate, canary=canary)
    coverage = rendering.hook_coverage(gate, list(canary.webhooks)) if canary is not None else None
    # NB: while a Deployment is not ready Flagger calls no hook: no gate holds, none fails (readiness).
    not_ready = blocking(list(readiness), canary.phase) if canary is not None else []
    stalled = bool(not_ready)
    holding = None if stalled else resolution.holding_gate(decisions, canary)
    failing = None if stalled else resolution.failing_gate(decisions, canary)
    reason = None
    if now is not None:
        started = None
        if canary is not None and canary.promoted is not None:
            started = parse_time(canary.promoted.last_transition_time)
        reason = diagnosis.stuck(
            canary,
            decisions,
            gate_ref=(gate.namespace, gate.name),
            status=gate.status,
            now=now,
            holding=holding,
            failing=failing,
            not_ready=not_ready,
            started=started,
            target_template=next((r.template for r in readiness if r.role == "canary"), ""),
        )
    return GateView(
        gate=gate,
        canary=canary,
        decisions=decisions,
        readiness=list(readiness),
        holding=holding,
        stuck=reason,
        calls=read_calls(gate.status),
        failing=failing,
        closed=resolution.closed_gates(decisions),
        coverage=coverage,
        gate_events=list(gate_events),
        canary_event=canary_events[-1] if canary_events else None,
    )


def event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")


def view_to_dict(view: GateView) -> dict[str, Any]:
    """The machine-readable form of ``show`` (``-o json|yaml``): stable keys, camelCase like Kubernetes."""
    canary = view.canary
    return {
        "name": view.gate.name,
        "namespace": view.gate.namespace,
        "target": {"namespace": view.gate.target.namespace, "name": view.gate.target.name},
        "canary": None
        if canary is None
        else {
            "phase": canary.phase,
            "weight": effective_weight(canary),
            "statusWeight": canary.canary_weight,
            "maxWeight": canary.max_weight,
            "failedChecks": canary.failed_checks,
            "threshold": canary.threshold,
            "iterations": canary.iterations,
            "lastEvent": None
            if view.canary_event is None
            else {
                "reason": view.canary_event.get("reason", ""),
                "message": view.canary_event.get("message", ""),
                "type": view.canary_event.get("type", ""),
                "time": event_time(view.canary_event),
            },
        },
        "holding": view.holding,
        "failing": view.failing,
        "stuck": None
        if view.stuck is None
        else {"kind": view.stuck.kind, "gate": view.stuck.gate, "message": view.stuck.message},
        "failure": view.gate.status.get("failure") or None,
        "calls": {c.hook: {"at": c.at.strftime("%Y-%m-%dT%H:%M:%SZ"), "answer": c.answer} for c in view.calls.values()},
        "notReady": [
            {
                "role": r.role,
                "deployment": r.name,
                "reason": r.reason,
                "deadline": r.deadline.strftime("%Y-%m-%dT%H:%M:%SZ") if r.deadline else None,
            }
            for r in view.not_ready
        ],
        "closed": list(view.closed),
        "gates": [
            {
                "gate": d.gate,
                "state": d.state if d.known else UNKNOWN,
                "source": d.source,
                "setBy": d.set_by,
                "setAt": d.set_at,
                "scope": d.scope,
                "reason": d.reason,
                **({} if d.known else {"problem": d.problem, "fix": fix_command(view, d.gate)}),
            }
            for d in view.decisions.values()
        ],
        "unknown": view.unknown,
        "webhooks": None if view.coverage is None else {"missing": view.missing_hooks},
        "problems": list(view.gate.problems),
    }


def failing_text(view: GateView) -> str:
    """``rollout failing 1/2``: the closed check gate and the failed checks toward the threshold."""
    if view.failing is None or view.canary is None:
        return ""
    return f"{view.failing} failing {view.canary.failed_checks}/{view.canary.threshold}"


def not_ready_text(view: GateView, now: datetime) -> list[str]:
    """For each Deployment that stops Flagger: what is wrong, that no gate is called, and when Flagger
    rolls back by itself (the progress deadline)."""
    lines = []
    for r in view.not_ready:
        text = (
            f"{r.role} Deployment {r.name} is not ready ({r.reason}):"
            " Flagger calls no gate, rollback included, until it is"
        )
        if r.exceeded:
            text += "; its progress deadline has passed: Flagger rolls back on its next check"
        elif r.deadline is not None:
            left = max(0, int((r.deadline - now).total_seconds()))
            text += f"; if it stays so, Flagger rolls back at its progress deadline, in {left}s"
        lines.append(text)
    return lines


def fix_command(view: GateView, gate: str) -> str:
    """What replaces an unreadable live-state annotation with a valid one."""
    return f"kubectl gate open|close {gate} {view.gate.name} -n {view.gate.namespace}"


def closed_text(view: GateView) -> str:
    """The closed gates (rollback when armed); a gate of unknown state shows as GATE(unknown)."""
    unknown = set(view.unknown)
    names = [f"{g}({UNKNOWN})" if g in unknown else g for g in view.closed]
    names += [f"{g}({UNKNOWN})" for g in view.unknown if g not in view.closed]
    return ",".join(names) if names else "-"


PHASES_DONE = {"Succeeded", "Failed"}
#: The state shown for a gate whose live-state annotation cannot be read (resolution.INVALID).
UNKNOWN = "unknown"
GATE_ORDER = gate_names.GATES
