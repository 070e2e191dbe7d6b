"""Contract: HTTP/1.1 keep-alive, as kube-apiserver does it.

Covers: several requests (and their answers' framing) on one TLS connection;
a request body the server rejects before reading it (401, 403, chunked) drained
so the next request on the connection works, up to 256 KiB (more closes the connection, as
Go's net/http does); HTTP/1.0 answered in HTTP/1.0; a watch ended by timeoutSeconds
leaving its connection reusable; ``Connection: close`` honoured; HTTP/1.0
clients served; idle connections closed by the server after ``idle_timeout`` (a
request slower than it is still answered: the connection was busy, not idle);
"down" dropping kept-alive connections; a watch streaming while other requests go
through, and eight open watches never starving writes (every write is answered
while they are open, and each watch sees every write).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time

import kubernetes
import pytest
import urllib3
from helpers.tiers import emulator_only
from kubernetes import watch


def tls_context(server) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=server.ca_pem.decode())


def connect(server) -> http.client.HTTPSConnection:
    conn = http.client.HTTPSConnection(server.host, server.port, context=tls_context(server), timeout=10)
    conn.connect()
    return conn


def auth(server, token: str | None = None) -> dict:
    return {"Authorization": f"Bearer {token or server.admin_token}"}


def request(conn, method, path, body=None, headers=None):
    """One request on ``conn``; returns (response, decoded body) with the body fully read."""
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    return resp, data


def framed(resp) -> bool:
    return resp.getheader("Content-Length") is not None or resp.getheader("Transfer-Encoding") == "chunked"


SAFETY_NET = 20.0  # seconds: how long a wait may take before the test gives up; never an assertion on speed


def wait_until(condition, what: str, timeout: float = SAFETY_NET) -> None:
    """Poll ``condition`` until true; fail with ``what`` if it never is (``timeout`` is a safety net)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (gave up after {timeout:.0f} s)")
        time.sleep(0.01)


@pytest.fixture
def faults(apiserver):
    emulator_only(apiserver, "faults.down kills kube-apiserver, which every suite running on this cluster shares")
    yield apiserver.faults
    apiserver.faults.reset()


def test_requests_reuse_one_connection(apiserver, namespace):
    conn = connect(apiserver)
    sock = conn.sock
    h = auth(apiserver)
    paths = ["/version", f"/api/v1/namespaces/{namespace}", f"/api/v1/namespaces/{namespace}/configmaps"]
    for path in paths:
        resp, data = request(conn, "GET", path, headers=h)
        assert resp.status == 200, data
        assert framed(resp) and resp.getheader("Connection") is None
        assert json.loads(data)
        assert conn.sock is sock, f"the connection was closed after {path}"
    created, _ = request(
        conn,
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        body=json.dumps({"metadata": {"name": "c"}, "data": {"k": "v"}}),
        headers={**h, "Content-Type": "application/json"},
    )
    assert created.status == 201
    resp, data = request(conn, "GET", f"/api/v1/namespaces/{namespace}/configmaps/c", headers=h)
    assert resp.status == 200 and json.loads(data)["data"] == {"k": "v"}
    assert conn.sock is sock
    conn.close()


@pytest.mark.parametrize("who", ["bad-token", "anonymous"])
def test_unread_body_is_drained_before_the_next_request(apiserver, namespace, who):
    conn = connect(apiserver)
    sock = conn.sock
    body = json.dumps({"metadata": {"name": "big"}, "data": {"k": "x" * 200_000}})  # NB: < 256 KiB
    headers = {"Content-Type": "application/json"}
    if who == "bad-token":
        headers.update(auth(apiserver, "not-a-token"))
    resp, data = request(conn, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body=body, headers=headers)
    assert resp.status == (401 if who == "bad-token" else 403), data
    assert json.loads(data)["kind"] == "Status"
    resp, data = request(conn, "GET", f"/api/v1/namespaces/{namespace}", headers=auth(apiserver))
    assert resp.status == 200 and json.loads(data)["metadata"]["name"] == namespace
    assert conn.sock is sock
    conn.close()


def test_unread_body_over_256_kib_closes_the_connection(apiserver, namespace):
    conn = connect(apiserver)
    body = json.dumps({"metadata": {"name": "big"}, "data": {"k": "x" * 300_000}})
    resp, data = request(
        conn,
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        body=body,
        headers={**auth(apiserver, "not-a-token"), "Content-Type": "application/json"},
    )
    assert resp.status == 401 and json.loads(data)["kind"] == "Status"
    assert resp.getheader("Connection") == "close"  # NB: Go's net/http reads no more than 256 KiB of it
    assert conn.sock is None  # http.client closed it, as told
    resp, _ = request(conn, "GET", "/version", headers=auth(apiserver))  # on a new connection
    assert resp.status == 200
    conn.close()


