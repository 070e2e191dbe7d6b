"""The gate calls' fast path (answered from the WSGI environ) and the cache of encoded answers.

Covers: the fast path answers exactly what werkzeug's path answers (status line, headers, body) for
every kind of answer; which calls take which path (a plain Content-Length within the limit, else
werkzeug: chunked, oversized, odd lengths); short bodies; cached answers never outlive a change of
the CanaryGate, the Canary or the consumed steps; side effects (metrics, held, consume) on every
call, cached or not; the answer table stays bounded.
"""

from __future__ import annotations

import io
import json

import pytest
from sidecar_helpers import call, live_change, make_canary, make_gate, payload
from werkzeug.test import Client

from gate_sidecar import app as app_module
from gate_sidecar.app import SidecarRequest, create_app
from gate_sidecar.cache import GateCache, StaticHealth


def environ(path: str, body: bytes, **extra) -> dict:
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.input_terminated": True,
        "HTTP_HOST": "127.0.0.1:8080",
    }
    env.update(extra)
    return env


def wsgi_call(wsgi, env) -> tuple[str, list, bytes]:
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers

    body = b"".join(wsgi(env, start_response))
    return seen["status"], list(seen["headers"]), body


def werkzeug_path(app, env) -> tuple[str, list, bytes]:
    """The same call through werkzeug's Request, the Map's dispatch and a Response."""
    _, response = app.dispatch_request(SidecarRequest(env))
    return wsgi_call(response, env)


def both_paths(app, hook: str, body: bytes):
    return wsgi_call(app, environ(f"/{hook}", body)), werkzeug_path(app, environ(f"/{hook}", body))


@pytest.mark.parametrize(
    "gate_spec, hook, status",
    [
        ({}, "confirm-promotion", "200 OK"),
        ({"confirm_promotion": "closed"}, "confirm-promotion", "403 FORBIDDEN"),
        ({"rollback": "opened"}, "rollback", "200 OK"),
        ({}, "rollback", "403 FORBIDDEN"),
        ({"confirm_rollout": "maybe"}, "confirm-rollout", "503 SERVICE UNAVAILABLE"),
        (None, "confirm-rollout", "200 OK"),  # no CanaryGate: defaults
    ],
)
def test_fast_path_answers_what_werkzeug_answers(cache, writer, gate_spec, hook, status):
    cache.fill(gates=[make_gate(**gate_spec)] if gate_spec is not None else [], canaries=[make_canary()])
    app = create_app(cache=cache, writer=writer)
    fast, slow = both_paths(app, hook, json.dumps(payload()).encode())
    assert fast == slow
    assert fast[0] == status and fast[1] == [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(fast[2]))),
    ]


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1]", json.dumps({"name": "x"}).encode(), b"\xff\xfe\x00"])
def test_fast_path_bad_input_is_the_same_400(app, body):
    fast, slow = both_paths(app, "confirm-rollout", body)
    assert fast == slow and fast[0].startswith("400")


def test_fast_path_is_taken_only_for_plain_bodies(app, monkeypatch):
    taken = []
    original = app._fast_gate
    monkeypatch.setattr(app, "_fast_gate", lambda *a: taken.append(a[2]) or original(*a))
    body = json.dumps(payload()).encode()
    assert wsgi_call(app, environ("/confirm-rollout", body))[0] == "200 OK"
    assert taken == ["confirm-rollout"]
    # Not the fast path: chunked, odd or missing lengths, trailing slash, other methods, other routes.
    chunked = environ("/confirm-rollout", body, HTTP_TRANSFER_ENCODING="chunked")
    del chunked["CONTENT_LENGTH"]
    assert wsgi_call(app, chunked)[0] == "200 OK"  # werkzeug reads the terminated stream
    odd = dict(CONTENT_LENGTH="+5")
    assert wsgi_call(app, environ("/confirm-rollout", body, **odd)) == werkzeug_path(
        app, environ("/confirm-rollout", body, **odd)
    )
    assert wsgi_call(app, environ("/confirm-rollout/", body))[0] == "200 OK"
    assert wsgi_call(app, environ("/confirm-rollout", body, REQUEST_METHOD="PUT"))[0].startswith("405")
    assert wsgi_call(app, environ("/event", body))[0] == "200 OK"
    assert taken == ["confirm-rollout"]


