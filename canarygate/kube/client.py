"""A thin JSON client over a :class:`~canarygate.kube.transport.Transport`, and the one place API
errors become :mod:`canarygate.errors`.

The transport (:mod:`canarygate.kube.light`, or :mod:`canarygate.kube.official` over the official
client) does the HTTP, TLS and credentials. This layer asks for plain JSON (no typed models, which
cost import time) and translates failures with their causes. It imports neither transport, so the
light path never loads urllib3 or ``kubernetes``.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

from canarygate import errors
from canarygate.kube.resources import Resource
from canarygate.kube.transport import Answer, Stream, Timeout, Transport, Unanswered


class _Status(Protocol):
    @property
    def status(self) -> int: ...


_A = TypeVar("_A", bound=_Status)
_E = TypeVar("_E", bound=BaseException)

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


def _scrubbed(error: _E, secrets: Sequence[str]) -> _E:
    """``error`` with its message scrubbed in place (type and attributes kept)."""
    text = str(error)
    clean = scrub(text, secrets)
    if clean != text:
        error.args = (clean,)
    return error


class Kube:
    """JSON requests to one API server through a :class:`~canarygate.kube.transport.Transport`.

    An official ``kubernetes.client.ApiClient`` is taken as well (wrapped in
    :class:`~canarygate.kube.official.OfficialTransport`). No error it raises shows a credential:
    messages (the server's, a library's) are scrubbed of the transport's secrets and of anything
    shaped like one.
    """

    def __init__(self, transport: Transport | Any, *, timeout: float | None = None) -> None:
        official = sys.modules.get("kubernetes.client.api_client")  # NB: loaded if one was handed over
        if official is not None and isinstance(transport, official.ApiClient):
            from canarygate.kube.official import OfficialTransport

            transport = OfficialTransport(transport)
        self.transport: Transport = transport
        self.timeout = timeout
        #: Receives "METHOD URL STATUS in N milliseconds" per request when set (kubectl's -v=6).
        self.log: Callable[[str], None] | None = None

    def close(self) -> None:
        """Close the transport's kept-alive connections; a later request opens new ones."""
        self.transport.close()

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
        timeout: Timeout = None,
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON answer.

        ``resource`` and ``name`` only shape error messages. Raises NotFound, CrdMissing, Conflict,
        Forbidden, Unauthorized, Invalid or Unreachable.
        """
        answer = self._send(method, path, query=query, body=body, content_type=content_type, timeout=timeout)
        if not 200 <= answer.status < 300:
            error = translate(answer.status, answer.body, resource=resource, name=name, method=method)
            raise _scrubbed(error, self.transport.secrets)
        return json.loads(answer.body) if answer.body else {}

    def stream(
        self,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        timeout: Timeout = None,
        on_open: Callable[[Callable[[], None]], None] | None = None,
    ) -> Generator[dict[str, Any], None, None]:
        """Yield the JSON lines of a watch until the server ends it.

        ``on_open`` receives, once the watch is open, a function that cuts it from another thread
        (the blocked read then ends with Unreachable): a watch whose connection died silently cannot
        be told from a quiet one by reading it.
        """
        limit = timeout if timeout is not None else self.timeout
        watch = self._call("GET", path, query, lambda: self.transport.stream(path, query, {"Accept": JSON}, limit))
        try:
            if watch.status != 200:
                raise _scrubbed(translate(watch.status, self._read(watch), method="WATCH"), self.transport.secrets)
            if on_open is not None:
                on_open(watch.cut)
            for line in watch.lines():
                yield json.loads(line)
        except json.JSONDecodeError as e:
            raise errors.Unreachable(f"the watch stream was cut mid-event: {e}") from e
        except Unanswered as e:
            raise _scrubbed(errors.Unreachable(f"the watch stream broke: {e}"), self.transport.secrets) from e
        except Exception as e:
            _scrubbed(e, self.transport.secrets)  # in place: the same error goes on, its message scrubbed
            raise
        finally:
            watch.close()

    def request_raw(
        self, method: str, path: str, *, query: Sequence[tuple[str, Any]] = (), timeout: Timeout = None
    ) -> tuple[int, bytes]:
        """Send one request and return its status and body as they are, whatever the status.

        For answers that are not the API server's own (a service proxy passes the backend's through);
        transport failures still raise Unreachable.
        """
        answer = self._send(method, path, query=query, timeout=timeout)
        return answer.status, answer.body

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = JSON,
        timeout: Timeout = None,
    ) -> Answer:
        headers = {"Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        limit = timeout if timeout is not None else self.timeout
        return self._call(method, path, query, lambda: self.transport.send(method, path, query, headers, body, limit))

    def _read(self, watch: Stream) -> bytes:
        try:
            return watch.read()
        except Unanswered as e:
            raise self._unreachable(e) from e

    def _unreachable(self, e: Unanswered) -> errors.Unreachable:
        error = errors.Unreachable(f"cannot reach the API server at {self.transport.host}: {e}")
        return _scrubbed(error, self.transport.secrets)

    def _call(self, method: str, path: str, query: Sequence[tuple[str, Any]], send: Callable[[], _A]) -> _A:
        """``send()``, logged for Kube.log, its failures as Unreachable and scrubbed of secrets."""
        started = time.monotonic()
        try:
            answer = send()
        except Unanswered as e:
            raise self._unreachable(e) from e
        except Exception as e:
            text = str(e)
            clean = scrub(text, self.transport.secrets)
            if clean != text:
                # NB: not chained: the original's text (and its traceback's locals) hold the secret
                raise errors.GateError(f"{type(e).__name__}: {clean}") from None
            raise
        if self.log is not None:
            url = self.transport.host.rstrip("/") + path + ("?" + urlencode(list(query)) if query else "")
            self.log(f"{method} {url} {answer.status} in {(time.monotonic() - started) * 1000:.0f} milliseconds")
        return answer


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
            return errors.NotFound(message or errors.not_found_message(what, name), kind=what, name=name)
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
