"""Safety fixes of the sidecar, through werkzeug's test client over a hand-filled cache (no API).

Covers: a one-step approval cannot be used twice when its removal lands in the middle of a call
(consumption is atomic against the current entry), nor when the writer rebinds it to the revision
while a call uses it (and its removal still reaches the cluster); a live change is never expired
on a cached Canary older than the change (the writer decides from the Canary read afresh); a hold
is announced again for a new revision; which CanaryGate a call is about follows
docs/gate-state.md#which-canarygate-a-call-is-about
(metadata, else spec.target, else the Canary's own name unless that CanaryGate targets another
Canary) and several CanaryGates targeting one Canary
fail closed with a body naming them; a gate whose live annotation cannot be read answers 503 (progress
waits, no rollback signal) with the problem and the command that replaces it, counted as
source="invalid"; the cache's (synced, age) helper.
"""

from __future__ import annotations

import copy
import gc
import json
import weakref

import pytest
from sidecar_helpers import RecordingWriter, call, live_change, make_canary, make_gate, payload
from test_fast_path import both_paths
from werkzeug.test import Client

from canarygate import errors, gates, rollouts
from canarygate.annotations import annotation_key
from canarygate.model import parse_canary, parse_canarygate
from canarygate.resolution import resolve_gate
from gate_sidecar.app import create_app
from gate_sidecar.cache import GateCache, StaticHealth
from gate_sidecar.writes import Writer

KEY = ("demo-ns", "demo")
STEP_GATE = "confirm-traffic-increase"


class RacyCache(GateCache):
    """Runs ``between`` once, right after a call has read the CanaryGate's entry: where the informer
    thread can land a watch event in production (the call still holds the old entry)."""

    between = None

    def consumed(self, key):
        if self.between is not None:
            between, self.between = self.between, None
            between()
        return super().consumed(key)


def racy_client(writer: RecordingWriter, *gate_objects) -> tuple[RacyCache, Client]:
    cache = RacyCache(health=[StaticHealth()])
    cache.fill(gates=list(gate_objects), canaries=[make_canary()])
    return cache, Client(create_app(cache=cache, writer=writer))


# -- one-step approvals: atomic consumption ------------------------------------------------------------
def test_a_step_removed_in_the_middle_of_a_call_is_not_used_again():
    writer = RecordingWriter()
    step = live_change(STEP_GATE, "opened", scope="step")
    cache, client = racy_client(writer, make_gate(confirm_traffic_increase="closed", live=[step]))
    assert call(client, STEP_GATE)[0] == 200  # consumes the step
    # The second call reads the entry (still with the step); the removal's watch event lands before
    # it reads the consumed set, which the removal empties.
    cache.between = lambda: cache.apply_gate_event("MODIFIED", make_gate(confirm_traffic_increase="closed", rv="2"))
    status, body = call(client, STEP_GATE)
    assert status == 403 and body["source"] == "declared"
    assert call(client, STEP_GATE)[0] == 403
    assert [c for c in writer.calls if c[0] == "consume"] == [("consume", KEY, step)]


def test_a_step_replaced_in_the_middle_of_a_call_is_decided_from_the_current_entry():
    writer = RecordingWriter()
    step = live_change(STEP_GATE, "opened", scope="step")
    cache, client = racy_client(writer, make_gate(confirm_traffic_increase="opened", live=[step]))
    closed = live_change(STEP_GATE, "closed", scope="rollout", by="bob")
    cache.between = lambda: cache.apply_gate_event(
        "MODIFIED", make_gate(confirm_traffic_increase="opened", live=[closed], rv="2")
    )
    status, body = call(client, STEP_GATE)
    assert status == 403 and body["source"] == "live" and body["set_by"] == "bob"
    assert [c for c in writer.calls if c[0] == "consume"] == []


