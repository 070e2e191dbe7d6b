"""Contract: watch.

Covers: ADDED/MODIFIED/DELETED from a resourceVersion; synthetic ADDED for
``resourceVersion`` 0/empty; selectors applied to events; BOOKMARK events with
``allowWatchBookmarks``; WatchList (``sendInitialEvents``) ending the initial
events with the ``k8s.io/initial-events-end`` bookmark; ``timeoutSeconds`` ending
the stream (cleanly, by the server, after streaming an event written while it was
open); 410 Expired for a resourceVersion older than the server keeps (and, on the emulator, after
``compact()``); events streamed at once, not
buffered (each one arrives before the next write is made).
"""

from __future__ import annotations

import json
import threading

import kubernetes
import pytest
import urllib3
from helpers.tiers import emulator_only
from kubernetes import watch
from kubernetes.client import ApiException

G, V, P = "piggysec.com", "v1alpha1", "canarygates"
SAFETY_NET = 20  # seconds: how long a wait may take before the test gives up; never an assertion on speed


def gate(name: str, **spec) -> dict:
    spec.setdefault("target", {"namespace": "demo-ns", "name": name})
    return {"apiVersion": f"{G}/{V}", "kind": "CanaryGate", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def co(api_client):
    return kubernetes.client.CustomObjectsApi(api_client)


def collect(co, namespace, *, until, timeout=15, **kw):
    """Events of a watch (type, name, object) until ``until(events)`` or the server ends it
    (``timeout``: its timeoutSeconds, room for a loaded server; ``until`` ends it sooner)."""
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
    events = collect(
        co, namespace, resource_version=rv, field_selector="metadata.name=b", until=lambda evs: len(evs) == 2
    )
    assert [(t, n) for t, n, _ in events] == [("ADDED", "b"), ("MODIFIED", "b")]


def test_bookmarks_when_allowed(co, crds, namespace):
    rv = co.list_namespaced_custom_object(G, V, namespace, P)["metadata"]["resourceVersion"]
    # NB: a write after the list: kube-apiserver's bookmarks carry its watch cache's last resourceVersion
    # and a watch drops those older than its own. Under load the list may come from etcd (the cache
    # not fresh in time), ahead of that cache until an event reaches it: without one, no bookmark.
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    # NB: kube-apiserver sends one 2 s before the deadline at the latest, on a 1 s tick: 3 s was too tight
    events = collect(
        co,
        namespace,
        resource_version=rv,
        allow_watch_bookmarks=True,
        timeout=6,
        until=lambda evs: evs[-1][0] == "BOOKMARK",
    )
    assert [(t, n) for t, n, _ in events] == [("ADDED", "a"), ("BOOKMARK", None)]
    added, bookmark = events[0][2], events[1][2]
    assert bookmark["kind"] == "CanaryGate" and bookmark["apiVersion"] == f"{G}/{V}"
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(added["metadata"]["resourceVersion"])


def test_timeout_seconds_ends_the_stream(co, crds, namespace):
    rv = co.list_namespaced_custom_object(G, V, namespace, P)["metadata"]["resourceVersion"]
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))

    def write_b_once_a_arrives(events):
        if len(events) == 1:
            co.create_namespaced_custom_object(G, V, namespace, P, gate("b"))  # NB: the stream is open
        return False  # never stop the watch: the server has to end it

    try:
        events = collect(
            co, namespace, resource_version=rv, timeout=6, until=write_b_once_a_arrives, _request_timeout=SAFETY_NET
        )
    except urllib3.exceptions.TimeoutError:
        pytest.fail(f"the server did not end the watch (timeoutSeconds=6; gave up after {SAFETY_NET} s)")
    assert [(t, n) for t, n, _ in events] == [("ADDED", "a"), ("ADDED", "b")]


def test_too_old_resource_version_is_410_gone(co, crds, namespace):
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    with pytest.raises(ApiException) as e:  # NB: "1" is older than any server's watch window
        collect(co, namespace, resource_version="1", until=lambda evs: True)
    assert e.value.status == 410
    assert "too old resource version: 1 (" in str(e.value.reason)


def test_compact_expires_a_recent_resource_version(co, apiserver, crds, namespace):
    emulator_only(
        apiserver,
        "compact() is the emulator's stand-in for an etcd compaction, which a test cannot "
        "order on a cluster others share",
    )
    rv = co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))["metadata"]["resourceVersion"]
    co.create_namespaced_custom_object(G, V, namespace, P, gate("b"))
    apiserver.compact()
    with pytest.raises(ApiException) as e:
        collect(co, namespace, resource_version=rv, until=lambda evs: True)
    assert e.value.status == 410


def raw_watch(api_client, path: str, query: str, *, headers=None, until, timeout=SAFETY_NET):
    """Read a watch stream line by line, calling ``until(events)`` after each event; stops when it is true."""
    cfg = api_client.configuration
    http = urllib3.PoolManager(
        ca_certs=cfg.ssl_ca_cert,
        cert_reqs="CERT_REQUIRED" if cfg.verify_ssl else "CERT_NONE",
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
    )
    auth = cfg.api_key.get("BearerToken") or cfg.api_key.get("authorization")
    resp = http.request(
        "GET",
        f"{cfg.host}{path}?{query}",
        preload_content=False,
        timeout=timeout,
        headers={"Accept": "application/json", **({"Authorization": auth} if auth else {}), **(headers or {})},
    )
    assert resp.status == 200, resp.read()
    events, buf = [], b""
    try:
        for chunk in resp.stream(1024, decode_content=False):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                events.append(json.loads(line))
                if until(events):
                    return events
    finally:
        resp.release_conn()
    return events


def test_send_initial_events_ends_with_marked_bookmark(api_client, co, crds, namespace):
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    path = f"/apis/{G}/{V}/namespaces/{namespace}/{P}"
    q = (
        "allowWatchBookmarks=true&fieldSelector=metadata.name%3Da&resourceVersionMatch=NotOlderThan"
        "&sendInitialEvents=true&timeoutSeconds=15&watch=true"
    )
    events = raw_watch(api_client, path, q, until=lambda evs: evs[-1]["type"] == "BOOKMARK")
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_events_stream_immediately(api_client, co, crds, namespace):
    rv = co.list_namespaced_custom_object(G, V, namespace, P)["metadata"]["resourceVersion"]
    path = f"/apis/{G}/{V}/namespaces/{namespace}/{P}"
    order = []
    a_arrived = threading.Event()

    def writer():
        co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
        order.append("wrote a")
        if not a_arrived.wait(SAFETY_NET):
            order.append("a not streamed yet")
        co.create_namespaced_custom_object(G, V, namespace, P, gate("b"))
        order.append("wrote b")

    def reader(events):
        order.append(f"received {events[-1]['object'].get('metadata', {}).get('name')}")
        a_arrived.set()
        return len(events) == 2

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    events = raw_watch(
        api_client,
        path,
        f"resourceVersion={rv}&timeoutSeconds={SAFETY_NET + 10}&watch=true",
        until=reader,
        timeout=SAFETY_NET + 20,
    )  # NB: a buffering server flushes at the end
    t.join(SAFETY_NET)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a"), ("ADDED", "b")]
    assert order.index("received a") < order.index("wrote b"), f"a was not streamed before b was written: {order}"
