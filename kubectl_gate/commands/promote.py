"""``kubectl gate promote NAME``: let the rollout past the gate that holds it now."""

from __future__ import annotations

import click

from canarygate import errors, verbs
from canarygate import gates as gate_names
from kubectl_gate import lookup
from kubectl_gate.commands.change import change_gate
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, name_options
from kubectl_gate.targets import run_each, select, selection_options
from kubectl_gate.views import not_ready_text


def promote(gctx: GateContext, name: str, *, full: bool = False, reason: str = "") -> list[str]:
    """Write :func:`canarygate.verbs.promote`'s plan: the holding gate opened for one step, or
    (``full``) every closed progress gate for this rollout. Returns the gates opened; raises
    GateError when the plan is refused (no rollout, another webhook holds it)."""
    view = lookup.load_view(gctx, name, with_events=False)
    plan = verbs.promote(view.gate, view.canary, full=full, stuck=view.stuck)
    if plan.refused:
        raise errors.GateError(plan.refused)
    if view.not_ready:
        gctx.err("note: " + "; ".join(not_ready_text(view, gctx.now())))
    if plan.note:
        gctx.err(plan.note)  # already approved: a second approval would change nothing
    for change in plan.changes:
        assert change.state is not None  # NB: promote only opens gates
        change_gate(
            gctx,
            name,
            change.gate,
            change.state,
            scope=change.scope,
            reason=reason,
            event_reason=plan.event,
            namespace=view.gate.namespace,
        )
    return [c.gate for c in plan.changes]


@click.command("promote")
@selection_options
@name_options
@click.option(
    "--full",
    is_flag=True,
    help="Open every closed gate but rollback for the rest of this rollout; Flagger still walks every step.",
)
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

    With --full, open every closed gate but rollback (confirm-rollout, pre-rollout, rollout,
    confirm-traffic-increase, confirm-promotion, post-rollout) for the rest of this rollout. That
    only stops Canary Gate holding it: Flagger still walks every traffic step, one per analysis
    interval, runs its metric checks and your own webhooks at each, and rolls back if they fail.
    It is not a skip: to promote without analysis, in an emergency, see 'kubectl gate
    skip-analysis --help' (Flagger's spec.skipAnalysis).

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
