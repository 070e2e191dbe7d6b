"""kubectl gate install and apply's schema check read deploy/ as package data (kubectl_gate/data/deploy
links to it). Covers: what install prints is deploy/sidecar's kustomization in its order, each
document the deploy/ file's own (flags aside); the CRD apply validates against is deploy/'s; the
wheel built from the tree carries those files byte for byte and, installed alone, prints them;
install renders them with the namespace, image and Flagger-namespace flags.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest
import yaml

from kubectl_gate import data, validation

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: In the order of deploy/sidecar/kustomization.yaml, the CRD (../crd) first.
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


def test_the_shipped_files_are_deploys_in_kustomization_order():
    assert data.manifest_paths() == list(SOURCES)
    for path in SOURCES:
        assert data.read(path) == (ROOT / path).read_text()


def test_install_prints_deploys_documents(invoke):
    result = invoke(["install"])
    assert result.exit_code == 0, result.output
    printed = list(yaml.safe_load_all(result.stdout))
    expected = [doc for path in SOURCES for doc in yaml.safe_load_all((ROOT / path).read_text()) if doc]
    assert len(printed) == len(expected)
    for got, want in zip(printed, expected, strict=True):
        # install adds what kustomize would (deploy/sidecar/kustomization.yaml): the part-of label and
        # the namespace; everything else is the file's
        meta = dict(got["metadata"])
        labels = dict(meta.pop("labels", {}))
        if want["kind"] != "CustomResourceDefinition":
            assert labels.pop("app.kubernetes.io/part-of") == "canary-gate"
        if want["kind"] != "Namespace":
            meta.pop("namespace", None)
        want_meta = {k: v for k, v in want["metadata"].items() if k != "namespace"}
        want_labels = want_meta.pop("labels", {})
        assert (meta, labels) == (want_meta, want_labels)
        assert {k: v for k, v in got.items() if k != "metadata"} == {k: v for k, v in want.items() if k != "metadata"}


def test_apply_validates_against_deploys_crd():
    assert validation.crd() == yaml.safe_load((ROOT / "deploy/crd/canarygate.yaml").read_text())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    """The wheel ``make python-dist`` builds (PEP 517, isolated: the pinned setuptools), from this tree."""
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = out.glob("canary_gate-*.whl")
    return built


def test_the_wheel_carries_deploys_files(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for path in SOURCES:
            assert zf.read(f"kubectl_gate/data/{path}") == (ROOT / path).read_bytes(), path
    assert "kubectl_gate/data/manifests.py" not in names
    assert "kubectl_gate/data/completion.json" in names


def test_the_installed_wheel_prints_deploys_crd(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )
    probe = (
        "import sys, kubectl_gate\n"
        f"assert kubectl_gate.__file__.startswith({str(target)!r}), kubectl_gate.__file__\n"
        "from kubectl_gate.cli import main\n"
        "main(['install', '--crd-only'])"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    crd = yaml.safe_load((ROOT / "deploy/crd/canarygate.yaml").read_text())
    assert yaml.safe_load(proc.stdout) == crd


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