def test_oversized_body_goes_to_werkzeug_for_413(app):
    big = json.dumps(payload(metadata={"pad": "x" * (65 * 1024)})).encode()
    status, _, body = wsgi_call(app, environ("/confirm-rollout", big))
    assert status == "413 REQUEST ENTITY TOO LARGE" and "64 KiB" in json.loads(body)["message"]


def test_short_body_is_400(app):
    body = json.dumps(payload()).encode()
    status, _, answer = wsgi_call(app, environ("/confirm-rollout", body[:-5], CONTENT_LENGTH=str(len(body))))
    assert status.startswith("400") and json.loads(answer)["code"] == 400


def test_a_bug_is_a_json_500(app, monkeypatch):
    monkeypatch.setattr(app, "decide", lambda payload, hook: 1 / 0)
    status, _, body = wsgi_call(app, environ("/confirm-rollout", json.dumps(payload()).encode()))
    assert status.startswith("500") and json.loads(body)["code"] == 500


# -- the answer cache: never stale -----------------------------------------------------------------------
def test_cached_answer_follows_a_gate_change(cache, client):
    cache.fill(gates=[make_gate(confirm_promotion="opened")])
    assert call(client, "confirm-promotion")[0] == 200
    assert call(client, "confirm-promotion")[0] == 200
    cache.apply_gate_event("MODIFIED", make_gate(confirm_promotion="closed", rv="2"))
    assert call(client, "confirm-promotion")[0] == 403
    cache.apply_gate_event("DELETED", make_gate(confirm_promotion="closed", rv="3"))
    status, body = call(client, "confirm-promotion")
    assert status == 200 and body["defaults"] is True


def test_cached_answer_follows_a_canary_change(cache, client):
    change = live_change("confirm-promotion", "opened")
    cache.fill(gates=[make_gate(confirm_promotion="closed", live=[change])], canaries=[make_canary()])
    assert call(client, "confirm-promotion")[1]["source"] == "live"
    # A new rollout started: the live change of the previous one is out of force.
    cache.apply_canary_event("MODIFIED", make_canary(since="2026-11-22T11:00:00Z"))
    status, body = call(client, "confirm-promotion")
    assert status == 403 and body["source"] == "declared"


def test_step_approval_after_a_cached_answer_is_used_once(cache, client, writer):
    cache.fill(gates=[make_gate(confirm_traffic_increase="closed")], canaries=[make_canary()])
    assert call(client, "confirm-traffic-increase")[0] == 403  # cached
    step = live_change("confirm-traffic-increase", "opened", scope="step")
    cache.apply_gate_event("MODIFIED", make_gate(confirm_traffic_increase="closed", live=[step], rv="2"))
    assert call(client, "confirm-traffic-increase")[0] == 200
    assert call(client, "confirm-traffic-increase")[0] == 403
    assert call(client, "confirm-traffic-increase")[0] == 403
    assert [c for c in writer.calls if c[0] == "consume"] == [("consume", ("demo-ns", "demo"), step)]


def test_same_gate_different_callers_are_answered_for_each(cache, client):
    cache.fill(gates=[make_gate("shared", "gates", confirm_rollout="closed")])
    meta = {"gate_name": "shared", "gate_namespace": "gates"}
    _, first = call(client, "confirm-rollout", payload("app-a", "ns-a", metadata=meta))
    _, second = call(client, "confirm-rollout", payload("app-b", "ns-b", metadata=meta))
    assert first["canary"] == "ns-a/app-a" and second["canary"] == "ns-b/app-b"


