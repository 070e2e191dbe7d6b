"""Which rollout a live change belongs to, and whether that rollout is still going.

Flagger's payload checksum cannot say: during ``Waiting`` it is the checksum of the revision already
deployed (CONTRACT §2). The Canary's Promoted condition can: its lastTransitionTime changes only when
its status flips (Unknown from the start of a rollout to its end, True or False after it), so

* a change made **during** a rollout (mark active, since=T) holds while the Canary is active with the
  same T; any end, or a rollout with another T, means that rollout is over;
* a change made **between** rollouts (mark idle, since=T) holds for the next rollout: it ends once the
  Canary shows an end (Succeeded/Failed) other than the one seen when the change was made.

Both rules read only the Canary's current status, so they hold when the sidecar was down at the moment
the rollout ended. An idle change is bound to the rollout it meets (:func:`binding_for`) so that a
second rollout cannot inherit it even if no one looked while the first one ended.
"""

from __future__ import annotations

from canarygate.annotations import SCOPE_STICKY, LiveChange, RolloutMark
from canarygate.model import END_PHASES, Canary


def mark_of(canary: Canary | None) -> RolloutMark:
    """The rollout (or idle period) the Canary is in now; idle with no time when there is no Canary."""
    if canary is None:
        return RolloutMark(active=False, since="")
    since = canary.promoted.last_transition_time if canary.promoted else ""
    return RolloutMark(active=canary.active, since=since)


def in_force(change: LiveChange, canary: Canary | None) -> bool:
    """True while ``change`` applies: sticky always, others until their rollout has ended."""
    if change.scope == SCOPE_STICKY:
        return True
    now = mark_of(canary)
    mark = change.rollout
    if mark.active:
        return now.active and now.since == mark.since
    if canary is not None and canary.phase in END_PHASES and now.since != mark.since:
        return False  # a rollout ended after the change was made
    return True


def binding_for(change: LiveChange, canary: Canary | None) -> LiveChange | None:
    """The change bound to the rollout now running, when it was made between rollouts; else None."""
    if change.scope == SCOPE_STICKY or change.rollout.active or not in_force(change, canary):
        return None
    now = mark_of(canary)
    return change.bound_to(now) if now.active else None
