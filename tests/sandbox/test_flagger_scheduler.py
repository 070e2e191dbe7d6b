"""Flagger simulator, the pure scheduler tick (docs/flagger-contract.md#one-tick and after).

Covers:
- Flagger's ordering oracle, TestWebhooks "canary" and "skip-analysis": the webhooks each
  hook type receives (phase, eventMessage) over real HTTP, and the full event sequence;
- the status sequences of scheduler_deployment_test.go: analysis phases with weights,
  blue/green, A/B, mirroring, rollback by threshold, new revision reset, skip analysis,
  primary not ready during promotion;
- Waiting (confirm-rollout closed, re-polled with phase Waiting, checksum of the deployed
  revision until approved), WaitingPromotion (weight 0, iterations -1, rollback and rollout
  hooks still polled), confirm-traffic-increase halts, stepWeights;
- the rollback hook's inverted meaning and when it is polled; post-rollout failures;
  pre-rollout failures counting as failed checks; spec.suspend;
- status rules: canaryWeight zeroed outside Progressing/Waiting/Promoting, lastPromotedSpec,
  the Promoted condition whose lastTransitionTime changes only with its status, RFC 3339.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.flagger import checksum, readiness, webhooks
from sandbox.flagger.analysis import analysis_interval
from sandbox.flagger.metrics import METRICS_ANNOTATION
from sandbox.flagger.records import Routes, TargetWorkload
from sandbox.flagger.status import (
    FAILED,
    FINALISING,
    INITIALIZED,
    PROGRESSING,
    PROMOTING,
    SUCCEEDED,
    WAITING,
    WAITING_PROMOTION,
    initializing_status,
)
from sandbox.flagger.testing import HookRecorder
from sandbox.flagger.tick import advance
from sandbox.flagger.webhooks import HookResult

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
V1 = checksum.compute_hash({"spec": {"containers": [{"name": "podinfo", "image": "podinfo:6.0.0"}]}})
V2 = checksum.compute_hash({"spec": {"containers": [{"name": "podinfo", "image": "podinfo:6.0.1"}]}})
V3 = checksum.compute_hash({"spec": {"containers": [{"name": "podinfo", "image": "podinfo:6.0.2"}]}})

HOOK_TYPES = [
    "event",
    "pre-rollout",
    "rollout",
    "confirm-promotion",
    "confirm-rollout",
    "post-rollout",
    "confirm-traffic-increase",
]


def make_canary(analysis=None, *, hooks_url=None, hook_types=HOOK_TYPES, annotations=None, **spec):
    """Flagger's newDeploymentTestCanary: podinfo/default, threshold 10, stepWeight 10,
    maxWeight 50, three metrics; ``hooks_url`` adds one webhook per type, like TestWebhooks."""
    base = {
        "threshold": 10,
        "stepWeight": 10,
        "maxWeight": 50,
        "interval": "1m",
        "metrics": [
            {"name": "request-success-rate", "threshold": 99, "interval": "1m"},
            {"name": "request-duration", "thresholdRange": {"min": 0, "max": 500000}, "interval": "1m"},
            {
                "name": "custom",
                "thresholdRange": {"min": 0, "max": 100},
                "interval": "1m",
                "templateRef": {"name": "envoy"},
            },
        ],
    }
    if analysis is not None:
        base = analysis
    if hooks_url:
        base = {
            **base,
            "webhooks": [{"type": t, "name": f"{t}-webhook", "url": f"{hooks_url}/{t}"} for t in hook_types],
        }
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "default", "annotations": dict(annotations or {})},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": base,
            **spec,
        },
    }


class Hooks:
    """A fake webhook server: answers by hook name (default 200), records every call."""

    def __init__(self, **answers):
        self.answers = {k.replace("_", "-"): v for k, v in answers.items()}
        self.payloads = []

    def set(self, hook, answer):
        self.answers[hook] = answer

    def __call__(self, webhook, payload):
        self.payloads.append((webhooks.hook_type(webhook), payload))
        answer = self.answers.get(webhooks.hook_type(webhook), 200)
        if isinstance(answer, HookResult):
            return answer
        return HookResult(ok=200 <= answer <= 202, status=answer, error="" if answer <= 202 else f"status {answer}")


class Sim:
    """Drives ``advance`` tick by tick like Flagger's fixture drives ``advanceCanary``."""

    def __init__(self, canary, hooks=None, *, target_hash=V1, status=None, **kwargs):
        self.canary = canary
        if status is not None:
            canary["status"] = status
        self.hooks = hooks or Hooks()
        self.target = TargetWorkload(template_hash=target_hash)
        self.routes = Routes()
        self.now = T0
        self.ticks = []
        self.kwargs = kwargs

    def tick(self, **target_changes):
        if target_changes:
            self.target = TargetWorkload(**{**self.target.__dict__, **target_changes})
        t = advance(self.canary, self.target, self.now, self.hooks, routes=self.routes, **self.kwargs)
        self.canary = {**self.canary, "status": t.status}
        self.routes = t.routes
        self.ticks.append(t)
        self.now += timedelta(minutes=1)
        return t

    @property
    def status(self):
        return self.canary["status"]

    def initialized(self):
        """Two ticks: initializing (primary ready) -> Initialized."""
        t = self.tick()
        assert t.phase == INITIALIZED
        return t

    def phase_weight(self):
        return self.status["phase"], self.status["canaryWeight"]


