"""Fetching what the commands show, with the messages a user can act on."""

from __future__ import annotations

import difflib

from canarygate import errors
from canarygate.kube import canaries, canarygates, events, workloads
from canarygate.model import CanaryGate
from kubectl_gate.context import GateContext
from kubectl_gate.views import GateView, build_view


def get_gate(gctx: GateContext, name: str, namespace: str | None = None) -> CanaryGate:
    """The CanaryGate, or NotFound naming the close names in that namespace."""
    namespace = namespace or gctx.ns
    try:
        return canarygates.get_gate(gctx.kube, namespace, name)
    except errors.CrdMissing:
        raise
    except errors.NotFound:
        raise gate_not_found(gctx, name, namespace) from None


def gate_not_found(gctx: GateContext, name: str, namespace: str) -> errors.NotFound:
    """NotFound for CanaryGate ``name``, its message naming the close names (:func:`not_found_message`)."""
    return errors.NotFound(not_found_message(gctx, name, namespace), kind="CanaryGate", name=name, namespace=namespace)


def not_found_message(gctx: GateContext, name: str, namespace: str) -> str:
    message = errors.not_found_message("CanaryGate", name, namespace)
    try:
        known = [g.name for g in canarygates.list_gates(gctx.kube, namespace)]
    except errors.GateError:
        return message
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        return message + ": did you mean " + " or ".join(f'"{c}"' for c in close) + "?"
    if known:
        return message + f" (there: {', '.join(known[:8])}{' …' if len(known) > 8 else ''})"
    return message + " (no CanaryGates there: kubectl gate list -A)"


def load_view(
    gctx: GateContext,
    name: str,
    *,
    with_events: bool = True,
    gate: CanaryGate | None = None,
    with_readiness: bool = True,
) -> GateView:
    """The CanaryGate, its Canary, the readiness of its Deployments while a rollout runs (two GETs)
    and (optionally) recent Events, resolved into a view."""
    gate = gate or get_gate(gctx, name)
    canary = canaries.find_canary(gctx.kube, gate.target.namespace, gate.target.name)
    gate_events: list = []
    canary_events: list = []
    if with_events:
        if canary is not None and (canary.namespace, canary.name) == (gate.namespace, gate.name):
            both = events.list_events(gctx.kube, gate.namespace, gate.name, kind=None)
            gate_events = [e for e in both if (e.get("involvedObject") or {}).get("kind") == "CanaryGate"][-20:]
            canary_events = [e for e in both if (e.get("involvedObject") or {}).get("kind") == "Canary"]
        else:
            gate_events = events.list_events(gctx.kube, gate.namespace, gate.name)[-20:]
            if canary is not None:
                canary_events = events.list_events(gctx.kube, canary.namespace, canary.name, kind="Canary")
    ready = (
        workloads.canary_readiness(gctx.kube, canary, now=gctx.now())
        if with_readiness and canary is not None and canary.active
        else []
    )
    return build_view(
        gate, canary, gate_events=gate_events, canary_events=canary_events, readiness=ready, now=gctx.now()
    )
