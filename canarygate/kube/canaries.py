"""Read and write Flagger Canaries."""

from __future__ import annotations

from typing import Any

from canarygate import errors
from canarygate.kube.client import Kube
from canarygate.kube.resources import CANARIES
from canarygate.model import Canary, parse_canary


def get_canary_raw(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return kube.request("GET", CANARIES.path(namespace, name), resource=CANARIES, name=name)


def find_canary(kube: Kube, namespace: str, name: str) -> Canary | None:
    """The Canary, or None when it (or Flagger's CRD) is not there: a gate without a Canary is valid."""
    try:
        return parse_canary(get_canary_raw(kube, namespace, name))
    except errors.NotFound:
        return None


def list_canaries(kube: Kube, namespace: str | None = None) -> list[Canary]:
    """Every Canary in ``namespace`` (all when None); empty when Flagger's CRD is not installed."""
    try:
        raw = kube.request("GET", CANARIES.path(namespace), resource=CANARIES)
    except errors.CrdMissing:
        return []
    return [parse_canary(item) for item in raw.get("items") or ()]


def apply_canary(kube: Kube, manifest: dict[str, Any], *, dry_run: bool = False) -> tuple[str, dict[str, Any]]:
    """Create the Canary, or replace its spec (status, and metadata others set, are kept).

    Returns ("created" | "configured" | "unchanged", the object as the server has it).
    """
    meta = manifest["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    query = [("dryRun", "All")] if dry_run else []
    try:
        existing = get_canary_raw(kube, namespace, name)
    except errors.CrdMissing:
        raise errors.CrdMissing(
            "Flagger's Canary CRD (canaries.flagger.app) is not installed: install Flagger first"
        ) from None
    except errors.NotFound:
        raw = kube.request("POST", CANARIES.path(namespace), query=query, body=manifest, resource=CANARIES, name=name)
        return "created", raw
    if existing.get("spec") == manifest["spec"] and all(
        ((existing.get("metadata") or {}).get(k) or {}).get(key) == value
        for k in ("labels", "annotations")
        for key, value in (meta.get(k) or {}).items()
    ):
        return "unchanged", existing
    replacement = dict(existing)
    replacement["spec"] = manifest["spec"]
    merged_meta = dict(existing.get("metadata") or {})
    for k in ("labels", "annotations"):
        merged_meta[k] = {**(merged_meta.get(k) or {}), **(meta.get(k) or {})}
    replacement["metadata"] = merged_meta
    raw = kube.request(
        "PUT", CANARIES.path(namespace, name), query=query, body=replacement, resource=CANARIES, name=name
    )
    return "configured", raw
