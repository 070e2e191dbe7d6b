"""Differential: the Flagger simulator against real Flagger v1.44, Canary by Canary.

Each scenario runs twice at once, in real time: under the simulator (time scale 1) on an emulator
of its own, and under real Flagger on the real cluster. Both Canaries send every hook to their own
recording endpoint, which answers from the same script (answers counted per hook, so neither run
depends on timing). Compared: the hooks called in order with the phase and the checksum's role
(which revision it names) in their payloads, the phases the event webhook reported, and the final
status. Differences that are kept are listed in ``sandbox/flagger/__init__.py``.

Only the real tier has real Flagger, so this runs in ``make e2e``.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from helpers.tiers import REAL

from sandbox.flagger.testing import HookRecorder, Response

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not REAL, reason="compares the simulator with real Flagger, which only the real tier (make e2e) runs"
    ),
]

HOOKS = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
)
BASE = {"interval": "10s", "threshold": 2}
NO = Response(403, "closed")
YES = Response(200, "opened")

SCENARIOS: dict[str, dict[str, Any]] = {
    "canary-stepweight": {"analysis": {**BASE, "maxWeight": 20, "stepWeight": 10}},
    "canary-stepweights": {"analysis": {**BASE, "stepWeights": [10, 30]}},
    "ab-testing": {"analysis": {**BASE, "iterations": 2, "match": [{"headers": {"x-canary": {"exact": "insider"}}}]}},
    "blue-green": {"analysis": {**BASE, "iterations": 2}},
    "skip-analysis": {
        "expect": {"confirm-rollout", "post-rollout"},
        "analysis": {**BASE, "maxWeight": 20, "stepWeight": 10},
        "skipAnalysis": True,
    },
    "confirm-rollout-closed-then-opened": {
        "analysis": {**BASE, "maxWeight": 20, "stepWeight": 10},
        "script": {"confirm-rollout": [NO, NO, YES]},
    },
    "traffic-increase-closed-then-opened": {
        "analysis": {**BASE, "maxWeight": 20, "stepWeight": 10},
        "script": {"confirm-traffic-increase": [NO, NO, YES]},
    },
    "promotion-closed-then-opened": {
        "analysis": {**BASE, "maxWeight": 10, "stepWeight": 10},
        "script": {"confirm-promotion": [NO, NO, YES]},
    },
    "rollback-gate-opened": {
        "ends": "Failed",
        "analysis": {**BASE, "maxWeight": 50, "stepWeight": 10},
        "script": {"rollback": [NO, NO, NO, YES]},
    },
    "rollout-check-fails": {
        "ends": "Failed",
        "analysis": {**BASE, "maxWeight": 50, "stepWeight": 10},
        "script": {"rollout": [YES, Response(500, "down")]},
    },
    "canary-turns-unready": {"analysis": {**BASE, "maxWeight": 30, "stepWeight": 10}, "unready_for": 25.0},
}


class World:
    """One side: an API, whatever drives Canaries there, a namespace and a recording endpoint."""

    def __init__(self, name: str, api_client: kubernetes.client.ApiClient, namespace: str, recorder: HookRecorder):
        self.name = name
        self.api = api_client
        self.namespace = namespace
        self.recorder = recorder
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self.custom = kubernetes.client.CustomObjectsApi(api_client)

    def create(self, scenario: dict[str, Any]) -> None:
        ns = self.namespace
        self.apps.create_namespaced_deployment(
            ns,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "app", "namespace": ns},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "app"}},
                    "template": {
                        "metadata": {"labels": {"app": "app"}, "annotations": {"version": "1"}},
                        "spec": {"containers": [{"name": "app", "image": "podinfo:1"}]},
                    },
                },
            },
        )
        webhooks = [
            {"name": hook, "type": hook, "url": f"{self.recorder.url}/{hook}", "timeout": "5s"} for hook in HOOKS
        ]
        webhooks.append({"name": "events", "type": "event", "url": f"{self.recorder.url}/event"})
        self.custom.create_namespaced_custom_object(
            "flagger.app",
            "v1beta1",
            ns,
            "canaries",
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "Canary",
                "metadata": {"name": "app", "namespace": ns},
                "spec": {
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
                    "progressDeadlineSeconds": 600,
                    "service": {"port": 80},
                    "skipAnalysis": bool(scenario.get("skipAnalysis")),
                    "analysis": {**scenario["analysis"], "webhooks": webhooks},
                },
            },
        )

    def status(self) -> dict[str, Any]:
        canary = self.custom.get_namespaced_custom_object("flagger.app", "v1beta1", self.namespace, "canaries", "app")
        return canary.get("status") or {}

    def wait(self, phases: tuple[str, ...], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            phase = self.status().get("phase", "")
            if phase in phases:
                return phase
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name}: canary not in {phases} after {timeout:.0f} s (phase {phase!r}); "
                    f"hooks so far: {self.recorder.sequence()}"
                )
            time.sleep(0.5)

    def patch(self, body: dict[str, Any]) -> None:
        self.apps.patch_namespaced_deployment("app", self.namespace, body)

    def run(self, scenario: dict[str, Any], errors: list) -> None:
        """Initialise, ship revision 2, do the scenario's action, wait for the end."""
        try:
            self.create(scenario)
            self.wait(("Initialized",), 120)
            time.sleep(1)
            self.patch({"spec": {"template": {"metadata": {"annotations": {"version": "2"}}}}})
            if scenario.get("unready_for"):
                self.wait(("Progressing",), 120)
                self.patch({"metadata": {"annotations": {"sandbox.deployments/ready": "false"}}})
                time.sleep(scenario["unready_for"])
                self.patch({"metadata": {"annotations": {"sandbox.deployments/ready": None}}})
            self.wait(("Succeeded", "Failed"), 420)
            time.sleep(3)  # post-rollout and the last events come in the same tick
        except Exception as e:  # noqa: BLE001 - reported by the test thread
            errors.append(e)