# --- the ordering oracle (TestWebhooks) --------------------------------------------------

NOT_READY = (
    "",
    "podinfo-primary.default not ready: waiting for rollout to finish: 0 out of 1 new replicas have been updated",
)
METRICS_OK = ("", "all the metrics providers are available!")


def received(recorder):
    """events_test.go's view: per hook type, the (phase, eventMessage) of each payload."""
    seen = {}
    for req in recorder.calls():
        body = req.json
        seen.setdefault(req.hook, []).append((body["phase"], (body.get("metadata") or {}).get("eventMessage", "")))
    return seen


def test_oracle_canary():
    with HookRecorder() as recorder:
        canary = make_canary(hooks_url=recorder.url)
        canary["spec"]["analysis"].update(stepWeight=100, stepWeightPromotion=50)
        sim = Sim(canary, webhooks.WebhookCaller())
        sim.tick(primary=readiness.NOT_READY)  # initializing
        assert sim.tick(primary=readiness.READY).phase == INITIALIZED
        assert sim.tick(template_hash=V2).phase == PROGRESSING  # detect changes
        assert sim.tick().phase == PROGRESSING  # progressing
        assert sim.tick().phase == PROMOTING  # start promotion
        assert sim.tick().phase == PROMOTING  # end promotion
        assert sim.tick().phase == FINALISING  # finalising
        assert sim.tick().phase == SUCCEEDED  # succeeded

        assert received(recorder) == {
            "event": [
                METRICS_OK,
                NOT_READY,
                METRICS_OK,
                (INITIALIZED, "Initialization done! podinfo.default"),
                (INITIALIZED, "Confirm-rollout check confirm-rollout-webhook passed"),
                (PROGRESSING, "New revision detected! Scaling up podinfo.default"),
                (PROGRESSING, "Starting canary analysis for podinfo.default"),
                (PROGRESSING, "Pre-rollout check pre-rollout-webhook passed"),
                (PROGRESSING, "Confirm-traffic-increase check confirm-traffic-increase-webhook passed"),
                (PROGRESSING, "Advance podinfo.default canary weight 100"),
                (PROGRESSING, "Confirm-traffic-increase check confirm-traffic-increase-webhook passed"),
                (PROGRESSING, "Confirm-promotion check confirm-promotion-webhook passed"),
                (PROGRESSING, "Copying podinfo.default template spec to podinfo-primary.default"),
                (PROMOTING, "Advance podinfo.default primary weight 50"),
                (PROMOTING, "Advance podinfo.default primary weight 100"),
                (SUCCEEDED, "Post-rollout check post-rollout-webhook passed"),
                (SUCCEEDED, "Promotion completed! Scaling down podinfo.default"),
            ],
            "confirm-rollout": [(INITIALIZED, "")],
            "confirm-promotion": [(PROGRESSING, "")],
            "confirm-traffic-increase": [(PROGRESSING, ""), (PROGRESSING, "")],
            "pre-rollout": [(PROGRESSING, "")],
            "post-rollout": [(SUCCEEDED, "")],
            "rollout": [(PROGRESSING, "")],
        }
        # docs/flagger-contract.md#one-tick: the hook order across ticks, event hooks left out
        gates = [h for h in recorder.sequence() if h != "event"]
        assert gates == [
            "confirm-rollout",
            "pre-rollout",
            "confirm-traffic-increase",
            "rollout",
            "confirm-traffic-increase",
            "confirm-promotion",
            "post-rollout",
        ]
        # the same events went to Kubernetes, all with reason Synced
        k8s = [(e.phase, e.message) for t in sim.ticks for e in t.events]
        assert k8s == received(recorder)["event"]
        assert {e.reason for t in sim.ticks for e in t.events} == {"Synced"}


