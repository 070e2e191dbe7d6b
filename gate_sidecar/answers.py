"""The wire formats: Flagger's webhook payload in, the sidecar's JSON answers out.

Flagger POSTs ``{name, namespace, phase, checksum, metadata}`` (docs/flagger-contract.md#the-call); only
200-202 count as success, and it copies the body of other answers into its events, so every answer says why in one
JSON object.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from werkzeug.exceptions import BadRequest

from canarygate import gates, hooks
from canarygate.diagnosis import recommended_command
from canarygate.resolution import Decision

#: Biggest body accepted; Flagger's payloads are a few hundred bytes.
MAX_BODY = 64 * 1024
#: Deepest JSON nesting accepted (Flagger's payload: the object and its metadata, 2).
MAX_DEPTH = 16
#: Longest name or namespace (a Kubernetes name is at most 253 characters).
MAX_NAME = 253


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
    """Check a decoded body; BadRequest says what is wrong (never a 500 for bad input).

    What it returns is safe to use and to echo: ``name`` and ``namespace`` are non-empty strings of
    at most 253 characters, ``phase`` and ``checksum`` strings when present, ``metadata`` an object
    of strings (Flagger's ``map[string]string``), and no string holds a lone surrogate (which
    ``json`` accepts from ``\\ud800`` but cannot encode back); names, phase and checksum hold no
    control character either (they end up in logs). Other fields are ignored.
    """
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object: Flagger's webhook payload {name, namespace, ...}")
    for field in ("name", "namespace"):
        value = data.get(field)
        if not isinstance(value, str) or not value:
            raise BadRequest(f"the payload has no {field!r}: expected Flagger's {{name, namespace, phase, ...}}")
        if len(value) > MAX_NAME:
            raise BadRequest(f"{field!r} is over {MAX_NAME} characters: not a Kubernetes name")
        _check_text(field, value)
    metadata = data.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise BadRequest("'metadata' must be an object of strings")
        for key, value in metadata.items():
            if not isinstance(value, str):
                raise BadRequest(f"'metadata' must be an object of strings: {_shown(key)!r} is a {_json_type(value)}")
            _check_text("a metadata key", key, controls=True)
            _check_text(f"metadata {_shown(key)!r}", value, controls=True)
    for field in ("phase", "checksum"):
        value = data.get(field)
        if value is not None:
            if not isinstance(value, str):
                raise BadRequest(f"{field!r} must be a string, not a {_json_type(value)}")
            _check_text(field, value)
    return data  # type: ignore[return-value]


def decode_body(raw: bytes) -> Payload:
    """Decode and check a request body; BadRequest for anything that is not a usable payload.

    The body must be UTF-8 JSON (RFC 8259: no other encoding, no BOM) nested at most
    :data:`MAX_DEPTH` deep (Flagger's payload is 2 deep); depth is measured before parsing, so a
    body of 64 KiB of ``[`` costs a scan, not a RecursionError.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"the body is not valid JSON: not UTF-8 at byte {e.start}") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise BadRequest(f"the body is not a webhook payload: JSON nested over {MAX_DEPTH} levels deep")
    try:
        data = json.loads(text, parse_int=_integer)
    except (ValueError, RecursionError) as e:  # RecursionError: a backstop, the depth is checked above
        raise BadRequest(f"the body is not valid JSON: {_shown(str(e), 200)}") from None
    return parse_payload(data)


def _integer(digits: str) -> int:
    """An integer of the body: a payload has none, so refuse long ones before int() spends time on them."""
    if len(digits) > 64:
        raise ValueError(f"a number of {len(digits)} digits")
    return int(digits)


def _depth(text: str) -> int:
    """How deep ``[``/``{`` nest in ``text``, outside strings (a linear scan, for bodies that may be deep)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _check_text(what: str, value: str, *, controls: bool = False) -> None:
    """BadRequest when ``value`` holds a lone surrogate, or (unless ``controls``) a control character."""
    if value.isprintable():  # the common case, in C: neither is printable
        return
    for char in value:
        if "\ud800" <= char <= "\udfff":
            raise BadRequest(f"{what} holds a lone surrogate (\\u{ord(char):04x}): not text")
        if not controls and (char < " " or "\x7f" <= char <= "\x9f"):
            raise BadRequest(f"{what} holds the control character \\u{ord(char):04x}")


def _shown(text: str, limit: int = 64) -> str:
    """``text`` safe to put in an answer: no surrogates or controls, at most ``limit`` characters."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}.get(type(value), "null")


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
        message = (
            f"{hook} is closed ({decision.source}) on CanaryGate {ref}; "
            f"to go on: {recommended_command(hook, name, namespace)}"
        )
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
        "message": message
        if found
        else message + f" ({passed_over or f'CanaryGate {ref} does not exist'}: defaults apply)",
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
