"""Flagger simulator against an API server (the sandbox emulator, or a real cluster).

Covers:
- a new Canary is initialised (Initializing -> Initialized) with Flagger's status fields, the
  ``<target>-primary`` Deployment is created and the target scaled to zero;
- an image change is detected and the rollout runs to Succeeded through the canary weights,
  calling the webhooks in Flagger's order over HTTP, promoting the new template into the
  primary, and recording core/v1 Events (reason Synced, involvedObject the Canary) through
  client-go's correlator (combined from the 10th distinct message, 25 writes per type) while
  every event reaches the event webhook;
- a closed confirm-rollout gate holds the Canary in Waiting until it opens;
- ``sandbox.flagger.app/metrics: fail`` drives a rollback by threshold to Failed, with
  post-rollout called with phase Failed;
- ``spec.suspend`` stops ticking (only the "suspended" event);
- ``python -m sandbox.flagger --kubeconfig ... --time-scale ...`` runs from the shell.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import kubernetes
import pytest
from helpers.flagger_objects import SCALE, canary, deployment

from sandbox.flagger import FlaggerSimulator
from sandbox.flagger.testing import HookRecorder

pytestmark = pytest.mark.e2e


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.fixture
def api(api_client, crds):
    class Api:
        custom = kubernetes.client.CustomObjectsApi(api_client)
        apps = kubernetes.client.AppsV1Api(api_client)
        core = kubernetes.client.CoreV1Api(api_client)

        def get_canary(self, ns, name):
            return self.custom.get_namespaced_custom_object("flagger.app", "v1beta1", ns, "canaries", name)

        def create_canary(self, ns, body):
            return self.custom.create_namespaced_custom_object("flagger.app", "v1beta1", ns, "canaries", body)

        def patch_canary(self, ns, name, body):
            return self.custom.patch_namespaced_custom_object("flagger.app", "v1beta1", ns, "canaries", name, body)

        def set_image(self, ns, name, image):
            self.apps.patch_namespaced_deployment(
                name, ns, {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}}
            )

        def events(self, ns, name):
            items = self.core.list_namespaced_event(ns).items
            return [
                e
                for e in sorted(items, key=lambda e: e.metadata.name)
                if e.involved_object.name == name and e.involved_object.kind == "Canary"
            ]

    return Api()


@pytest.fixture
def flagger(kubeconfig, namespace):
    with FlaggerSimulator(kubeconfig=kubeconfig, time_scale=SCALE, namespaces=[namespace]) as sim:
        yield sim


@pytest.fixture
def hooks():
    with HookRecorder() as recorder:
        recorder.respond("/rollback", 403, "no rollback")  # 200 would mean "roll back now"
        yield recorder


def test_initialise_then_roll_out_to_succeeded(api, namespace, flagger, hooks):
    api.apps.create_namespaced_deployment(namespace, deployment("podinfo", "podinfo:6.0.0"))
    api.create_canary(namespace, canary("podinfo", hooks.url))
    initialized = flagger.wait_for_phase(namespace, "podinfo", "Initialized", timeout=15)
    status = initialized["status"]
    assert (status["canaryWeight"], status["failedChecks"], status["iterations"]) == (0, 0, 0)
    assert status["lastAppliedSpec"] == status["lastPromotedSpec"]
    assert status["conditions"][0]["type"] == "Promoted"
    assert status["conditions"][0]["status"] == "True"
    assert (
        api.apps.read_namespaced_deployment("podinfo-primary", namespace).spec.template.spec.containers[0].image
        == "podinfo:6.0.0"
    )
    assert api.apps.read_namespaced_deployment("podinfo", namespace).spec.replicas == 0
    hooks.clear()

    api.set_image(namespace, "podinfo", "podinfo:6.0.1")
    done = flagger.wait_for_phase(namespace, "podinfo", "Succeeded", timeout=20)
    # Flagger writes Succeeded, then calls post-rollout and records "Promotion completed!"
    wait_until(
        lambda: any(r.json["metadata"]["eventMessage"].startswith("Promotion completed!") for r in hooks.calls("event"))
    )

    gates = [h for h in hooks.sequence() if h not in ("event", "rollback")]
    assert gates == [
        "confirm-rollout",
        "pre-rollout",
        "confirm-traffic-increase",
        "rollout",
        "confirm-traffic-increase",
        "rollout",
        "confirm-traffic-increase",
        "confirm-promotion",
        "post-rollout",
    ]
    assert [r.json["phase"] for r in hooks.calls("post-rollout")] == ["Succeeded"]
    weights = [t.status.get("canaryWeight") for t in flagger.history(namespace, "podinfo") if t.phase == "Progressing"]
    assert [w for i, w in enumerate(weights) if i == 0 or w != weights[i - 1]] == [0, 20, 40]
    assert done["status"]["lastPromotedSpec"] == done["status"]["lastAppliedSpec"] != status["lastAppliedSpec"]
    assert done["status"]["conditions"][0]["reason"] == "Succeeded"
    assert (
        api.apps.read_namespaced_deployment("podinfo-primary", namespace).spec.template.spec.containers[0].image
        == "podinfo:6.0.1"
    )
    assert api.apps.read_namespaced_deployment("podinfo", namespace).spec.replicas == 0

    # every event reached the event hook; the Kubernetes Events went through client-go's
    # correlator: from the 10th distinct message on they are combined, 25 writes per type at most
    sent_messages = [r.json["metadata"]["eventMessage"] for r in hooks.calls("event")]
    for expected in [
        "New revision detected! Scaling up podinfo." + namespace,
        "Starting canary analysis for podinfo." + namespace,
        "Advance podinfo." + namespace + " canary weight 20",
        "Advance podinfo." + namespace + " canary weight 40",
        "Copying podinfo." + namespace + " template spec to podinfo-primary." + namespace,
        "Routing all traffic to primary",
        "Promotion completed! Scaling down podinfo." + namespace,
    ]:
        assert expected in sent_messages
    events = api.events(namespace, "podinfo")
    normal = [e for e in events if e.type == "Normal"]
    plain = {e.message for e in normal if not e.message.startswith("(combined from similar events): ")}
    assert "Initialization done! podinfo." + namespace in plain
    assert len(plain) == 9
    assert any(e.message.startswith("(combined from similar events): ") for e in normal)
    recorded = [e for t in flagger.history(namespace, "podinfo") for e in t.events if e.type == "Normal"]
    # 25 at once, then one per 300 s scaled (3 s at this time scale)
    assert min(25, len(recorded)) <= sum(e.count for e in normal) <= min(len(recorded), 25 + 5)
    assert {(e.reason, e.source.component, e.involved_object.api_version) for e in events} == {
        ("Synced", "flagger", "flagger.app/v1beta1")
    }
    # each event went to the event hook, with its type and a millisecond timestamp
    sent = [r.json["metadata"] for r in hooks.calls("event")]
    assert {"eventMessage": "Routing all traffic to primary", "eventType": "Normal"}.items() <= next(
        m for m in sent if m["eventMessage"] == "Routing all traffic to primary"
    ).items()
    assert all(m["timestamp"].isdigit() and len(m["timestamp"]) == 13 for m in sent)
    # the rollback hook (answering 200 would roll back) was polled but never signalled
    assert {r.json["phase"] for r in hooks.calls("rollback")} <= {"Progressing"}


def test_confirm_rollout_gate_holds_in_waiting(api, namespace, flagger, hooks):
    api.apps.create_namespaced_deployment(namespace, deployment("held", "app:1"))
    api.create_canary(namespace, canary("held", hooks.url, hook_types=["confirm-rollout"]))
    flagger.wait_for_phase(namespace, "held", "Initialized", timeout=15)
    hooks.respond("/confirm-rollout", 403, "gate closed")
    api.set_image(namespace, "held", "app:2")
    flagger.wait_for_phase(namespace, "held", "Waiting", timeout=15)
    time.sleep(0.5)
    assert api.get_canary(namespace, "held")["status"]["phase"] == "Waiting"
    phases = [r.json["phase"] for r in hooks.calls("confirm-rollout")]
    assert phases[0] == "Initialized" and set(phases[1:]) == {"Waiting"} and len(phases) >= 3
    hooks.respond("/confirm-rollout", 200, "open")
    flagger.wait_for_phase(namespace, "held", "Succeeded", timeout=20)
    halts = [e for e in api.events(namespace, "held") if "waiting for approval" in e.message]
    assert [(e.type, e.message) for e in halts] == [
        ("Warning", f"Halt held.{namespace} advancement waiting for approval confirm-rollout-gate")
    ]


def test_failing_metrics_roll_back(api, namespace, flagger, hooks):
    api.apps.create_namespaced_deployment(namespace, deployment("bad", "app:1"))
    api.create_canary(namespace, canary("bad", hooks.url, hook_types=["post-rollout"]))
    flagger.wait_for_phase(namespace, "bad", "Initialized", timeout=15)
    api.patch_canary(namespace, "bad", {"metadata": {"annotations": {"sandbox.flagger.app/metrics": "fail"}}})
    api.set_image(namespace, "bad", "app:2")
    failed = flagger.wait_for_phase(namespace, "bad", "Failed", timeout=20)
    assert (failed["status"]["canaryWeight"], failed["status"]["failedChecks"]) == (0, 0)
    assert failed["status"]["conditions"][0]["status"] == "False"
    # NB: Flagger writes the Failed status, then calls the post-rollout hooks (as the simulator does)
    wait_until(lambda: hooks.calls("post-rollout"))
    assert [r.json["phase"] for r in hooks.calls("post-rollout")] == ["Failed"]
    messages = [e.message for e in api.events(namespace, "bad")]
    assert f"Rolling back bad.{namespace} failed checks threshold reached 2" in messages
    assert f"Canary failed! Scaling down bad.{namespace}" in messages
    halt = [e for e in api.events(namespace, "bad") if "success rate" in e.message]
    assert halt and halt[0].count >= 2  # the same event twice: aggregated into one
    assert (
        api.apps.read_namespaced_deployment("bad-primary", namespace).spec.template.spec.containers[0].image == "app:1"
    )


def test_suspended_canary_only_reports_it(api, namespace, flagger):
    api.apps.create_namespaced_deployment(namespace, deployment("paused", "app:1"))
    body = canary("paused")
    body["spec"]["suspend"] = True
    api.create_canary(namespace, body)
    flagger.wait_for_phase(namespace, "paused", "Initializing", timeout=15)
    time.sleep(0.4)
    assert api.get_canary(namespace, "paused")["status"]["phase"] == "Initializing"
    assert {e.message for e in api.events(namespace, "paused")} == {"skipping canary run as object is suspended"}


def test_command_line(api, namespace, kubeconfig):
    api.apps.create_namespaced_deployment(namespace, deployment("cli", "app:1"))
    api.create_canary(namespace, canary("cli"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.flagger",
            "--kubeconfig",
            kubeconfig,
            "--time-scale",
            str(SCALE),
            "--namespace",
            namespace,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    try:
        deadline = time.monotonic() + 20
        while (api.get_canary(namespace, "cli").get("status") or {}).get("phase") != "Initialized":
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "not initialised by python -m sandbox.flagger"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "flagger simulator running" in err


def test_namespaces_read_once_reach_the_controller_and_the_deployment_writer(api, kubeconfig, namespace):
    # A generator can be read once: the simulator lists it once for both of its parts, so the
    # Deployments there become ready (the writer) and the Canary is initialised (the controller).
    api.apps.create_namespaced_deployment(namespace, deployment("once", "app:1"))
    api.create_canary(namespace, canary("once"))
    with FlaggerSimulator(kubeconfig=kubeconfig, time_scale=SCALE, namespaces=(n for n in [namespace])) as sim:
        initialized = sim.wait_for_phase(namespace, "once", "Initialized", timeout=15)
    assert initialized["status"]["conditions"][0]["type"] == "Promoted"
    assert api.apps.read_namespaced_deployment("once-primary", namespace).status.ready_replicas == 2
