"""The ``--reconcile`` mode's reconciler over a cache filled by hand and an in-memory API double.

Covers: a new CanaryGate gets its Canary (gate webhooks at the endpoint, the user's webhooks kept)
and a CanaryReconciled Event; a spec change (new generation) updates it; status and annotation
changes (same generation) queue nothing; a resync renders each CanaryGate once and an unchanged
Canary is not written; no spec.flagger, a spec Flagger's schema rejects, an unreadable CanaryGate
and a 422 give one ReconcileFailed Event and no Canary; API errors (Forbidden, CRD missing) are
retried with doubling backoff and reported once per generation; work is coalesced per CanaryGate;
a Canary another CanaryGate still renders is not
taken over; a deleted CanaryGate leaves its Canary alone; the flags and the endpoint's environment fallback.
"""

from __future__ import annotations

import copy
import threading
import time

import pytest
from click.testing import CliRunner
from sidecar_helpers import make_gate

from canarygate import errors
from canarygate.rendering import DEFAULT_ENDPOINT, GATE_NAME_KEY, HOOK_TYPES
from gate_sidecar import config as cfg
from gate_sidecar.cache import GateCache, StaticHealth
from gate_sidecar.metrics import Metrics
from gate_sidecar.reconcile import FAILED, RECONCILED, Reconciler

ENDPOINT = "http://gates.example:8080"
USER_HOOK = {"name": "load-test", "type": "rollout", "url": "http://loadtester/"}
CANARIES = "/apis/flagger.app/v1beta1/namespaces/demo-ns/canaries"


def flagger_spec(**extra) -> dict:
    spec = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
        "service": {"port": 8080},
        "analysis": {
            "interval": "10s",
            "threshold": 2,
            "maxWeight": 40,
            "stepWeight": 10,
            "webhooks": [dict(USER_HOOK)],
        },
    }
    spec.update(extra)
    return spec


def gate_obj(generation=1, *, flagger=None, uid="uid-demo", annotations=None, rv="1", **declared) -> dict:
    raw = make_gate(rv=rv, **declared)
    raw["metadata"]["generation"] = generation
    raw["metadata"]["uid"] = uid
    raw["metadata"]["annotations"].update(annotations or {})
    if flagger is not False:
        raw["spec"]["flagger"] = flagger_spec() if flagger is None else flagger
    return raw


class FakeKube:
    """Canaries and Events in memory; ``fail[(method, kind)]`` makes that request raise."""

    def __init__(self):
        self.canaries: dict[str, dict] = {}
        self.events: list[dict] = []
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[tuple[str, str], Exception] = {}
        self.lock = threading.Lock()

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] != "GET" and "/events" not in c[1]]

    def request(self, method, path, *, query=(), body=None, content_type="", resource=None, name="", timeout=None):
        with self.lock:
            self.calls.append((method, path))
            kind = "events" if "/events" in path else "canaries"
            error = self.fail.get((method, kind))
            if error is not None:
                raise error
            if kind == "events":
                self.events.append(copy.deepcopy(body))
                return body
            if method == "GET":
                if name not in self.canaries:
                    raise errors.NotFound(f"canaries.flagger.app {name!r} not found")
                return copy.deepcopy(self.canaries[name])
            if method == "POST":
                obj = copy.deepcopy(body)
                obj["metadata"]["resourceVersion"] = "1"
                self.canaries[body["metadata"]["name"]] = obj
                return obj
            if method == "PUT":
                self.canaries[name] = copy.deepcopy(body)
                return body
            raise AssertionError(f"unexpected {method} {path}")

    def reasons(self) -> list[tuple[str, str]]:
        return [(e["reason"], e["type"]) for e in self.events]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock) -> GateCache:
    return GateCache(health=[StaticHealth(synced=True)], clock=clock)


@pytest.fixture
def reconciler(kube, cache, clock) -> Reconciler:
    return Reconciler(kube, cache, endpoint=ENDPOINT, clock=clock, backoff=1.0, max_backoff=8.0, metrics=Metrics())


def test_a_new_canarygate_gets_its_canary_with_gate_webhooks_and_the_users_kept(kube, cache, reconciler):
    cache.apply_gate_event("ADDED", gate_obj(confirm_promotion="closed"))
    assert reconciler.run_pending() == 1
    assert [m for m, _ in kube.writes()] == ["POST"]
    canary = kube.canaries["demo"]
    hooks = canary["spec"]["analysis"]["webhooks"]
    assert [h["name"] for h in hooks] == [*HOOK_TYPES, "load-test"]
    assert all(h["url"] == f"{ENDPOINT}/{h['type']}" for h in hooks[:-1])
    assert all(h["metadata"][GATE_NAME_KEY] == "demo" for h in hooks[:-1])
    assert hooks[-1] == USER_HOOK
    assert kube.reasons() == [(RECONCILED, "Normal")]
    event = kube.events[0]
    assert event["involvedObject"]["uid"] == "uid-demo" and event["involvedObject"]["kind"] == "CanaryGate"
    assert "created" in event["message"] and ENDPOINT in event["message"] and "1 of its own kept" in event["message"]


