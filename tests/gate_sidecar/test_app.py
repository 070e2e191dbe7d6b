"""The sidecar app through werkzeug's test client, over a cache filled from dicts (no API).

Covers: routing (every gate, 404, 405, HEAD/GET probes), answers (open 200, closed 403, rollback
inverted, JSON body fields, defaults for a missing CanaryGate), which CanaryGate a call is about
(metadata, spec.target, own name; the Go original's Canaries), live vs declared vs default and live
changes out of force, one-step approvals consumed once, bad input (400 with a message, 413, never
500), fail closed (not synced, API cut off past the bound, unwatched namespace, unreadable
CanaryGate), /event, /readyz, /version, /metrics.
"""

from __future__ import annotations

import json

import pytest
from sidecar_helpers import call, live_change, make_canary, make_gate, payload
from werkzeug.test import Client

import canarygate
from canarygate import gates
from canarygate.diagnosis import recommended_command
from gate_sidecar.app import create_app
from gate_sidecar.cache import GateCache, StaticHealth


# -- answers -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("hook", gates.PROGRESS_GATES)
def test_missing_canarygate_opens_progress_gates_with_defaults(client, hook):
    status, body = call(client, hook)
    assert status == 200
    assert body["allowed"] is True and body["state"] == "opened" and body["source"] == "default"
    assert body["defaults"] is True and body["canarygate"] == "demo-ns/demo"
    assert "does not exist" in body["message"]


def test_missing_canarygate_does_not_roll_back(client):
    status, body = call(client, "rollback")
    assert status == 403 and body["allowed"] is False and body["source"] == "default"


@pytest.mark.parametrize("hook", gates.PROGRESS_GATES)
def test_declared_closed_answers_403_and_names_the_command(cache, client, writer, hook):
    cache.fill(gates=[make_gate(**{hook.replace("-", "_"): "closed"})])
    status, body = call(client, hook)
    assert status == 403
    assert body == body | {
        "gate": hook,
        "state": "closed",
        "source": "declared",
        "defaults": False,
        "canarygate": "demo-ns/demo",
        "found_by": "name",
        "allowed": False,
    }
    assert recommended_command(hook, "demo", "demo-ns") in body["message"]  # the same as show and the Event
    if hook != "post-rollout":
        assert ("held", ("demo-ns", "demo"), hook) in writer.calls


def test_rollback_opened_answers_200_meaning_roll_back(cache, client):
    cache.fill(gates=[make_gate(rollback="opened")])
    status, body = call(client, "rollback")
    assert status == 200 and body["allowed"] is True and "roll back" in body["message"]


def test_live_change_wins_over_declared_and_says_who(cache, client):
    change = live_change("confirm-promotion", "opened")
    cache.fill(gates=[make_gate(confirm_promotion="closed", live=[change])], canaries=[make_canary()])
    status, body = call(client, "confirm-promotion")
    assert status == 200
    assert body["source"] == "live" and body["set_by"] == "alice" and body["scope"] == "rollout"


def test_live_change_of_an_ended_rollout_no_longer_counts(cache, client):
    change = live_change("confirm-promotion", "opened", since="2026-11-22T09:00:00Z")
    cache.fill(gates=[make_gate(confirm_promotion="closed", live=[change])], canaries=[make_canary()])
    status, body = call(client, "confirm-promotion")
    assert status == 403 and body["source"] == "declared"


# -- which CanaryGate -----------------------------------------------------------------------------------
def test_metadata_names_the_canarygate(cache, client):
    cache.fill(
        gates=[
            make_gate("gate-a", "gates", target=("demo-ns", "demo"), confirm_rollout="closed"),
            make_gate(confirm_rollout="opened"),
        ]
    )
    status, body = call(client, "confirm-rollout", payload(metadata={"gate_name": "gate-a", "gate_namespace": "gates"}))
    assert status == 403 and body["canarygate"] == "gates/gate-a" and body["found_by"] == "metadata"


def test_metadata_without_namespace_uses_the_canarys(cache, client):
    cache.fill(gates=[make_gate("gate-a", "demo-ns", confirm_rollout="closed")])
    status, body = call(client, "confirm-rollout", payload(metadata={"gate_name": "gate-a"}))
    assert status == 403 and body["canarygate"] == "demo-ns/gate-a"


def test_spec_target_finds_the_canarygate(cache, client):
    # The CanaryGate of the Canary's namespace whose spec.target is the Canary (another name).
    cache.fill(gates=[make_gate("approvals", "demo-ns", target=("demo-ns", "demo"), confirm_promotion="closed")])
    status, body = call(client, "confirm-promotion")
    assert status == 403 and body["canarygate"] == "demo-ns/approvals" and body["found_by"] == "target"


def test_event_metadata_keys_do_not_confuse_the_lookup(cache, client):
    cache.fill(gates=[make_gate(confirm_rollout="closed")])
    status, _ = call(client, "confirm-rollout", payload(metadata={"eventMessage": "x", "cmd": "hey"}))
    assert status == 403


# -- one-step approvals ---------------------------------------------------------------------------------
def test_step_approval_is_used_once(cache, client, writer):
    step = live_change("confirm-traffic-increase", "opened", scope="step")
    cache.fill(gates=[make_gate(confirm_traffic_increase="closed", live=[step])], canaries=[make_canary()])
    first, body = call(client, "confirm-traffic-increase")
    assert first == 200 and body["scope"] == "step"
    second, body = call(client, "confirm-traffic-increase")
    assert second == 403 and body["source"] == "declared"
    assert [c for c in writer.calls if c[0] == "consume"] == [("consume", ("demo-ns", "demo"), step)]


