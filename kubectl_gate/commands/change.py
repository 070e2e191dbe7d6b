"""``kubectl gate open|close GATE NAME``: a live gate change, audited.

The change is a merge patch of one annotation with the CanaryGate's resourceVersion as
precondition, retried from a fresh read on conflict; it names the user (SelfSubjectReview, else
the kubeconfig user), and an Event on the CanaryGate records who did what and why.
"""

from __future__ import annotations

import click

from canarygate import errors, hooks
from canarygate import gates as gate_names
from canarygate.annotations import SCOPE_ROLLOUT, SCOPE_STEP, SCOPE_STICKY, LiveChange
from canarygate.kube import canarygates
from canarygate.model import CanaryGate
from kubectl_gate import audit, lookup
from kubectl_gate.context import GateContext, pass_gate_ctx, rfc3339
from kubectl_gate.options import GATE, kube_options, name_options
from kubectl_gate.targets import run_each, select, selection_options
from kubectl_gate.views import GateView

VERBS = {gate_names.OPENED: "opened", gate_names.CLOSED: "closed"}


def scope_text(change: LiveChange) -> str:
    if change.scope == SCOPE_STICKY:
        return "until changed (sticky)"
    if change.scope == SCOPE_STEP:
        return "for this promotion" if change.gate == gate_names.CONFIRM_PROMOTION else "for one step"
    return "for this rollout" if change.rollout.active else "for the next rollout"


def change_gate(
    gctx: GateContext,
    name: str,
    gate: str,
    state: str,
    *,
    scope: str = SCOPE_ROLLOUT,
    reason: str = "",
    event_reason: str = "",
    namespace: str | None = None,
) -> tuple[CanaryGate, LiveChange]:
    """Write one live change and record an Event about it; returns the updated CanaryGate and the change."""
    namespace = namespace or gctx.ns
    user = gctx.username()

    def on_conflict(attempt: int) -> None:
        gctx.err(f"CanaryGate {namespace}/{name} changed meanwhile; reading it again (retry {attempt})")

    try:
        updated, change = canarygates.write_live_change(
            gctx.kube,
            namespace,
            name,
            gate=gate,
            state=state,
            by=user,
            at=rfc3339(gctx.now()),
            scope=scope,
            reason=reason,
            on_conflict=on_conflict,
        )
    except errors.CrdMissing:
        raise
    except errors.NotFound:  # say so with the close names
        raise lookup.gate_not_found(gctx, name, namespace) from None
    except errors.Forbidden as e:
        raise errors.Forbidden(
            f"{user} may not change gates of CanaryGate {namespace}/{name}: that takes 'get' and 'patch' on "
            f"canarygates.piggysec.com in namespace {namespace} ({e})"
        ) from e
    verb = VERBS[change.state]
    audit.record(
        gctx,
        updated,
        reason=event_reason or ("GateOpened" if verb == "opened" else "GateClosed"),
        message=f"{user} {verb} {gate} {scope_text(change)}",
        why=reason,
        done=f"the gate was {verb}",
    )
    return updated, change


def check_close_refusal(view: GateView, gate: str) -> str | None:
    """Why closing check gate ``gate`` now needs ``--yes``: a failed check every tick, then a rollback.

    None when the gate is no check (canarygate.hooks.CHECK_GATES) or no rollout is running.
    """
    canary = view.canary
    if gate not in hooks.CHECK_GATES or canary is None or not canary.active:
        return None
    name, ns = view.gate.name, view.gate.namespace
    left = max(0, canary.threshold - canary.failed_checks)
    every = f" (every {canary.interval})" if canary.interval else ""
    return (
        f"closing {gate} is not a pause: Flagger counts its 403 as a failed check on every tick{every} "
        f"(failed checks now {canary.failed_checks}/{canary.threshold}) and rolls the release back once "
        f"{canary.threshold} checks have failed, {left} more from now (Canary {canary.ref} is {canary.phase}).\n"
        f"To hold the rollout without failing checks: kubectl gate pause {name} -n {ns}\n"
        f"To roll back now: kubectl gate abort {name} -n {ns}\n"
        f"To close {gate} anyway: add --yes"
    )


def _change_command(state: str) -> click.Command:
    verb = "open" if state == gate_names.OPENED else "close"

    @click.command(verb)
    @click.argument("gate", type=GATE)
    @selection_options
    @name_options
    @click.option("--reason", "-r", default="", metavar="TEXT", help="Why: recorded in the annotation and the Event.")
    @click.option("--sticky", is_flag=True, help="Keep this state until someone changes it (default: this rollout).")
    @click.option(
        "--yes",
        "-y",
        is_flag=True,
        help="Close rollout or pre-rollout during a rollout, knowing Flagger then fails checks and rolls back.",
    )
    @kube_options
    @pass_gate_ctx
    def command(
        gctx: GateContext,
        gate: str,
        names: tuple[str, ...],
        deployment: str | None,
        reason: str,
        sticky: bool,
        yes: bool,
        selector: str | None,
        all_in_namespace: bool,
    ) -> None:
        targets = select(gctx, names, deployment=deployment, selector=selector, everything=all_in_namespace)
        run_each(gctx, targets, lambda name: one(gctx, name, gate, reason, sticky, yes), verb=VERBS[state])

    def one(gctx: GateContext, name: str, gate: str, reason: str, sticky: bool, yes: bool) -> None:
        if state == gate_names.CLOSED and gate in hooks.CHECK_GATES and not yes:
            refusal = check_close_refusal(lookup.load_view(gctx, name, with_events=False), gate)
            if refusal:
                raise errors.GateError(refusal)
        _, change = change_gate(gctx, name, gate, state, scope=SCOPE_STICKY if sticky else SCOPE_ROLLOUT, reason=reason)
        gctx.out(f"gate {gate} of canarygate/{name} {VERBS[state]} {scope_text(change)}")
        if gate == gate_names.ROLLBACK and state == gate_names.OPENED:
            gctx.err("the rollback gate is open: Flagger rolls the canary back on its next check")
        if gate in hooks.CHECK_GATES and state == gate_names.CLOSED:
            gctx.err(f"{gate} is closed: every check Flagger makes fails, and it rolls back at the threshold")

    command.__doc__ = (
        f"{verb.capitalize()} GATE of CanaryGate NAME, for the rollout in progress (or the next one if none\n"
        f"is running); --sticky keeps it {VERBS[state]} until changed. The gates: "
        + ", ".join(gate_names.GATES)
        + ".\n\nClosing rollout or pre-rollout is not a pause: Flagger counts each answer as a failed check "
        "and rolls back at the threshold, so during a rollout it needs --yes; 'kubectl gate pause' holds "
        "a rollout without failing checks."
        + f'\n\n\b\nExamples:\n  kubectl gate {verb} confirm-promotion demo -n demo-ns --reason "CAB-42"\n'
        f'  kubectl gate {verb} confirm-promotion -l team=pay -A --reason "change freeze"\n'
        f"  kubectl gate {verb} confirm-rollout -d demo -c prod    (the Go canary-gate CLI's form)"
    )
    command.help = command.__doc__
    return command


open_command = _change_command(gate_names.OPENED)
close_command = _change_command(gate_names.CLOSED)
