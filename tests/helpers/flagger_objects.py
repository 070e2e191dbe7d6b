"""What the Flagger simulator's tests against an API server create: a Deployment and its Canary with
a webhook per gate type at a recorder, ticking fast."""

from __future__ import annotations

SCALE = 0.01  # interval 10s -> a tick every 0.1 s
GATES = [
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
]


def deployment(name, image):
    """Two replicas of ``image``, labelled app=NAME."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
        },
    }


def canary(name, hooks_url=None, hook_types=GATES, *, spec=None, **analysis):
    """Canary ``name`` of Deployment ``name``: a webhook ``HOOKS_URL/TYPE`` per type in ``hook_types``
    (none without ``hooks_url``), ``analysis`` over the default one, ``spec`` added to the spec."""
    spec_analysis = {"interval": "10s", "threshold": 2, "stepWeight": 20, "maxWeight": 40, **analysis}
    if hooks_url:
        spec_analysis["webhooks"] = [{"name": f"{t}-gate", "type": t, "url": f"{hooks_url}/{t}"} for t in hook_types]
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            **(spec or {}),
            "analysis": spec_analysis,
        },
    }
