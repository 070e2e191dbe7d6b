"""The light transport: the two ``ApiClient`` methods :class:`~canarygate.kube.client.Kube` uses
(``param_serialize`` and ``call_api``) on the standard library's ``http.client``.

Why: importing the official ``kubernetes`` client costs ~190 ms, more than ``kubectl get`` takes in
all, and ``kubectl gate show`` must stay within 2x of it (UX-AND-PACKAGING §0.5, §6.4). This module
must never import ``kubernetes`` (an import-linter contract and a test check it).

Supported: bearer tokens, ``tokenFile``, basic auth, client certificates (files or data), CA (file
or data, else the system store), ``insecure-skip-tls-verify``, exec credential plugins.
Anything else (auth-provider, impersonation, proxies, tls-server-name) raises :class:`Unsupported`;
:func:`canarygate.kube.connect.connect` then uses the official client.

Connections: one kept-alive connection per client for ordinary requests, shared by threads under a
lock (a request holds it until its body is read); each watch gets its own connection, closed when
the stream is released.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from canarygate import errors
from canarygate.kube.kubeconfig import Resolved

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


class Unsupported(Exception):
    """The kubeconfig needs something this transport does not do: use the official client."""


@dataclass(frozen=True)
class Target:
    """Where and how to connect: server URL, auth headers and TLS context."""

    server: str
    headers: dict[str, str]
    ssl_context: ssl.SSLContext | None
    #: The kubeconfig's cluster name, for messages.
    cluster: str = ""


def target(resolved: Resolved) -> Target:
    """The Target for a resolved kubeconfig context; Unsupported for what only the official client does.

    Runs an exec credential plugin if the user has one. OSError, ssl.SSLError or ValueError for
    unreadable or broken credentials (callers fall back to the official client, whose messages
    users know).
    """
    cl, usr = resolved.cluster, resolved.user
    server = str(cl.get("server") or "")
    if not server:
        raise Unsupported(f'cluster "{resolved.cluster_name}" has no server')
    unsupported = [k for k in ("proxy-url", "tls-server-name") if cl.get(k)] + [
        k for k in ("auth-provider", "as", "as-groups", "as-uid", "impersonate") if usr.get(k)]
    if any(os.environ.get(v) for v in _PROXY_VARIABLES):
        unsupported.append("proxy")
    if unsupported:
        raise Unsupported(f"not supported by the light transport: {', '.join(unsupported)}")
    headers = {"Accept": "application/json"}
    ssl_context = None
    if server.startswith("https"):
        # NB: the system CA store (~20 ms to load) only when the kubeconfig names no CA of its own.
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cl.get("insecure-skip-tls-verify") is True:  # NB: only a real boolean; the reader refuses others
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        elif cl.get("certificate-authority-data"):
            ssl_context.load_verify_locations(cadata=base64.b64decode(cl["certificate-authority-data"]).decode())
        elif cl.get("certificate-authority"):
            ssl_context.load_verify_locations(cafile=cl["certificate-authority"])
        else:
            ssl_context.load_default_certs()
    cert = _pem(usr.get("client-certificate-data"), usr.get("client-certificate"))
    key = _pem(usr.get("client-key-data"), usr.get("client-key"))
    token = usr.get("token")
    if not token and usr.get("tokenFile"):
        with open(usr["tokenFile"]) as f:
            token = f.read().strip()
    if not token and usr.get("exec"):
        status = _exec_credential(usr["exec"])
        token = status.get("token")
        if status.get("clientCertificateData"):
            cert = ("data", status["clientCertificateData"].encode())
            key = ("data", (status.get("clientKeyData") or "").encode())
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif usr.get("username"):
        pair = f"{usr['username']}:{usr.get('password', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    if cert and ssl_context is not None:
        _load_cert_chain(ssl_context, cert, key)
    return Target(server.rstrip("/"), headers, ssl_context, resolved.cluster_name)


def _pem(data: str | None, path: str | None) -> tuple[str, Any] | None:
    if data:
        return ("data", base64.b64decode(data))
    if path:
        return ("file", path)
    return None


def _load_cert_chain(context: ssl.SSLContext, cert: tuple[str, Any], key: tuple[str, Any] | None) -> None:
    """ssl reads keys only from files: inline data goes through a private temporary file, removed at once."""
    made: list[str] = []

    def as_file(item):
        if item is None:
            return None
        kind, value = item
        if kind == "file":
            return value
        fd, name = tempfile.mkstemp(suffix=".pem")
        made.append(name)
        with os.fdopen(fd, "wb") as f:
            f.write(value)
        return name

    try:
        context.load_cert_chain(as_file(cert), as_file(key))
    finally:
        for name in made:
            os.unlink(name)


def _exec_credential(spec: dict[str, Any]) -> dict[str, Any]:
    """Run a client.authentication.k8s.io exec plugin; its ``status``. Unsupported when it fails."""
    command = spec.get("command") or ""
    env = dict(os.environ)
    for item in spec.get("env") or ():  # NB: a missing or null value is "", as client-go decodes it
        item = item or {}
        if item.get("name"):
            env[item["name"]] = item.get("value") or ""
    info = {"apiVersion": spec.get("apiVersion", "client.authentication.k8s.io/v1"),
            "kind": "ExecCredential", "spec": {"interactive": False}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    try:
        out = subprocess.run([command, *(spec.get("args") or ())], env=env, capture_output=True, timeout=10,
                             check=True, stdin=subprocess.DEVNULL).stdout
        return json.loads(out).get("status") or {}
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        raise Unsupported(f"exec credential plugin failed: {e}") from e


def untrusted(server: str, detail: str, cluster: str = "") -> errors.UntrustedServer:
    """The error for a server whose TLS certificate does not verify: not an outage, a missing CA."""
    entry = f'cluster "{cluster}"' if cluster else "the cluster"
    return errors.UntrustedServer(
        f"the API server at {server} is up, but its TLS certificate is not trusted ({detail}).\n"
        f"Give the kubeconfig's {entry} the CA that signed it: certificate-authority: <CA file> "
        "or certificate-authority-data: <base64 PEM>"
    )


# -- the ApiClient stand-in ----------------------------------------------------------------------


class _Configuration:
    def __init__(self, host: str):
        self.host = host


class _Stream:
    """What Kube.stream reads: ``stream(amt, decode_content)`` and ``release_conn()``."""

    def __init__(self, response: http.client.HTTPResponse, connection: http.client.HTTPConnection):
        self._response, self._connection = response, connection

    def stream(self, amt=None, decode_content=True):
        while True:
            chunk = self._response.read1(65536)
            if not chunk:
                return
            yield chunk

    def release_conn(self) -> None:
        self._connection.close()

    def shutdown(self) -> None:
        """Cut the stream from another thread: a blocked read returns at once."""
        sock = self._connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Response:
    """What Kube reads of an answer: ``status``, ``reason``, ``read()`` and ``response`` (for streams)."""

    def __init__(self, response: http.client.HTTPResponse, connection, *, streaming: bool):
        self.status = response.status
        self.reason = response.reason
        self._response = response
        self._data = None if streaming else response.read()
        self.response = _Stream(response, connection)

    def read(self) -> bytes:
        if self._data is None:
            self._data = self._response.read()
        return self._data


class LightApiClient:
    """Stands in for ``kubernetes.client.ApiClient`` as far as :class:`Kube` uses it."""

    def __init__(self, where: Target):
        self.target = where
        self.configuration = _Configuration(where.server)
        parts = urlsplit(where.server)
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None

    def _new(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, context=self.target.ssl_context)
        return http.client.HTTPConnection(self._host, self._port)

    def param_serialize(self, *, method, resource_path, query_params=(), header_params=None, body=None,
                        auth_settings=None, **_: Any):
        query = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in query_params]
        url = self._prefix + resource_path + ("?" + urlencode(query) if query else "")
        headers = {**self.target.headers, **(header_params or {})}
        payload = None if body is None else json.dumps(body).encode()
        return method, url, headers, payload

    def call_api(self, method, url, headers, body, _request_timeout=None):
        try:
            return self._call_api(method, url, headers, body, _request_timeout)
        except ssl.SSLCertVerificationError as e:
            detail = f"certificate verify failed: {e.verify_message}" if e.verify_message else str(e)
            raise untrusted(self.target.server, detail, self.target.cluster) from e

    def _call_api(self, method, url, headers, body, _request_timeout=None):
        """Send one request. A watch (``watch=1|true``) gets a connection of its own; others share one.

        ``_request_timeout``: seconds, or (connect, read) as urllib3 takes it; None waits forever.
        """
        connect_timeout, read_timeout = _timeouts(_request_timeout)
        if _is_watch(url):
            connection = self._new()
            try:
                _open(connection, connect_timeout, read_timeout)
                connection.request(method, url, body=body, headers=headers)
                return _Response(connection.getresponse(), connection, streaming=True)
            except BaseException:
                connection.close()
                raise
        with self._lock:
            for attempt in (1, 2):
                connection = self._connection or self._new()
                self._connection = connection
                reused = connection.sock is not None
                try:
                    if not reused:
                        _open(connection, connect_timeout, read_timeout)
                    else:
                        connection.sock.settimeout(read_timeout)
                    connection.request(method, url, body=body, headers=headers)
                    return _Response(connection.getresponse(), connection, streaming=False)
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    # A kept-alive connection the server had closed: once more on a fresh one.
                    self._drop()
                    if attempt == 2 or not reused:
                        raise
                except BaseException:
                    self._drop()
                    raise
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get(self, path: str, *, timeout: float | None = None) -> dict[str, Any]:
        """GET ``path`` and decode the JSON; OSError or ValueError on any failure (for completion)."""
        response = self._call_api("GET", self._prefix + path, dict(self.target.headers), None, timeout)
        if response.status != 200:
            raise ValueError(f"the API server answered {response.status}")
        return json.loads(response.read())

    def close(self) -> None:
        with self._lock:
            self._drop()


def _timeouts(value) -> tuple[float | None, float | None]:
    if isinstance(value, (tuple, list)):
        return value[0], value[1]
    if isinstance(value, (int, float)):
        return value, value
    return None, None


def _open(connection: http.client.HTTPConnection, connect_timeout, read_timeout) -> None:
    connection.timeout = connect_timeout
    connection.connect()
    connection.sock.settimeout(read_timeout)


def _is_watch(url: str) -> bool:
    return parse_qs(urlsplit(url).query).get("watch", [""])[-1] in ("1", "true")