def test_oracle_skip_analysis():
    with HookRecorder() as recorder:
        sim = Sim(make_canary(hooks_url=recorder.url), webhooks.WebhookCaller())
        sim.tick(primary=readiness.NOT_READY)
        sim.tick(primary=readiness.READY)
        sim.canary["spec"]["skipAnalysis"] = True
        assert sim.tick(template_hash=V2).phase == PROGRESSING
        assert sim.tick().phase == SUCCEEDED
        assert received(recorder) == {
            "event": [
                METRICS_OK,
                NOT_READY,
                METRICS_OK,
                (INITIALIZED, "Initialization done! podinfo.default"),
                (INITIALIZED, "Confirm-rollout check confirm-rollout-webhook passed"),
                (PROGRESSING, "New revision detected! Scaling up podinfo.default"),
                (PROGRESSING, "Copying podinfo.default template spec to podinfo-primary.default"),
                (SUCCEEDED, "Post-rollout check post-rollout-webhook passed"),
                (SUCCEEDED, "Promotion completed! Canary analysis was skipped for podinfo.default"),
            ],
            "confirm-rollout": [(INITIALIZED, "")],
            "post-rollout": [(SUCCEEDED, "")],
        }


# --- scheduler_deployment_test.go status sequences -------------------------------------


def test_analysis_phases():
    sim = Sim(make_canary({"interval": "1m", "stepWeight": 100, "stepWeightPromotion": 50}))
    sim.initialized()
    seq = [sim.tick(template_hash=V2) and sim.phase_weight()]
    seq += [sim.tick() and sim.phase_weight() for _ in range(5)]
    assert seq == [
        (PROGRESSING, 0),
        (PROGRESSING, 100),
        (PROMOTING, 100),
        (PROMOTING, 50),
        (FINALISING, 0),
        (SUCCEEDED, 0),
    ]
    assert sim.status["lastPromotedSpec"] == V2 == sim.status["lastAppliedSpec"]
    assert sim.routes == Routes(100, 0, False)
    assert "promote" in sim.ticks[3].actions


def test_canary_weights_to_max_weight():
    sim = Sim(make_canary({"interval": "1m", "threshold": 5, "stepWeight": 10, "maxWeight": 30}))
    sim.initialized()
    sim.tick(template_hash=V2)
    weights = [sim.tick() and sim.phase_weight() for _ in range(6)]
    assert weights == [
        (PROGRESSING, 10),
        (PROGRESSING, 20),
        (PROGRESSING, 30),
        (PROMOTING, 30),
        (FINALISING, 0),
        (SUCCEEDED, 0),
    ]
    assert sim.ticks[-2].messages() == ["Routing all traffic to primary"]


def test_step_weights():
    sim = Sim(make_canary({"interval": "1m", "threshold": 5, "stepWeights": [1, 5, 20]}))
    sim.initialized()
    sim.tick(template_hash=V2)
    weights = [sim.tick() and sim.status["canaryWeight"] for _ in range(4)]
    assert weights == [1, 5, 20, 20]
    assert sim.status["phase"] == PROMOTING


