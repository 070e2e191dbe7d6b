"""Leader election on a coordination.k8s.io/v1 Lease (gate_sidecar.leader), against the API server.

The API is the sandbox's emulator, or the real cluster with GATE_E2E_KUBECONFIG; time is a shared
fake clock so lease expiry is exact. Covers: one leader of several candidates; the others take
over only after the lease time without renewal, and the old leader has stopped leading before
that (never two at once, checked at every tick of random schedules with API errors); a released
Lease is taken at the next try; a leader whose renewals fail stops within the renew deadline even
if its thread is stuck.
"""

from __future__ import annotations

import random

import pytest

from canarygate.kube.client import Kube
from gate_sidecar.leader import LEASES, LeaderElector

LEASE = 6.0


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kube(api_client, crds):
    return Kube(api_client, timeout=5.0)


def electors(kube, namespace, clock, count=2, name="reconciler"):
    events: list[tuple[str, str]] = []
    made = []
    for i in range(count):
        ident = f"replica-{i}"
        made.append(
            LeaderElector(
                kube,
                namespace,
                name,
                ident,
                lease_seconds=LEASE,
                clock=clock,
                on_start=lambda i=ident: events.append(("start", i)),
                on_stop=lambda i=ident: events.append(("stop", i)),
            )
        )
    return made, events


def holder(kube, namespace, name="reconciler"):
    return kube.request("GET", LEASES.path(namespace, name))["spec"].get("holderIdentity")


def test_one_leader_then_takeover_within_the_lease_time(kube, namespace):
    clock = Clock()
    (a, b), events = electors(kube, namespace, clock)
    assert a.step() and not b.step()
    assert holder(kube, namespace) == "replica-0"
    for _ in range(5):  # a renews: b never takes over, however long
        clock.now += LEASE / 2
        assert a.step() and not b.step()
    # a dies (stops renewing). b takes over once the record has been unchanged for the lease time.
    died = clock.now
    while not b.step():
        clock.now += 0.5
        assert not (a.leading and b.leading)
        assert clock.now - died <= LEASE + 1.0, "b did not take over within the lease time"
    assert not a.leading  # stopped at its renew deadline, before b could take over
    assert holder(kube, namespace) == "replica-1"
    assert events == [("start", "replica-0"), ("start", "replica-1")]
    lease = kube.request("GET", LEASES.path(namespace, "reconciler"))["spec"]
    assert lease["leaseTransitions"] == 1 and lease["leaseDurationSeconds"] == int(LEASE)


def test_a_released_lease_is_taken_at_the_next_try(kube, namespace):
    clock = Clock()
    (a, b), events = electors(kube, namespace, clock)
    assert a.step() and not b.step()
    a.stop()
    assert ("stop", "replica-0") in events and not a.leading
    assert b.step() and holder(kube, namespace) == "replica-1"


def test_a_leader_whose_renewals_fail_stops_within_the_renew_deadline(kube, namespace, apiserver):
    from helpers.tiers import emulator_only

    emulator_only(apiserver, "injects 500 answers (apiserver.faults)")
    clock = Clock()
    (a, b), _ = electors(kube, namespace, clock)
    assert a.step()
    apiserver.faults.fail(500, times=1000, path_prefix=f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases")
    try:
        clock.now += a.renew_deadline - 0.1
        assert a.step() and a.leading  # a failed renewal within the deadline: still leading
        clock.now += 0.2
        assert not a.leading  # the deadline passed: no longer leading, without another round
    finally:
        apiserver.faults.reset()
    clock.now += LEASE
    assert not b.step()  # first sight of the record starts b's own lease timer
    clock.now += LEASE
    assert b.step() and not a.leading


def test_random_schedules_never_have_two_leaders(kube, namespace, apiserver):
    """Three candidates step in random order, some die and come back, the API fails now and then:
    at every instant at most one believes it leads."""
    from helpers.tiers import emulator_only

    emulator_only(apiserver, "injects 500/503/429 answers (apiserver.faults)")
    rng = random.Random(9)
    clock = Clock()
    candidates, _ = electors(kube, namespace, clock, count=3)
    alive = [True] * 3
    leaders_seen = set()
    for tick in range(150):
        if rng.random() < 0.1:
            apiserver.faults.fail(
                rng.choice([500, 503, 429]),
                times=rng.randint(1, 4),
                path_prefix=f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases",
            )
        i = rng.randrange(3)
        if rng.random() < 0.05:
            alive[i] = not alive[i]
        if alive[i]:
            candidates[i].step()
        clock.now += rng.uniform(0, 1.5)
        leading = [c.identity for c in candidates if c.leading]
        assert len(leading) <= 1, (tick, leading)
        leaders_seen.update(leading)
    apiserver.faults.reset()
    assert len(leaders_seen) >= 2  # the schedule did hand the Lease over
