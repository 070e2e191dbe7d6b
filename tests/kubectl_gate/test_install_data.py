"""kubectl gate install ships the deploy/ manifests as package data (a Python module, so it ships in
the wheel and the PyInstaller binary without package-data rules). Covers: the generated module is
identical to deploy/ (regenerate with KUBECTL_GATE_REGENERATE=1), and install renders them with the
namespace, image and Flagger-namespace flags.
"""

from __future__ import annotations

import os
import pathlib
import pprint

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULE = ROOT / "kubectl_gate" / "data" / "manifests.py"
#: In the order of deploy/sidecar/kustomization.yaml, the CRD first.
SOURCES = (
    "deploy/crd/canarygate.yaml",
    "deploy/sidecar/namespace.yaml",
    "deploy/sidecar/serviceaccount.yaml",
    "deploy/sidecar/clusterrole.yaml",
    "deploy/sidecar/clusterrolebinding.yaml",
    "deploy/sidecar/deployment.yaml",
    "deploy/sidecar/poddisruptionbudget.yaml",
    "deploy/sidecar/service.yaml",
    "deploy/sidecar/networkpolicy.yaml",
)


def generate() -> str:
    files = {name: (ROOT / name).read_text() for name in SOURCES}
    return (
        '"""GENERATED from deploy/ by tests/kubectl_gate/test_install_data.py: do not edit.\n\n'
        "Regenerate: KUBECTL_GATE_REGENERATE=1 .venv/bin/pytest tests/kubectl_gate/test_install_data.py\n"
        '"""\n\n'
        f"FILES = {pprint.pformat(files, width=100, sort_dicts=False)}\n"
    )


def test_shipped_manifests_match_deploy():
    text = generate()
    if os.environ.get("KUBECTL_GATE_REGENERATE"):
        MODULE.write_text(text)
    assert MODULE.read_text() == text, "kubectl_gate/data/manifests.py is stale: regenerate it (see its docstring)"


def test_install_prints_the_manifests_with_flags(invoke):
    result = invoke(
        ["install", "--namespace", "gates", "--image", "example.org/gate:9", "--flagger-namespace", "flagger"]
    )
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    kinds = [d["kind"] for d in docs]
    assert kinds == [
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "NetworkPolicy",
    ]
    by_kind = {d["kind"]: d for d in docs}
    assert by_kind["Namespace"]["metadata"]["name"] == "gates"
    for kind in ("ServiceAccount", "Deployment", "PodDisruptionBudget", "Service", "NetworkPolicy"):
        assert by_kind[kind]["metadata"]["namespace"] == "gates"
    assert "namespace" not in by_kind["ClusterRole"]["metadata"]
    assert by_kind["ClusterRoleBinding"]["subjects"][0]["namespace"] == "gates"
    container = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "example.org/gate:9"
    selector = by_kind["NetworkPolicy"]["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
    assert selector == {"kubernetes.io/metadata.name": "flagger"}
    assert "kubectl gate apply" in result.stderr or result.stderr == ""


def test_install_defaults_match_deploy(invoke):
    result = invoke(["install"])
    assert result.exit_code == 0, result.output
    docs = {d["kind"]: d for d in yaml.safe_load_all(result.stdout)}
    deploy = yaml.safe_load((ROOT / "deploy/sidecar/deployment.yaml").read_text())
    assert (
        docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
        == (deploy["spec"]["template"]["spec"]["containers"][0]["image"])
    )
    assert docs["Namespace"]["metadata"]["name"] == "canary-gate"
