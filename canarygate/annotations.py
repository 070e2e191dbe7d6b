"""Live gate state: one annotation per gate on the CanaryGate, and how it is read and written.

Format (documented in the README)::

    gate.piggysec.com/<gate>: '{"state":"opened","scope":"rollout","by":"alice","at":"2026-11-22T10:00:00Z",
                               "reason":"CAB-123","rollout":{"active":true,"since":"2026-11-22T09:58:10Z"}}'

``state`` is opened or closed; ``scope`` is ``rollout`` (default: ends with the rollout in progress,
or the next one if none is running), ``sticky`` (until changed) or ``step`` (one "go on", then
consumed by the sidecar). ``rollout`` marks which rollout the change belongs to: see
:mod:`canarygate.rollouts`. Annotations are used because ``spec`` belongs to Git: a GitOps sync
leaves annotations it does not manage alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from canarygate import gates

PREFIX = "gate.piggysec.com/"

SCOPE_ROLLOUT = "rollout"
SCOPE_STICKY = "sticky"
SCOPE_STEP = "step"
SCOPES = (SCOPE_ROLLOUT, SCOPE_STICKY, SCOPE_STEP)


@dataclass(frozen=True)
class RolloutMark:
    """The rollout a live change belongs to, read off the Canary when the change was made.

    ``since`` is the lastTransitionTime of the Canary's Promoted condition: Flagger changes it only
    when the condition's status flips (Unknown while a rollout runs, True/False when it ends), so it
    names one rollout from Waiting to Finalising, and one idle period between rollouts. ``revision``
    names the revision under analysis (see :func:`canarygate.rollouts.revision_of`), empty until the
    rollout is past Waiting: Flagger restarts the analysis of a rollout in place when a newer revision
    arrives, and an approval must not pass to a revision nobody looked at.
    """

    active: bool = False
    since: str = ""
    revision: str = ""
    #: For an approval given while the revision waits (Waiting): a hash of the target Deployment's pod
    #: template the approver saw (:func:`canarygate.rollouts.template_hash`); empty otherwise.
    template: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"active": self.active, "since": self.since}
        if self.revision:
            body["revision"] = self.revision
        if self.template:
            body["template"] = self.template
        return body


@dataclass(frozen=True)
class LiveChange:
    gate: str
    state: str
    scope: str = SCOPE_ROLLOUT
    by: str = ""
    at: str = ""
    reason: str = ""
    rollout: RolloutMark = RolloutMark()

    @property
    def key(self) -> str:
        return annotation_key(self.gate)

    @property
    def identity(self) -> str:
        """Who set what, when and why: the change itself, whatever rollout it is bound to since.

        Binding rewrites the rollout mark, not the change; a one-step approval used up before its
        binding landed must stay used after it, so consumption is tracked by this, not the encoding.
        """
        return json.dumps([self.gate, self.state, self.scope, self.by, self.at, self.reason], ensure_ascii=False)

    def encode(self) -> str:
        """The annotation value: compact JSON, keys in a stable order."""
        body: dict[str, Any] = {"state": self.state, "scope": self.scope, "by": self.by, "at": self.at}
        if self.reason:
            body["reason"] = self.reason
        if self.scope != SCOPE_STICKY:
            body["rollout"] = self.rollout.to_json()
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)

    def bound_to(self, mark: RolloutMark) -> LiveChange:
        return replace(self, rollout=mark)


def annotation_key(gate: str) -> str:
    return PREFIX + gates.check_gate(gate)


def decode(gate: str, value: str) -> LiveChange:
    """Parse one annotation value; ValueError says what is wrong with it."""
    try:
        body = json.loads(value)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg})") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    state = gates.normalize_state(str(body.get("state", "")))
    scope = body.get("scope") or SCOPE_ROLLOUT
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
    mark = body.get("rollout") or {}
    if not isinstance(mark, dict):
        raise ValueError("rollout is not an object")
    return LiveChange(
        gate=gate,
        state=state,
        scope=scope,
        by=str(body.get("by") or ""),
        at=str(body.get("at") or ""),
        reason=str(body.get("reason") or ""),
        rollout=RolloutMark(
            active=bool(mark.get("active")),
            since=str(mark.get("since") or ""),
            revision=str(mark.get("revision") or ""),
            template=str(mark.get("template") or ""),
        ),
    )


def parse_live_changes(
    annotations: Mapping[str, str],
) -> tuple[dict[str, LiveChange], dict[str, str], list[str]]:
    """The live changes in ``annotations``, the gates whose annotation cannot be read, and problems.

    A gate whose annotation cannot be read is neither opened nor closed by guess: it is returned in
    the second value (gate -> what is wrong) so that resolution treats its state as unknown. An
    annotation naming no gate is only reported.
    """
    live: dict[str, LiveChange] = {}
    invalid: dict[str, str] = {}
    problems: list[str] = []
    for key, value in annotations.items():
        if not key.startswith(PREFIX):
            continue
        gate = key[len(PREFIX):]
        if gate not in gates.GATES:
            problems.append(f"annotation {key}: unknown gate {gate!r}; ignored")
            continue
        try:
            live[gate] = decode(gate, value)
        except ValueError as e:
            invalid[gate] = f"annotation {key} cannot be read: {e}"
            problems.append(invalid[gate])
    return live, invalid, problems
