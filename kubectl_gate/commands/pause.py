"""``kubectl gate pause|resume NAME``: hold a rollout at its next step without failing any check.

Pause closes the gates whose closed answer makes Flagger wait (canarygate.hooks.PAUSE_GATES:
confirm-traffic-increase, confirm-promotion) for this rollout, or ``--sticky``; the checks keep
passing, so nothing is rolled back. Resume removes the live "closed" that pause wrote on those gates:
each is back to its declared state (or default), which may itself be closed.
"""

from __future__ import annotations

import click

from canarygate import errors, verbs
from canarygate.kube import canarygates
from kubectl_gate import audit, lookup
from kubectl_gate.commands.change import change_gate
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, name_options, pick_name
from kubectl_gate.targets import run_each, select, selection_options


def pause(gctx: GateContext, name: str, *, sticky: bool = False, reason: str = "") -> list[str]:
    """Write :func:`canarygate.verbs.pause`'s plan; returns the gates closed."""
    plan = verbs.pause(sticky=sticky)
    for change in plan.changes:
        assert change.state is not None  # NB: pause only closes gates
        change_gate(gctx, name, change.gate, change.state, scope=change.scope, reason=reason, event_reason=plan.event)
    return [c.gate for c in plan.changes]


def resume(gctx: GateContext, name: str, *, reason: str = "") -> tuple[list[str], list[str]]:
    """Write :func:`canarygate.verbs.resume`'s plan (each removal conditional on the annotation read);
    returns (gates resumed, gates still closed as declared)."""
    view = lookup.load_view(gctx, name, with_events=False)
    plan = verbs.resume(view.gate, view.canary)
    for change in plan.changes:
        if not canarygates.replace_live_change(gctx.kube, view.gate, view.gate.live[change.gate], None):
            raise errors.Conflict(f"CanaryGate {view.gate.ref} changed meanwhile: run kubectl gate resume {name} again")
    resumed = [c.gate for c in plan.changes]
    if resumed:
        user = gctx.username()
        message = f"{user} resumed: removed the live closed state of {', '.join(resumed)}"
        audit.record(gctx, view.gate, reason=plan.event, message=message, why=reason, done="resumed")
    return resumed, list(plan.still_closed)


@click.command("pause")
@selection_options
@name_options
@click.option("--reason", "-r", default="", metavar="TEXT", help="Why: recorded in the annotations and the Events.")
@click.option("--sticky", is_flag=True, help="Keep it paused until resumed (default: this rollout).")
@kube_options
@pass_gate_ctx
def pause_command(
    gctx: GateContext,
    names: tuple[str, ...],
    deployment: str | None,
    reason: str,
    sticky: bool,
    selector: str | None,
    all_in_namespace: bool,
) -> None:
    """Hold the rollout of CanaryGate NAME at its next step, failing no check: closes
    confirm-traffic-increase and confirm-promotion for this rollout (--sticky: until resumed).
    Flagger keeps the canary at its weight and keeps running the checks; nothing rolls back.

    \b
    Examples:
      kubectl gate pause demo -n demo-ns --reason "investigating latency"
      kubectl gate resume demo -n demo-ns
      kubectl gate pause --all -A --reason "change freeze"
    """
    targets = select(gctx, names, deployment=deployment, selector=selector, everything=all_in_namespace)
    run_each(gctx, targets, lambda name: _pause_one(gctx, name, reason, sticky), verb="paused")


def _pause_one(gctx: GateContext, name: str, reason: str, sticky: bool) -> None:
    closed = pause(gctx, name, sticky=sticky, reason=reason)
    scope = "until resumed" if sticky else "for this rollout"
    gctx.out(
        f"canarygate/{name} paused {scope}: {' and '.join(closed)} closed; the checks keep running, "
        f"nothing rolls back (resume: kubectl gate resume {name})"
    )


@click.command("resume")
@click.argument("name", required=False)
@name_options
@click.option("--reason", "-r", default="", metavar="TEXT", help="Why: recorded in the Event.")
@kube_options
@pass_gate_ctx
def resume_command(gctx: GateContext, name: str | None, deployment: str | None, reason: str) -> None:
    """Undo pause: remove the live closed state of confirm-traffic-increase and confirm-promotion,
    so each is back to its declared state (or default)."""
    name = pick_name(name, deployment)
    resumed, still = resume(gctx, name, reason=reason)
    if not resumed:
        gctx.out(f"canarygate/{name}: not paused; nothing to resume")
    else:
        gctx.out(f"canarygate/{name} resumed: {', '.join(resumed)} back to their declared state")
    if still:
        gctx.err(
            f"{', '.join(still)} still closed as declared (spec): to let the rollout on, kubectl gate promote {name}"
        )
