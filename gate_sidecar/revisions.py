"""The sidecar's reads of a target's revision, for approvals given while the revision waits.

An approval given while a Canary is Waiting names the revision its approver saw: the target's pod
template and the ConfigMaps and Secrets it references (:mod:`canarygate.rollouts`, ``Revision``).

* **check** (webhook path, confirm-rollout only, about once per approval): :func:`read_for_check`
  reads the target Deployment and its configs, one GET each, and the call compares them with the
  approval (``rollouts.revision_verdict``): a newer template, or a config-only change, does not pass.
* **bind** (off the webhook path, the writer's review): an approval whose approver could not read
  every config (the approver role reads no Secrets) is bound by :func:`bind` to the configs as the
  sidecar reads them when it first sees the approval; until then confirm-rollout answers 503.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from canarygate import configs, errors, rollouts
from canarygate.annotations import LiveChange
from canarygate.kube import canaries as kube_canaries
from canarygate.kube import revisions as kube_revisions
from canarygate.kube.client import Kube
from canarygate.model import Canary, CanaryGate

log = logging.getLogger(__name__)


def read_for_check(kube: Kube, canary: Canary, metrics: Any = None) -> rollouts.Revision | None:
    """The target's revision now; a Revision without template when the sidecar may not get the
    Deployment (the approval then passes unchecked, as the answer says); None on any other error."""
    try:
        revision = kube_revisions.read_revision(kube, canary)
    except errors.Forbidden as e:
        log.warning("may not read the target of Canary %s, so an approval passes unchecked: %s", canary.ref, e)
        _read(metrics, "forbidden")
        return rollouts.Revision("", {})
    except errors.GateError as e:
        log.warning("cannot read the target of Canary %s to check an approval: %s", canary.ref, e)
        _read(metrics, "error")
        return None
    _read(metrics, "ok" if revision is not None else "error")
    if revision is not None and configs.unreadable(revision.configs):
        log.warning(
            "may not read %s of Canary %s: their changes do not end an approval",
            ", ".join(configs.unreadable(revision.configs)),
            canary.ref,
        )
    return revision


def _read(metrics: Any, result: str) -> None:
    if metrics is not None:
        metrics.read("revision", result)


def needs_binding(change: LiveChange, canary: Canary | None) -> bool:
    """An approval given while Waiting, whose configs are not recorded yet (cheap: the cache only)."""
    return rollouts.needs_revision_check(change, canary) and change.rollout.configs is None


def bind(
    kube: Kube,
    gate: CanaryGate,
    changes: Sequence[LiveChange],
    target: tuple[str, str],
    replace: Callable[[CanaryGate, LiveChange, LiveChange | None, str], str],
    count: Callable[[str, str], None],
) -> None:
    """Record the configs of the revision in each of ``changes`` (conditional writes through
    ``replace``), from the Canary and the target read afresh; a read error leaves them for the next
    review (confirm-rollout answers 503 meanwhile, and asks for one)."""
    try:
        canary = kube_canaries.find_canary(kube, *target)
        revision = kube_revisions.read_revision(kube, canary) if canary is not None else None
    except errors.GateError as e:
        log.warning("cannot read the target of Canary %s/%s to bind an approval: %s", *target, e)
        count("bind", "error")
        return
    if revision is None:
        return
    for change in changes:
        bound = rollouts.configs_binding(change, canary, revision)
        if bound is not None:
            count("bind", replace(gate, change, bound, "bind"))
