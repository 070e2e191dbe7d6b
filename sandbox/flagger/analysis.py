"""Reading a Canary's analysis spec: Flagger's ``GetAnalysis`` and ``GetAnalysisInterval``.

(``pkg/apis/flagger/v1beta1/canary.go``, v1.44.0.) Pure functions of the Canary's JSON, used by
the tick and by the controller's job clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.flagger import webhooks

DEFAULT_INTERVAL = 60.0
MIN_INTERVAL = 10.0


def analysis_of(canary: Mapping[str, Any]) -> dict[str, Any] | None:
    """``GetAnalysis()``: ``spec.analysis``, else the deprecated ``spec.canaryAnalysis``."""
    spec = canary.get("spec") or {}
    return spec.get("analysis") or spec.get("canaryAnalysis")


def analysis_interval(canary: Mapping[str, Any]) -> float:
    """``GetAnalysisInterval()`` in seconds: default 60 s, at least 10 s."""
    analysis = analysis_of(canary) or {}
    text = analysis.get("interval") or ""
    if not text:
        return DEFAULT_INTERVAL
    try:
        seconds = webhooks.parse_go_duration(text)
    except ValueError:
        return DEFAULT_INTERVAL
    return max(seconds, MIN_INTERVAL)
