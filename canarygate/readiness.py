"""Whether Flagger sees the canary and primary Deployments as ready, read from their status.

Flagger v1.44 calls no hook at all, rollback included, while either is not ready: ``advanceCanary``
returns after ``IsPrimaryReady`` (every active phase) and after ``IsCanaryReady`` (once the rollout
has started: Progressing and later). Both use ``isDeploymentReady`` (pkg/canary/deployment_ready.go):

* ``metadata.generation > status.observedGeneration``: not ready;
* condition ``Progressing`` with reason ``ProgressDeadlineExceeded``: not ready, and Flagger rolls back;
* ``updatedReplicas < spec.replicas``, ``replicas > updatedReplicas``, or ``availableReplicas`` below
  ``updatedReplicas x readyThreshold / 100``: not ready;
* while ``Available`` is ``False`` with reason ``MinimumReplicasUnavailable``, Flagger rolls back once
  its ``lastUpdateTime`` is older than the Canary's ``spec.progressDeadlineSeconds`` (default 600).

Pure: Deployment dicts in, :class:`Readiness` out; ``now`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from canarygate.times import parse_time

PROGRESS_DEADLINE_SECONDS = 600
READY_THRESHOLD = 100


@dataclass(frozen=True)
class Readiness:
    """One Deployment's readiness as Flagger judges it."""

    role: str  # "canary" or "primary"
    name: str
    ready: bool = True
    reason: str = ""
    #: When Flagger rolls back for it (progress deadline), if it stays not ready; None when not known.
    deadline: datetime | None = None
    #: The deadline has passed: Flagger rolls back on its next tick, without calling any hook.
    exceeded: bool = False
    missing: bool = False
    #: The Deployment's pod-template hash (canarygate.rollouts.template_hash); set by the reader.
    template: str = ""


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == kind:
            return cast(Mapping[str, Any], cond)
    return None


def deployment_readiness(
    deployment: Mapping[str, Any] | None,
    *,
    role: str,
    name: str,
    now: datetime,
    deadline_seconds: int = PROGRESS_DEADLINE_SECONDS,
    threshold: int = READY_THRESHOLD,
) -> Readiness:
    """Flagger's ``isDeploymentReady`` for ``deployment`` (None: it does not exist)."""
    if deployment is None:
        return Readiness(role, name, ready=False, reason=f"Deployment {name} does not exist", missing=True)
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if _int(meta.get("generation")) > _int(status.get("observedGeneration")):
        return Readiness(
            role,
            name,
            ready=False,
            reason="waiting for rollout to finish: observed deployment generation less than desired generation",
        )
    progress = _condition(status, "Progressing")
    deadline = None
    exceeded = False
    if progress is not None:
        available = _condition(status, "Available")
        if available and available.get("status") == "False" and available.get("reason") == "MinimumReplicasUnavailable":
            since = parse_time(available.get("lastUpdateTime"))
            if since is not None:
                deadline = since + timedelta(seconds=deadline_seconds)
                exceeded = deadline < now
        if progress.get("reason") == "ProgressDeadlineExceeded":
            return Readiness(
                role,
                name,
                ready=False,
                reason=f"deployment {name!r} exceeded its progress deadline",
                deadline=deadline,
                exceeded=True,
            )
    replicas = spec.get("replicas")
    updated = _int(status.get("updatedReplicas"))
    reason = ""
    if replicas is not None and updated < _int(replicas):
        reason = f"waiting for rollout to finish: {updated} out of {_int(replicas)} new replicas have been updated"
    elif _int(status.get("replicas")) > updated:
        old = _int(status.get("replicas")) - updated
        reason = f"waiting for rollout to finish: {old} old replicas are pending termination"
    else:
        needed = int(updated * (threshold / 100))
        if _int(status.get("availableReplicas")) < needed:
            reason = (
                f"waiting for rollout to finish: {_int(status.get('availableReplicas'))} of {needed} "
                f"(readyThreshold {threshold}%) updated replicas are available"
            )
    if not reason:
        return Readiness(role, name)
    return Readiness(role, name, ready=False, reason=reason, deadline=deadline, exceeded=exceeded)


def checked_now(role: str, phase: str) -> bool:
    """Whether Flagger checks this workload's readiness in ``phase`` (``advanceCanary``): the primary in
    every active phase, the canary once the rollout has started (not while Waiting, scaled to zero)."""
    if role == "primary":
        return phase in ("Waiting", "Progressing", "WaitingPromotion", "Promoting", "Finalising")
    return phase in ("Progressing", "WaitingPromotion", "Promoting", "Finalising")


def blocking(readiness: list[Readiness], phase: str) -> list[Readiness]:
    """The not-ready workloads that stop Flagger from calling any hook in ``phase``.

    A Deployment that cannot be found is left out: the Canary may be arranged by hand, and what
    Flagger does then is told by its own events, not guessed here."""
    return [r for r in readiness if not r.ready and not r.missing and checked_now(r.role, phase)]


def thresholds(canary_raw: Mapping[str, Any]) -> tuple[int, int, int]:
    """(progressDeadlineSeconds, canaryReadyThreshold, primaryReadyThreshold): Flagger's getters
    (``GetProgressDeadlineSeconds``...) take a value that is set, zero included, else the default."""
    spec = canary_raw.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}

    def pick(source: Mapping[str, Any], key: str, default: int) -> int:
        return _int(source[key], default) if source.get(key) is not None else default

    return (
        pick(spec, "progressDeadlineSeconds", PROGRESS_DEADLINE_SECONDS),
        pick(analysis, "canaryReadyThreshold", READY_THRESHOLD),
        pick(analysis, "primaryReadyThreshold", READY_THRESHOLD),
    )
