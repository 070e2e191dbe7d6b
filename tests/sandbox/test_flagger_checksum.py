"""Flagger simulator, checksum layer.

Covers:
- the go-spew dump text, FNV-1a-32 value and safe-encoded checksum of every Go-produced
  vector in tests/data/checksum-vectors.json (nil vs empty trackedConfigs, key order);
- the documented example (``85d557f47b``) and the digit mapping 0-9 -> 4-9,b,c,d,f;
- Flagger's TestCanaryChecksum properties: deterministic, changes with a trackedConfigs
  value, with lastAppliedSpec, and between nil and set trackedConfigs;
- the sandbox's lastAppliedSpec hash: Flagger's shape, stable under key order, sensitive to
  a changed image.
"""

import json
import re
from pathlib import Path

import pytest

from sandbox.flagger import checksum

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "checksum-vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["checksum"])
def test_vectors_match_go(vector):
    dump = checksum.spew_dump(vector["trackedConfigs"], vector["lastAppliedSpec"])
    assert dump == vector["spewString"]
    assert checksum.fnv1a_32(dump.encode()) == vector["fnv32a"]
    status = {"trackedConfigs": vector["trackedConfigs"], "lastAppliedSpec": vector["lastAppliedSpec"]}
    assert checksum.canary_checksum(status) == vector["checksum"]


def test_docs_example():
    status = {"trackedConfigs": {"test-config-map": "484637c76acaa7c6"}, "lastAppliedSpec": "5f56684589"}
    assert checksum.canary_checksum(status) == "85d557f47b"


def test_safe_encode_digits():
    assert checksum.safe_encode("0123456789") == "456789bcdf"


def test_checksum_properties_like_flagger():
    base = {"trackedConfigs": {"configmap/a": "1111111111111111"}, "lastAppliedSpec": "abc"}
    assert checksum.canary_checksum(base) == checksum.canary_checksum(dict(base))
    other_config = {**base, "trackedConfigs": {"configmap/a": "2222222222222222"}}
    assert checksum.canary_checksum(other_config) != checksum.canary_checksum(base)
    other_spec = {**base, "lastAppliedSpec": "abd"}
    assert checksum.canary_checksum(other_spec) != checksum.canary_checksum(base)
    nil_configs = {"trackedConfigs": None, "lastAppliedSpec": "abc"}
    empty_configs = {"trackedConfigs": {}, "lastAppliedSpec": "abc"}
    assert checksum.canary_checksum(nil_configs) != checksum.canary_checksum(base)
    assert checksum.canary_checksum(nil_configs) != checksum.canary_checksum(empty_configs)
    # a missing status is a nil pointer and an empty string
    assert checksum.canary_checksum(None) == VECTORS[0]["checksum"]


def test_compute_hash_shape_and_stability():
    template = {"metadata": {"labels": {"app": "demo"}}, "spec": {"containers": [{"name": "app", "image": "demo:1"}]}}
    reordered = {"spec": {"containers": [{"image": "demo:1", "name": "app"}]}, "metadata": {"labels": {"app": "demo"}}}
    h = checksum.compute_hash(template)
    assert re.fullmatch(r"[4-9bcdf]{1,10}", h)
    assert checksum.compute_hash(reordered) == h
    changed = json.loads(json.dumps(template))
    changed["spec"]["containers"][0]["image"] = "demo:2"
    assert checksum.compute_hash(changed) != h
