"""A recording webhook server for tests of the Flagger simulator (and of anything it calls).

``HookRecorder`` serves HTTP on 127.0.0.1 in a thread. Every request is recorded as a
:class:`Request` (method, path, headers, raw body, parsed JSON). Responses are scripted per
path: ``recorder.respond("/confirm-rollout", 403, "closed")`` answers 403 until changed; a
list of responses is consumed one per request, the last one repeating. Unscripted paths
answer 200 ``OK``, like an open gate.

Use it as Flagger's ``events_test.go`` does: route each hook type to its own path and
compare what arrived, in order.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: str = "OK"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def hook(self) -> str:
        """The path without its leading slash: the hook type in the usual routing."""
        return self.path.lstrip("/").split("?", 1)[0]


class HookRecorder:
    """Context manager: ``with HookRecorder() as hooks: hooks.url + "/rollout"``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._scripts: dict[str, list[Response]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ------------------------------------------------------------------
    def respond(
        self, path: str, status: int | Response | Iterable[Response] = 200, body: str = "", **kwargs: Any
    ) -> None:
        """Script the answer(s) for ``path`` (``"/name"``)."""
        if isinstance(status, Response):
            script = [status]
        elif isinstance(status, int):
            script = [Response(status=status, body=body, **kwargs)]
        else:
            script = list(status)
        with self._lock:
            self._scripts[path] = script

    def _next(self, path: str) -> Response:
        with self._lock:
            script = self._scripts.get(path.split("?", 1)[0])
            if not script:
                return Response()
            return script.pop(0) if len(script) > 1 else script[0]

    # -- reading --------------------------------------------------------------------
    def calls(self, hook: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if hook is None or r.hook == hook]

    def sequence(self) -> list[str]:
        """Hook names (paths) in arrival order."""
        return [r.hook for r in self.calls()]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- lifecycle ------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "HookRecorder is not started"
        host, port = self._server.server_address[:2]
        assert isinstance(host, str), host  # NB: an AF_INET server; bytes are for AF_UNIX
        return f"http://{host}:{port}"

    def __enter__(self) -> HookRecorder:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with recorder._lock:
                    recorder.requests.append(Request(self.command, self.path, dict(self.headers.items()), body))
                answer = recorder._next(self.path)
                if answer.delay:
                    threading.Event().wait(answer.delay)
                data = answer.body.encode()
                try:
                    self.send_response(answer.status)
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = do_GET = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True, name="hook-recorder"
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
