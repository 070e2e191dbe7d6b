"""Contract: authentication by bearer token, RBAC authorization, self reviews.

Covers: an unknown token is 401; a token's user and groups (plus
system:authenticated) in SelfSubjectReview; a restricted user is refused with
kube-apiserver's 403 Status; Role/RoleBinding grants (verbs, resourceNames,
subresources) take effect at once; SelfSubjectAccessReview and
SelfSubjectRulesReview.  Tokens are minted by the ``apiserver`` fixture (the emulator's
token table, or tokens the real cluster's token webhook accepts); user names carry the test's
namespace, as a real cluster is shared.
"""

from __future__ import annotations

import json
import uuid

import kubernetes
import pytest
from helpers.rbac import wait_allowed
from kubernetes.client import ApiException

G, V, P = "piggysec.com", "v1alpha1", "canarygates"


def gate(name: str) -> dict:
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "CanaryGate",
        "metadata": {"name": name},
        "spec": {"target": {"namespace": "demo-ns", "name": name}},
    }


@pytest.fixture
def as_user(apiserver, tmp_path):
    """``as_user(name, groups)`` → an ApiClient authenticated with a fresh token for that user."""
    clients = []

    def make(username: str, groups=()) -> kubernetes.client.ApiClient:
        token = f"tok-{uuid.uuid4().hex}"
        apiserver.add_token(token, username, groups)
        path = apiserver.write_kubeconfig(tmp_path / f"{token}.yaml", token=token)
        client = kubernetes.config.new_client_from_config(config_file=str(path))
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


def test_unknown_token_is_401(apiserver, tmp_path):
    path = apiserver.write_kubeconfig(tmp_path / "bad.yaml", token="not-a-token")
    client = kubernetes.config.new_client_from_config(config_file=str(path))
    with pytest.raises(ApiException) as e:
        kubernetes.client.CoreV1Api(client).list_namespace()
    assert e.value.status == 401
    assert json.loads(e.value.body)["reason"] == "Unauthorized"


def test_self_subject_review_names_the_token_user(as_user):
    client = as_user("bob", ["devs"])
    review = kubernetes.client.AuthenticationV1Api(client).create_self_subject_review({})
    assert review.status.user_info.username == "bob"
    assert review.status.user_info.groups == ["devs", "system:authenticated"]


def test_restricted_user_is_forbidden_with_kube_message(as_user, crds, namespace):
    co = kubernetes.client.CustomObjectsApi(as_user("bob"))
    with pytest.raises(ApiException) as e:
        co.list_namespaced_custom_object(G, V, namespace, P)
    body = json.loads(e.value.body)
    assert (e.value.status, body["reason"], body["code"]) == (403, "Forbidden", 403)
    assert body["message"] == (
        f'canarygates.piggysec.com is forbidden: User "bob" cannot list resource '
        f'"canarygates" in API group "piggysec.com" in the namespace "{namespace}"'
    )
    assert body["details"] == {"group": G, "kind": P}


def test_role_binding_grants_take_effect(api_client, as_user, crds, namespace):
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    kubernetes.client.CustomObjectsApi(api_client).create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    kubernetes.client.CustomObjectsApi(api_client).create_namespaced_custom_object(G, V, namespace, P, gate("b"))
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "gate-opener"},
            "rules": [
                {"apiGroups": [G], "resources": [P], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [G], "resources": [P], "verbs": ["patch"], "resourceNames": ["a"]},
                {"apiGroups": [G], "resources": [f"{P}/status"], "verbs": ["patch"]},
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "bob-opens"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gate-opener"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}],
        },
    )
    bob = as_user("bob")
    wait_allowed(bob, namespace=namespace, verb="list", group=G, resource=P)
    co = kubernetes.client.CustomObjectsApi(bob)
    assert len(co.list_namespaced_custom_object(G, V, namespace, P)["items"]) == 2
    co.patch_namespaced_custom_object(G, V, namespace, P, "a", {"metadata": {"annotations": {"x": "y"}}})
    co.patch_namespaced_custom_object_status(G, V, namespace, P, "b", {"status": {"phase": "Waiting"}})
    with pytest.raises(ApiException) as e:
        co.patch_namespaced_custom_object(G, V, namespace, P, "b", {"metadata": {"annotations": {"x": "y"}}})
    assert e.value.status == 403
    assert json.loads(e.value.body)["message"].startswith(
        'canarygates.piggysec.com "b" is forbidden: User "bob" cannot patch resource "canarygates"'
    )
    with pytest.raises(ApiException) as e:
        co.delete_namespaced_custom_object(G, V, namespace, P, "a")
    assert e.value.status == 403


def test_group_in_cluster_role_binding(api_client, as_user, crds, namespace):
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    role = f"reader-{namespace}"
    rbac.create_cluster_role(
        {"metadata": {"name": role}, "rules": [{"apiGroups": [G], "resources": [P], "verbs": ["list"]}]}
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": f"readers-{namespace}"}],
        }
    )
    try:
        carol = as_user("carol", [f"readers-{namespace}"])
        wait_allowed(carol, verb="list", group=G, resource=P)
        assert kubernetes.client.CustomObjectsApi(carol).list_cluster_custom_object(G, V, P)["kind"] == "CanaryGateList"
    finally:
        rbac.delete_cluster_role_binding(role)
        rbac.delete_cluster_role(role)


def test_self_subject_access_review(api_client, as_user, crds, namespace):
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(
        namespace, {"metadata": {"name": "r"}, "rules": [{"apiGroups": [G], "resources": [P], "verbs": ["patch"]}]}
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "dave", "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )
    dave = as_user("dave")
    authz = kubernetes.client.AuthorizationV1Api(dave)

    def can(verb: str) -> bool:
        review = authz.create_self_subject_access_review(
            {"spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "group": G, "resource": P}}}
        )
        return review.status.allowed

    wait_allowed(dave, namespace=namespace, verb="patch", group=G, resource=P)  # the review says allowed
    assert can("delete") is False
    rules = authz.create_self_subject_rules_review({"spec": {"namespace": namespace}})
    assert {"api_groups": [G], "resources": [P], "verbs": ["patch"]} in [
        {k: v for k, v in r.to_dict().items() if v} for r in rules.status.resource_rules
    ]


def test_admin_is_system_masters(api_client, apiserver):
    review = kubernetes.client.AuthenticationV1Api(api_client).create_self_subject_review({})
    assert review.status.user_info.username == "admin"
    assert "system:masters" in review.status.user_info.groups
