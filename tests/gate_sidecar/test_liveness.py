"""What the sidecar's feeds count as contact with the API server (canarygate.kube.informers with
``max_silence``, and :class:`Liveness`), on fakes with a hand-driven clock: no API, no waiting.

Covers: an open watch is not contact by itself (the age grows while it stays silent; the old
behaviour said 0); watch events and bookmarks are; a liveness answer vouches for an open watch but not
for a feed that is not watching; a watch silent past the bound is reopened from its resourceVersion
without a relist or a back-off; the probe counts any HTTP answer, not a timeout or a 5xx.
"""

from __future__ import annotations

import threading

import pytest

from canarygate import errors
from canarygate.kube.informers import Informer, Liveness
from canarygate.kube.resources import CANARYGATES


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class ReadTimeoutError(Exception):
    """Named like urllib3's: how the transports report a read that timed out."""


def read_timeout() -> errors.Unreachable:
    try:
        raise ReadTimeoutError("Read timed out. (read timeout=1.0)")
    except ReadTimeoutError as e:
        try:
            raise errors.Unreachable("the watch stream broke: Read timed out") from e
        except errors.Unreachable as wrapped:
            return wrapped


class ScriptedKube:
    """Lists return nothing; each watch runs the next script step with the informer mid-watch."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.lists = 0
        self.watches: list[dict] = []
        self.informer: Informer | None = None

    def request(self, method, path, **kw):
        self.lists += 1
        return {"metadata": {"resourceVersion": "7"}, "items": []}

    def stream(self, path, *, query=(), timeout=None):
        self.watches.append({"query": dict(query), "timeout": timeout})
        step = self.steps.pop(0) if self.steps else "stop"

        def events():
            if step == "stop":
                self.informer.stop()
                return
            yield from step(self.informer)

        return events()


def informer_on(kube: ScriptedKube, clock: Clock, **kw) -> Informer:
    informer = Informer(kube, CANARYGATES, on_list=lambda items: None, on_event=lambda kind, obj: None,
                        clock=clock, max_silence=1.0, backoff=(0.01, 0.01), **kw)
    kube.informer = informer
    return informer


def test_an_open_silent_watch_is_not_contact_but_its_events_and_a_probe_are():
    clock = Clock()
    seen = {}

    def watch(informer):
        seen["listed"] = informer.age()
        clock.now += 5  # five silent seconds with the watch open
        seen["silent"] = informer.age()
        informer.vouch(clock.now - 1)  # a liveness answer to a request sent a second ago
        seen["vouched"] = informer.age()
        clock.now += 3
        yield {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "8"}}}
        seen["bookmark"] = informer.age()
        clock.now += 2
        yield {"type": "MODIFIED", "object": {"metadata": {"name": "a", "resourceVersion": "9"}}}
        seen["event"] = informer.age()

    kube = ScriptedKube([watch])
    informer = informer_on(kube, clock)
    informer.run()
    assert seen == {"listed": 0.0, "silent": 5.0, "vouched": 1.0, "bookmark": 0.0, "event": 0.0}
    assert kube.watches[0]["timeout"] == (1.0, 1.0)  # the read timeout is the bound


def test_a_probe_does_not_vouch_for_a_feed_that_is_not_watching():
    clock = Clock()
    informer = informer_on(ScriptedKube([]), clock)
    informer.vouch(clock.now)
    assert informer.age() == float("inf")  # never listed: a probe answer does not make it fresh
    informer._last_contact = clock.now
    clock.now += 4
    informer.vouch(clock.now)  # listing or backing off, not watching
    assert informer.age() == 4.0


def test_a_silent_watch_is_reopened_from_its_resource_version_without_relisting():
    clock = Clock()

    def silent(informer):
        raise read_timeout()
        yield  # pragma: no cover

    kube = ScriptedKube([silent, silent])
    informer = informer_on(kube, clock)
    informer.run()
    assert kube.lists == 1 and informer.silent_watches == 2
    assert [w["query"]["resourceVersion"] for w in kube.watches] == ["7", "7", "7"]


def test_a_refused_watch_is_not_taken_for_silence():
    clock = Clock()

    def refused(informer):
        raise errors.Unreachable("cannot reach the API server: connection refused")
        yield  # pragma: no cover

    kube = ScriptedKube([refused])
    informer = informer_on(kube, clock)
    informer.run()
    assert informer.silent_watches == 0 and len(kube.watches) == 2


def test_without_max_silence_an_open_watch_still_counts_as_contact():
    """The CLI's followers keep the old meaning (their callers do not ask for an age bound)."""
    clock = Clock()
    seen = {}

    def watch(informer):
        clock.now += 50
        seen["age"] = informer.age()
        return iter(())

    kube = ScriptedKube([watch])
    informer = Informer(kube, CANARYGATES, on_list=lambda items: None, on_event=lambda kind, obj: None,
                        clock=clock, backoff=(0.01, 0.01))
    kube.informer = informer
    informer.run()
    assert seen == {"age": 0.0}


class ProbeKube:
    def __init__(self, answer):
        self.answer = answer
        self.requests: list[tuple] = []

    def request(self, method, path, **kw):
        self.requests.append((method, path, kw.get("timeout")))
        if isinstance(self.answer, Exception):
            raise self.answer
        return {"gitVersion": "v1.30.0"}


class Vouched:
    def __init__(self):
        self.at: list[float] = []

    def vouch(self, at):
        self.at.append(at)


@pytest.mark.parametrize("answer, contact", [
    (None, True),
    (errors.Forbidden("forbidden"), True),  # an answer all the same
    (errors.Unreachable("timed out"), False),
    (errors.Unreachable("the API server answered 503"), False),
])
def test_the_probe_vouches_only_when_the_api_server_answered(answer, contact):
    clock = Clock(50.0)
    kube, feed = ProbeKube(answer), Vouched()
    liveness = Liveness(kube, [feed], interval=5.0, timeout=4.0, clock=clock)
    assert liveness.probe() is contact
    assert kube.requests == [("GET", "/version", 4.0)]
    assert feed.at == ([50.0] if contact else [])


def test_the_probe_runs_until_stopped():
    kube, feed = ProbeKube(None), Vouched()
    liveness = Liveness(kube, [feed], interval=0.01, timeout=0.01)
    done = threading.Event()
    original = feed.vouch

    def vouch(at):
        original(at)
        if len(feed.at) >= 3:
            liveness.stop()
            done.set()

    feed.vouch = vouch
    liveness.start()
    assert done.wait(10)  # a safety net, not a measurement
    assert len(kube.requests) >= 3
