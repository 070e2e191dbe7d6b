"""Emulator-only: ``faults.hang``, a network partition that keeps sockets open.

While hung the emulator accepts TCP connections but answers no request (new connections get no TLS
handshake, requests on kept-alive connections no answer) and sends nothing more on open watches,
which stay open (no EOF, no final chunk). ``hang = False`` resumes: held requests are answered and the
watch delivers what happened meanwhile. ``reset()`` lifts it too.

Waits for "nothing arrives" are short socket timeouts (what a client sees); nothing here measures time.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl

import pytest

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("GATE_E2E_KUBECONFIG")),
    reason="real tier: faults.hang SIGSTOPs kube-apiserver, which every suite running on this cluster shares, "
    "and these watch the emulator's own partition from inside (what it answers on held connections)",
)

QUIET = 0.3  # how long a client listens to conclude nothing is coming (a socket timeout)


@pytest.fixture
def faults(apiserver):
    yield apiserver.faults
    apiserver.faults.reset()


def tls_connect(apiserver, timeout: float = 5.0) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cadata=apiserver.ca_pem.decode())
    raw = socket.create_connection((apiserver.host, apiserver.port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def send_get(sock: ssl.SSLSocket, apiserver, target: str) -> None:
    sock.sendall(
        f"GET {target} HTTP/1.1\r\nHost: {apiserver.host}:{apiserver.port}\r\n"
        f"Authorization: Bearer {apiserver.admin_token}\r\nAccept: application/json\r\n\r\n".encode()
    )


def receive_until(sock: ssl.SSLSocket, needle: bytes, buffer: bytes = b"", timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    while needle not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection before sending {needle!r}"
        buffer += chunk
    return buffer


def nothing_arrives(sock: ssl.SSLSocket) -> bool:
    """True when the server sends nothing (and does not close) while a client listens for QUIET s."""
    sock.settimeout(QUIET)
    try:
        chunk = sock.recv(65536)
    except TimeoutError:
        return True
    raise AssertionError(f"the server sent {chunk!r} while hung" if chunk else "the server closed the connection")


def configmap(namespace: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}


def test_a_request_on_an_open_connection_waits_until_the_hang_is_lifted(apiserver, faults):
    sock = tls_connect(apiserver)
    try:
        send_get(sock, apiserver, "/version")
        receive_until(sock, b"gitVersion")  # kept alive, handshake done
        faults.hang = True
        assert faults.hang is True
        send_get(sock, apiserver, "/version")
        assert nothing_arrives(sock)
        faults.hang = False
        answer = receive_until(sock, b"gitVersion")
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        sock.close()


def test_new_connections_are_accepted_but_not_answered(apiserver, faults):
    faults.hang = True
    raw = socket.create_connection((apiserver.host, apiserver.port), timeout=5)  # accepted
    try:
        ctx = ssl.create_default_context(cadata=apiserver.ca_pem.decode())
        raw.settimeout(QUIET)
        with pytest.raises((TimeoutError, socket.timeout, ssl.SSLError)):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")  # no handshake while hung
    finally:
        raw.close()
    faults.hang = False
    sock = tls_connect(apiserver)
    try:
        send_get(sock, apiserver, "/version")
        assert receive_until(sock, b"gitVersion").startswith(b"HTTP/1.1 200")
    finally:
        sock.close()


def test_an_open_watch_goes_silent_and_stays_open_then_resumes(apiserver, faults, namespace):
    apiserver.apply(configmap(namespace, "before"))
    sock = tls_connect(apiserver)
    try:
        send_get(sock, apiserver, f"/api/v1/namespaces/{namespace}/configmaps?watch=true")
        seen = receive_until(sock, b'"before"')
        faults.hang = True
        apiserver.apply(configmap(namespace, "during"))
        assert nothing_arrives(sock)  # silent, not closed
        faults.hang = False
        seen = receive_until(sock, b'"during"', seen)
        events = [json.loads(line) for line in seen.split(b"\r\n") if line.startswith(b"{")]
        assert [e["object"]["metadata"]["name"] for e in events][-1] == "during"
    finally:
        sock.close()


def test_reset_lifts_the_hang(apiserver, faults):
    faults.hang = True
    faults.reset()
    assert faults.hang is False
    sock = tls_connect(apiserver)
    try:
        send_get(sock, apiserver, "/version")
        assert receive_until(sock, b"gitVersion").startswith(b"HTTP/1.1 200")
    finally:
        sock.close()


def test_down_while_hung_releases_the_held_connections(apiserver, faults):
    sock = tls_connect(apiserver)
    try:
        send_get(sock, apiserver, "/version")
        receive_until(sock, b"gitVersion")
        faults.hang = True
        send_get(sock, apiserver, "/version")
        assert nothing_arrives(sock)
        faults.down = True  # drops every connection, held ones included
        sock.settimeout(5)
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            assert sock.recv(65536) == b""
    finally:
        sock.close()
        faults.hang = False
        faults.down = False
