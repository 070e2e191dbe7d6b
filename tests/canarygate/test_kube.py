"""The Kubernetes access layer against the sandbox API, through both transports (official and light).

Covers: connecting like kubectl (KUBECONFIG with several files, context/namespace/user overrides,
unknown context, bad timeout); writing a live change bound to the Canary's rollout; no lost update
when several writers change gates at once (409s retried from a fresh read); replacing a live change
only if it is still the one expected (JSON-patch test); apply of CanaryGates keeping live state;
errors translated at the boundary (NotFound, CrdMissing, Forbidden, Unreachable).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

from canarygate import errors
from canarygate.annotations import SCOPE_STEP
from canarygate.kube import canaries, canarygates, connect, events, identity
from canarygate.kube.client import Kube
from canarygate.kube.resources import Resource

NOW = "2026-11-22T10:00:00Z"


@pytest.fixture(params=[connect.OFFICIAL, connect.LIGHT])
def kube(request, kubeconfig) -> Kube:
    """Every test that uses it runs over the official client and over the light transport."""
    with connect.connect(connect.Settings(kubeconfig=kubeconfig, transport=request.param)) as conn:
        yield conn.kube


def make_gate(kube: Kube, namespace: str, name: str = "demo", **spec_gates) -> None:
    canarygates.apply_gate(
        kube,
        {
            "apiVersion": "piggysec.com/v1alpha1",
            "kind": "CanaryGate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                **spec_gates,
                "target": {"namespace": namespace, "name": name},
                "flagger": {
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "analysis": {"interval": "10s", "threshold": 2, "stepWeight": 10},
                },
            },
        },
    )


def test_kubeconfig_with_several_files_and_overrides(apiserver, tmp_path, monkeypatch):
    full = yaml.safe_load(Path(apiserver.write_kubeconfig(tmp_path / "full")).read_text())
    clusters = {"apiVersion": "v1", "kind": "Config", "clusters": full["clusters"], "users": full["users"]}
    contexts = {
        "apiVersion": "v1",
        "kind": "Config",
        "contexts": full["contexts"]
        + [
            {
                "name": "other",
                "context": {
                    "cluster": full["clusters"][0]["name"],
                    "user": full["users"][0]["name"],
                    "namespace": "team-a",
                },
            }
        ],
        "current-context": full["current-context"],
    }
    (tmp_path / "a").write_text(yaml.safe_dump(clusters))
    (tmp_path / "b").write_text(yaml.safe_dump(contexts))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    with connect.connect(connect.Settings(context="other")) as conn:
        assert (conn.context, conn.namespace) == ("other", "team-a")
        assert conn.server == apiserver.url
        assert identity.whoami(conn.kube) == "admin"
    with connect.connect(connect.Settings(context="other", namespace="x")) as conn:
        assert conn.namespace == "x"
    with pytest.raises(errors.ConfigError, match=r'context "nope" not found .*other'):
        connect.connect(connect.Settings(context="nope"))


@pytest.mark.parametrize("text,seconds", [("0", None), ("5", 5.0), ("5s", 5.0), ("1m30s", 90.0), ("250ms", 0.25)])
def test_request_timeout_like_kubectl(text, seconds):
    assert connect.parse_timeout(text) == seconds


def test_bad_request_timeout_is_explained():
    with pytest.raises(errors.ConfigError, match="--request-timeout"):
        connect.parse_timeout("soon")


def test_missing_kubeconfig_is_explained(tmp_path):
    with pytest.raises(errors.ConfigError, match="no kubeconfig found"):
        connect.connect(connect.Settings(kubeconfig=str(tmp_path / "nothing")))


def test_live_change_is_bound_to_the_canarys_rollout(kube, namespace, crds):
    make_gate(kube, namespace, **{"confirm-promotion": "closed"})
    canary = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "analysis": {"interval": "10s", "threshold": 2, "stepWeight": 10},
        },
    }
    canaries.apply_canary(kube, canary)
    kube.request(
        "PATCH",
        f"/apis/flagger.app/v1beta1/namespaces/{namespace}/canaries/demo/status",
        content_type="application/merge-patch+json",
        body={
            "status": {
                "phase": "WaitingPromotion",
                "conditions": [
                    {
                        "type": "Promoted",
                        "status": "Unknown",
                        "reason": "WaitingPromotion",
                        "lastTransitionTime": "2026-11-22T09:58:10Z",
                    }
                ],
            }
        },
    )
    updated, change = canarygates.write_live_change(
        kube, namespace, "demo", gate="confirm-promotion", state="open", by="alice", at=NOW, reason="CAB-7"
    )
    assert updated.live["confirm-promotion"] == change
    assert (change.rollout.active, change.rollout.since) == (True, "2026-11-22T09:58:10Z")
    assert updated.declared == {"confirm-promotion": "closed"}  # spec untouched


def test_concurrent_writers_lose_no_update(kube, namespace, crds):
    make_gate(kube, namespace)
    conflicts = []
    gate_names = [
        "confirm-rollout",
        "pre-rollout",
        "rollout",
        "confirm-traffic-increase",
        "confirm-promotion",
        "post-rollout",
    ]

    failures = []

    def writer(gate):
        try:
            for i in range(4):
                canarygates.write_live_change(
                    kube,
                    namespace,
                    "demo",
                    gate=gate,
                    state="closed" if i % 2 else "opened",
                    by=gate,
                    at=NOW,
                    reason=f"round {i}",
                    on_conflict=conflicts.append,
                )
        except errors.GateError as e:
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(g,)) for g in gate_names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    final = canarygates.get_gate(kube, namespace, "demo")
    assert {g: (c.state, c.by, c.reason) for g, c in final.live.items()} == {
        g: ("closed", g, "round 3") for g in gate_names
    }
    assert conflicts, "six writers on one object should have met a 409 at least once"


def test_replace_only_if_unchanged(kube, namespace, crds):
    make_gate(kube, namespace)
    gate, step = canarygates.write_live_change(
        kube, namespace, "demo", gate="confirm-traffic-increase", state="opened", by="alice", at=NOW, scope=SCOPE_STEP
    )
    _, newer = canarygates.write_live_change(
        kube, namespace, "demo", gate="confirm-traffic-increase", state="closed", by="bob", at=NOW
    )
    assert canarygates.replace_live_change(kube, gate, step, None) is False  # bob's change is kept
    assert canarygates.get_gate(kube, namespace, "demo").live["confirm-traffic-increase"] == newer
    assert canarygates.replace_live_change(kube, gate, newer, None) is True
    assert "confirm-traffic-increase" not in canarygates.get_gate(kube, namespace, "demo").live


def test_apply_keeps_live_state_and_reports_what_changed(kube, namespace, crds):
    make_gate(kube, namespace)
    canarygates.write_live_change(kube, namespace, "demo", gate="rollback", state="opened", by="alice", at=NOW)
    manifest = {
        "apiVersion": "piggysec.com/v1alpha1",
        "kind": "CanaryGate",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {"confirm-rollout": "closed", "target": {"namespace": namespace, "name": "demo"}},
    }
    assert canarygates.apply_gate(kube, manifest)[0] == "configured"
    assert canarygates.apply_gate(kube, manifest)[0] == "unchanged"
    gate = canarygates.get_gate(kube, namespace, "demo")
    assert gate.declared == {"confirm-rollout": "closed"}
    assert "flagger" not in gate.raw["spec"]  # dropped from the manifest, so dropped from the object
    assert gate.live["rollback"].by == "alice"


def test_errors_are_translated(kube, namespace, crds, apiserver, tmp_path, request):
    with pytest.raises(errors.NotFound, match='"nope" not found'):
        canarygates.get_gate(kube, namespace, "nope")
    assert canarygates.find_gate(kube, namespace, "nope") is None
    unserved = Resource("example.com", "v1", "widgets", "Widget")
    with pytest.raises(errors.CrdMissing, match=r"widgets\.example\.com"):
        kube.request("GET", unserved.path(namespace, "w"), resource=unserved, name="w")
    builtin = Resource("", "v1", "widgets", "Widget")
    with pytest.raises(errors.NotFound) as found:
        kube.request("GET", builtin.path(namespace, "w"), resource=builtin, name="w")
    assert not isinstance(found.value, errors.CrdMissing)  # only custom resources have a CRD to install
    apiserver.add_token("nobody-token", "nobody", ("system:authenticated",))
    nobody_conn = connect.connect(
        connect.Settings(kubeconfig=apiserver.write_kubeconfig(tmp_path / "nobody", token="nobody-token"))
    )
    request.addfinalizer(nobody_conn.close)
    nobody = nobody_conn.kube
    with pytest.raises(errors.Forbidden, match='User "nobody" cannot get resource "canarygates"'):
        canarygates.get_gate(nobody, namespace, "demo")
    assert identity.whoami(nobody) == "nobody"
    assert (
        identity.can_i(nobody, verb="patch", group="piggysec.com", resource="canarygates", namespace=namespace) is False
    )


def test_events_about_a_gate(kube, namespace, crds):
    make_gate(kube, namespace)
    gate = canarygates.get_gate(kube, namespace, "demo")
    events.record_event(kube, gate, reason="GateOpened", message="alice opened rollback", now=NOW)
    other = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "demo.other", "namespace": namespace},
        "involvedObject": {"kind": "Canary", "name": "demo", "namespace": namespace},
        "reason": "Synced",
        "message": "not about the gate",
        "type": "Normal",
    }
    kube.request("POST", f"/api/v1/namespaces/{namespace}/events", body=other)
    assert [e["message"] for e in events.list_events(kube, gate.namespace, gate.name)] == ["alice opened rollback"]


def test_unreachable_api_server(kube, namespace, crds, apiserver):
    apiserver.faults.fail(status=503, times=1, path_prefix="/apis/piggysec.com")
    with pytest.raises(errors.Unreachable, match="503"):
        canarygates.list_gates(kube, namespace)
    apiserver.faults.down = True
    try:
        with pytest.raises(errors.Unreachable, match="cannot reach the API server"):
            canarygates.list_gates(kube, namespace)
    finally:
        apiserver.faults.down = False
    assert canarygates.list_gates(kube, namespace) == []
