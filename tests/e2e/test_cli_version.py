"""End to end: ``kubectl gate version`` asks the running gate sidecar for its version through the
API server's service proxy.

The sidecar's Service is created as deploy/sidecar/service.yaml declares it (canary-gate-sidecar,
port 80 named http), in the test's namespace, with the emulator's endpoint annotation pointing at
the sidecar process (the sandbox runs no pods). Covers: the client and the sidecar versions
printed (text, and -o json), through the in-process CLI and through real kubectl running the
installed plugin; with the sidecar stopped, with no Service, with a Service without ready endpoints
(told apart from no Service by a GET of the Service, both tiers), and for a user without ``get`` on
``services/proxy``: "sidecar: not reachable (...)" on stderr, the client version still printed,
exit code 0 (version.py reports the sidecar as a note, never as a failure). Tests needing the
endpoint annotation or minted tokens are emulator-only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers.tiers import emulator_only

from kubectl_gate.cli import cli

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENDPOINT = "sandbox.apiserver/endpoint"


def client_version() -> str:
    from importlib import metadata

    return metadata.version("canary-gate")


def sidecar_service(namespace: str, url: str) -> dict:
    """deploy/sidecar/service.yaml, unchanged but for its namespace and the sandbox endpoint."""
    service = yaml.safe_load((ROOT / "deploy" / "sidecar" / "service.yaml").read_text())
    assert (service["metadata"]["name"], service["spec"]["ports"][0]["name"], service["spec"]["ports"][0]["port"]) == (
        "canary-gate-sidecar",
        "http",
        80,
    )
    service["metadata"]["namespace"] = namespace
    service["metadata"].setdefault("annotations", {})[ENDPOINT] = url
    return service


LOOPBACK = (
    "kube-apiserver refuses to proxy to loopback addresses (IsProxyableIP) and every server of the "
    "test bench listens on 127.0.0.1 only, so no Service here can reach the sidecar"
)


@pytest.fixture
def sidecar_behind_proxy(apiserver, kube, namespace, sidecar):
    """The running sidecar, reachable as Service ``canary-gate-sidecar`` in ``namespace``."""
    emulator_only(apiserver, LOOPBACK)
    kube.request("POST", f"/api/v1/namespaces/{namespace}/services", body=sidecar_service(namespace, sidecar.url))
    return sidecar


@pytest.fixture
def version(kubeconfig, namespace):
    """``kubectl gate version --sidecar-namespace NS ARGS`` in-process; the click Result."""

    def run(*args: str, config: str | None = None):
        return CliRunner().invoke(
            cli,
            ["version", "--sidecar-namespace", namespace, *args, "--kubeconfig", config or kubeconfig],
            prog_name="kubectl gate",
        )

    return run


def test_prints_client_and_sidecar_versions(sidecar_behind_proxy, version, namespace):
    answer = sidecar_behind_proxy.get("/version")[1]
    result = version()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"kubectl-gate: {client_version()}",
        f"gate-sidecar: {answer['version']} ({namespace}/canary-gate-sidecar)",
    ]
    assert result.stderr == ""


def test_json_output_carries_the_sidecars_answer(sidecar_behind_proxy, version, apiserver, namespace):
    apiserver.clear_requests()
    result = version("-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["client"] == {"version": client_version()}
    assert data["sidecar"] == sidecar_behind_proxy.get("/version")[1]
    assert data["sidecar"]["component"] == "gate-sidecar"
    proxied = [r for r in apiserver.requests if r.subresource == "proxy"]
    assert [(r.method, r.path, r.verb, r.resource, r.name, r.status) for r in proxied] == [
        (
            "GET",
            f"/api/v1/namespaces/{namespace}/services/canary-gate-sidecar:http/proxy/version",
            "get",
            "services",
            "canary-gate-sidecar:http",
            200,
        )
    ]


def test_sidecar_stopped_says_not_reachable_and_still_prints_the_client(sidecar_behind_proxy, version):
    sidecar_behind_proxy.stop()
    result = version()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"kubectl-gate: {client_version()}"]
    note = result.stderr.strip()
    assert note.startswith("sidecar: not reachable (")
    assert re.search(
        r"503: error trying to reach service: dial tcp 127\.0\.0\.1:\d+: connect: connection refused", note
    ), note


def test_no_sidecar_service(apiserver, version, namespace):
    result = version()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"kubectl-gate: {client_version()}"]
    # NB: through the proxy kube-apiserver 1.37 answers a missing Service reached by port name as one
    # without endpoints (503); the GET of the Service that follows tells them apart.
    assert result.stderr.strip() == (
        f"sidecar: not reachable (no Service canary-gate-sidecar in namespace {namespace}: install the sidecar "
        "with kubectl gate install | kubectl apply -f -, or name its namespace with --sidecar-namespace)"
    )


def test_a_service_without_ready_endpoints_says_the_pods_are_not_ready(kube, version, namespace):
    service = yaml.safe_load((ROOT / "deploy" / "sidecar" / "service.yaml").read_text())
    service["metadata"]["namespace"] = namespace  # selects the sidecar's pods: there are none here
    kube.request("POST", f"/api/v1/namespaces/{namespace}/services", body=service)
    result = version()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"kubectl-gate: {client_version()}"]
    assert result.stderr.strip() == (
        f"sidecar: not reachable (the Service {namespace}/canary-gate-sidecar has no ready endpoints: the sidecar "
        f"pods are not ready (kubectl get pods -n {namespace} -l app.kubernetes.io/name=canary-gate-sidecar))"
    )


def test_client_only_contacts_no_cluster(apiserver, version, namespace, tmp_path, wait_until):
    # NB: as a user of this test's own: other tests (and the cluster's controllers) work meanwhile,
    # some as the admin, and the API server's log is the proof.
    user = f"version-client-{namespace}"
    apiserver.add_token(f"token-{user}", user)
    config = str(apiserver.write_kubeconfig(tmp_path / "config", token=f"token-{user}"))
    result = version("--client", config=config)
    assert (result.exit_code, result.stdout) == (0, f"kubectl-gate: {client_version()}\n")
    ended = time.time()
    version(config=config)  # NB: the full version asks the cluster: the log does show this user
    wait_until(lambda: any(r.user == user for r in apiserver.requests), what="the full version in the log")
    assert [r for r in apiserver.requests if r.user == user and r.time <= ended] == []


def test_user_without_services_proxy_get(sidecar_behind_proxy, apiserver, version, namespace, tmp_path):
    token, user = f"tok-{uuid.uuid4().hex}", f"dev-{uuid.uuid4().hex[:6]}"
    apiserver.add_token(token, user)
    config = apiserver.write_kubeconfig(tmp_path / "dev.yaml", token=token, namespace=namespace)
    result = version(config=config)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"kubectl-gate: {client_version()}"]
    assert result.stderr.strip().startswith("sidecar: not reachable (")
    assert 'cannot get resource "services/proxy"' in result.stderr


def test_real_kubectl_runs_the_plugin(sidecar_behind_proxy, kubeconfig, namespace, tmp_path):
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": kubeconfig,
        "KUBECACHEDIR": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        [str(BIN / "kubectl"), "gate", "version", "--sidecar-namespace", namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    answer = sidecar_behind_proxy.get("/version")[1]
    assert proc.stdout.splitlines() == [
        f"kubectl-gate: {client_version()}",
        f"gate-sidecar: {answer['version']} ({namespace}/canary-gate-sidecar)",
    ]


def test_a_failing_backend_is_not_mistaken_for_a_missing_service(apiserver, kube, namespace, version):
    """The proxy passes the backend's own 404 through: it is the backend's answer, not "no Service"."""
    emulator_only(apiserver, LOOPBACK)
    import http.server
    import threading

    class NotHere(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"404 page not found"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotHere)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        kube.request("POST", f"/api/v1/namespaces/{namespace}/services", body=sidecar_service(namespace, url))
        result = version()
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"kubectl-gate: {client_version()}"]
    assert result.stderr.strip() == (
        f"sidecar: not reachable ({namespace}/canary-gate-sidecar answered 404: 404 page not found)"
    )
