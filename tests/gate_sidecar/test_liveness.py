"""What the sidecar's feeds count as contact with the API server (canarygate.kube.informers with
``max_silence``, and :class:`Liveness`), on fakes with a hand-driven clock: no API, no waiting.

Covers: an open watch is not contact by itself (the age grows while it stays silent; the old
behaviour said 0); watch events and bookmarks are; a liveness answer is not (issue 9: fresh data only);
a watch silent past half the bound is relisted; the probe counts any HTTP answer, not a timeout or a
5xx, and only to reopen watches after an outage.
"""

from __future__ import annotations

import threading

import pytest

from canarygate import errors
from canarygate.kube.informers import QUIET_WATCH, Informer, Liveness, feed_timing
from canarygate.kube.resources import CANARYGATES
from gate_sidecar.cache import GateCache


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

    def stream(self, path, *, query=(), timeout=None, on_open=None):
        self.watches.append({"query": dict(query), "timeout": timeout})
        step = self.steps.pop(0) if self.steps else "stop"

        def events():
            if step == "stop":
                self.informer.stop()
                return
            yield from step(self.informer)

        return events()


def informer_on(kube: ScriptedKube, clock: Clock, *, max_silence: float | None = 1.0, **kw) -> Informer:
    """A CanaryGate informer on ``kube``'s script and ``clock``, retrying at once (backoff 0.01 s)."""
    informer = Informer(
        kube,
        CANARYGATES,
        on_list=lambda items: None,
        on_event=lambda kind, obj: None,
        clock=clock,
        max_silence=max_silence,
        backoff=(0.01, 0.01),
        **kw,
    )
    kube.informer = informer
    return informer


def test_an_open_silent_watch_is_not_contact_nor_a_probe_but_its_events_are():
    clock = Clock()
    seen = {}

    def watch(informer):
        seen["listed"] = informer.age()
        clock.now += 5  # five silent seconds with the watch open
        seen["silent"] = informer.age()
        informer.vouch(clock.now - 1)  # a liveness answer to a request sent a second ago: not fresh data
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
    assert seen == {"listed": 0.0, "silent": 5.0, "vouched": 5.0, "bookmark": 0.0, "event": 0.0}
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


def test_a_silent_watch_is_relisted_not_only_reopened():
    clock = Clock()

    def silent(informer):
        raise read_timeout()
        yield  # pragma: no cover

    kube = ScriptedKube([silent, silent])
    informer = informer_on(kube, clock)
    informer.run()
    # issue 9: a watch silent past the bound may be as blind as a reopened one: list again each time
    assert kube.lists == 3 and informer.silent_watches == 2


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
    informer = informer_on(kube, clock, max_silence=None)
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


@pytest.mark.parametrize(
    "answer, contact",
    [
        (None, True),
        (errors.Forbidden("forbidden"), True),  # an answer all the same
        (errors.Unreachable("timed out"), False),
        (errors.Unreachable("the API server answered 503"), False),
    ],
)
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


class LossyKube:
    """Answers /version after ``latency`` seconds of the fake clock, except the probes numbered in
    ``lost`` (from 1), which time out; records the cache's worst age just before each answer lands
    (the age only grows until then), and stops the probe after ``probes`` of them."""

    def __init__(self, clock: Clock, cache: GateCache, lost, *, latency: float = 0.05, probes: int = 12):
        self.clock, self.cache, self.lost, self.latency, self.probes = clock, cache, set(lost), latency, probes
        self.n = 0
        self.worst = 0.0
        self.liveness: Liveness | None = None

    def request(self, method, path, *, timeout=None, **kw):
        self.n += 1
        if self.n >= self.probes:
            self.liveness.stop()
        lost = self.n in self.lost
        self.clock.now += timeout if lost else self.latency
        self.worst = max(self.worst, self.cache.age())
        if lost:
            raise errors.Unreachable("cannot reach the API server: Read timed out")
        return {"gitVersion": "v1.30.0"}


def run_probes(bound: float, interval: float, timeout: float, lost) -> LossyKube:
    """A quiet, open, healthy watch vouched for by the probe, driven on a fake clock."""
    clock = Clock()
    informer = informer_on(ScriptedKube([]), clock)
    informer.synced, informer._watching, informer._last_contact = True, True, clock.now
    cache = GateCache(fail_closed_after=bound, health=[informer], clock=clock)
    kube = LossyKube(clock, cache, lost)

    def wait(seconds):
        clock.now += seconds

    kube.liveness = Liveness(kube, [informer], interval=interval, timeout=timeout, clock=clock, wait=wait)
    kube.liveness.run()
    return kube


@pytest.mark.parametrize("bound", [1.0, 10.0])
def test_an_answered_version_does_not_keep_a_stalled_watch_fresh(bound):
    """issue 9: a watch that delivers nothing fails closed past the bound, however well /version answers."""
    _, interval, timeout = feed_timing(bound)
    assert run_probes(bound, interval, timeout, lost=()).worst > bound


def test_a_quiet_watch_is_relisted_after_half_the_bound():
    assert feed_timing(1.0) == (0.5, 1 / 3, 1 / 3) and QUIET_WATCH == 90.0
    assert feed_timing(120.0) == (60.0, 40.0, 40.0)
    clock = Clock()
    kube = ScriptedKube([])
    informer = informer_on(kube, clock, max_silence=feed_timing(1.0)[0])
    informer.run()
    assert kube.watches[0]["timeout"] == (0.5, 0.5)  # the read timeout: half the bound of silence