def test_blue_green_phases():
    sim = Sim(make_canary({"interval": "1m", "iterations": 1}))
    sim.initialized()
    phases = [sim.tick(template_hash=V2).phase] + [sim.tick().phase for _ in range(5)]
    assert phases == [PROGRESSING, PROGRESSING, PROGRESSING, PROMOTING, FINALISING, SUCCEEDED]
    assert "Routing all traffic to canary" in sim.ticks[3].messages()


def test_ab_testing():
    sim = Sim(
        make_canary(
            {
                "interval": "1m",
                "threshold": 10,
                "iterations": 10,
                "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
            }
        )
    )
    sim.initialized()
    sim.tick(template_hash=V2)
    t = sim.tick()
    assert sim.routes == Routes(0, 100, False)
    assert t.messages()[-1] == "Advance podinfo.default canary iteration 1/10"
    sim.canary["status"]["iterations"] = 10
    assert sim.tick().phase == PROMOTING
    assert sim.tick().phase == FINALISING
    assert sim.tick().phase == SUCCEEDED


def test_mirroring():
    sim = Sim(make_canary({"interval": "1m", "stepWeight": 10, "maxWeight": 50, "mirror": True}))
    sim.initialized()
    sim.tick(template_hash=V2)
    sim.tick()
    assert sim.routes == Routes(100, 0, True)
    sim.tick()
    assert sim.routes == Routes(90, 10, False)


def test_rollback_by_threshold_with_failing_metrics():
    canary = make_canary(
        {"interval": "1m", "threshold": 2, "stepWeight": 10, "maxWeight": 50},
        hooks_url="http://hooks",
        hook_types=["post-rollout"],
    )
    sim = Sim(canary)
    sim.initialized()
    sim.tick(template_hash=V2)
    sim.tick()  # pre-rollout tick: weight 10
    sim.canary["metadata"]["annotations"][METRICS_ANNOTATION] = "fail"
    failed = [sim.tick() and (sim.status["phase"], sim.status["failedChecks"]) for _ in range(3)]
    assert failed == [(PROGRESSING, 1), (PROGRESSING, 2), (FAILED, 0)]
    assert sim.ticks[-2].messages() == ["Halt podinfo.default advancement success rate 0.00% < 99%"]
    assert sim.ticks[-1].messages() == [
        "Rolling back podinfo.default failed checks threshold reached 2",
        "Canary failed! Scaling down podinfo.default",
        "Post-rollout check post-rollout-webhook passed",
    ]
    assert [e.phase for e in sim.ticks[-1].events] == [PROGRESSING, FAILED, PROGRESSING]
    assert [p["phase"] for t, p in sim.hooks.payloads if t == "post-rollout"] == [FAILED]
    assert sim.routes == Routes(100, 0, False)
    assert sim.status["canaryWeight"] == 0
    assert sim.status["conditions"][0]["status"] == "False"
    # Failed stays Failed for the same revision; a new revision starts over
    assert sim.tick().phase == FAILED
    del sim.canary["metadata"]["annotations"][METRICS_ANNOTATION]
    assert sim.tick(template_hash=V3).phase == PROGRESSING


def test_rollback_from_preset_failed_checks():
    """TestScheduler_DeploymentRollback: failedChecks at the threshold -> Failed."""
    sim = Sim(
        make_canary(),
        target_hash=V2,
        status={
            "phase": PROGRESSING,
            "failedChecks": 10,
            "canaryWeight": 0,
            "iterations": 0,
            "lastAppliedSpec": V2,
            "lastPromotedSpec": V1,
            "conditions": [{"type": "Promoted", "status": "Unknown", "reason": PROGRESSING}],
        },
    )
    assert sim.tick().phase == FAILED


def test_new_revision_reset():
    sim = Sim(make_canary())
    sim.initialized()
    sim.tick(template_hash=V2)
    sim.tick()
    assert sim.routes == Routes(90, 10, False)
    t = sim.tick(template_hash=V3)
    assert sim.routes == Routes(100, 0, False)
    assert t.messages() == ["New revision detected! Restarting analysis for podinfo.default"]
    assert (sim.status["phase"], sim.status["canaryWeight"], sim.status["lastAppliedSpec"]) == (PROGRESSING, 0, V3)