def test_side_effects_happen_on_cached_calls_too(cache, client, writer):
    cache.fill(gates=[make_gate(confirm_rollout="closed")])
    for _ in range(3):
        assert call(client, "confirm-rollout")[0] == 403
    assert [c for c in writer.calls if c[0] == "held"] == [("held", ("demo-ns", "demo"), "confirm-rollout")] * 3
    text = client.get("/metrics").get_data(as_text=True)
    assert 'canarygate_sidecar_decisions_total{answer="403",gate="confirm-rollout",source="declared"} 3.0' in text
    assert 'canarygate_sidecar_request_duration_seconds_count{endpoint="gate"} 3.0' in text


def test_fail_closed_is_never_served_from_the_cache(writer):
    health = StaticHealth(synced=True)
    cache = GateCache(health=[health], fail_closed_after=5.0).fill(gates=[make_gate()])
    client = Client(create_app(cache=cache, writer=writer))
    assert call(client, "confirm-rollout")[0] == 200
    health.seconds = 6.0
    assert call(client, "confirm-rollout")[0] == 503
    health.seconds = 0.0
    assert call(client, "confirm-rollout")[0] == 200


def test_answer_table_is_bounded(app, monkeypatch):
    monkeypatch.setattr(app_module, "MAX_CACHED_ANSWERS", 3)
    client = Client(app)
    for i in range(10):
        assert call(client, "confirm-rollout", payload(f"app-{i}"))[0] == 200
        assert len(app._answers) <= 3


def test_decoded_payloads_are_kept_bounded_and_only_when_valid(app, monkeypatch):
    monkeypatch.setattr(app_module, "MAX_CACHED_PAYLOADS", 2)
    client = Client(app)
    assert call(client, "confirm-rollout", b"{not json")[0] == 400
    assert app._payloads == {}
    for i in range(5):
        assert call(client, "confirm-rollout", payload(f"app-{i}"))[0] == 200
        assert len(app._payloads) <= 2
    big = payload(metadata={"pad": "x" * 2000})
    assert call(client, "confirm-rollout", big)[0] == 200
    assert all(len(raw) <= app_module.MAX_MEMO_BODY for raw in app._payloads)


def test_same_body_answers_each_hook(cache, client):
    cache.fill(gates=[make_gate(confirm_rollout="closed")])
    body = json.dumps(payload())
    assert call(client, "confirm-rollout", body)[0] == 403
    assert call(client, "confirm-promotion", body)[0] == 200
    assert call(client, "confirm-rollout", body)[0] == 403


# A cached answer must also end when the *lookup* would change, though the CanaryGate it was found
# on did not: another CanaryGate appears, goes, or changes what it targets (GateCache.index_version).
def test_a_new_canarygate_targeting_the_canary_ends_a_cached_answer(cache, client):
    cache.fill(gates=[make_gate(confirm_rollout="closed")])
    assert call(client, "confirm-rollout")[0] == 403  # by name, cached
    cache.apply_gate_event("ADDED", make_gate("release", target=("demo-ns", "demo")))
    status, body = call(client, "confirm-rollout")
    assert status == 200 and body["canarygate"] == "demo-ns/release"


def test_a_second_canarygate_targeting_the_canary_makes_rivals_of_a_cached_answer(cache, client):
    cache.fill(gates=[make_gate("first", target=("demo-ns", "demo"))])
    assert call(client, "confirm-rollout")[0] == 200  # by target, cached
    cache.apply_gate_event("ADDED", make_gate("second", target=("demo-ns", "demo")))
    assert call(client, "confirm-rollout")[0] == 503  # two rule it: nobody can tell which, fail closed


def test_deleting_the_canarygate_that_took_over_ends_a_cached_answer(cache, client):
    cache.fill(gates=[make_gate(confirm_rollout="closed"), make_gate("release", target=("demo-ns", "demo"))])
    assert call(client, "confirm-rollout")[0] == 200  # the targeting one rules, cached
    cache.apply_gate_event("DELETED", make_gate("release", target=("demo-ns", "demo")))
    assert call(client, "confirm-rollout")[0] == 403  # the one of the Canary's name again


