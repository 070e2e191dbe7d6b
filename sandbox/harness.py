"""The sandbox API set up for ``kubectl gate`` as the repository's tools run it (packaging/smoke.py,
benchmarks/cli.py): the CanaryGate and Flagger Canary CRDs installed, a namespace, a kubeconfig, and
a CanaryGate document to apply. The CRDs are read from the files the product ships (data, not code:
the sandbox still imports nothing of the product).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRD_FILES = (ROOT / "deploy" / "crd" / "canarygate.yaml", ROOT / "canarygate" / "data" / "flagger-canary-crd.yaml")


def prepare(server, namespace: str, kubeconfig: Path) -> Path:
    """Install both CRDs and ``namespace`` on ``server`` (a running :class:`sandbox.apiserver.ApiServer`);
    returns the kubeconfig written at ``kubeconfig``, ``namespace`` its default."""
    import yaml  # deferred: the smoke test's offline checks run without it

    for path in CRD_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                server.apply(doc)
    server.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    return Path(server.write_kubeconfig(kubeconfig, namespace=namespace))


def canarygate_yaml(name: str, namespace: str) -> str:
    """A CanaryGate ``name`` whose Canary (same name and namespace) waits at confirm-promotion."""
    return f"""\
apiVersion: piggysec.com/v1alpha1
kind: CanaryGate
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  confirm-promotion: closed
  target: {{namespace: {namespace}, name: {name}}}
  flagger:
    targetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
    service: {{port: 8080}}
    analysis: {{interval: 10s, threshold: 2, maxWeight: 40, stepWeight: 10}}
"""
