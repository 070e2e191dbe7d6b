"""Prometheus metrics, on a registry of the app's own (no module-level state).

* ``canarygate_sidecar_decisions_total{gate, answer, source}``: every gate answer: ``answer`` is the
  HTTP status (200, 403, 503), ``source`` live, declared, default, invalid (the gate's live annotation
  cannot be read: 503) or unavailable (not synced, cut off, namespace not watched, CanaryGate unreadable
  or ambiguous: 503).
* ``canarygate_sidecar_request_duration_seconds{endpoint}``: time spent in the app per request.
* ``canarygate_sidecar_cache_age_seconds``: seconds since bytes last arrived from the API server for the
  stalest feed (watch data, or the liveness probe's answer while its watch is open); past
  ``--fail-closed-after`` the sidecar fails closed.
* ``canarygate_sidecar_cache_synced``: 1 once both feeds have listed.
* ``canarygate_sidecar_canarygates_watched``: CanaryGates in the cache.
* ``canarygate_sidecar_writes_total{kind, result}``: the background writes (status, consume, bind,
  expire, event; with ``--reconcile`` also ``canary``: created, configured, unchanged, retry, failed)
  and how they went.
* ``canarygate_sidecar_notifications_total{receiver, result}``: notifications (gate_sidecar.notify) by
  receiver (``slack``, ``webhook:NAME``) and result: sent, retry, dropped_queue_full, dropped_refused,
  dropped_retries; ``canarygate_sidecar_notifications_queued``: deliveries waiting.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.utils import floatToGoString

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
DECISIONS = "canarygate_sidecar_decisions"
DECISIONS_HELP = "Gate answers given to Flagger, by gate, HTTP answer and where the state came from."
LATENCY = "canarygate_sidecar_request_duration_seconds"
LATENCY_HELP = "Time spent answering a request, by endpoint."


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry(auto_describe=True)
        # NB: the two figures of every webhook call are kept per thread, without a lock (_Tallies);
        # prometheus_client's own Counter and Histogram take a lock per figure: a quarter of the
        # app's time per call (about 6 of 24 µs, benchmarks/sidecar.py's cache and bodies).
        self._decisions = _Tallies()
        self._latency = _Tallies()
        self.registry.register(_HotPathCollector(self._decisions, self._latency))
        self.cache_age = Gauge(
            "canarygate_sidecar_cache_age_seconds",
            "Seconds since anything arrived from the API server for the stalest feed (watch data or liveness probe).",
            registry=self.registry,
        )
        self.synced = Gauge(
            "canarygate_sidecar_cache_synced",
            "1 once CanaryGates and Canaries have been listed.",
            registry=self.registry,
        )
        self.watched = Gauge(
            "canarygate_sidecar_canarygates_watched", "CanaryGates in the sidecar's cache.", registry=self.registry
        )
        self.writes = Counter(
            "canarygate_sidecar_writes",
            "Writes made in the background, by kind (status, consume, bind, expire, event, canary) and result.",
            ("kind", "result"),
            registry=self.registry,
        )
        self.reads = Counter(
            "canarygate_sidecar_webhook_reads",
            "API reads made while answering a webhook, by kind and result: only kind revision (the target "
            "Deployment and the ConfigMaps and Secrets it references, one GET each), for a confirm-rollout "
            "approval while the revision waits (rare: about once per approval).",
            ("kind", "result"),
            registry=self.registry,
        )
        self.notifications = Counter(
            "canarygate_sidecar_notifications",
            "Notifications by receiver (slack, webhook:NAME) and result (sent, retry, dropped_*).",
            ("receiver", "result"),
            registry=self.registry,
        )
        self.notifications_queued = Gauge(
            "canarygate_sidecar_notifications_queued", "Notification deliveries waiting.", registry=self.registry
        )

    def watch_cache(self, *, age: Callable[[], float], synced: Callable[[], bool], size: Callable[[], int]) -> None:
        """Read the cache's figures at scrape time."""
        self.cache_age.set_function(lambda: _finite(age()))
        self.synced.set_function(lambda: 1.0 if synced() else 0.0)
        self.watched.set_function(lambda: float(size()))

    def decided(self, gate: str, answer: int, source: str) -> None:
        self.count_decision(decision_labels(gate, answer, source))

    def count_decision(self, labels: tuple[str, str, str]) -> None:
        """Count one answer with these labels (:func:`decision_labels`; the webhook path keeps them)."""
        tally = self._decisions.mine()
        tally[labels] = tally.get(labels, 0) + 1

    def observe(self, endpoint: str, seconds: float) -> None:
        tally = self._latency.mine()
        row = tally.get(endpoint)
        if row is None:
            row = tally[endpoint] = [0] * (len(BUCKETS) + 1) + [0.0]
        row[bisect.bisect_left(BUCKETS, seconds)] += 1  # NB: bucket le=b counts seconds <= b
        row[-1] += seconds

    def wrote(self, kind: str, result: str) -> None:
        self.writes.labels(kind, result).inc()

    def notified(self, receiver: str, result: str) -> None:
        self.notifications.labels(receiver, result).inc()

    def notify_queued(self, count: int) -> None:
        self.notifications_queued.set(count)

    def read(self, kind: str, result: str) -> None:
        self.reads.labels(kind, result).inc()

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -1.0


