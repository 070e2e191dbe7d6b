"""Recording stand-ins for the transport tests: an API server that records what arrives (plain http
or TLS) and a proxy (HTTP CONNECT, absolute-form HTTP, or SOCKS5) that records what it was asked for.

Both listen on 127.0.0.1. The proxy tunnels every CONNECT to the recording server whatever host
it names, so a kubeconfig can name a host that does not resolve (``api.gate.invalid``): a request
that arrives came through the proxy, and one that went direct fails to resolve.
"""

from __future__ import annotations

import ipaddress
import json
import select
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class RecordingServer:
    """Answers every GET with a small JSON object (or ``answer``) and records method, path, headers."""

    tls: ssl.SSLContext | None = None
    answer: tuple[int, bytes] = (200, b'{"kind":"Namespace","metadata":{"name":"default"}}')
    hold: threading.Event | None = None
    requests: list[Recorded] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RecordingServer:
        bench = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                headers = {k.lower(): v for k, v in self.headers.items()}
                peer = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
                if peer:  # the client certificate presented, by its subject's common name
                    headers["client-certificate"] = dict(x[0] for x in peer.get("subject", ())).get("commonName", "?")
                bench.requests.append(Recorded(self.command, self.path, headers))
                bench.arrived.set()
                if bench.hold is not None:
                    bench.hold.wait(30)
                status, body = bench.answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.hold is not None:
            self.hold.set()
        self._server.shutdown()
        self._server.server_close()

    def url(self, host: str = "127.0.0.1", scheme: str | None = None) -> str:
        return f"{scheme or ('https' if self.tls else 'http')}://{host}:{self.port}"

    @property
    def authorizations(self) -> list[str]:
        return [r.headers.get("authorization", "") for r in self.requests]


@dataclass
class RecordingProxy:
    """An HTTP proxy: ``CONNECT host:port`` is tunnelled to ``upstream`` (127.0.0.1:port) and recorded;
    an absolute-form request (``GET http://host:port/path``) is recorded and answered 200 ``{}``. On
    the same port, a SOCKS5 proxy (told apart by its first byte) tunnels to ``upstream`` too."""

    upstream_port: int
    seen: list[str] = field(default_factory=list)
    proxy_authorizations: list[str] = field(default_factory=list)

    def __enter__(self) -> RecordingProxy:
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                conn = self.request
                conn.settimeout(10)
                data = conn.recv(4096)
                if data[:1] == b"\x05":
                    return proxy._socks(conn, data)
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
                method, target = head[0].split(" ")[:2]
                headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
                proxy.seen.append(f"{method} {target}")
                proxy.proxy_authorizations.append(headers.get("Proxy-Authorization", ""))
                if method != "CONNECT":
                    body = b"{}"
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        b"Content-Length: 2\r\n\r\n" + body
                    )
                    return
                upstream = socket.create_connection(("127.0.0.1", proxy.upstream_port), timeout=10)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _pipe(conn, upstream)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _socks(self, conn: socket.socket, greeting: bytes) -> None:
        """SOCKS5 (RFC 1928/1929): username/password when offered, then CONNECT, recorded as
        ``SOCKS host:port`` (and ``user:password`` in proxy_authorizations)."""

        def read(count: int) -> bytes:
            data = b""
            while len(data) < count:
                chunk = conn.recv(count - len(data))
                if not chunk:
                    raise OSError("closed")
                data += chunk
            return data

        while len(greeting) < 2 or len(greeting) < 2 + greeting[1]:
            greeting += read(1)
        methods = greeting[2 : 2 + greeting[1]]
        credential = ""
        if 2 in methods:
            conn.sendall(b"\x05\x02")
            head = read(2)
            user = read(head[1]).decode()
            password = read(read(1)[0]).decode()
            credential = f"{user}:{password}"
            conn.sendall(b"\x01\x00")
        else:
            conn.sendall(b"\x05\x00")
        _, _, _, kind = read(4)
        host = read(read(1)[0]).decode() if kind == 3 else str(ipaddress.ip_address(read(4 if kind == 1 else 16)))
        port = int.from_bytes(read(2), "big")
        self.seen.append(f"SOCKS {host}:{port}")
        self.proxy_authorizations.append(credential)
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + self.upstream_port.to_bytes(2, "big"))
        _pipe(conn, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        for _ in range(100_000):  # bounded: a test's tunnel carries a few requests
            ready, _, _ = select.select([a, b], [], [], 10)
            if not ready:
                return
            for s in ready:
                chunk = s.recv(65536)
                if not chunk:
                    return
                (b if s is a else a).sendall(chunk)
    except OSError:
        return
    finally:
        b.close()


def tls_pair(*hosts: str, client_certificates: bool = False):
    """(trustme CA, server SSLContext) for a certificate naming ``hosts``; with ``client_certificates``
    the server asks for (but does not require) a client certificate signed by the same CA."""
    import trustme

    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*(hosts or ("127.0.0.1", "localhost"))).configure_cert(context)
    if client_certificates:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_OPTIONAL
    return ca, context


def namespace_json() -> bytes:
    return json.dumps({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "default"}}).encode()