def test_an_unrelated_update_in_the_middle_of_a_call_still_uses_the_step_once():
    writer = RecordingWriter()
    step = live_change(STEP_GATE, "opened", scope="step")
    cache, client = racy_client(writer, make_gate(confirm_traffic_increase="closed", live=[step]))
    # A status write replaces the entry with one holding the very same step.
    cache.between = lambda: cache.apply_gate_event(
        "MODIFIED", make_gate(confirm_traffic_increase="closed", live=[step], rv="2")
    )
    assert call(client, STEP_GATE)[0] == 200
    assert call(client, STEP_GATE)[0] == 403
    assert [c for c in writer.calls if c[0] == "consume"] == [("consume", KEY, step)]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def analysing(revision: str) -> dict:
    """The Canary mid-analysis of ``revision`` (the same rollout, whatever the revision)."""
    canary = make_canary()
    canary["status"].update(lastAppliedSpec=revision, lastPromotedSpec="deployed")
    return canary


class Cluster:
    """What the API server holds of CanaryGate and Canary demo-ns/demo; an accepted write to the
    CanaryGate reaches the cache as its watch would deliver it (JSON-patch ``test`` honoured)."""

    def __init__(self, cache: GateCache, gate: dict, canary: dict):
        self.cache, self.gate, self.canary = cache, copy.deepcopy(gate), copy.deepcopy(canary)
        self.requests: list[tuple[str, str]] = []

    def annotations(self) -> dict:
        return self.gate["metadata"]["annotations"]

    def request(self, method, path, *, query=(), body=None, content_type="", resource=None, name="", timeout=None):
        self.requests.append((method, path))
        if "/canaries/" in path and method == "GET":
            return copy.deepcopy(self.canary)
        if "/events" in path or path.endswith("/status"):
            return body
        assert method == "PATCH" and "/canarygates/" in path, (method, path)
        for op in body:
            key = op["path"].rsplit("/", 1)[1].replace("~1", "/").replace("~0", "~")
            if op["op"] == "test" and self.annotations().get(key) != op["value"]:
                raise errors.Invalid("the JSON patch test failed")
        for op in body:
            key = op["path"].rsplit("/", 1)[1].replace("~1", "/").replace("~0", "~")
            if op["op"] == "remove":
                del self.annotations()[key]
            elif op["op"] == "replace":
                self.annotations()[key] = op["value"]
        self.gate["metadata"]["resourceVersion"] = str(int(self.gate["metadata"]["resourceVersion"]) + 1)
        self.cache.apply_gate_event("MODIFIED", copy.deepcopy(self.gate))
        return copy.deepcopy(self.gate)

    def write(self, change) -> None:
        """Someone else's write of a live change (here: a bind that landed first)."""
        self.request(
            "PATCH",
            "/apis/piggysec.com/v1alpha1/namespaces/demo-ns/canarygates/demo",
            body=[
                {
                    "op": "replace",
                    "path": "/metadata/annotations/" + change.key.replace("/", "~1"),
                    "value": change.encode(),
                }
            ],
        )


def drain(writer: Writer, clock: Clock) -> None:
    """Run the writer's queue to the end on the fake clock (retries included)."""
    for _ in range(100):
        with writer._cv:
            work, wait = writer._take(final=False)
        if work is not None:
            writer._do(work)
            continue
        pending = writer._pending
        if not (pending.consume or pending.review or pending.status or pending.events):
            return
        clock.now += wait
    raise AssertionError("the writer never settled")


def test_a_step_rebound_to_the_revision_while_a_call_uses_it_is_used_once_and_removed():
    """/tmp/rv/r1.py: a step approval given while Waiting (no revision), bound by the writer to the
    revision while a call consumes it; the bind lands before the removal."""
    clock = Clock()
    step = live_change(STEP_GATE, "opened", scope="step")
    canary = analysing("5f56684589")
    gate = make_gate(confirm_traffic_increase="closed", live=[step])
    cache = GateCache(health=[StaticHealth()], clock=clock).fill(gates=[gate], canaries=[canary])
    cluster = Cluster(cache, gate, canary)
    writer = Writer(cluster, cache, clock=clock)
    client = Client(create_app(cache=cache, writer=writer))
    bound = rollouts.binding_for(step, parse_canary(canary))
    assert bound is not None and bound.encode() != step.encode()
    cluster.write(bound)  # the bind (from a review that read the consumed set before the call) lands
    # The removal is made before the answer (writes.Writer.consume), on the rebound value as stored.
    assert call(client, STEP_GATE)[0] == 200
    status, body = call(client, STEP_GATE)
    assert status == 403 and body["source"] == "declared"
    drain(writer, clock)
    assert annotation_key(STEP_GATE) not in cluster.annotations()
    assert cache.consumed(KEY) == frozenset()  # forgotten once the cluster dropped it
    assert call(client, STEP_GATE)[0] == 403


