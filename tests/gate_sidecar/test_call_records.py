"""What the writer records of Flagger's calls and rollbacks in the CanaryGate's status (canarygate.calls).

Covers: a hook's first call and a changed answer queue a status write, repeated answers within the
heartbeat do not (no write per call); the written status carries each hook's last call, the phase of
the Canary as cached (not the event's), and the cause of a rollback from the event stream with the
last failed check, cleared when a new rollout starts. The API is a recording stand-in of Kube.request.
"""

from __future__ import annotations

from sidecar_helpers import make_canary, make_gate

from canarygate import calls
from gate_sidecar.cache import GateCache, StaticHealth
from gate_sidecar.writes import Writer

KEY = ("demo-ns", "demo")


class RecordingKube:
    def __init__(self):
        self.requests: list[tuple[str, str, object]] = []

    def request(self, method, path, *, body=None, **_):
        self.requests.append((method, path, body))
        return {}

    def statuses(self):
        return [b["status"] for m, p, b in self.requests if p.endswith("/status")]


def writer_for(canary_phase="WaitingPromotion"):
    cache = GateCache(health=[StaticHealth()])
    cache.fill(gates=[make_gate()], canaries=[make_canary(phase=canary_phase, weight=0)])
    kube = RecordingKube()
    clock = [1000.0]
    writer = Writer(kube, cache, status_interval=0.0, wallclock=lambda: clock[0])
    return writer, kube, clock


def flush(writer):
    work, _ = writer._take(final=True)
    if work is not None:
        writer._do(work)


def event(message, phase="Progressing"):
    return {
        "name": "demo",
        "namespace": "demo-ns",
        "phase": phase,
        "checksum": "c",
        "metadata": {"eventMessage": message, "eventType": "Warning", "timestamp": "1795000000000"},
    }


def test_calls_are_coalesced_and_written_with_the_canary_phase():
    writer, kube, clock = writer_for()
    writer.called(KEY, "confirm-promotion", 403, "demo-ns/demo")
    flush(writer)
    [status] = kube.statuses()
    assert status["calls"]["confirm-promotion"]["answer"] == 403
    assert status["phase"] == "WaitingPromotion"
    for _ in range(5):  # the same answer within the heartbeat: nothing to write
        clock[0] += 10
        writer.called(KEY, "confirm-promotion", 403, "demo-ns/demo")
    flush(writer)
    assert len(kube.statuses()) == 1
    clock[0] += calls.HEARTBEAT_SECONDS
    writer.called(KEY, "confirm-promotion", 403, "demo-ns/demo")
    flush(writer)
    assert len(kube.statuses()) == 2  # the heartbeat
    writer.called(KEY, "confirm-promotion", 200, "demo-ns/demo")
    flush(writer)
    assert kube.statuses()[-1]["calls"]["confirm-promotion"]["answer"] == 200


def test_an_event_phase_never_overrides_the_canary_phase():
    writer, kube, _ = writer_for(canary_phase="Succeeded")
    writer.note_event(KEY, event("Promotion completed!", phase="Finalising"))
    flush(writer)
    status = kube.statuses()[-1]
    assert status["phase"] == "Succeeded" and status["lastEvent"]["phase"] == "Finalising"


def test_a_rollback_records_its_cause_and_the_failed_check_until_the_next_rollout():
    writer, kube, _ = writer_for(canary_phase="Failed")
    writer.note_event(KEY, event("Halt demo.demo-ns advancement external check rollout failed closed"))
    writer.note_event(KEY, event("Rolling back demo.demo-ns failed checks threshold reached 2"))
    writer.note_event(KEY, event("Canary failed! Scaling down demo.demo-ns"))
    flush(writer)
    failure = kube.statuses()[-1]["failure"]
    assert failure["message"].endswith("threshold reached 2") and "check rollout failed" in failure["check"]
    writer.note_event(KEY, event("New revision detected! Scaling up demo.demo-ns"))
    flush(writer)
    assert kube.statuses()[-1]["failure"] is None
