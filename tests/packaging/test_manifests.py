"""Static checks of the deploy manifests (deploy/sidecar, its reconcile component, deploy/flagger-pod).

Covers:
- every YAML file under deploy/sidecar and deploy/flagger-pod parses;
- each kustomization lists every YAML file in its folder (and nothing that does not exist),
  and the CRD is referenced from deploy/crd, not copied;
- the sidecar ClusterRole grants exactly the rules the design allows: no wildcard, no secrets,
  nothing beyond CanaryGates, Canaries (read) and Events; the reconciler role adds only
  create/update/patch on canaries; the Flagger-pod role equals the sidecar role;
- the ClusterRoleBindings bind those roles to the right service accounts;
- the Deployment's pod and container securityContext, resources (no larger than
  10m/32Mi requests and 100m/128Mi limits), probes (/healthz, /readyz on the probe port, 8081;
  8082 in Flagger's pod, whose webhook port listens on 127.0.0.1 only),
  the /tmp emptyDir, the token mount and the service links setting;
- the Service maps port 80 to the container port 8080, named http;
- the NetworkPolicy admits ingress only from Flagger's namespace, only to port 8080;
- the Flagger-pod patch adds a container that does not clash with Flagger's port 8080;
- with the virtualenv's real kubectl, `kubectl kustomize` builds deploy/sidecar, the
  reconcile component and the Flagger-pod component, and the built output keeps the above.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SIDECAR = DEPLOY / "sidecar"
RECONCILE = SIDECAR / "reconcile"
FLAGGER_POD = DEPLOY / "flagger-pod"
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"

SIDECAR_RULES = {
    ("piggysec.com", "canarygates"): {"get", "list", "watch", "patch"},
    ("piggysec.com", "canarygates/status"): {"patch"},
    ("flagger.app", "canaries"): {"get", "list", "watch"},
    ("apps", "deployments"): {"get"},
    ("", "configmaps"): {"get"},
    ("", "events"): {"create"},
}
RECONCILER_RULES = {("flagger.app", "canaries"): {"create", "update", "patch"}}
TRACK_SECRETS = SIDECAR / "track-secrets"


def load_all(path: pathlib.Path) -> list[dict]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load_one(path: pathlib.Path) -> dict:
    docs = load_all(path)
    assert len(docs) == 1, f"{path} should hold exactly one document"
    return docs[0]


def flatten_rules(role: dict) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs; fails on anything a flat table cannot express."""
    table: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, (
            f"unexpected rule keys (resourceNames/nonResourceURLs?): {rule}"
        )
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                table.setdefault((group, resource), set()).update(rule["verbs"])
    return table


def assert_no_wildcards_or_secrets(role: dict) -> None:
    for rule in role["rules"]:
        for key in ("apiGroups", "resources", "verbs"):
            for value in rule.get(key, []):
                assert "*" not in value, f"wildcard in {role['metadata']['name']}: {rule}"
        assert "secrets" not in rule.get("resources", []), f"secrets granted: {rule}"
        assert "nonResourceURLs" not in rule


def by_kind(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def yaml_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))


# --- parsing and kustomization coverage -------------------------------------------------------

ALL_YAML = sorted(p for folder in (SIDECAR, RECONCILE, FLAGGER_POD, DEPLOY / "crd") for p in yaml_files(folder))


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_parses(path: pathlib.Path) -> None:
    docs = load_all(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        if isinstance(doc, list):  # a JSON 6902 patch: a list of operations
            assert path.name.endswith("-patch.yaml") and all({"op", "path"} <= op.keys() for op in doc)
        else:
            assert isinstance(doc, dict) and {"apiVersion", "kind"} <= doc.keys(), path


@pytest.mark.parametrize("folder", [SIDECAR, RECONCILE, FLAGGER_POD], ids=lambda p: p.name)
def test_kustomization_lists_every_file_in_its_folder(folder: pathlib.Path) -> None:
    kust = load_one(folder / "kustomization.yaml")
    listed_files = set(kust.get("resources", [])) | {p["path"] for p in kust.get("patches", []) if "path" in p}
    local = {p.name for p in yaml_files(folder)} - {"kustomization.yaml"}
    listed_local = {entry for entry in listed_files if "/" not in entry}
    assert listed_local == local, f"not listed: {local - listed_local}; listed but absent: {listed_local - local}"
    for entry in listed_files - listed_local:  # references to other kustomization directories
        target = (folder / entry).resolve()
        assert target.is_dir() and (target / "kustomization.yaml").is_file(), entry


def test_sidecar_kustomization_references_the_crd_without_copying_it() -> None:
    kust = load_one(SIDECAR / "kustomization.yaml")
    assert kust["namespace"] == "canary-gate"
    assert "../crd" in kust["resources"]
    assert load_one(DEPLOY / "crd" / "kustomization.yaml")["resources"] == ["canarygate.yaml"]
    for folder in (SIDECAR, RECONCILE, FLAGGER_POD):
        for path in yaml_files(folder):
            for doc in load_all(path):
                assert not (isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"), path


def test_reconcile_and_flagger_pod_are_components() -> None:
    for folder in (RECONCILE, FLAGGER_POD):
        kust = load_one(folder / "kustomization.yaml")
        assert (kust["apiVersion"], kust["kind"]) == ("kustomize.config.k8s.io/v1alpha1", "Component")


# --- RBAC ---------------------------------------------------------------------------------------


def test_sidecar_clusterrole_grants_exactly_the_allowed_rules() -> None:
    role = load_one(SIDECAR / "clusterrole.yaml")
    assert role["kind"] == "ClusterRole" and role["metadata"]["name"] == "canary-gate-sidecar"
    assert_no_wildcards_or_secrets(role)
    assert flatten_rules(role) == SIDECAR_RULES


def test_reconciler_clusterrole_adds_only_canary_writes() -> None:
    role = load_one(RECONCILE / "clusterrole.yaml")
    assert role["kind"] == "ClusterRole" and role["metadata"]["name"] == "canary-gate-reconciler"
    assert_no_wildcards_or_secrets(role)
    assert flatten_rules(role) == RECONCILER_RULES


def test_track_secrets_component_adds_only_get_on_secrets() -> None:
    role = load_one(TRACK_SECRETS / "clusterrole.yaml")
    assert [(r["apiGroups"], r["resources"], r["verbs"]) for r in role["rules"]] == [([""], ["secrets"], ["get"])]
    binding = load_one(TRACK_SECRETS / "clusterrolebinding.yaml")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "canary-gate-sidecar", "namespace": "canary-gate"}
    ]