def roles(calls) -> list[tuple[str, str, str]]:
    """(hook, phase, checksum role) of the gate hooks in order; a role names the n-th revision seen."""
    seen: dict[str, str] = {}
    out = []
    for call in calls:
        body = call.json or {}
        checksum = body.get("checksum", "")
        role = seen.setdefault(checksum, f"rev{len(seen)}")
        out.append((call.hook, body.get("phase", ""), role))
    return out


def summary(world: World) -> dict[str, Any]:
    gate_calls = [c for c in world.recorder.calls() if c.hook != "event"]
    events = world.recorder.calls("event")
    phases: list[str] = []
    for call in events:
        phase = (call.json or {}).get("phase", "")
        if not phases or phases[-1] != phase:
            phases.append(phase)
    status = world.status()
    return {
        "hooks": roles(gate_calls),
        "event_phases": phases,
        "final": {k: status.get(k) for k in ("phase", "canaryWeight", "failedChecks", "iterations")},
    }


def collapse(seq: list) -> list:
    return [x for i, x in enumerate(seq) if i == 0 or seq[i - 1] != x]


@pytest.fixture
def simulated_world():
    """An emulator with the simulator (and its Deployment status stand-in), in real time."""
    from sandbox.apiserver import ApiServer
    from sandbox.flagger import FlaggerSimulator

    root = Path(__file__).resolve().parents[2]
    with ApiServer() as srv:
        config = srv.write_kubeconfig(Path(f"/tmp/differential-{uuid.uuid4().hex[:8]}"))
        api = kubernetes.config.new_client_from_config(config_file=config)
        ext = kubernetes.client.ApiextensionsV1Api(api)
        for doc in yaml.safe_load_all((root / "canarygate" / "data" / "flagger-canary-crd.yaml").read_text()):
            if doc:
                ext.create_custom_resource_definition(doc)
        kubernetes.client.CoreV1Api(api).create_namespace({"metadata": {"name": "differential"}})
        with FlaggerSimulator(kubeconfig=config, time_scale=1.0, namespaces=["differential"]):
            yield api, "differential"
        api.close()
        Path(config).unlink(missing_ok=True)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_simulator_and_real_flagger_call_the_same_hooks(name, simulated_world, api_client, namespace):
    scenario = SCENARIOS[name]
    sim_api, sim_ns = simulated_world
    with HookRecorder() as sim_hooks, HookRecorder() as real_hooks:
        for recorder in (sim_hooks, real_hooks):
            recorder.respond("/rollback", NO)  # unscripted paths answer 200: for rollback that means "roll back"
            for hook, answers in (scenario.get("script") or {}).items():
                recorder.respond(f"/{hook}", answers)
        worlds = [World("simulator", sim_api, sim_ns, sim_hooks), World("flagger", api_client, namespace, real_hooks)]
        errors: list = []
        threads = [threading.Thread(target=w.run, args=(scenario, errors)) for w in worlds]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        assert not errors, errors
        simulated, real = (summary(w) for w in worlds)
    print(f"\n{name}: real Flagger {real}\nsimulator {simulated}")
    hooks = {hook for hook, _, _ in real["hooks"]}
    assert hooks >= scenario.get("expect", {"confirm-rollout", "rollback", "post-rollout"}), real  # not vacuous
    assert real["final"]["phase"] == scenario.get("ends", "Succeeded"), real
    assert simulated["final"] == real["final"]
    if scenario.get("unready_for"):  # how many ticks fall in the unready window is a matter of timing
        assert collapse(simulated["hooks"]) == collapse(real["hooks"])
    else:
        assert simulated["hooks"] == real["hooks"]
    assert simulated["event_phases"] == real["event_phases"]
