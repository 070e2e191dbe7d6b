"""Starts the real control plane and Flagger on 127.0.0.1, and stops them.

Start order: etcd (``/health``), kube-apiserver (``/readyz``, then namespace ``default``), the
CRDs Flagger needs (its own, and Istio's VirtualService and DestinationRule: Flagger's Istio
router writes only those) and Flagger's RBAC (``artifacts/flagger/account.yaml`` unchanged),
kube-controller-manager (only controllers that need no nodes: garbage collector, namespaces,
service accounts, ClusterRole aggregation, admission policy status; never the Deployment
controller, whose place the stand-in takes), the Deployment status stand-in
(:mod:`sandbox.deployments`), then Flagger (``/healthz``) as its own service account.

Identities: a static token file holds the admin (``system:masters``), Flagger's service account
and kube-controller-manager; every other test identity is a token signed with the run's secret
(:func:`sandbox.cluster.pki.sign_token`) that the API server's token webhook, served by this
process, accepts. The API server writes an audit log (every request, Metadata level) that tests
read as the request log.

The control endpoint (``control_url``, plain http on 127.0.0.1) serves ``GET /`` (the
description), ``POST /components/NAME/{stop,kill,start,restart,pause,resume}`` (SIGTERM, SIGKILL, start, SIGSTOP,
SIGCONT: an API server that is down, or one that accepts connections and answers nothing) and
``POST /authenticate`` (the TokenReview webhook) and ``GET /api/v1/query`` (a Prometheus that
answers ``vector(1)``, Flagger's start-up check).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sandbox.cluster import pki
from sandbox.cluster.binaries import Binaries

if TYPE_CHECKING:
    from kubernetes.client import V1CustomResourceDefinition

    from sandbox.deployments import DeploymentStatusWriter  # NB: imported when started, with the client

log = logging.getLogger("sandbox.cluster")

FLAGGER_USER = "system:serviceaccount:default:flagger"
FLAGGER_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:default")
KCM_CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "clusterrole-aggregation-controller",
    "validatingadmissionpolicy-status-controller",
)
ISTIO_CRDS = ("virtualservices.networking.istio.io", "destinationrules.networking.istio.io")
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Component:
    """One program of the cluster: how to start it, where it logs, how to tell it is up."""

    name: str
    version: str
    argv: list[str]
    log_path: Path
    url: str = ""
    health: str = ""  # a URL answering 200 once up
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    paused: bool = False

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            out.write(f"--- start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, start_new_session=True
            )
        self.paused = False

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.paused:
            self.resume()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown of its own (a crash, an OOM kill)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None
        self.paused = False

    def pause(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "pid": self.pid,
            "url": self.url,
            "log": str(self.log_path),
            "paused": self.paused,
        }


class Cluster:
    """etcd, kube-apiserver, kube-controller-manager, the Deployment stand-in and Flagger.

    ``with Cluster(binaries, kubeconfig_out=path) as c:`` starts everything and writes the admin
    kubeconfig to ``path``, ``path.json`` (the description) and one kubeconfig per test user in
    ``path.d/``; leaving the block stops everything and deletes the run directory.
    """

    def __init__(
        self,
        binaries: Binaries,
        *,
        kubeconfig_out: Path,
        mesh_provider: str = "istio",
        run_dir: Path | None = None,
        keep: bool = False,
    ):
        self.binaries = binaries
        self.kubeconfig_out = Path(kubeconfig_out).resolve()
        self.mesh_provider = mesh_provider
        self.keep = keep
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix="canary-gate-cluster-"))
        self.secret = pki.new_secret()
        self.admin_token = "admin-" + pki.new_secret()[:32]
        self.components: dict[str, Component] = {}
        self._control: ThreadingHTTPServer | None = None
        self._deployments: DeploymentStatusWriter | None = None
        self._lock = threading.Lock()

    # -- layout ------------------------------------------------------------------------
    @property
    def control_url(self) -> str:
        assert self._control is not None
        return f"http://127.0.0.1:{self._control.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.components["kube-apiserver"].url

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start -------------------------------------------------------------------------
    def start(self) -> None:
        versions = self.binaries.versions
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.pki = pki.write_pki(self.run_dir / "pki")
        self._start_control()
        shm = Path("/dev/shm")
        etcd_data = Path(tempfile.mkdtemp(prefix="canary-gate-etcd-", dir=shm if shm.is_dir() else None))
        self._etcd_data = etcd_data
        etcd_port, peer_port = free_port(), free_port()
        self._add(
            Component(
                "etcd",
                versions["etcd"],
                [
                    self.binaries.path("etcd"),
                    f"--data-dir={etcd_data}",
                    "--name=default",
                    f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                    "--listen-metrics-urls=",
                ],
                self._log("etcd"),
                url=f"http://127.0.0.1:{etcd_port}",
                health=f"http://127.0.0.1:{etcd_port}/health",
            )
        )
        self._wait_up(self.components["etcd"], 30)

        api_port = free_port()
        tokens = self.run_dir / "tokens.csv"
        tokens.write_text(
            f'{self.admin_token},admin,uid-admin,"system:masters"\n'
            f'{self._static("flagger")},{FLAGGER_USER},uid-flagger,"{",".join(FLAGGER_GROUPS)}"\n'
            f'{self._static("kcm")},system:kube-controller-manager,uid-kcm,"system:masters"\n'
        )
        tokens.chmod(0o600)
        webhook = self.run_dir / "token-webhook.kubeconfig"
        webhook.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "tokens",
                    "clusters": [{"name": "tokens", "cluster": {"server": self.control_url + "/authenticate"}}],
                    "users": [{"name": "kube-apiserver", "user": {}}],
                    "contexts": [{"name": "tokens", "context": {"cluster": "tokens", "user": "kube-apiserver"}}],
                }
            )
        )
        audit_policy = self.run_dir / "audit-policy.yaml"
        audit_policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        self.audit_log = self.run_dir / "logs" / "audit.log"
        self._add(
            Component(
                "kube-apiserver",
                versions["kubernetes"],
                [
                    self.binaries.path("kube-apiserver"),
                    f"--etcd-servers={self.components['etcd'].url}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={api_port}",
                    "--advertise-address=127.0.0.1",
                    "--endpoint-reconciler-type=none",
                    f"--tls-cert-file={self.pki['cert']}",
                    f"--tls-private-key-file={self.pki['key']}",
                    f"--client-ca-file={self.pki['ca']}",
                    f"--token-auth-file={tokens}",
                    f"--authentication-token-webhook-config-file={webhook}",
                    "--authentication-token-webhook-version=v1",
                    "--authentication-token-webhook-cache-ttl=30s",
                    "--authorization-mode=RBAC",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    f"--service-account-key-file={self.pki['sa_key']}",
                    f"--service-account-signing-key-file={self.pki['sa_key']}",
                    "--service-cluster-ip-range=10.96.0.0/16",
                    f"--audit-policy-file={audit_policy}",
                    f"--audit-log-path={self.audit_log}",
                    "--audit-log-format=json",
                    "--audit-log-mode=blocking",
                    "--audit-log-maxsize=0",
                    "--profiling=false",
                    "--v=1",
                ],
                self._log("kube-apiserver"),
                url=f"https://127.0.0.1:{api_port}",
            )
        )
        self._wait_api(120)
        self._write_kubeconfig(self.kubeconfig_out, self.admin_token, "admin")
        self._install_base()

        kcm_port = free_port()
        kcm_config = self.run_dir / "kcm.kubeconfig"
        self._write_kubeconfig(kcm_config, self._static("kcm"), "kube-controller-manager")
        self._add(
            Component(
                "kube-controller-manager",
                versions["kubernetes"],
                [
                    self.binaries.path("kube-controller-manager"),
                    f"--kubeconfig={kcm_config}",
                    f"--authentication-kubeconfig={kcm_config}",
                    f"--authorization-kubeconfig={kcm_config}",
                    "--leader-elect=false",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={kcm_port}",
                    f"--controllers={','.join(KCM_CONTROLLERS)}",
                    "--v=1",
                ],
                self._log("kube-controller-manager"),
                url=f"https://127.0.0.1:{kcm_port}",
                health=f"https://127.0.0.1:{kcm_port}/healthz",
            )
        )
        self._wait_up(self.components["kube-controller-manager"], 60)

        self._start_deployments()

        flagger_port = free_port()
        flagger_config = self.run_dir / "flagger.kubeconfig"
        self._write_kubeconfig(flagger_config, self._static("flagger"), "flagger")
        self._add(
            Component(
                "flagger",
                versions["flagger"],
                [
                    self.binaries.path("flagger"),
                    f"-kubeconfig={flagger_config}",
                    f"-mesh-provider={self.mesh_provider}",
                    f"-metrics-server={self.control_url}",  # answers vector(1); Canaries here configure no metrics
                    "-control-loop-interval=1s",
                    "-log-level=info",
                    "-zap-encoding=console",
                    f"-port={flagger_port}",
                    "-enable-leader-election=false",
                ],
                self._log("flagger"),
                url=f"http://127.0.0.1:{flagger_port}",
                health=f"http://127.0.0.1:{flagger_port}/healthz",
            )
        )
        self._wait_up(self.components["flagger"], 60)
        self.write_description()

    def _add(self, component: Component) -> None:
        self.components[component.name] = component
        component.start()

    def _log(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def _static(self, who: str) -> str:
        return pki.sign_token(self.secret, who)  # unique, unguessable; only its text matters here

    # -- waiting -----------------------------------------------------------------------
    def _get(self, url: str, token: str | None = None, timeout: float = 3.0) -> tuple[int, bytes]:
        context = ssl.create_default_context(cafile=self.pki["ca"])
        api = self.components.get("kube-apiserver")
        if not (api and url.startswith(api.url)):  # kube-controller-manager serves a self-signed certificate
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (OSError, ssl.SSLError):
            return 0, b""

    def _wait_up(self, component: Component, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if component.proc is None or component.proc.poll() is not None:
                raise RuntimeError(
                    f"{component.name} exited ({component.proc and component.proc.returncode}); "
                    f"its log: {component.log_path}\n{_tail(component.log_path)}"
                )
            if not component.health or self._get(component.health)[0] == 200:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{component.name} not up after {timeout:.0f} s; its log: {component.log_path}\n"
                    f"{_tail(component.log_path)}"
                )
            time.sleep(0.2)

    def _wait_api(self, timeout: float) -> None:
        api = self.components["kube-apiserver"]
        deadline = time.monotonic() + timeout
        while True:
            if api.proc is None or api.proc.poll() is not None:
                raise RuntimeError(f"kube-apiserver exited; its log: {api.log_path}\n{_tail(api.log_path)}")
            if (
                self._get(api.url + "/readyz", self.admin_token)[0] == 200
                and self._get(api.url + "/api/v1/namespaces/default", self.admin_token)[0] == 200
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"kube-apiserver not ready after {timeout:.0f} s; its log: {api.log_path}")
            time.sleep(0.3)

    # -- base objects --------------------------------------------------------------------
    def _install_base(self) -> None:
        import kubernetes

        client = kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig_out))
        try:
            docs = [*_yaml_docs(self.binaries.flagger_file("artifacts/flagger/crd.yaml"))]
            docs += [
                d
                for d in _yaml_docs(self.binaries.istio_crds())
                if d.get("kind") == "CustomResourceDefinition" and d["metadata"]["name"] in ISTIO_CRDS
            ]
            docs += [*_yaml_docs(self.binaries.flagger_file("artifacts/flagger/account.yaml"))]
            for doc in docs:
                kubernetes.utils.create_from_dict(client, doc)
            ext = kubernetes.client.ApiextensionsV1Api(client)
            deadline = time.monotonic() + 60
            for doc in docs:
                if doc["kind"] != "CustomResourceDefinition":
                    continue
                while not _established(ext.read_custom_resource_definition(doc["metadata"]["name"])):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"CRD {doc['metadata']['name']} not Established")
                    time.sleep(0.2)
        finally:
            client.close()

    def _start_deployments(self) -> None:
        import kubernetes

        from sandbox.deployments import DeploymentStatusWriter

        client = kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig_out))
        self._deployments = DeploymentStatusWriter(client)
        self._deployments.start()
        self._deployments_client = client

    # -- files -----------------------------------------------------------------------------
    def _write_kubeconfig(self, path: Path, token: str, user: str, namespace: str = "default") -> Path:
        import base64

        path.parent.mkdir(parents=True, exist_ok=True)
        ca = Path(self.pki["ca"]).read_bytes()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "current-context": "e2e",
            "clusters": [
                {
                    "name": "e2e",
                    "cluster": {"server": self.api_url, "certificate-authority-data": base64.b64encode(ca).decode()},
                }
            ],
            "users": [{"name": f"e2e-{user}", "user": {"token": token}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": f"e2e-{user}", "namespace": namespace}}],
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def description(self) -> dict[str, Any]:
        users = self.kubeconfig_out.with_name(self.kubeconfig_out.name + ".d")
        return {
            "kubeconfig": str(self.kubeconfig_out),
            "server": self.api_url,
            "ca": self.pki["ca"],
            "control": self.control_url,
            "token_secret": self.secret,
            "audit_log": str(self.audit_log),
            "run_dir": str(self.run_dir),
            "mesh_provider": self.mesh_provider,
            "components": [c.describe() for c in self.components.values()]
            + [
                {
                    "name": "deployment-status-writer",
                    "version": "sandbox",
                    "pid": os.getpid(),
                    "url": "",
                    "log": str(self._log("cluster")),
                }
            ],
            "users": {name: str(users / f"{name}.kubeconfig") for name in ("viewer", "approver")},
        }

    def write_description(self) -> None:
        from sandbox.cluster.handle import TEST_USERS

        users = self.kubeconfig_out.with_name(self.kubeconfig_out.name + ".d")
        for name, (user, groups) in TEST_USERS.items():
            self._write_kubeconfig(users / f"{name}.kubeconfig", pki.sign_token(self.secret, user, groups), user)
        target = Path(str(self.kubeconfig_out) + ".json")
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.description(), indent=2))
        tmp.chmod(0o600)
        tmp.replace(target)

    # -- control ---------------------------------------------------------------------------
    def act(self, name: str, action: str) -> dict[str, Any]:
        """stop, kill, start, restart, pause or resume one component; its description afterwards."""
        with self._lock:
            component = self.components.get(name)
            if component is None:
                raise KeyError(name)
            if action == "stop":
                component.stop()
            elif action == "kill":
                component.kill()
            elif action == "start":
                if component.pid is None:
                    component.start()
                    self._wait_started(component)
            elif action == "restart":
                component.stop()
                component.start()
                self._wait_started(component)
            elif action == "pause":
                component.pause()
            elif action == "resume":
                component.resume()
            else:
                raise ValueError(action)
            self.write_description()
            return component.describe()

    def _wait_started(self, component: Component) -> None:
        if component.name == "kube-apiserver":
            self._wait_api(120)
        else:
            self._wait_up(component, 60)

    def _start_control(self) -> None:
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] == "/api/v1/query":  # Flagger's start-up check: vector(1)
                    self._send(
                        200,
                        {
                            "status": "success",
                            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [time.time(), "1"]}]},
                        },
                    )
                else:
                    self._send(200, cluster.description())

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                if parts == ["authenticate"]:
                    self._send(200, cluster._review(raw))
                elif len(parts) == 3 and parts[0] == "components":
                    try:
                        self._send(200, cluster.act(parts[1], parts[2]))
                    except KeyError:
                        self._send(404, {"error": f"no component {parts[1]}"})
                    except ValueError:
                        self._send(400, {"error": f"no action {parts[2]}"})
                    except Exception as e:  # noqa: BLE001 - reported to the caller
                        self._send(500, {"error": str(e)})
                else:
                    self._send(404, {"error": "unknown path"})

        self._control = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._control.daemon_threads = True
        threading.Thread(target=self._control.serve_forever, daemon=True, name="cluster-control").start()

    def _review(self, raw: bytes) -> dict[str, Any]:
        """A TokenReview answer for a token signed with this run's secret."""
        try:
            review = json.loads(raw)
            identity = pki.verify_token(self.secret, review["spec"]["token"])
        except (ValueError, KeyError, TypeError):
            identity = None
        status: dict[str, Any] = {"authenticated": False}
        if identity:
            status = {
                "authenticated": True,
                "user": {"username": identity["u"], "uid": identity["i"], "groups": identity["g"]},
            }
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}

    # -- stop ------------------------------------------------------------------------------
    def stop(self) -> None:
        if self._deployments is not None:
            self._deployments.stop()
            self._deployments_client.close()
            self._deployments = None
        for name in ("flagger", "kube-controller-manager", "kube-apiserver", "etcd"):
            component = self.components.get(name)
            if component is not None:
                component.stop()
        if self._control is not None:
            self._control.shutdown()
            self._control.server_close()
        if not self.keep:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if getattr(self, "_etcd_data", None):
            shutil.rmtree(self._etcd_data, ignore_errors=True)


def _established(crd: V1CustomResourceDefinition) -> bool:
    """Whether a V1CustomResourceDefinition is Established (a CRD just created may have no status yet)."""
    conditions = (crd.status.conditions if crd.status is not None else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
