"""Chaos: every answer the sidecars give through a rollout, checked against the gate state of that moment.

The Flagger simulator drives a rollout through a recording proxy that spreads its calls over two
sidecar replicas (round robin; a replica that does not answer is skipped, as a Service would).
The CanaryGate declares confirm-traffic-increase and confirm-promotion closed and rollback closed;
the test alone writes its live state: one-step approvals of confirm-traffic-increase, one at a time
(the next only once the API shows the previous used), and confirm-promotion opened at the end.
Meanwhile faults are injected on the API server (latency, 500/503/429 bursts on the CanaryGate API,
cut watches; with ``disruptive``: down and hung) and replicas are killed (SIGKILL) and restarted.

The checker records each answer (hook, status, when asked and answered) and the ledger of the test's
writes, and asserts the safety invariant:
* no progress gate answered "go on" while its effective state was closed: confirm-promotion only
  after its opening write began, confirm-traffic-increase only against an approval granted;
* no rollback signalled (rollback is closed throughout);
* no one-step approval passed two steps: the k-th "go on" of confirm-traffic-increase was answered
  after the k-th approval was granted, and never more "go on" than approvals before the next grant.
It prints the answers checked and the faults survived.
"""

from __future__ import annotations

import http.client
import http.server
import itertools
import random
import signal
import threading
import time
from dataclasses import dataclass, field

import pytest

from canarygate import errors
from canarygate.kube.canarygates import write_live_change

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # minutes of rollouts under faults

STEP = "confirm-traffic-increase"
PROGRESS = ("confirm-rollout", "pre-rollout", "rollout", STEP, "confirm-promotion", "post-rollout")


@dataclass
class Answer:
    hook: str
    status: int
    asked: float
    answered: float


@dataclass
class Ledger:
    answers: list[Answer] = field(default_factory=list)
    grants: list[float] = field(default_factory=list)  # when each step approval's write began
    promotion_opened: float = float("inf")  # when the opening write of confirm-promotion began
    faults: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, kind: str) -> None:
        with self.lock:
            self.faults[kind] = self.faults.get(kind, 0) + 1

    def steps_passed(self) -> int:
        """How many calls of the step gate were answered go on."""
        with self.lock:
            return len([a for a in self.answers if a.hook == STEP and a.status == 200])

    def check(self) -> None:
        with self.lock:
            answers = sorted(self.answers, key=lambda a: a.answered)
            grants = list(self.grants)
        assert not [a for a in answers if a.hook == "rollback" and a.status == 200], "a rollback was signalled"
        early = [
            a
            for a in answers
            if a.hook == "confirm-promotion" and a.status == 200 and a.answered < self.promotion_opened
        ]
        assert not early, f"confirm-promotion answered go on while closed: {early}"
        passed = [a for a in answers if a.hook == STEP and a.status == 200]
        assert len(passed) <= len(grants), f"{len(passed)} steps passed on {len(grants)} approvals"
        for k, answer in enumerate(passed):
            assert answer.answered > grants[k], f"step {k + 1} passed before its approval was granted"
        for k in range(1, len(grants)):  # between two grants, at most one approval was ever there
            assert len([a for a in passed if a.answered < grants[k]]) <= k, "an approval passed two steps"


class Proxy(http.server.ThreadingHTTPServer):
    """127.0.0.1 proxy: POST /<hook> to the replicas in turn, recording every answer."""

    daemon_threads = True

    def __init__(self, replicas, ledger: Ledger, duplicate=lambda hook: False):
        self.replicas, self.ledger, self.duplicate = replicas, ledger, duplicate
        self.turn = itertools.count()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        """Stops the proxy and starts again any replica the chaos left killed."""
        self.shutdown()
        self.server_close()
        for replica in self.replicas:
            if replica.proc is None:
                replica.start(wait=False)


