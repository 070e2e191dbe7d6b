"""A drop-in for the two ``ApiClient`` methods :class:`~canarygate.kube.client.Kube` uses
(``param_serialize`` and ``call_api``), on the standard library's ``http.client``.

Why: importing the official client costs ~200 ms, five times what ``kubectl get`` takes in all;
``kubectl gate show`` must stay within 2x of it. The kubeconfig is read by
:mod:`canarygate.kube.lite` (tokens, token files, client certificates, CA, exec credential
plugins); anything it does not support (auth-provider plugins, proxies) makes
:func:`api_client` return None and the caller uses the official client.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from typing import Any
from urllib.parse import urlencode, urlsplit

from canarygate.kube import lite


class _Configuration:
    def __init__(self, host: str):
        self.host = host


class _Stream:
    """What Kube.stream reads: ``stream(amt, decode_content)`` and ``release_conn()``."""

    def __init__(self, response: http.client.HTTPResponse, connection: http.client.HTTPConnection):
        self._response, self._connection = response, connection

    def stream(self, amt=None, decode_content=True):
        while True:
            chunk = self._response.read1(65536) if hasattr(self._response, "read1") else self._response.read(1)
            if not chunk:
                return
            yield chunk

    def release_conn(self) -> None:
        self._connection.close()


class _Response:
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


class LiteApiClient:
    def __init__(self, target: lite.Target):
        self.target = target
        self.configuration = _Configuration(target.server)
        parts = urlsplit(target.server)
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self._local = threading.local()

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self.target.ssl_context)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def param_serialize(self, *, method, resource_path, query_params=(), header_params=None, body=None,
                        auth_settings=None, **_: Any):
        url = self._prefix + resource_path + ("?" + urlencode(list(query_params)) if query_params else "")
        headers = {**self.target.headers, **(header_params or {})}
        payload = None if body is None else json.dumps(body).encode()
        return method, url, headers, payload

    def call_api(self, method, url, headers, body, _request_timeout=None):
        streaming = "watch=1" in url
        timeout = _request_timeout if isinstance(_request_timeout, (int, float)) else None
        if streaming:
            connection = self._connect(timeout)
        else:
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._local.connection = self._connect(timeout)
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
        for attempt in (1, 2):
            try:
                connection.request(method, url, body=body, headers=headers)
                response = connection.getresponse()
                return _Response(response, connection, streaming=streaming)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                connection.close()  # a kept-alive connection the server closed: once more, fresh
                if attempt == 2 or streaming:
                    raise
            except (OSError, socket.timeout, http.client.HTTPException):
                connection.close()
                raise

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()


def api_client(*, kubeconfig=None, context=None, cluster=None, user=None, namespace=None):
    """(LiteApiClient, its lite.Target), or None when the kubeconfig needs the official client."""
    try:
        where = lite.target(kubeconfig=kubeconfig, context=context, cluster=cluster, user=user, namespace=namespace)
    except (lite.LiteError, OSError, ssl.SSLError, ValueError, KeyError):
        return None
    return LiteApiClient(where), where
