"""The sandbox's simulated metric checks, with the failure in Flagger's words.

The sandbox has no metric provider: every check passes unless the Canary carries the annotation
``sandbox.flagger.app/metrics: fail``. Then the tick records the warning Flagger's
``runBuiltinMetricChecks``/``runMetricChecks`` (``pkg/controller/scheduler_metrics.go``) would,
for the first of ``analysis.metrics``, and counts a failed check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.flagger.analysis import analysis_of
from sandbox.flagger.records import WARNING

METRICS_ANNOTATION = "sandbox.flagger.app/metrics"


@dataclass(frozen=True)
class MetricFailure:
    """A failed metric check: the event type and message Flagger records for it."""

    type: str
    message: str


def simulated_metrics(canary: Mapping[str, Any]) -> MetricFailure | None:
    """The sandbox's metric checks: all pass unless the Canary is annotated
    ``sandbox.flagger.app/metrics: fail``. The failure names the first of
    ``analysis.metrics`` in Flagger's words (a ``request-success-rate`` of 0 % below 99 %
    when the Canary lists no metrics)."""
    annotations = (canary.get("metadata") or {}).get("annotations") or {}
    if (annotations.get(METRICS_ANNOTATION) or "").strip().lower() != "fail":
        return None
    meta = canary.get("metadata") or {}
    who = f"{meta.get('name')}.{meta.get('namespace')}"
    metrics = (analysis_of(canary) or {}).get("metrics") or [{"name": "request-success-rate", "threshold": 99}]
    metric = metrics[0]
    name = metric.get("name", "")
    rng = metric.get("thresholdRange") or {}
    if name == "request-success-rate":
        bound = rng.get("min", metric.get("threshold", 99))
        return MetricFailure(WARNING, f"Halt {who} advancement success rate 0.00% < {_go_num(bound)}%")
    if name == "request-duration":
        bound = rng.get("max", metric.get("threshold", 500))
        return MetricFailure(
            WARNING, f"Halt {who} advancement request duration {_go_ms(float(bound) * 2)} > {_go_ms(bound)}"
        )
    if rng.get("max") is not None:
        bound = float(rng["max"])
        return MetricFailure(WARNING, f"Halt {who} advancement {name} {bound + 1:.2f} > {_go_num(bound)}")
    if rng.get("min") is not None:
        bound = float(rng["min"])
        return MetricFailure(WARNING, f"Halt {who} advancement {name} {bound - 1:.2f} < {_go_num(bound)}")
    bound = float(metric.get("threshold", 0))
    return MetricFailure(WARNING, f"Halt {who} advancement {name} {bound + 1:.2f} > {_go_num(bound)}")


def _go_num(value: Any) -> str:
    """Go's ``%v`` of a float64 for the usual thresholds (``99``, ``0.5``)."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _go_ms(milliseconds: Any) -> str:
    """Go's ``time.Duration`` text for a whole number of milliseconds (``500ms``, ``1.5s``)."""
    ms = float(milliseconds)
    if ms < 1000:
        return f"{_go_num(ms)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{_go_num(seconds)}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{_go_num(rest)}s"