def test_unread_chunked_body_is_drained(apiserver, namespace):
    conn = connect(apiserver)
    sock = conn.sock
    chunks = (b'{"metadata": {"name": "c"}, ' + b'"data": {"k": "' + b"y" * 50_000 + b'"}}' for _ in range(1))
    conn.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        body=chunks,
        encode_chunked=True,
        headers={**auth(apiserver, "not-a-token"), "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 401
    resp, data = request(conn, "GET", "/version", headers=auth(apiserver))
    assert resp.status == 200 and "gitVersion" in json.loads(data)
    assert conn.sock is sock
    conn.close()


def test_connection_reusable_after_a_watch_ends(apiserver, namespace):
    conn = connect(apiserver)
    sock = conn.sock
    h = auth(apiserver)
    request(
        conn,
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        body=json.dumps({"metadata": {"name": "w"}}),
        headers={**h, "Content-Type": "application/json"},
    )
    resp, data = request(conn, "GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=1&timeoutSeconds=1", headers=h)
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"
    events = [json.loads(line) for line in data.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w")]
    resp, data = request(conn, "GET", f"/api/v1/namespaces/{namespace}/configmaps/w", headers=h)
    assert resp.status == 200 and conn.sock is sock
    conn.close()


def _raw_exchange(server, payload: bytes) -> bytes:
    """Send ``payload`` over TLS and read until the server closes the connection."""
    with (
        socket.create_connection((server.host, server.port), timeout=10) as raw,
        tls_context(server).wrap_socket(raw, server_hostname=server.host) as s,
    ):
        s.sendall(payload)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_connection_close_is_honoured(apiserver):
    out = _raw_exchange(
        apiserver,
        b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + apiserver.admin_token.encode() + b"\r\n\r\n",
    )
    head, _, body = out.partition(b"\r\n\r\n")  # NB: read to EOF: the server closed the connection
    assert head.startswith(b"HTTP/1.1 200") and b"connection: close" in head.lower()
    assert b"gitVersion" in body


def test_http10_client_is_served_and_closed(apiserver):
    out = _raw_exchange(
        apiserver, b"GET /version HTTP/1.0\r\nAuthorization: Bearer " + apiserver.admin_token.encode() + b"\r\n\r\n"
    )
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    assert b"gitVersion" in body and b"chunked" not in head.lower()


def test_pipelined_requests_then_close(apiserver):
    token = apiserver.admin_token.encode()
    req = b"GET /version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + b"\r\n"
    out = _raw_exchange(apiserver, req + b"\r\n" + req + b"Connection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 2 and out.count(b"gitVersion") == 2


def test_idle_connections_are_closed_after_the_timeout():
    from sandbox.apiserver import ApiServer

    with ApiServer(idle_timeout=0.5) as srv:
        conn = connect(srv)
        srv.faults.latency = 1.0  # NB: a request slower than the idle timeout: busy, not idle
        resp, _ = request(conn, "GET", "/version", headers=auth(srv))
        srv.faults.latency = 0.0
        assert resp.status == 200 and framed(resp) and resp.getheader("Connection") is None
        conn.sock.settimeout(SAFETY_NET)
        try:
            assert conn.sock.recv(1) == b""  # NB: the server closed the idle connection (EOF)
        except TimeoutError:
            pytest.fail(f"the server did not close the idle connection (idle_timeout=0.5, waited {SAFETY_NET:.0f} s)")
        conn.close()
        conn = connect(srv)  # a new connection is served
        assert request(conn, "GET", "/version", headers=auth(srv))[0].status == 200
        conn.close()


def test_down_drops_kept_alive_connections(apiserver, faults):
    conn = connect(apiserver)
    assert request(conn, "GET", "/version", headers=auth(apiserver))[0].status == 200
    faults.down = True
    with pytest.raises((OSError, http.client.HTTPException)):
        request(conn, "GET", "/version", headers=auth(apiserver))
    conn.close()
    faults.down = False
    conn = connect(apiserver)
    assert request(conn, "GET", "/version", headers=auth(apiserver))[0].status == 200
    conn.close()


def test_watch_streams_while_other_requests_go_through(apiserver, namespace):
    watch_conn = connect(apiserver)
    h = auth(apiserver)
    watch_conn.request("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=1&timeoutSeconds=30", headers=h)
    stream = watch_conn.getresponse()
    assert stream.status == 200 and stream.getheader("Transfer-Encoding") == "chunked"
    writer = connect(apiserver)
    sock = writer.sock
    for i in range(5):
        resp, _ = request(
            writer,
            "POST",
            f"/api/v1/namespaces/{namespace}/configmaps",
            body=json.dumps({"metadata": {"name": f"c{i}"}}),
            headers={**h, "Content-Type": "application/json"},
        )
        assert resp.status == 201
        event = json.loads(stream.readline())  # NB: this event arrives before the next write is sent
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", f"c{i}")
        assert request(writer, "GET", f"/api/v1/namespaces/{namespace}/configmaps/c{i}", headers=h)[0].status == 200
    assert writer.sock is sock
    writer.close()
    watch_conn.close()


def test_open_watches_never_starve_writes(api_client, apiserver, kubeconfig, namespace):
    core = kubernetes.client.CoreV1Api(api_client)
    n_watches, n_writes = 8, 40
    seen = [0] * n_watches
    ready = threading.Barrier(n_watches + 1, timeout=10)

    def watcher(i):
        client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
        api = kubernetes.client.CoreV1Api(client)
        rv = api.list_namespaced_config_map(namespace).metadata.resource_version
        ready.wait()
        for _ in watch.Watch().stream(
            api.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=30
        ):
            seen[i] += 1
            if seen[i] == n_writes:
                break
        client.close()

    def open_watches():  # the request log: watches the server has answered 200 and is streaming
        return [r for r in apiserver.requests if r.namespace == namespace and r.verb == "watch" and r.status == 200]

    threads = [threading.Thread(target=watcher, args=(i,), daemon=True) for i in range(n_watches)]
    for t in threads:
        t.start()
    ready.wait()
    wait_until(lambda: len(open_watches()) == n_watches, f"the {n_watches} watches were not all opened")
    for i in range(n_writes):
        try:
            core.create_namespaced_config_map(namespace, {"metadata": {"name": f"c{i}"}}, _request_timeout=SAFETY_NET)
        except urllib3.exceptions.TimeoutError:
            pytest.fail(f"write {i} was held up by the open watches (no answer in {SAFETY_NET:.0f} s)")
    for t in threads:
        t.join(timeout=SAFETY_NET)
    assert seen == [n_writes] * n_watches
