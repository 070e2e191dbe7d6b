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

import math
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "canarygate_sidecar_decisions",
            "Gate answers given to Flagger, by gate, HTTP answer and where the state came from.",
            ("gate", "answer", "source"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "canarygate_sidecar_request_duration_seconds",
            "Time spent answering a request, by endpoint.",
            ("endpoint",),
            buckets=BUCKETS,
            registry=self.registry,
        )
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
        # Label children are looked up once: the hot path only calls inc()/observe().
        self._decision_children: dict[tuple[str, str, str], object] = {}
        self._latency_children: dict[str, object] = {}

    def watch_cache(self, *, age: Callable[[], float], synced: Callable[[], bool], size: Callable[[], int]) -> None:
        """Read the cache's figures at scrape time."""
        self.cache_age.set_function(lambda: _finite(age()))
        self.synced.set_function(lambda: 1.0 if synced() else 0.0)
        self.watched.set_function(lambda: float(size()))

    def decided(self, gate: str, answer: int, source: str) -> None:
        self.decision_counter(gate, answer, source).inc()

    def decision_counter(self, gate: str, answer: int, source: str):
        """The bound counter child for these labels (callers may keep it and call ``inc()``)."""
        key = (gate, str(answer), source)
        child = self._decision_children.get(key)
        if child is None:
            child = self._decision_children[key] = self.decisions.labels(*key)
        return child

    def observe(self, endpoint: str, seconds: float) -> None:
        child = self._latency_children.get(endpoint)
        if child is None:
            child = self._latency_children[endpoint] = self.latency.labels(endpoint)
        child.observe(seconds)  # type: ignore[attr-defined]

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
