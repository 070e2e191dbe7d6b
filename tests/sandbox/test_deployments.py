"""The Deployment status stand-in, on both tiers: what Flagger's isDeploymentReady reads, written as the
Deployment controller would, and held unready on request.

On the sandbox it runs in the test against the emulator; on the real tier ``python -m sandbox.cluster``
runs it against the real kube-apiserver (no kube-controller-manager Deployment controller runs there),
so the test only observes.
"""

from __future__ import annotations

import time

import kubernetes
import pytest
from helpers.tiers import REAL, SLOWDOWN

from sandbox.deployments import READY_ANNOTATION, DeploymentStatusWriter


@pytest.fixture
def apps(api_client, namespace):
    if REAL:
        yield kubernetes.client.AppsV1Api(api_client)
        return
    with DeploymentStatusWriter(api_client, namespaces=[namespace]):
        yield kubernetes.client.AppsV1Api(api_client)


def wait_for(read, predicate, what: str):
    deadline = time.monotonic() + 10 * min(SLOWDOWN, 3)
    while True:
        deployment = read()
        if predicate(deployment):
            return deployment
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: status is {deployment.status}")
        time.sleep(0.1)


def deployment(name: str, replicas: int) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "podinfo:1"}]},
            },
        },
    }


def conditions(d) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in d.status.conditions or []}


def test_ready_as_the_deployment_controller_reports_it_then_scaled_to_zero_and_back(apps, namespace):
    apps.create_namespaced_deployment(namespace, deployment("web", 2))

    def read():
        return apps.read_namespaced_deployment("web", namespace)

    ready = wait_for(
        read,
        lambda d: d.status.observed_generation == d.metadata.generation and d.status.available_replicas == 2,
        "ready with 2 replicas",
    )
    assert (ready.status.replicas, ready.status.updated_replicas, ready.status.ready_replicas) == (2, 2, 2)
    assert conditions(ready) == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 0}})  # Flagger's ScaleToZero
    zero = wait_for(read, lambda d: d.status.observed_generation == d.metadata.generation, "scaled to zero")
    assert (zero.status.replicas, zero.status.available_replicas) == (None, None)
    assert conditions(zero)["Available"][0] == "True"
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 1}})
    wait_for(
        read,
        lambda d: d.status.observed_generation == d.metadata.generation and d.status.available_replicas == 1,
        "scaled back to 1",
    )


def test_held_unready_then_past_its_deadline_then_ready_again(apps, namespace):
    apps.create_namespaced_deployment(namespace, deployment("web", 1))

    def read():
        return apps.read_namespaced_deployment("web", namespace)

    wait_for(read, lambda d: d.status.available_replicas == 1, "ready")
    apps.patch_namespaced_deployment("web", namespace, {"metadata": {"annotations": {READY_ANNOTATION: "false"}}})
    held = wait_for(read, lambda d: not d.status.available_replicas, "held unready")
    assert held.status.updated_replicas == 1 and held.status.unavailable_replicas == 1
    assert conditions(held) == {
        "Available": ("False", "MinimumReplicasUnavailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    apps.patch_namespaced_deployment("web", namespace, {"metadata": {"annotations": {READY_ANNOTATION: "deadline"}}})
    late = wait_for(
        read,
        lambda d: conditions(d).get("Progressing", ("", ""))[1] == "ProgressDeadlineExceeded",
        "past its progress deadline",
    )
    assert conditions(late)["Progressing"][0] == "False"
    apps.patch_namespaced_deployment("web", namespace, {"metadata": {"annotations": {READY_ANNOTATION: None}}})
    wait_for(
        read,
        lambda d: (
            d.status.available_replicas == 1 and conditions(d).get("Progressing") == ("True", "NewReplicaSetAvailable")
        ),
        "ready again",
    )
