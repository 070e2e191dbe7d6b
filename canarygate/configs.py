"""The ConfigMaps and Secrets a revision is made of, as Flagger's config tracker sees them.

Flagger tells a new revision by two inputs (``pkg/canary/spec.go`` ``hasSpecChanged`` and
``pkg/canary/config_tracker.go`` ``HasConfigChanged``): the target's pod template, and the data of
every ConfigMap and Secret the template references, which it records in ``status.trackedConfigs``
once a rollout starts. A ConfigMap-only change is a new revision. So an approval given while a
revision waits is bound to both (:mod:`canarygate.rollouts`): the template hash, and the entries of
the configs here.

The scan follows ``GetTargetConfigs``: ``configMap``/``secret`` volumes, ``projected`` sources, and
each container's and init container's ``env[].valueFrom`` and ``envFrom``. A config annotated
``flagger.app/config-tracking: disable...``, or a Secret of another type than Opaque, basic-auth,
ssh-auth or tls, is not tracked. :func:`checksum` is Flagger's (SHA-256 of Go's ``json.Marshal`` of
``data``, first 8 bytes in hex), so an entry equals the one Flagger records in ``trackedConfigs``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

CONFIGMAP = "configmap"
SECRET = "secret"
DISABLE_ANNOTATION = "flagger.app/config-tracking"
TRACKED_SECRET_TYPES = frozenset({"Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls"})
#: Entry for a config that is referenced but absent (optional, or not created yet).
ABSENT = "absent"
#: Entry for a config the reader may not read: its changes cannot be told (said where it matters).
FORBIDDEN = "forbidden"

#: Go's json.Marshal escapes these (HTML-safe); Python's json.dumps does not.
_GO_ESCAPES = (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def references(template: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """``(kind, name)`` of every ConfigMap and Secret a pod template references, sorted, no repeats."""
    spec = (template or {}).get("spec") or {}
    found: set[tuple[str, str]] = set()

    def add(kind: str, ref: Any, key: str = "name") -> None:
        if isinstance(ref, Mapping) and isinstance(ref.get(key), str) and ref[key]:
            found.add((kind, ref[key]))

    for volume in spec.get("volumes") or []:
        add(CONFIGMAP, volume.get("configMap"))
        add(SECRET, volume.get("secret"), "secretName")
        for source in (volume.get("projected") or {}).get("sources") or []:
            add(CONFIGMAP, source.get("configMap"))
            add(SECRET, source.get("secret"))
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            add(CONFIGMAP, value_from.get("configMapKeyRef"))
            add(SECRET, value_from.get("secretKeyRef"))
        for env_from in container.get("envFrom") or []:
            add(CONFIGMAP, env_from.get("configMapRef"))
            add(SECRET, env_from.get("secretRef"))
    return sorted(found)


def checksum(data: Mapping[str, Any] | None) -> str:
    """Flagger's ``checksum``: Go marshals a nil map as ``null`` (the API omits empty ``data``)."""
    text = json.dumps(dict(data) if data else None, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in _GO_ESCAPES:
        text = text.replace(char, escape)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def entry(kind: str, obj: Mapping[str, Any] | None) -> str | None:
    """What the revision records for one referenced config: its checksum, :data:`ABSENT`, or None
    when Flagger does not track it (tracking disabled on it, a registry Secret)."""
    if obj is None:
        return ABSENT
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if str(annotations.get(DISABLE_ANNOTATION, "")).startswith("disable"):
        return None
    if kind == SECRET and (obj.get("type") or "Opaque") not in TRACKED_SECRET_TYPES:
        return None
    return checksum(obj.get("data"))


def unreadable(entries: Mapping[str, str]) -> list[str]:
    """The configs in ``entries`` (``{"configmap/<name>": entry}``) whose changes cannot be told:
    the reader may not read them."""
    return sorted(k for k, v in entries.items() if v == FORBIDDEN)
