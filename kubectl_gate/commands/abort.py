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


#: Flagger polls no rollback hook in this phase (CONTRACT §4): the new revision sits at zero traffic.
WAITING = "Waiting"


def target_deployment(canary) -> str:
    """``deployment/NAME`` of the Canary's targetRef, for the advice; a placeholder when unknown."""
    ref = ((canary.raw.get("spec") or {}).get("targetRef") or {}) if canary is not None else {}
    name = ref.get("name") if isinstance(ref, dict) else None
    return f"{str(ref.get('kind') or 'deployment').lower()}/{name}" if name else "the target Deployment"


def abort(gctx: GateContext, name: str, *, reason: str = "") -> tuple[str, list[str], str]:
    """Abort the rollout in progress; returns the Canary's phase and the gate changes made.

    Progressing/WaitingPromotion (and later): open the rollback gate for this rollout; Flagger rolls
    back on its next check. Waiting: Flagger polls no rollback hook there (CONTRACT §4), so also close
    confirm-rollout for this rollout (no earlier approval lets the revision in) and open rollback (if
    someone lets it in anyway, the first analysis tick rolls back). Refuses when no rollout is running:
    an opened rollback gate would roll back the next release.
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
    changes = []
    if canary.phase == WAITING:
        change_gate(gctx, name, gate_names.CONFIRM_ROLLOUT, gate_names.CLOSED, scope=SCOPE_ROLLOUT, reason=reason,
                    event_reason="Aborted", namespace=view.gate.namespace)
        changes.append(f"{gate_names.CONFIRM_ROLLOUT} closed")
    change_gate(gctx, name, gate_names.ROLLBACK, gate_names.OPENED, scope=SCOPE_ROLLOUT, reason=reason,
                event_reason="Aborted", namespace=view.gate.namespace)
    changes.append(f"{gate_names.ROLLBACK} opened")
    return canary.phase, changes, target_deployment(canary)


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

    While the Canary is Waiting (held at confirm-rollout, the new revision at zero traffic), Flagger
    checks no rollback gate: abort then closes confirm-rollout and opens rollback for this rollout,
    so no approval lets the revision in (and if one does, the first check rolls it back). To end such
    a rollout, revert the Deployment to the revision deployed now.

    \b
    Example:
      kubectl gate abort demo -n demo-ns --reason "error rate up"
    """
    name = pick_name(name, deployment)
    phase, changes, deployment_ref = abort(gctx, name, reason=reason)
    if phase == WAITING:
        gctx.out(f"canarygate/{name} aborted while Waiting: {' and '.join(changes)} for this rollout")
        gctx.err(
            "The new revision stays at zero traffic: Flagger does not check the rollback gate while Waiting, "
            "and confirm-rollout now keeps the revision out.\n"
            f"To end the rollout, revert {deployment_ref} to the deployed revision "
            "(revert the change in Git, or kubectl rollout undo)."
        )
        return
    gctx.out(f"canarygate/{name} aborted: rollback gate opened; Flagger rolls back on its next check")
    if phase in PROMOTING:
        gctx.err(f"warning: the Canary is {phase}: abort cannot stop a promotion already under way")
