"""Flagger simulator: readiness from the Deployments' status, as ``isDeploymentReady`` reads it.

Covers:
- each rule of ``isDeploymentReady`` in its order (observedGeneration, ProgressDeadlineExceeded,
  updated vs spec.replicas, old replicas, available vs readyThreshold in float32, Available=False
  older than the progress deadline making a not-ready answer final);
- against the API server with the Deployment status writer: an unready canary
  (``sandbox.deployments/ready: "false"``) gets no hook at all, rollback included, only the warning's event webhook,
  then goes on once ready; a
  canary past its deadline (``"deadline"``, or Available=False for longer than
  ``progressDeadlineSeconds``) is rolled back with no analysis hook; an unready primary holds
  initialisation; the simulator never reads the old ``sandbox.flagger.app/*-ready`` annotations.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import kubernetes
import pytest
from helpers.flagger_objects import SCALE, canary, deployment

from sandbox.deployments import READY_ANNOTATION
from sandbox.flagger import FlaggerSimulator
from sandbox.flagger.readiness import deployment_readiness, thresholds
from sandbox.flagger.testing import HookRecorder

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def dep(replicas=2, generation=3, observed=3, updated=2, total=2, available=2, conditions=None):
    return {
        "metadata": {"name": "podinfo", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "replicas": total,
            "availableReplicas": available,
            "conditions": conditions or [],
        },
    }


def progressing(reason="NewReplicaSetAvailable", status="True"):
    return {"type": "Progressing", "status": status, "reason": reason}


def unavailable(since):
    return {
        "type": "Available",
        "status": "False",
        "reason": "MinimumReplicasUnavailable",
        "lastUpdateTime": stamp(since),
        "lastTransitionTime": stamp(since),
    }


def test_ready_when_every_count_is_up_to_date():
    assert deployment_readiness(dep(conditions=[progressing()]), now=NOW).ready


def test_generation_not_observed_comes_first():
    r = deployment_readiness(dep(observed=2, conditions=[progressing("ProgressDeadlineExceeded", "False")]), now=NOW)
    assert (r.ready, r.retriable, r.message) == (
        False,
        True,
        "waiting for rollout to finish: observed deployment generation less than desired generation",
    )


def test_progress_deadline_exceeded_is_final():
    r = deployment_readiness(dep(conditions=[progressing("ProgressDeadlineExceeded", "False")]), now=NOW)
    assert (r.ready, r.retriable, r.message) == (False, False, 'deployment "podinfo" exceeded its progress deadline')


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"updated": 1}, "waiting for rollout to finish: 1 out of 2 new replicas have been updated"),
        ({"total": 3}, "waiting for rollout to finish: 1 old replicas are pending termination"),
        (
            {"available": 1},
            "waiting for rollout to finish: 1 of 2 (readyThreshold 100%) updated replicas are available",
        ),
    ],
)
def test_counts_in_flaggers_order(kwargs, message):
    r = deployment_readiness(dep(**kwargs), now=NOW)
    assert (r.ready, r.retriable, r.message) == (False, True, message)


def test_ready_threshold_truncates_like_float32():
    # 3 updated x 0.67 = 2.01 -> 2 available needed; 1 is not enough, 2 is
    assert not deployment_readiness(dep(replicas=3, updated=3, total=3, available=1), now=NOW, threshold=67).ready
    assert deployment_readiness(dep(replicas=3, updated=3, total=3, available=2), now=NOW, threshold=67).ready


def test_available_false_older_than_the_deadline_makes_not_ready_final():
    fresh = dep(available=0, conditions=[progressing(), unavailable(NOW - timedelta(seconds=599))])
    stale = dep(available=0, conditions=[progressing(), unavailable(NOW - timedelta(seconds=601))])
    assert deployment_readiness(fresh, now=NOW).retriable
    assert not deployment_readiness(stale, now=NOW).retriable
    assert not deployment_readiness(fresh, now=NOW, deadline_seconds=60).retriable
    # without a Progressing condition the Available one is not looked at
    bare = dep(available=0, conditions=[unavailable(NOW - timedelta(seconds=601))])
    assert deployment_readiness(bare, now=NOW).retriable
    # and a stale Available=False alone does not make a ready Deployment unready
    assert deployment_readiness(dep(conditions=[progressing(), unavailable(NOW - timedelta(days=1))]), now=NOW).ready


def test_scaled_to_zero_is_ready():
    assert deployment_readiness(dep(replicas=0, updated=0, total=0, available=0), now=NOW).ready


def test_times_as_the_api_and_the_python_client_give_them():
    for since in (stamp(NOW - timedelta(seconds=601)), (NOW - timedelta(seconds=601)).isoformat()):
        old = dep(available=0, conditions=[progressing(), {**unavailable(NOW), "lastUpdateTime": since}])
        assert not deployment_readiness(old, now=NOW).retriable
    recent = dep(available=0, conditions=[progressing(), {**unavailable(NOW), "lastUpdateTime": NOW.isoformat()}])
    assert deployment_readiness(recent, now=NOW).retriable


def test_thresholds_from_the_canary():
    assert thresholds({"spec": {"analysis": {}}}) == (600, 100, 100)
    assert thresholds(
        {"spec": {"progressDeadlineSeconds": 60, "analysis": {"primaryReadyThreshold": 50, "canaryReadyThreshold": 0}}}
    ) == (60, 50, 0)


# --- against the API server ------------------------------------------------------------------


class Cluster:
    def __init__(self, api_client, namespace):
        self.ns = namespace
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self.custom = kubernetes.client.CustomObjectsApi(api_client)

    def canary(self, name):
        return self.custom.get_namespaced_custom_object("flagger.app", "v1beta1", self.ns, "canaries", name)

    def create(self, name, hooks_url, **spec):
        self.apps.create_namespaced_deployment(self.ns, deployment(name, "app:1"))
        self.custom.create_namespaced_custom_object(
            "flagger.app", "v1beta1", self.ns, "canaries", canary(name, hooks_url, spec=spec)
        )

    def annotate(self, name, value):
        self.apps.patch_namespaced_deployment(name, self.ns, {"metadata": {"annotations": {READY_ANNOTATION: value}}})

    def set_image(self, name, image):
        self.apps.patch_namespaced_deployment(
            name, self.ns, {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}}
        )


@pytest.fixture
def cluster(api_client, crds, namespace):
    return Cluster(api_client, namespace)


@pytest.fixture
def hooks():
    with HookRecorder() as recorder:
        recorder.respond("/rollback", 403, "no rollback")
        yield recorder


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.mark.e2e
def test_unready_canary_gets_no_hook_then_goes_on(cluster, namespace, hooks, kubeconfig):
    with FlaggerSimulator(kubeconfig=kubeconfig, time_scale=SCALE, namespaces=[namespace]) as flagger:
        cluster.create("crash", hooks.url)
        flagger.wait_for_phase(namespace, "crash", "Initialized", timeout=15)
        cluster.annotate("crash", "false")  # the canary's pods crash-loop
        cluster.set_image("crash", "app:2")
        flagger.wait_for_phase(namespace, "crash", "Progressing", timeout=15)
        wait_until(
            lambda: sum("not ready" in m for t in flagger.history(namespace, "crash") for m in t.messages()) >= 5
        )
        hooks.clear()
        time.sleep(0.5)  # five more ticks while unready
        assert {r.hook for r in hooks.calls()} == {"event"}
        assert {r.json["metadata"]["eventMessage"] for r in hooks.calls()} == {
            f"canary deployment crash.{namespace} not ready: waiting for rollout to finish: "
            "0 of 2 (readyThreshold 100%) updated replicas are available"
        }
        canary = cluster.canary("crash")["status"]
        assert (canary["phase"], canary["canaryWeight"], canary["failedChecks"]) == ("Progressing", 0, 0)
        cluster.annotate("crash", None)  # pods come up
        flagger.wait_for_phase(namespace, "crash", "Succeeded", timeout=20)
        assert "pre-rollout" in [r.hook for r in hooks.calls()]


@pytest.mark.e2e
def test_canary_past_its_deadline_is_rolled_back(cluster, namespace, hooks, kubeconfig):
    with FlaggerSimulator(kubeconfig=kubeconfig, time_scale=SCALE, namespaces=[namespace]) as flagger:
        cluster.create("stuck", hooks.url)
        flagger.wait_for_phase(namespace, "stuck", "Initialized", timeout=15)
        cluster.annotate("stuck", "deadline")
        cluster.set_image("stuck", "app:2")
        flagger.wait_for_phase(namespace, "stuck", "Failed", timeout=15)
        wait_until(lambda: hooks.calls("post-rollout"))  # called after the Failed status write
        gates = [r.hook for r in hooks.calls() if r.hook != "event"]
        # confirm-rollout before the scale-up; then no analysis hook, no rollback hook: the
        # rollback comes from the deadline, and post-rollout reports it
        assert gates == ["confirm-rollout", "post-rollout"]
        messages = [r.json["metadata"]["eventMessage"] for r in hooks.calls("event")]
        assert (
            f'canary deployment stuck.{namespace} not ready: deployment "stuck" exceeded its progress deadline'
            in messages
        )


@pytest.mark.e2e
def test_canary_unavailable_longer_than_its_deadline_is_rolled_back(cluster, namespace, hooks, kubeconfig):
    """Available=False older than progressDeadlineSeconds (scaled: 100 s x 0.01 = 1 s)."""
    with FlaggerSimulator(kubeconfig=kubeconfig, time_scale=SCALE, namespaces=[namespace]) as flagger:
        cluster.create("late", hooks.url, progressDeadlineSeconds=100)
        flagger.wait_for_phase(namespace, "late", "Initialized", timeout=15)
        cluster.annotate("late", "false")
        cluster.set_image("late", "app:2")
        flagger.wait_for_phase(namespace, "late", "Progressing", timeout=15)
        flagger.wait_for_phase(namespace, "late", "Failed", timeout=15)
        wait_until(lambda: hooks.calls("post-rollout"))
        assert [r.hook for r in hooks.calls() if r.hook != "event"] == ["confirm-rollout", "post-rollout"]
        wait_until(lambda: any(t.phase == "Failed" for t in flagger.history(namespace, "late")))
        final = next(t for t in flagger.history(namespace, "late") if t.phase == "Failed")
        assert final.messages()[:2] == [
            f"canary deployment late.{namespace} not ready: waiting for rollout to finish: "
            "0 of 2 (readyThreshold 100%) updated replicas are available",
            f"Canary failed! Scaling down late.{namespace}",
        ]


@pytest.mark.e2e
def test_unready_primary_holds_initialisation(cluster, namespace, hooks, kubeconfig):
    with FlaggerSimulator(kubeconfig=kubeconfig, time_scale=SCALE, namespaces=[namespace]) as flagger:
        cluster.apps.create_namespaced_deployment(namespace, deployment("slow", "app:1"))
        # Flagger copies the target's annotations into the primary it creates
        cluster.annotate("slow", "false")
        cluster.custom.create_namespaced_custom_object(
            "flagger.app", "v1beta1", namespace, "canaries", canary("slow", hooks.url)
        )
        wait_until(lambda: len(flagger.history(namespace, "slow")) >= 5)
        assert cluster.canary("slow")["status"]["phase"] == "Initializing"
        assert {r.hook for r in hooks.calls()} == {"event"}
        cluster.annotate("slow-primary", None)
        flagger.wait_for_phase(namespace, "slow", "Initialized", timeout=15)


@pytest.mark.e2e
def test_old_canary_annotations_are_not_read(cluster, namespace, hooks, kubeconfig):
    with FlaggerSimulator(kubeconfig=kubeconfig, time_scale=SCALE, namespaces=[namespace]) as flagger:
        cluster.create("plain", hooks.url)
        cluster.custom.patch_namespaced_custom_object(
            "flagger.app",
            "v1beta1",
            namespace,
            "canaries",
            "plain",
            {
                "metadata": {
                    "annotations": {
                        "sandbox.flagger.app/canary-ready": "false",
                        "sandbox.flagger.app/primary-ready": "false",
                    }
                }
            },
        )
        flagger.wait_for_phase(namespace, "plain", "Initialized", timeout=15)
        cluster.set_image("plain", "app:2")
        flagger.wait_for_phase(namespace, "plain", "Succeeded", timeout=20)
