"""Contract: watch.

Covers: ADDED/MODIFIED/DELETED from a resourceVersion; synthetic ADDED for
``resourceVersion`` 0/empty; selectors applied to events; BOOKMARK events with
``allowWatchBookmarks``; WatchList (``sendInitialEvents``) ending the initial
events with the ``k8s.io/initial-events-end`` bookmark; ``timeoutSeconds`` ending
the stream; 410 Expired for a compacted resourceVersion; events streamed at once
(not buffered).
"""

from __future__ import annotations

import json
import threading
import time

import kubernetes
import pytest
import urllib3
from kubernetes import watch
from kubernetes.client import ApiException

G, V, P = "piggysec.com", "v1alpha1", "canarygates"


def gate(name: str, **spec) -> dict:
    spec.setdefault("target", {"namespace": "demo-ns", "name": name})
    return {"apiVersion": f"{G}/{V}", "kind": "CanaryGate", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def co(api_client):
    return kubernetes.client.CustomObjectsApi(api_client)


def collect(co, namespace, *, until, timeout=5, **kw):
    """Events of a watch (type, name, object) until ``until(events)`` or the server ends it."""
    events = []
    w = watch.Watch()
    for ev in w.stream(co.list_namespaced_custom_object, G, V, namespace, P, timeout_seconds=timeout, **kw):
        obj = ev["object"]
        events.append((ev["type"], obj.get("metadata", {}).get("name"), obj))
        if until(events):
            w.stop()
    return events


def test_watch_from_resource_version_sees_changes(co, crds, namespace):
    rv = co.list_namespaced_custom_object(G, V, namespace, P)["metadata"]["resourceVersion"]
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    co.patch_namespaced_custom_object(G, V, namespace, P, "a", {"spec": {"rollout": "closed"}})
    co.delete_namespaced_custom_object(G, V, namespace, P, "a")
    events = collect(co, namespace, resource_version=rv, until=lambda evs: len(evs) == 3)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert events[1][2]["spec"]["rollout"] == "closed"
    assert all(o["kind"] == "CanaryGate" and o["apiVersion"] == f"{G}/{V}" for _, _, o in events)
    rvs = [int(o["metadata"]["resourceVersion"]) for _, _, o in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


def test_watch_without_resource_version_starts_with_current_objects(co, crds, namespace):
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    co.create_namespaced_custom_object(G, V, namespace, P, gate("b"))
    events = collect(co, namespace, until=lambda evs: len(evs) == 2)
    assert sorted((t, n) for t, n, _ in events) == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_applies_selectors(co, crds, namespace):
    rv = co.list_namespaced_custom_object(G, V, namespace, P)["metadata"]["resourceVersion"]
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    co.create_namespaced_custom_object(G, V, namespace, P, gate("b"))
    co.patch_namespaced_custom_object(G, V, namespace, P, "b", {"spec": {"rollout": "closed"}})
    events = collect(co, namespace, resource_version=rv, field_selector="metadata.name=b",
                     until=lambda evs: len(evs) == 2)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "b"), ("MODIFIED", "b")]


def test_bookmarks_when_allowed(co, crds, namespace):
    rv = co.list_namespaced_custom_object(G, V, namespace, P)["metadata"]["resourceVersion"]
    events = collect(co, namespace, resource_version=rv, allow_watch_bookmarks=True, timeout=3,
                     until=lambda evs: evs[-1][0] == "BOOKMARK")
    assert events and events[-1][0] == "BOOKMARK"
    bookmark = events[-1][2]
    assert bookmark["kind"] == "CanaryGate" and bookmark["apiVersion"] == f"{G}/{V}"
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(rv)


def test_timeout_seconds_ends_the_stream(co, crds, namespace):
    started = time.monotonic()
    events = collect(co, namespace, timeout=1, until=lambda evs: False)
    assert events == []
    assert 0.8 < time.monotonic() - started < 4


def test_too_old_resource_version_is_410_gone(co, apiserver, crds, namespace):
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    apiserver.compact()
    with pytest.raises(ApiException) as e:
        collect(co, namespace, resource_version="1", until=lambda evs: True)
    assert e.value.status == 410
    assert "too old resource version" in str(e.value.reason)


def raw_watch(api_client, path: str, query: str, *, headers=None, until, timeout=5.0):
    """Read a watch stream line by line, with arrival times; stops when ``until(events)``."""
    cfg = api_client.configuration
    http = urllib3.PoolManager(ca_certs=cfg.ssl_ca_cert, cert_reqs="CERT_REQUIRED" if cfg.verify_ssl else "CERT_NONE",
                               cert_file=cfg.cert_file, key_file=cfg.key_file)
    auth = cfg.api_key.get("BearerToken") or cfg.api_key.get("authorization")
    resp = http.request("GET", f"{cfg.host}{path}?{query}", preload_content=False, timeout=timeout,
                        headers={"Accept": "application/json", **({"Authorization": auth} if auth else {}),
                                 **(headers or {})})
    assert resp.status == 200, resp.read()
    events, buf = [], b""
    try:
        for chunk in resp.stream(1024, decode_content=False):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                events.append((time.monotonic(), json.loads(line)))
            if until([e for _, e in events]):
                break
    finally:
        resp.release_conn()
    return events


def test_send_initial_events_ends_with_marked_bookmark(api_client, co, crds, namespace):
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    path = f"/apis/{G}/{V}/namespaces/{namespace}/{P}"
    q = ("allowWatchBookmarks=true&fieldSelector=metadata.name%3Da&resourceVersionMatch=NotOlderThan"
         "&sendInitialEvents=true&timeoutSeconds=5&watch=true")
    events = [e for _, e in raw_watch(api_client, path, q, until=lambda evs: bool(evs) and evs[-1]["type"] == "BOOKMARK")]
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_events_stream_immediately(api_client, co, crds, namespace):
    rv = co.list_namespaced_custom_object(G, V, namespace, P)["metadata"]["resourceVersion"]
    path = f"/apis/{G}/{V}/namespaces/{namespace}/{P}"
    sent = {}

    def writer():
        time.sleep(0.3)
        sent["t"] = time.monotonic()
        co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))

    t = threading.Thread(target=writer)
    t.start()
    events = raw_watch(api_client, path, f"resourceVersion={rv}&timeoutSeconds=5&watch=true",
                       until=lambda evs: len(evs) >= 1)
    t.join()
    arrived, first = events[0]
    assert first["type"] == "ADDED"
    assert arrived - sent["t"] < 0.5
