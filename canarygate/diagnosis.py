"""Why a rollout is not moving, from what is known rather than guessed: pure, ``now`` is given.

Inputs are the Canary, the gates' decisions, the Deployments' readiness and the calls the sidecar
recorded (:mod:`canarygate.calls`). In order, the first that holds is the reason:

1. a Deployment is not ready: Flagger calls no hook (:mod:`canarygate.readiness`);
2. the sidecar has not been called for this Canary for :func:`canarygate.calls.stale_after`: the
   webhook URL is wrong or the sidecar is down;
3. a closed gate of ours holds it (``holding``) or a closed check gate fails it (``failing``);
4. the phase's gate (confirm-rollout while Waiting, confirm-promotion while WaitingPromotion) is
   opened: after an approval Flagger picks it up at its next check; once we answered 200 and the
   phase still has not moved, another webhook of that type holds it (a user's own webhook).

One recommended command per hold (:func:`recommended_command`), the same in ``show`` and in the
sidecar's GateHolding Event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from canarygate import calls as call_records
from canarygate import gates, hooks, rendering
from canarygate.model import Canary
from canarygate.resolution import LIVE, PHASE_GATES, Decision
from canarygate.times import parse_time

NOT_READY = "not-ready"
NOT_CALLED = "not-called"
APPROVED = "approved"
OTHER_HOOK = "other-hook"
SUSPENDED = "suspended"
STALE_APPROVAL = "stale-approval"


@dataclass(frozen=True)
class Stuck:
    kind: str  # NOT_CALLED, APPROVED, OTHER_HOOK or SUSPENDED
    gate: str | None
    message: str
    short: str  # for list's HELD-AT column


def recommended_command(hook: str, name: str, namespace: str) -> str:
    """The one command that lets a rollout past ``hook`` when it is closed: promote for the gates that
    wait; for a check gate, opening it (promote would not stop the failed checks)."""
    if hook in hooks.CHECK_GATES:
        return f"kubectl gate open {hook} {name} -n {namespace}"
    return f"kubectl gate promote {name} -n {namespace}"


def effective_weight(canary: Canary) -> int:
    """The canary's traffic weight: Flagger zeroes status.canaryWeight when it sets WaitingPromotion
    (setStatusPhase) while the canary strategy's traffic stays at max weight (runCanary)."""
    if canary.phase == "WaitingPromotion" and not _iterations(canary):
        return canary.max_weight
    return canary.canary_weight


def _iterations(canary: Canary) -> int:
    analysis = (canary.raw.get("spec") or {}).get("analysis") or {}
    try:
        return int(analysis.get("iterations") or 0)
    except (TypeError, ValueError):
        return 0


def other_webhooks(canary: Canary, hook: str, gate_ref: tuple[str, str]) -> list[str]:
    """Names of the Canary's webhooks of type ``hook`` that are not ours (for this CanaryGate)."""
    out = []
    for webhook in canary.webhooks:
        if (webhook.get("type") or gates.ROLLOUT) != hook:
            continue
        if rendering.coverage_for(gate_ref[0], gate_ref[1], [webhook]).get(hook):
            continue
        out.append(str(webhook.get("name") or webhook.get("url") or "?"))
    return out


def _age(now: datetime, moment: datetime) -> int:
    return max(0, int((now - moment).total_seconds()))


def stuck(
    canary: Canary | None,
    decisions: Mapping[str, Decision],
    *,
    gate_ref: tuple[str, str],
    status: Mapping[str, Any],
    now: datetime,
    holding: str | None,
    failing: str | None,
    not_ready: Sequence[Any] = (),
    started: datetime | None = None,
    target_template: str = "",
) -> Stuck | None:
    """The reason found by rules 2 and 4 (rules 1 and 3 are the caller's own lines), or None."""
    if canary is None or not canary.active or not_ready or canary.phase in ("Promoting", "Finalising"):
        return None
    if canary.suspended:
        return Stuck(
            SUSPENDED, None, "the Canary is suspended (spec.suspend): Flagger skips it and calls no hook", "suspended"
        )
    interval = call_records.interval_seconds(canary.interval)
    recorded = call_records.read_calls(status)
    last = call_records.last_call(recorded, canary.ref)
    since = last.at if last is not None else started
    if since is not None and _age(now, since) > call_records.stale_after(interval):
        silent = _age(now, since)
        what = (
            f"for {silent // int(interval) if interval >= 1 else silent} intervals ({silent}s)"
            if last
            else f"since this rollout started {silent}s ago"
        )
        return Stuck(
            NOT_CALLED,
            None,
            f"Flagger has not called the sidecar for this Canary {what}: check the webhook URL "
            f"(kubectl gate version shows the sidecar)",
            "not called",
        )
    if holding or failing:
        return None
    gate = PHASE_GATES.get(canary.phase)
    if gate is None:
        return None
    decision = decisions[gate]
    if not decision.opened:
        return None
    change = decision.change if decision.source == LIVE else None
    if (
        change is not None
        and target_template
        and change.rollout.template
        and canary.phase == "Waiting"
        and change.rollout.template != target_template
    ):
        return Stuck(
            STALE_APPROVAL,
            gate,
            f"{gate} was approved by {change.by or 'someone'} for another revision of the target (template "
            f"{change.rollout.template}; deployed now {target_template}): the sidecar does not pass it; "
            f"approve again: {recommended_command(gate, gate_ref[1], gate_ref[0])}",
            f"{gate}(approval for another revision)",
        )
    call = recorded.get(gate)
    approved_at = parse_time(decision.set_at) if decision.source == LIVE else None
    passed = call is not None and call.answer < 300 and (approved_at is None or call.at >= approved_at)
    others = other_webhooks(canary, gate, gate_ref)
    if (
        passed
        and call is not None
        and others
        and _age(now, call.at) < call_records.stale_after(interval)
        and (approved_at is None or _age(now, approved_at) >= 1.5 * interval)
    ):
        names = ", ".join(others)
        return Stuck(
            OTHER_HOOK,
            gate,
            f"{gate} of ours answered 200 {_age(now, call.at)}s ago and the Canary is still {canary.phase}: "
            f"another {gate} webhook holds it ({names}); kubectl gate promote cannot help",
            f"{gate}(other hook)",
        )
    if approved_at is not None and not passed:
        by = decision.set_by or "someone"
        return Stuck(
            APPROVED,
            gate,
            f"{gate} approved by {by} {_age(now, approved_at)}s ago; Flagger picks it up at its next check "
            f"(within {canary.interval or '1m'})",
            f"{gate}(approved)",
        )
    return None
