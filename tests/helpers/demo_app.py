"""The demo Deployment the rollouts run on (e2e, the CLI's tests) and what is done to it through the
API: created, given a new revision (what starts a rollout), its gates changed live as ``kubectl gate
open|close`` does. Also the declared gates of the seed scenario held at 20 percent."""

from __future__ import annotations

import time

from canarygate.kube.canarygates import write_live_change
from canarygate.kube.client import MERGE_PATCH, Kube

#: The seed scenario's CanaryGate held at confirm-promotion at 20 percent (keyword arguments of
#: ``Rollouts.create`` and of the CLI test's ``gate.apply``).
HELD_AT_20_PERCENT = {
    "confirm_rollout": "opened",
    "rollout": "opened",
    "confirm_traffic_increase": "opened",
    "confirm_promotion": "closed",
    "analysis": {"interval": "10s", "threshold": 2, "maxWeight": 20, "stepWeight": 20, "stepWeightPromotion": 100},
}


def create_deployment(kube: Kube, namespace: str, name: str = "demo") -> dict:
    """A one-replica Deployment ``name`` (label app=NAME, pod annotation version=1)."""
    return kube.request(
        "POST",
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        body={
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": {"version": "1"}},
                    "spec": {"containers": [{"name": "app", "image": "podinfo:1"}]},
                },
            },
        },
    )


def new_revision(kube: Kube, namespace: str, name: str = "demo", version: str = "2") -> None:
    """A new pod template (annotation version=VERSION): Flagger starts a rollout of it."""
    kube.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        body={"spec": {"template": {"metadata": {"annotations": {"version": version}}}}},
        content_type=MERGE_PATCH,
    )


def set_gate_live(kube: Kube, namespace: str, name: str, gate: str, state: str, *, scope: str) -> None:
    """Open or close ``gate`` live by e2e, now, as ``kubectl gate open|close`` does (annotation write)."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_live_change(kube, namespace, name, gate=gate, state=state, by="e2e", at=at, scope=scope)
