"""Flagger simulator: Kubernetes Events through client-go's correlator; event webhooks beside it.

Covers:
- the spam filter: 25 Events per source + object + type, then one per 300 s; Normal and
  Warning counted apart; a passing Event after drops carries their count;
- observation: the same Event again is a PATCH with ``count + 1``, at any age;
- aggregation: from the 10th distinct message within 600 s of the previous similar Event, one
  "(combined from similar events): ..." Event whose count grows; the window slides;
- against the API server: a suspended Canary ticked 30 times sends 30 event webhooks while its
  Event stops at count 25 (Flagger calls the webhooks itself, not through the recorder).
"""

from __future__ import annotations

import kubernetes
import pytest

from sandbox.flagger.controller import FlaggerController
from sandbox.flagger.events import COMBINED_PREFIX, EventCorrelator
from sandbox.flagger.testing import HookRecorder


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


_names = iter(range(10**6))


def event(message="m", type_="Normal", name="podinfo"):
    """An Event as Flagger's recorder makes it: a fresh name every time."""
    return {
        "metadata": {"name": f"{name}.{next(_names):x}", "namespace": "default"},
        "involvedObject": {
            "kind": "Canary",
            "name": name,
            "namespace": "default",
            "uid": "u1",
            "apiVersion": "flagger.app/v1beta1",
        },
        "reason": "Synced",
        "message": message,
        "type": type_,
        "count": 1,
        "source": {"component": "flagger"},
        "reportingComponent": "flagger",
        "reportingInstance": "",
        "firstTimestamp": "t",
        "lastTimestamp": "t",
    }


class Server:
    """Applies the correlator's results as the API server would."""

    def __init__(self, correlator):
        self.correlator = correlator
        self.events = {}
        self.writes = []

    def record(self, ev):
        result = self.correlator.correlate(ev, name=lambda: f"agg{len(self.events)}")
        if result.skip:
            return None
        name = result.event["metadata"]["name"]
        if result.patch is not None:
            self.events[name] = {**self.events[name], **result.patch}
        else:
            self.events[name] = dict(result.event)
        self.writes.append(("patch" if result.patch else "create", name))
        self.correlator.update_state(self.events[name])
        return self.events[name]


def test_spam_filter_25_then_one_per_five_minutes():
    clock = Clock()
    server = Server(EventCorrelator(clock))
    for _ in range(30):
        server.record(event("same"))
        clock.now += 1
    assert len(server.writes) == 25
    assert [e["count"] for e in server.events.values()] == [25]
    server.record(event("other", type_="Warning"))  # another type has its own bucket
    assert len(server.writes) == 26
    clock.now += 299 - 30
    assert server.record(event("same")) is None
    clock.now += 31
    written = server.record(event("same"))
    assert written["count"] == 32  # the dropped ones are counted
    assert server.record(event("same")) is None


def test_same_event_is_patched_at_any_age():
    clock = Clock()
    server = Server(EventCorrelator(clock))
    server.record(event("again"))
    clock.now += 3600
    assert server.record(event("again"))["count"] == 2
    assert [kind for kind, _ in server.writes] == ["create", "patch"]
    assert len({name for _, name in server.writes}) == 1


def test_tenth_distinct_message_is_combined():
    clock = Clock()
    server = Server(EventCorrelator(clock))
    for i in range(9):
        server.record(event(f"message {i}"))
    assert all(not e["message"].startswith(COMBINED_PREFIX) for e in server.events.values())
    tenth = server.record(event("message 9"))
    assert tenth["message"] == COMBINED_PREFIX + "message 9" and tenth["count"] == 1
    eleventh = server.record(event("message 10"))
    assert eleventh["metadata"]["name"] == tenth["metadata"]["name"]
    assert (eleventh["message"], eleventh["count"]) == (COMBINED_PREFIX + "message 10", 2)
    assert len(server.events) == 10


def test_aggregation_window_slides_from_the_last_similar_event():
    clock = Clock()
    server = Server(EventCorrelator(clock))
    for i in range(9):
        server.record(event(f"message {i}"))
        clock.now += 500  # never 600 s apart: one window
    assert server.record(event("message 9"))["message"].startswith(COMBINED_PREFIX)
    clock.now += 601
    assert server.record(event("message 10"))["message"] == "message 10"


# --- against the API server ------------------------------------------------------------------


@pytest.mark.e2e
def test_event_webhooks_are_not_filtered_like_events(api_client, crds, namespace):
    apps = kubernetes.client.AppsV1Api(api_client)
    custom = kubernetes.client.CustomObjectsApi(api_client)
    core = kubernetes.client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "quiet"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "quiet"}},
                "template": {
                    "metadata": {"labels": {"app": "quiet"}},
                    "spec": {"containers": [{"name": "app", "image": "app:1"}]},
                },
            },
        },
    )
    with HookRecorder() as hooks:
        custom.create_namespaced_custom_object(
            "flagger.app",
            "v1beta1",
            namespace,
            "canaries",
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "Canary",
                "metadata": {"name": "quiet"},
                "spec": {
                    "suspend": True,
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "quiet"},
                    "service": {"port": 80},
                    "analysis": {
                        "interval": "10s",
                        "threshold": 2,
                        "stepWeight": 10,
                        "maxWeight": 50,
                        "webhooks": [{"name": "ev", "type": "event", "url": hooks.url + "/event"}],
                    },
                },
            },
        )
        controller = FlaggerController(api_client, namespaces=[namespace])
        for _ in range(30):
            controller.tick(namespace, "quiet")
        assert len(hooks.calls("event")) == 30
    events = [e for e in core.list_namespaced_event(namespace).items if e.involved_object.name == "quiet"]
    assert [(e.message, e.count) for e in events] == [("skipping canary run as object is suspended", 25)]
