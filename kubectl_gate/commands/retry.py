"""``kubectl gate retry NAME``: start a failed rollout again, the way Flagger allows (canarygate.retry)."""

from __future__ import annotations

import click

from canarygate import errors
from canarygate import retry as retrying
from canarygate.kube.client import MERGE_PATCH
from kubectl_gate import audit, lookup
from kubectl_gate.context import GateContext, pass_gate_ctx, rfc3339
from kubectl_gate.options import kube_options, name_options, pick_name


@click.command("retry")
@click.argument("name", required=False, metavar="NAME")
@name_options
@click.option("--reason", "-r", default="", metavar="TEXT", help="Why: recorded in the Event.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@kube_options
@pass_gate_ctx
def retry_command(gctx: GateContext, name: str | None, deployment: str | None, reason: str, yes: bool) -> None:
    """Start the failed rollout of CanaryGate NAME again: Flagger runs a new analysis.

    Flagger retries nothing by itself: a Failed Canary waits for a new revision of its target. So
    retry writes one: it sets the pod template annotation kubectl.kubernetes.io/restartedAt (as
    'kubectl rollout restart' does) on the target Deployment, with your own credentials ('patch' on
    it). It says what it writes and asks first (--yes: do not ask), and refuses when the rollout is
    not Failed. A GitOps tool keeping that Deployment sees a drift on its pod template annotations.

    \b
    Examples:
      kubectl gate retry demo -n demo-ns
      kubectl gate retry demo --yes --reason "flaky load test"
    """
    name = pick_name(name, deployment)
    view = lookup.load_view(gctx, name, with_events=False, with_readiness=False)
    canary = view.canary
    target = f"{view.gate.target.namespace}/{view.gate.target.name}"
    refused = retrying.refusal(canary, target)
    if refused:
        raise errors.GateError(refused)
    assert canary is not None
    plan = retrying.plan(canary, rfc3339(gctx.now()))
    for warning in retrying.warnings(view.decisions):
        gctx.err(f"warning: {warning}")
    gctx.err(retrying.statement(plan, canary))
    if not yes and not click.confirm(f"Write the new revision of {plan.ref}?", default=False, err=True):
        raise click.exceptions.Exit(1)
    path = f"/apis/apps/v1/namespaces/{plan.namespace}/{plan.resource}/{plan.name}"
    try:
        gctx.kube.request("PATCH", path, body=plan.patch, content_type=MERGE_PATCH, name=plan.name)
    except errors.Forbidden as e:
        raise errors.Forbidden(
            f"{gctx.username()} may not retry: that takes 'patch' on {plan.resource}.apps {plan.name} in "
            f"namespace {plan.namespace} ({e})"
        ) from e
    message = f"{gctx.username()} retried the failed rollout: new revision of {plan.ref} ({retrying.RESTARTED_AT})"
    audit.record(gctx, view.gate, reason="Retried", message=message, why=reason, done="the retry is made")
    gctx.out(
        f"canarygate/{view.gate.name} retried: {plan.ref} has a new revision; Flagger analyses it at its next check"
    )
