"""Flagger's readiness rule (canarygate.readiness, from isDeploymentReady) on Deployment statuses."""

from __future__ import annotations

from datetime import UTC, datetime

from canarygate import readiness

NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


def deployment(
    *, generation=1, observed=1, replicas=1, updated=1, available=1, unavailable_since=None, deadline_exceeded=False
):
    conditions = [
        {
            "type": "Progressing",
            "status": "False" if deadline_exceeded else "True",
            "reason": "ProgressDeadlineExceeded" if deadline_exceeded else "ReplicaSetUpdated",
        }
    ]
    if unavailable_since:
        conditions.append(
            {
                "type": "Available",
                "status": "False",
                "reason": "MinimumReplicasUnavailable",
                "lastUpdateTime": unavailable_since,
            }
        )
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": conditions,
        },
    }


def judge(d, **kw):
    return readiness.deployment_readiness(d, role="canary", name="demo", now=NOW, **kw)


def test_ready_and_not_ready_like_flagger():
    assert judge(deployment()).ready
    assert not judge(deployment(generation=2)).ready
    stuck = judge(deployment(available=0, unavailable_since="2026-11-22T09:55:00Z"))
    assert not stuck.ready and not stuck.exceeded and "0 of 1" in stuck.reason
    assert stuck.deadline == datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
    late = judge(deployment(available=0, unavailable_since="2026-11-22T09:40:00Z"))
    assert late.exceeded
    assert judge(deployment(deadline_exceeded=True)).exceeded
    assert judge(deployment(available=0), threshold=0).ready  # readyThreshold 0 needs none available
    assert judge(deployment(replicas=0, updated=0, available=0)).ready  # scaled to zero


def test_which_workloads_stop_flagger_in_which_phase():
    canary = readiness.Readiness("canary", "demo", ready=False, reason="x")
    primary = readiness.Readiness("primary", "demo-primary", ready=False, reason="y")
    assert readiness.blocking([canary, primary], "Waiting") == [primary]  # the canary is at zero then
    assert readiness.blocking([canary, primary], "Progressing") == [canary, primary]
    assert readiness.blocking([canary], "Succeeded") == []


def test_thresholds_take_zero_when_set():
    raw = {"spec": {"progressDeadlineSeconds": 60, "analysis": {"canaryReadyThreshold": 0}}}
    assert readiness.thresholds(raw) == (60, 0, 100)
    assert readiness.thresholds({}) == (600, 100, 100)
