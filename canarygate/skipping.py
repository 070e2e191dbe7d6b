"""The emergency path: let Flagger promote the rollout in progress without its analysis.

Flagger's own switch is the Canary's ``spec.skipAnalysis`` (Flagger v1.44.0,
pkg/controller/scheduler.go ``shouldSkipAnalysis``, docs/gitbook/usage/deployment-strategies.md "In
emergency cases ..."). At its next check of a rollout past confirm-rollout, once the canary
Deployment is ready, Flagger routes all traffic to the primary, copies the canary's pod template to
the primary (a plain rolling update of it, no traffic steps), scales the canary to zero, marks the
Canary Succeeded and runs the post-rollout hooks. It asks nothing else: no metric check, no
rollout, confirm-traffic-increase or confirm-promotion hook, not even the rollback hook, and it
does not check the primary's readiness first. A canary past its progress deadline is still rolled
back. confirm-rollout is still asked (``checkCanaryStatus`` runs before), so a Waiting rollout
stays Waiting until that gate lets it start.

The switch stays on until someone turns it off, and while it is on every new revision is promoted
the same way: ``kubectl gate skip-analysis`` turns it back off once the rollout ended.
"""

from __future__ import annotations

from typing import Any

from canarygate.model import Canary

#: Phases in which skipping the analysis promotes the rollout at Flagger's next check.
SKIPPABLE = frozenset({"Progressing", "WaitingPromotion", "Promoting", "Finalising"})


def refusal(canary: Canary | None, target: str) -> str | None:
    """Why the switch is not turned on now, or None."""
    if canary is None:
        return f"there is no Flagger Canary {target}: nothing to promote"
    if canary.skip_analysis:
        return (
            f"Canary {canary.ref} already has spec.skipAnalysis: true: Flagger promotes without analysis; turn "
            f"it off when done (kubectl patch canary {canary.name} -n {canary.namespace} --type merge "
            """-p '{"spec":{"skipAnalysis":false}}')"""
        )
    if canary.phase == "Waiting":
        return (
            f"Canary {canary.ref} is Waiting: Flagger asks confirm-rollout before it looks at spec.skipAnalysis; "
            f"let the rollout start first (kubectl gate promote {canary.name} -n {canary.namespace})"
        )
    if canary.phase not in SKIPPABLE:
        return (
            f"Canary {canary.ref} has no rollout in progress (phase {canary.phase or 'unknown'}): turning "
            "spec.skipAnalysis on now would promote the next revision without analysis; nothing to skip"
        )
    return None


def statement(canary: Canary, gate_ref: str, canarygate_name: str) -> str:
    """What turning the switch on does, said plainly before it is confirmed."""
    ref = canary.ref
    return (
        f"This sets spec.skipAnalysis: true on the Flagger Canary {ref}, Flagger's emergency switch.\n"
        "At its next check, once the canary Deployment is ready, Flagger sends all traffic back to the primary, "
        "copies the canary's pod template to it (a plain rolling update: no traffic steps), scales the canary to "
        "zero and marks the rollout Succeeded. It skips the metric checks and every gate but confirm-rollout: "
        "rollout, confirm-traffic-increase, confirm-promotion and the rollback gate are not asked, and the "
        "primary's readiness is not checked first.\n"
        "While spec.skipAnalysis is true every new revision is promoted this way: this command sets it back to "
        "false once the rollout has ended (if you stop it first, it says how).\n"
        f"GitOps: this Canary is rendered from CanaryGate {gate_ref} (spec.flagger). Whatever owns it puts its "
        "own value back: Argo CD or Flux self-heal, the sidecar's --reconcile (when the CanaryGate changes or "
        "its watch lists again), the next kubectl gate apply. If that happens before Flagger's next check, "
        "nothing is skipped. With the Canary in Git, do it there instead: spec.flagger.skipAnalysis: true in "
        f"CanaryGate {canarygate_name}, committed, and false again after the release."
    )


def turn_on(canary: Canary) -> list[dict[str, Any]]:
    """A JSON patch setting spec.skipAnalysis to true, conditional on the value it has now."""
    spec = canary.raw.get("spec") or {}
    ops: list[dict[str, Any]] = []
    if "skipAnalysis" in spec:
        ops.append({"op": "test", "path": "/spec/skipAnalysis", "value": spec["skipAnalysis"]})
    ops.append({"op": "add", "path": "/spec/skipAnalysis", "value": True})
    return ops


def restore(canary_before: Canary) -> list[dict[str, Any]]:
    """A JSON patch putting spec.skipAnalysis back as it was before :func:`turn_on`, only if it is still
    the true we set (someone who changed it since has the last word)."""
    spec = canary_before.raw.get("spec") or {}
    ops: list[dict[str, Any]] = [{"op": "test", "path": "/spec/skipAnalysis", "value": True}]
    if "skipAnalysis" in spec:
        ops.append({"op": "replace", "path": "/spec/skipAnalysis", "value": spec["skipAnalysis"]})
    else:
        ops.append({"op": "remove", "path": "/spec/skipAnalysis"})
    return ops