def test_a_live_change_is_not_expired_on_a_canary_copy_older_than_the_change():
    """``kubectl gate open`` read the Canary at revision B; the sidecar's copy still shows A."""
    clock = Clock()
    cached, fresh = analysing("aaaaaaaaaa"), analysing("bbbbbbbbbb")
    approval = live_change("confirm-promotion", "opened").bound_to(rollouts.mark_of(parse_canary(fresh)))
    assert not rollouts.in_force(approval, parse_canary(cached))  # what the stale copy says
    gate = make_gate(confirm_promotion="closed", live=[approval])
    cache = GateCache(health=[StaticHealth()], clock=clock).fill(gates=[gate], canaries=[cached])
    cluster = Cluster(cache, gate, fresh)
    writer = Writer(cluster, cache, clock=clock)
    writer.review("gate", KEY)
    drain(writer, clock)
    assert cluster.annotations()[approval.key] == approval.encode()
    assert cluster.requests == [("GET", "/apis/flagger.app/v1beta1/namespaces/demo-ns/canaries/demo")]
    # Nothing looks due: no request at all.
    cache.apply_canary_event("MODIFIED", fresh)
    drain(writer, clock)
    assert len(cluster.requests) == 1
    # Once the API server's Canary has moved on to another revision too, the approval ends.
    cluster.canary = analysing("cccccccccc")
    cache.apply_canary_event("MODIFIED", cluster.canary)
    drain(writer, clock)
    assert approval.key not in cluster.annotations()


def test_a_hold_is_announced_again_for_a_new_revision_of_the_same_rollout():
    clock = Clock()
    gate = make_gate(confirm_promotion="closed")
    cache = GateCache(health=[StaticHealth()], clock=clock).fill(gates=[gate], canaries=[analysing("aaaaaaaaaa")])
    cluster = Cluster(cache, gate, analysing("aaaaaaaaaa"))
    writer = Writer(cluster, cache, clock=clock)
    decision = resolve_gate(parse_canarygate(gate), "confirm-promotion")
    a, b = parse_canary(analysing("aaaaaaaaaa")), parse_canary(analysing("bbbbbbbbbb"))
    # the very same Canary object (a kept answer's calls), an equal copy, a newer revision, and back
    for canary in (a, a, parse_canary(analysing("aaaaaaaaaa")), b, b, parse_canary(analysing("bbbbbbbbbb")), a):
        writer.held(KEY, "confirm-promotion", decision, canary)
    drain(writer, clock)
    assert len([r for r in cluster.requests if "/events" in r[1]]) == 2


def test_the_writer_keeps_no_canary_alive_for_the_holds_it_has_seen():
    clock = Clock()
    gate = make_gate(confirm_promotion="closed")
    cache = GateCache(health=[StaticHealth()], clock=clock).fill(gates=[gate])
    writer = Writer(Cluster(cache, gate, analysing("aaaaaaaaaa")), cache, clock=clock)
    decision = resolve_gate(parse_canarygate(gate), "confirm-promotion")
    canary = parse_canary(analysing("aaaaaaaaaa"))
    writer.held(KEY, "confirm-promotion", decision, canary)
    gone = weakref.ref(canary)
    del canary
    gc.collect()
    assert gone() is None  # an ended rollout's Canary is not kept for ever (one per CanaryGate and gate)


