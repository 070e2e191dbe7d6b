"""Installing the customizations as deploy/argocd/README.md says: real kubectl, the sandbox API server.

We test these aspects: ``kubectl patch configmap argocd-cm --type merge --patch-file`` adds the
health and actions keys to an existing argocd-cm and keeps what it held; the keys' values are the
scripts as built; patching again changes nothing.
"""

from __future__ import annotations

import json

import argocd_cm
import kubernetes
import pytest

pytestmark = pytest.mark.kubectl


@pytest.fixture
def argocd_namespace(api_client):
    core = kubernetes.client.CoreV1Api(api_client)
    try:
        core.read_namespace("argocd")
        pytest.skip("namespace argocd already exists on this cluster: not touching it")
    except kubernetes.client.ApiException as e:
        if e.status != 404:
            raise
    core.create_namespace({"metadata": {"name": "argocd", "labels": {"sandbox.test/owner": "pytest"}}})
    yield "argocd"
    core.delete_namespace("argocd")


def test_the_readme_command_merges_the_customizations_into_argocd_cm(kubectl, argocd_namespace):
    existing = {
        "url": "https://argocd.example.com",
        "resource.customizations.health.flagger.app_Canary": "hs = {}\nreturn hs\n",
    }
    kubectl(
        "-n",
        argocd_namespace,
        "create",
        "configmap",
        "argocd-cm",
        *(f"--from-literal={k}={v}" for k, v in existing.items()),
    )
    patch = [
        "-n",
        argocd_namespace,
        "patch",
        "configmap",
        "argocd-cm",
        "--type",
        "merge",
        "--patch-file",
        str(argocd_cm.CONFIGMAP),
    ]
    assert "patched" in kubectl(*patch).stdout
    data = json.loads(kubectl("-n", argocd_namespace, "get", "configmap", "argocd-cm", "-o", "json").stdout)["data"]
    assert {k: data[k] for k in existing} == existing
    scripts = argocd_cm.scripts()
    assert data[argocd_cm.HEALTH_KEY] == scripts["health"]
    assert "discovery.lua: |" in data[argocd_cm.ACTIONS_KEY]
    assert "no change" in kubectl(*patch).stdout
