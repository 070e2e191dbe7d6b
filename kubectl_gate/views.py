"""What ``list``, ``show``, ``wait`` and the actions look at: a CanaryGate, its Canary and the
gates' decisions, assembled from already fetched data (pure; no API calls here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from canarygate import gates as gate_names
from canarygate import rendering, resolution
from canarygate.model import Canary, CanaryGate


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
        return f"{self.canary.canary_weight}/{self.canary.max_weight}"


def build_view(
    gate: CanaryGate,
    canary: Canary | None,
    *,
    gate_events: list[Mapping[str, Any]] = (),
    canary_events: list[Mapping[str, Any]] = (),
) -> GateView:
    decisions = resolution.resolve_gates(gate, canary=canary)
    coverage = rendering.hook_coverage(gate, list(canary.webhooks)) if canary is not None else None
    return GateView(
        gate=gate,
        canary=canary,
        decisions=decisions,
        holding=resolution.holding_gate(decisions, canary),
        failing=resolution.failing_gate(decisions, canary),
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
            "weight": canary.canary_weight,
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
