"""What the sidecar records of Flagger's calls, in the CanaryGate's status, and how it is read.

``status.calls`` maps each hook to the last call the sidecar answered::

    calls:
      confirm-promotion: {at: "2026-11-22T10:00:00Z", answer: 403, canary: demo-ns/demo}

The sidecar writes it off the request path, coalesced with its other status writes: when a hook is
called for the first time or its answer changes, and otherwise at most once per
:data:`HEARTBEAT_SECONDS` per CanaryGate. So a reader can tell "Flagger stopped calling" only after
the heartbeat and a few intervals have passed (:func:`stale_after`).

``status.failure`` holds why the last rollout was rolled back, from Flagger's event webhook stream
(not throttled, unlike its Kubernetes Events): ``{message, check, time}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from canarygate import durations
from canarygate.times import parse_time

HEARTBEAT_SECONDS = 60.0
#: How many analysis intervals without a call (beyond the heartbeat) mean Flagger is not calling.
MISSED_INTERVALS = 3

#: Flagger's analysis interval when the Canary's is unset, zero or unreadable.
DEFAULT_INTERVAL = 60.0


def interval_seconds(text: str) -> float:
    """A Canary's analysis interval (a Go duration such as ``10s`` or ``1m30s``) in seconds;
    :data:`DEFAULT_INTERVAL` when unset, not positive or not a duration, as Flagger falls back to."""
    try:
        seconds = durations.parse_go(text or "0")
    except ValueError:
        return DEFAULT_INTERVAL
    return seconds if seconds > 0 else DEFAULT_INTERVAL


def stale_after(interval: float) -> float:
    """Seconds without a recorded call after which Flagger is taken not to be calling the sidecar."""
    return HEARTBEAT_SECONDS + MISSED_INTERVALS * interval


@dataclass(frozen=True)
class Call:
    hook: str
    at: datetime
    answer: int
    canary: str = ""


def read_calls(status: Mapping[str, Any]) -> dict[str, Call]:
    """The recorded calls in a CanaryGate's status (unreadable entries are skipped)."""
    out: dict[str, Call] = {}
    raw = status.get("calls")
    if not isinstance(raw, Mapping):
        return out
    for hook, entry in raw.items():
        if not isinstance(entry, Mapping):
            continue
        at = parse_time(entry.get("at"))
        try:
            answer = int(entry.get("answer", ""))  # absent, None or not a number: skipped
        except (TypeError, ValueError):
            continue
        if at is not None:
            out[str(hook)] = Call(str(hook), at, answer, str(entry.get("canary") or ""))
    return out


def last_call(calls: Mapping[str, Call], canary: str = "") -> Call | None:
    """The most recent recorded call (about ``canary`` when given)."""
    chosen = [c for c in calls.values() if not canary or not c.canary or c.canary == canary]
    return max(chosen, key=lambda c: c.at) if chosen else None


#: Flagger's rollback reasons (advanceCanary, rollback), as its event messages start.
ROLLBACK_PREFIX = "Rolling back "
#: A new rollout (checkCanaryStatus: "New revision detected! Scaling up") clears the last failure.
NEW_ROLLOUT = "New revision detected"


def failed_check_message(message: str) -> bool:
    """A Flagger Warning of a failed check ("Halt ... check X failed", a metric below its threshold)."""
    return message.startswith("Halt ") and "waiting for" not in message
