"""Relists of unchanged objects: the informers relist quiet watches every few seconds.

Covers: a Canary relisted with the uid and resourceVersion it had keeps its cached object (answers
given from it stay the same, and a change of it is still seen), its listeners are still told; and the
history recorder writes a Canary's rollout once, writes nothing more for relists that change nothing,
and still records the next change.
"""

from __future__ import annotations

import copy
from typing import Any

from sidecar_helpers import call, make_canary, make_gate

from gate_sidecar.cache import GateCache, StaticHealth
from gate_sidecar.history import Recorder


def versioned(raw: dict[str, Any], rv: str) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    raw["metadata"].update(resourceVersion=rv, uid=f"uid-{raw['metadata']['name']}")
    return raw


def test_a_relisted_unchanged_canary_keeps_its_object_and_its_listeners_are_told(cache, client):
    canary = versioned(make_canary(phase="Progressing"), "7")
    cache.fill(gates=[make_gate(confirm_promotion="closed")], canaries=[canary])
    told: list[tuple[str, tuple[str, str]]] = []
    cache.listeners.append(lambda kind, key: told.append((kind, key)))
    before = cache.canary("demo-ns", "demo")
    first = call(client, "confirm-promotion")

    cache.replace_canaries([copy.deepcopy(canary)])

    assert cache.canary("demo-ns", "demo") is before
    assert told == [("canary", ("demo-ns", "demo"))]
    assert call(client, "confirm-promotion") == first
    moved = versioned(make_canary(phase="WaitingPromotion"), "8")
    cache.replace_canaries([moved])
    assert cache.canary("demo-ns", "demo").phase == "WaitingPromotion"


class FakeApi:
    """The PATCHes of status.history, applied to the cache as the watch would bring them back."""

    def __init__(self, cache: GateCache):
        self.cache = cache
        self.patches: list[list[dict[str, Any]]] = []

    def request(self, method, path, *, body=None, **kwargs):
        assert method == "PATCH" and path.endswith("/status")
        self.patches.append(body)
        entry = self.cache.entry(("demo-ns", "demo"))
        raw = copy.deepcopy(dict(entry.gate.raw))
        value = body[-1]["value"]
        raw.setdefault("status", {})["history"] = value["history"] if body[-1]["path"] == "/status" else value
        raw["metadata"]["resourceVersion"] = str(int(raw["metadata"]["resourceVersion"]) + 1)
        self.cache.apply_gate_event("MODIFIED", raw)
        return raw


def test_history_is_written_once_for_relists_that_change_nothing_and_again_on_a_change():
    cache = GateCache(health=[StaticHealth()])
    canary = versioned(make_canary(phase="Progressing"), "7")
    cache.fill(gates=[make_gate()], canaries=[canary])
    api = FakeApi(cache)
    recorder = Recorder(api, cache, wallclock=lambda: 1795000000.0)
    key = ("demo-ns", "demo")

    def relist(raw):
        cache.replace_canaries([copy.deepcopy(raw)])
        recorder.note("canary", (key,))
        recorder.flush()

    for _ in range(4):
        relist(canary)
    assert len(api.patches) == 1
    record = cache.entry(key).gate.status["history"]
    assert [(e["kind"], e["phase"]) for e in record["entries"]] == [("phase", "Progressing")]

    relist(versioned(make_canary(phase="WaitingPromotion"), "8"))
    relist(versioned(make_canary(phase="WaitingPromotion"), "8"))
    assert len(api.patches) == 2
    record = cache.entry(key).gate.status["history"]
    assert [(e["kind"], e["phase"]) for e in record["entries"]] == [
        ("phase", "Progressing"),
        ("phase", "WaitingPromotion"),
    ]
