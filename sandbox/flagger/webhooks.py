"""Calling a Canary's webhooks the way Flagger does (``docs/flagger-contract.md#the-call``, ``#event-hooks``).

Flagger (``pkg/controller/webhook.go``) POSTs a small JSON body with
``hashicorp/go-retryablehttp`` v0.7.8. This module reproduces the rules a webhook server
can observe:

* **Body**: Go ``json.Marshal`` of ``CanaryWebhookPayload``: compact, no trailing newline,
  fields ``name, namespace, phase, checksum, metadata`` in that order, ``metadata`` left
  out when empty, its keys sorted, ``<``/``>``/``&`` escaped as ``\\u003c`` etc.
* **Headers**: ``Content-Type: application/json``, ``User-Agent: Go-http-client/1.1``,
  ``Accept-Encoding: gzip``; ``user:pass@`` in the URL becomes Basic auth.
* **Timeout**: a Go duration per attempt (default ``10s``; ``0s`` = none; a value that does
  not parse fails the call without any request). For non-event hooks a value shorter than 2
  characters becomes ``10s`` (``CallWebhook``); event hooks only default ``""``.
* **Retries**: ``retries + 1`` attempts. Transport errors, 429 and 5xx except 501 are retried
  after ``1 s * 2**i`` (capped at 30 s), or ``Retry-After`` for 429/503 (uncapped). Every wait
  is multiplied by the simulator's time-scale factor, the only departure from Flagger.
* **Redirects**: followed up to 10 hops; 301/302/303 become a GET without body, 307/308
  re-send the POST.
* **Success** only when the final status is 200, 201 or 202. Otherwise the error text is the
  response body verbatim, or ``POST <url> giving up after N attempt(s)[: cause]`` when retries
  ran out (the body is then thrown away), as in Flagger's events.

A new connection pool is built for every call, as Flagger builds a new client per call.
Environment proxies are not honoured (Flagger's default transport would honour them).
"""

from __future__ import annotations

import base64
import email.utils
import json
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import urllib3

DEFAULT_TIMEOUT = "10s"
BACKOFF_MIN = 1.0
BACKOFF_MAX = 30.0
MAX_REDIRECTS = 10

#: Hook types of ``spec.analysis.webhooks[].type``; ``""`` means rollout.
HOOK_TYPES = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
)


@dataclass(frozen=True)
class HookResult:
    """The outcome of one webhook call (all its attempts).

    ``ok`` is Flagger's success rule (final status 200-202). ``error`` is the text Flagger
    would put in its event (``""`` when ok). ``status`` is the final HTTP status, or None
    when no response counted (transport error, retries exhausted, unparsable timeout).
    """

    ok: bool
    status: int | None = None
    error: str = ""
    attempts: int = 0


# --- payloads -------------------------------------------------------------------------


