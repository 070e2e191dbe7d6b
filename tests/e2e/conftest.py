"""End-to-end fixtures: the gate sidecar as a real process, the Flagger simulator, helpers.

* ``sidecar_kubeconfig`` (session): a kubeconfig for a token of the sidecar's service account
  (``system:serviceaccount:canary-gate:canary-gate-sidecar``), bound to the shipped ClusterRole
  (deploy/sidecar/clusterrole.yaml + clusterrolebinding.yaml, applied unchanged). The emulator's
  RBAC enforces it: the sidecar gets that role and nothing more.
* ``sidecar``: ``python -m gate_sidecar`` on a free loopback port with that kubeconfig, started and
  waited for (/readyz 200). ``sidecar.url`` is what Canaries point their webhooks at;
  ``sidecar.restart()`` keeps the port; ``sidecar.stop()``/``start()``; ``sidecar.call(hook, body)``
  POSTs like Flagger and returns (status, JSON body); ``sidecar.log()`` is its stderr. Extra flags:
  ``make_sidecar(*args)``. The fail-closed bound is 1 s here so outage tests are quick.
* ``flagger``: the Flagger simulator (time scale 0.03: a 10 s interval ticks every 0.3 s) limited to
  the test's ``namespace``.
* ``kube``: a :class:`canarygate.kube.client.Kube` with admin rights (for arranging and checking).
* ``rollout``: helpers to create a CanaryGate + Deployment + rendered Canary, ship new revisions,
  open/close gates live, and wait for conditions (:class:`Rollouts`).

On the real tier (GATE_E2E_KUBECONFIG names a cluster of ``python -m sandbox.cluster``) the same
fixtures give real things: the sidecar's token is minted by the cluster's token webhook, each
sidecar sits behind a recording :class:`sandbox.cluster.flagger.HookProxy` (``sidecar.url`` is the
proxy's), and ``flagger`` is :class:`sandbox.cluster.flagger.RealFlagger`, which reads real
Flagger's ticks from those recordings. Waits are stretched by ``helpers.tiers.SLOWDOWN``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import recorders
from helpers.demo_app import create_deployment, new_revision, set_gate_live
from helpers.rbac import SIDECAR_GROUPS, SIDECAR_USER, subject_allowed, wait_subject_allowed
from helpers.tiers import REAL, SLOWDOWN

from canarygate.kube.client import Kube

ROOT = Path(__file__).resolve().parents[2]
TIME_SCALE = 0.03


PROXIES: list = []  # the real tier's recording proxies, one per sidecar process


def wait_until(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05, what: str = ""):
    """Poll ``predicate`` until it returns something truthy; TimeoutError says what was awaited.

    ``timeout`` is the sandbox's; the real tier stretches it by SLOWDOWN."""
    deadline = time.monotonic() + timeout * SLOWDOWN
    interval = interval * (10 if REAL else 1)
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what or predicate}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SidecarProcess:
    """``python -m gate_sidecar`` in a subprocess on a fixed loopback port."""

    def __init__(self, kubeconfig: str, log_path: Path, *args: str):
        self.kubeconfig = kubeconfig
        self.port = free_port()
        self.args = args
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.proxy = None
        if REAL:
            from sandbox.cluster.flagger import HookProxy

            self.proxy = HookProxy(self.port)
            PROXIES.append(self.proxy)

    @property
    def url(self) -> str:
        """Where Flagger calls it (on the real tier, the recording proxy in front of it)."""
        return self.proxy.url if self.proxy is not None else self.direct_url

    @property
    def direct_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> SidecarProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_SIDECAR_")}
        cmd = [
            sys.executable,
            "-m",
            "gate_sidecar",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--kubeconfig",
            self.kubeconfig,
            "--fail-closed-after",
            "1",
            *self.args,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, cwd=ROOT)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        def ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gate-sidecar exited {self.proc.returncode}:\n{self.log()}")
            return self.get("/readyz")[0] == 200

        wait_until(ready, timeout=timeout, what="gate-sidecar /readyz")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; the exit status."""
        if self.proc is None:
            return 0
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def restart(self) -> SidecarProcess:
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str) -> tuple[int, Any]:
        return self._send(urllib.request.Request(self.direct_url + path))

    def call(self, hook: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST ``body`` to /hook as Flagger does; (status, decoded JSON body or None)."""
        data = json.dumps(body, separators=(",", ":")).encode()
        request = urllib.request.Request(
            self.direct_url + "/" + hook, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        return self._send(request)

    @staticmethod
    def _send(request) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")


#: The notification tests' Slack and webhook recorders (one copy, in helpers.recorders).
slack, hook = recorders.slack, recorders.hook


@pytest.fixture(scope="session")
def sidecar_kubeconfig(_sandbox, kubeconfig, crds, tmp_path_factory) -> str:
    """A kubeconfig for the sidecar's service account, bound to the shipped ClusterRole only."""
    if _sandbox is None:
        return kubeconfig
    for name in ("clusterrole.yaml", "clusterrolebinding.yaml"):
        _sandbox.apply(yaml.safe_load((ROOT / "deploy" / "sidecar" / name).read_text()))
    token = "sidecar-" + secrets.token_hex(16)
    _sandbox.add_token(token, SIDECAR_USER, SIDECAR_GROUPS)
    config = _sandbox.write_kubeconfig(tmp_path_factory.mktemp("sidecar") / "config", token=token)
    if REAL:  # a real API server's RBAC authorizer sees a new binding a moment after it is written
        wait_until(lambda: _may_watch_canarygates(kubeconfig), timeout=30 / SLOWDOWN, what="the sidecar's RBAC")
    return config


def _may_watch_canarygates(admin_config: str) -> bool:
    import kubernetes

    with kubernetes.config.new_client_from_config(config_file=admin_config) as client:
        return subject_allowed(
            client, SIDECAR_USER, SIDECAR_GROUPS, group="piggysec.com", resource="canarygates", verb="watch"
        )


@pytest.fixture
def reconciler_role(apiserver, sidecar_kubeconfig, api_client):
    """deploy/sidecar/reconcile's ClusterRole, unchanged, bound to the sidecar's account.

    Removed after the test on the emulator only: on the real tier every worker's sidecar shares the
    account and the binding, so a worker removing it would refuse another's reconciling mid-test (the
    run's cluster goes with the run)."""
    root = ROOT / "deploy" / "sidecar" / "reconcile"
    docs = [yaml.safe_load((root / name).read_text()) for name in ("clusterrole.yaml", "clusterrolebinding.yaml")]
    for doc in docs:
        apiserver.apply(doc)
    if REAL:  # kube-apiserver's authorizer sees a new binding a moment after it is written
        wait_subject_allowed(
            api_client, SIDECAR_USER, SIDECAR_GROUPS, group="flagger.app", resource="canaries", verb="create"
        )
    yield
    if not REAL:
        import kubernetes

        rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
        rbac.delete_cluster_role_binding(docs[1]["metadata"]["name"])
        rbac.delete_cluster_role(docs[0]["metadata"]["name"])


@pytest.fixture
def make_sidecar(sidecar_kubeconfig, tmp_path, request, namespace):
    """Start a sidecar with extra flags: ``make_sidecar("--namespaces", ns)``; stopped after the test.

    On the real tier, where every test of the run shares one cluster, a sidecar watches only the
    test's namespace unless told otherwise (another test's sidecar would act on this one's gates)."""
    started: list[SidecarProcess] = []

    def make(*args: str, wait: bool = True) -> SidecarProcess:
        if REAL and not any(a == "--namespaces" or a.startswith("--namespaces=") for a in args):
            args = ("--namespaces", namespace, *args)
        process = SidecarProcess(sidecar_kubeconfig, tmp_path / f"sidecar-{len(started)}.log", *args)
        started.append(process)
        return process.start(wait=wait)

    yield make
    for process in started:
        process.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for process in started:
            sys.stderr.write(f"--- {process.log_path.name} ---\n{process.log()}\n")


@pytest.fixture
def sidecar(make_sidecar) -> SidecarProcess:
    return make_sidecar()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture
def kube(api_client) -> Kube:
    return Kube(api_client, timeout=10)


@pytest.fixture(scope="session")
def _real_flagger(kubeconfig):
    if not REAL:
        yield None
        return
    from sandbox.cluster.flagger import RealFlagger

    with RealFlagger(kubeconfig, PROXIES, timeout_scale=SLOWDOWN) as real:
        yield real


@pytest.fixture
def flagger(kubeconfig, namespace, crds, _real_flagger):
    """The Flagger simulator for this test's namespace; on the real tier, real Flagger observed."""
    if _real_flagger is not None:
        yield _real_flagger
        return
    from sandbox.flagger import FlaggerSimulator

    with FlaggerSimulator(kubeconfig=kubeconfig, time_scale=TIME_SCALE, namespaces=[namespace]) as sim:
        yield sim


class Rollouts:
    """Arrange and observe rollouts in one namespace: CanaryGate, Deployment, rendered Canary."""

    def __init__(self, kube: Kube, namespace: str, flagger, endpoint: str):
        self.kube = kube
        self.namespace = namespace
        self.flagger = flagger
        self.endpoint = endpoint

    def create(self, name: str = "demo", *, analysis: dict[str, Any] | None = None, **declared: str) -> dict:
        """A Deployment, a CanaryGate with the given declared gates (``confirm_rollout="closed"``),
        and its rendered Canary; returns when Flagger has initialised the Canary."""
        from canarygate.kube.resources import CANARIES, CANARYGATES
        from canarygate.model import parse_canarygate
        from canarygate.rendering import render_canary

        ns = self.namespace
        create_deployment(self.kube, ns, name)
        spec: dict[str, Any] = {k.replace("_", "-"): v for k, v in declared.items()}
        spec["target"] = {"namespace": ns, "name": name}
        spec["flagger"] = {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 8080},
            "skipAnalysis": False,
            "analysis": analysis
            or {"interval": "10s", "threshold": 2, "maxWeight": 40, "stepWeight": 10, "stepWeightPromotion": 100},
        }
        gate = self.kube.request(
            "POST",
            CANARYGATES.path(ns),
            body={
                "apiVersion": "piggysec.com/v1alpha1",
                "kind": "CanaryGate",
                "metadata": {"name": name, "namespace": ns},
                "spec": spec,
            },
        )
        canary = render_canary(parse_canarygate(gate), endpoint=self.endpoint)
        self.kube.request("POST", CANARIES.path(ns), body=canary)
        self.wait_phase(name, "Initialized")
        return gate

    def new_revision(self, name: str = "demo", version: str = "2") -> None:
        new_revision(self.kube, self.namespace, name, version)

    def canary(self, name: str = "demo") -> dict:
        from canarygate.kube.resources import CANARIES

        return self.kube.request("GET", CANARIES.path(self.namespace, name))

    def phase(self, name: str = "demo") -> str:
        return (self.canary(name).get("status") or {}).get("phase", "")

    def gate(self, name: str = "demo") -> dict:
        from canarygate.kube.resources import CANARYGATES

        return self.kube.request("GET", CANARYGATES.path(self.namespace, name))

    def set_gate(self, gate: str, state: str, name: str = "demo", *, scope: str = "rollout") -> None:
        """Open or close ``gate`` live, as ``kubectl gate open|close`` does (annotation write)."""
        set_gate_live(self.kube, self.namespace, name, gate, state, scope=scope)

    def wait_phase(self, name: str, phase: str | tuple[str, ...], timeout: float = 30.0) -> dict:
        return self.flagger.wait_for_phase(self.namespace, name, phase, timeout=timeout)

    def ticks(self, name: str = "demo") -> list:
        return self.flagger.history(self.namespace, name)

    def wait_more_ticks(self, count: int, name: str = "demo", timeout: float = 20.0) -> list:
        """Let Flagger run ``count`` more ticks of this Canary; returns those ticks."""
        start = len(self.ticks(name))
        wait_until(lambda: len(self.ticks(name)) >= start + count, timeout=timeout, what=f"{count} more ticks")
        return self.ticks(name)[start:]

    def events(self, name: str = "demo", reason: str = "") -> list[dict]:
        items = self.kube.request("GET", f"/api/v1/namespaces/{self.namespace}/events").get("items") or []
        return [
            e
            for e in items
            if (e.get("involvedObject") or {}).get("kind") == "CanaryGate"
            and e["involvedObject"].get("name") == name
            and (not reason or e.get("reason") == reason)
        ]


@pytest.fixture
def rollouts(kube, namespace, flagger, sidecar) -> Rollouts:
    return Rollouts(kube, namespace, flagger, sidecar.url)


@pytest.fixture(name="wait_until")
def wait_until_fixture():
    """:func:`wait_until` for test modules (they cannot import conftest by name)."""
    return wait_until
