"""The one watch mechanism (canarygate.kube.informers) against the sandbox API, over both transports:
relist after a forced 410 (history compacted, watches cut), re-watch without relist after a plain
cut, the HTTP-410 refusal path, and follow_object (one object by field selector: changes, deletion,
fatal errors raised instead of retried).
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from canarygate import errors
from canarygate.kube import connect, informers
from canarygate.kube.client import Kube
from canarygate.kube.resources import CANARYGATES


@pytest.fixture(params=[connect.OFFICIAL, connect.LIGHT])
def kube(request, kubeconfig) -> Kube:
    with connect.connect(connect.Settings(kubeconfig=kubeconfig, transport=request.param)) as conn:
        assert conn.transport == request.param
        yield conn.kube


def gate(namespace: str, name: str, **spec) -> dict:
    return {
        "apiVersion": "piggysec.com/v1alpha1",
        "kind": "CanaryGate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**spec, "target": {"namespace": namespace, "name": name}},
    }


def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class Recorder:
    def __init__(self):
        self.lists: list[list[str]] = []
        self.events: list[tuple[str, str]] = []

    def on_list(self, items):
        self.lists.append(sorted(i["metadata"]["name"] for i in items))

    def on_event(self, kind, obj):
        self.events.append((kind, obj["metadata"]["name"]))


def start(kube, namespace, seen: Recorder) -> informers.Informer:
    informer = informers.Informer(
        kube, CANARYGATES, namespace=namespace, on_list=seen.on_list, on_event=seen.on_event, backoff=(0.05, 0.2)
    ).start()
    eventually(lambda: informer.synced and informer.age() == 0.0)
    return informer


def test_informer_relists_after_a_forced_410(kube, apiserver, namespace, crds):
    seen = Recorder()
    informer = start(kube, namespace, seen)
    try:
        apiserver.apply(gate(namespace, "first"))
        eventually(lambda: ("ADDED", "first") in seen.events)
        # A write the informer does not watch moves the resourceVersion on; compacting then makes
        # the informer's last resourceVersion too old, and cutting the watch makes it resume from it.
        apiserver.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"bump-{uuid.uuid4().hex[:6]}", "namespace": namespace},
            }
        )
        apiserver.compact()
        apiserver.faults.cut_watches()
        eventually(lambda: informer.lists == 2)
        assert seen.lists == [[], ["first"]]
        apiserver.apply(gate(namespace, "later"))
        eventually(lambda: ("ADDED", "later") in seen.events)  # watching again after the relist
        assert informer.synced
    finally:
        informer.stop()


def test_a_cut_watch_resumes_without_relisting(kube, apiserver, namespace, crds):
    seen = Recorder()
    informer = start(kube, namespace, seen)
    try:
        apiserver.faults.cut_watches()
        apiserver.apply(gate(namespace, "after-cut"))
        eventually(lambda: ("ADDED", "after-cut") in seen.events)
        assert informer.lists == 1 and informer.watches >= 1  # NB: a watch counts from its first event
    finally:
        informer.stop()


def test_a_watch_refused_with_410_relists():
    """The HTTP form of 410 (errors.Expired from Kube.stream), as a real API server may answer."""
    lists = []

    class FakeKube:
        refused = False

        def request(self, method, path, **kw):
            lists.append(path)
            return {"metadata": {"resourceVersion": str(len(lists))}, "items": []}

        def stream(self, path, **kw):
            if not self.refused:
                self.refused = True
                raise errors.Expired("too old resource version")
            informer.stop()
            return iter(())

    informer = informers.Informer(
        FakeKube(), CANARYGATES, on_list=lambda items: None, on_event=lambda kind, obj: None, backoff=(0.01, 0.01)
    )
    informer.run()
    assert len(lists) == 2 and informer.lists == 2


def test_follow_object_reports_changes_of_one_object(kube, apiserver, namespace, crds):
    apiserver.clear_requests()
    apiserver.apply(gate(namespace, "other"))
    changes: list = []
    informer = informers.follow_object(kube, CANARYGATES, namespace, "demo", changes.append)
    thread = threading.Thread(target=informer.run, daemon=True)
    thread.start()
    try:
        eventually(lambda: changes == [None])  # not there yet
        kube.request("POST", CANARYGATES.path(namespace), body=gate(namespace, "demo"))
        eventually(lambda: len(changes) == 2)
        assert changes[1]["metadata"]["name"] == "demo"
        kube.request(
            "PATCH",
            CANARYGATES.path(namespace, "demo"),
            body={"spec": {"rollback": "opened"}},
            content_type="application/merge-patch+json",
        )
        kube.request(
            "PATCH",
            CANARYGATES.path(namespace, "other"),
            body={"spec": {"rollback": "opened"}},
            content_type="application/merge-patch+json",
        )
        eventually(lambda: len(changes) == 3)
        assert changes[2]["spec"]["rollback"] == "opened"
        kube.request("DELETE", CANARYGATES.path(namespace, "demo"))
        eventually(lambda: len(changes) == 4)
        assert changes[3] is None
        time.sleep(0.2)
        assert len(changes) == 4  # "other" never reported
        mine = [r for r in apiserver.requests if r.resource == "canarygates" and r.method == "GET"]
        assert mine and all(r.query.get("fieldSelector") == "metadata.name=demo" for r in mine)
    finally:
        informer.stop()


def test_follow_object_raises_fatal_errors(apiserver, kubeconfig, namespace, crds, tmp_path):
    apiserver.add_token("nobody-token", "nobody", ("system:authenticated",))
    config = apiserver.write_kubeconfig(tmp_path / "nobody", token="nobody-token")
    with connect.connect(connect.Settings(kubeconfig=config, transport=connect.LIGHT)) as conn:
        informer = informers.follow_object(conn.kube, CANARYGATES, namespace, "demo", lambda obj: None)
        with pytest.raises(errors.Forbidden):
            informer.run()


def test_reopen_cuts_the_open_watch_and_resumes_without_a_relist(kube, namespace, crds, apiserver):
    """After an outage the liveness probe reopens every watch: one whose connection died silently
    would otherwise look healthy and stay blind. The cut is a plain re-watch from our resourceVersion."""
    seen = Recorder()
    informer = informers.Informer(
        kube,
        CANARYGATES,
        namespace=namespace,
        on_list=seen.on_list,
        on_event=seen.on_event,
        backoff=(0.05, 0.2),
        max_silence=90.0,
    ).start()
    try:
        eventually(lambda: informer.synced)
        kube.request("POST", CANARYGATES.path(namespace), body=gate(namespace, "before"))
        eventually(lambda: ("ADDED", "before") in seen.events and informer.watches == 1)
        informer.reopen()
        eventually(lambda: informer.silent_watches == 1)
        kube.request("POST", CANARYGATES.path(namespace), body=gate(namespace, "after"))
        eventually(lambda: ("ADDED", "after") in seen.events)
        assert informer.watches == 2 and len(seen.lists) == 1  # re-watched, not relisted
        assert seen.events.count(("ADDED", "before")) == 1  # resumed where it was: nothing replayed
    finally:
        informer.stop()
        informer.reopen()


def test_liveness_reopens_the_watches_when_the_api_answers_again(kube, namespace, crds, apiserver):
    seen = Recorder()
    informer = informers.Informer(
        kube,
        CANARYGATES,
        namespace=namespace,
        on_list=seen.on_list,
        on_event=seen.on_event,
        backoff=(0.05, 0.2),
        max_silence=90.0,
    ).start()
    liveness = informers.Liveness(kube, [informer], interval=60.0, timeout=0.5)
    try:
        eventually(lambda: informer.synced)
        kube.request("POST", CANARYGATES.path(namespace), body=gate(namespace, "first"))
        eventually(lambda: ("ADDED", "first") in seen.events and informer.watches == 1)
        assert liveness.probe() is True and informer.watches == 1  # healthy: nothing reopened
        apiserver.faults.hang = True
        try:
            assert liveness.probe() is False
        finally:
            apiserver.faults.hang = False
        assert liveness.probe() is True
        kube.request("POST", CANARYGATES.path(namespace), body=gate(namespace, "second"))
        eventually(lambda: ("ADDED", "second") in seen.events)
        assert informer.watches >= 2 and informer.silent_watches >= 1  # the watch was reopened
        assert len(seen.lists) == 1
    finally:
        informer.stop()
        informer.reopen()
