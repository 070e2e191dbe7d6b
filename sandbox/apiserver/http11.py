"""A small threaded HTTP/1.1 WSGI server with keep-alive, for the emulator.

werkzeug's dev server answers every request with ``Connection: close`` (it cannot
drain unread request bodies), so each kubectl or client request paid a new TCP+TLS
handshake; kube-apiserver keeps connections alive.  This server does what the
emulator needs and no more:

* a thread per connection, kept across the requests of that connection (an open
  watch holds only its own connection's thread, never a shared pool's);
* TLS: the listening socket accepts plain TCP, the handshake runs in the
  connection's thread (a slow client never blocks the accept loop);
* framing: a response with a Content-Length is sent as is, one without is sent
  chunked (HTTP/1.1) with each item the app yields flushed as it comes; a
  mismatched Content-Length or an error after the headers closes the connection;
* request bodies (Content-Length or chunked) the app left unread are drained before
  the response, up to 256 KiB as Go's net/http does; a bigger rest is not read and
  the response says ``Connection: close``;
* ``Connection: close`` from the client, HTTP/1.0 (keep-alive only when asked
  and the response has a length), and an idle timeout between requests;
* ``is_down()`` consulted before each request, and every open connection tracked
  so the owner can drop them all (``drop_connections``);
* ``hold(cancelled)`` called before a new connection's handshake, before answering
  each request and before each write of a response: it blocks while the owner
  simulates a partition (``faults.hang``) and returns False when the connections
  were dropped meanwhile.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.server
import io
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

# NB: Go's net/http (maxPostHandlerReadBytes): before answering it reads and drops up to this much of what
# the handler left of the request body; a body with more left is not read and the answer closes the connection.
DRAIN_LIMIT = 256 << 10
LINGER, LINGER_LIMIT = 0.5, 4 << 20  # after a close: how long and how much of the peer's rest is read


class BodyError(ValueError):
    """The request body is malformed (bad chunk framing)."""


class RequestBody(io.RawIOBase):
    """The request body, bounded by Content-Length or by the terminating chunk."""

    def __init__(self, rfile: Any, length: int | None, chunked: bool):
        self._rfile = rfile
        self._chunked = chunked
        self._left = 0 if chunked else (length or 0)  # bytes left in the body (or in the current chunk)
        self._done = not chunked and not length

    def readable(self) -> bool:
        return True

    @property
    def done(self) -> bool:
        return self._done

    def _next_chunk(self) -> None:
        line = self._rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BodyError(f"bad chunk size line {line!r}") from None
        if size < 0:
            raise BodyError("negative chunk size")
        if size == 0:
            while True:  # trailers, up to the empty line
                trailer = self._rfile.readline(65537)
                if trailer in (b"\r\n", b"\n", b""):
                    break
            self._done = True
        self._left = size

    def readinto(self, buf: Any) -> int:
        if self._done or len(buf) == 0:
            return 0
        if self._chunked and self._left == 0:
            self._next_chunk()
            if self._done:
                return 0
        n = min(len(buf), self._left)
        data = self._rfile.read(n)
        if not data:
            raise ConnectionError("the client closed the connection inside the request body")
        buf[: len(data)] = data
        self._left -= len(data)
        if self._left == 0:
            if self._chunked:
                if self._rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise BodyError("missing CRLF after a chunk")
            else:
                self._done = True
        return len(data)

    def drain(self, limit: int = DRAIN_LIMIT) -> bool:
        """Read and drop what the app left; False when over ``limit`` (then close the connection)."""
        if not self._chunked and self._left >= limit:
            return False  # NB: known to be too big: not read at all
        total = 0
        while not self._done:
            data = self.read(65536)
            if not data:
                break
            total += len(data)
            if total > limit:
                return False
        return True


class RequestHandler(http.server.BaseHTTPRequestHandler):
    """One connection: reads requests and runs the WSGI app for each, until closed."""

    protocol_version = "HTTP/1.1"
    server: ThreadedServer

    def setup(self) -> None:
        sock = self.request
        # NB: here, not in the class's `timeout` (None), which StreamRequestHandler would apply instead
        sock.settimeout(self.server.idle_timeout)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.server.hold():
            raise ConnectionAbortedError("the server dropped its connections")
        if isinstance(sock, ssl.SSLSocket):
            sock.do_handshake()
        super().setup()

    def handle(self) -> None:
        # NB: a dropped or cut connection, a failed handshake, or "down"
        with contextlib.suppress(OSError, ssl.SSLError, ValueError):
            super().handle()

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except TimeoutError:
            self.close_connection = True  # NB: idle timeout
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.server.hold() or self.server.is_down():
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = ""
            self.command = ""  # NB: no method read (the base class says None); not HEAD, so the error has a body
            self.send_error(414)
            return
        if not self.parse_request():  # NB: answers 400/505 itself; sends 100 Continue when asked
            return
        self.run_wsgi()

    # -- WSGI -----------------------------------------------------------------------
    def make_environ(self, body: RequestBody) -> dict:
        url = urlsplit(self.path)
        path = url.path
        if not url.scheme and url.netloc:
            path = f"//{url.netloc}{url.path}"
        environ = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if self.server.ssl_context is not None else "http",
            "wsgi.input": body,
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "werkzeug.socket": self.connection,
            "SERVER_SOFTWARE": "sandbox-apiserver",
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": url.query,
            "REQUEST_URI": self.path,
            "RAW_URI": self.path,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": self.client_address[1],
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
        }
        for key, value in self.headers.items():
            if "_" in key:
                continue
            key = key.upper().replace("-", "_")
            value = value.replace("\r\n", "")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = f"HTTP_{key}"
                if key in environ:
                    value = f"{environ[key]},{value}"
            environ[key] = value
        if url.scheme and url.netloc:
            environ["HTTP_HOST"] = url.netloc
        return environ

    def _request_body(self) -> RequestBody | None:
        te = self.headers.get("Transfer-Encoding", "")
        if te:
            if te.strip().lower() != "chunked":
                self.send_error(501, "Unsupported Transfer-Encoding")
                return None
            return RequestBody(self.rfile, None, chunked=True)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return RequestBody(self.rfile, 0, chunked=False)
        try:
            length = int(cl)
            if length < 0:
                raise ValueError
        except ValueError:
            self.send_error(400, "Bad Content-Length")
            return None
        return RequestBody(self.rfile, length, chunked=False)

    def run_wsgi(self) -> None:
        body = self._request_body()
        if body is None:
            self.close_connection = True
            return
        environ = self.make_environ(body)
        head = self.command == "HEAD"
        state: dict[str, Any] = {
            "status": None,
            "headers": None,
            "sent": False,
            "chunked": False,
            "length": None,
            "written": 0,
        }

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info:
                try:
                    if state["sent"]:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif state["status"] is not None:
                raise AssertionError("headers already set")
            state["status"], state["headers"] = status, list(headers)
            return write

        def send_headers(first: bytes) -> None:
            status, headers = state["status"], state["headers"]
            code = int(status.split(None, 1)[0])
            names = {k.lower() for k, _ in headers}
            no_body = head or 100 <= code < 200 or code in (204, 304)
            if "content-length" in names:
                state["length"] = int(next(v for k, v in headers if k.lower() == "content-length"))
            elif not no_body:
                if self.request_version >= "HTTP/1.1":
                    state["chunked"] = True
                    headers.append(("Transfer-Encoding", "chunked"))
                else:
                    self.close_connection = True  # NB: HTTP/1.0 without a length: the end is the close
            headers = [(k, v) for k, v in headers if k.lower() not in ("connection", "keep-alive")]
            if not self.close_connection:  # NB: as Go does, before the headers, so they can say "close"
                try:
                    if not body.drain():
                        self.close_connection = True
                except (BodyError, ConnectionError, TimeoutError):
                    self.close_connection = True
            if "date" not in names:
                headers.append(("Date", email.utils.formatdate(usegmt=True)))
            if self.close_connection or self.server.is_down():
                self.close_connection = True
                headers.append(("Connection", "close"))
            elif self.request_version < "HTTP/1.1":
                headers.append(("Connection", "keep-alive"))
            proto = "HTTP/1.0" if self.request_version == "HTTP/1.0" else "HTTP/1.1"  # NB: as Go answers
            out = [f"{proto} {status}\r\n".encode("latin-1")]
            out += [f"{k}: {v}\r\n".encode("latin-1") for k, v in headers]
            out.append(b"\r\n")
            state["sent"] = True
            self.log_request(code)
            self.wfile.write(b"".join(out) + (b"" if no_body else frame(first)))
            state["no_body"] = no_body
            if not no_body:
                state["written"] += len(first)

        def frame(data: bytes) -> bytes:
            if state["chunked"]:
                return b"%x\r\n%s\r\n" % (len(data), data) if data else b""
            return data

        def write(data: bytes) -> None:
            assert state["status"] is not None, "write() before start_response"
            assert isinstance(data, bytes), "applications must write bytes"
            if not self.server.hold():
                raise ConnectionAbortedError("the server dropped its connections")
            if not state["sent"]:
                send_headers(data)
            elif data and not state["no_body"]:
                self.wfile.write(frame(data))
                state["written"] += len(data)

        app_iter = None
        try:
            app_iter = self.server.app(environ, start_response)
            for data in app_iter:
                write(data)
            if not state["sent"]:
                write(b"")
            if state["chunked"]:
                if not self.server.hold():
                    raise ConnectionAbortedError("the server dropped its connections")
                self.wfile.write(b"0\r\n\r\n")
            elif state["length"] is not None and not state["no_body"] and state["written"] != state["length"]:
                self.close_connection = True  # NB: the app broke its own Content-Length
        except (OSError, ssl.SSLError):
            self.close_connection = True
            raise
        except Exception:  # noqa: BLE001 - an app bug: 500 if nothing was sent yet, else drop the connection
            self.close_connection = True
            if state["sent"]:
                return
            import traceback

            traceback.print_exc()
            msg = b"500 internal server error\n"
            self.wfile.write(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(msg), msg)
            )
        finally:
            if app_iter is not None and hasattr(app_iter, "close"):
                app_iter.close()
        if not self.close_connection:
            try:
                if not body.drain():
                    self.close_connection = True
            except (BodyError, ConnectionError, TimeoutError):
                self.close_connection = True

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass


# socketserver's request: a connected socket for a stream server, (data, socket) for a datagram one.
_Request = socket.socket | tuple[bytes, socket.socket]


def _stream(request: _Request) -> socket.socket:
    assert isinstance(request, socket.socket), request  # NB: ThreadedServer is a TCPServer
    return request


class ThreadedServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Accepts on one thread, serves each connection on its own daemon thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        app: Callable,
        *,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float = 90.0,
        is_down: Callable[[], bool] = lambda: False,
        hold: Callable[[Callable[[], bool]], bool] = lambda cancelled: True,
    ):
        self.app = app
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self.is_down = is_down
        self._hold = hold
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._dropped = False
        super().__init__(address, RequestHandler)

    def hold(self) -> bool:
        """Wait while the owner holds answers back (a simulated partition); False once dropped."""
        return self._hold(lambda: self._dropped)

    @property
    def server_port(self) -> int:
        return self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:  # NB: the handshake runs in the connection's thread (setup)
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request: _Request, client_address: Any) -> None:
        self.track(_stream(request))  # NB: in the accept thread, so a stop right after still drops it
        super().process_request(request, client_address)

    def track(self, sock: socket.socket) -> None:
        with self._conn_lock:
            self._connections.add(sock)
            dropped = self._dropped
        if dropped:
            _shutdown(sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (OSError, ssl.SSLError, ValueError)):
            super().handle_error(request, client_address)  # NB: a failed handshake or a dropped peer is quiet

    def shutdown_request(self, request: _Request) -> None:
        """Close as Go's net/http does (closeWriteAndWait): stop writing, then read what the peer is
        still sending for a moment, so a body left unread is not answered by a TCP reset that would
        destroy the response already sent."""
        request = _stream(request)
        with self._conn_lock:
            self._connections.discard(request)
        try:
            request.shutdown(socket.SHUT_WR)
            request.settimeout(LINGER)
            deadline, drained = time.monotonic() + LINGER, 0
            while time.monotonic() < deadline and drained < LINGER_LIMIT:
                data = request.recv(65536)
                if not data:
                    break
                drained += len(data)
        except (OSError, ValueError):
            pass
        self.close_request(request)

    def drop_connections(self) -> None:
        """Shut down every open connection (idle, mid-request or streaming), and any accepted later."""
        with self._conn_lock:
            self._dropped = True
            conns = list(self._connections)
        for conn in conns:
            _shutdown(conn)

    @property
    def connection_count(self) -> int:
        with self._conn_lock:
            return len(self._connections)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError, ValueError):
        sock.shutdown(socket.SHUT_RDWR)