def hook_payload(
    *, name: str, namespace: str, phase: str, checksum: str, metadata: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``CanaryWebhookPayload`` for a non-event hook; ``metadata`` omitted when empty."""
    payload: dict[str, Any] = {"name": name, "namespace": namespace, "phase": phase, "checksum": checksum}
    if metadata:
        payload["metadata"] = dict(metadata)
    return payload


def event_payload(
    *,
    name: str,
    namespace: str,
    phase: str,
    checksum: str,
    message: str,
    event_type: str,
    now: datetime,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``CallEventWebhook``'s payload: the three event keys win over the hook's metadata."""
    meta = {
        "eventMessage": message,
        "eventType": event_type,
        "timestamp": str(int(now.timestamp() * 1000)),
    }
    for key, value in (metadata or {}).items():
        meta.setdefault(key, value)
    return {"name": name, "namespace": namespace, "phase": phase, "checksum": checksum, "metadata": meta}


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Go ``json.Marshal`` of the payload: field order kept, map keys sorted, HTML-escaped."""
    parts = []
    for key in ("name", "namespace", "phase", "checksum", "metadata"):
        if key not in payload:
            continue
        value = payload[key]
        if key == "metadata":
            if not value:
                continue
            value = dict(sorted(value.items(), key=lambda kv: kv[0].encode()))
        parts.append(json.dumps(key) + ":" + json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    text = "{" + ",".join(parts) + "}"
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text.encode("utf-8")


# --- Go durations ---------------------------------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string (``time.ParseDuration``); ValueError with Go's message."""
    quoted = json.dumps(text)
    s = text
    if s in ("0", "+0", "-0"):
        return 0.0
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if not s:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while s:
        m = _DURATION_PART.match(s)
        assert m is not None  # NB: every part of the pattern is optional, so it matches any text
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {quoted}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS:
            raise ValueError(f"time: unknown unit {json.dumps(unit)} in duration {quoted}")
        total += float(f"{whole or 0}.{frac or 0}") * _UNITS[unit]
        s = s[m.end() :]
    return sign * total


# --- the call -------------------------------------------------------------------------


class _TransportError(Exception):
    """A request that produced no response; ``retriable`` as retryablehttp decides."""

    def __init__(self, message: str, *, retriable: bool = True):
        super().__init__(message)
        self.retriable = retriable


def _retriable_status(status: int) -> bool:
    return status == 429 or status == 0 or (status >= 500 and status != 501)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    if re.fullmatch(r"[+-]?\d+", value.strip()):
        seconds = int(value)
        return float(seconds) if seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff(attempt_index: int, status: int | None, headers: Mapping[str, str] | None) -> float:
    """retryablehttp ``DefaultBackoff`` in seconds, before the scale factor."""
    if status in (429, 503) and headers is not None:
        after = _retry_after(headers)
        if after is not None:
            return after
    return min(BACKOFF_MIN * 2**attempt_index, BACKOFF_MAX)


def _split_userinfo(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    user = parts.username or ""
    password = parts.password or ""
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return urlunsplit(parts._replace(netloc=netloc)), {"Authorization": f"Basic {token}"}


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":xxxxx@")
    return urlunsplit(parts._replace(netloc=netloc))


def _attempt(
    pool: urllib3.PoolManager, url: str, body: bytes, auth: dict[str, str], timeout: float | None
) -> tuple[int, dict[str, str], bytes]:
    """One attempt: the request plus its redirects, within one timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    method, current = "POST", url
    data: bytes | None = body
    quoted = f'Post "{_redact(url)}"'
    for hop in range(MAX_REDIRECTS + 1):
        headers = {"User-Agent": "Go-http-client/1.1", "Accept-Encoding": "gzip", **auth}
        if data is not None:
            headers["Content-Type"] = "application/json"
        remaining = None
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _TransportError(
                    f"{quoted}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                )
        try:
            resp = pool.request(
                method,
                current,
                body=data,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=True,
                timeout=urllib3.Timeout(connect=remaining, read=remaining),
            )
        except urllib3.exceptions.SSLError as exc:
            raise _TransportError(f"{quoted}: tls: failed to verify certificate: {exc}", retriable=False) from None
        except urllib3.exceptions.NewConnectionError as exc:
            # NB: a subclass of ConnectTimeoutError in urllib3 2.x, so caught first.
            text = str(getattr(exc, "reason", None) or exc)
            if "refused" in text.lower():
                host = urlsplit(current)
                text = f"dial tcp {host.hostname}:{host.port}: connect: connection refused"
            raise _TransportError(f"{quoted}: {text}") from None
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            raise _TransportError(
                f"{quoted}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ) from None
        except urllib3.exceptions.LocationValueError as exc:
            raise _TransportError(f"{quoted}: {exc}", retriable=False) from None
        except urllib3.exceptions.HTTPError as exc:
            raise _TransportError(f"{quoted}: {getattr(exc, 'reason', None) or exc}") from None
        status = resp.status
        resp_headers = {k: v for k, v in resp.headers.items()}
        location = resp.headers.get("Location")
        if status in (301, 302, 303, 307, 308) and location:
            if hop == MAX_REDIRECTS:
                raise _TransportError(f"{quoted}: stopped after {MAX_REDIRECTS} redirects", retriable=False)
            current = urljoin(current, location)
            if status in (301, 302, 303):
                method, data = "GET", None
            continue
        return status, resp_headers, resp.data
    raise AssertionError("unreachable")


def call_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: str = "",
    retries: int = 0,
    disable_tls: bool = False,
    time_scale: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> HookResult:
    """Flagger's ``callWebhook``: POST ``payload`` to ``url`` with its timeout and retries."""
    body = encode_payload(payload)
    try:
        seconds = parse_go_duration(timeout or DEFAULT_TIMEOUT)
    except ValueError as exc:
        return HookResult(ok=False, error=str(exc), attempts=0)
    per_attempt = None if seconds <= 0 else seconds
    target, auth = _split_userinfo(url)
    pool = urllib3.PoolManager(cert_reqs=ssl.CERT_NONE, assert_hostname=False) if disable_tls else urllib3.PoolManager()
    retry_max = max(0, int(retries or 0))
    given_up = f"POST {_redact(url)} giving up after"
    try:
        attempt = 0
        while True:
            attempt += 1
            status: int | None = None
            headers: dict[str, str] | None = None
            try:
                status, headers, data = _attempt(pool, target, body, auth, per_attempt)
            except _TransportError as exc:
                if not exc.retriable or attempt > retry_max:
                    return HookResult(ok=False, attempts=attempt, error=f"{given_up} {attempt} attempt(s): {exc}")
            else:
                if not _retriable_status(status):
                    if status > 202:
                        return HookResult(
                            ok=False, status=status, attempts=attempt, error=data.decode("utf-8", errors="replace")
                        )
                    return HookResult(ok=True, status=status, attempts=attempt)
                if attempt > retry_max:
                    return HookResult(
                        ok=False, status=status, attempts=attempt, error=f"{given_up} {attempt} attempt(s)"
                    )
            sleep(backoff(attempt - 1, status, headers) * time_scale)
    finally:
        pool.clear()


class WebhookCaller:
    """Calls one ``spec.analysis.webhooks[]`` entry with a payload, by Flagger's rules.

    The tick (:func:`sandbox.flagger.tick.advance`) takes any callable
    ``(webhook, payload) -> HookResult``; this is the real one. ``time_scale`` multiplies retry
    back-off waits.
    """

    def __init__(self, *, time_scale: float = 1.0, sleep: Callable[[float], None] = time.sleep):
        self.time_scale = time_scale
        self.sleep = sleep

    def __call__(self, webhook: Mapping[str, Any], payload: Mapping[str, Any]) -> HookResult:
        timeout = webhook.get("timeout") or ""
        if hook_type(webhook) != "event" and len(timeout) < 2:
            timeout = DEFAULT_TIMEOUT  # NB: CallWebhook only; event hooks keep e.g. "5"
        return call_webhook(
            webhook.get("url", ""),
            payload,
            timeout=timeout,
            retries=int(webhook.get("retries") or 0),
            disable_tls=bool(webhook.get("disableTLS")),
            time_scale=self.time_scale,
            sleep=self.sleep,
        )


def hook_type(webhook: Mapping[str, Any]) -> str:
    """The webhook's type, with ``""``/missing read as ``rollout``."""
    return webhook.get("type") or "rollout"
