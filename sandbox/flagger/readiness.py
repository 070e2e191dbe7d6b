"""Workload readiness from a Deployment's status, as Flagger's ``isDeploymentReady`` reads it.

``pkg/canary/deployment_ready.go`` (v1.44.0), for the primary (``IsPrimaryReady``, threshold
``analysis.primaryReadyThreshold``, default 100) and the canary (``IsCanaryReady``,
``analysis.canaryReadyThreshold``, default 100), both with the Canary's
``spec.progressDeadlineSeconds`` (default 600). In this order:

1. ``metadata.generation > status.observedGeneration``: not ready, retriable ("observed
   deployment generation less than desired generation").
2. If a ``Progressing`` condition exists and ``Available`` is ``False`` with reason
   ``MinimumReplicasUnavailable`` whose ``lastUpdateTime`` is older than the deadline, any
   not-ready answer below is *not* retriable (Flagger rolls back).
3. ``Progressing`` reason ``ProgressDeadlineExceeded``: not ready, not retriable.
4. ``updatedReplicas < spec.replicas``; ``replicas > updatedReplicas``;
   ``availableReplicas < int(updatedReplicas x threshold / 100)`` (float32, as Go): not ready.

A Deployment scaled to zero is ready (every count is 0). Flagger's extra "primary deployment is
scaled to zero" check compares two pointers (``primary.Spec.Replicas == int32p(0)``), so it
never fires: it is not reproduced.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.apiserver.status import not_found_message  # NB: the text Flagger gets from the API server

PROGRESS_DEADLINE_SECONDS = 600
READY_THRESHOLD = 100


@dataclass(frozen=True)
class Readiness:
    """A workload's readiness as Flagger reports it.

    ``message`` is the reason when not ready, without the ``<name>.<ns> not ready:`` prefix
    Flagger adds (``wrapped=False``: the message is the whole error, as a failed GET is).
    ``retriable=False`` means the progress deadline is exceeded: Flagger rolls back.
    """

    ready: bool = True
    retriable: bool = True
    message: str = ""
    wrapped: bool = True


READY = Readiness()
#: What ``isDeploymentReady`` says of a Deployment just created or scaled up from zero.
NOT_READY = Readiness(False, True, "waiting for rollout to finish: 0 out of 1 new replicas have been updated")


def _f32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def _time(text: Any) -> datetime:
    """A ``metav1.Time`` from JSON; missing or unreadable is Go's zero time (long past)."""
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def deployment_readiness(
    deployment: Mapping[str, Any],
    *,
    now: datetime,
    deadline_seconds: float = PROGRESS_DEADLINE_SECONDS,
    threshold: int = READY_THRESHOLD,
) -> Readiness:
    """``isDeploymentReady`` over a Deployment as the API returns it (JSON)."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return Readiness(
            False, True, "waiting for rollout to finish: observed deployment generation less than desired generation"
        )
    retriable = True
    progress = _condition(status, "Progressing")
    if progress is not None:
        available = _condition(status, "Available")
        if (
            available is not None
            and available.get("status") == "False"
            and available.get("reason") == "MinimumReplicasUnavailable"
        ):
            since = _time(available.get("lastUpdateTime"))
            retriable = not (since + timedelta(seconds=deadline_seconds) < now)
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available_replicas = int(status.get("availableReplicas") or 0)
    wanted = int(_f32(_f32(updated) * _f32(_f32(threshold) / _f32(100))))
    if progress is not None and progress.get("reason") == "ProgressDeadlineExceeded":
        return Readiness(False, False, f'deployment "{meta.get("name", "")}" exceeded its progress deadline')
    if spec.get("replicas") is not None and updated < int(spec["replicas"]):
        return Readiness(
            False,
            retriable,
            f"waiting for rollout to finish: {updated} out of {int(spec['replicas'])} new replicas have been updated",
        )
    if replicas > updated:
        return Readiness(
            False,
            retriable,
            f"waiting for rollout to finish: {replicas - updated} old replicas are pending termination",
        )
    if available_replicas < wanted:
        return Readiness(
            False,
            retriable,
            f"waiting for rollout to finish: {available_replicas} of "
            f"{wanted} (readyThreshold {threshold}%) updated replicas "
            "are available",
        )
    return READY


def missing(name: str, namespace: str) -> Readiness:
    """``Is*Ready`` when the Deployment cannot be read: retriable, not wrapped."""
    return Readiness(
        False,
        True,
        f"deployment {name}.{namespace} get query error: " + not_found_message("deployments.apps", name),
        wrapped=False,
    )


def thresholds(canary: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(progressDeadlineSeconds, primaryReadyThreshold, canaryReadyThreshold)`` of a Canary."""
    spec = canary.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    deadline = spec.get("progressDeadlineSeconds")
    primary = analysis.get("primaryReadyThreshold")
    canary_threshold = analysis.get("canaryReadyThreshold")
    return (
        PROGRESS_DEADLINE_SECONDS if deadline is None else int(deadline),
        READY_THRESHOLD if primary is None else int(primary),
        READY_THRESHOLD if canary_threshold is None else int(canary_threshold),
    )