def test_consume_takes_only_a_change_the_current_entry_holds_untaken(cache):
    step = live_change(STEP_GATE, "opened", scope="step")
    cache.fill(gates=[make_gate(live=[step])])
    other = live_change(STEP_GATE, "opened", scope="step", by="bob")
    assert cache.consume(KEY, STEP_GATE, other.identity) is False  # not what the entry holds
    assert cache.consume(KEY, "rollout", step.identity) is False  # not that gate's change
    assert cache.consume(("demo-ns", "gone"), STEP_GATE, step.identity) is False
    assert cache.consume(KEY, STEP_GATE, step.identity) is True
    assert cache.consume(KEY, STEP_GATE, step.identity) is False  # taken
    assert cache.consumed(KEY) == frozenset({step.identity})


# -- which CanaryGate --------------------------------------------------------------------------------------
def test_spec_target_wins_over_the_canarys_own_name(cache, client):
    cache.fill(
        gates=[
            make_gate("demo", confirm_promotion="opened"),  # same name, no spec.target
            make_gate("approvals", target=KEY, confirm_promotion="closed"),
        ]
    )
    status, body = call(client, "confirm-promotion")
    assert status == 403
    assert body["canarygate"] == "demo-ns/approvals" and body["found_by"] == "target"


def test_the_canarys_own_name_when_nothing_targets_it(cache, client):
    cache.fill(
        gates=[
            make_gate("demo", confirm_promotion="closed"),
            make_gate("elsewhere", target=("demo-ns", "other"), confirm_promotion="opened"),
        ]
    )
    status, body = call(client, "confirm-promotion")
    assert status == 403 and body["canarygate"] == "demo-ns/demo" and body["found_by"] == "name"


def test_a_canarygate_of_the_canarys_name_that_targets_another_canary_is_not_its(cache, client, writer):
    """/tmp/rv/r3.py: the name fallback applies only to a CanaryGate without an explicit spec.target."""
    cache.fill(
        gates=[make_gate("demo", target=("demo-ns", "other"), confirm_promotion="closed")],
        canaries=[make_canary(), make_canary("other")],
    )
    status, body = call(client, "confirm-promotion")
    assert status == 200 and body["source"] == "default" and body["defaults"] is True
    assert "CanaryGate demo-ns/demo targets Canary demo-ns/other, not this one: defaults apply" in body["message"]
    assert client.post("/event", json=payload()).get_json()["recorded"] is False
    assert writer.calls == []
    # The Canary it does target is ruled by it.
    status, body = call(client, "confirm-promotion", payload("other"))
    assert status == 403 and body["canarygate"] == "demo-ns/demo" and body["found_by"] == "target"


@pytest.mark.parametrize("hook", ["confirm-promotion", "rollback"])
def test_several_canarygates_targeting_one_canary_fail_closed_naming_them(cache, client, writer, hook):
    cache.fill(
        gates=[
            make_gate("demo", target=KEY, rollback="opened"),
            make_gate("approvals", "demo-ns", target=KEY, rollback="opened"),
        ]
    )
    status, body = call(client, hook)
    assert status == 503 and body["allowed"] is False and body["state"] == "unknown"
    assert (
        "CanaryGates demo-ns/approvals, demo-ns/demo " in body["message"] and "Canary demo-ns/demo" in body["message"]
    )
    assert "spec.target" in body["message"] and "gate_name" in body["message"]
    assert writer.calls == []
    response = client.post("/event", json=payload())
    assert response.get_json()["recorded"] is False


def test_metadata_decides_even_when_several_target_the_canary(cache, client):
    cache.fill(
        gates=[
            make_gate("demo", target=KEY, confirm_rollout="opened"),
            make_gate("approvals", target=KEY, confirm_rollout="closed"),
        ]
    )
    status, body = call(client, "confirm-rollout", payload(metadata={"gate_name": "approvals"}))
    assert status == 403 and body["canarygate"] == "demo-ns/approvals" and body["found_by"] == "metadata"


