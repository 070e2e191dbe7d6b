"""Kubernetes Events on CanaryGates: the audit trail people see in ``kubectl describe`` and ``show``."""

from __future__ import annotations

import time
from typing import Any

from canarygate import errors
from canarygate.kube.client import Kube
from canarygate.kube.resources import EVENTS
from canarygate.model import API_VERSION, KIND, CanaryGate

NORMAL = "Normal"
WARNING = "Warning"


def record_event(
    kube: Kube,
    gate: CanaryGate,
    *,
    reason: str,
    message: str,
    now: str,
    type: str = NORMAL,  # noqa: A002 - the Event's own field name
    component: str = "kubectl-gate",
    action: str = "",
) -> dict[str, Any]:
    """Create a core/v1 Event about ``gate`` (``now`` as RFC 3339)."""
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        # NB: named as client-go's recorder names events (name.<unix nanoseconds in hex>), so they
        # list in the order they happened.
        "metadata": {"name": f"{gate.name}.{time.time_ns():x}", "namespace": gate.namespace},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": gate.name,
            "namespace": gate.namespace,
            "uid": gate.uid,
            "resourceVersion": gate.resource_version,
        },
        "reason": reason,
        "message": message,
        "type": type,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "action": action or reason,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    return kube.request("POST", EVENTS.path(gate.namespace), body=event, resource=EVENTS)


def list_events(kube: Kube, namespace: str, name: str, *, kind: str | None = KIND) -> list[dict[str, Any]]:
    """Events about the object ``kind``/``name`` in ``namespace``, oldest first; every kind of object
    with that name when ``kind`` is None (one request for a CanaryGate and its same-named Canary).
    Empty when Events may not be listed."""
    selector = (
        f"involvedObject.name={name}" if kind is None else f"involvedObject.kind={kind},involvedObject.name={name}"
    )
    try:
        raw = kube.request("GET", EVENTS.path(namespace), query=[("fieldSelector", selector)], resource=EVENTS)
    except (errors.Forbidden, errors.NotFound):
        return []
    # NB: filter here too: a server may ignore a field selector it does not index.
    items = [
        e
        for e in raw.get("items") or ()
        if (e.get("involvedObject") or {}).get("name") == name
        and (kind is None or (e.get("involvedObject") or {}).get("kind") == kind)
    ]
    items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "")
    return items
