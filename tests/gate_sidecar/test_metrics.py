"""The webhook path's two figures (decisions, request duration), kept per thread without a lock:
scraped, they read as prometheus_client's own Counter and Histogram fed the same calls would."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gate_sidecar.metrics import BUCKETS, Metrics

SECONDS = [0.0, 0.0001, 0.0005, 0.0006, 0.001, 0.003, 0.01, 0.0100001, 0.3, 1.0, 1.5, 30.0]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition but the ``_created`` ones, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def reference(calls: list[tuple[str, str, int, str, float]]) -> dict:
    """The samples prometheus_client's own Counter and Histogram give for ``calls``."""
    registry = CollectorRegistry()
    decisions = Counter("canarygate_sidecar_decisions", "d", ("gate", "answer", "source"), registry=registry)
    latency = Histogram(
        "canarygate_sidecar_request_duration_seconds", "l", ("endpoint",), buckets=BUCKETS, registry=registry
    )
    for endpoint, gate, answer, source, seconds in calls:
        decisions.labels(gate, str(answer), source).inc()
        latency.labels(endpoint).observe(seconds)
    return samples(generate_latest(registry).decode())


def ours(metrics: Metrics) -> dict:
    got = samples(metrics.exposition()[0].decode())
    return {
        k: v for k, v in got.items() if k[0].startswith(("canarygate_sidecar_decisions", "canarygate_sidecar_request"))
    }


def test_scraped_as_prometheus_client_counts_them():
    calls = [
        ("gate" if i % 3 else "event", "confirm-promotion" if i % 2 else "rollout", 200 if i % 4 else 403, "live", s)
        for i, s in enumerate(SECONDS)
    ]
    metrics = Metrics()
    for endpoint, gate, answer, source, seconds in calls:
        metrics.decided(gate, answer, source)
        metrics.observe(endpoint, seconds)
    assert ours(metrics) == reference(calls)
    text = metrics.exposition()[0].decode()
    assert "# TYPE canarygate_sidecar_decisions_total counter" in text
    assert "# TYPE canarygate_sidecar_request_duration_seconds histogram" in text
    assert 'canarygate_sidecar_request_duration_seconds_bucket{endpoint="gate",le="0.0005"} 2.0' in text


def test_nothing_counted_yet_exposes_the_families_without_samples():
    text = Metrics().exposition()[0].decode()
    assert "# HELP canarygate_sidecar_decisions_total" in text
    assert "# HELP canarygate_sidecar_request_duration_seconds" in text
    assert "canarygate_sidecar_decisions_total{" not in text


def test_no_count_lost_across_threads_and_ended_threads_keep_theirs():
    metrics = Metrics()
    threads, per_thread = 8, 5000
    start = threading.Barrier(threads + 1)
    scraped: list[dict] = []

    def work() -> None:
        start.wait()
        for i in range(per_thread):
            metrics.decided("confirm-promotion", 200 if i % 2 else 403, "live")
            metrics.observe("gate", 0.002)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    start.wait()
    while any(t.is_alive() for t in workers):
        scraped.append(ours(metrics))  # scraping while they count must not fail
    for t in workers:
        t.join()
    got = ours(metrics)
    total = threads * per_thread
    key = ("canarygate_sidecar_decisions_total", (("answer", "200"), ("gate", "confirm-promotion"), ("source", "live")))
    duration = "canarygate_sidecar_request_duration_seconds"
    gate = (("endpoint", "gate"),)
    assert got[key] == total / 2
    assert got[(f"{duration}_count", gate)] == total
    assert got[(f"{duration}_bucket", (*gate, ("le", "0.001")))] == 0
    assert got[(f"{duration}_bucket", (*gate, ("le", "0.0025")))] == total
    assert abs(got[(f"{duration}_sum", gate)] - total * 0.002) < 1e-6
    counts = [s.get(key, 0) for s in scraped]
    assert counts == sorted(counts), "a counter read while counting went down"
