"""Builders shared by the sidecar's unit tests: raw API objects and webhook calls."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.test import Client

from canarygate.annotations import LiveChange, RolloutMark
from gate_sidecar.writes import NullWriter

PROMOTED_AT = "2026-11-22T10:00:00Z"


def make_gate(name="demo", namespace="demo-ns", *, target=None, live=(), rv="1", **declared) -> dict[str, Any]:
    spec: dict[str, Any] = {k.replace("_", "-"): v for k, v in declared.items()}
    if target:
        spec["target"] = {"namespace": target[0], "name": target[1]}
    annotations = {c.key: c.encode() for c in live}
    return {
        "apiVersion": "piggysec.com/v1alpha1",
        "kind": "CanaryGate",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": rv,
            "uid": f"uid-{name}",
            "annotations": annotations,
        },
        "spec": spec,
    }


def make_canary(
    name="demo", namespace="demo-ns", *, phase="Progressing", weight=0, since=PROMOTED_AT, promoted="Unknown"
) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"analysis": {"interval": "10s", "threshold": 2, "maxWeight": 40, "stepWeight": 10}},
        "status": {
            "phase": phase,
            "canaryWeight": weight,
            "conditions": [{"type": "Promoted", "status": promoted, "reason": phase, "lastTransitionTime": since}],
        },
    }


def live_change(gate: str, state: str, *, scope="rollout", active=True, since=PROMOTED_AT, by="alice") -> LiveChange:
    return LiveChange(
        gate=gate,
        state=state,
        scope=scope,
        by=by,
        at="2026-11-22T10:01:00Z",
        rollout=RolloutMark(active=active, since=since),
    )


class RecordingWriter(NullWriter):
    def __init__(self):
        self.calls: list[tuple] = []

    def note_event(self, key, payload):
        self.calls.append(("event", key, dict(payload)))

    def consume(self, key, gate, change):
        self.calls.append(("consume", key, change))

    def held(self, key, hook, decision, canary):
        self.calls.append(("held", key, hook))


def payload(name="demo", namespace="demo-ns", *, phase="Progressing", metadata=None, **extra) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "namespace": namespace, "phase": phase, "checksum": "85d557f47b"}
    if metadata is not None:
        body["metadata"] = metadata
    body.update(extra)
    return body


def call(client: Client, hook: str, body: Any = None, **kwargs):
    """POST ``body`` (JSON-encoded unless bytes) to /hook; returns (status, decoded body)."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(payload() if body is None else body)
    response = client.post(f"/{hook}", data=data, content_type="application/json", **kwargs)
    return response.status_code, response.get_json(silent=True)
