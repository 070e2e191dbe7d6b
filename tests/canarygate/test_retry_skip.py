"""When ``retry`` and ``skip-analysis`` refuse, and what they write (canarygate.retry, canarygate.skipping).

Covers: retry only from Failed, only for a target with a pod template, the patch is one pod template
annotation; skip-analysis only while an analysis runs past confirm-rollout (not Waiting, not idle,
not when already on); turning it on is conditional on the value seen, and restoring puts back
exactly what was there (the field removed when it was absent) only if it is still the true we set.
"""

from __future__ import annotations

import jsonpatch
import pytest

from canarygate import retry, skipping
from canarygate.model import parse_canary


def canary(phase, *, kind="Deployment", spec=None):
    return parse_canary(
        {
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": kind, "name": "web"}, **(spec or {})},
            "status": {"phase": phase},
        }
    )


@pytest.mark.parametrize("phase", ["Progressing", "WaitingPromotion", "Succeeded", "Initialized", "Waiting"])
def test_retry_refuses_a_rollout_that_is_not_failed(phase):
    assert f"is {phase}, not Failed" in retry.refusal(canary(phase), "shop/web")


def test_retry_writes_one_pod_template_annotation_on_a_failed_deployment_or_daemonset():
    assert retry.refusal(None, "shop/web") == "there is no Flagger Canary shop/web: nothing to retry"
    assert "has no pod template" in retry.refusal(canary("Failed", kind="Service"), "shop/web")
    for kind in ("Deployment", "DaemonSet"):
        failed = canary("Failed", kind=kind)
        assert retry.refusal(failed, "shop/web") is None
        plan = retry.plan(failed, "2026-11-22T10:00:00Z")
        assert plan.ref == f"{kind.lower()}/web" and plan.resource == f"{kind.lower()}s"
        assert plan.patch == {
            "spec": {"template": {"metadata": {"annotations": {retry.RESTARTED_AT: "2026-11-22T10:00:00Z"}}}}
        }
        said = retry.statement(plan, failed)
        assert "GitOps" in said and "spec.template.metadata.annotations" in said and plan.ref in said


@pytest.mark.parametrize(
    ("phase", "spec", "why"),
    [
        ("Waiting", {}, "asks confirm-rollout before"),
        ("Succeeded", {}, "would promote the next revision without analysis"),
        ("Failed", {}, "no rollout in progress"),
        ("Progressing", {"skipAnalysis": True}, "already has spec.skipAnalysis: true"),
    ],
)
def test_skip_analysis_refuses_outside_a_running_analysis(phase, spec, why):
    assert why in skipping.refusal(canary(phase, spec=spec), "shop/web")


@pytest.mark.parametrize("before", [{}, {"skipAnalysis": False}])
def test_skip_analysis_turns_on_then_puts_back_exactly_what_was_there(before):
    running = canary("WaitingPromotion", spec=before)
    assert skipping.refusal(running, "shop/web") is None
    obj = {"spec": dict(running.raw["spec"])}
    on = jsonpatch.apply_patch(obj, skipping.turn_on(running))
    assert on["spec"]["skipAnalysis"] is True
    assert jsonpatch.apply_patch(on, skipping.restore(running)) == obj
    # Someone set it themselves meanwhile: restoring does not touch it.
    theirs = {"spec": {**on["spec"], "skipAnalysis": False}}
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(theirs, skipping.restore(running))
    if before:
        with pytest.raises(jsonpatch.JsonPatchTestFailed):  # turning on is conditional on the value seen
            jsonpatch.apply_patch({"spec": {**obj["spec"], "skipAnalysis": True}}, skipping.turn_on(running))
