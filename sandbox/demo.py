"""``python -m sandbox.demo`` (``make demo``): a canary release on a local sandbox cluster.

The steps, in order:

1. start the Kubernetes API emulator and write a kubeconfig for it;
2. install the CRDs (CanaryGate and Flagger's Canary) with kubectl;
3. start the Flagger simulator, time-scaled so a 10 s analysis interval takes one second;
4. create the ``demo`` namespace, a Deployment and its Canary (stepWeight 10, maxWeight 40);
5. wait for Flagger to initialise the Canary;
6. change the Deployment's image;
7. show the rollout going through its phases and weights, as ``kubectl get canaries`` shows
   them, until it has Succeeded;
8. stop everything it started.

Every kubectl command is the real one from the virtualenv, printed before its output.
Later steps of the project (the gate sidecar, ``kubectl gate``) slot in between these.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kubernetes

from sandbox.apiserver import ApiServer
from sandbox.flagger import FlaggerSimulator

ROOT = Path(__file__).resolve().parent.parent
CRD_FILES = [ROOT / "deploy" / "crd" / "canarygate.yaml",
             ROOT / "canarygate" / "data" / "flagger-canary-crd.yaml"]
KUBECTL = Path(sys.executable).parent / "kubectl"
NAMESPACE = "demo"
TIME_SCALE = 0.1           # analysis interval 10s -> one tick every second
ROLLOUT_TIMEOUT = 45.0

MANIFESTS = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: {NAMESPACE}
  labels: {{app: podinfo}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: podinfo}}
  template:
    metadata:
      labels: {{app: podinfo}}
    spec:
      containers:
      - name: podinfo
        image: ghcr.io/stefanprodan/podinfo:6.0.0
        ports: [{{containerPort: 9898}}]
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: {NAMESPACE}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: podinfo}}
  service: {{port: 9898}}
  analysis:
    interval: 10s
    threshold: 5
    stepWeight: 10
    maxWeight: 40
"""


class Kubectl:
    """Runs the virtualenv's kubectl against the sandbox and echoes what it runs."""

    def __init__(self, kubeconfig: Path, cache_dir: Path):
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache_dir)}

    def run(self, *args: str, input: str | None = None, echo: bool = True) -> str:  # noqa: A002
        proc = subprocess.run([str(KUBECTL), *args], input=input, capture_output=True, text=True,
                              env=self.env, timeout=60)
        if echo:
            print(f"$ kubectl {' '.join(args)}", flush=True)
            print(proc.stdout.rstrip("\n") or proc.stderr.rstrip("\n"), flush=True)
        if proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def wait_for_crds(api: kubernetes.client.ApiClient, names: list[str], timeout: float = 30) -> None:
    ext = kubernetes.client.ApiextensionsV1Api(api)
    deadline = time.monotonic() + timeout
    for name in names:
        while not any(c.type == "Established" and c.status == "True"
                      for c in ext.read_custom_resource_definition(name).status.conditions or []):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established")
            time.sleep(0.1)


def canary_phase(custom: kubernetes.client.CustomObjectsApi) -> tuple[str, int]:
    status = custom.get_namespaced_custom_object("flagger.app", "v1beta1", NAMESPACE, "canaries",
                                                 "podinfo").get("status") or {}
    return status.get("phase", ""), int(status.get("canaryWeight") or 0)


def wait_for_phase(custom, phase: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while canary_phase(custom)[0] != phase:
        if time.monotonic() > deadline:
            raise TimeoutError(f"canary podinfo not {phase} after {timeout}s")
        time.sleep(0.1)


def show_rollout(kubectl: Kubectl, custom, timeout: float) -> str:
    """Print ``kubectl get canaries`` each time the phase or weight changes; the last phase."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        now = canary_phase(custom)
        if now != last:
            kubectl.run("get", "canaries", "-n", NAMESPACE)
            last = now
            if now[0] in ("Succeeded", "Failed"):
                return now[0]
        time.sleep(0.05)
    return last[0] if last else ""


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="canary-gate-demo-") as tmp, ApiServer() as apiserver:
        step(f"Kubernetes API emulator listening on {apiserver.url}")
        kubeconfig = apiserver.write_kubeconfig(Path(tmp) / "kubeconfig")
        kubectl = Kubectl(Path(kubeconfig), Path(tmp) / "kubecache")
        api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        custom = kubernetes.client.CustomObjectsApi(api)
        try:
            step("Install the CRDs: CanaryGate and Flagger's Canary")
            for path in CRD_FILES:
                kubectl.run("apply", "-f", str(path.relative_to(ROOT)) if Path.cwd() == ROOT else str(path))
            wait_for_crds(api, ["canarygates.piggysec.com", "canaries.flagger.app"])

            step(f"Start the Flagger simulator (time scale {TIME_SCALE}: a 10s interval takes "
                 f"{10 * TIME_SCALE:g}s)")
            with FlaggerSimulator(kubeconfig=str(kubeconfig), time_scale=TIME_SCALE):
                step("Create the namespace, a Deployment and its Canary")
                kubectl.run("create", "namespace", NAMESPACE)
                kubectl.run("apply", "-f", "-", input=MANIFESTS)

                step("Flagger initialises the Canary: podinfo-primary serves, podinfo scales to zero")
                wait_for_phase(custom, "Initialized", timeout=20)
                kubectl.run("get", "canaries", "-n", NAMESPACE)
                kubectl.run("get", "deployments", "-n", NAMESPACE, "-o", "wide")

                step("Release a new version: change the image")
                kubectl.run("set", "image", "deployment/podinfo",
                            "podinfo=ghcr.io/stefanprodan/podinfo:6.0.1", "-n", NAMESPACE)

                step("Watch the rollout: phases and canary weight, as kubectl shows them")
                final = show_rollout(kubectl, custom, ROLLOUT_TIMEOUT)

                step("The primary now runs the new image")
                kubectl.run("get", "deployments", "-n", NAMESPACE, "-o", "wide")
                step("Flagger's events on the Canary")
                kubectl.run("get", "events", "-n", NAMESPACE, "--field-selector",
                            "involvedObject.kind=Canary")
        finally:
            api.close()
        step("Stopped the Flagger simulator and the API emulator")
    if final != "Succeeded":
        print(f"demo failed: the rollout ended {final or 'nowhere'}", file=sys.stderr)
        return 1
    print("\nDemo complete: the canary rollout Succeeded.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
