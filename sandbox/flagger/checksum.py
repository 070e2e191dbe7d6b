"""Flagger's revision hashes: the webhook ``checksum`` and ``lastAppliedSpec``.

Two hashes, both rendered the way Flagger renders them (``docs/flagger-contract.md#the-checksum``):

* :func:`canary_checksum` is **exactly** Flagger's ``canaryChecksum``: FNV-1a-32 over the
  go-spew dump of ``{status.trackedConfigs, status.lastAppliedSpec}``, written in decimal,
  each digit mapped through the Kubernetes "safe encode" alphabet. It is checked against
  the Go-produced vectors in ``tests/data/checksum-vectors.json``.
* :func:`compute_hash` stands in for Flagger's ``ComputeHash(deployment.Spec.Template)``,
  the value stored as ``status.lastAppliedSpec``. Flagger spews the Go ``PodTemplateSpec``
  struct (every field, zero values included), which cannot be reproduced from the JSON an
  API server returns. The sandbox hashes the template's canonical JSON (sorted keys, compact)
  with the same FNV-1a-32 + safe-encode steps instead. The result has Flagger's shape
  (up to 10 characters from ``4-9bcdf``), changes exactly when the template's JSON changes,
  and is stable across runs, but it is **not** the value real Flagger would compute for the
  same template.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: k8s.io/apimachinery/pkg/util/rand: the alphabet SafeEncodeString maps runes into.
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193

_SPEW_PREFIX = "(struct { TrackedConfigs *map[string]string; LastAppliedSpec string })"


def fnv1a_32(data: bytes) -> int:
    """FNV-1a, 32 bits (Go's ``hash/fnv.New32a``)."""
    h = _FNV32_OFFSET
    for byte in data:
        h ^= byte
        h = (h * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """Kubernetes ``rand.SafeEncodeString``: each rune becomes ``alphabet[rune % 27]``."""
    return "".join(SAFE_ALPHABET[ord(ch) % len(SAFE_ALPHABET)] for ch in text)


def spew_dump(tracked_configs: Mapping[str, str] | None, last_applied_spec: str) -> str:
    """The exact text go-spew prints for Flagger's checksum struct.

    ``tracked_configs`` None stands for a nil pointer (``<nil>``); an empty mapping prints
    ``map[]``. Keys are sorted bytewise, written ``k:v`` without quoting, space-separated.
    """
    if tracked_configs is None:
        tc = "<nil>"
    else:
        items = sorted(tracked_configs.items(), key=lambda kv: kv[0].encode())
        tc = "map[" + " ".join(f"{k}:{v}" for k, v in items) + "]"
    return f"{_SPEW_PREFIX}{{TrackedConfigs:(*map[string]string){tc} LastAppliedSpec:(string){last_applied_spec}}}"


def hash_text(text: str) -> str:
    """FNV-1a-32 of the UTF-8 text, in decimal, safe-encoded (Flagger's ``ComputeHash`` tail)."""
    return safe_encode(str(fnv1a_32(text.encode("utf-8"))))


def checksum(tracked_configs: Mapping[str, str] | None, last_applied_spec: str) -> str:
    """Flagger's ``canaryChecksum`` from its two inputs."""
    return hash_text(spew_dump(tracked_configs, last_applied_spec))


def canary_checksum(status: Mapping[str, Any] | None) -> str:
    """Flagger's ``canaryChecksum`` of a Canary's ``status`` (a JSON dict, possibly empty).

    Only ``trackedConfigs`` and ``lastAppliedSpec`` count; name, namespace and phase do not.
    A JSON ``null`` or missing ``trackedConfigs`` is a nil pointer.
    """
    status = status or {}
    return checksum(status.get("trackedConfigs"), status.get("lastAppliedSpec") or "")


def compute_hash(obj: Any) -> str:
    """The sandbox's ``lastAppliedSpec``: a stable hash of ``obj``'s canonical JSON.

    NB: differs from Flagger's spew-based ``ComputeHash`` in value, not in shape (see the
    module docstring). Key order in the input does not matter.
    """
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hash_text(canonical)