def _behind_a_proxy(sidecar, make_sidecar, rollouts, *, count: int, rng: random.Random) -> tuple[Ledger, list, Proxy]:
    """``count`` replicas (``sidecar`` and more made now) behind a :class:`Proxy` that Flagger calls,
    duplicating calls at random; the ledger of their answers."""
    ledger = Ledger()
    replicas = [sidecar] + [make_sidecar() for _ in range(count - 1)]
    proxy = Proxy(replicas, ledger, duplicate=lambda hook: rng.random() < 0.5)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    rollouts.endpoint = proxy.url  # Flagger calls the proxy, which spreads the calls over the replicas
    return ledger, replicas, proxy


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        server: Proxy = self.server  # type: ignore[assignment]
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        hook = self.path.strip("/")
        start = next(server.turn)
        order = [server.replicas[(start + i) % len(server.replicas)] for i in range(len(server.replicas))]
        if server.duplicate(hook):
            # A call delivered twice at once (Flagger retrying after a timeout, a Service sending the
            # retry to the other replica): both answers are answers given; Flagger sees the first.
            results: list = [None] * len(order)
            threads = [
                threading.Thread(target=lambda i=i, r=r: results.__setitem__(i, self._forward(r, hook, data)))
                for i, r in enumerate(order)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(15)
            answered = [r for r in results if r is not None]
            status, body = answered[0] if answered else (503, b'{"message":"no replica answered"}')
        else:
            status, body = 503, b'{"message":"no replica answered"}'
            for replica in order:
                result = self._forward(replica, hook, data)
                if result is not None:
                    status, body = result
                    break
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self, replica, hook: str, data: bytes):
        """One replica's answer (recorded), or None when it does not answer (killed)."""
        server: Proxy = self.server  # type: ignore[assignment]
        asked = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=10)
        try:
            conn.request("POST", self.path, body=data, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            status, body = response.status, response.read()
        except OSError:
            return None
        finally:
            conn.close()
        with server.ledger.lock:
            server.ledger.answers.append(Answer(hook, status, asked, time.monotonic()))
        return status, body


def _kill(replica, stop: threading.Event, rng: random.Random) -> bool:
    """SIGKILLs ``replica`` if it runs and starts it again 0.2-1 s later (sooner once ``stop`` is set);
    whether it ran."""
    if replica.proc is None:
        return False
    replica.proc.send_signal(signal.SIGKILL)
    replica.proc.wait()
    replica.proc = None
    stop.wait(rng.uniform(0.2, 1.0))
    replica.start(wait=False)
    return True


def _retry(what, attempts=50):
    for _ in range(attempts):
        try:
            return what()
        except errors.GateError:
            time.sleep(0.1)
    raise AssertionError("the test's own write kept failing")


def _run(
    apiserver, sidecar, make_sidecar, kube, namespace, rollouts, *, disruptive: bool, seed: int, count=2, max_weight=100
):
    from helpers.tiers import emulator_only

    emulator_only(apiserver, "injects API faults (apiserver.faults) into the emulator; the real tier's run is below")
    rng = random.Random(seed)
    ledger, replicas, proxy = _behind_a_proxy(
        sidecar, make_sidecar, rollouts, count=count, rng=rng
    )  # all --fail-closed-after 1
    rollouts.create(
        confirm_traffic_increase="closed",
        confirm_promotion="closed",
        rollback="closed",
        analysis={
            "interval": "10s",
            "threshold": 1000,
            "maxWeight": max_weight,
            "stepWeight": 5,
            "stepWeightPromotion": 100,
        },
    )
    stop = threading.Event()
    gates_path = f"/apis/piggysec.com/v1alpha1/namespaces/{namespace}/canarygates"

    def chaos():
        kinds = ["latency", "500", "503", "429", "cut", "kill"] + (["down", "hang"] if disruptive else [])
        while not stop.wait(rng.uniform(0.3, 1.0)):
            kind = rng.choice(kinds)
            if kind == "latency":
                apiserver.faults.add_latency(rng.uniform(0.05, 0.4))
                stop.wait(rng.uniform(0.5, 2))
                apiserver.faults.add_latency(0.0)
            elif kind in ("500", "503", "429"):
                apiserver.faults.fail(int(kind), times=rng.randint(1, 8), path_prefix=gates_path)
            elif kind == "cut":
                apiserver.faults.cut_watches()
            elif kind == "kill":
                _kill(rng.choice(replicas), stop, rng)
            elif kind == "down":
                apiserver.faults.down = True
                stop.wait(rng.uniform(1.5, 3))  # past the 1 s bound
                apiserver.faults.down = False
            elif kind == "hang":
                apiserver.faults.hang = True
                stop.wait(rng.uniform(1.5, 3))
                apiserver.faults.hang = False
            ledger.fault(kind)

    chaotic = threading.Thread(target=chaos, daemon=True)
    key = "gate.piggysec.com/" + STEP
    try:
        rollouts.new_revision()
        chaotic.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            phase = _retry(rollouts.phase)
            if phase in ("Succeeded", "Failed"):
                break
            annotations = _retry(rollouts.gate)["metadata"].get("annotations") or {}
            if phase == "WaitingPromotion" and ledger.promotion_opened == float("inf"):
                ledger.promotion_opened = time.monotonic()
                _retry(lambda: rollouts.set_gate("confirm-promotion", "opened"))
            elif key not in annotations and phase == "Progressing":
                at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + f"#{len(ledger.grants)}"
                with ledger.lock:
                    ledger.grants.append(time.monotonic())
                _retry(
                    lambda at=at: write_live_change(
                        kube, namespace, "demo", gate=STEP, state="opened", by="chaos", at=at, scope="step"
                    )
                )
            time.sleep(0.1)
    finally:
        stop.set()
        chaotic.join(10)
        apiserver.faults.reset()
        proxy.close()
    ledger.check()
    passed = ledger.steps_passed()
    print(
        f"\nchaos: {len(ledger.answers)} answers checked, {passed} steps on {len(ledger.grants)} approvals, "
        f"faults survived: {dict(sorted(ledger.faults.items()))}, final phase {rollouts.phase()}"
    )
    assert ledger.answers and sum(ledger.faults.values()) > 0
    assert passed >= 1  # not vacuous: approvals did pass through the faults
    return ledger


def test_chaos_rollout_two_replicas_api_faults_and_kills(apiserver, sidecar, make_sidecar, kube, namespace, rollouts):
    _run(apiserver, sidecar, make_sidecar, kube, namespace, rollouts, disruptive=False, seed=9)


@pytest.mark.timeout(300)
def test_chaos_rollout_three_replicas_api_faults_and_kills(apiserver, sidecar, make_sidecar, kube, namespace, rollouts):
    """Three replicas, every call delivered to all three at once half the time: each approval passes once."""
    _run(apiserver, sidecar, make_sidecar, kube, namespace, rollouts, disruptive=False, seed=11, count=3, max_weight=50)


@pytest.mark.disruptive
def test_chaos_rollout_with_the_api_server_down_and_hung(apiserver, sidecar, make_sidecar, kube, namespace, rollouts):
    _run(apiserver, sidecar, make_sidecar, kube, namespace, rollouts, disruptive=True, seed=10)


# -- the real tier: real Flagger, the real kube-apiserver and etcd killed, paused and restarted ---------------------

#: The real tier's faults: (component, action while the fault lasts, action that ends it).
REAL_FAULTS = {
    "kube-apiserver killed": ("kube-apiserver", "kill", "start"),
    "kube-apiserver paused": ("kube-apiserver", "pause", "resume"),
    "etcd killed": ("etcd", "kill", "start"),
    "etcd paused": ("etcd", "pause", "resume"),
}
REAL_BUDGET = 150.0  # seconds of rollout per test (real Flagger ticks every 10 s at least)


def _retry_for(what, seconds: float):
    """``what()`` until it answers, for up to ``seconds`` (an API server being restarted takes a while)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return what()
        except errors.GateError:
            if time.monotonic() > deadline:
                raise AssertionError("the test's own request kept failing") from None
            time.sleep(0.5)


def _run_real(apiserver, sidecar, make_sidecar, kube, namespace, rollouts, *, count: int, seed: int):
    """One full rollout on real Flagger through ``count`` replicas while the control plane is broken.

    Faults come one at a time, each lasting past the 1 s bound (1.5-2.5 s, plus the restart of a
    killed component), with 2-5 s of calm between them so Flagger's 10 s ticks get through; every
    kind happens at least once (shuffled), then at random. A replica is SIGKILLed and restarted
    between them. Whatever happens, every component is running and resumed afterwards.
    """
    if not getattr(apiserver, "real", False):
        pytest.skip("sandbox: no kube-apiserver or etcd process to kill (the emulator's faults are tested above)")
    rng = random.Random(seed)
    ledger, replicas, proxy = _behind_a_proxy(sidecar, make_sidecar, rollouts, count=count, rng=rng)
    rollouts.create(
        confirm_traffic_increase="closed",
        confirm_promotion="closed",
        rollback="closed",
        analysis={"interval": "10s", "threshold": 1000, "maxWeight": 20, "stepWeight": 10, "stepWeightPromotion": 100},
    )
    stop = threading.Event()
    broken: dict[str, str] = {}  # component -> the action that ends its fault, while it lasts
    kinds = [*REAL_FAULTS, "sidecar killed"]

    def chaos():
        order = rng.sample(kinds, len(kinds))
        while not stop.wait(rng.uniform(2, 5)):
            kind = order.pop(0) if order else rng.choice(kinds)
            if kind == "sidecar killed":
                if _kill(rng.choice(replicas), stop, rng):
                    ledger.fault(kind)
                continue
            component, action, undo = REAL_FAULTS[kind]
            apiserver.faults.act(component, action)
            broken[component] = undo
            stop.wait(rng.uniform(1.5, 2.5))  # past the 1 s bound
            apiserver.faults.act(component, undo)  # a start returns once it serves again
            broken.pop(component, None)
            ledger.fault(kind)

    chaotic = threading.Thread(target=chaos, daemon=True)
    key = "gate.piggysec.com/" + STEP
    started = time.monotonic()
    phase = ""
    try:
        rollouts.new_revision()
        chaotic.start()
        while time.monotonic() - started < REAL_BUDGET:
            phase = _retry_for(rollouts.phase, 60)
            if phase in ("Succeeded", "Failed"):
                break
            annotations = _retry_for(rollouts.gate, 60)["metadata"].get("annotations") or {}
            if phase == "WaitingPromotion" and ledger.promotion_opened == float("inf"):
                ledger.promotion_opened = time.monotonic()
                _retry_for(lambda: rollouts.set_gate("confirm-promotion", "opened"), 60)
            elif key not in annotations and phase == "Progressing":
                at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + f"#{len(ledger.grants)}"
                with ledger.lock:
                    ledger.grants.append(time.monotonic())
                _retry_for(
                    lambda at=at: write_live_change(
                        kube, namespace, "demo", gate=STEP, state="opened", by="chaos", at=at, scope="step"
                    ),
                    60,
                )
            time.sleep(0.5)
    finally:
        stop.set()
        chaotic.join(120)
        for component, undo in list(broken.items()):  # never leave the shared cluster broken
            apiserver.faults.act(component, undo)
        for component in ("etcd", "kube-apiserver"):
            apiserver.faults.act(component, "resume")
            apiserver.faults.act(component, "start")
        proxy.close()
    ledger.check()
    passed = ledger.steps_passed()
    print(
        f"\nchaos (real tier, {count} replicas): {len(ledger.answers)} answers checked, {passed} steps on "
        f"{len(ledger.grants)} approvals, faults survived: {dict(sorted(ledger.faults.items()))}, "
        f"final phase {phase} after {time.monotonic() - started:.0f} s"
    )
    assert set(ledger.faults) >= set(REAL_FAULTS), f"not every fault happened: {ledger.faults}"
    assert passed >= 1  # not vacuous: approvals did pass through the faults
    return ledger


@pytest.mark.disruptive
@pytest.mark.timeout(420)
def test_chaos_real_rollout_two_replicas_control_plane_killed_and_paused(
    apiserver, sidecar, make_sidecar, kube, namespace, rollouts
):
    _run_real(apiserver, sidecar, make_sidecar, kube, namespace, rollouts, count=2, seed=20)


@pytest.mark.disruptive
@pytest.mark.timeout(420)
def test_chaos_real_rollout_three_replicas_control_plane_killed_and_paused(
    apiserver, sidecar, make_sidecar, kube, namespace, rollouts
):
    _run_real(apiserver, sidecar, make_sidecar, kube, namespace, rollouts, count=3, seed=21)