def test_a_rival_that_drops_its_target_ends_the_ambiguity(cache, client):
    cache.fill(
        gates=[
            make_gate("demo", target=KEY, confirm_rollout="opened"),
            make_gate("approvals", target=KEY, confirm_rollout="closed"),
        ]
    )
    assert call(client, "confirm-rollout")[0] == 503
    cache.apply_gate_event("MODIFIED", make_gate("approvals", target=("demo-ns", "other"), rv="2"))
    status, body = call(client, "confirm-rollout")
    assert status == 200 and body["canarygate"] == "demo-ns/demo" and body["found_by"] == "target"


# -- unknown gate state (an unreadable live annotation) ----------------------------------------------------
def bad_annotation_gate(**declared) -> dict:
    gate = make_gate(**declared)
    gate["metadata"]["annotations"]["gate.piggysec.com/confirm-promotion"] = (
        '{"state":"close","scope":"Sticky","by":"bob"}'
    )
    gate["metadata"]["annotations"]["gate.piggysec.com/rollback"] = "not json"
    return gate


def test_an_unreadable_live_annotation_answers_503_with_the_problem_and_the_fix(cache, client, writer):
    cache.fill(gates=[bad_annotation_gate(confirm_promotion="opened")])
    status, body = call(client, "confirm-promotion")
    assert status == 503
    assert body["source"] == "invalid" and body["allowed"] is False and body["state"] == "unknown"
    assert "Sticky" in body["problem"] and body["problem"] in body["message"]
    assert "replace it with kubectl gate open|close confirm-promotion demo -n demo-ns" in body["message"]
    assert "waiting" in body["message"]
    # The other gates of the CanaryGate are unaffected.
    assert call(client, "confirm-rollout")[0] == 200


def test_an_unreadable_rollback_annotation_does_not_signal(cache, client):
    cache.fill(gates=[bad_annotation_gate(rollback="opened")])
    status, body = call(client, "rollback")
    assert status == 503 and body["source"] == "invalid" and body["allowed"] is False
    assert "not signalling a rollback" in body["message"]
    assert "kubectl gate open|close rollback demo -n demo-ns" in body["message"]


def test_an_unreadable_annotation_is_the_same_on_both_paths_and_counted_as_invalid(cache, app, client):
    cache.fill(gates=[bad_annotation_gate()])
    fast, slow = both_paths(app, "confirm-promotion", json.dumps(payload()).encode())
    assert fast == slow and fast[0] == "503 SERVICE UNAVAILABLE"
    assert json.loads(fast[2])["source"] == "invalid"
    text = client.get("/metrics").get_data(as_text=True)
    assert 'canarygate_sidecar_decisions_total{answer="503",gate="confirm-promotion",source="invalid"} 2.0' in text


# -- the cache's health ---------------------------------------------------------------------------------------
def test_feeds_synced_and_age_come_from_one_helper():
    young, old = StaticHealth(synced=True, seconds=1.0), StaticHealth(synced=True, seconds=4.0)
    cache = GateCache(health=[young, old], fail_closed_after=5.0, clock=lambda: 100.0)
    assert cache.feeds() == (True, 4.0) and cache.synced and cache.age() == 4.0 and cache.trusted()
    old.seconds = 6.0
    assert cache.feeds(100.0) == (True, 6.0) and not cache.trusted(100.0)
    old.seconds, young.synced = 0.0, False
    assert cache.feeds() == (False, 1.0) and not cache.synced and not cache.trusted()
    assert GateCache().feeds() == (False, float("inf")) and not GateCache().trusted()


@pytest.mark.parametrize("hook", gates.GATES)
def test_every_gate_fails_closed_when_the_feeds_are_stale(writer, hook):
    health = StaticHealth(synced=True, seconds=11.0)
    client = Client(create_app(cache=GateCache(health=[health], fail_closed_after=10.0).fill(), writer=writer))
    status, body = call(client, hook)
    assert status == 503 and "nothing has arrived from the API server for over 10s" in body["message"]