def test_flagger_pod_clusterrole_equals_the_sidecar_role() -> None:
    role = load_one(FLAGGER_POD / "clusterrole.yaml")
    assert_no_wildcards_or_secrets(role)
    assert flatten_rules(role) == SIDECAR_RULES


@pytest.mark.parametrize(
    "path, role, sa, ns",
    [
        (SIDECAR / "clusterrolebinding.yaml", "canary-gate-sidecar", "canary-gate-sidecar", "canary-gate"),
        (RECONCILE / "clusterrolebinding.yaml", "canary-gate-reconciler", "canary-gate-sidecar", "canary-gate"),
        (FLAGGER_POD / "clusterrolebinding.yaml", "canary-gate-flagger-sidecar", "flagger", "flagger-system"),
    ],
    ids=["sidecar", "reconciler", "flagger-pod"],
)
def test_bindings(path: pathlib.Path, role: str, sa: str, ns: str) -> None:
    binding = load_one(path)
    assert binding["kind"] == "ClusterRoleBinding"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]


def test_service_account_is_the_one_the_deployment_uses() -> None:
    sa = load_one(SIDECAR / "serviceaccount.yaml")
    deployment = load_one(SIDECAR / "deployment.yaml")
    assert sa["kind"] == "ServiceAccount"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]


# --- Deployment -------------------------------------------------------------------------------

MEM_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1, "k": 1e3, "M": 1e6, "G": 1e9}


def cpu(value: str | int) -> float:
    value = str(value)
    return float(value[:-1]) * 1e-3 if value.endswith("m") else float(value)


def memory(value: str | int) -> float:
    value = str(value)
    for suffix in ("Ki", "Mi", "Gi", "k", "M", "G"):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * MEM_UNITS[suffix]
    return float(value)


def test_quantity_parsers() -> None:
    assert cpu("10m") == pytest.approx(0.01) and cpu("1") == 1.0
    assert memory("32Mi") == 32 * 2**20 and memory("1G") == 1e9 and memory("128Mi") > memory("100M")


def check_container(container: dict, port: int, *, probe_port: int, host: str = "0.0.0.0") -> str:
    """Checks a gate-sidecar container; returns the name of the volume mounted at /tmp."""
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc.get("privileged", False) is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}

    res = container["resources"]
    assert cpu(res["requests"]["cpu"]) <= cpu("10m")
    assert memory(res["requests"]["memory"]) <= memory("32Mi")
    assert cpu(res["limits"]["cpu"]) <= cpu("100m")
    assert memory(res["limits"]["memory"]) <= memory("128Mi")
    for key in ("cpu", "memory"):
        assert key in res["limits"], f"no {key} limit"

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probe_port_name = container["livenessProbe"]["httpGet"]["port"]
    assert ports[probe_port_name] == probe_port
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["httpGet"]["port"] == probe_port_name
    args = container["args"]
    assert args[args.index("--listen") + 1] == f"{host}:{port}"
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["GATE_SIDECAR_PROBE_LISTEN"] == f"0.0.0.0:{probe_port}"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts, "a read-only root needs a writable /tmp"
    return mounts["/tmp"]


