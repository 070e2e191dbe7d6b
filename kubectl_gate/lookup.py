"""Fetching what the commands show, with the messages a user can act on."""

from __future__ import annotations

import difflib

from canarygate import errors
from canarygate.kube import canaries, gates
from canarygate.kube.resources import EVENTS
from canarygate.model import CanaryGate
from kubectl_gate.context import GateContext
from kubectl_gate.views import GateView, build_view


def get_gate(gctx: GateContext, name: str, namespace: str | None = None) -> CanaryGate:
    """The CanaryGate, or NotFound naming the close names in that namespace."""
    namespace = namespace or gctx.ns
    try:
        return gates.get_gate(gctx.kube, namespace, name)
    except errors.CrdMissing:
        raise
    except errors.NotFound:
        raise errors.NotFound(not_found_message(gctx, name, namespace), kind="CanaryGate", name=name,
                              namespace=namespace) from None


def not_found_message(gctx: GateContext, name: str, namespace: str) -> str:
    message = f'CanaryGate "{name}" not found in namespace "{namespace}"'
    try:
        known = [g.name for g in gates.list_gates(gctx.kube, namespace)]
    except errors.GateError:
        return message
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        return message + ": did you mean " + " or ".join(f'"{c}"' for c in close) + "?"
    if known:
        return message + f" (there: {', '.join(known[:8])}{' …' if len(known) > 8 else ''})"
    return message + " (no CanaryGates there: kubectl gate list -A)"


def object_events(gctx: GateContext, namespace: str, kind: str, name: str, *, any_kind: bool = False) -> list[dict]:
    """Events about one object, oldest first; empty when they may not be read (``any_kind``: every
    kind of object with that name, so one request serves a CanaryGate and its same-named Canary)."""
    selector = f"involvedObject.name={name}" if any_kind else f"involvedObject.kind={kind},involvedObject.name={name}"
    try:
        raw = gctx.kube.request("GET", EVENTS.path(namespace), query=[("fieldSelector", selector)], resource=EVENTS)
    except (errors.Forbidden, errors.NotFound):
        return []
    items = [i for i in raw.get("items") or () if (any_kind or (i.get("involvedObject") or {}).get("kind") == kind)
             and (i.get("involvedObject") or {}).get("name") == name]
    items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "")
    return items


def load_view(gctx: GateContext, name: str, *, with_events: bool = True, gate: CanaryGate | None = None) -> GateView:
    """The CanaryGate, its Canary and (optionally) recent Events, resolved into a view."""
    gate = gate or get_gate(gctx, name)
    canary = canaries.find_canary(gctx.kube, gate.target.namespace, gate.target.name)
    gate_events: list = []
    canary_events: list = []
    if with_events:
        if canary is not None and (canary.namespace, canary.name) == (gate.namespace, gate.name):
            both = object_events(gctx, gate.namespace, "", gate.name, any_kind=True)
            gate_events = [e for e in both if (e.get("involvedObject") or {}).get("kind") == "CanaryGate"][-20:]
            canary_events = [e for e in both if (e.get("involvedObject") or {}).get("kind") == "Canary"]
        else:
            gate_events = object_events(gctx, gate.namespace, "CanaryGate", gate.name)[-20:]
            if canary is not None:
                canary_events = object_events(gctx, canary.namespace, "Canary", canary.name)
    return build_view(gate, canary, gate_events=gate_events, canary_events=canary_events)
