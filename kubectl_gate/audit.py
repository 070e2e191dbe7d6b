"""The audit Event a command records on the CanaryGate after it changed something.

The change is made by then: a failure to record its Event is a warning on stderr, never an error
that would hide (or make the user repeat) what was done.
"""

from __future__ import annotations

from canarygate import errors
from canarygate.kube import events
from canarygate.model import CanaryGate
from kubectl_gate.context import GateContext, rfc3339


def record(
    gctx: GateContext,
    gate: CanaryGate,
    *,
    reason: str,
    message: str,
    why: str = "",
    done: str,
    type: str = events.NORMAL,  # noqa: A002 - the Event's own field name
) -> None:
    """Record Event ``reason`` on ``gate``: ``message``, then the user's ``why`` (--reason) when given.

    ``done`` says what was done, for the warning when the Event cannot be recorded.
    """
    try:
        events.record_event(
            gctx.kube,
            gate,
            reason=reason,
            message=message + (f": {why}" if why else ""),
            now=rfc3339(gctx.now()),
            type=type,
        )
    except errors.GateError as e:
        gctx.err(f"warning: {done}, but its Event could not be recorded: {e}")
