"""The wire formats: Flagger's webhook payload in, the sidecar's JSON answers out.

Flagger POSTs ``{name, namespace, phase, checksum, metadata}`` (CONTRACT §1.2); only 200-202 count as
success, and it copies the body of other answers into its events, so every answer says why in one
JSON object.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from werkzeug.exceptions import BadRequest

from canarygate import gates, hooks
from canarygate.resolution import Decision

#: Biggest body accepted; Flagger's payloads are a few hundred bytes.
MAX_BODY = 64 * 1024


class Payload(TypedDict, total=False):
    """Flagger's ``CanaryWebhookPayload``; ``metadata`` is absent when the webhook has none."""

    name: str
    namespace: str
    phase: str
    checksum: str
    metadata: dict[str, str]


class Answer(TypedDict, total=False):
    """The body of every gate answer."""

    gate: str
    state: str  # opened, closed, or unknown (fail closed)
    allowed: bool  # whether Flagger goes on (for rollback: whether it rolls back)
    source: str  # live, declared, default, invalid (live annotation unreadable) or unavailable
    problem: str  # what is wrong, when source is invalid
    set_by: str
    set_at: str
    reason: str
    scope: str
    canarygate: str  # namespace/name
    found_by: str  # metadata, target or name
    defaults: bool  # the CanaryGate does not exist: the defaults applied
    canary: str
    message: str


def parse_payload(data: Any) -> Payload:
    """Check a decoded body; BadRequest says what is wrong (never a 500 for bad input)."""
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object: Flagger's webhook payload {name, namespace, ...}")
    for field in ("name", "namespace"):
        value = data.get(field)
        if not isinstance(value, str) or not value:
            raise BadRequest(f"the payload has no {field!r}: expected Flagger's {{name, namespace, phase, ...}}")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadRequest("'metadata' must be an object of strings")
    for field in ("phase", "checksum"):
        if data.get(field) is not None and not isinstance(data[field], str):
            raise BadRequest(f"{field!r} must be a string")
    return data  # type: ignore[return-value]


def decode_body(raw: bytes) -> Payload:
    """Decode and check a request body; BadRequest for anything that is not a usable payload."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"the body is not valid JSON: {e}") from None
    return parse_payload(data)


def open_command(gate: str, namespace: str, name: str) -> str:
    """The command a person runs to open ``gate`` (to arm it, for rollback)."""
    return f"kubectl gate open {gate} {name} -n {namespace}"


def gate_answer(
    hook: str, decision: Decision, *, ref: str, found_by: str, found: bool, canary: str, passed_over: str = ""
) -> tuple[int, Answer]:
    """The HTTP status and body for a decision.

    Not ``found``: the defaults applied; the message says why (``passed_over``, else "does not exist").

    Progress gates: opened 200, closed 403. Rollback (Flagger inverts it): opened 200 = roll back
    now, closed 403 = do not.
    """
    opened = decision.opened
    namespace, _, name = ref.partition("/")
    if hook == gates.ROLLBACK:
        message = (
            f"rollback gate is opened ({decision.source}): roll back {canary} now"
            if opened
            else f"rollback gate is closed ({decision.source}): no rollback"
        )
    elif opened:
        message = f"{hook} is opened ({decision.source}): go on"
    else:
        message = f"{hook} is closed ({decision.source}) on CanaryGate {ref}; open it with: {open_command(hook, namespace, name)}"
    body: Answer = {
        "gate": hook,
        "state": decision.state,
        "allowed": opened,
        "source": decision.source,
        "set_by": decision.set_by,
        "set_at": decision.set_at,
        "reason": decision.reason,
        "scope": decision.scope,
        "canarygate": ref,
        "found_by": found_by,
        "defaults": not found,
        "canary": canary,
        "message": message if found else message + f" ({passed_over or f'CanaryGate {ref} does not exist'}: defaults apply)",
    }
    return (200 if opened else 403), body


def _unknown_tail(hook: str, status: int) -> str:
    if hook == gates.ROLLBACK:
        return "not signalling a rollback"
    if status < 300:
        return "not failing this check: the confirm gates hold the next step while the state is unknown"
    return "waiting (fail closed)"


def invalid_answer(
    hook: str, decision: Decision, *, ref: str, found_by: str, canary: str, guarded: bool = False
) -> tuple[int, Answer]:
    """The gate's live annotation cannot be read (``decision.known`` False): no step on a guess.

    503 (progress waits, /rollback does not signal), except a check hook whose next step our confirm
    gates guard (``guarded``): 200, so Flagger fails no check (canarygate.hooks.OUTAGE_RULE).
    """
    status = hooks.unknown_status(hook, guarded_by_us=guarded)
    namespace, _, name = ref.partition("/")
    body: Answer = {
        "gate": hook,
        "state": "unknown",
        "allowed": status < 300,
        "source": decision.source,
        "problem": decision.problem,
        "canarygate": ref,
        "found_by": found_by,
        "defaults": False,
        "canary": canary,
        "message": f"{hook}: the live state on CanaryGate {ref} cannot be read ({decision.problem}); "
        f"replace it with kubectl gate open|close {hook} {name} -n {namespace}; " + _unknown_tail(hook, status),
    }
    return status, body


def unknown_answer(hook: str, *, ref: str, canary: str, why: str, guarded: bool = False) -> tuple[int, Answer]:
    """The state cannot be known: no "go on" to a step and no rollback signal (canarygate.hooks.OUTAGE_RULE).

    503, except a check hook whose next step our confirm gates guard (``guarded``): 200, no failed check.
    """
    status = hooks.unknown_status(hook, guarded_by_us=guarded)
    body: Answer = {
        "gate": hook,
        "state": "unknown",
        "allowed": status < 300,
        "source": "unavailable",
        "canarygate": ref,
        "canary": canary,
        "message": f"{hook}: {why}; " + _unknown_tail(hook, status),
    }
    return status, body


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
