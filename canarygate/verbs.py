"""What ``abort``, ``promote``, ``pause`` and ``resume`` decide, as pure functions.

Each takes the CanaryGate and its Canary (as parsed by :mod:`canarygate.model`) and returns a
:class:`Plan`: the live changes to write, in order, or why the verb is refused. The CLI, the
dashboard and any other face write the plan with the user's own credentials; none decides again
(as the Argo Rollouts plugin keeps ``AbortRollout``/``PromoteRollout`` apart from its commands).
Rules: docs/gate-state.md (scopes), docs/flagger-contract.md (what Flagger reads when).
"""

from __future__ import annotations

from dataclasses import dataclass

from canarygate import diagnosis, gates, hooks, resolution
from canarygate.annotations import SCOPE_ROLLOUT, SCOPE_STEP, SCOPE_STICKY
from canarygate.model import Canary, CanaryGate

#: Phases in which the new revision is already being copied to the primary: too late to roll back.
PROMOTING = frozenset({"Promoting", "Finalising"})
#: Flagger polls no rollback hook in this phase, only confirm-rollout, every tick
#: (docs/flagger-contract.md#waiting-and-waitingpromotion).
WAITING = "Waiting"


@dataclass(frozen=True)
class GateChange:
    """One live change: ``state`` opened or closed with ``scope``; None removes the live change
    (the gate goes back to its declared state, or its default)."""

    gate: str
    state: str | None
    scope: str = SCOPE_ROLLOUT


@dataclass(frozen=True)
class Plan:
    """A verb's decision. ``refused``: why nothing may be written (the verb fails). Else ``changes``
    to write in this order (none: nothing to do), recorded as Events with reason ``event``;
    ``note``: what the user must know besides (a promotion already under way, an approval Flagger
    has not read yet); ``still_closed``: gates that stay closed by their declared state (resume)."""

    event: str
    changes: tuple[GateChange, ...] = ()
    refused: str | None = None
    note: str | None = None
    still_closed: tuple[str, ...] = ()


def abort(gate: CanaryGate, canary: Canary | None) -> Plan:
    """End the rollout in progress by a rollback.

    Progressing, WaitingPromotion: open rollback for this rollout; Flagger rolls back on its next
    check. Waiting: Flagger polls no rollback hook there, so rollback alone would never end the
    rollout; also open confirm-rollout for one step: Flagger starts the rollout (weight 0, the tick
    ends), and on the next tick polls the rollback hooks before any pre-rollout hook or traffic step,
    so it rolls back with no traffic sent. Rollback comes first: were the second write to fail, the
    rollout stays Waiting at zero traffic instead of starting without the rollback in place.

    Refused when no rollout runs: an opened rollback gate would roll back the next release on sight.
    """
    if canary is None or not canary.active:
        phase = canary.phase if canary else "no Canary"
        return Plan(
            "Aborted",
            refused=f"Canary {gate.target} has no rollout in progress ({phase}): nothing to abort "
            f"(to roll back the next release on sight: kubectl gate open rollback {gate.name})",
        )
    changes = [GateChange(gates.ROLLBACK, gates.OPENED, SCOPE_ROLLOUT)]
    if canary.phase == WAITING:
        changes.append(GateChange(gates.CONFIRM_ROLLOUT, gates.OPENED, SCOPE_STEP))
    note = None
    if canary.phase in PROMOTING:
        note = f"the Canary is {canary.phase}: abort cannot stop a promotion already under way"
    return Plan("Aborted", tuple(changes), note=note)


def promote(
    gate: CanaryGate, canary: Canary | None, *, full: bool = False, stuck: diagnosis.Stuck | None = None
) -> Plan:
    """Let the rollout past the gate holding it: that gate opened for one step (for
    confirm-promotion, every call of that one promotion), or with ``full`` every closed progress
    gate for the rest of this rollout. ``stuck`` is :func:`canarygate.diagnosis.stuck`'s finding:
    another webhook holding the rollout refuses (opening ours would change nothing); an approval
    Flagger has not read yet makes a second one pointless.

    The gate is :func:`canarygate.resolution.holding_gate`'s, also while a Deployment is not ready
    (Flagger calls no hook then; the approval waits for it).
    """
    if canary is None:
        return Plan(
            "Promoted",
            refused=f"there is no Flagger Canary {gate.target} to promote: kubectl gate apply -f <file> creates it",
        )
    if not canary.active:
        return Plan(
            "Promoted",
            refused=f"Canary {gate.target} has no rollout in progress (phase {canary.phase or 'unknown'}): "
            "nothing to promote",
        )
    if stuck is not None and stuck.kind == diagnosis.OTHER_HOOK:
        return Plan(
            "Promoted",
            refused=f"Canary {gate.target}: {stuck.message}: ask its owner, or remove it from the Canary's webhooks",
        )
    decisions = resolution.resolve_gates(gate, canary=canary)
    if full:
        closed = [g for g in gates.PROGRESS_GATES if not decisions[g].opened]
        return Plan(
            "Promoted",
            tuple(GateChange(g, gates.OPENED, SCOPE_ROLLOUT) for g in closed),
        )
    if stuck is not None and stuck.kind == diagnosis.APPROVED:
        return Plan("Promoted", note=stuck.message)
    holding = resolution.holding_gate(decisions, canary)
    if holding is None:
        return Plan("Promoted")
    return Plan("Promoted", (GateChange(holding, gates.OPENED, SCOPE_STEP),))


def pause(*, sticky: bool = False) -> Plan:
    """Hold the rollout at its next step, failing no check: close the gates whose closed answer makes
    Flagger wait (:data:`canarygate.hooks.PAUSE_GATES`) for this rollout, or until resumed (``sticky``)."""
    scope = SCOPE_STICKY if sticky else SCOPE_ROLLOUT
    return Plan("Paused", tuple(GateChange(g, gates.CLOSED, scope) for g in hooks.PAUSE_GATES))


def resume(gate: CanaryGate, canary: Canary | None) -> Plan:
    """Undo pause: remove each pause gate's live "closed" still in force (the gate goes back to its
    declared state); ``still_closed`` names those declared closed, which then still hold the rollout."""
    decisions = resolution.resolve_gates(gate, canary=canary)
    removed = tuple(
        GateChange(g, None)
        for g in hooks.PAUSE_GATES
        if decisions[g].source == resolution.LIVE and g in gate.live and gate.live[g].state == gates.CLOSED
    )
    still = tuple(g for g in hooks.PAUSE_GATES if gate.declared.get(g) == gates.CLOSED)
    return Plan("Resumed", removed, still_closed=still)
