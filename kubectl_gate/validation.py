"""Checks of a CanaryGate document against the CanaryGate CRD's own schema, before any write.

The schema is read from the CRD that ``kubectl gate install`` prints (deploy/crd/canarygate.yaml,
shipped in :mod:`kubectl_gate.data`), so the check and the API server's cannot drift apart. The
CRD says only ``metadata: {type: object}``: the API server checks ObjectMeta itself, so the few
ObjectMeta rules a CanaryGate file can break (name, namespace, annotations) are checked here too.
"""

from __future__ import annotations

import functools
import re
from typing import Any

CRD_PATH = "deploy/crd/canarygate.yaml"
#: RFC 1123 subdomain: what the API server requires of a custom resource's name.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def crd() -> dict[str, Any]:
    """The CanaryGate CRD as shipped with this CLI (the one ``install`` prints)."""
    import yaml

    from kubectl_gate import data

    return yaml.safe_load(data.read(CRD_PATH))


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema  # deferred: only apply and render validate

    version = crd()["spec"]["versions"][0]
    return jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"])


def problems(doc: dict[str, Any]) -> list[str]:
    """What the API server would reject in this CanaryGate document, as ``path: message`` lines."""
    found = []
    for error in sorted(_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        path = ".".join(str(p) for p in error.absolute_path) or "(root)"
        found.append(f"{path}: {error.message}")
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        found.extend(_meta_problems(meta))
    return found


def _meta_problems(meta: dict[str, Any]) -> list[str]:
    found = []
    name, namespace = meta.get("name"), meta.get("namespace")
    if name is not None and not (isinstance(name, str) and len(name) <= 253 and _SUBDOMAIN.fullmatch(name)):
        found.append(
            f"metadata.name: {name!r} is not a valid name (lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit)"
        )
    if namespace is not None and not (
        isinstance(namespace, str) and len(namespace) <= 63 and _LABEL.fullmatch(namespace)
    ):
        found.append(f"metadata.namespace: {namespace!r} is not a valid namespace name")
    annotations = meta.get("annotations")
    if annotations is not None and not (
        isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())
    ):
        found.append("metadata.annotations: must map names to strings")
    return found