def test_skip_analysis():
    sim = Sim(make_canary())
    sim.initialized()
    sim.canary["spec"]["skipAnalysis"] = True
    assert sim.tick(template_hash=V2).phase == PROGRESSING
    assert sim.tick().phase == SUCCEEDED
    assert sim.status["lastPromotedSpec"] == V2


@pytest.mark.parametrize("phase,routes", [(PROMOTING, Routes(50, 50)), (FINALISING, Routes(100, 0))])
def test_primary_not_ready_during_promotion(phase, routes):
    sim = Sim(
        make_canary(),
        target_hash=V2,
        status={
            "phase": phase,
            "failedChecks": 0,
            "canaryWeight": 50,
            "iterations": 0,
            "lastAppliedSpec": V2,
            "lastPromotedSpec": V1,
        },
    )
    sim.routes = routes
    t = sim.tick(primary=readiness.Readiness(False, False))
    assert (t.phase, t.status["canaryWeight"]) == (FAILED, 100)
    assert sim.routes == Routes(0, 100, False)
    assert "scale-to-zero" not in t.actions
    assert t.messages()[1].startswith(
        "Promotion of podinfo.default failed, primary not ready: podinfo-primary.default not ready: "
    )


# --- gates: Waiting, WaitingPromotion, traffic increase, rollback -------------------------


def test_waiting_for_confirm_rollout():
    hooks = Hooks(confirm_rollout=403)
    sim = Sim(make_canary(hooks_url="http://h", hook_types=["confirm-rollout", "pre-rollout"]), hooks)
    sim.initialized()
    deployed = checksum.canary_checksum(sim.status)
    t = sim.tick(template_hash=V2)
    assert t.phase == WAITING
    assert t.messages() == ["Halt podinfo.default advancement waiting for approval confirm-rollout-webhook"]
    assert t.events[0].phase == INITIALIZED
    assert sim.status["conditions"][0]["message"] == "Waiting for approval."
    t = sim.tick()
    assert (t.phase, t.events, t.status_writes) == (WAITING, [], [])
    assert [(c.hook, c.phase, c.checksum) for c in t.calls] == [("confirm-rollout", WAITING, deployed)]
    hooks.set("confirm-rollout", 200)
    t = sim.tick()
    assert t.phase == PROGRESSING
    assert [(e.phase, e.message) for e in t.events] == [
        (WAITING, "Confirm-rollout check confirm-rollout-webhook passed"),
        (PROGRESSING, "New revision detected! Scaling up podinfo.default"),
    ]
    t = sim.tick()
    [pre] = t.calls
    assert (pre.hook, pre.checksum) == ("pre-rollout", checksum.canary_checksum(sim.status))
    assert pre.checksum != deployed
    payloads = [p for h, p in hooks.payloads if h == "confirm-rollout"]
    assert [p["phase"] for p in payloads] == [INITIALIZED, WAITING, WAITING]


def test_waiting_promotion():
    hooks = Hooks(confirm_promotion=403, rollback=403)
    sim = Sim(
        make_canary(
            {"interval": "1m", "threshold": 3, "stepWeight": 50, "maxWeight": 50},
            hooks_url="http://h",
            hook_types=["rollback", "rollout", "confirm-promotion"],
        ),
        hooks,
    )
    sim.initialized()
    sim.tick(template_hash=V2)
    sim.tick()
    assert sim.phase_weight() == (PROGRESSING, 50)
    t = sim.tick()
    assert (t.phase, t.status["canaryWeight"], t.status["iterations"]) == (WAITING_PROMOTION, 0, -1)
    assert t.messages()[-1] == (
        "Halt podinfo.default advancement waiting for promotion approval confirm-promotion-webhook"
    )
    assert sim.routes == Routes(50, 50, False)  # the mesh keeps the max weight
    t = sim.tick()
    assert [(c.hook, c.phase) for c in t.calls] == [
        ("rollback", WAITING_PROMOTION),
        ("rollout", PROGRESSING),
        ("confirm-promotion", PROGRESSING),
    ]
    assert t.messages() == ["Rollback hook rollback-webhook not signaling a rollback"]
    assert (t.phase, t.status["iterations"]) == (WAITING_PROMOTION, -1)
    hooks.set("confirm-promotion", 200)
    t = sim.tick()
    assert t.phase == PROMOTING
    assert t.messages()[-2:] == [
        "Confirm-promotion check confirm-promotion-webhook passed",
        "Copying podinfo.default template spec to podinfo-primary.default",
    ]


