"""Shared fixtures: the sandbox Kubernetes API (or a real cluster), clients, kubectl.

* ``apiserver``: the session's :class:`sandbox.apiserver.ApiServer`, or, when
  GATE_E2E_KUBECONFIG points at a cluster started by ``python -m sandbox.cluster``, its
  :class:`sandbox.cluster.handle.ClusterHandle` (tokens, apply, the audit log as the request
  log, the API server down or hung). ``helpers.tiers.emulator_only(apiserver, why)`` skips a test on the
  real tier, saying why; every such reason is a limit of the test bench, not a difference.
* ``kubeconfig`` / ``api_client``: the admin kubeconfig and a ``kubernetes`` ApiClient
  built from it (the real cluster's when GATE_E2E_KUBECONFIG is set).
* ``namespace``: a unique namespace per test, created through the API, deleted after.
* ``kubectl``: runs the virtualenv's kubectl (never the one on PATH) against it.
* ``crds``: the CanaryGate and Flagger Canary CRDs, installed once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import kubernetes
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
E2E_KUBECONFIG = os.environ.get("GATE_E2E_KUBECONFIG")
CRD_FILES = (ROOT / "deploy" / "crd" / "canarygate.yaml", ROOT / "canarygate" / "data" / "flagger-canary-crd.yaml")
KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.fixture(scope="session")
def _sandbox():
    if E2E_KUBECONFIG:
        from sandbox.cluster.handle import ClusterHandle

        handle = ClusterHandle.find(E2E_KUBECONFIG)
        yield handle
        if handle is not None:
            handle.close()
        return
    from sandbox.apiserver import ApiServer

    with ApiServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def apiserver(_sandbox):
    if _sandbox is None:
        pytest.skip(
            "GATE_E2E_KUBECONFIG names a cluster not started by python -m sandbox.cluster: "
            "this test needs to mint tokens, read the request log or inject faults"
        )
    return _sandbox


@pytest.fixture(scope="session")
def kubeconfig(_sandbox, tmp_path_factory) -> str:
    if E2E_KUBECONFIG:
        return E2E_KUBECONFIG
    return _sandbox.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture(autouse=True)
def _connections_closed(monkeypatch):
    """Every connection a test opens with ``canarygate.kube.connect.connect`` is closed when the test
    ends, as the CLI closes its own: no socket is left for the garbage collector to warn about."""
    from canarygate.kube import connect

    opened = []
    opening = connect.connect

    def tracked(*args, **kwargs):
        conn = opening(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(connect, "connect", tracked)
    yield
    for conn in opened:
        conn.close()


@pytest.fixture(scope="session")
def api_client(kubeconfig):
    client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    yield client
    client.close()


@pytest.fixture
def namespace(api_client, request):
    core = kubernetes.client.CoreV1Api(api_client)
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"sandbox.test/owner": "pytest"}}})
    yield name
    try:
        core.delete_namespace(name)
    except kubernetes.client.ApiException as e:
        if e.status != 404:
            raise


@pytest.fixture(scope="session")
def kubectl(kubeconfig, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("kubecache")

    def run(
        *args: str,
        input: str | None = None,  # noqa: A002 - subprocess.run's keyword
        kubeconfig: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, "KUBECACHEDIR": str(cache_dir), "KUBECONFIG": kubeconfig or default_config}
        proc = subprocess.run([str(KUBECTL), *args], input=input, capture_output=True, text=True, env=env, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {proc.returncode}:\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    default_config = kubeconfig
    return run


@pytest.fixture(scope="session")
def crds(api_client) -> list[str]:
    """Install the CRDs (create, or leave as they are if present) and wait until Established and in
    discovery (kube-apiserver publishes a new group's discovery a moment after Established)."""
    ext = kubernetes.client.ApiextensionsV1Api(api_client)
    names, served = [], []
    for path in CRD_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            names.append(doc["metadata"]["name"])
            spec = doc["spec"]
            served += [(spec["group"], v["name"], spec["names"]["plural"]) for v in spec["versions"] if v["served"]]
            try:
                ext.create_custom_resource_definition(doc)
            except kubernetes.client.ApiException as e:
                if e.status != 409:
                    raise
    deadline = time.monotonic() + 30
    for name in names:
        while True:
            crd = ext.read_custom_resource_definition(name)
            if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established")
            time.sleep(0.2)
    for group, version, plural in served:
        while not _discovered(api_client, group, version, plural):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{plural}.{group}/{version} not in discovery")
            time.sleep(0.2)
    return names


def _discovered(api_client, group: str, version: str, plural: str) -> bool:
    try:
        listing = kubernetes.client.CustomObjectsApi(api_client).get_api_resources(group, version)
    except kubernetes.client.ApiException as e:
        if e.status == 404:
            return False
        raise
    return any(r.name == plural for r in listing.resources)
