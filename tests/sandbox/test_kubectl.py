"""Real kubectl 1.37 (the virtualenv's, never the one on PATH) against the API.

Covers what a user sees (printed output and exit code) for: ``apply -f`` of the
CRDs and the seed's CanaryGate (created / unchanged / configured), ``get -A`` with
the printer columns, ``get -o yaml``, ``annotate``, ``patch`` with an invalid value
(422 message), ``delete`` (and NotFound), ``create namespace`` (protobuf body),
``auth whoami`` and ``auth can-i`` for the admin and a restricted token, and
``wait --for=jsonpath=...`` (met, and timing out).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from pathlib import Path

import kubernetes
import pytest
import yaml
from helpers.rbac import wait_allowed

pytestmark = pytest.mark.kubectl
ROOT = Path(__file__).resolve().parents[2]
CRD_FILES = (ROOT / "deploy" / "crd" / "canarygate.yaml", ROOT / "canarygate" / "data" / "flagger-canary-crd.yaml")
SEED = ROOT / "tests" / "data" / "seed-demo.yaml"
SCENARIOS = ROOT / "tests" / "data" / "seed-scenarios.yaml"
G, V, P = "piggysec.com", "v1alpha1", "canarygates"


@pytest.fixture
def demo(kubectl, crds, namespace):
    """The seed's CanaryGate, applied with kubectl in the test's namespace."""
    out = kubectl("apply", "-n", namespace, "-f", str(SEED))
    assert out.stdout.strip() == "canarygate.piggysec.com/demo created"
    return namespace


def test_apply_crds(kubectl, crds):
    out = kubectl("apply", *(arg for path in CRD_FILES for arg in ("-f", str(path))))
    assert re.fullmatch(
        r"customresourcedefinition\.apiextensions\.k8s\.io/canarygates\.piggysec\.com "
        r"(created|configured|unchanged)\n"
        r"customresourcedefinition\.apiextensions\.k8s\.io/canaries\.flagger\.app "
        r"(created|configured|unchanged)\n",
        out.stdout,
    )


def test_apply_seed_created_unchanged_configured(kubectl, demo):
    again = kubectl("apply", "-n", demo, "-f", str(SEED))
    assert again.stdout.strip() == "canarygate.piggysec.com/demo unchanged"
    promotion_closed = list(yaml.safe_load_all(SCENARIOS.read_text()))[1]
    changed = kubectl("apply", "-n", demo, "-f", "-", input=yaml.safe_dump(promotion_closed))
    assert changed.stdout.strip() == "canarygate.piggysec.com/demo configured"
    got = yaml.safe_load(kubectl("get", "canarygate", "demo", "-n", demo, "-o", "yaml").stdout)
    assert got["spec"]["confirm-promotion"] == "closed"


def test_get_all_namespaces_shows_printer_columns(kubectl, api_client, demo):
    kubernetes.client.CustomObjectsApi(api_client).patch_namespaced_custom_object_status(
        G,
        V,
        demo,
        P,
        "demo",
        {"status": {"target": "demo-ns/demo", "phase": "Waiting", "canaryWeight": 0, "closedGates": "confirm-rollout"}},
    )
    out = kubectl("get", "canarygates", "-A")
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "TARGET", "PHASE", "WEIGHT", "HOLDING", "CLOSED", "AGE"]
    row = next(line.split() for line in lines[1:] if line.startswith(demo + " "))
    assert row[:5] == [demo, "demo", "demo-ns/demo", "Waiting", "0"]
    assert row[5] == "confirm-rollout" and re.fullmatch(r"\d+s", row[6])


def test_get_yaml(kubectl, demo):
    out = kubectl("get", "canarygate", "demo", "-n", demo, "-o", "yaml")
    got = yaml.safe_load(out.stdout)
    assert got["apiVersion"] == "piggysec.com/v1alpha1" and got["kind"] == "CanaryGate"
    assert got["metadata"]["name"] == "demo" and got["metadata"]["namespace"] == demo
    assert got["spec"] == yaml.safe_load(SEED.read_text())["spec"]
    assert "managedFields" not in got["metadata"]


def test_annotate(kubectl, api_client, demo):
    out = kubectl("annotate", "canarygate", "demo", "-n", demo, "example.com/reason=testing")
    assert out.stdout.strip() == "canarygate.piggysec.com/demo annotated"
    obj = kubernetes.client.CustomObjectsApi(api_client).get_namespaced_custom_object(G, V, demo, P, "demo")
    assert obj["metadata"]["annotations"]["example.com/reason"] == "testing"


def test_invalid_value_is_refused(kubectl, demo):
    out = kubectl(
        "patch", "canarygate", "demo", "-n", demo, "--type=merge", "-p", '{"spec":{"rollout":"maybe"}}', check=False
    )
    assert out.returncode == 1
    assert out.stderr.strip() == (
        'The CanaryGate "demo" is invalid: spec.rollout: Unsupported value: "maybe": '
        'supported values: "opened", "closed"'
    )


def test_delete(kubectl, demo):
    out = kubectl("delete", "canarygate", "demo", "-n", demo)
    assert out.stdout.strip() == f'canarygate.piggysec.com "demo" deleted from {demo} namespace'
    again = kubectl("delete", "canarygate", "demo", "-n", demo, check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == 'Error from server (NotFound): canarygates.piggysec.com "demo" not found'


def test_create_namespace_sends_protobuf(kubectl, api_client):
    name = f"t-kubectl-ns-{uuid.uuid4().hex[:6]}"
    out = kubectl("create", "namespace", name)
    assert out.stdout.strip() == f"namespace/{name} created"
    kubernetes.client.CoreV1Api(api_client).delete_namespace(name)


def test_wait_for_jsonpath(kubectl, api_client, demo):
    co = kubernetes.client.CustomObjectsApi(api_client)

    def open_later():
        time.sleep(0.5)
        co.patch_namespaced_custom_object(G, V, demo, P, "demo", {"spec": {"confirm-rollout": "opened"}})

    t = threading.Thread(target=open_later)
    t.start()
    out = kubectl(
        "wait", "--for=jsonpath={.spec.confirm-rollout}=opened", "canarygate/demo", "-n", demo, "--timeout=20s"
    )
    t.join()
    assert out.stdout.strip() == "canarygate.piggysec.com/demo condition met"
    # already true: answered from the initial events, with no change to the object
    before = co.get_namespaced_custom_object(G, V, demo, P, "demo")["metadata"]["resourceVersion"]
    again = kubectl(
        "wait", "--for=jsonpath={.spec.confirm-rollout}=opened", "canarygate/demo", "-n", demo, "--timeout=20s"
    )
    assert again.stdout.strip() == "canarygate.piggysec.com/demo condition met"
    assert co.get_namespaced_custom_object(G, V, demo, P, "demo")["metadata"]["resourceVersion"] == before
    late = kubectl(
        "wait", "--for=jsonpath={.spec.rollout}=closed", "canarygate/demo", "-n", demo, "--timeout=1s", check=False
    )
    assert late.returncode == 1
    assert late.stderr.strip() == "error: timed out waiting for the condition on canarygates/demo"


def test_auth_whoami_admin(kubectl, apiserver):
    out = kubectl("auth", "whoami")
    lines = [line.split(None, 1) for line in out.stdout.splitlines()]
    assert lines[0] == ["ATTRIBUTE", "VALUE"]
    assert ["Username", "admin"] in lines
    assert ["Groups", "[system:masters system:authenticated]"] in lines


@pytest.fixture
def bob_kubeconfig(apiserver, tmp_path):
    token = f"bob-{uuid.uuid4().hex}"
    apiserver.add_token(token, "bob", ["devs"])
    return apiserver.write_kubeconfig(tmp_path / "bob.yaml", token=token)


def test_auth_whoami_restricted(kubectl, bob_kubeconfig):
    out = kubectl("auth", "whoami", kubeconfig=str(bob_kubeconfig))
    lines = [line.split(None, 1) for line in out.stdout.splitlines()]
    assert ["Username", "bob"] in lines and ["Groups", "[devs system:authenticated]"] in lines


def test_auth_can_i(kubectl, api_client, crds, namespace, bob_kubeconfig):
    assert kubectl("auth", "can-i", "patch", "canarygates", "-n", namespace).stdout.strip() == "yes"
    denied = kubectl(
        "auth", "can-i", "patch", "canarygates", "-n", namespace, kubeconfig=str(bob_kubeconfig), check=False
    )
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(
        namespace,
        {"metadata": {"name": "opener"}, "rules": [{"apiGroups": [G], "resources": [P], "verbs": ["get", "patch"]}]},
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "bob"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "opener"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}],
        },
    )
    wait_allowed(str(bob_kubeconfig), namespace=namespace, verb="patch", group=G, resource=P)
    allowed = kubectl("auth", "can-i", "patch", "canarygates", "-n", namespace, kubeconfig=str(bob_kubeconfig))
    assert allowed.stdout.strip() == "yes"
    elsewhere = kubectl(
        "auth", "can-i", "patch", "canarygates", "-n", "default", kubeconfig=str(bob_kubeconfig), check=False
    )
    assert (elsewhere.returncode, elsewhere.stdout.strip()) == (1, "no")
    forbidden = kubectl("delete", "canarygate", "x", "-n", namespace, kubeconfig=str(bob_kubeconfig), check=False)
    assert forbidden.returncode == 1
    assert forbidden.stderr.strip() == (
        f'Error from server (Forbidden): canarygates.piggysec.com "x" is forbidden: User "bob" cannot delete '
        f'resource "canarygates" in API group "piggysec.com" in the namespace "{namespace}"'
    )


def test_create_deployment_and_set_image(kubectl, namespace):
    created = kubectl("create", "deployment", "web", "--image=nginx:1.26", "-n", namespace)
    assert created.stdout.strip() == "deployment.apps/web created"
    updated = kubectl("set", "image", "deployment/web", "nginx=nginx:1.27", "-n", namespace)
    assert updated.stdout.strip() == "deployment.apps/web image updated"
    image = kubectl(
        "get", "deployment", "web", "-n", namespace, "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    )
    assert image.stdout == "nginx:1.27"