def test_confirm_traffic_increase_halts_without_failed_checks():
    hooks = Hooks(confirm_traffic_increase=403)
    sim = Sim(make_canary(hooks_url="http://h", hook_types=["confirm-traffic-increase"]), hooks)
    sim.initialized()
    sim.tick(template_hash=V2)
    for _ in range(2):
        t = sim.tick()
        assert t.messages()[-1] == (
            "Halt podinfo.default advancement waiting for traffic increase approval confirm-traffic-increase-webhook"
        )
        assert sim.phase_weight() == (PROGRESSING, 0)
        assert sim.status["failedChecks"] == 0
    hooks.set("confirm-traffic-increase", 202)
    sim.tick()
    assert sim.phase_weight() == (PROGRESSING, 10)


def test_rollback_hook_signals_by_succeeding():
    hooks = Hooks(rollback=200, confirm_rollout=403)
    sim = Sim(make_canary(hooks_url="http://h", hook_types=["rollback", "confirm-rollout", "post-rollout"]), hooks)
    sim.initialized()
    t = sim.tick(template_hash=V2)
    t = sim.tick()
    assert t.phase == WAITING
    assert [c.hook for c in t.calls] == [
        "confirm-rollout"
    ]  # not polled in Waiting (docs/flagger-contract.md#waiting-and-waitingpromotion)
    hooks.set("confirm-rollout", 200)
    sim.tick()
    t = sim.tick()
    assert t.phase == FAILED
    assert t.messages() == [
        "Rollback check rollback-webhook passed",
        "Rolling back podinfo.default manual webhook invoked",
        "Canary failed! Scaling down podinfo.default",
        "Post-rollout check post-rollout-webhook passed",
    ]
    assert [(c.hook, c.phase) for c in t.calls] == [("rollback", PROGRESSING), ("post-rollout", FAILED)]


def test_pre_rollout_failure_counts_and_carries_body():
    hooks = Hooks(pre_rollout=HookResult(ok=False, status=400, error="smoke test failed"))
    sim = Sim(make_canary(hooks_url="http://h", hook_types=["pre-rollout"]), hooks)
    sim.initialized()
    sim.tick(template_hash=V2)
    t = sim.tick()
    assert t.messages() == [
        "Starting canary analysis for podinfo.default",
        "Halt podinfo.default advancement pre-rollout check pre-rollout-webhook failed smoke test failed",
    ]
    assert [e.type for e in t.events] == ["Normal", "Warning"]
    assert sim.phase_weight() == (PROGRESSING, 0)
    assert sim.status["failedChecks"] == 1


def test_failed_post_rollout_skips_later_ones():
    hooks = Hooks(post_rollout=HookResult(ok=False, status=500, error="POST http://h giving up after 1 attempt(s)"))
    canary = make_canary({"interval": "1m", "stepWeight": 100})
    canary["spec"]["analysis"]["webhooks"] = [
        {"name": "first", "type": "post-rollout", "url": "http://h/1"},
        {"name": "second", "type": "post-rollout", "url": "http://h/2"},
    ]
    sim = Sim(canary, hooks)
    sim.initialized()
    sim.tick(template_hash=V2)
    while sim.tick().phase != SUCCEEDED:
        pass
    assert sim.ticks[-1].messages() == [
        "Post-rollout hook first failed POST http://h giving up after 1 attempt(s)",
        "Promotion completed! Scaling down podinfo.default",
    ]
    assert [c.name for c in sim.ticks[-1].calls] == ["first"]


