"""The seam between :class:`~canarygate.kube.client.Kube` and the HTTP it runs on: a small protocol of
our own that both transports implement (:mod:`canarygate.kube.light` on the standard library,
:mod:`canarygate.kube.official` over the official client's ``ApiClient``).

A transport does the connection, TLS, proxies and credentials (adding its own auth and impersonation
headers); Kube does JSON, error translation, scrubbing and logging. Contract of every call:

* an HTTP answer, whatever its status, comes back as an :class:`Answer` (or a :class:`Stream`):
  the status is never lost in an exception, so :func:`~canarygate.kube.client.translate` gets it;
* no answer at all (socket, TLS, proxy or HTTP protocol failure) raises :class:`Unanswered`, the
  failure chained; Kube makes it :class:`canarygate.errors.Unreachable`;
* a failure the transport words itself better raises a :class:`canarygate.errors.GateError`
  (:class:`~canarygate.errors.UntrustedServer`, ConfigError).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: Seconds for connect and each read, or (connect, read); None waits forever.
Timeout = float | tuple[float | None, float | None] | None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, read whole."""

    status: int
    body: bytes


class Unanswered(Exception):
    """The request got no HTTP answer; the message is the failure's short reason ("connection refused")."""


def unanswered(e: BaseException) -> Unanswered:
    """The :class:`Unanswered` for a transport failure (raise it ``from e``)."""
    reason = getattr(e, "reason", None)
    text = str(reason or e)
    if "Connection refused" in text:
        text = "connection refused"
    elif "timed out" in text.lower():
        text = "timed out"
    return Unanswered(text)


class Stream(Protocol):
    """A streaming answer (a watch) on a connection of its own."""

    @property
    def status(self) -> int: ...

    def read(self) -> bytes:
        """The whole body (for an answer that is not 200)."""
        ...

    def lines(self) -> Iterator[bytes]:
        """The body's non-blank lines as they arrive, the last one even without its line break;
        Unanswered when the connection breaks."""
        ...

    def cut(self) -> None:
        """From another thread: end the stream now (a blocked read returns). Never raises."""
        ...

    def close(self) -> None:
        """Release the connection and everything reading it. Idempotent."""
        ...


class Transport(Protocol):
    """What :class:`~canarygate.kube.client.Kube` needs of a transport."""

    @property
    def host(self) -> str:
        """The server URL (for messages and Kube.log)."""
        ...

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value it sends: no message may show one."""
        ...

    def send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, Any]],
        headers: Mapping[str, str],
        body: Any,
        timeout: Timeout,
    ) -> Answer:
        """One request; ``body`` is a JSON value (encoded by the transport) or None."""
        ...

    def stream(
        self, path: str, query: Sequence[tuple[str, Any]], headers: Mapping[str, str], timeout: Timeout
    ) -> Stream:
        """A GET whose answer is read as it comes (a watch), once its status line and headers are in."""
        ...

    def close(self) -> None:
        """Close kept-alive connections; a later request opens new ones."""
        ...


def lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-blank lines of a body read in chunks, the last one even without its line break."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer
