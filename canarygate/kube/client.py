"""A thin JSON client over an ``ApiClient``, and the one place API errors become :mod:`canarygate.errors`.

The ``ApiClient`` is the official ``kubernetes`` one or the light transport's stand-in
(:mod:`canarygate.kube.light`); either does the HTTP, TLS and credentials. This layer asks for
plain JSON (no typed models, which cost import time) and translates failures with their causes.
It imports neither transport, so the light path never loads urllib3 or ``kubernetes``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import sys
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from canarygate import errors
from canarygate.kube.resources import Resource

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


#: What looks like a secret in a text we did not write (a plugin's stderr, a server's or a library's
#: message): the value is replaced, the name kept. Known secret values are replaced as well.
_SECRET_SHAPES = [
    # NB: a credential-looking value (8+ characters, not only lower-case letters): "basic authentication" stays
    (re.compile(r"\b((?i:bearer|basic))(\s+)(?=[a-z]*[^a-z\s])[A-Za-z0-9._~+/=-]{8,}"), r"\1\2<redacted>"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "<redacted>"),
    (
        re.compile(
            r"(?i)(\"?\b(?:[a-z_-]*token|password|passwd|secret|client-?key-?data|apikey|api-key)\b\"?\s*[:=]\s*)"
            r"(\"[^\"]*\"|'[^']*'|[^\s,;}]+)"
        ),
        r"\1<redacted>",
    ),
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@"), r"\1<redacted>@"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S), "<redacted key>"),
]


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with every known secret (3 characters or more) and whatever looks like one replaced."""
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    for shape, replacement in _SECRET_SHAPES:
        text = shape.sub(replacement, text)
    return text


def secrets_of(api_client: Any) -> tuple[str, ...]:
    """The secret values an ``ApiClient`` (light or official) sends, for :func:`scrub`."""
    found = list(getattr(api_client, "secrets", ()) or ())
    configuration = getattr(api_client, "configuration", None)
    for value in (getattr(configuration, "api_key", None) or {}).values():
        found += [str(value), str(value).split(" ", 1)[-1]]
    found += [str(getattr(configuration, "password", None) or "")]
    return tuple(s for s in found if s)


def _scrubbed(error: BaseException, api_client: Any) -> BaseException:
    """``error`` with its message scrubbed in place (type and attributes kept)."""
    text = str(error)
    clean = scrub(text, secrets_of(api_client))
    if clean != text:
        error.args = (clean,)
    return error


