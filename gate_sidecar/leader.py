"""Leader election over a coordination.k8s.io/v1 Lease, so exactly one replica reconciles at a time.

The protocol is client-go's (``leaderelection``), written over our own client:

* A candidate reads the Lease. It takes it when there is none (create), when it is released (no
  holder), or when the record has not changed for ``lease_seconds`` as observed on the candidate's
  own clock (never the holder's ``renewTime``: clocks of two nodes need not agree). Every write is
  an update carrying the resourceVersion read, so of two candidates at most one wins (409 for the
  other).
* The leader renews every ``renew_every``; it stops leading (``on_stop``) as soon as it has not
  renewed for ``renew_deadline`` (< ``lease_seconds``), so it has stopped before any other replica
  may take over: at most one leads at any time, assuming no clock runs more than
  ``lease_seconds - renew_deadline`` fast over a lease period.
* On shutdown the leader releases the Lease (no holder, duration 1 s), so the other takes over at
  its next try rather than after the lease time.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

from canarygate import errors
from canarygate.kube.client import Kube
from canarygate.kube.resources import Resource
from gate_sidecar.worker import Worker

log = logging.getLogger(__name__)

LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
LEASE_SECONDS = 15.0


def micro_time(ts: float) -> str:
    """A MicroTime as the API server writes it (RFC 3339 with microseconds, UTC)."""
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector(Worker):
    """Campaigns for the Lease ``namespace/name`` as ``identity``; ``on_start``/``on_stop`` are called
    from its thread when this replica starts and stops leading. :attr:`leading` is safe to read
    from any thread."""

    thread_name = "leader-election"

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_seconds: float = LEASE_SECONDS,
        on_start: Callable[[], None] = lambda: None,
        on_stop: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
    ):
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.lease_seconds = lease_seconds
        self.renew_deadline = lease_seconds * 2 / 3
        self.retry_every = lease_seconds / 5
        self.on_start, self.on_stop = on_start, on_stop
        self.clock, self.wallclock = clock, wallclock
        self._leading = False
        self._renewed = float("-inf")  # when this replica last wrote the Lease as holder (clock)
        #: The record last seen (holder, renewTime, transitions) and when it was first seen so (clock).
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = float("-inf")
        super().__init__()

    @property
    def leading(self) -> bool:
        """Leading, and renewed within ``renew_deadline``: false as soon as the deadline passes, even
        while this replica's own thread is stuck in a request."""
        return self._leading and self.clock() - self._renewed < self.renew_deadline

    # -- one round (tests call it directly) -----------------------------------------------------------
    def step(self) -> bool:
        """Acquire or renew once, then start or stop leading accordingly; whether leading now."""
        now = self.clock()
        ok = self._try()
        if ok:
            self._renewed = now
        if ok and not self._leading:
            self._leading = True
            log.info(
                "leading: this replica (%s) holds Lease %s/%s and reconciles", self.identity, self.namespace, self.name
            )
            self.on_start()
        elif self._leading and not ok and self.clock() - self._renewed >= self.renew_deadline:
            self._lose(f"could not renew the Lease for {self.renew_deadline:g}s")
        return self.leading

    def _lose(self, why: str) -> None:
        self._leading = False
        log.warning("no longer leading (%s): reconciling stops here", why)
        self.on_stop()

    def _try(self) -> bool:
        path = LEASES.path(self.namespace, self.name)
        try:
            lease = self.kube.request("GET", path, resource=LEASES, name=self.name, timeout=self.retry_every)
        except errors.NotFound:
            return self._create()
        except errors.GateError as e:
            log.warning("cannot read Lease %s/%s: %s", self.namespace, self.name, e)
            return False
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"), spec.get("leaseDurationSeconds"))
        now = self.clock()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
        if holder and holder != self.identity and now - self._observed_at < duration:
            if self._leading:  # someone took it (we were too slow to renew): stop at once
                self._lose(f"Lease {self.namespace}/{self.name} is held by {holder}")
            return False
        wall = micro_time(self.wallclock())
        new_spec = dict(
            spec, holderIdentity=self.identity, leaseDurationSeconds=int(self.lease_seconds), renewTime=wall
        )
        if holder != self.identity:
            new_spec["acquireTime"] = wall
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
        body = dict(lease, spec=new_spec)
        try:
            self.kube.request("PUT", path, body=body, resource=LEASES, name=self.name, timeout=self.retry_every)
        except errors.Conflict:
            return False  # another replica wrote first: read again next round
        except errors.GateError as e:
            log.warning("cannot write Lease %s/%s: %s", self.namespace, self.name, e)
            return False
        return True

    def _create(self) -> bool:
        wall = micro_time(self.wallclock())
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_seconds),
                "acquireTime": wall,
                "renewTime": wall,
                "leaseTransitions": 0,
            },
        }
        try:
            self.kube.request(
                "POST",
                LEASES.path(self.namespace),
                body=body,
                resource=LEASES,
                name=self.name,
                timeout=self.retry_every,
            )
        except errors.GateError as e:  # NB: 409 AlreadyExists: another replica created it first
            log.info("Lease %s/%s not created: %s", self.namespace, self.name, e)
            return False
        return True

    def release(self) -> None:
        """Give the Lease up (only if still ours), so another replica takes over at its next try."""
        if not self._leading:
            return
        self._lose("shutting down")
        path = LEASES.path(self.namespace, self.name)
        try:
            lease = self.kube.request("GET", path, resource=LEASES, name=self.name)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            spec = dict(spec, holderIdentity=None, leaseDurationSeconds=1, renewTime=micro_time(self.wallclock()))
            self.kube.request("PUT", path, body=dict(lease, spec=spec), resource=LEASES, name=self.name)
        except errors.GateError as e:
            log.warning("cannot release Lease %s/%s: %s", self.namespace, self.name, e)

    # -- thread -------------------------------------------------------------------------------------
    def run(self) -> None:
        while not self.stopping:
            try:
                self.step()
            except Exception:  # NB: a bug here must not leave a replica leading unrenewed
                log.exception("leader election round failed")
                if self._leading and not self.leading:
                    self._lose("errors")
            self.sleep(self.retry_every)

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        self.release()
