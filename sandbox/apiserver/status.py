"""Status error bodies, shaped as kube-apiserver sends them.

Every failed request is answered with a ``meta/v1 Status`` object; handlers raise
:class:`ApiError` and the app renders it in one place.  ``details.kind`` is the
*plural resource* for NotFound/AlreadyExists/Conflict/Forbidden but the *Kind* for
Invalid, exactly as kube-apiserver does (kubectl builds its messages from them).
"""

from __future__ import annotations

import http
from typing import Any

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error answered as a Status object.  ``headers`` are added to the response."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, http.HTTPStatus(code).phrase.replace(" ", ""))
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        return status_body(self.code, self.message, reason=self.reason, details=self.details)


def status_body(code: int, message: str, *, reason: str, details: dict | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def success_status(details: dict | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details is not None:
        body["details"] = details
    return body


def qualified(plural: str, group: str) -> str:
    """``canarygates.piggysec.com`` or ``pods`` (kube's GroupResource.String())."""
    return f"{plural}.{group}" if group else plural


def not_found_message(resource: str, name: str) -> str:
    """kube's NewNotFound text, the one the whole emulator writes: ``deployments.apps "web" not found``."""
    return f"{resource} {go_quote(name)} not found"


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        not_found_message(qualified(plural, group), name),
        details={"name": name, "group": group, "kind": plural} if group else {"name": name, "kind": plural},
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    details = {"name": name, "group": group, "kind": plural} if group else {"name": name, "kind": plural}
    return ApiError(409, f'{qualified(plural, group)} "{name}" already exists', reason="AlreadyExists", details=details)


def conflict(plural: str, group: str, name: str, why: str | None = None) -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    details = {"name": name, "group": group, "kind": plural} if group else {"name": name, "kind": plural}
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {why}',
        reason="Conflict",
        details=details,
    )


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> ApiError:
    """422 Invalid; ``causes`` are ``{"reason", "message", "field"}`` dicts (field without a leading dot)."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    listed = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name, "group": group, "kind": kind, "causes": causes}
    if not group:
        del details["group"]
    return ApiError(
        422, f'{kind}{"." + group if group else ""} "{name}" is invalid: {listed}', reason="Invalid", details=details
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message, reason="BadRequest")


def method_not_supported(plural: str, group: str, verb: str) -> ApiError:
    return ApiError(
        405,
        f"{verb} is not supported on resources of kind {qualified(plural, group)!r}",
        reason="MethodNotAllowed",
        details={"group": group, "kind": plural},
    )


def page_not_found() -> ApiError:
    return ApiError(
        404,
        "the server could not find the requested resource",
        reason="NotFound",
        details={"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]},
    )


# ---------------------------------------------------------------------------------------------
# Go's %q, for texts that must match kube-apiserver's byte for byte
# ---------------------------------------------------------------------------------------------

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(s: str) -> str:
    """strconv.Quote: double quotes, backslash escapes, printable Unicode kept as is."""
    out = ['"']
    for c in s:
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif c in _GO_ESCAPES:
            out.append(_GO_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append('"')
    return "".join(out)
