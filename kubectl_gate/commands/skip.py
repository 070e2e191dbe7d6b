"""``kubectl gate skip-analysis NAME``: the emergency path, Flagger's spec.skipAnalysis (canarygate.skipping)."""

from __future__ import annotations

import time

import click

from canarygate import errors, skipping
from canarygate.kube import canaries, events
from canarygate.kube.client import JSON_PATCH
from canarygate.kube.resources import CANARIES
from canarygate.model import END_PHASES, Canary
from kubectl_gate import audit, exitcodes, lookup
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, name_options, pick_name

#: Seconds between two reads of the Canary while waiting for the rollout to end.
POLL = 2.0


def _patch(gctx: GateContext, canary: Canary, ops: list) -> None:
    gctx.kube.request(
        "PATCH",
        CANARIES.path(canary.namespace, canary.name),
        body=ops,
        content_type=JSON_PATCH,
        resource=CANARIES,
        name=canary.name,
    )


def _restore_hint(canary: Canary) -> str:
    return (
        f"kubectl patch canary {canary.name} -n {canary.namespace} --type merge "
        """-p '{"spec":{"skipAnalysis":false}}'"""
    )


@click.command("skip-analysis")
@click.argument("name", required=False, metavar="NAME")
@name_options
@click.option("--reason", "-r", default="", metavar="TEXT", help="Why: recorded in the Event.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the rollout to end before leaving spec.skipAnalysis on (and saying so).",
)
@kube_options
@pass_gate_ctx
def skip_command(
    gctx: GateContext, name: str | None, deployment: str | None, reason: str, yes: bool, timeout: float
) -> None:
    """Emergency: let Flagger promote the rollout of CanaryGate NAME now, without its analysis.

    Sets spec.skipAnalysis: true on the Flagger Canary (your own credentials: 'patch' on
    canaries.flagger.app), waits until the rollout has ended, then sets it back, so that the next
    revision is analysed again. Flagger then skips its metric checks and every gate but
    confirm-rollout, rollback included. It says all that and asks first (--yes: do not ask). A
    GitOps tool or the sidecar's --reconcile that owns the Canary puts its value back: with the
    Canary in Git, set spec.flagger.skipAnalysis in the CanaryGate there instead.

    \b
    Examples:
      kubectl gate skip-analysis demo -n demo-ns --reason "INC-42: hotfix, on-call approved"
    """
    name = pick_name(name, deployment)
    view = lookup.load_view(gctx, name, with_events=False, with_readiness=False)
    canary = view.canary
    refused = skipping.refusal(canary, f"{view.gate.target.namespace}/{view.gate.target.name}")
    if refused:
        raise errors.GateError(refused)
    assert canary is not None
    gctx.err(skipping.statement(canary, view.gate.ref, view.gate.name))
    if not yes and not click.confirm(f"Skip the analysis of Canary {canary.ref}?", default=False, err=True):
        raise click.exceptions.Exit(exitcodes.ERROR)
    try:
        _patch(gctx, canary, skipping.turn_on(canary))
    except errors.Forbidden as e:
        raise errors.Forbidden(
            f"{gctx.username()} may not skip the analysis: that takes 'patch' on canaries.flagger.app "
            f"{canary.name} in namespace {canary.namespace} ({e})"
        ) from e
    except (errors.Invalid, errors.Conflict):
        raise errors.GateError(f"Canary {canary.ref} changed meanwhile: run the command again") from None
    message = f"{gctx.username()} turned on spec.skipAnalysis of Canary {canary.ref}: promote without analysis"
    audit.record(
        gctx,
        view.gate,
        reason="AnalysisSkipped",
        message=message,
        why=reason,
        done="the analysis is skipped",
        type=events.WARNING,
    )
    gctx.err(f"spec.skipAnalysis is on; waiting for Flagger to end the rollout (at most {timeout:.0f}s)...")
    phase = _wait_end(gctx, canary, timeout)
    if phase is None:
        gctx.err(
            f"error: the rollout has not ended in {timeout:.0f}s; spec.skipAnalysis stays on, so the next "
            f"revision would be promoted without analysis too. Turn it off when done: {_restore_hint(canary)}"
        )
        raise click.exceptions.Exit(exitcodes.TIMEOUT)
    try:
        _patch(gctx, canary, skipping.restore(canary))
        restored = "spec.skipAnalysis is set back"
    except (errors.Invalid, errors.Conflict):
        restored = "spec.skipAnalysis was changed by someone else meanwhile: left as they set it"
    except errors.GateError as e:
        gctx.err(f"error: could not set spec.skipAnalysis back ({e}); do it with: {_restore_hint(canary)}")
        raise click.exceptions.Exit(exitcodes.ERROR) from None
    gctx.out(f"canarygate/{view.gate.name}: the rollout ended {phase}; {restored}")
    if phase != "Succeeded":
        raise click.exceptions.Exit(exitcodes.FAILED)


def _wait_end(gctx: GateContext, canary: Canary, timeout: float) -> str | None:
    """The phase that ended the rollout, or None at the timeout (or Ctrl-C: the hint is printed)."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            current = canaries.find_canary(gctx.kube, canary.namespace, canary.name)
            if current is not None and current.phase in END_PHASES:
                return current.phase
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        gctx.err(f"\ninterrupted: spec.skipAnalysis stays on. Turn it off when done: {_restore_hint(canary)}")
        raise
