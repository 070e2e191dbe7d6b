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
    #: With ``template``: the ConfigMaps and Secrets that template references, as Flagger records them
    #: in ``trackedConfigs`` (``(("configmap/<name>", checksum), ...)``, :mod:`canarygate.configs`),
    #: read by the approver's CLI or, where it may not read them all, by the sidecar when it first saw
    #: the approval; None until then.
    configs: tuple[tuple[str, str], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"active": self.active, "since": self.since}
        if self.revision:
            body["revision"] = self.revision
        if self.template:
            body["template"] = self.template
        if self.configs is not None:
            body["configs"] = dict(self.configs)
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


#: The largest annotation value read (bytes of UTF-8): the CLI writes a few hundred; anything larger
#: is refused unparsed, so one object cannot make the cache's thread spend its time or memory.
MAX_VALUE = 64 * 1024
#: The longest text field kept (by, at, reason, rollout fields), in characters.
MAX_FIELD = 4096


def decode(gate: str, value: str) -> LiveChange:
    """Parse one annotation value; ValueError says what is wrong with it, and nothing else escapes.

    Bounded: a value over :data:`MAX_VALUE`, nesting too deep for the parser, or a field of the
    wrong type is a ValueError (that gate's state is unknown), never RecursionError or TypeError.
    """
    if not isinstance(value, str):
        raise ValueError(f"not a string but {type(value).__name__}")
    if len(value) > MAX_VALUE or len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE:
        raise ValueError(f"over {MAX_VALUE // 1024} KiB")
    try:
        body = json.loads(value)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg})") from None
    except RecursionError:
        raise ValueError("nested too deep") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    state = body.get("state", "")
    if not isinstance(state, str):
        raise ValueError("state is not a string")
    state = gates.normalize_state(state[:64])
    scope = body.get("scope") or SCOPE_ROLLOUT
    if not isinstance(scope, str) or scope not in SCOPES:
        raise ValueError(f"unknown scope {_short(scope)}: use one of {', '.join(SCOPES)}")
    mark = body.get("rollout") or {}
    if not isinstance(mark, dict):
        raise ValueError("rollout is not an object")
    return LiveChange(
        gate=gate,
        state=state,
        scope=scope,
        by=_text(body, "by"),
        at=_text(body, "at"),
        reason=_text(body, "reason"),
        rollout=RolloutMark(
            active=bool(mark.get("active")),
            since=_text(mark, "since", "rollout.since"),
            revision=_text(mark, "revision", "rollout.revision"),
            template=_text(mark, "template", "rollout.template"),
            configs=_configs(mark.get("configs")),
        ),
    )


def _text(body: Mapping[str, Any], key: str, label: str = "") -> str:
    """A text field: a string (or a number/bool, as the CLI's older values had), bounded; else ValueError."""
    value = body.get(key)
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        if not value:  # false, [], {}: absent, as before
            return ""
        raise ValueError(f"{label or key} is not a string")
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_FIELD:
        raise ValueError(f"{label or key} is over {MAX_FIELD} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\udc80" in the JSON): no answer could carry it
        raise ValueError(f"{label or key} is not valid Unicode") from None
    return text


#: The most configs an approval records (a pod template rarely references more than a handful).
MAX_CONFIGS = 256


def _configs(value: Any) -> tuple[tuple[str, str], ...] | None:
    """``rollout.configs``: an object of text values, bounded; absent is None (not bound yet)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("rollout.configs is not an object")
    if len(value) > MAX_CONFIGS:
        raise ValueError(f"rollout.configs has over {MAX_CONFIGS} entries")
    return tuple(sorted((_text({"k": k}, "k", "rollout.configs"), _text(value, k, "rollout.configs")) for k in value))


def _short(value: Any) -> str:
    """A value for an error message, cut short (never the whole of a large or nested value)."""
    if isinstance(value, str):
        return repr(value[:64])
    return type(value).__name__


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
        gate = key[len(PREFIX) :]
        if gate not in gates.GATES:
            problems.append(f"annotation {key}: unknown gate {gate!r}; ignored")
            continue
        try:
            live[gate] = decode(gate, value)
        except Exception as e:  # noqa: BLE001 - decode raises ValueError only; anything else still stays with its gate
            invalid[gate] = f"annotation {key} cannot be read: {e}"
            problems.append(invalid[gate])
    return live, invalid, problems
