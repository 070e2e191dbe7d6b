"""One-step approvals pass exactly once: across replicas, restarts and API errors of any kind.

Each replica is a full sidecar app (its own cache, writer, consumed set) over one shared stand-in of
the API server that applies JSON patches to the stored object as kube-apiserver does (a failed
``test`` is 422 Invalid). Faults: errors before the write is applied, errors after it was applied
(the answer lost: outcome unknown), streaks of any length, stale caches (a replica that has not
seen the removal), a restart (a fresh process, empty consumed set, cache listed before or after the
removal). The invariant checked after every call: "go on" answers for a step <= successful removals
<= 1 per approval, and "go on" only after the removal is in the store. Also measured: the number of
API writes a call makes (one for a step approval, none for any other call).
"""

from __future__ import annotations

import copy
import itertools
import json
import random

import pytest
from sidecar_helpers import PROMOTED_AT, call, live_change, make_canary, make_gate, payload
from werkzeug.test import Client

from canarygate import errors
from canarygate.annotations import annotation_key
from gate_sidecar.app import create_app
from gate_sidecar.cache import GateCache, StaticHealth
from gate_sidecar.writes import Writer

STEP = "confirm-traffic-increase"
KEY = ("demo-ns", "demo")
#: The README's own example, written by hand (spacing and key order differ from our encoding).
HANDWRITTEN = (
    '{"state": "opened", "scope": "step", "by": "alice", "at": "2026-11-22T10:01:00Z", '  # noqa: UP031 - JSON
    '"rollout": {"active": true, "since": "%s"}}' % PROMOTED_AT
)


class Api:
    """The CanaryGate as stored, JSON patches applied atomically; ``faults`` is a list of
    "before" (refused, nothing applied) / "after" (applied, then the answer lost) for the next writes."""

    def __init__(self, gate: dict):
        self.gate = copy.deepcopy(gate)
        self.faults: list[str] = []
        self.writes = 0
        self.removals = 0

    def annotations(self) -> dict:
        return self.gate["metadata"].setdefault("annotations", {})

    def request(self, method, path, *, body=None, content_type=None, **_):
        if method == "GET":
            return copy.deepcopy(self.gate)
        self.writes += 1
        if path.endswith("/status") or "/events" in path:
            return {}
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "before":
            raise errors.Unreachable("injected: connection reset")
        annotations = self.annotations()
        for op in body:
            name = op["path"].rsplit("/", 1)[1].replace("~1", "/").replace("~0", "~")
            if op["op"] == "test" and annotations.get(name) != op["value"]:
                raise errors.Invalid("the server rejected our request due to an error in our request")
        for op in body:
            name = op["path"].rsplit("/", 1)[1].replace("~1", "/").replace("~0", "~")
            if op["op"] == "remove":
                del annotations[name]
                self.removals += 1
            elif op["op"] == "replace":
                annotations[name] = op["value"]
        self.gate["metadata"]["resourceVersion"] = str(int(self.gate["metadata"]["resourceVersion"]) + 1)
        if fault == "after":
            raise errors.Unreachable("injected: the answer was lost")
        return copy.deepcopy(self.gate)


class Replica:
    def __init__(self, api: Api):
        self.api = api
        self.cache = GateCache(health=[StaticHealth()])
        self.relist()
        self.client = Client(create_app(cache=self.cache, writer=Writer(api, self.cache)))

    def relist(self) -> None:
        self.cache.fill(gates=[copy.deepcopy(self.api.gate)], canaries=[make_canary()])

    def call(self, hook: str = STEP) -> int:
        return call(self.client, hook, payload())[0]


def stepped(text: str | None = None) -> Api:
    gate = make_gate(confirm_traffic_increase="closed", live=[live_change(STEP, "opened", scope="step")])
    if text is not None:
        gate["metadata"]["annotations"][annotation_key(STEP)] = text
    return Api(gate)


@pytest.mark.parametrize("text", [None, HANDWRITTEN], ids=["cli", "handwritten"])
def test_one_approval_two_replicas_passes_once_and_one_write_is_made(text):
    api = stepped(text)
    a, b = Replica(api), Replica(api)  # both listed before either call: b's cache is stale after a's
    assert a.call() == 200
    assert annotation_key(STEP) not in api.annotations() and api.writes == 1
    assert b.call() == 403  # its removal's test fails against the store, then its re-read shows none
    assert a.call() == 403
    assert api.removals == 1


