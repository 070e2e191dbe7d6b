"""The dashboard's HTTP server: the standard library's ``http.server`` (threads, one per request),
so the CLI needs nothing the ``sidecar`` extra brings.

Routes: ``GET /`` (the page; ``?token=`` sets the session cookie and redirects to ``/``),
``GET /static/*`` (package data), ``GET /api/state`` (the newest snapshot), ``GET /api/events``
(server-sent events: a snapshot after each poll), ``GET /api/show?namespace=&name=`` (``kubectl gate
show``'s page), ``POST /api/command`` (the command a button would run), ``POST /api/run`` (run it).
Every route but the static files passes :func:`kubectl_gate.dashboard.guard.refusal` first; no
response carries a CORS header.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubectl_gate.context import GateContext
from kubectl_gate.dashboard import actions, guard, snapshot

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
MAX_BODY = 16 * 1024
#: Seconds between two comments on an idle event stream (proxies and browsers keep it open).
HEARTBEAT = 15.0


def static_text(name: str) -> str:
    return (resources.files("kubectl_gate.dashboard") / "static" / name).read_text(encoding="utf-8")


class Dashboard(ThreadingHTTPServer):
    """The server, its session token, the poller and the GateContext the actions share."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, gctx: GateContext, poller: snapshot.Poller, *, address: str = "127.0.0.1", port: int = 0):
        if not guard.is_loopback(address):
            raise ValueError(f"{address} is not a loopback address")
        self.gctx, self.poller = gctx, poller
        self.token = guard.new_token()
        self.address = "127.0.0.1" if address == "localhost" else address
        if ":" in self.address:
            import socket

            self.address_family = socket.AF_INET6
        super().__init__((self.address.strip("[]"), port), Handler)
        self.port = self.server_address[1]
        self.hosts = guard.allowed_hosts(self.address, self.port)
        self.cookie = guard.cookie_name(self.port)
        self.index = static_text("index.html")

    @property
    def base_url(self) -> str:
        host = f"[{self.address.strip('[]')}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/"

    @property
    def url(self) -> str:
        """What the CLI opens: the page with the session token."""
        return f"{self.base_url}?token={self.token}"

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="dashboard-http", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self.poller.stop()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: Dashboard
    protocol_version = "HTTP/1.1"
    server_version = "kubectl-gate-dashboard"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass  # NB: the default logs every request on stderr, token included

    # -- plumbing ----------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _refused(self, query_token: str | None = None) -> bool:
        why = guard.refusal(
            self.headers,
            method=self.command,
            token=self.server.token,
            hosts=self.server.hosts,
            port=self.server.port,
            query_token=query_token,
        )
        if why is None:
            return False
        status = HTTPStatus.MISDIRECTED_REQUEST if why.startswith("Host") else HTTPStatus.FORBIDDEN
        self._error(status, why)
        return True

    def _body(self) -> dict[str, Any] | None:
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")
            return None
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self._error(HTTPStatus.BAD_REQUEST, f"a body of 1 to {MAX_BODY} bytes is needed")
            return None
        try:
            data = json.loads(self.rfile.read(length))
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "the body is not JSON")
            return None
        if not isinstance(data, dict):
            self._error(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
            return None
        return data

    # -- methods -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if path.startswith("/static/"):
            name = path[len("/static/") :]
            if name not in STATIC:
                self._error(HTTPStatus.NOT_FOUND, "not found")
                return
            self._send(HTTPStatus.OK, static_text(name).encode(), STATIC[name])
            return
        if path == "/":
            given = query["token"][0] if query.get("token") else None
            if self._refused(query_token=given):
                return
            if given is not None:  # NB: the token leaves the address bar and the history
                cookie = f"{self.server.cookie}={self.server.token}; Path=/; HttpOnly; SameSite=Strict"
                self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})
                return
            page = self.server.index.replace("{{TOKEN}}", self.server.token)
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
            return
        if self._refused():
            return
        if path == "/api/state":
            self._json(HTTPStatus.OK, self.server.poller.current()[1])
        elif path == "/api/events":
            self._stream()
        elif path == "/api/show":
            self._show(query)
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if self._refused():
            return
        if path not in ("/api/command", "/api/run"):
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        request = self._body()
        if request is None:
            return
        try:
            args = actions.argv(request, require_reason=path == "/api/run")
        except actions.BadAction as e:
            self._error(HTTPStatus.BAD_REQUEST, str(e))
            return
        if (request["namespace"], request["name"]) not in self.server.poller.shown():
            self._error(HTTPStatus.NOT_FOUND, f"CanaryGate {request['namespace']}/{request['name']} is not shown here")
            return
        command = actions.command_line(self.server.gctx, args)
        if path == "/api/command":
            self._json(HTTPStatus.OK, {"command": command})
            return
        with self.server.poller.lock:
            outcome = actions.run(self.server.gctx, args)
        self.server.poller.poll()  # NB: the page shows the change without waiting for the next poll
        self._json(HTTPStatus.OK, {"command": command, **outcome})

    def _refuse_method(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "GET or POST only")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    # -- routes ------------------------------------------------------------------------------

    def _show(self, query: dict[str, list[str]]) -> None:
        """``kubectl gate show NAME -n NS``'s page, plain (no colour, no icons)."""
        from canarygate import errors
        from kubectl_gate import lookup, printing

        namespace, name = (query.get("namespace") or [""])[0], (query.get("name") or [""])[0]
        if (namespace, name) not in self.server.poller.shown():
            self._error(HTTPStatus.NOT_FOUND, f"CanaryGate {namespace}/{name} is not shown here")
            return
        gctx = self.server.gctx
        try:
            with self.server.poller.lock, gctx.in_namespace(namespace):
                view = lookup.load_view(gctx, name)
                text = printing.show_text(view, now=gctx.now(), style=snapshot.PLAIN)
        except errors.GateError as e:
            self._error(HTTPStatus.BAD_GATEWAY, str(e))
            return
        self._json(
            HTTPStatus.OK, {"command": actions.command_line(gctx, ["show", name, "-n", namespace]), "text": text}
        )

    def _stream(self) -> None:
        """Server-sent events: the snapshot now, then after each poll, until the client leaves."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        poller = self.server.poller
        serial, snapshot_now = poller.current()
        data: dict[str, Any] | None = snapshot_now
        try:
            self.wfile.write(b"retry: 2000\n\n")
            while not poller.stopped:
                if data:
                    self.wfile.write(b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n")
                self.wfile.flush()
                newer, data = poller.wait_newer(serial, HEARTBEAT)
                if newer == serial:
                    self.wfile.write(b": still here\n\n")
                    data = None
                serial = newer
        except (BrokenPipeError, ConnectionResetError):
            return