def test_a_spec_change_updates_the_canary_and_keeps_its_status(kube, cache, reconciler):
    cache.apply_gate_event("ADDED", gate_obj())
    reconciler.run_pending()
    kube.canaries["demo"]["status"] = {"phase": "Succeeded"}
    cache.apply_gate_event("MODIFIED", gate_obj(2, flagger=flagger_spec(skipAnalysis=True), rv="2"))
    assert reconciler.run_pending() == 1
    assert [m for m, _ in kube.writes()] == ["POST", "PUT"]
    assert kube.canaries["demo"]["spec"]["skipAnalysis"] is True
    assert kube.canaries["demo"]["status"] == {"phase": "Succeeded"}
    assert kube.reasons() == [(RECONCILED, "Normal")] * 2
    assert "configured from generation 2" in kube.events[1]["message"]


def test_status_and_annotation_changes_queue_nothing(kube, cache, reconciler):
    cache.apply_gate_event("ADDED", gate_obj())
    reconciler.run_pending()
    calls = len(kube.calls)
    # A live gate change (annotation) and a status write: same generation.
    cache.apply_gate_event("MODIFIED", gate_obj(annotations={"gate.piggysec.com/confirm-promotion": "x"}, rv="2"))
    changed = gate_obj(rv="3")
    changed["status"] = {"phase": "Progressing"}
    cache.apply_gate_event("MODIFIED", changed)
    assert reconciler.pending() == {}
    assert reconciler.run_pending() == 0
    assert len(kube.calls) == calls


def test_a_resync_renders_each_canarygate_once_and_an_unchanged_canary_is_not_written(kube, cache, reconciler):
    cache.replace_gates([gate_obj(), gate_obj(name="other", uid="uid-other", target=("demo-ns", "other"))])
    reconciler.run_pending()
    assert sorted(kube.canaries) == ["demo", "other"]
    writes, events = len(kube.writes()), len(kube.events)
    cache.replace_gates([gate_obj(), gate_obj(name="other", uid="uid-other", target=("demo-ns", "other"))])
    assert reconciler.pending() == {}  # the relist itself changed nothing...
    reconciler.resync()  # ...but after a list, every CanaryGate is rendered once
    assert sorted(reconciler.pending()) == [("demo-ns", "demo"), ("demo-ns", "other")]
    assert reconciler.run_pending() == 2
    assert len(kube.writes()) == writes and len(kube.events) == events  # unchanged: GETs only


def test_resync_is_limited_to_the_namespace_listed(cache, reconciler):
    cache.replace_gates([gate_obj(), gate_obj(name="x", namespace="elsewhere", uid="uid-x")])
    reconciler.run_pending()
    reconciler.resync("elsewhere")
    assert list(reconciler.pending()) == [("elsewhere", "x")]


def test_without_spec_flagger_a_warning_once_per_generation_and_no_canary(kube, cache, reconciler):
    cache.apply_gate_event("ADDED", gate_obj(flagger=False))
    reconciler.run_pending()
    assert kube.canaries == {} and kube.writes() == []
    assert kube.reasons() == [(FAILED, "Warning")]
    assert "no spec.flagger" in kube.events[0]["message"]
    reconciler.resync()
    reconciler.run_pending()
    assert kube.reasons() == [(FAILED, "Warning")]  # not again for the same generation
    assert reconciler.pending() == {}  # and not retried: the spec has to change
    cache.apply_gate_event("MODIFIED", gate_obj(2, rv="2"))
    reconciler.run_pending()
    assert kube.reasons() == [(FAILED, "Warning"), (RECONCILED, "Normal")]


def test_a_spec_flaggers_schema_rejects_is_reported_and_not_written(kube, cache, reconciler):
    bad = flagger_spec()
    del bad["targetRef"]
    bad["analysis"]["interval"] = 10
    cache.apply_gate_event("ADDED", gate_obj(flagger=bad))
    reconciler.run_pending()
    assert kube.writes() == []
    message = kube.events[0]["message"]
    assert kube.reasons() == [(FAILED, "Warning")]
    assert "invalid for Flagger" in message and "targetRef" in message and "interval" in message