def test_suspend():
    canary = make_canary(hooks_url="http://h", hook_types=["event", "confirm-rollout"], suspend=True)
    sim = Sim(canary)
    t = sim.tick()
    assert t.messages() == ["skipping canary run as object is suspended"]
    assert [(c.hook, c.message) for c in t.calls] == [("event", "skipping canary run as object is suspended")]
    assert t.status_writes == []


def test_global_event_webhook_only_without_event_hooks():
    hooks = Hooks()
    sim = Sim(make_canary(), hooks, event_webhook="http://global/events")
    sim.tick()
    assert [p["metadata"]["eventMessage"] for _, p in hooks.payloads] == [
        "all the metrics providers are available!",
        "Initialization done! podinfo.default",
    ]


def test_kubernetes_provider_forces_blue_green():
    sim = Sim(make_canary(provider="kubernetes"))
    sim.initialized()
    sim.tick(template_hash=V2)
    t = sim.tick()
    assert t.messages()[1:] == [
        "Progressive traffic is not supported when using the kubernetes provider",
        "Setting canaryAnalysis.iterations: 10",
        "Advance podinfo.default canary iteration 1/10",
    ]


# --- status rules ------------------------------------------------------------------------


def test_initialization_status_and_condition_times():
    canary = make_canary()
    initial = initializing_status(canary, T0)
    assert initial["phase"] == "Initializing"
    assert initial["conditions"] == [
        {
            "type": "Promoted",
            "status": "Unknown",
            "lastUpdateTime": "2024-05-01T12:00:00Z",
            "lastTransitionTime": "2024-05-01T12:00:00Z",
            "reason": "Initializing",
            "message": "New Deployment detected, starting initialization.",
        }
    ]
    sim = Sim(canary, status=initial)
    sim.now = T0 + timedelta(seconds=30)
    t = sim.tick()
    assert t.status == {
        "phase": INITIALIZED,
        "failedChecks": 0,
        "canaryWeight": 0,
        "iterations": 0,
        "lastAppliedSpec": V1,
        "lastPromotedSpec": V1,
        "trackedConfigs": {},
        "lastTransitionTime": "2024-05-01T12:00:30Z",
        "conditions": [
            {
                "type": "Promoted",
                "status": "True",
                "lastUpdateTime": "2024-05-01T12:00:30Z",
                "lastTransitionTime": "2024-05-01T12:00:30Z",
                "reason": INITIALIZED,
                "message": "Deployment initialization completed.",
            }
        ],
    }
    assert [e.phase for e in t.events] == ["Initializing", INITIALIZED]
    assert initializing_status(sim.canary, T0) is None


def test_promoted_condition_transition_time_follows_status_only():
    sim = Sim(make_canary({"interval": "1m", "stepWeight": 100}))
    sim.initialized()
    seen = []
    sim.tick(template_hash=V2)
    while sim.status["phase"] != SUCCEEDED:
        cond = sim.status["conditions"][0]
        seen.append(
            (
                sim.status["phase"],
                cond["status"],
                cond["reason"],
                cond["lastTransitionTime"],
                sim.status["lastTransitionTime"],
            )
        )
        sim.tick()
    progressing_at = seen[0][3]
    assert [s[:3] for s in seen] == [(PROGRESSING, "Unknown", PROGRESSING)] * 2 + [
        (PROMOTING, "Unknown", PROMOTING),
        (FINALISING, "Unknown", FINALISING),
    ]
    assert {s[3] for s in seen} == {progressing_at}  # Unknown all along: unchanged
    assert len({s[4] for s in seen}) == len(seen)  # status.lastTransitionTime moves
    final = sim.status["conditions"][0]
    assert (final["status"], final["reason"]) == ("True", SUCCEEDED)
    assert final["lastTransitionTime"] == sim.status["lastTransitionTime"] != progressing_at


def test_on_status_sees_writes_before_later_hooks():
    order = []
    hooks = Hooks()

    def recording_hooks(webhook, payload):
        order.append(("hook", webhooks.hook_type(webhook)))
        return hooks(webhook, payload)

    canary = make_canary({"interval": "1m", "stepWeight": 100}, hooks_url="http://h", hook_types=["post-rollout"])
    sim = Sim(canary, recording_hooks, on_status=lambda s: order.append(("status", s["phase"])))
    sim.initialized()
    sim.tick(template_hash=V2)
    while sim.tick().phase != SUCCEEDED:
        pass
    assert order[-2:] == [("status", SUCCEEDED), ("hook", "post-rollout")]