def test_a_foreign_canarygate_retargeted_away_ends_a_cached_answer(cache, client):
    meta = {"gate_name": "shared", "gate_namespace": "gates"}
    cache.fill(gates=[make_gate("shared", "gates", target=("demo-ns", "demo"), confirm_rollout="closed")])
    assert call(client, "confirm-rollout", payload(metadata=meta))[0] == 403  # cached
    cache.apply_gate_event("MODIFIED", make_gate("shared", "gates", target=("other", "app"), rv="2"))
    status, body = call(client, "confirm-rollout", payload(metadata=meta))
    assert status == 503 and "does not target this Canary" in body["message"]


def test_metadata_naming_no_canarygate_shares_the_answer_of_no_metadata(cache, app, client):
    cache.fill(gates=[make_gate(confirm_rollout="closed")])
    assert call(client, "confirm-rollout", payload(metadata={"gate_name": ""}))[0] == 403
    assert call(client, "confirm-rollout", payload(metadata={"other": "x"}))[0] == 403
    assert call(client, "confirm-rollout")[0] == 403
    assert len(app._answers) == 1


class _SwitchOnStore(dict):
    """A cache's CanaryGate table whose next store or removal first runs ``then``: a webhook thread
    taking the GIL midway through the informer's change, deterministically."""

    then = None

    def _switch(self):
        then, self.then = self.then, None
        if then is not None:
            then()

    def __setitem__(self, key, value):
        self._switch()
        super().__setitem__(key, value)

    def pop(self, key, *default):
        self._switch()
        return super().pop(key, *default)


def _racing(writer):
    cache = GateCache(health=[StaticHealth(synced=True)])
    cache._gates = _SwitchOnStore()
    return cache, create_app(cache=cache, writer=writer)


def test_a_call_racing_a_new_canarygate_keeps_no_answer_past_it(writer):
    cache, app = _racing(writer)
    cache.fill(canaries=[make_canary()])
    raced = []
    cache._gates.then = lambda: raced.append(app.decide(payload(), "confirm-promotion")[0])
    cache.apply_gate_event("ADDED", make_gate("freeze", target=("demo-ns", "demo"), confirm_promotion="closed"))
    assert raced == [200]  # the racing call saw the cache before the CanaryGate: answered as then
    assert app.decide(payload(), "confirm-promotion")[0] == 403  # but nothing it kept outlives the change


def test_a_call_racing_a_deleted_canarygate_keeps_no_answer_past_it(writer):
    cache, app = _racing(writer)
    closed, release = make_gate(confirm_promotion="closed"), make_gate("release", target=("demo-ns", "demo"))
    cache.fill(gates=[closed, release], canaries=[make_canary()])
    cache._gates.then = lambda: app.decide(payload(), "confirm-promotion")
    cache.apply_gate_event("DELETED", release)
    assert app.decide(payload(), "confirm-promotion")[0] == 403


def test_an_unreadable_check_is_not_kept_past_a_change_of_the_calls_own_canary(cache, client):
    # The answer to an unreadable check depends on whether the *call's* Canary sends both confirm
    # gates to us (hooks.OUTAGE_RULE), though its CanaryGate targets another Canary.
    meta = {"gate_name": "g"}
    webhooks = [
        {"name": t, "type": t, "url": f"http://gate/{t}", "metadata": meta}
        for t in ("confirm-traffic-increase", "confirm-promotion")
    ]
    gate = make_gate("g", target=("demo-ns", "other"))
    gate["metadata"]["annotations"]["gate.piggysec.com/rollout"] = "not json"
    guarded = make_canary()
    guarded["spec"]["analysis"]["webhooks"] = webhooks
    cache.fill(gates=[gate], canaries=[guarded, make_canary("other")])
    assert call(client, "rollout", payload(metadata=meta))[0] == 200  # the confirm gates hold the next step
    cache.apply_canary_event("MODIFIED", make_canary())  # its webhooks no longer call us
    assert call(client, "rollout", payload(metadata=meta))[0] == 503
