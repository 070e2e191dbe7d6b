"""For the RBAC and admission tests: ``kubectl`` and ``kubectl gate`` run as the user of a kubeconfig,
and the plain demo CanaryGate they create, change and delete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def demo_canarygate(name: str, namespace: str, target_ns: str | None = None) -> dict:
    """CanaryGate ``name`` in ``namespace``, confirm-promotion closed, targeting Deployment ``name``
    (in ``target_ns``, by default its own namespace)."""
    return {
        "apiVersion": "piggysec.com/v1alpha1",
        "kind": "CanaryGate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "confirm-promotion": "closed",
            "target": {"namespace": target_ns or namespace, "name": name},
            "flagger": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "service": {"port": 8080},
                "analysis": {"interval": "10s", "threshold": 2, "maxWeight": 40, "stepWeight": 10},
            },
        },
    }


class AsUser:
    """A base for a test's bench: runs commands in its namespace ``ns`` with a user's kubeconfig,
    never failing on a refusal (the tests read the exit code and stderr); ``kubectl_fixture`` is
    the session's ``kubectl`` fixture."""

    ns: str
    kubectl_fixture: Any

    def kubectl(self, config: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:  # noqa: A002
        return self.kubectl_fixture(*args, "-n", self.ns, kubeconfig=config, input=input, check=False)

    def gate(self, config: str, *args: str) -> subprocess.CompletedProcess:
        """The virtualenv's ``kubectl-gate ARGS -n NS --kubeconfig CONFIG``."""
        return subprocess.run(
            [str(BIN / "kubectl-gate"), *args, "-n", self.ns, "--kubeconfig", config],
            capture_output=True,
            text=True,
            timeout=60,
        )
