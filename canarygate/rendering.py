"""Render the Flagger Canary a CanaryGate describes, and check it against Flagger's CRD.

The Canary's spec is ``spec.flagger`` with one webhook per gate and an event webhook, each pointing
at the sidecar with ``gate_name``/``gate_namespace`` metadata (the Go original's keys, so the sidecar
answers Canaries made by either). The user's own webhooks keep their order, after ours are removed:
rendering twice gives the same Canary.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from canarygate import errors, gates
from canarygate.model import CanaryGate

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

CANARY_API_VERSION = "flagger.app/v1beta1"
CANARY_KIND = "Canary"
#: Where the sidecar's Service answers, when no endpoint is given (deploy/sidecar).
DEFAULT_ENDPOINT = "http://canary-gate-sidecar.canary-gate"
#: Metadata keys that mark a webhook as a gate webhook (shared with the Go original).
GATE_NAME_KEY = "gate_name"
GATE_NAMESPACE_KEY = "gate_namespace"
#: Annotation on the rendered Canary naming the CanaryGate it came from.
SOURCE_ANNOTATION = "piggysec.com/canarygate"
MANAGED_BY = {"app.kubernetes.io/managed-by": "canary-gate"}

#: Webhook types in the order they are rendered: the gates, then the event hook.
HOOK_TYPES = (*gates.GATES, gates.EVENT)


def is_gate_webhook(hook: Mapping[str, Any]) -> bool:
    """True for a webhook an earlier render (ours or the Go original's) put there."""
    return GATE_NAME_KEY in (hook.get("metadata") or {})


def gate_webhooks(gate: CanaryGate, *, endpoint: str = DEFAULT_ENDPOINT) -> list[dict[str, Any]]:
    """One webhook per gate, and the event webhook, for ``gate`` at the sidecar ``endpoint``."""
    base = endpoint.rstrip("/")
    metadata = {GATE_NAME_KEY: gate.name, GATE_NAMESPACE_KEY: gate.namespace}
    return [
        {"name": hook_type, "type": hook_type, "url": f"{base}/{hook_type}", "metadata": dict(metadata)}
        for hook_type in HOOK_TYPES
    ]


def render_canary(gate: CanaryGate, *, endpoint: str = DEFAULT_ENDPOINT) -> dict[str, Any]:
    """The Canary manifest for ``gate``: metadata, and spec.flagger with the gate webhooks.

    Raises InvalidGate when ``spec.flagger`` is missing; the result is not validated here
    (see :func:`check_canary`).
    """
    if not gate.flagger:
        raise errors.InvalidGate(
            f"CanaryGate {gate.ref} has no spec.flagger: it needs the Flagger Canary spec to render"
        )
    spec = copy.deepcopy(dict(gate.flagger))
    analysis = spec.setdefault("analysis", {})
    own = [hook for hook in analysis.get("webhooks") or () if not is_gate_webhook(hook)]
    analysis["webhooks"] = gate_webhooks(gate, endpoint=endpoint) + own
    return {
        "apiVersion": CANARY_API_VERSION,
        "kind": CANARY_KIND,
        "metadata": {
            "name": gate.target.name,
            "namespace": gate.target.namespace,
            "labels": dict(MANAGED_BY),
            "annotations": {SOURCE_ANNOTATION: gate.ref},
        },
        "spec": spec,
    }


def shared_hook_types(gate: CanaryGate) -> list[tuple[str, str]]:
    """(webhook name, type) of the user's own webhooks whose type Canary Gate also renders.

    Flagger calls every webhook of a type and goes on only when all pass: such a webhook can hold (or
    fail) the rollout while our gate is opened, and ``kubectl gate promote`` cannot help with it.
    """
    analysis = (gate.flagger or {}).get("analysis") or {}
    out = []
    for hook in analysis.get("webhooks") or ():
        if not isinstance(hook, Mapping) or is_gate_webhook(hook):
            continue
        hook_type = hook.get("type") or gates.ROLLOUT
        if hook_type in gates.GATES and hook_type not in (gates.ROLLOUT, gates.PRE_ROLLOUT, gates.POST_ROLLOUT):
            out.append((str(hook.get("name") or hook.get("url") or "?"), hook_type))
    return out


@functools.cache
def _canary_validator() -> Validator:
    import jsonschema  # deferred: only apply and render validate
    import yaml

    text = resources.files("canarygate").joinpath("data/flagger-canary-crd.yaml").read_text()
    crd = yaml.safe_load(text)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(schema)


def check_canary(canary: Mapping[str, Any]) -> list[str]:
    """Problems with ``canary`` under Flagger's Canary CRD schema, as ``path: message`` lines."""
    problems = []
    for error in sorted(_canary_validator().iter_errors(canary), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path) or "(root)"
        problems.append(f"{path}: {error.message}")
    return problems


def hook_coverage(gate: CanaryGate, webhooks: list[Mapping[str, Any]]) -> dict[str, bool]:
    """For each hook type, whether the Canary's webhooks send it to this CanaryGate's sidecar route."""
    return coverage_for(gate.namespace, gate.name, webhooks)


def coverage_for(namespace: str, name: str, webhooks: Iterable[Mapping[str, Any]]) -> dict[str, bool]:
    """:func:`hook_coverage` for the CanaryGate ``namespace/name`` (which need not be read)."""
    covered = {hook_type: False for hook_type in HOOK_TYPES}
    for hook in webhooks:
        meta = hook.get("metadata") or {}
        hook_type = hook.get("type") or gates.ROLLOUT
        url = str(hook.get("url", "")).rstrip("/")
        names_us = meta.get(GATE_NAME_KEY, name) == name and meta.get(GATE_NAMESPACE_KEY, namespace) == namespace
        if hook_type in covered and names_us and url.endswith("/" + hook_type):
            covered[hook_type] = True
    return covered
