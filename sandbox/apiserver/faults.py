"""Fault injection: latency, error answers, cut watch streams, "down" and "hang".

``down`` is applied by the server (it closes the listening socket and drops the
connections it holds); ``hang`` by the server too (a network partition: connections
are accepted and kept, but no new request is answered and open responses, watches
included, send nothing more until it is lifted); the rest is consulted by the app on
every request.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable


@dataclasses.dataclass
class _Failure:
    status: int
    times: int
    path_prefix: str | None
    method: str | None
    retry_after: int
    message: str


class Faults:
    """What goes wrong, and how often.  Thread-safe; assign or call from tests."""

    def __init__(
        self, *, on_down: Callable[[bool], None] | None = None, on_cut: Callable[[], None] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self.latency = 0.0
        self._latencies: list[tuple[str, float]] = []
        self._failures: list[_Failure] = []
        self._down = False
        self._hang = False
        self._hang_cv = threading.Condition()
        self._on_down = on_down
        self._on_cut = on_cut

    # -- latency ------------------------------------------------------------
    def add_latency(self, seconds: float, *, path_prefix: str | None = None) -> None:
        """Add ``seconds`` to requests under ``path_prefix`` (all requests when None)."""
        with self._lock:
            if path_prefix is None:
                self.latency = seconds
            else:
                self._latencies.append((path_prefix, seconds))

    def delay_for(self, path: str) -> float:
        with self._lock:
            return self.latency + sum(s for prefix, s in self._latencies if path.startswith(prefix))

    # -- error answers --------------------------------------------------------
    def fail(
        self,
        status: int = 503,
        times: int = 1,
        path_prefix: str | None = None,
        method: str | None = None,
        *,
        retry_after: int = 1,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (a Status object).

        429 answers carry ``Retry-After: retry_after`` (client-go retries them; the
        Python client does not).
        """
        with self._lock:
            self._failures.append(
                _Failure(
                    status,
                    times,
                    path_prefix,
                    method.upper() if method else None,
                    retry_after,
                    message or "injected fault",
                )
            )

    def take_failure(self, method: str, path: str) -> _Failure | None:
        with self._lock:
            for f in self._failures:
                if (
                    f.times > 0
                    and (f.path_prefix is None or path.startswith(f.path_prefix))
                    and (f.method is None or f.method == method)
                ):
                    f.times -= 1
                    if f.times == 0:
                        self._failures.remove(f)
                    return f
            return None

    # -- down / watches -----------------------------------------------------------
    @property
    def down(self) -> bool:
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        value = bool(value)
        if value == self._down:
            return
        self._down = value
        if self._on_down:
            self._on_down(value)

    # -- hang (a partition: sockets stay open, nothing is answered) -----------------------
    @property
    def hang(self) -> bool:
        return self._hang

    @hang.setter
    def hang(self, value: bool) -> None:
        """True: accept connections but answer no new request, and send nothing more on open
        responses (watches stay open, silent).  False resumes: held requests are answered and
        held writes go out (to clients still there)."""
        with self._hang_cv:
            self._hang = bool(value)
            self._hang_cv.notify_all()

    def hold(self, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Block while hung; False when ``cancelled()`` became true meanwhile (the server dropped
        its connections or stopped): the caller then gives up instead of answering."""
        if not self._hang:
            return True
        with self._hang_cv:
            while self._hang:
                if cancelled():
                    return False
                self._hang_cv.wait(0.1)  # NB: re-checks ``cancelled`` (set by another thread)
        return not cancelled()

    def cut_watches(self) -> None:
        """End every open watch stream abruptly (no final chunk)."""
        if self._on_cut:
            self._on_cut()

    def reset(self) -> None:
        """No latency, no pending failures, up, not hung."""
        with self._lock:
            self.latency = 0.0
            self._latencies.clear()
            self._failures.clear()
        self.hang = False
        self.down = False
