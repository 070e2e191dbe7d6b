"""``python -m sandbox.demo`` (``make demo``): the whole gate flow on a local sandbox cluster.

The story, in order:

1. start the Kubernetes API emulator; install the CRDs (CanaryGate and Flagger's Canary) with kubectl;
2. start the gate sidecar as its own process, with a token bound to the shipped least-privilege
   ClusterRole (deploy/sidecar), and the Flagger simulator, time-scaled so a 10 s analysis interval
   takes one second;
3. create a Deployment and, with ``kubectl gate apply``, a CanaryGate whose confirm-rollout and
   confirm-promotion gates are closed, and the Flagger Canary it renders;
4. release version 2: Flagger waits at confirm-rollout; ``kubectl gate show`` says why; open it;
   traffic steps up to max weight and waits at confirm-promotion; ``kubectl gate promote``; Succeeded;
   the live change ended with its rollout, so the gates are closed again for the next release;
5. release version 3: approve one step with ``promote``, then ``kubectl gate abort``: Flagger rolls
   back and ``kubectl gate wait --for failed`` says so;
6. show the audit trail (Events on the CanaryGate) and stop everything it started.

Every command is printed before its output. kubectl and ``kubectl gate`` are the real ones from the
virtualenv (``kubectl gate`` is found on PATH as the ``kubectl-gate`` plugin). The sandbox imports
nothing of the product: it runs the sidecar and the plugin as programs, as a cluster would.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from sandbox.apiserver import ApiServer
from sandbox.flagger import FlaggerSimulator

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CRD_FILES = ("deploy/crd/canarygate.yaml", "canarygate/data/flagger-canary-crd.yaml")
SIDECAR_RBAC = ("deploy/sidecar/clusterrole.yaml", "deploy/sidecar/clusterrolebinding.yaml")
SIDECAR_USER = "system:serviceaccount:canary-gate:canary-gate-sidecar"
SIDECAR_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:canary-gate")
NAMESPACE = "demo-ns"
TIME_SCALE = 0.1  # analysis interval 10s -> one tick every second
STEP_TIMEOUT = "60s"

DEPLOYMENT = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
  namespace: {NAMESPACE}
  labels: {{app: demo}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: demo}}
  template:
    metadata:
      labels: {{app: demo}}
    spec:
      containers:
      - name: demo
        image: ghcr.io/stefanprodan/podinfo:6.0.0
        ports: [{{containerPort: 8080}}]
"""

# The seed README's CanaryGate, with both of its scenarios at once: a new version pauses at
# confirm-rollout, and promotion pauses at max weight.
CANARYGATE = f"""\
apiVersion: piggysec.com/v1alpha1
kind: CanaryGate
metadata:
  name: demo
  namespace: {NAMESPACE}
spec:
  confirm-rollout: closed
  confirm-promotion: closed
  target:
    namespace: {NAMESPACE}
    name: demo
  flagger:
    targetRef:
      apiVersion: apps/v1
      kind: Deployment
      name: demo
    service:
      port: 8080
    skipAnalysis: false
    analysis:
      interval: 10s
      threshold: 2
      maxWeight: 40
      stepWeight: 10
      stepWeightPromotion: 100
"""


class Shell:
    """Runs commands against the sandbox with a private kubeconfig and prints each one first."""

    def __init__(self, kubeconfig: Path, cache_dir: Path):
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "KUBECACHEDIR": str(cache_dir),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_COLOR": "1",
        }

    def run(self, *args: str, input: str | None = None, ok: tuple[int, ...] = (0,)) -> str:  # noqa: A002
        print(f"$ {' '.join(_quote(a) for a in args)}", flush=True)
        # stderr joins stdout so progress lines and results show in the order they happened
        proc = subprocess.run(
            [_resolve(args[0]), *args[1:]],
            input=input,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            timeout=120,
            cwd=ROOT,
        )
        if proc.stdout.strip():
            print(proc.stdout.rstrip("\n"), flush=True)
        if proc.returncode not in ok:
            raise RuntimeError(f"{args[0]} {' '.join(args[1:])} exited {proc.returncode}")
        if proc.returncode:
            print(f"(exit code {proc.returncode})", flush=True)
        return proc.stdout


