"""Read the Deployments a Canary drives (its target and ``<target>-primary``) for readiness."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from canarygate import errors, readiness, rollouts
from canarygate.kube.client import Kube
from canarygate.kube.resources import DEPLOYMENTS
from canarygate.model import Canary


def get_deployment(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return kube.request("GET", DEPLOYMENTS.path(namespace, name), resource=DEPLOYMENTS, name=name)
    except errors.NotFound:
        return None


def canary_readiness(kube: Kube, canary: Canary, *, now: datetime) -> list[readiness.Readiness]:
    """The readiness of the canary and primary Deployments, as Flagger judges them; empty when the
    Canary targets no Deployment, or when they cannot be read (the caller shows nothing then)."""
    spec = canary.raw.get("spec") or {}
    ref = spec.get("targetRef") or {}
    if ref.get("kind", "Deployment") != "Deployment" or not ref.get("name"):
        return []
    deadline, canary_t, primary_t = readiness.thresholds(canary.raw)
    out = []
    try:
        for role, name, threshold in (
            ("canary", ref["name"], canary_t),
            ("primary", f"{ref['name']}-primary", primary_t),
        ):
            deployment = get_deployment(kube, canary.namespace, name)
            judged = readiness.deployment_readiness(
                deployment, role=role, name=name, now=now, deadline_seconds=deadline, threshold=threshold
            )
            out.append(replace(judged, template=rollouts.template_hash(deployment)))
    except errors.GateError:
        return []  # e.g. not allowed to read Deployments: readiness is simply not shown
    return out
