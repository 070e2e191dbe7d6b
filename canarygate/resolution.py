"""Effective gate state: live if present and in force, else declared, else the default.

Pure: takes a parsed CanaryGate and Canary, returns :class:`Decision` values. The sidecar answers
Flagger from them; ``kubectl gate show`` prints them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from canarygate import gates, rollouts
from canarygate.annotations import LiveChange
from canarygate.model import Canary, CanaryGate

LIVE = "live"
DECLARED = "declared"
DEFAULT = "default"
#: The gate's live-state annotation cannot be read: its state is unknown, never guessed.
INVALID = "invalid"


@dataclass(frozen=True)
class Decision:
    """A gate's effective state and where it comes from."""

    gate: str
    state: str
    source: str  # live, declared, default, or invalid (state unknown: treated as closed)
    change: LiveChange | None = None  # the live change in force, when source is live
    problem: str = ""  # what is wrong, when source is invalid

    @property
    def known(self) -> bool:
        """False when the state cannot be known; the sidecar then fails closed (503)."""
        return self.source != INVALID

    @property
    def opened(self) -> bool:
        return self.state == gates.OPENED

    @property
    def set_by(self) -> str:
        return self.change.by if self.change else ""

    @property
    def set_at(self) -> str:
        return self.change.at if self.change else ""

    @property
    def reason(self) -> str:
        return self.change.reason if self.change else ""

    @property
    def scope(self) -> str:
        return self.change.scope if self.change else ""


def resolve_gate(
    gate: CanaryGate | None,
    name: str,
    *,
    canary: Canary | None = None,
    consumed: Collection[str] = (),
) -> Decision:
    """The effective state of gate ``name``; a missing CanaryGate (None) gives the defaults.

    ``consumed`` holds the identities (:attr:`LiveChange.identity`) of live changes already used up
    (one-step approvals the sidecar has answered but whose removal has not reached its cache yet);
    they no longer count, however their rollout mark was rewritten since.
    """
    gates.check_gate(name)
    if gate is not None:
        if name in gate.invalid:
            # NB: closed is the safe reading for every gate: progress waits, rollback does not signal.
            return Decision(name, gates.CLOSED, INVALID, problem=gate.invalid[name])
        change = gate.live.get(name)
        if change is not None and change.identity not in consumed and rollouts.in_force(change, canary):
            return Decision(name, change.state, LIVE, change)
        if name in gate.declared:
            return Decision(name, gate.declared[name], DECLARED)
    return Decision(name, gates.DEFAULTS[name], DEFAULT)


def resolve_gates(
    gate: CanaryGate | None, *, canary: Canary | None = None, consumed: Collection[str] = ()
) -> dict[str, Decision]:
    """Every gate's decision, in Flagger's order."""
    return {name: resolve_gate(gate, name, canary=canary, consumed=consumed) for name in gates.GATES}


def closed_gates(decisions: dict[str, Decision]) -> list[str]:
    """The progress gates that are closed, and rollback when it is opened (armed)."""
    return [
        d.gate
        for d in decisions.values()
        if (d.gate == gates.ROLLBACK and d.opened) or (d.gate != gates.ROLLBACK and not d.opened)
    ]


#: The gate a phase waits on: Flagger sets the phase when that hook fails (runConfirmRolloutHooks,
#: runConfirmPromotionHooks) and leaves it when the hook passes.
PHASE_GATES = {"Waiting": gates.CONFIRM_ROLLOUT, "WaitingPromotion": gates.CONFIRM_PROMOTION}


def holding_gate(decisions: dict[str, Decision], canary: Canary | None) -> str | None:
    """The closed gate that holds the Canary's rollout now, if one does.

    Read from the phase as Flagger sets it (docs/flagger-contract.md#one-tick,
    docs/gate-state.md#the-holding-gate): Waiting is held by confirm-rollout, WaitingPromotion by
    confirm-promotion, when that gate is closed (or unknown); in Progressing by
    confirm-traffic-increase, or at max weight confirm-promotion. A closed check gate (rollout,
    pre-rollout) never holds: Flagger counts its answer as a failed check (see :func:`failing_gate`).
    """
    if canary is None:
        return None
    closed = {name for name, d in decisions.items() if name != gates.ROLLBACK and not d.opened}
    waiting_on = PHASE_GATES.get(canary.phase)
    if waiting_on is not None:
        # NB: opened, our gate no longer holds it: the approval waits for Flagger's next check, or
        # another webhook of that type holds the rollout (the call records tell which).
        return waiting_on if waiting_on in closed else None
    if canary.phase == "Progressing":
        if gates.CONFIRM_TRAFFIC_INCREASE in closed:
            return gates.CONFIRM_TRAFFIC_INCREASE
        if canary.canary_weight >= canary.max_weight and gates.CONFIRM_PROMOTION in closed:
            return gates.CONFIRM_PROMOTION
    return None


def failing_gate(decisions: dict[str, Decision], canary: Canary | None) -> str | None:
    """The closed check gate Flagger calls now, each call a failed check: pre-rollout while weight and
    iterations are 0 in Progressing (advanceCanary, runPreRolloutHooks), rollout on later ticks and in
    WaitingPromotion (runAnalysis). None when no rollout runs or that gate is opened."""
    if canary is None or canary.phase not in ("Progressing", "WaitingPromotion"):
        return None
    first_tick = canary.phase == "Progressing" and canary.canary_weight == 0 and canary.iterations == 0
    gate = gates.PRE_ROLLOUT if first_tick else gates.ROLLOUT
    decision = decisions.get(gate)
    return gate if decision is not None and not decision.opened else None
