"""ConfigMaps and Secrets tracked as Flagger's config tracker does (``pkg/canary/config_tracker.go``).

A ConfigMap or Secret is tracked when the target's pod template references it: a ``configMap`` or
``secret`` volume, a ``projected`` volume's sources, or a container's or init container's
``env[].valueFrom.{configMapKeyRef,secretKeyRef}`` and ``envFrom[].{configMapRef,secretRef}``.
Skipped: one annotated ``flagger.app/config-tracking: disable...``, a Secret whose type is not
Opaque, basic-auth, ssh-auth or tls (registry secrets), and one that cannot be read.

``status.trackedConfigs`` maps ``configmap/<name>`` and ``secret/<name>`` to the first 8 bytes,
in hex, of the SHA-256 of Go's ``json.Marshal`` of the object's ``data`` (``map[string]string``
for a ConfigMap, ``map[string][]byte`` for a Secret, which Go writes base64-encoded, as the API
returns it; ``binaryData`` is not hashed; empty data is ``null``, as the API omits it).

The primary gets copies named ``<name>-primary`` and its pod template refers to them
(``CreatePrimaryConfigs``/``ApplyPrimaryConfigs``) at creation and on each promotion.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

DISABLE_ANNOTATION = "flagger.app/config-tracking"
SECRET_TYPES = ("Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls")

Lookup = Callable[[str], "Mapping[str, Any] | None"]


def go_json(value: Any) -> str:
    """Go's ``json.Marshal`` of a string map: sorted keys, no spaces, HTML-safe escapes."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    for char, escape in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def checksum(data: Mapping[str, Any] | None) -> str:
    """``checksum`` of config_tracker.go: 16 hex digits."""
    return hashlib.sha256(go_json(dict(data) if data else None).encode()).hexdigest()[:16]


def _mandatory(optional: Any) -> bool:
    return not bool(optional)


#: Where a pod spec names ConfigMaps and Secrets (config_tracker.go, GetConfigRefs): for each kind of
#: place, the (kind, field, name field) it may hold.
_VOLUME = (("configmap", "configMap", "name"), ("secret", "secret", "secretName"))
_PROJECTED = (("configmap", "configMap", "name"), ("secret", "secret", "name"))
_ENV_VALUE_FROM = (("configmap", "configMapKeyRef", "name"), ("secret", "secretKeyRef", "name"))
_ENV_FROM = (("configmap", "configMapRef", "name"), ("secret", "secretRef", "name"))


def _refs(place: Mapping[str, Any], fields, *, first_only: bool = False):
    """(kind, reference, name field) for each of ``fields`` present in ``place``; ``first_only``: the
    first present alone (Go's switch over an env source's refs)."""
    for kind, field, name_field in fields:
        if place.get(field) is not None:
            yield kind, place[field], name_field
            if first_only:
                return


def referenced(pod_spec: Mapping[str, Any]) -> tuple[dict[str, bool], dict[str, bool]]:
    """``(configmaps, secrets)`` the pod spec names, each mapped to "required"."""
    found: dict[str, dict[str, bool]] = {"configmap": {}, "secret": {}}
    refs = []
    for volume in pod_spec.get("volumes") or []:
        refs.extend(_refs(volume, _VOLUME))
        for source in (volume.get("projected") or {}).get("sources") or []:
            refs.extend(_refs(source, _PROJECTED))
    for container in list(pod_spec.get("containers") or []) + list(pod_spec.get("initContainers") or []):
        for env in container.get("env") or []:
            refs.extend(_refs(env.get("valueFrom") or {}, _ENV_VALUE_FROM, first_only=True))
        for env_from in container.get("envFrom") or []:
            refs.extend(_refs(env_from, _ENV_FROM, first_only=True))
    for kind, ref, name_field in refs:
        found[kind][ref.get(name_field, "")] = _mandatory(ref.get("optional"))
    return found["configmap"], found["secret"]


def _disabled(obj: Mapping[str, Any]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(DISABLE_ANNOTATION, "")).startswith("disable")


def tracked_configs(pod_spec: Mapping[str, Any], get_configmap: Lookup, get_secret: Lookup) -> dict[str, str]:
    """``GetConfigRefs``: ``{"configmap/<n>"|"secret/<n>": checksum}`` for the pod spec.

    ``get_configmap``/``get_secret`` return the object (API JSON) or None when it cannot be read.
    """
    configmaps, secrets = referenced(pod_spec)
    result: dict[str, str] = {}
    for name in configmaps:
        obj = get_configmap(name)
        if obj is None or _disabled(obj):
            continue
        result[f"configmap/{name}"] = checksum(obj.get("data"))
    for name in secrets:
        obj = get_secret(name)
        if obj is None or (obj.get("type") or "Opaque") not in SECRET_TYPES or _disabled(obj):
            continue
        result[f"secret/{name}"] = checksum(obj.get("data"))
    return result


def apply_primary_configs(pod_spec: Mapping[str, Any], tracked: Mapping[str, str]) -> dict[str, Any]:
    """``ApplyPrimaryConfigs``: a copy of the pod spec naming the ``-primary`` copies."""
    spec = copy.deepcopy(dict(pod_spec))

    def rename(ref: dict[str, Any] | None, kind: str, key: str = "name") -> None:
        if ref is not None and f"{kind}/{ref.get(key, '')}" in tracked:
            ref[key] = f"{ref.get(key, '')}-primary"

    for volume in spec.get("volumes") or []:
        rename(volume.get("configMap"), "configmap")
        rename(volume.get("secret"), "secret", "secretName")
        for source in (volume.get("projected") or {}).get("sources") or []:
            rename(source.get("configMap"), "configmap")
            rename(source.get("secret"), "secret")
    for container in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            if value_from.get("configMapKeyRef") is not None:
                rename(value_from["configMapKeyRef"], "configmap")
            elif value_from.get("secretKeyRef") is not None:
                rename(value_from["secretKeyRef"], "secret")
        for env_from in container.get("envFrom") or []:
            if env_from.get("configMapRef") is not None:
                rename(env_from["configMapRef"], "configmap")
            elif env_from.get("secretRef") is not None:
                rename(env_from["secretRef"], "secret")
    return spec
