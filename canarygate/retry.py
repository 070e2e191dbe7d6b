"""Retrying a failed rollout: what ``kubectl gate retry`` writes, when it refuses, and what it says.

Flagger v1.44.0 has no "retry" of its own. A Failed Canary stays Failed until its target changes
(``shouldAdvance`` in pkg/controller/scheduler.go: in Failed it only re-syncs the status, then asks
``HasTargetChanged``/``HaveDependenciesChanged``); ``hasSpecChanged`` (pkg/canary/spec.go) calls a pod
template a new revision when its hash differs from ``lastAppliedSpec`` and from ``lastPromotedSpec``.
So the one way within Flagger is a new revision of the target, and Flagger's FAQ ("How to retry a
failed release?") says the same: add or change an annotation on the pod template. We set the one
``kubectl rollout restart`` sets, ``kubectl.kubernetes.io/restartedAt``, to the current time: a
template never seen before, so Flagger starts a new analysis at its next check, through
confirm-rollout like any new revision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canarygate import gates, hooks
from canarygate.model import Canary
from canarygate.resolution import Decision

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
#: Target kinds whose pod template Flagger hashes (``HasTargetChanged`` of the Deployment and
#: DaemonSet controllers; a Service target has no template).
KINDS = {"Deployment": "deployments", "DaemonSet": "daemonsets"}


@dataclass(frozen=True)
class Plan:
    kind: str
    resource: str  # the plural, apps/v1
    name: str
    namespace: str
    value: str

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    @property
    def patch(self) -> dict[str, Any]:
        """The merge patch: one pod-template annotation."""
        return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: self.value}}}}}


def refusal(canary: Canary | None, target: str) -> str | None:
    """Why there is nothing to retry, or None."""
    if canary is None:
        return f"there is no Flagger Canary {target}: nothing to retry"
    if canary.phase != "Failed":
        return (
            f"Canary {canary.ref} is {canary.phase or 'not initialised'}, not Failed: retry starts a failed "
            "rollout again, and there is none"
        )
    ref = (canary.raw.get("spec") or {}).get("targetRef") or {}
    kind = ref.get("kind") or "Deployment"
    if kind not in KINDS or not ref.get("name"):
        return f"Canary {canary.ref} targets a {kind}, which has no pod template Flagger tracks: nothing to change"
    return None


def plan(canary: Canary, now: str) -> Plan:
    ref = (canary.raw.get("spec") or {}).get("targetRef") or {}
    kind = ref.get("kind") or "Deployment"
    return Plan(kind=kind, resource=KINDS[kind], name=ref["name"], namespace=canary.namespace, value=now)


def warnings(decisions: Mapping[str, Decision]) -> list[str]:
    """Gate states that would end the new analysis at once (each a reason to look before retrying)."""
    out = []
    rollback = decisions.get(gates.ROLLBACK)
    if rollback is not None and rollback.opened:
        out.append(
            f"the rollback gate is opened ({rollback.source}, {rollback.scope or 'declared'}): Flagger would roll "
            "the new analysis back at its first check; close it first (kubectl gate close rollback NAME)"
        )
    for gate in sorted(hooks.CHECK_GATES):
        decision = decisions.get(gate)
        if decision is not None and decision.known and not decision.opened:
            out.append(
                f"{gate} is closed ({decision.source}): each check fails, and Flagger rolls back at the threshold"
            )
    return out


def statement(p: Plan, canary: Canary) -> str:
    """What the retry does, said plainly before it is confirmed."""
    return (
        f"This writes a new revision of {p.ref} in namespace {p.namespace}: it sets the pod template annotation\n"
        f'  spec.template.metadata.annotations["{RESTARTED_AT}"] = "{p.value}"\n'
        f"(what `kubectl rollout restart {p.ref}` sets). The template's code and configuration stay those of the "
        f"revision that failed.\n"
        f"Flagger sees a new revision of Canary {canary.ref} at its next check and starts a new analysis, "
        f"through confirm-rollout like any new revision; once promoted, the annotation is copied to "
        f"{p.name}-primary, whose pods then restart.\n"
        f"GitOps: if {p.ref} is kept in Git (Argo CD, Flux), they will see a drift on "
        f"spec.template.metadata.annotations. A sync that removes the annotation is itself a new revision, "
        f"which starts another analysis; commit it to Git, or tell the tool to ignore that field (Argo CD "
        f"ignoreDifferences on /spec/template/metadata/annotations/{RESTARTED_AT.replace('/', '~1')})."
    )
