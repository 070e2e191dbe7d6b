"""For the RBAC and admission tests: ``kubectl`` and ``kubectl gate`` run as the user of a kubeconfig,
and the plain demo CanaryGate they create, change and delete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers.rbac import wait_granted

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

    def can(self, config: str, verb: str, resource: str, namespace: str | None = None) -> bool:
        """``kubectl auth can-i VERB RESOURCE`` as that user, in ``namespace`` (default: the bench's);
        ``resource`` may name one object (``canaries.flagger.app/cross``)."""
        proc = self.kubectl_fixture(
            "auth", "can-i", verb, resource, "-n", namespace or self.ns, kubeconfig=config, check=False
        )
        return proc.stdout.strip() == "yes"

    def wait_can(self, config: str, verb: str, resource: str, namespace: str | None = None) -> None:
        """Return once the user may: RBAC bindings (and aggregation) take a moment to reach
        kube-apiserver's authorizer, which reads them from informers."""
        wait_granted(lambda: self.can(config, verb, resource, namespace), f"{verb} {resource}")
