"""A Canary's status as Flagger shapes it: phases, the ``Promoted`` condition, the first status.

Flagger v1.44.0 ``pkg/apis/flagger/v1beta1/status.go`` (the phase enum), ``pkg/canary/status.go``
(``MakeStatusConditions``) and ``syncHandler``'s initial status (``pkg/controller/controller.go``).
The tick's status *writes* (``SyncStatus``, ``SetStatusPhase``) are
:class:`sandbox.flagger.context.TickContext`'s, because they write at a moment of the tick.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Phases (CRD enum plus "").
INITIALIZING = "Initializing"
INITIALIZED = "Initialized"
WAITING = "Waiting"
PROGRESSING = "Progressing"
WAITING_PROMOTION = "WaitingPromotion"
PROMOTING = "Promoting"
FINALISING = "Finalising"
SUCCEEDED = "Succeeded"
FAILED = "Failed"


def rfc3339(now: datetime) -> str:
    """Kubernetes' ``metav1.Time`` form: UTC, seconds, ``Z``."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def promoted_condition(
    conditions: list[Mapping[str, Any]] | None, phase: str, kind: str, now: datetime
) -> list[dict[str, Any]] | None:
    """``MakeStatusConditions``: the new ``Promoted`` condition list, or None when unchanged.

    Unchanged when status and reason are equal; ``lastTransitionTime`` is kept when only
    the reason changes.
    """
    status, message = {
        INITIALIZING: ("Unknown", f"New {kind} detected, starting initialization."),
        INITIALIZED: ("True", f"{kind} initialization completed."),
        WAITING: ("Unknown", "Waiting for approval."),
        WAITING_PROMOTION: ("Unknown", "Waiting for approval."),
        PROGRESSING: ("Unknown", "New revision detected, progressing canary analysis."),
        PROMOTING: ("Unknown", "Canary analysis completed, starting primary rolling update."),
        FINALISING: ("Unknown", "Canary analysis completed, routing all traffic to primary."),
        SUCCEEDED: ("True", "Canary analysis completed successfully, promotion finished."),
        FAILED: ("False", f"Canary analysis failed, {kind} scaled to zero."),
    }.get(phase, ("Unknown", f"New {kind} detected, starting initialization."))
    current = next((c for c in conditions or [] if c.get("type") == "Promoted"), None)
    stamp = rfc3339(now)
    new = {
        "type": "Promoted",
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": phase,
        "message": message,
    }
    if current and current.get("status") == status and current.get("reason") == phase:
        return None
    if current and current.get("status") == status and current.get("lastTransitionTime"):
        new["lastTransitionTime"] = current["lastTransitionTime"]
    return [new]


def initializing_status(canary: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """What Flagger's ``syncHandler`` writes for a Canary without conditions, else None."""
    status = copy.deepcopy(canary.get("status") or {})
    if status.get("conditions"):
        return None
    kind = ((canary.get("spec") or {}).get("targetRef") or {}).get("kind", "Deployment")
    status.update(
        phase=INITIALIZING,
        lastTransitionTime=rfc3339(now),
        conditions=promoted_condition(None, INITIALIZING, kind, now),
    )
    for key in ("failedChecks", "canaryWeight", "iterations"):
        status.setdefault(key, 0)
    return status
