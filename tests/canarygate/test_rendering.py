"""Rendering the Flagger Canary from a CanaryGate.

Covers: the seed's CanaryGates render to Canaries valid under Flagger's CRD; one webhook per gate and
an event webhook at the endpoint with gate_name/gate_namespace metadata; the user's webhooks kept in
their order; re-rendering a rendered Canary (ours or the Go original's) replaces gate webhooks instead
of duplicating them; invalid specs are reported with their path; a missing spec.flagger is refused;
hook coverage of a Canary's webhooks.
"""

from __future__ import annotations

import copy

import pytest

from canarygate import errors, rendering
from canarygate.model import parse_canarygate

SEED = {
    "apiVersion": "piggysec.com/v1alpha1",
    "kind": "CanaryGate",
    "metadata": {"name": "demo", "namespace": "gates"},
    "spec": {
        "confirm-promotion": "closed",
        "target": {"namespace": "demo-ns", "name": "demo"},
        "flagger": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
            "service": {"port": 8080},
            "skipAnalysis": False,
            "analysis": {
                "interval": "10s",
                "threshold": 2,
                "maxWeight": 20,
                "stepWeight": 20,
                "stepWeightPromotion": 100,
            },
        },
    },
}
LOAD_TEST = {
    "name": "load-test",
    "type": "rollout",
    "url": "http://flagger-loadtester.test/",
    "timeout": "5s",
    "metadata": {"cmd": "hey -z 1m http://demo-canary.demo-ns:8080/"},
}
SMOKE = {"name": "smoke", "type": "pre-rollout", "url": "http://flagger-loadtester.test/"}


def with_webhooks(*hooks):
    raw = copy.deepcopy(SEED)
    raw["spec"]["flagger"]["analysis"]["webhooks"] = list(hooks)
    return parse_canarygate(raw)


def test_seed_renders_a_valid_canary_at_the_target():
    canary = rendering.render_canary(parse_canarygate(SEED), endpoint="http://gate.example:8080/")
    assert (canary["metadata"]["namespace"], canary["metadata"]["name"]) == ("demo-ns", "demo")
    assert canary["metadata"]["annotations"] == {"piggysec.com/canarygate": "gates/demo"}
    assert rendering.check_canary(canary) == []
    hooks = canary["spec"]["analysis"]["webhooks"]
    assert [(h["type"], h["url"]) for h in hooks] == [
        (t, f"http://gate.example:8080/{t}") for t in rendering.HOOK_TYPES
    ]
    assert all(h["metadata"] == {"gate_name": "demo", "gate_namespace": "gates"} for h in hooks)
    assert canary["spec"]["service"] == {"port": 8080}


def test_users_webhooks_are_kept_in_order_after_the_gates():
    canary = rendering.render_canary(with_webhooks(LOAD_TEST, SMOKE))
    names = [h["name"] for h in canary["spec"]["analysis"]["webhooks"]]
    assert names[-2:] == ["load-test", "smoke"]
    assert len(names) == len(rendering.HOOK_TYPES) + 2


def test_rerendering_replaces_gate_webhooks_instead_of_duplicating():
    first = rendering.render_canary(with_webhooks(LOAD_TEST), endpoint="http://old")
    again = with_webhooks(*first["spec"]["analysis"]["webhooks"])
    second = rendering.render_canary(again, endpoint="http://new")
    hooks = second["spec"]["analysis"]["webhooks"]
    assert len(hooks) == len(rendering.HOOK_TYPES) + 1
    assert all(h["url"].startswith("http://new/") for h in hooks if rendering.is_gate_webhook(h))
    assert rendering.render_canary(again, endpoint="http://new") == second


def test_go_original_webhooks_are_recognised():
    go_hook = {
        "name": "confirm-rollout",
        "type": "confirm-rollout",
        "url": "http://canary-gate:8080/confirm-rollout",
        "metadata": {"gate_name": "demo", "gate_namespace": "gates"},
    }
    canary = rendering.render_canary(with_webhooks(go_hook, LOAD_TEST))
    urls = [h["url"] for h in canary["spec"]["analysis"]["webhooks"]]
    assert "http://canary-gate:8080/confirm-rollout" not in urls


def test_invalid_flagger_spec_is_reported_with_its_path():
    raw = copy.deepcopy(SEED)
    del raw["spec"]["flagger"]["targetRef"]
    raw["spec"]["flagger"]["analysis"]["interval"] = "10 seconds"
    problems = rendering.check_canary(rendering.render_canary(parse_canarygate(raw)))
    assert any(p.startswith("spec:") and "targetRef" in p for p in problems)
    assert any(p.startswith("spec.analysis.interval:") for p in problems)


def test_missing_flagger_spec_is_refused():
    raw = copy.deepcopy(SEED)
    del raw["spec"]["flagger"]
    with pytest.raises(errors.InvalidGate, match=r"no spec\.flagger"):
        rendering.render_canary(parse_canarygate(raw))


def test_hook_coverage_names_missing_gates():
    gate = parse_canarygate(SEED)
    hooks = rendering.render_canary(gate)["spec"]["analysis"]["webhooks"]
    assert all(rendering.hook_coverage(gate, hooks).values())
    partial = [h for h in hooks if h["type"] not in ("rollback", "event")] + [LOAD_TEST]
    coverage = rendering.hook_coverage(gate, partial)
    assert [t for t, ok in coverage.items() if not ok] == ["rollback", "event"]
