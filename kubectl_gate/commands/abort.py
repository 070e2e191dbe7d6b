"""``kubectl gate abort NAME``: open the rollback gate for this rollout."""

from __future__ import annotations

import click

from canarygate import errors
from canarygate import gates as gate_names
from canarygate.annotations import SCOPE_ROLLOUT
from kubectl_gate import lookup
from kubectl_gate.commands.change import change_gate
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, name_options, pick_name

#: Phases in which the new revision is already being copied to the primary: too late to roll back.
PROMOTING = frozenset({"Promoting", "Finalising"})


def abort(gctx: GateContext, name: str, *, reason: str = "") -> str:
    """Open the rollback gate for the rollout in progress; returns the Canary's phase.

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
    change_gate(gctx, name, gate_names.ROLLBACK, gate_names.OPENED, scope=SCOPE_ROLLOUT, reason=reason,
                event_reason="Aborted", namespace=view.gate.namespace)
    return canary.phase


@click.command("abort")
@click.argument("name", required=False)
@name_options
@click.option("--reason", "-r", default="", metavar="TEXT", help="Why: recorded in the annotation and the Event.")
@kube_options
@pass_gate_ctx
def abort_command(gctx: GateContext, name: str | None, deployment: str | None, reason: str) -> None:
    """Roll back the rollout of CanaryGate NAME: open its rollback gate for this rollout, so
    Flagger rolls back on its next check. Abort cannot stop a promotion already under way
    (phase Promoting or Finalising): the new revision is then being copied to the primary.

    \b
    Example:
      kubectl gate abort demo -n demo-ns --reason "error rate up"
    """
    name = pick_name(name, deployment)
    phase = abort(gctx, name, reason=reason)
    gctx.out(f"canarygate/{name} aborted: rollback gate opened; Flagger rolls back on its next check")
    if phase in PROMOTING:
        gctx.err(f"warning: the Canary is {phase}: abort cannot stop a promotion already under way")
