"""The :class:`~canarygate.kube.transport.Transport` over the official client's ``ApiClient``.

Everything the official client does stays its own: ``param_serialize`` adds the configuration's
credentials (refreshing exec and auth-provider tokens on expiry) and default headers
(impersonation), its ``RESTClientObject`` (urllib3) does TLS and proxies (socks5h too).

This module imports neither ``kubernetes`` nor urllib3: it is handed an ``ApiClient``, so both are
loaded already, and it finds their exception classes in ``sys.modules`` (the light path, which
imports :mod:`canarygate.kube.client`, must never load them: docs/packaging.md#start-up-time).
"""

from __future__ import annotations

import contextlib
import http.client
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from canarygate.kube import transport
from canarygate.kube.transport import Answer, Timeout


def _failures() -> tuple[type[BaseException], ...]:
    """Socket, TLS and HTTP protocol failures of the standard library and urllib3."""
    urllib3 = sys.modules.get("urllib3.exceptions")
    return (OSError, http.client.HTTPException) + ((urllib3.HTTPError,) if urllib3 is not None else ())


class _Never(Exception):
    """Stands for ApiException before the official client is loaded (nothing raises it)."""


def _api_exception() -> type[BaseException]:
    exceptions = sys.modules.get("kubernetes.client.exceptions")
    found: type[BaseException] = exceptions.ApiException if exceptions is not None else _Never
    return found


class OfficialTransport:
    """An official ``kubernetes.client.ApiClient`` as a Transport.

    ``secrets``: values the configuration does not hold but the client sends (basic auth's password
    pair); the configuration's API keys and password are added as they are at the time of asking.
    """

    def __init__(self, api_client: Any, *, secrets: tuple[str, ...] = ()) -> None:
        self.api_client = api_client
        self._secrets = secrets

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    @property
    def secrets(self) -> tuple[str, ...]:
        found = list(self._secrets)
        configuration = self.api_client.configuration
        for value in (getattr(configuration, "api_key", None) or {}).values():
            found += [str(value), str(value).split(" ", 1)[-1]]
        found += [str(getattr(configuration, "password", None) or "")]
        return tuple(s for s in found if s)

    def _call(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, Any]],
        headers: Mapping[str, str],
        body: Any,
        timeout: Timeout,
    ) -> Any:
        """The RESTResponse, its body not read; an ApiException with a status is that answer."""
        params = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=dict(headers),
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            return self.api_client.call_api(*params, _request_timeout=timeout)
        except _api_exception() as e:
            status = getattr(e, "status", 0) or 0
            if status:  # NB: urllib3's retry-after handling raises the answer it gave up on
                return _Raised(int(status), getattr(e, "body", None))
            raise transport.Unanswered(str(getattr(e, "reason", None) or e)) from e
        except _failures() as e:
            raise transport.unanswered(e) from e

    def send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, Any]],
        headers: Mapping[str, str],
        body: Any,
        timeout: Timeout,
    ) -> Answer:
        response = self._call(method, path, query, headers, body, timeout)
        try:
            return Answer(response.status, response.read() or b"")
        except _failures() as e:
            raise transport.unanswered(e) from e

    def stream(
        self, path: str, query: Sequence[tuple[str, Any]], headers: Mapping[str, str], timeout: Timeout
    ) -> _Stream:
        return _Stream(self._call("GET", path, query, headers, None, timeout))

    def close(self) -> None:
        self.api_client.close()


class _Raised:
    """An answer the official client raised as an ApiException: read like a RESTResponse."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self._body = body.encode() if isinstance(body, str) else bytes(body or b"")
        self.response = None

    def read(self) -> bytes:
        return self._body


class _Stream:
    """A RESTResponse read as it comes: its urllib3 response's ``stream``, ``shutdown`` and ``release_conn``."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self.status: int = response.status

    def read(self) -> bytes:
        try:
            return bytes(self._response.read() or b"")
        except _failures() as e:
            raise transport.unanswered(e) from e

    def lines(self) -> Iterator[bytes]:
        try:
            yield from transport.lines(self._response.response.stream(amt=None, decode_content=True))
        except _failures() as e:
            raise transport.Unanswered(str(e)) from e

    def cut(self) -> None:
        # NB: urllib3 < 2.3 has no shutdown (AttributeError); a response urllib3 closed itself (a broken
        # chunk) or released has nothing to shut down (ValueError, RuntimeError): the stream is over.
        with contextlib.suppress(OSError, AttributeError, ValueError, RuntimeError):
            self._response.response.shutdown()

    def close(self) -> None:
        raw = getattr(self._response, "response", None)
        if raw is not None:
            raw.release_conn()