def decision_labels(gate: str, answer: int, source: str) -> tuple[str, str, str]:
    return (gate, str(answer), source)


class _Tallies:
    """Figures kept per thread and summed when scraped: adding one takes no lock.

    Each thread adds only to its own dict (:meth:`mine`), so no addition is lost; a scrape copies
    each thread's dict (one C-level copy, atomic under the GIL) and sums them. A histogram row's
    buckets and sum may be a call apart in one scrape, as with prometheus_client's own. The threads
    are the servers' fixed pools, so the dicts stay few; a thread's figures outlive it (counters
    never go down). No ``_created`` samples are kept (prometheus_client's own add one per label set).
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tallies: list[dict[Any, Any]] = []

    def mine(self) -> dict[Any, Any]:
        tally = getattr(self._local, "tally", None)
        if tally is None:
            tally = self._local.tally = {}
            with self._lock:
                self._tallies.append(tally)
        return tally

    def snapshot(self) -> list[dict[Any, Any]]:
        with self._lock:
            tallies = list(self._tallies)
        return [tally.copy() for tally in tallies]


class _HotPathCollector:
    """``canarygate_sidecar_decisions_total`` and ``canarygate_sidecar_request_duration_seconds`` from
    the tallies, in the form prometheus_client's Counter and Histogram give them (without ``_created``)."""

    def __init__(self, decisions: _Tallies, latency: _Tallies) -> None:
        self.decisions = decisions
        self.latency = latency

    def describe(self) -> list[Metric]:
        return list(self._families())

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily(DECISIONS, DECISIONS_HELP, labels=("gate", "answer", "source")),
            HistogramMetricFamily(LATENCY, LATENCY_HELP, labels=("endpoint",)),
        )

    def collect(self) -> Iterator[Metric]:
        decisions, latency = self._families()
        counts: dict[tuple[str, str, str], int] = {}
        for tally in self.decisions.snapshot():
            for labels, count in tally.items():
                counts[labels] = counts.get(labels, 0) + count
        for labels, count in sorted(counts.items()):
            decisions.add_metric(labels, count)
        rows: dict[str, list[float]] = {}
        for tally in self.latency.snapshot():
            for endpoint, row in tally.items():
                total = rows.setdefault(endpoint, [0] * len(row))
                for i, value in enumerate(list(row)):
                    total[i] += value
        for endpoint, row in sorted(rows.items()):
            buckets, cumulative = [], 0.0
            for bound, count in zip((*BUCKETS, math.inf), row[:-1], strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            latency.add_metric([endpoint], buckets, row[-1])
        yield decisions
        yield latency
