"""Read the revision a Canary's target is at now: what Flagger tells a new revision by.

One GET of the target Deployment, then one GET per ConfigMap and Secret its pod template references
(:mod:`canarygate.configs`). Made when an approval is given while the revision waits (the CLI, with
the approver's credentials), and by the sidecar only for a confirm-rollout call answered with such an
approval, and once to bind an approval whose approver could not read every config.
"""

from __future__ import annotations

from typing import Any

from canarygate import configs, errors, rollouts
from canarygate.kube.client import Kube
from canarygate.kube.resources import CONFIGMAPS, DEPLOYMENTS, SECRETS
from canarygate.model import Canary


def target_deployment(kube: Kube, canary: Canary) -> dict[str, Any] | None:
    """The Canary's target Deployment; None when it targets none, or it does not exist."""
    ref = (canary.raw.get("spec") or {}).get("targetRef") or {}
    if ref.get("kind", "Deployment") != "Deployment" or not ref.get("name"):
        return None
    try:
        return kube.request(
            "GET", DEPLOYMENTS.path(canary.namespace, ref["name"]), resource=DEPLOYMENTS, name=ref["name"]
        )
    except errors.NotFound:
        return None


def config_entries(kube: Kube, namespace: str, template: dict[str, Any] | None) -> dict[str, str]:
    """``{"configmap/<name>": entry}`` for the configs ``template`` references: Flagger's checksum,
    ``absent``, or ``forbidden`` where these credentials may not read it. Other errors raise."""
    out: dict[str, str] = {}
    for kind, name in configs.references(template):
        resource = CONFIGMAPS if kind == configs.CONFIGMAP else SECRETS
        try:
            obj: dict[str, Any] | None = kube.request(
                "GET", resource.path(namespace, name), resource=resource, name=name
            )
        except errors.NotFound:
            obj = None
        except errors.Forbidden:
            out[f"{kind}/{name}"] = configs.FORBIDDEN
            continue
        value = configs.entry(kind, obj)
        if value is not None:
            out[f"{kind}/{name}"] = value
    return out


def read_revision(kube: Kube, canary: Canary) -> rollouts.Revision | None:
    """The target's revision now; None when the Canary targets no Deployment that exists. Raises
    Forbidden when these credentials may not get the Deployment, GateError on other API errors."""
    deployment = target_deployment(kube, canary)
    if deployment is None:
        return None
    template = (deployment.get("spec") or {}).get("template")
    return rollouts.Revision(rollouts.template_hash(deployment), config_entries(kube, canary.namespace, template))
