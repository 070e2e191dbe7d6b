"""``kubectl gate abort NAME``: end the rollout in progress by a rollback, the new revision kept out of traffic."""

from __future__ import annotations

import click

from canarygate import errors, verbs
from canarygate.annotations import SCOPE_STEP
from kubectl_gate import lookup
from kubectl_gate.commands.change import change_gate
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, name_options
from kubectl_gate.targets import run_each, select, selection_options
from kubectl_gate.views import not_ready_text

#: What the user is told after an abort while Waiting.
WAITING_OUTCOME = "Flagger starts the rollout and rolls it back on its next check; the new revision receives no traffic"


def abort(gctx: GateContext, name: str, *, reason: str = "") -> tuple[str, verbs.Plan, list[str]]:
    """Write :func:`canarygate.verbs.abort`'s plan; returns the Canary's phase, the plan, and why
    Flagger will not read it yet (a Deployment not ready: it calls no hook until it is)."""
    view = lookup.load_view(gctx, name, with_events=False)
    plan = verbs.abort(view.gate, view.canary)
    if plan.refused:
        raise errors.GateError(plan.refused)
    first, *rest = plan.changes
    assert view.canary is not None and first.state is not None  # NB: a plan not refused has both
    write = dict(reason=reason, event_reason=plan.event, namespace=view.gate.namespace)
    change_gate(gctx, name, first.gate, first.state, scope=first.scope, **write)
    for change in rest:
        assert change.state is not None  # NB: abort only opens gates
        try:
            change_gate(gctx, name, change.gate, change.state, scope=change.scope, **write)
        except errors.GateError as e:
            raise type(e)(
                f"{e}\nThe {first.gate} gate is open for this rollout, but {change.gate} could not be opened: "
                f"the rollout stays {view.canary.phase} at zero traffic. Run kubectl gate abort {name} again."
            ) from e
    return view.canary.phase, plan, not_ready_text(view, gctx.now())


@click.command("abort")
@selection_options
@name_options
@click.option("--reason", "-r", default="", metavar="TEXT", help="Why: recorded in the annotation and the Event.")
@kube_options
@pass_gate_ctx
def abort_command(
    gctx: GateContext,
    names: tuple[str, ...],
    deployment: str | None,
    reason: str,
    selector: str | None,
    all_in_namespace: bool,
) -> None:
    """End the rollout of CanaryGate NAME by a rollback: open its rollback gate for this rollout,
    so Flagger rolls back on its next check. Abort cannot stop a promotion already under way
    (phase Promoting or Finalising): the new revision is then being copied to the primary.

    While the Canary is Waiting (held at confirm-rollout, the new revision at zero traffic), Flagger
    checks no rollback gate. Abort then also opens confirm-rollout for one step: Flagger starts the
    rollout and rolls it back on its next check; the new revision receives no traffic. The Canary
    ends Failed, and the next release is held by the gates as declared.

    \b
    Example:
      kubectl gate abort demo -n demo-ns --reason "error rate up"
    """
    targets = select(gctx, names, deployment=deployment, selector=selector, everything=all_in_namespace)
    run_each(gctx, targets, lambda name: _abort_one(gctx, name, reason), verb="aborted")


def _abort_one(gctx: GateContext, name: str, reason: str) -> None:
    phase, plan, not_ready = abort(gctx, name, reason=reason)
    for text in not_ready:
        gctx.err(
            f"note: {text}. The rollback gate is read once it is ready; nothing Canary Gate writes "
            f"reaches Flagger before then (a new revision of the Deployment does: Flagger restarts the analysis)"
        )
    if phase == verbs.WAITING:
        done = " and ".join(f"{c.gate} opened {_scope_text(c.scope)}" for c in plan.changes)
        gctx.out(f"canarygate/{name} aborted while Waiting: {done}")
        gctx.out(f"{WAITING_OUTCOME}." if not not_ready else "Flagger starts and rolls back the rollout once ready.")
        return
    when = "once the Deployments are ready" if not_ready else "on its next check"
    gctx.out(f"canarygate/{name} aborted: rollback gate opened; Flagger rolls back {when}")
    if plan.note:
        gctx.err(f"warning: {plan.note}")


def _scope_text(scope: str) -> str:
    return "for one step" if scope == SCOPE_STEP else "for this rollout"