def test_consumed_step_is_forgotten_once_the_cluster_drops_it(cache, client):
    step = live_change("confirm-traffic-increase", "opened", scope="step")
    cache.fill(gates=[make_gate(confirm_traffic_increase="closed", live=[step])], canaries=[make_canary()])
    call(client, "confirm-traffic-increase")
    cache.apply_gate_event("MODIFIED", make_gate(confirm_traffic_increase="closed", rv="2"))
    assert cache.consumed(("demo-ns", "demo")) == frozenset()


# -- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"namespace": "demo-ns"}), "'name'"),
        (json.dumps({"name": "demo"}), "'namespace'"),
        (json.dumps({"name": 3, "namespace": "x"}), "'name'"),
        (json.dumps({"name": "d", "namespace": "x", "metadata": "nope"}), "metadata"),
        (b"\xff\xfe\x00", "not valid JSON"),
    ],
)
def test_malformed_payload_is_400_with_a_message(client, body, fragment):
    status, answer = call(client, "confirm-rollout", body)
    assert status == 400 and answer["code"] == 400 and fragment in answer["message"]


def test_bad_event_payload_is_400(client):
    status, _ = call(client, "event", b"nope")
    assert status == 400


def test_body_over_64_kib_is_413(client):
    big = json.dumps(payload(metadata={"pad": "x" * (65 * 1024)}))
    status, answer = call(client, "confirm-rollout", big)
    assert status == 413 and "64 KiB" in answer["message"]


def test_unknown_path_is_404_json(client):
    response = client.post("/gate/check", json=payload())
    assert response.status_code == 404 and response.get_json()["code"] == 404


def test_wrong_method_is_405_with_allow(client):
    response = client.get("/confirm-rollout")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    assert client.post("/healthz").status_code == 405


def test_head_probe_works(client):
    assert client.head("/healthz").status_code == 200


# -- fail closed ------------------------------------------------------------------------------------------
def test_not_synced_fails_closed(writer):
    cache = GateCache(health=[StaticHealth(synced=False)])
    client = Client(create_app(cache=cache, writer=writer))
    for hook in gates.GATES:
        status, body = call(client, hook)
        assert status == 503 and body["allowed"] is False and "not synced" in body["message"]
    assert client.get("/readyz").status_code == 503


def test_api_cut_off_past_the_bound_fails_closed(writer):
    health = StaticHealth(synced=True, seconds=3.0)
    cache = GateCache(health=[health], fail_closed_after=5.0).fill(gates=[make_gate(rollback="opened")])
    client = Client(create_app(cache=cache, writer=writer))
    assert call(client, "rollback")[0] == 200
    health.seconds = 6.0
    status, body = call(client, "rollback")
    assert status == 503 and "not signalling a rollback" in body["message"]
    assert call(client, "confirm-promotion")[0] == 503
    assert client.get("/readyz").status_code == 503
    health.seconds = 0.0
    assert call(client, "confirm-promotion")[0] == 200


def test_unwatched_namespace_fails_closed(writer):
    cache = GateCache(namespaces=["demo-ns"], health=[StaticHealth()])
    client = Client(create_app(cache=cache, writer=writer))
    assert call(client, "confirm-rollout", payload(namespace="other"))[0] == 503
    assert call(client, "confirm-rollout")[0] == 200


def test_unreadable_canarygate_fails_closed(cache, client):
    cache.fill(gates=[make_gate(confirm_rollout="maybe")])
    status, body = call(client, "confirm-rollout")
    assert status == 503 and "cannot be read" in body["message"]


# -- event hook, probes, version, metrics ------------------------------------------------------------------
def test_event_is_handed_to_the_writer(cache, client, writer):
    cache.fill(gates=[make_gate()])
    body = payload(
        metadata={
            "eventMessage": "Advance demo.demo-ns canary weight 10",
            "eventType": "Normal",
            "timestamp": "1795000000000",
            "gate_name": "demo",
            "gate_namespace": "demo-ns",
        }
    )
    response = client.post("/event", json=body)
    assert response.status_code == 200 and response.get_json()["recorded"] is True
    assert writer.calls[-1][0] == "event" and writer.calls[-1][1] == ("demo-ns", "demo")


def test_event_for_a_missing_canarygate_is_200_not_recorded(client, writer):
    response = client.post("/event", json=payload())
    assert response.status_code == 200 and response.get_json()["recorded"] is False and writer.calls == []


def test_readyz_and_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"


def test_draining_is_not_ready(app, client):
    app.draining = True
    assert client.get("/readyz").status_code == 503


def test_version(client):
    body = client.get("/version").get_json()
    assert body["version"] == canarygate.__version__ and body["component"] == "gate-sidecar"


def test_metrics_count_decisions_and_latency(cache, client):
    cache.fill(gates=[make_gate(confirm_rollout="closed")])
    call(client, "confirm-rollout")
    call(client, "confirm-promotion")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'canarygate_sidecar_decisions_total{answer="403",gate="confirm-rollout",source="declared"} 1.0' in text
    assert 'canarygate_sidecar_decisions_total{answer="200",gate="confirm-promotion",source="default"} 1.0' in text
    assert 'canarygate_sidecar_request_duration_seconds_count{endpoint="gate"} 2.0' in text
    assert "canarygate_sidecar_canarygates_watched 1.0" in text
    assert "canarygate_sidecar_cache_age_seconds 0.0" in text
