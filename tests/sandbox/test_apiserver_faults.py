"""Emulator-only: fault injection, the request log, the in-process and shell entry points.

Covers: added latency (global and per path prefix); injected 500/503/429 answers as
Status objects (429 with Retry-After), counted and filtered by path and method;
cutting open watch streams; "down" refusing connections and coming back on the same
port; the request log's records; ``python -m sandbox.apiserver``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import kubernetes
import pytest
import urllib3
from kubernetes import watch
from kubernetes.client import ApiException

G, V, P = "piggysec.com", "v1alpha1", "canarygates"
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("GATE_E2E_KUBECONFIG")),
    reason="GATE_E2E_KUBECONFIG is set: these tests need the sandbox emulator (minted tokens, fault injection, "
           "request log), which a real cluster does not have")


@pytest.fixture
def faults(apiserver):
    yield apiserver.faults
    apiserver.faults.reset()


def test_latency(api_client, faults, namespace):
    core = kubernetes.client.CoreV1Api(api_client)
    faults.add_latency(0.3, path_prefix=f"/api/v1/namespaces/{namespace}/configmaps")
    started = time.monotonic()
    core.list_namespaced_config_map(namespace)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    core.list_namespaced_secret(namespace)
    assert time.monotonic() - started < 0.3
    faults.latency = 0.2
    started = time.monotonic()
    core.list_namespaced_secret(namespace)
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("code,reason", [(500, "InternalError"), (503, "ServiceUnavailable")])
def test_fail_answers_a_status(api_client, faults, namespace, code, reason):
    core = kubernetes.client.CoreV1Api(api_client)
    faults.fail(status=code, times=2, path_prefix=f"/api/v1/namespaces/{namespace}/configmaps", method="GET")
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})    # POST: not matched
    core.list_namespaced_secret(namespace)                                       # other path: not matched
    for _ in range(2):
        with pytest.raises(ApiException) as e:
            core.list_namespaced_config_map(namespace)
        body = json.loads(e.value.body)
        assert (e.value.status, body["kind"], body["reason"], body["code"]) == (code, "Status", reason, code)
    assert core.list_namespaced_config_map(namespace).items[0].metadata.name == "c"


def test_fail_429_carries_retry_after(api_client, apiserver, faults, namespace):
    # NB: urllib3 (under the Python client) honours Retry-After on 429 and retries by itself.
    core = kubernetes.client.CoreV1Api(api_client)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    faults.fail(status=429, times=1, path_prefix=path, retry_after=0)
    apiserver.clear_requests()
    assert core.list_namespaced_config_map(namespace).items == []
    assert [r.status for r in apiserver.requests if r.path == path] == [429, 200]
    faults.fail(status=429, times=1, path_prefix=path, retry_after=7)
    resp = api_client.rest_client.pool_manager.request(
        "GET", api_client.configuration.host + path, retries=False,
        headers={"Authorization": api_client.configuration.api_key["BearerToken"]})
    body = json.loads(resp.data)
    assert (resp.status, resp.headers["Retry-After"], body["reason"]) == (429, "7", "TooManyRequests")
    assert body["details"]["retryAfterSeconds"] == 7


def test_cut_watches_ends_streams_abruptly(api_client, apiserver, faults, crds, namespace):
    co = kubernetes.client.CustomObjectsApi(api_client)
    errors = []

    def watcher():
        try:
            for _ in watch.Watch().stream(co.list_namespaced_custom_object, G, V, namespace, P, timeout_seconds=20):
                pass
        except Exception as e:  # noqa: BLE001 - the point is that the stream breaks
            errors.append(e)
        else:
            errors.append(None)

    t = threading.Thread(target=watcher)
    t.start()
    time.sleep(0.5)
    started = time.monotonic()
    faults.cut_watches()
    t.join(timeout=5)
    assert not t.is_alive() and time.monotonic() - started < 3
    assert errors and errors[0] is not None, "the stream ended cleanly instead of being cut"


def test_down_refuses_connections_and_comes_back_on_the_same_port(apiserver, faults, namespace):
    port = apiserver.port
    faults.down = True
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    faults.down = False
    assert apiserver.port == port
    socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_down_fails_client_calls(api_client, faults, namespace):
    core = kubernetes.client.CoreV1Api(api_client)
    faults.down = True
    try:
        with pytest.raises((urllib3.exceptions.HTTPError, OSError)):
            core.list_namespaced_config_map(namespace, _request_timeout=2)
    finally:
        faults.down = False
    core.list_namespaced_config_map(namespace)


def test_request_log(api_client, apiserver, namespace):
    core = kubernetes.client.CoreV1Api(api_client)
    apiserver.clear_requests()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("missing", namespace)
    create, get = [r for r in apiserver.requests if r.path.startswith(f"/api/v1/namespaces/{namespace}/")]
    assert (create.method, create.verb, create.resource, create.namespace, create.status, create.user) == (
        "POST", "create", "configmaps", namespace, 201, "admin")
    assert (get.verb, get.name, get.status) == ("get", "missing", 404)
    assert get.time >= create.time > 0


def test_shell_entry_point(tmp_path):
    kubeconfig, token_file = tmp_path / "kc", tmp_path / "tok"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.apiserver", "--port", str(port),
                             "--kubeconfig-out", str(kubeconfig), "--token-file", str(token_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        line = proc.stdout.readline()
        assert f"https://127.0.0.1:{port}" in line
        client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        names = [n.metadata.name for n in kubernetes.client.CoreV1Api(client).list_namespace().items]
        assert "default" in names
        assert token_file.read_text().strip() == client.configuration.api_key["BearerToken"].split()[-1]
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
