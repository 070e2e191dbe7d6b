"""The example roles (deploy/roles) on the real API server: what each may and may not do.

Each role is installed under a name unique to this run (ClusterRoles are cluster-wide) and removed
after; users are tokens of the cluster's webhook, bound per namespace with RoleBindings. Every check
goes through real kubectl or ``kubectl gate`` as that user. The aggregation into the built-in
view/admin roles is checked through kube-controller-manager's clusterrole-aggregation.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from helpers.as_user import AsUser, demo_canarygate
from helpers.tiers import REAL

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def roles(apiserver, kubectl, crds):
    """deploy/roles/*.yaml under this run's names; shipped name -> installed name."""
    objects = []
    for path in sorted((ROOT / "deploy" / "roles").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    names = {}
    try:
        for obj in objects:
            names[obj["metadata"]["name"]] = obj["metadata"]["name"] = f"{obj['metadata']['name']}-{RUN}"
            apiserver.apply(obj)
        yield names
    finally:
        for name in names.values():
            kubectl("delete", "clusterrole", name, "--ignore-not-found", "--wait=false")


class Users(AsUser):
    def __init__(self, apiserver, kubectl, namespace, roles, tmp_path):
        self.apiserver, self.kubectl_fixture, self.ns, self.roles, self.tmp = (
            apiserver,
            kubectl,
            namespace,
            roles,
            tmp_path,
        )

    def make(self, name: str, role: str) -> str:
        """A kubeconfig for user ``name`` bound in the namespace to ClusterRole ``role`` (shipped or built-in)."""
        token = f"{name}-{uuid.uuid4().hex}"
        self.apiserver.add_token(token, name)
        self.apiserver.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{name}-{role}", "namespace": self.ns},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": self.roles.get(role, role),
                },
                "subjects": [{"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}],
            }
        )
        return self.apiserver.write_kubeconfig(self.tmp / f"{name}.kubeconfig", token=token, namespace=self.ns)

    def manifest(self, name: str = "demo") -> str:
        return yaml.safe_dump(demo_canarygate(name, self.ns))

    def apply_as(self, config: str, name: str = "demo") -> subprocess.CompletedProcess:
        path = self.tmp / f"{name}-{uuid.uuid4().hex[:4]}.yaml"
        path.write_text(self.manifest(name))
        return self.gate(config, "apply", "-f", str(path), "--endpoint", "http://canary-gate-sidecar.canary-gate")


@pytest.fixture
def users(apiserver, kubectl, kubeconfig, namespace, roles, tmp_path) -> Users:
    users = Users(apiserver, kubectl, namespace, roles, tmp_path)
    users.admin = kubeconfig
    proc = users.apply_as(kubeconfig)  # demo: CanaryGate + Canary, made by an admin
    assert proc.returncode == 0, proc.stderr
    return users


def test_viewer_sees_gates_and_changes_nothing(users):
    viewer = users.make("vera", "canary-gate-viewer")
    users.wait_can(viewer, "get", "canarygates.piggysec.com")
    for args in (("list",), ("show", "demo"), ("show", "demo", "-o", "json")):
        proc = users.gate(viewer, *args)
        assert proc.returncode == 0, proc.stderr
    assert "confirm-promotion" in users.gate(viewer, "show", "demo").stdout
    assert users.kubectl(viewer, "get", "canaries.flagger.app", "demo").returncode == 0
    refused = users.gate(viewer, "open", "confirm-promotion", "demo")
    assert refused.returncode == 1 and "vera may not change gates" in refused.stderr
    assert users.gate(viewer, "close", "rollback", "demo").returncode == 1
    assert users.apply_as(viewer, "other").returncode == 1
    assert users.kubectl(viewer, "annotate", "canarygate", "demo", "x=y").returncode != 0
    assert users.kubectl(viewer, "delete", "canarygate", "demo").returncode != 0
    assert not users.can(viewer, "approve", "canarygates.piggysec.com")
    assert (
        "gate.piggysec.com/confirm-promotion"
        not in users.kubectl(users.admin, "get", "canarygate", "demo", "-o", "json").stdout
    )


def test_approver_changes_gates_but_edits_nothing_else(users):
    approver = users.make("amir", "canary-gate-approver")
    users.wait_can(approver, "approve", "canarygates.piggysec.com")
    for args in (
        ("open", "confirm-promotion", "demo", "--reason", "CAB-9"),
        ("open", "confirm-rollout", "demo"),
        ("pause", "demo"),
        ("resume", "demo"),
        ("close", "confirm-rollout", "demo", "--sticky"),
    ):
        proc = users.gate(approver, *args)
        assert proc.returncode == 0, proc.stderr
    show = json.loads(users.gate(approver, "show", "demo", "-o", "json").stdout)
    assert "amir" in json.dumps(show)
    events = users.kubectl(approver, "get", "events", "--field-selector", "involvedObject.name=demo", "-o", "json")
    assert "amir opened confirm-promotion" in events.stdout
    # No new CanaryGates, no Canary writes, no deletes.
    assert users.apply_as(approver, "other").returncode == 1
    assert users.kubectl(approver, "delete", "canarygate", "demo").returncode != 0
    assert (
        users.kubectl(
            approver, "patch", "canaries.flagger.app", "demo", "--type", "merge", "-p", '{"spec":{"skipAnalysis":true}}'
        ).returncode
        != 0
    )
    assert not users.can(approver, "create", "canarygates.piggysec.com")
    assert not users.can(approver, "update", "canaries.flagger.app")


def test_release_manager_applies_approves_and_deletes(users):
    manager = users.make("rhea", "canary-gate-release-manager")
    users.wait_can(manager, "create", "canarygates.piggysec.com")
    proc = users.apply_as(manager, "payments")
    assert proc.returncode == 0, proc.stderr
    assert "canary.flagger.app/payments" in proc.stdout
    assert users.gate(manager, "open", "confirm-promotion", "payments").returncode == 0
    assert users.can(manager, "approve", "canarygates.piggysec.com")
    assert users.kubectl(manager, "delete", "canarygate", "payments").returncode == 0
    assert users.kubectl(manager, "delete", "canaries.flagger.app", "payments").returncode == 0
    # Nothing beyond the release objects: no Secrets, no RBAC.
    assert not users.can(manager, "get", "secrets")
    assert not users.can(manager, "create", "rolebindings")


@pytest.mark.skipif(
    not REAL,
    reason="the emulator has no built-in view/edit/admin roles and no clusterrole "
    "aggregation (kube-controller-manager's)",
)
def test_built_in_roles_get_what_fits_view_reads_edit_cannot_approve_admin_manages_releases(users):
    viewer = users.make("vic", "view")
    editor = users.make("eddie", "edit")
    admin = users.make("ada", "admin")
    users.wait_can(viewer, "list", "canarygates.piggysec.com")  # aggregated into view (and so edit, admin)
    users.wait_can(admin, "approve", "canarygates.piggysec.com")  # release manager aggregated into admin
    users.wait_can(editor, "list", "canarygates.piggysec.com")  # view aggregated into edit: a second pass
    assert users.gate(viewer, "show", "demo").returncode == 0
    assert users.gate(viewer, "open", "confirm-promotion", "demo").returncode == 1
    assert users.gate(editor, "show", "demo").returncode == 0
    assert not users.can(editor, "approve", "canarygates.piggysec.com")
    assert not users.can(editor, "patch", "canarygates.piggysec.com")
    assert users.gate(editor, "open", "confirm-promotion", "demo").returncode == 1
    assert users.gate(admin, "open", "confirm-promotion", "demo").returncode == 0
    proc = users.apply_as(admin, "checkout")
    assert proc.returncode == 0, proc.stderr