def _resolve(program: str) -> str:
    # NB: the virtualenv's kubectl, never an older one earlier on PATH.
    return str(BIN / program) if (BIN / program).exists() else program


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sidecar:
    """``gate-sidecar`` as its own process on a loopback port."""

    def __init__(self, kubeconfig: str, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [_resolve("gate-sidecar"), "--listen", f"127.0.0.1:{self.port}", "--kubeconfig", kubeconfig],
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        log.close()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gate-sidecar exited {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError("gate-sidecar did not become ready")

    def version(self) -> str:
        with urllib.request.urlopen(self.url + "/version", timeout=2) as response:
            return json.loads(response.read()).get("version", "?")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="canary-gate-demo-") as tmp, ApiServer() as apiserver:
        tmp_path = Path(tmp)
        step(f"Kubernetes API emulator listening on {apiserver.url}")
        kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
        sh = Shell(Path(kubeconfig), tmp_path / "kubecache")

        step("Install the CRDs: CanaryGate and Flagger's Canary")
        for path in CRD_FILES:
            sh.run("kubectl", "apply", "-f", path)
        for name in ("canarygates.piggysec.com", "canaries.flagger.app"):
            sh.run("kubectl", "wait", "--for=condition=Established", f"crd/{name}", "--timeout=30s")

        step("Start the gate sidecar with the shipped least-privilege ClusterRole")
        for path in SIDECAR_RBAC:
            apiserver.apply(yaml.safe_load((ROOT / path).read_text()))
        token = "sidecar-" + secrets.token_hex(16)
        apiserver.add_token(token, SIDECAR_USER, SIDECAR_GROUPS)
        sidecar_kubeconfig = apiserver.write_kubeconfig(tmp_path / "sidecar-kubeconfig", token=token)
        sidecar = Sidecar(sidecar_kubeconfig, tmp_path / "sidecar.log")
        try:
            sidecar.wait_ready()
            print(f"gate-sidecar {sidecar.version()} ready at {sidecar.url} as {SIDECAR_USER}")
            step(f"Start the Flagger simulator (time scale {TIME_SCALE}: a 10s interval takes {10 * TIME_SCALE:g}s)")
            with FlaggerSimulator(kubeconfig=str(kubeconfig), time_scale=TIME_SCALE, namespaces=[NAMESPACE]):
                return story(sh, sidecar)
        finally:
            sidecar.stop()
            step("Stopped the gate sidecar, the Flagger simulator and the API emulator")


def story(sh: Shell, sidecar: Sidecar) -> int:
    gate = ("-n", NAMESPACE)
    step("Create the namespace and the Deployment")
    sh.run("kubectl", "create", "namespace", NAMESPACE)
    sh.run("kubectl", "apply", "-f", "-", input=DEPLOYMENT)

    step("Create the CanaryGate and the Flagger Canary it renders (webhooks point at the sidecar)")
    print(CANARYGATE.rstrip())
    sh.run("kubectl", "gate", "apply", "-f", "-", "--endpoint", sidecar.url, input=CANARYGATE)
    sh.run(
        "kubectl",
        "wait",
        "canary/demo",
        *gate,
        "--for=jsonpath={.status.phase}=Initialized",
        f"--timeout={STEP_TIMEOUT}",
    )
    sh.run("kubectl", "gate", "list", "-A")

    step("Release version 2: Flagger waits for approval at confirm-rollout")
    sh.run("kubectl", "set", "image", "deployment/demo", "demo=ghcr.io/stefanprodan/podinfo:6.0.1", *gate)
    sh.run(
        "kubectl", "gate", "wait", "demo", *gate, "--for", "gate=confirm-rollout", "--fresh", "--timeout", STEP_TIMEOUT
    )
    sh.run("kubectl", "gate", "show", "demo", *gate)

    step("Approve the rollout: open confirm-rollout (for this rollout only)")
    sh.run("kubectl", "gate", "open", "confirm-rollout", "demo", *gate, "--reason", "CAB-42 approved")

    step("Traffic steps up to max weight, then waits at confirm-promotion")
    sh.run("kubectl", "gate", "wait", "demo", *gate, "--for", "gate=confirm-promotion", "--timeout", STEP_TIMEOUT)
    sh.run("kubectl", "get", "canaries", *gate)
    sh.run("kubectl", "gate", "show", "demo", *gate)

    step("Promote: open the gate holding the rollout, for one step")
    sh.run("kubectl", "gate", "promote", "demo", *gate, "--reason", "metrics look good")
    sh.run("kubectl", "gate", "wait", "demo", *gate, "--for", "promoted", "--timeout", STEP_TIMEOUT)
    sh.run("kubectl", "get", "canaries", *gate)

    step("The approval ended with its rollout: the next release waits again")
    sh.run("kubectl", "gate", "show", "demo", *gate)

    step("Release version 3, let it start, then abort it")
    sh.run("kubectl", "set", "image", "deployment/demo", "demo=ghcr.io/stefanprodan/podinfo:6.0.2", *gate)
    sh.run(
        "kubectl", "gate", "wait", "demo", *gate, "--for", "gate=confirm-rollout", "--fresh", "--timeout", STEP_TIMEOUT
    )
    sh.run("kubectl", "gate", "promote", "demo", *gate)
    sh.run(
        "kubectl", "wait", "canary/demo", *gate, "--for=jsonpath={.status.canaryWeight}=10", f"--timeout={STEP_TIMEOUT}"
    )
    sh.run("kubectl", "gate", "abort", "demo", *gate, "--reason", "error budget burning")
    sh.run("kubectl", "gate", "wait", "demo", *gate, "--for", "failed", "--timeout", STEP_TIMEOUT)
    sh.run("kubectl", "get", "canaries", *gate)
    sh.run("kubectl", "get", "deployments", *gate, "-o", "wide")

    step("Who did what: the Events on the CanaryGate")
    sh.run(
        "kubectl",
        "get",
        "events",
        *gate,
        "--field-selector",
        "involvedObject.kind=CanaryGate",
        "-o",
        "custom-columns=REASON:.reason,MESSAGE:.message",
    )
    sh.run("kubectl", "gate", "list", "-A")
    print("\nDemo complete: version 2 was approved, stepped and promoted; version 3 was aborted and rolled back.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, TimeoutError) as e:
        print(f"\ndemo failed: {e}", file=sys.stderr)
        sys.exit(1)
