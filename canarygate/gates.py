"""The seven gates, their states and defaults: the vocabulary every other module speaks.

A gate is named after the Flagger webhook type it answers (``confirm-rollout`` …). Every gate
defaults to ``opened`` except ``rollback``, whose meaning Flagger inverts (opened = roll back now).
"""

from __future__ import annotations

OPENED = "opened"
CLOSED = "closed"

CONFIRM_ROLLOUT = "confirm-rollout"
PRE_ROLLOUT = "pre-rollout"
ROLLOUT = "rollout"
CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
CONFIRM_PROMOTION = "confirm-promotion"
POST_ROLLOUT = "post-rollout"
ROLLBACK = "rollback"

#: In the order Flagger meets them in a rollout.
GATES = (
    CONFIRM_ROLLOUT,
    PRE_ROLLOUT,
    ROLLOUT,
    CONFIRM_TRAFFIC_INCREASE,
    CONFIRM_PROMOTION,
    POST_ROLLOUT,
    ROLLBACK,
)
#: Gates whose "opened" lets the rollout go on (all but rollback).
PROGRESS_GATES = tuple(g for g in GATES if g != ROLLBACK)

#: The hook type of Flagger's event webhook; not a gate, answered with 200 always.
EVENT = "event"

DEFAULTS = {gate: OPENED for gate in GATES} | {ROLLBACK: CLOSED}

#: What each gate does, in one line (for ``explain``, errors and Events).
DESCRIPTIONS = {
    CONFIRM_ROLLOUT: "a new revision waits, scaled to zero, until this gate opens",
    PRE_ROLLOUT: "checked on every tick before any traffic goes to the canary; closed fails a check and rolls back",
    ROLLOUT: "checked on every analysis step; closed fails a check: Flagger rolls back at the threshold",
    CONFIRM_TRAFFIC_INCREASE: "each traffic step (and the step into promotion) waits until this gate opens",
    CONFIRM_PROMOTION: "at max weight, promotion waits until this gate opens; metrics keep running",
    POST_ROLLOUT: "checked after promotion or rollback; closed is only reported",
    ROLLBACK: "polled during the analysis; opened means roll back now",
}

# Accepted spellings on the command line: the verbs users type and the states the CRD stores.
_STATE_ALIASES = {"opened": OPENED, "open": OPENED, "closed": CLOSED, "close": CLOSED}


def normalize_state(value: str) -> str:
    """Return ``opened`` or ``closed`` for a state or verb spelling; ValueError otherwise."""
    try:
        return _STATE_ALIASES[value.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown gate state {value!r}: use opened or closed") from None


def check_gate(name: str) -> str:
    """Return the gate name unchanged, or raise ValueError listing the known gates."""
    if name not in GATES:
        raise ValueError(f"unknown gate {name!r}: the gates are {', '.join(GATES)}")
    return name