def test_an_unreadable_canarygate_is_reported_on_itself(kube, cache, reconciler):
    cache.apply_gate_event("ADDED", gate_obj(confirm_rollout="perhaps"))
    reconciler.run_pending()
    assert kube.writes() == []
    assert kube.reasons() == [(FAILED, "Warning")]
    assert kube.events[0]["involvedObject"]["uid"] == "uid-demo"
    assert "perhaps" in kube.events[0]["message"]


def test_the_api_server_rejecting_the_canary_is_not_retried(kube, cache, reconciler):
    kube.fail[("POST", "canaries")] = errors.Invalid('Canary.flagger.app "demo" is invalid: spec.service: Required')
    cache.apply_gate_event("ADDED", gate_obj())
    reconciler.run_pending()
    assert kube.reasons() == [(FAILED, "Warning")] and "rejected" in kube.events[0]["message"]
    assert reconciler.pending() == {}


def test_forbidden_is_retried_with_backoff_and_reported_once(kube, cache, reconciler, clock):
    kube.fail[("POST", "canaries")] = errors.Forbidden(
        'canaries.flagger.app is forbidden: User "sa" cannot create resource "canaries" in API group "flagger.app"'
    )
    cache.apply_gate_event("ADDED", gate_obj())
    reconciler.run_pending()
    assert kube.reasons() == [(FAILED, "Warning")]
    message = kube.events[0]["message"]
    assert 'cannot create resource "canaries"' in message and "canary-gate-reconciler" in message
    delays = []
    for _ in range(5):
        item = reconciler.pending()[("demo-ns", "demo")]
        delays.append(item.due - clock.now)
        assert reconciler.run_pending() == 0  # not due yet
        clock.now = item.due
        assert reconciler.run_pending() == 1
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]  # doubling, capped
    assert kube.reasons() == [(FAILED, "Warning")]  # once for the generation, not per retry
    del kube.fail[("POST", "canaries")]  # the role is granted
    clock.now = reconciler.pending()[("demo-ns", "demo")].due
    reconciler.run_pending()
    assert "demo" in kube.canaries
    assert kube.reasons() == [(FAILED, "Warning"), (RECONCILED, "Normal")]
    assert reconciler.pending() == {}


def test_a_missing_canary_crd_is_retried_and_says_so(kube, cache, reconciler):
    kube.fail[("GET", "canaries")] = errors.CrdMissing("the server could not find the requested resource")
    cache.apply_gate_event("ADDED", gate_obj())
    reconciler.run_pending()
    assert "Canary CRD" in kube.events[0]["message"] and "install Flagger" in kube.events[0]["message"]
    assert ("demo-ns", "demo") in reconciler.pending()


def test_a_new_generation_during_backoff_is_done_now(kube, cache, reconciler, clock):
    kube.fail[("POST", "canaries")] = errors.Unreachable("connection refused")
    cache.apply_gate_event("ADDED", gate_obj())
    reconciler.run_pending()
    reconciler.run_pending()
    cache.apply_gate_event("MODIFIED", gate_obj(annotations={"a": "b"}, rv="2"))
    assert reconciler.pending()[("demo-ns", "demo")].due > clock.now  # same generation: backoff kept
    cache.apply_gate_event("MODIFIED", gate_obj(2, rv="3"))
    item = reconciler.pending()[("demo-ns", "demo")]
    assert item.due == clock.now and item.attempts == 0
    reconciler.run_pending()
    assert kube.reasons() == [(FAILED, "Warning")] * 2  # one per generation


def test_changes_are_coalesced_per_canarygate(kube, cache, reconciler):
    for generation in (1, 2, 3):
        cache.apply_gate_event(
            "MODIFIED",
            gate_obj(generation, rv=str(generation), flagger=flagger_spec(progressDeadlineSeconds=60 * generation)),
        )
    assert reconciler.run_pending() == 1
    assert [m for m, _ in kube.writes()] == ["POST"]
    assert kube.canaries["demo"]["spec"]["progressDeadlineSeconds"] == 180


def test_a_deleted_canarygate_leaves_its_canary(kube, cache, reconciler):
    cache.apply_gate_event("ADDED", gate_obj())
    reconciler.run_pending()
    kube.fail[("POST", "canaries")] = errors.Unreachable("down")
    raw = gate_obj()
    cache.apply_gate_event("DELETED", raw)
    assert reconciler.pending() == {} and reconciler.run_pending() == 0
    assert "demo" in kube.canaries and all(m != "DELETE" for m, _ in kube.calls)


