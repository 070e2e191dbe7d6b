"""Which rollout a live change belongs to, and whether that rollout is still going.

Flagger's payload checksum cannot say: during ``Waiting`` it is the checksum of the revision already
deployed (docs/flagger-contract.md#the-checksum). The Canary's Promoted condition can: its
lastTransitionTime changes only when its status flips (Unknown from the start of a rollout to its
end, True or False after it), so

* a change made **during** a rollout (mark active, since=T) holds while the Canary is active with the
  same T; any end, or a rollout with another T, means that rollout is over;
* a change made **between** rollouts (mark idle, since=T) holds for the next rollout: it ends once the
  Canary shows an end (Succeeded/Failed) other than the one seen when the change was made.

Both rules read only the Canary's current status, so they hold when the sidecar was down at the moment
the rollout ended. An idle change is bound to the rollout it meets (:func:`binding_for`) so that a
second rollout cannot inherit it even if no one looked while the first one ended.

Within one rollout, Flagger restarts the analysis in place when a newer revision arrives (the condition
stays Unknown with the same time). So a change also records the revision under analysis once the
rollout is past Waiting, and ends when another revision is analysed: an approval given for one
revision never passes to the next.

While a revision is Waiting, Flagger's status still names the deployed revision, so an approval given
then records the revision's own inputs, the two Flagger tells a revision by: the target's pod template
(:func:`template_hash`) and the data of the ConfigMaps and Secrets it references
(:mod:`canarygate.configs`). At confirm-rollout the sidecar reads both again (:func:`revision_verdict`):
a newer template, or a ConfigMap-only or Secret-only change, is a revision nobody approved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from canarygate import configs, gates
from canarygate.annotations import SCOPE_STEP, SCOPE_STICKY, LiveChange, RolloutMark
from canarygate.model import END_PHASES, Canary

#: Phases after the promotion was let through: a one-step approval of confirm-promotion has done its work.
PROMOTED_PHASES = frozenset({"Promoting", "Finalising"})


def used_on_answer(change: LiveChange) -> bool:
    """Whether a one-step approval is used up by the first "go on" the sidecar answers.

    Not for confirm-promotion: one promotion may ask it several times (blue/green asks on two
    consecutive ticks, the first routing all traffic to the canary, the second promoting:
    ``runBlueGreen``; the canary strategy asks again if ``Promote`` failed: ``runCanary``). That step
    lasts until the Canary is Promoting (:func:`in_force`), and there is no further confirm-promotion
    call in that rollout.
    """
    return change.scope == SCOPE_STEP and change.gate != gates.CONFIRM_PROMOTION


def template_hash(deployment: Mapping[str, Any] | None) -> str:
    """A short hash of a Deployment's pod template: what a new revision changes (replicas do not).

    Not Flagger's own hash (``ComputeHash`` over a go-spew dump); it only has to tell two templates
    apart, between what an approver saw and what is deployed when Flagger starts the rollout.
    """
    if not deployment:
        return ""
    template = (deployment.get("spec") or {}).get("template") or {}
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Revision:
    """What Flagger tells the target's revision by, read now (``canarygate.kube.revisions``): the pod
    template's hash and the referenced configs' entries (``{"configmap/<name>": checksum}``,
    :mod:`canarygate.configs`), as ``hasSpecChanged`` and ``HasConfigChanged`` compare them."""

    template: str
    configs: Mapping[str, str]


def needs_revision_check(change: LiveChange, canary: Canary | None) -> bool:
    """Whether answering with ``change`` needs the target's revision compared with the one approved:
    an opened change that names a template, while the revision still waits (once the rollout has
    started, the revision under analysis is bound instead: :func:`binding_for`)."""
    return (
        change.state == gates.OPENED
        and bool(change.rollout.template)
        and canary is not None
        and canary.phase == "Waiting"
    )


def configs_binding(change: LiveChange, canary: Canary | None, revision: Revision) -> LiveChange | None:
    """``change`` bound to the configs of ``revision``, when it names a template but no configs yet
    (its approver could not read them all) and ``revision`` is that template; None otherwise."""
    if not needs_revision_check(change, canary) or change.rollout.configs is not None:
        return None
    if revision.template != change.rollout.template:
        return None  # another template: the approval passes nothing anyway (revision_verdict)
    return replace(change, rollout=replace(change.rollout, configs=tuple(sorted(revision.configs.items()))))


#: Verdicts of :func:`revision_verdict`.
SAME, OTHER, UNBOUND = "same", "other", "unbound"


def revision_verdict(change: LiveChange, revision: Revision) -> tuple[str, str]:
    """Whether ``revision`` (the target now) is the one ``change`` approved, and a sentence on why not.

    :data:`OTHER`: another template, or a config whose entry changed (a ConfigMap-only or Secret-only
    change is a new revision to Flagger); :data:`UNBOUND`: the approval's configs are not recorded
    yet (the sidecar records them off the webhook path; until then nothing passes); :data:`SAME`,
    with a note when something could not be compared (an entry nobody may read, no template read).
    """
    mark, who = change.rollout, change.by or "someone"
    if not revision.template:
        return (
            SAME,
            "the revision was not checked: this sidecar may not get Deployments (deploy/sidecar/clusterrole.yaml)",
        )
    if revision.template != mark.template:
        return OTHER, (
            f"the approval by {who} was for another revision of the target "
            f"(template {mark.template}; deployed now {revision.template}): approve again"
        )
    if mark.configs is None:
        return UNBOUND, (
            f"the approval by {who} is not yet bound to the ConfigMaps and Secrets of the revision it names "
            "(the sidecar records them); Flagger asks again"
        )
    approved = dict(mark.configs)
    unread = sorted(
        k
        for k in set(approved) | set(revision.configs)
        if configs.FORBIDDEN in (approved.get(k), revision.configs.get(k))
    )
    changed = sorted(
        k
        for k in set(approved) | set(revision.configs)
        if k not in unread and approved.get(k) != revision.configs.get(k)
    )
    if changed:
        return OTHER, (
            f"the approval by {who} was for another revision of the target ({', '.join(changed)} changed since): "
            "approve again"
        )
    if unread:
        return SAME, f"changes of {', '.join(unread)} cannot be told: not readable with the rights at hand"
    return SAME, ""


def revision_of(canary: Canary) -> str:
    """A short name for the revision under analysis: Flagger's lastAppliedSpec and trackedConfigs.

    Empty while that is not known yet: coming from Initialized or Succeeded, a Waiting Canary still
    records the deployed revision (lastAppliedSpec equals lastPromotedSpec) until the rollout starts;
    coming from Failed, Flagger has already recorded the waiting revision (docs/flagger-contract.md#the-checksum).
    """
    if not canary.active or not canary.last_applied_spec:
        return ""
    if canary.phase == "Waiting" and canary.last_applied_spec == canary.last_promoted_spec:
        return ""
    text = json.dumps([canary.last_applied_spec, dict(sorted(canary.tracked_configs.items()))])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def mark_of(canary: Canary | None) -> RolloutMark:
    """The rollout (or idle period) the Canary is in now; idle with no time when there is no Canary."""
    if canary is None:
        return RolloutMark(active=False, since="")
    since = canary.promoted.last_transition_time if canary.promoted else ""
    return RolloutMark(active=canary.active, since=since, revision=revision_of(canary))


def passed_gates(canary: Canary) -> frozenset[str]:
    """The gates this rollout has gone past for good, read off the Canary's status: Flagger asks them
    no more in this analysis (``advanceCanary``: confirm-rollout before a revision leaves Waiting,
    pre-rollout while weight and iterations are 0, the check and step hooks until promotion,
    confirm-promotion until Promoting). Empty while no rollout is under way: an ended rollout is told
    by its phase. A newer revision restarts the analysis at Progressing (weight 0), so pre-rollout and
    the later gates are asked again, and only confirm-rollout counts as passed then."""
    phase = canary.phase
    if phase == "Progressing":
        started = canary.canary_weight > 0 or canary.iterations > 0
        return frozenset({gates.CONFIRM_ROLLOUT, gates.PRE_ROLLOUT} if started else {gates.CONFIRM_ROLLOUT})
    if phase == "WaitingPromotion":
        return frozenset({gates.CONFIRM_ROLLOUT, gates.PRE_ROLLOUT})
    if phase in PROMOTED_PHASES:
        return frozenset(
            {
                gates.CONFIRM_ROLLOUT,
                gates.PRE_ROLLOUT,
                gates.ROLLOUT,
                gates.CONFIRM_TRAFFIC_INCREASE,
                gates.CONFIRM_PROMOTION,
            }
        )
    return frozenset()


def in_force(change: LiveChange, canary: Canary | None) -> bool:
    """True while ``change`` applies: sticky always, others until their rollout (or revision) has ended."""
    if change.scope == SCOPE_STICKY:
        return True
    if (
        change.scope == SCOPE_STEP
        and change.gate == gates.CONFIRM_PROMOTION
        and canary is not None
        and canary.phase in PROMOTED_PHASES
    ):
        return False  # that promotion is under way: the step is done
    now = mark_of(canary)
    mark = change.rollout
    if mark.active:
        same_revision = not mark.revision or not now.revision or now.revision == mark.revision
        return now.active and now.since == mark.since and same_revision
    ended_since = canary is not None and canary.phase in END_PHASES and now.since != mark.since
    return not ended_since  # over once a rollout ended after the change was made


def binding_for(change: LiveChange, canary: Canary | None) -> LiveChange | None:
    """The change bound to what is running now, when it is still in force and was bound to less.

    A change made between rollouts is bound to the rollout it meets; one made while Waiting, to the
    revision analysed once the rollout starts. None when nothing needs writing.
    """
    if change.scope == SCOPE_STICKY or not in_force(change, canary):
        return None
    now = mark_of(canary)
    if not now.active:
        return None
    if not change.rollout.active or (not change.rollout.revision and now.revision):
        return change.bound_to(now)
    return None