class Kube:
    """JSON requests to one API server through an ``ApiClient`` (official or light).

    No error it raises shows a credential: messages (the server's, a library's) are scrubbed of the
    client's own secrets and of anything shaped like one.
    """

    def __init__(self, api_client: Any, *, timeout: float | None = None) -> None:
        self.api_client = api_client
        self.timeout = timeout
        #: Receives "METHOD URL STATUS in N milliseconds" per request when set (kubectl's -v=6).
        self.log: Callable[[str], None] | None = None

    def close(self) -> None:
        """Close the client's kept-alive connections (both transports); a later request opens new ones."""
        close = getattr(self.api_client, "close", None)
        if close is not None:
            close()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = JSON,
        resource: Resource | None = None,
        name: str = "",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON answer.

        ``resource`` and ``name`` only shape error messages. Raises NotFound, CrdMissing, Conflict,
        Forbidden, Unauthorized, Invalid or Unreachable.
        """
        response = self._send(method, path, query=query, body=body, content_type=content_type, timeout=timeout)
        data = response.read()
        if not 200 <= response.status < 300:
            raise _scrubbed(
                translate(response.status, data, resource=resource, name=name, method=method), self.api_client
            )
        return json.loads(data) if data else {}

    def stream(
        self,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        timeout: Any = None,
        on_open: Callable[[Callable[[], None]], None] | None = None,
    ) -> Generator[dict[str, Any], None, None]:
        """Yield the JSON lines of a watch until the server ends it.

        ``on_open`` receives, once the watch is open, a function that cuts it from another thread
        (the blocked read then ends with Unreachable): a watch whose connection died silently cannot
        be told from a quiet one by reading it.
        """
        response = self._send("GET", path, query=query, timeout=timeout)
        if response.status != 200:
            raise _scrubbed(translate(response.status, response.read(), method="WATCH"), self.api_client)
        raw = response.response
        if on_open is not None:
            on_open(lambda: _shutdown(raw))
        try:
            buffer = b""
            for chunk in raw.stream(amt=None, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
            if buffer.strip():
                yield json.loads(buffer)
        except Exception as e:  # urllib3 protocol/read errors end the watch
            if isinstance(e, json.JSONDecodeError):
                raise errors.Unreachable(f"the watch stream was cut mid-event: {e}") from e
            if _is_transport_error(e):
                raise _scrubbed(errors.Unreachable(f"the watch stream broke: {e}"), self.api_client) from e
            _scrubbed(e, self.api_client)  # in place: the same error goes on, its message scrubbed
            raise
        finally:
            raw.release_conn()

    def request_raw(
        self, method: str, path: str, *, query: Sequence[tuple[str, Any]] = (), timeout: float | None = None
    ) -> tuple[int, bytes]:
        """Send one request and return its status and body as they are, whatever the status.

        For answers that are not the API server's own (a service proxy passes the backend's through);
        transport failures still raise Unreachable.
        """
        response = self._send(method, path, query=query, timeout=timeout)
        return response.status, response.read()

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = JSON,
        timeout: Any = None,
    ) -> Any:
        client = self.api_client
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        params = client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        limit = timeout if timeout is not None else self.timeout
        started = time.monotonic()
        try:
            response = client.call_api(*params, _request_timeout=limit)
            if self.log is not None:
                url = client.configuration.host.rstrip("/") + path + ("?" + urlencode(list(query)) if query else "")
                self.log(f"{method} {url} {response.status} in {(time.monotonic() - started) * 1000:.0f} milliseconds")
            return response
        except Exception as e:
            if _is_transport_error(e):
                host = client.configuration.host
                raise _scrubbed(
                    errors.Unreachable(f"cannot reach the API server at {host}: {_short(e)}"), client
                ) from e
            official = sys.modules.get("kubernetes.client.exceptions")  # NB: loaded if the official client is used
            if official is not None and isinstance(e, official.ApiException):
                raise _scrubbed(errors.Unreachable(f"the API server connection failed: {e.reason}"), client) from e
            text = str(e)
            if scrub(text, secrets_of(client)) != text:
                # NB: not chained: the original's text (and its traceback's locals) hold the secret
                raise errors.GateError(f"{type(e).__name__}: {scrub(text, secrets_of(client))}") from None
            raise


def _shutdown(raw: Any) -> None:
    """Cut a streaming response from another thread (urllib3's and the light transport's both shut down)."""
    with contextlib.suppress(OSError, AttributeError):
        raw.shutdown()


def _is_transport_error(e: BaseException) -> bool:
    """Socket, TLS and HTTP protocol failures of either transport (urllib3's only if it is loaded)."""
    if isinstance(e, (OSError, http.client.HTTPException)):
        return True
    urllib3 = sys.modules.get("urllib3.exceptions")
    return urllib3 is not None and isinstance(e, urllib3.HTTPError)


def _short(e: BaseException) -> str:
    reason = getattr(e, "reason", None)
    text = str(reason or e)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text


def status_message(data: bytes) -> tuple[str, dict[str, Any]]:
    """The message and details of a Status body, or the raw text when it is not one."""
    try:
        body = json.loads(data)
    except (ValueError, TypeError):
        return (data or b"").decode("utf-8", "replace").strip(), {}
    if isinstance(body, Mapping) and body.get("kind") == "Status":
        return str(body.get("message", "")), dict(body.get("details") or {})
    return (data or b"").decode("utf-8", "replace").strip(), {}


def translate(
    status: int, data: bytes, *, resource: Resource | None = None, name: str = "", method: str = ""
) -> errors.GateError:
    """The core error for an API failure, keeping the server's own message."""
    message, details = status_message(data)
    what = resource.qualified if resource else "resource"
    if status == 404:
        if details.get("name") or (name and "could not find the requested resource" not in message):
            return errors.NotFound(message or f'{what} "{name}" not found', kind=what, name=name)
        if resource is not None and resource.custom:
            return errors.CrdMissing(
                f"the API server does not serve {what}: is its CRD installed?", kind=what, name=name
            )
        return errors.NotFound(message or "not found")
    if status == 409:
        return errors.Conflict(message or f'{what} "{name}" was changed by someone else')
    if status == 410:
        return errors.Expired(message or "the resourceVersion is too old: list again")
    if status == 403:
        return errors.Forbidden(message or f"forbidden to {method.lower()} {what}")
    if status == 401:
        return errors.Unauthorized("the API server did not accept your credentials (Unauthorized): log in again")
    if status in (400, 422):
        causes = details.get("causes") or ()
        lines = [f"{c.get('field', '')}: {c.get('message', '')}".strip(": ") for c in causes]
        text = message if not lines else message.split(":")[0] + ":\n  " + "\n  ".join(lines)
        return errors.Invalid(text or "the API server rejected the request as invalid")
    if status == 429 or status >= 500:
        return errors.Unreachable(f"the API server answered {status}: {message or 'server error'}")
    return errors.GateError(f"the API server answered {status}: {message}")
