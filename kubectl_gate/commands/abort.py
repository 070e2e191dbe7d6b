"""``kubectl gate abort NAME``: end the rollout in progress by a rollback, the new revision kept out of traffic."""

from __future__ import annotations

import click

from canarygate import errors
from canarygate import gates as gate_names
from canarygate.annotations import SCOPE_ROLLOUT, SCOPE_STEP
from kubectl_gate import lookup
from kubectl_gate.commands.change import change_gate
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, name_options
from kubectl_gate.targets import run_each, select, selection_options
from kubectl_gate.views import not_ready_text

#: Phases in which the new revision is already being copied to the primary: too late to roll back.
PROMOTING = frozenset({"Promoting", "Finalising"})


#: Flagger polls no rollback hook in this phase (docs/flagger-contract.md#waiting-and-waitingpromotion): only confirm-rollout, every tick.
WAITING = "Waiting"

#: What the user is told after an abort while Waiting.
WAITING_OUTCOME = "Flagger starts the rollout and rolls it back on its next check; the new revision receives no traffic"


def abort(gctx: GateContext, name: str, *, reason: str = "") -> tuple[str, list[str], list[str]]:
    """Abort the rollout in progress; returns the Canary's phase, the gate changes made, and why
    Flagger will not read them yet (a Deployment not ready: it calls no hook until it is).

    Progressing/WaitingPromotion (and later): open the rollback gate for this rollout; Flagger rolls
    back on its next check.

    Waiting: Flagger re-polls only confirm-rollout there and never a rollback hook (docs/flagger-contract.md#one-tick step 5,
    #waiting-and-waitingpromotion), so an open rollback gate alone would never end the rollout. Abort opens rollback for this
    rollout, then confirm-rollout for one step: on its next tick Flagger starts the rollout
    (Progressing, weight 0, the tick ends there), and on the tick after it polls the rollback hooks
    (step 9) before any pre-rollout hook or traffic step (steps 12-13), so it rolls back to Failed with
    the weight at 0 throughout. Rollback is written first: were the second write to fail, the rollout
    stays Waiting at zero traffic instead of starting without the rollback in place.

    Refuses when no rollout is running: an opened rollback gate would roll back the next release.
    """
    view = lookup.load_view(gctx, name, with_events=False)
    canary = view.canary
    target = f"{view.gate.target.namespace}/{view.gate.target.name}"
    if canary is None or not canary.active:
        phase = canary.phase if canary else "no Canary"
        raise errors.GateError(
            f"Canary {target} has no rollout in progress ({phase}): nothing to abort "
            f"(to roll back the next release on sight: kubectl gate open rollback {name})"
        )
    change_gate(
        gctx,
        name,
        gate_names.ROLLBACK,
        gate_names.OPENED,
        scope=SCOPE_ROLLOUT,
        reason=reason,
        event_reason="Aborted",
        namespace=view.gate.namespace,
    )
    changes = [f"{gate_names.ROLLBACK} opened for this rollout"]
    if canary.phase == WAITING:
        try:
            change_gate(
                gctx,
                name,
                gate_names.CONFIRM_ROLLOUT,
                gate_names.OPENED,
                scope=SCOPE_STEP,
                reason=reason,
                event_reason="Aborted",
                namespace=view.gate.namespace,
            )
        except errors.GateError as e:
            raise type(e)(
                f"{e}\nThe rollback gate is open for this rollout, but confirm-rollout could not be opened: "
                f"the rollout stays Waiting at zero traffic. Run kubectl gate abort {name} again."
            ) from e
        changes.append(f"{gate_names.CONFIRM_ROLLOUT} opened for one step")
    return canary.phase, changes, not_ready_text(view, gctx.now())


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
    phase, changes, not_ready = abort(gctx, name, reason=reason)
    for text in not_ready:
        gctx.err(
            f"note: {text}. The rollback gate is read once it is ready; nothing Canary Gate writes "
            f"reaches Flagger before then (a new revision of the Deployment does: Flagger restarts the analysis)"
        )
    if phase == WAITING:
        gctx.out(f"canarygate/{name} aborted while Waiting: {' and '.join(changes)}")
        gctx.out(f"{WAITING_OUTCOME}." if not not_ready else "Flagger starts and rolls back the rollout once ready.")
        return
    when = "once the Deployments are ready" if not_ready else "on its next check"
    gctx.out(f"canarygate/{name} aborted: rollback gate opened; Flagger rolls back {when}")
    if phase in PROMOTING:
        gctx.err(f"warning: the Canary is {phase}: abort cannot stop a promotion already under way")
