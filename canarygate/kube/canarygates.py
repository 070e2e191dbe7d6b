"""Read CanaryGates, and write live gate changes with optimistic concurrency.

A live change is a merge patch of one annotation carrying the resourceVersion it was computed
from: the API server refuses it (409) if anything changed in between, and we read again and retry,
so two people changing gates at once lose nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from canarygate import configs, errors, gates, rollouts
from canarygate.annotations import SCOPE_ROLLOUT, LiveChange, RolloutMark, annotation_key, decode
from canarygate.kube import canaries
from canarygate.kube.client import JSON_PATCH, MERGE_PATCH, Kube
from canarygate.kube.resources import CANARYGATES
from canarygate.model import CanaryGate, parse_canarygate

#: How many times a change is re-read and re-tried after a 409 before giving up.
CONFLICT_RETRIES = 8


def get_gate(kube: Kube, namespace: str, name: str) -> CanaryGate:
    """The CanaryGate ``namespace/name``; NotFound or CrdMissing when it is not there."""
    raw = kube.request("GET", CANARYGATES.path(namespace, name), resource=CANARYGATES, name=name)
    return parse_canarygate(raw)


def find_gate(kube: Kube, namespace: str, name: str) -> CanaryGate | None:
    """Like :func:`get_gate` but None when the CanaryGate does not exist."""
    try:
        return get_gate(kube, namespace, name)
    except errors.CrdMissing:
        raise
    except errors.NotFound:
        return None


def list_gates_raw(kube: Kube, namespace: str | None = None) -> dict[str, Any]:
    """The list object (items and the list's resourceVersion), across namespaces when None."""
    return kube.request("GET", CANARYGATES.path(namespace), resource=CANARYGATES)


def list_gates(kube: Kube, namespace: str | None = None) -> list[CanaryGate]:
    """Every CanaryGate in ``namespace`` (all namespaces when None), sorted by namespace and name."""
    items = list_gates_raw(kube, namespace).get("items") or []
    return sorted((parse_canarygate(i) for i in items), key=lambda g: (g.namespace, g.name))


def write_live_change(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    gate: str,
    state: str,
    by: str,
    at: str,
    scope: str = SCOPE_ROLLOUT,
    reason: str = "",
    on_conflict: Callable[[int], None] | None = None,
) -> tuple[CanaryGate, LiveChange]:
    """Set the live state of one gate, bound to the rollout the Canary is in now.

    Reads the CanaryGate and its Canary, patches the annotation with the CanaryGate's
    resourceVersion as precondition, and retries from a fresh read on 409 (``on_conflict`` is told
    the attempt number). Returns the updated CanaryGate and the change written.
    """
    gates.check_gate(gate)
    state = gates.normalize_state(state)
    for attempt in range(CONFLICT_RETRIES + 1):
        current = get_gate(kube, namespace, name)
        canary = canaries.find_canary(kube, current.target.namespace, current.target.name)
        mark = rollouts.mark_of(canary)
        if state == gates.OPENED and canary is not None and canary.phase == "Waiting":
            mark = _waiting_revision(kube, canary, mark)
        change = LiveChange(gate=gate, state=state, scope=scope, by=by, at=at, reason=reason, rollout=mark)
        patch = {
            "metadata": {
                "resourceVersion": current.resource_version,
                "annotations": {change.key: change.encode()},
            }
        }
        try:
            raw = kube.request(
                "PATCH",
                CANARYGATES.path(namespace, name),
                body=patch,
                content_type=MERGE_PATCH,
                resource=CANARYGATES,
                name=name,
            )
        except errors.Conflict:
            if on_conflict:
                on_conflict(attempt + 1)
            # NB: jittered back-off, so writers racing on one object stop colliding in lock-step.
            time.sleep(random.uniform(0, 0.05 * 2 ** min(attempt, 4)))
            continue
        return parse_canarygate(raw), change
    raise errors.Conflict(
        f"CanaryGate {namespace}/{name} kept changing while we wrote {gate}; nothing was changed: try again"
    )


def _waiting_revision(kube: Kube, canary: Any, mark: RolloutMark) -> RolloutMark:
    """``mark`` naming the revision the approver sees: the target's template and, when these
    credentials may read them all, its configs (else the sidecar records them when it sees the
    approval). A newer template or a config-only change before Flagger's next check is then not
    approved by it (the sidecar compares, canarygate.rollouts.revision_verdict)."""
    from canarygate.kube import revisions

    deployment = revisions.target_deployment(kube, canary)
    mark = replace(mark, template=rollouts.template_hash(deployment))
    if deployment is None:
        return mark
    entries = revisions.config_entries(kube, canary.namespace, (deployment.get("spec") or {}).get("template"))
    if configs.unreadable(entries):
        return mark
    return replace(mark, configs=tuple(sorted(entries.items())))


def _annotation_path(gate: str) -> str:
    # NB: JSON Pointer escapes "/" as "~1" (RFC 6901).
    return "/metadata/annotations/" + annotation_key(gate).replace("~", "~0").replace("/", "~1")


def stored_text(gate: CanaryGate, change: LiveChange) -> str:
    """The annotation text ``gate`` holds for ``change``: what a conditional write must compare with.

    The stored text when it decodes to ``change`` (a hand-written annotation keeps its own spacing,
    key order and fields: comparing our re-encoding would never match it); our encoding otherwise,
    so a write based on another reading of the object fails its test rather than passing wrongly.
    """
    annotations = (gate.raw.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(change.key)
    if isinstance(text, str):
        try:
            if decode(change.gate, text) == change:
                return text
        except ValueError:
            pass
    return change.encode()


def replace_live_change(kube: Kube, gate: CanaryGate, expected: LiveChange, new: LiveChange | None) -> bool:
    """Swap the annotation for ``expected.gate`` if it still holds, byte for byte, the text ``gate`` has.

    ``new`` None removes it. One JSON patch whose ``test`` compares the stored text
    (:func:`stored_text`): the API server applies it to the object as stored, atomically, so a change
    someone made meanwhile (another replica's removal included) is never overwritten. Returns False
    when the annotation had changed (nothing written); API errors raise.
    """
    path = _annotation_path(expected.gate)
    ops: list[dict[str, Any]] = [{"op": "test", "path": path, "value": stored_text(gate, expected)}]
    ops.append(
        {"op": "remove", "path": path} if new is None else {"op": "replace", "path": path, "value": new.encode()}
    )
    try:
        kube.request(
            "PATCH",
            CANARYGATES.path(gate.namespace, gate.name),
            body=ops,
            content_type=JSON_PATCH,
            resource=CANARYGATES,
            name=gate.name,
        )
    except (errors.Invalid, errors.Conflict, errors.NotFound):
        return False  # NB: a failed JSON-patch test is 422 Invalid on kube-apiserver.
    return True


def patch_gate_status(kube: Kube, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    """Merge ``status`` into the CanaryGate's status subresource."""
    return kube.request(
        "PATCH",
        CANARYGATES.path(namespace, name, "status"),
        body={"status": status},
        content_type=MERGE_PATCH,
        resource=CANARYGATES,
        name=name,
    )


def apply_gate(kube: Kube, manifest: dict[str, Any], *, dry_run: bool = False) -> tuple[str, dict[str, Any]]:
    """Create the CanaryGate, or update its spec, labels and annotations given in ``manifest``.

    Live-state annotations already on the object are kept (the manifest does not own them).
    Returns ("created" | "configured" | "unchanged", the object as the server has it).
    """
    meta = manifest.get("metadata") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    query = [("dryRun", "All")] if dry_run else []
    existing = find_gate(kube, namespace, name)
    if existing is None:
        raw = kube.request(
            "POST", CANARYGATES.path(namespace), query=query, body=manifest, resource=CANARYGATES, name=name
        )
        return "created", raw
    patch: dict[str, Any] = {"spec": manifest.get("spec") or {}}
    old_spec = existing.raw.get("spec") or {}
    # NB: merge patch cannot unset a key by omission; null out what the manifest dropped.
    for key in old_spec:
        if key not in patch["spec"]:
            patch["spec"][key] = None
    if meta.get("labels") or meta.get("annotations"):
        patch["metadata"] = {k: meta[k] for k in ("labels", "annotations") if meta.get(k)}
    raw = kube.request(
        "PATCH",
        CANARYGATES.path(namespace, name),
        query=query,
        body=patch,
        content_type=MERGE_PATCH,
        resource=CANARYGATES,
        name=name,
    )
    changed = raw.get("spec") != old_spec or any(
        (existing.raw.get("metadata") or {}).get(k, {}) != (raw.get("metadata") or {}).get(k, {})
        for k in ("labels", "annotations")
    )
    return ("configured" if changed else "unchanged"), raw