def test_deployment_security_resources_and_probes() -> None:
    deployment = load_one(SIDECAR / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert pod["enableServiceLinks"] is False, "service links would inject GATE_SIDECAR_-like env vars"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"].startswith("ghcr.io/") and ":" in container["image"].rsplit("/", 1)[1]
    tmp_volume = check_container(container, 8080, probe_port=8081)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[tmp_volume]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_service_maps_80_to_8080_named_http() -> None:
    service = load_one(SIDECAR / "service.yaml")
    deployment = load_one(SIDECAR / "deployment.yaml")
    (port,) = service["spec"]["ports"]
    assert port["name"] == "http" and port["port"] == 80
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    target = port["targetPort"]
    assert (named[target] if isinstance(target, str) else target) == 8080
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_networkpolicy_admits_only_flaggers_namespace_to_8080() -> None:
    policy = load_one(SIDECAR / "networkpolicy.yaml")
    deployment = load_one(SIDECAR / "deployment.yaml")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["podSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (rule,) = spec["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "flagger-system"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]


def test_reconcile_patch_adds_the_flag() -> None:
    patch = load_one(RECONCILE / "deployment-patch.yaml")
    assert patch == [{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--reconcile"}]


def test_flagger_pod_patch_adds_a_hardened_container_off_flaggers_port() -> None:
    patch = load_one(FLAGGER_POD / "flagger-deployment-patch.yaml")
    assert (patch["kind"], patch["metadata"]["name"]) == ("Deployment", "flagger")
    pod = patch["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] != "flagger", "must add a container, not replace Flagger's"
    tmp_volume = check_container(container, 8081, probe_port=8082, host="127.0.0.1")
    assert {p["containerPort"] for p in container["ports"]}.isdisjoint({8080}), "Flagger listens on 8080"
    assert {v["name"] for v in pod["volumes"]} == {tmp_volume}
    sidecar = load_one(SIDECAR / "deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == sidecar["image"]


# --- real kustomize build -------------------------------------------------------------------

needs_kubectl = pytest.mark.skipif(
    not os.access(KUBECTL, os.X_OK), reason=f"{KUBECTL} not installed (pip install -e '.[test]')"
)


def kustomize(path: pathlib.Path) -> list[dict]:
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def overlay(tmp_path: pathlib.Path, resources: list[str], components: list[pathlib.Path]) -> pathlib.Path:
    rel = [os.path.relpath(c, tmp_path) for c in components]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({"resources": resources, "components": rel}))
    return tmp_path


@pytest.mark.kubectl
@needs_kubectl
def test_kubectl_kustomize_builds_the_sidecar() -> None:
    docs = kustomize(SIDECAR)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "Namespace",
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "NetworkPolicy",
        ]
    )
    for doc in docs:
        if doc["kind"] in ("ServiceAccount", "Deployment", "PodDisruptionBudget", "Service", "NetworkPolicy"):
            assert doc["metadata"]["namespace"] == "canary-gate", doc["kind"]
        if doc["kind"] in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"):
            assert "namespace" not in doc["metadata"], doc["kind"]
    assert flatten_rules(by_kind(docs, "ClusterRole")) == SIDECAR_RULES
    sa = by_kind(docs, "ServiceAccount")
    assert by_kind(docs, "ClusterRoleBinding")["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "canary-gate"}
    ]
    assert by_kind(docs, "CustomResourceDefinition")["metadata"]["name"] == "canarygates.piggysec.com"


@pytest.mark.kubectl
@needs_kubectl
def test_kubectl_kustomize_builds_with_the_reconcile_component(tmp_path: pathlib.Path) -> None:
    rel = os.path.relpath(SIDECAR, tmp_path)
    docs = kustomize(overlay(tmp_path, [rel], [RECONCILE]))
    roles = {d["metadata"]["name"]: flatten_rules(d) for d in docs if d["kind"] == "ClusterRole"}
    assert roles == {"canary-gate-sidecar": SIDECAR_RULES, "canary-gate-reconciler": RECONCILER_RULES}
    args = by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["--listen", "0.0.0.0:8080", "--reconcile"]


@pytest.mark.kubectl
@needs_kubectl
def test_kubectl_kustomize_adds_the_sidecar_to_flaggers_pod(tmp_path: pathlib.Path) -> None:
    flagger = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "flagger", "namespace": "flagger-system"},
        "spec": {
            "selector": {"matchLabels": {"app": "flagger"}},
            "template": {
                "metadata": {"labels": {"app": "flagger"}},
                "spec": {
                    "serviceAccountName": "flagger",
                    "containers": [
                        {
                            "name": "flagger",
                            "image": "ghcr.io/fluxcd/flagger:1.40.0",
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ],
                },
            },
        },
    }
    (tmp_path / "flagger.yaml").write_text(yaml.safe_dump(flagger))
    docs = kustomize(overlay(tmp_path, ["flagger.yaml"], [FLAGGER_POD]))
    pod = by_kind(docs, "Deployment")["spec"]["template"]["spec"]
    assert sorted(c["name"] for c in pod["containers"]) == ["flagger", "gate-sidecar"]
    flagger_container = next(c for c in pod["containers"] if c["name"] == "flagger")
    assert flagger_container == flagger["spec"]["template"]["spec"]["containers"][0]
    all_ports = [p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])]
    assert len(all_ports) == len(set(all_ports)), f"port clash in Flagger's pod: {all_ports}"
    assert flatten_rules(by_kind(docs, "ClusterRole")) == SIDECAR_RULES
    assert by_kind(docs, "CustomResourceDefinition")["metadata"]["name"] == "canarygates.piggysec.com"