def test_interval_rules():
    assert analysis_interval(make_canary({"interval": "1m"})) == 60
    assert analysis_interval(make_canary({"interval": "5s"})) == 10
    assert analysis_interval(make_canary({"interval": "10sec"})) == 60
    assert analysis_interval(make_canary({})) == 60


# --- issue 7: blue/green's two confirm-promotion calls, pre-rollout while weight is 0 -------


def _calls_per_tick(sim, hook):
    return [[c.hook for c in t.calls].count(hook) for t in sim.ticks]


def test_blue_green_calls_confirm_promotion_on_two_consecutive_ticks():
    """runBlueGreen: at N iterations confirm-promotion, all traffic to the canary, iterations
    N+1; on the next tick confirm-promotion again, then Promote."""
    sim = Sim(make_canary({"interval": "1m", "iterations": 2}, hooks_url="http://h", hook_types=["confirm-promotion"]))
    sim.initialized()
    sim.tick(template_hash=V2)  # Progressing
    for _ in range(4):
        sim.tick()
    assert _calls_per_tick(sim, "confirm-promotion")[-4:] == [0, 0, 1, 1]
    routed, promoted = sim.ticks[-2], sim.ticks[-1]
    assert routed.status_writes[-1]["iterations"] == 3 and "promote" not in routed.actions
    assert "Routing all traffic to canary" in routed.messages()
    assert "promote" in promoted.actions and promoted.phase == PROMOTING


def test_blue_green_approval_must_hold_for_the_second_confirm_promotion():
    """A one-step approval used by the first call does not promote: the second call halts."""
    hooks = Hooks()
    sim = Sim(
        make_canary({"interval": "1m", "iterations": 2}, hooks_url="http://h", hook_types=["confirm-promotion"]), hooks
    )
    sim.initialized()
    sim.tick(template_hash=V2)
    sim.tick()
    sim.tick()  # iterations 2 of 2
    sim.tick()  # confirm-promotion passes: traffic to canary
    assert sim.routes == Routes(0, 100, False) and sim.status["iterations"] == 3
    hooks.set("confirm-promotion", 403)
    t = sim.tick()
    assert [c.hook for c in t.calls if c.hook != "event"] == ["confirm-promotion"]
    assert (t.phase, sim.status["iterations"]) == (WAITING_PROMOTION, 1)
    assert "promote" not in t.actions
    # SetStatusPhase leaves the routes alone: all traffic stays on the canary while waiting
    assert sim.routes == Routes(0, 100, False) and sim.status["canaryWeight"] == 0


def test_pre_rollout_is_called_on_every_tick_while_weight_and_iterations_are_zero():
    hooks = Hooks(confirm_traffic_increase=403)
    sim = Sim(make_canary(hooks_url="http://h", hook_types=["pre-rollout", "confirm-traffic-increase"]), hooks)
    sim.initialized()
    sim.tick(template_hash=V2)  # Progressing, weight 0
    for _ in range(3):
        sim.tick()
    assert _calls_per_tick(sim, "pre-rollout")[-3:] == [1, 1, 1]
    assert all(t.messages()[0].startswith("Starting canary analysis") for t in sim.ticks[-3:])
    assert sim.phase_weight() == (PROGRESSING, 0)
    hooks.set("pre-rollout", HookResult(ok=False, status=500, error="smoke failed"))
    sim.tick()  # a later pre-rollout failure counts
    assert sim.status["failedChecks"] == 1
    hooks.set("pre-rollout", 200)
    hooks.set("confirm-traffic-increase", 200)
    sim.tick()
    assert sim.phase_weight() == (PROGRESSING, 10)
    t = sim.tick()
    assert [c.hook for c in t.calls if c.hook != "event"] == ["confirm-traffic-increase"]
