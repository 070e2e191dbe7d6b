"""Emulator-only: fault injection, the request log, the in-process and shell entry points.

Covers: added latency (global and per path prefix: a delayed request is answered after
one issued during its delay; the delay is held by a stand-in for the emulator's sleep,
so order, not the clock, shows it); injected 500/503/429 answers as
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
import types

import kubernetes
import pytest
import urllib3
from kubernetes import watch
from kubernetes.client import ApiException

G, V, P = "piggysec.com", "v1alpha1", "canarygates"
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("GATE_E2E_KUBECONFIG")),
    reason="real tier: these test the emulator's own fault injection (latency, injected 500/503/429, cut watches, "
    "down on the same port) and its entry points, which kube-apiserver does not have",
)


SAFETY_NET = 20.0  # seconds: how long a wait may take before the test gives up; never an assertion on speed


def wait_until(condition, what: str, timeout: float = SAFETY_NET) -> None:
    """Poll ``condition`` until true; fail with ``what`` if it never is (``timeout`` is a safety net)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (gave up after {timeout:.0f} s)")
        time.sleep(0.01)


class HeldDelays:
    """Stands in for the emulator's sleep: records each injected delay and holds the request until released."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._released = threading.Event()

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)
        self._released.wait(SAFETY_NET)

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()


@pytest.fixture
def faults(apiserver):
    yield apiserver.faults
    apiserver.faults.reset()


@pytest.fixture
def held_delays(monkeypatch):
    from sandbox.apiserver import app

    held = HeldDelays()
    clock = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    clock.sleep = held.sleep
    monkeypatch.setattr(app, "time", clock)  # NB: only the app's clock; the server and the client keep theirs
    yield held
    held.release()


def in_thread(call, done: list, label: str) -> threading.Thread:
    """Run ``call`` in a thread; append ``label`` to ``done`` when it returns (or the exception if it raises)."""

    def run():
        try:
            call()
        except Exception as e:  # noqa: BLE001 - reported through ``done``
            done.append(e)
        else:
            done.append(label)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_latency(api_client, apiserver, faults, namespace, held_delays):
    core = kubernetes.client.CoreV1Api(api_client)
    configmaps, secrets = (f"/api/v1/namespaces/{namespace}/{r}" for r in ("configmaps", "secrets"))

    def answered(path):  # the request log: 0 while a request is being served
        return [r.status for r in apiserver.requests if r.path == path]

    faults.add_latency(0.3, path_prefix=configmaps)
    done = []
    delayed = in_thread(lambda: core.list_namespaced_config_map(namespace), done, "configmaps")
    wait_until(lambda: held_delays.seconds == [0.3], "the configmaps list was never delayed")
    core.list_namespaced_secret(namespace)  # NB: issued during the delay, on another path: not delayed
    done.append("secrets")
    assert held_delays.seconds == [0.3], "the secrets list was delayed"
    assert done == ["secrets"] and answered(configmaps) == [0], "the configmaps list was answered during its delay"
    held_delays.release()
    delayed.join(SAFETY_NET)
    assert done == ["secrets", "configmaps"] and answered(configmaps) == [200]

    held_delays.hold()
    faults.latency = 0.2  # every path
    delayed = in_thread(lambda: core.list_namespaced_secret(namespace), done, "delayed secrets")
    wait_until(lambda: held_delays.seconds == [0.3, 0.2], "the secrets list was not delayed by the global latency")
    faults.latency = 0.0
    core.list_namespaced_secret(namespace)  # NB: issued during that delay, once the latency is removed
    done.append("secrets again")
    assert held_delays.seconds == [0.3, 0.2] and answered(secrets) == [200, 0, 200]
    held_delays.release()
    delayed.join(SAFETY_NET)
    assert done[2:] == ["secrets again", "delayed secrets"] and answered(secrets) == [200, 200, 200]


@pytest.mark.parametrize("code,reason", [(500, "InternalError"), (503, "ServiceUnavailable")])
def test_fail_answers_a_status(api_client, faults, namespace, code, reason):
    core = kubernetes.client.CoreV1Api(api_client)
    faults.fail(status=code, times=2, path_prefix=f"/api/v1/namespaces/{namespace}/configmaps", method="GET")
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})  # POST: not matched
    core.list_namespaced_secret(namespace)  # other path: not matched
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
        "GET",
        api_client.configuration.host + path,
        retries=False,
        headers={"Authorization": api_client.configuration.api_key["BearerToken"]},
    )
    body = json.loads(resp.data)
    assert (resp.status, resp.headers["Retry-After"], body["reason"]) == (429, "7", "TooManyRequests")
    assert body["details"]["retryAfterSeconds"] == 7


def test_cut_watches_ends_streams_abruptly(api_client, apiserver, faults, crds, namespace):
    co = kubernetes.client.CustomObjectsApi(api_client)
    co.create_namespaced_custom_object(
        G,
        V,
        namespace,
        P,
        {
            "apiVersion": f"{G}/{V}",
            "kind": "CanaryGate",
            "metadata": {"name": "a"},
            "spec": {"target": {"namespace": "demo-ns", "name": "a"}},
        },
    )
    streaming = threading.Event()
    errors = []

    def watcher():
        try:
            for _ in watch.Watch().stream(co.list_namespaced_custom_object, G, V, namespace, P, timeout_seconds=20):
                streaming.set()  # NB: the initial ADDED for "a": the watch is open
        except Exception as e:  # noqa: BLE001 - the point is that the stream breaks
            errors.append(e)
        else:
            errors.append(None)

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    assert streaming.wait(SAFETY_NET), "the watch never streamed its initial event"
    faults.cut_watches()
    t.join(timeout=SAFETY_NET + 10)  # NB: uncut, the stream would end cleanly at timeoutSeconds=20
    assert not t.is_alive(), "the watch was still open after cut_watches()"
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
        "POST",
        "create",
        "configmaps",
        namespace,
        201,
        "admin",
    )
    assert (get.verb, get.name, get.status) == ("get", "missing", 404)
    assert get.time >= create.time > 0


def test_shell_entry_point(tmp_path):
    kubeconfig, token_file = tmp_path / "kc", tmp_path / "tok"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.apiserver",
            "--port",
            str(port),
            "--kubeconfig-out",
            str(kubeconfig),
            "--token-file",
            str(token_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
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
        proc.stdout.close()
        proc.stderr.close()
