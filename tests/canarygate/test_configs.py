"""The configs a revision is made of (canarygate.configs) and approvals bound to them (annotations)."""

from __future__ import annotations

import pytest

from canarygate import configs
from canarygate.annotations import LiveChange, RolloutMark, decode


def test_references_follow_flaggers_scan():
    template = {
        "spec": {
            "volumes": [
                {"name": "a", "configMap": {"name": "cm-vol"}},
                {"name": "b", "secret": {"secretName": "s-vol"}},
                {
                    "name": "c",
                    "projected": {"sources": [{"configMap": {"name": "cm-proj"}}, {"secret": {"name": "s-proj"}}]},
                },
            ],
            "containers": [
                {"name": "x", "env": [{"name": "E", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}}]},
                {"name": "y", "envFrom": [{"secretRef": {"name": "s-from"}}, {"configMapRef": {"name": "cm-vol"}}]},
            ],
            "initContainers": [
                {"name": "z", "env": [{"name": "F", "valueFrom": {"secretKeyRef": {"name": "s-init"}}}]}
            ],
        }
    }
    assert configs.references(template) == [
        ("configmap", "cm-env"),
        ("configmap", "cm-proj"),
        ("configmap", "cm-vol"),
        ("secret", "s-from"),
        ("secret", "s-init"),
        ("secret", "s-proj"),
        ("secret", "s-vol"),
    ]
    assert configs.references({"spec": {"containers": [{"name": "app"}]}}) == []


def test_entries_skip_what_flagger_does_not_track():
    assert configs.entry("secret", {"type": "kubernetes.io/dockerconfigjson", "data": {}}) is None
    disabled = {"metadata": {"annotations": {"flagger.app/config-tracking": "disabled"}}, "data": {"a": "1"}}
    assert configs.entry("configmap", disabled) is None
    assert configs.entry("configmap", None) == configs.ABSENT
    # Go's json.Marshal: sorted keys, HTML-safe escapes; a nil map is null.
    assert configs.checksum({"b": "<&>", "a": "1"}) != configs.checksum({"b": "<&>", "a": "2"})
    assert configs.checksum(None) == configs.checksum({}) == "74234e98afe7498f"  # sha256("null")[:16]


@pytest.mark.parametrize("entries", [None, (), (("configmap/app", "0123456789abcdef"),)])
def test_an_approvals_configs_round_trip(entries):
    change = LiveChange(gate="confirm-rollout", state="opened", rollout=RolloutMark(True, "t", "", "abc", entries))
    assert decode("confirm-rollout", change.encode()) == change


def test_bad_configs_make_the_annotation_unreadable():
    with pytest.raises(ValueError, match=r"rollout\.configs is not an object"):
        decode("confirm-rollout", '{"state":"opened","rollout":{"configs":[1]}}')
    with pytest.raises(ValueError, match=r"rollout\.configs"):
        decode("confirm-rollout", '{"state":"opened","rollout":{"configs":{"a":{"b":1}}}}')