def test_other_calls_make_no_api_write():
    api = stepped()
    replica = Replica(api)
    for hook in ("confirm-rollout", "confirm-promotion", "pre-rollout", "rollback"):
        replica.call(hook)
    assert api.writes == 0


def test_a_lost_answer_after_the_removal_landed_never_passes_twice():
    api = stepped()
    a, b = Replica(api), Replica(api)
    api.faults = ["after"]
    assert a.call() == 503  # the removal landed but we cannot know: not used here
    assert api.removals == 1
    assert a.call() == 403 and b.call() == 403  # lost, never used
    assert Replica(api).call() == 403  # a restart lists the store: nothing there


def test_errors_of_any_length_hold_the_step_then_it_passes_once():
    for streak in range(6):
        api = stepped()
        a, b = Replica(api), Replica(api)
        api.faults = ["before"] * streak
        answers = [a.call() if i % 2 else b.call() for i in range(streak)]
        assert answers == [503] * streak  # refused writes: "go on" never given
        assert annotation_key(STEP) in api.annotations()
        assert [a.call(), b.call(), a.call()].count(200) == 1
        assert api.removals == 1


def test_restart_at_every_point_never_uses_an_approval_twice():
    """A replica killed before, during and after the write; the new process lists the store."""
    for fault in ("", "before", "after"):
        api = stepped()
        first = Replica(api)
        api.faults = [fault] if fault else []
        answered = [first.call()]
        restarted = Replica(api)  # a fresh process: empty consumed set
        answered += [restarted.call(), restarted.call(), first.call()]
        assert answered.count(200) <= 1 and api.removals <= 1
        assert answered.count(200) == api.removals - (1 if fault == "after" else 0)


def test_random_interleavings_of_three_replicas_and_faults():
    """Three replicas, random order, random faults and relists: "go on" at most once per approval,
    exactly once when no write's outcome was lost."""
    rng = random.Random(9)
    for _ in range(200):
        api = stepped(rng.choice([None, HANDWRITTEN]))
        replicas = [Replica(api) for _ in range(3)]
        api.faults = [rng.choice(["", "before", "after"]) for _ in range(rng.randint(0, 4))]
        lost = api.faults.count("after")
        passed = 0
        for _ in range(8):
            replica = rng.choice(replicas)
            if rng.random() < 0.3:
                replica.relist()
            if rng.random() < 0.1:
                replicas[replicas.index(replica)] = replica = Replica(api)
            status = replica.call()
            assert status in (200, 403, 503)
            passed += status == 200
            assert passed <= api.removals <= 1
        assert passed == 1 or lost, (api.faults, passed)


def test_blue_green_promotion_approval_passes_every_call_of_that_promotion():
    """confirm-promotion (step) is asked on two consecutive ticks by a blue/green promotion: both pass,
    nothing is written, and it ends with the promotion (rollouts.used_on_answer)."""
    gate = make_gate(confirm_promotion="closed", live=[live_change("confirm-promotion", "opened", scope="step")])
    api = Api(gate)
    a, b = Replica(api), Replica(api)
    a.cache.fill(gates=[gate], canaries=[make_canary(phase="WaitingPromotion")])
    b.cache.fill(gates=[gate], canaries=[make_canary(phase="WaitingPromotion")])
    assert [a.call("confirm-promotion"), b.call("confirm-promotion")] == [200, 200]
    assert api.writes == 0


def test_stored_text_is_what_the_test_compares():
    from canarygate.kube.canarygates import stored_text
    from canarygate.model import parse_canarygate

    api = stepped(HANDWRITTEN)
    gate = parse_canarygate(api.gate)
    change = gate.live[STEP]
    assert stored_text(gate, change) == HANDWRITTEN != change.encode()
    other = change.bound_to(change.rollout.__class__(active=True, since="another"))
    assert stored_text(gate, other) == other.encode()  # not the same change: never matches the store
    assert json.loads(HANDWRITTEN)["scope"] == "step"
    assert list(itertools.islice(api.annotations(), 1)) == [annotation_key(STEP)]
