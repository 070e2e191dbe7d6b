"""Bad data is contained (issue 9): an object or annotation however large, deep or malformed makes only
its own gates unknown (closed); the cache, the informer feeding it, and every other CanaryGate's
answers go on; a feed whose callback keeps failing ages, so /readyz does not stay 200 over a frozen
cache.
"""

from __future__ import annotations

import json

import pytest
from sidecar_helpers import call, make_canary, make_gate, payload
from werkzeug.test import Client

from canarygate import annotations, gates
from canarygate.kube.informers import Informer
from canarygate.kube.resources import CANARYGATES
from gate_sidecar.app import create_app
from gate_sidecar.cache import GateCache

DEEP = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"state":"opened","by":' + '{"a":' * 10_000 + "1" + "}" * 10_000 + "}"
HUGE = json.dumps({"state": "opened", "scope": "sticky", "by": "x" * (annotations.MAX_VALUE + 1)})
GOOD = make_gate("good", "team-b", confirm_promotion="closed", confirm_rollout="opened")


def with_annotation(value, name="bad", namespace="team-a"):
    raw = make_gate(name, namespace, confirm_rollout="opened")
    raw["metadata"]["annotations"] = {annotations.annotation_key("confirm-rollout"): value}
    return raw


def malformed_objects():
    base = make_gate("bad", "team-a", confirm_rollout="opened")
    variants = {
        "deep list": with_annotation(DEEP),
        "deep object": with_annotation(DEEP_OBJECT),
        "over 64 KiB": with_annotation(HUGE),
        "not a string": with_annotation({"state": "opened"}),
        "lone surrogate": with_annotation('{"state":"opened","by":"\udc80"}'),
        "state a list": with_annotation('{"state":["opened"]}'),
        "by an object": with_annotation('{"state":"opened","by":{"a":1}}'),
    }
    for field, value in [("annotations", ["a"]), ("annotations", "x"), ("generation", "many"), ("generation", [1])]:
        raw = json.loads(json.dumps(base))
        raw["metadata"][field] = value
        variants[f"metadata.{field}={value!r}"] = raw
    for spec in ["text", ["a"], {"target": ["a"]}, {"target": {"name": 5}}, {"flagger": "x", "confirm-rollout": ["x"]}]:
        raw = json.loads(json.dumps(base))
        raw["spec"] = spec
        variants[f"spec={spec!r}"] = raw
    return variants


VARIANTS = malformed_objects()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_malformed_canarygate_makes_only_its_own_gates_unknown(cache, client, name):
    cache.fill(gates=[VARIANTS[name], GOOD], canaries=[make_canary("bad", "team-a"), make_canary("good", "team-b")])
    status, body = call(client, "confirm-rollout", payload("bad", "team-a"))
    assert status == 503 and body["allowed"] is False and body["state"] == "unknown", body
    # the others are answered as before
    assert call(client, "confirm-promotion", payload("good", "team-b"))[0] == 403
    assert call(client, "confirm-rollout", payload("good", "team-b"))[0] == 200
    # and the cache still takes changes, by events too
    cache.apply_gate_event("MODIFIED", make_gate("good", "team-b", confirm_promotion="opened"))
    assert call(client, "confirm-promotion", payload("good", "team-b"))[0] == 200
    cache.apply_gate_event("MODIFIED", VARIANTS[name])
    assert call(client, "confirm-rollout", payload("bad", "team-a"))[0] == 503


@pytest.mark.parametrize(
    "raw",
    [
        None,
        5,
        "text",
        [],
        {"metadata": "x"},
        {"metadata": {"name": ["a"]}},
        {"metadata": {"name": "c", "namespace": "n"}, "spec": "x", "status": []},
    ],
)
def test_objects_that_are_not_objects_are_contained(cache, client, raw):
    cache.fill(gates=[GOOD], canaries=[make_canary("good", "team-b")])
    cache.replace_gates([raw, GOOD])
    cache.apply_gate_event("ADDED", raw)
    cache.replace_canaries([raw, make_canary("good", "team-b")])
    cache.apply_canary_event("MODIFIED", raw)
    assert call(client, "confirm-promotion", payload("good", "team-b"))[0] == 403
    assert cache.canary("team-b", "good") is not None


class OneList:
    """A Kube whose list answers ``items`` and whose watch ends the informer at once."""

    def __init__(self, items):
        self.items = items
        self.informer = None

    def request(self, method, path, **kw):
        return {"metadata": {"resourceVersion": "7"}, "items": self.items}

    def stream(self, path, **kw):
        def events():
            self.informer.stop()
            return
            yield  # pragma: no cover

        return events()


def test_the_informer_feeds_a_list_holding_every_bad_object_and_stays_fresh():
    cache = GateCache()
    kube = OneList([*VARIANTS.values(), GOOD])
    informer = Informer(
        kube,
        CANARYGATES,
        on_list=cache.replace_gates,
        on_event=cache.apply_gate_event,
        max_silence=1.0,
        backoff=(0.01, 0.01),
    )
    kube.informer = informer
    cache.health.append(informer)
    informer.run()
    assert informer.synced and informer.lists == 1 and informer.age() < 1.0 and cache.trusted()
    assert cache.entry(("team-b", "good")).gate is not None
    assert cache.entry(("team-a", "bad")).gate is None  # the last variant, unknown


def test_readyz_is_not_200_while_the_cache_cannot_take_what_the_api_sends():
    now = [1000.0]
    cache = GateCache(fail_closed_after=10.0, clock=lambda: now[0])
    taken = []

    def broken(items):  # the first list is taken; later ones the cache cannot take (the old freeze)
        taken.append(len(items))
        if len(taken) == 1:
            cache.replace_gates(items)
            return
        now[0] += 6.0
        raise RecursionError("maximum recursion depth exceeded")

    class Expiring(OneList):
        def stream(self, path, **kw):  # every watch is answered 410 Gone: list again
            return iter([{"type": "ERROR", "object": {"code": 410, "reason": "Expired"}}])

    kube = Expiring([GOOD])
    informer = Informer(
        kube,
        CANARYGATES,
        on_list=broken,
        on_event=cache.apply_gate_event,
        clock=lambda: now[0],
        max_silence=1.0,
        backoff=(0.0, 0.0),
    )
    kube.informer = informer
    cache.health.append(informer)
    original = informer._list

    def bounded():  # three failing lists, then stop the loop
        if len(taken) >= 3:
            informer.stop()
            raise RuntimeError("done")
        original()

    informer._list = bounded
    informer.run()
    assert len(taken) == 3 and informer.synced and cache.synced
    client = Client(create_app(cache=cache, clock=lambda: now[0]))
    # 12 s since the last list the cache took: over the bound, whatever the API server answered
    assert client.get("/readyz").status_code == 503
    assert call(client, "confirm-traffic-increase", payload("good", "team-b"))[0] == 503


def test_a_feed_whose_events_cannot_be_taken_ages_and_fails_closed():
    now = [1000.0]

    class Events(OneList):
        streams = 0

        def stream(self, path, **kw):
            self.streams += 1
            if self.streams > 3:
                self.informer.stop()

            def events():
                now[0] += 4.0
                yield {"type": "MODIFIED", "object": {"metadata": {"name": "g", "resourceVersion": "8"}}}

            return events()

    def on_event(kind, obj):
        raise TypeError("cannot take it")

    cache = GateCache(fail_closed_after=10.0, clock=lambda: now[0])
    kube = Events([])
    informer = Informer(
        kube,
        CANARYGATES,
        on_list=cache.replace_gates,
        on_event=on_event,
        clock=lambda: now[0],
        max_silence=30.0,
        backoff=(0.0, 0.0),
    )
    kube.informer = informer
    cache.health.append(informer)
    seen = []
    original = informer._handle

    def handle(event):
        try:
            original(event)
        finally:
            seen.append(informer.age(now[0]))

    informer._handle = handle
    informer.run()
    # each failed event leaves the age as it was (4 s older): the event was not taken; then it relists
    assert len(seen) >= 3 and all(age >= 4.0 for age in seen)
    assert informer.lists >= 3 and informer._resource_version == "7"  # never advanced past an untaken event


@pytest.mark.parametrize("hook", gates.GATES)
def test_a_deep_annotation_on_one_gate_leaves_the_other_gates_of_that_canarygate_known(cache, client, hook):
    raw = make_gate("one", "team-a", **{h.replace("-", "_"): "opened" for h in gates.GATES if h != "rollback"})
    raw["metadata"]["annotations"] = {annotations.annotation_key("confirm-rollout"): DEEP}
    cache.fill(gates=[raw])
    status, body = call(client, hook, payload("one", "team-a"))
    if hook == "confirm-rollout":
        assert status == 503 and "nested too deep" in body["message"]
    else:
        assert body["state"] != "unknown" or hook in ("confirm-traffic-increase", "confirm-promotion")


def test_a_relist_of_unchanged_objects_keeps_their_entries_and_announces_only_changes():
    # quiet watches are relisted every half bound: that must not look like a change to every CanaryGate
    cache = GateCache()
    seen = []
    cache.listeners.append(lambda kind, key: seen.append(key))
    a, b = make_gate("a", "team-a", rv="1"), make_gate("b", "team-a", rv="1")
    cache.replace_gates([a, b])
    before = cache.entry(("team-a", "a"))
    seen.clear()
    cache.replace_gates([a, make_gate("b", "team-a", rv="2", confirm_rollout="closed")])
    assert cache.entry(("team-a", "a")) is before and seen == [("team-a", "b")]
    assert cache.entry(("team-a", "b")).gate.declared == {"confirm-rollout": "closed"}
    cache.replace_gates([a])
    assert seen[-1] == ("team-a", "b") and cache.entry(("team-a", "b")) is None