def test_a_canary_another_canarygate_renders_is_not_taken_over(kube, cache, reconciler):
    cache.apply_gate_event("ADDED", gate_obj())
    reconciler.run_pending()
    cache.apply_canary_event("ADDED", kube.canaries["demo"])
    cache.apply_gate_event(
        "ADDED",
        gate_obj(name="rival", uid="uid-rival", target=("demo-ns", "demo"), flagger=flagger_spec(skipAnalysis=True)),
    )
    reconciler.run_pending()
    assert [m for m, _ in kube.writes()] == ["POST"]
    assert kube.events[-1]["involvedObject"]["name"] == "rival" and kube.events[-1]["reason"] == FAILED
    assert "rendered from CanaryGate demo-ns/demo, which targets it too" in kube.events[-1]["message"]
    # Once the first CanaryGate is gone, the other one takes the Canary over.
    cache.apply_gate_event("DELETED", gate_obj())
    reconciler.resync()
    reconciler.run_pending()
    assert [m for m, _ in kube.writes()] == ["POST", "PUT"] and kube.canaries["demo"]["spec"]["skipAnalysis"]


def test_the_thread_reconciles_and_stops(kube, cache, clock):
    clock.now = time.monotonic()
    reconciler = Reconciler(kube, cache, endpoint=ENDPOINT).start()
    try:
        cache.apply_gate_event("ADDED", gate_obj())
        deadline = time.monotonic() + 20  # a safety net, not a speed check
        while "demo" not in kube.canaries and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "demo" in kube.canaries
    finally:
        reconciler.stop(2)
    assert not reconciler._thread.is_alive()


def test_metrics_count_the_canary_writes(kube, cache, reconciler):
    cache.apply_gate_event("ADDED", gate_obj())
    reconciler.run_pending()
    text = reconciler.metrics.exposition()[0].decode()
    assert 'canarygate_sidecar_writes_total{kind="canary",result="created"} 1.0' in text
    assert 'canarygate_sidecar_writes_total{kind="event",result="ok"} 1.0' in text


# -- flags ------------------------------------------------------------------------------------------
def test_endpoint_resolution_and_the_go_originals_variable():
    assert cfg.resolve_endpoint(None, {}) == DEFAULT_ENDPOINT
    assert cfg.resolve_endpoint(None, {"CANARY_GATE_ENDPOINT": "http://old:8080/"}) == "http://old:8080"
    assert cfg.resolve_endpoint("https://new", {"CANARY_GATE_ENDPOINT": "http://old"}) == "https://new"
    for bad in ("canary-gate-sidecar", "ftp://x", "http://"):
        with pytest.raises(ValueError, match="not an http"):
            cfg.resolve_endpoint(bad, {})


@pytest.fixture
def captured(monkeypatch):
    import gate_sidecar.__main__ as entry

    seen = []
    monkeypatch.setattr(entry, "serve", lambda config: seen.append(config) or 0)
    for name in ("GATE_SIDECAR_RECONCILE", "GATE_SIDECAR_ENDPOINT", "CANARY_GATE_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cfg, "configure_logging", lambda *a: None)
    return entry.main, seen


@pytest.mark.parametrize(
    ("args", "env", "reconcile", "endpoint"),
    [
        ((), {}, False, DEFAULT_ENDPOINT),
        (("--reconcile", "--endpoint", "http://sidecar:9000"), {}, True, "http://sidecar:9000"),
        ((), {"GATE_SIDECAR_RECONCILE": "true", "GATE_SIDECAR_ENDPOINT": "http://env"}, True, "http://env"),
        (("--reconcile",), {"CANARY_GATE_ENDPOINT": "http://legacy"}, True, "http://legacy"),
        (("--endpoint", "http://flag"), {"CANARY_GATE_ENDPOINT": "http://legacy"}, False, "http://flag"),
    ],
)
def test_flags_reach_the_config(captured, monkeypatch, args, env, reconcile, endpoint):
    main, seen = captured
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    result = CliRunner().invoke(main, ["--kubeconfig", "/dev/null", *args], prog_name="gate-sidecar")
    assert result.exit_code == 0, result.output
    assert (seen[0].reconcile, seen[0].endpoint) == (reconcile, endpoint)


def test_help_documents_the_mode(captured):
    main, _ = captured
    text = " ".join(CliRunner().invoke(main, ["--help"], prog_name="gate-sidecar", terminal_width=200).output.split())
    assert "--reconcile / --no-reconcile" in text and "never deleted" in text
    assert "GATE_SIDECAR_RECONCILE" in text and "GATE_SIDECAR_ENDPOINT" in text and "CANARY_GATE_ENDPOINT" in text
