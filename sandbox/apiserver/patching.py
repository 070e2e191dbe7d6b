"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and an
approximation of strategic merge patch for built-in kinds.

Strategic merge patch is approximated: maps merge like a JSON merge patch; lists
whose field name is in :data:`MERGE_KEYS` merge element-wise by that key
(containers by ``name``, volumeMounts by ``mountPath``, ...); ``finalizers`` merge
as a set; every other list is replaced.  The directives ``$patch``
(replace/delete/merge), ``$retainKeys``, ``$setElementOrder/<list>`` and
``$deleteFromPrimitiveList/<list>`` are honoured and stripped.  It does not read
Go struct tags, so a list the real server merges but this table does not know is
replaced.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from sandbox.apiserver import status

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "envFrom": None,
}
PRIMITIVE_MERGE = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def json_patch(target: dict, ops: Any) -> dict:
    """RFC 6902; a malformed body is 400, an operation that cannot apply (or a failed ``test``) is 422."""
    if not isinstance(ops, list):
        raise status.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    try:
        patch = jsonpatch.JsonPatch(ops)
    except (jsonpatch.InvalidJsonPatch, TypeError, AttributeError) as e:
        raise status.bad_request(f"invalid JSON Patch: {e}") from e
    try:
        return patch.apply(copy.deepcopy(target))
    except jsonpatch.JsonPatchTestFailed as e:
        raise status.ApiError(
            422,
            f"the server rejected our request due to an error in our request: testing value {e} failed",
            reason="Invalid",
        ) from e
    except (
        jsonpatch.JsonPatchConflict,
        jsonpatch.JsonPointerException,
        jsonpatch.JsonPatchException,
        KeyError,
        IndexError,
    ) as e:
        raise status.ApiError(
            422, f"the server rejected our request due to an error in our request: {e}", reason="Invalid"
        ) from e
    except jsonpatch.InvalidJsonPatch as e:
        raise status.bad_request(f"invalid JSON Patch: {e}") from e


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    return _smp_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch)


def _smp_map(result: dict, patch: dict) -> dict:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    retain = patch.get("$retainKeys")
    orders = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            result[field] = [x for x in result.get(field) or [] if x not in v]
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            cur = result.get(k)
            merged = _smp_map(copy.deepcopy(cur) if isinstance(cur, dict) else {}, v)
            if merged == {} and v.get("$patch") == "delete":
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            result[k] = _smp_list(k, result.get(k), v)
        else:
            result[k] = v
    for field, order in orders.items():
        result[field] = _apply_order(field, result.get(field) or [], order)
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_key(field: str, items: list) -> str | None:
    if field == "ports":
        sample = next((x for x in items if isinstance(x, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def _smp_list(field: str, current: Any, patch: list) -> list:
    current = list(current) if isinstance(current, list) else []
    if field in PRIMITIVE_MERGE:
        return current + [x for x in patch if x not in current]
    key = _merge_key(field, patch + current)
    if not key or not all(isinstance(x, dict) for x in patch):
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [x for x in patch if not (isinstance(x, dict) and x.get("$patch"))]
        return copy.deepcopy(patch)
    result = [copy.deepcopy(x) for x in current]
    for item in patch:
        if item.get("$patch") == "replace":
            return [x for x in patch if not x.get("$patch")]
        idx = next((i for i, x in enumerate(result) if isinstance(x, dict) and x.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del result[idx]
            continue
        if idx is None:
            result.append(_smp_map({}, item))
        else:
            result[idx] = _smp_map(result[idx], item)
    return result


def _apply_order(field: str, items: list, order: list) -> list:
    key = _merge_key(field, order + items)
    if not key:
        ranked = [x for x in order if x in items]
        return ranked + [x for x in items if x not in ranked]
    pos = {o.get(key): i for i, o in enumerate(order) if isinstance(o, dict)}
    return sorted(items, key=lambda x: pos.get(x.get(key) if isinstance(x, dict) else None, len(pos)))
