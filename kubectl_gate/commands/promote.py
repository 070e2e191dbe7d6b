"""``kubectl gate promote NAME``: let the rollout past the gate that holds it now."""

from __future__ import annotations

import click

from canarygate import diagnosis, errors
from canarygate import gates as gate_names
from canarygate.annotations import SCOPE_ROLLOUT, SCOPE_STEP
from kubectl_gate import lookup
from kubectl_gate.commands.change import change_gate
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, name_options
from kubectl_gate.targets import run_each, select, selection_options
from kubectl_gate.views import GateView, not_ready_text

#: The gate that holds a rollout in each waiting phase, when no closed gate is found in resolution.
PHASE_GATE = {"Waiting": gate_names.CONFIRM_ROLLOUT, "WaitingPromotion": gate_names.CONFIRM_PROMOTION}


def gate_to_promote(view: GateView) -> str | None:
    """The gate one ``promote`` opens: the one holding the rollout, by phase."""
    canary = view.canary
    if canary is None or not canary.active:
        return None
    if view.holding:
        return view.holding
    if canary.phase in PHASE_GATE:
        return PHASE_GATE[canary.phase]
    if canary.phase == "Progressing" and not view.decisions[gate_names.CONFIRM_TRAFFIC_INCREASE].opened:
        return gate_names.CONFIRM_TRAFFIC_INCREASE
    return None


def promote(gctx: GateContext, name: str, *, full: bool = False, reason: str = "") -> list[str]:
    """Open the holding gate for one step, or (``full``) every closed progress gate for this rollout.

    Returns the gates opened; raises GateError when there is no rollout to promote.
    """
    view = lookup.load_view(gctx, name, with_events=False)
    canary = view.canary
    target = f"{view.gate.target.namespace}/{view.gate.target.name}"
    if canary is None:
        raise errors.GateError(
            f"there is no Flagger Canary {target} to promote: kubectl gate apply -f <file> creates it"
        )
    if not canary.active:
        raise errors.GateError(
            f"Canary {target} has no rollout in progress (phase {canary.phase or 'unknown'}): nothing to promote"
        )
    if view.stuck is not None and view.stuck.kind == diagnosis.OTHER_HOOK:
        raise errors.GateError(
            f"Canary {target}: {view.stuck.message}: ask its owner, or remove it from the Canary's webhooks"
        )
    if view.not_ready:
        gctx.err("note: " + "; ".join(not_ready_text(view, gctx.now())))
    if full:
        opened = [g for g in gate_names.PROGRESS_GATES if not view.decisions[g].opened]
        for gate in opened:
            change_gate(
                gctx,
                name,
                gate,
                gate_names.OPENED,
                scope=SCOPE_ROLLOUT,
                reason=reason,
                event_reason="Promoted",
                namespace=view.gate.namespace,
            )
        return opened
    if view.stuck is not None and view.stuck.kind == diagnosis.APPROVED:
        gctx.err(view.stuck.message)
        return []  # already approved: a second approval would change nothing
    gate = gate_to_promote(view)
    if gate is None:
        return []
    change_gate(
        gctx,
        name,
        gate,
        gate_names.OPENED,
        scope=SCOPE_STEP,
        reason=reason,
        event_reason="Promoted",
        namespace=view.gate.namespace,
    )
    return [gate]


@click.command("promote")
@selection_options
@name_options
@click.option("--full", is_flag=True, help="Open every progress gate for the rest of this rollout.")
@click.option("--reason", "-r", default="", metavar="TEXT", help="Why: recorded in the annotation and the Event.")
@kube_options
@pass_gate_ctx
def promote_command(
    gctx: GateContext,
    names: tuple[str, ...],
    deployment: str | None,
    full: bool,
    reason: str,
    selector: str | None,
    all_in_namespace: bool,
) -> None:
    """Let the rollout of CanaryGate NAME past the gate that holds it now, for one step:
    confirm-rollout while Waiting, confirm-traffic-increase while a traffic step is held,
    confirm-promotion while WaitingPromotion. The sidecar uses the approval up on the first
    "go on" it gives; the gate is then back to its own state. An approval of confirm-promotion
    passes every call of that one promotion (blue/green asks on two consecutive ticks) and
    ends once the Canary is Promoting.

    With --full, open every progress gate for the rest of this rollout.

    \b
    Examples:
      kubectl gate promote demo -n demo-ns
      kubectl gate promote demo --full --reason "hotfix, approved by on-call"
      kubectl gate promote web api -n shop
    """
    targets = select(gctx, names, deployment=deployment, selector=selector, everything=all_in_namespace)
    run_each(gctx, targets, lambda name: _promote_one(gctx, name, full, reason), verb="promoted")


def _promote_one(gctx: GateContext, name: str, full: bool, reason: str) -> None:
    opened = promote(gctx, name, full=full, reason=reason)
    if not opened:
        gctx.out(f"canarygate/{name}: no gate holds the rollout; nothing to promote")
    elif full:
        gctx.out(f"canarygate/{name} fully promoted: opened {', '.join(opened)} for this rollout")
    else:
        step = "for this promotion" if opened[0] == gate_names.CONFIRM_PROMOTION else "for one step"
        gctx.out(f"canarygate/{name} promoted: {opened[0]} opened {step}")
