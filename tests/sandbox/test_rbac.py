"""The emulator's authorization, row by row against kube-apiserver's behaviour.

We test these aspects:

- request_attributes: every path shape the emulator serves, as kubectl 1.37 and the Python client
  send them (KUBECTL-WIRE.md and its raw log): core and named groups, namespaced and cluster
  scope, names, the status subresource, the namespace resource itself and its subresources,
  list vs get, watch=true / watch=1 / watch=false, a field selector pinning metadata.name,
  DELETE on a collection, query parameters that do not matter (labelSelector, limit,
  fieldManager), and non-resource paths (/api, /apis/{g}/{v}, /version, /openapi/v3, /healthz).
  Upstream: staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go.
- authorize: Role and ClusterRole through RoleBindings and ClusterRoleBindings; resourceNames
  with get vs list/watch/create/deletecollection; subresource grants (canarygates/status, "*/status")
  that do not leak to the main resource and back; wildcards; service-account subjects, qualified
  and not; a RoleBinding to a ClusterRole confined to its namespace; a binding in another
  namespace not applying; non-resource URLs with "*" prefixes; system:masters; the built-in
  discovery / public-info / self-review policy; the reason texts, including unresolvable roles.
  Upstream: plugin/pkg/auth/authorizer/rbac, pkg/registry/rbac/validation/rule.go,
  pkg/apis/rbac/v1/evaluation_helpers.go, bootstrappolicy testdata.
- forbidden_message / forbidden_status: every variant of the 403 Status message.
  Upstream: responsewriters/errors.go forbiddenMessage and apimachinery errors.NewForbidden.
- rules_review: the SelfSubjectRulesReview status for plain users, system:masters, namespaces
  with and without bindings, and an unresolvable binding.
"""

from __future__ import annotations

import pytest

from sandbox.apiserver.rbac import (
    Attributes,
    UserInfo,
    authorize,
    forbidden_message,
    forbidden_status,
    request_attributes,
    rules_review,
    service_account_user,
)

G = "piggysec.com"
CG = "/apis/piggysec.com/v1alpha1/namespaces/demo-ns/canarygates"


def res(verb, resource, *, group="", version="v1", namespace="", name="", subresource="", path=""):
    return Attributes(
        verb=verb,
        resource_request=True,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
        path=path,
    )


def nonres(verb, path):
    return Attributes(verb=verb, resource_request=False, path=path)


# ------------------------------------------------------------------------------------------------
# request_attributes
# ------------------------------------------------------------------------------------------------

V1A1 = "v1alpha1"


@pytest.mark.parametrize(
    "method, path, query, expected",
    [
        # The Python client's CustomObjectsApi calls.
        ("GET", CG, {}, res("list", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG)),
        (
            "GET",
            "/apis/piggysec.com/v1alpha1/canarygates",
            {},
            res("list", "canarygates", group=G, version=V1A1, path="/apis/piggysec.com/v1alpha1/canarygates"),
        ),
        (
            "GET",
            CG + "/demo",
            {},
            res("get", "canarygates", group=G, version=V1A1, namespace="demo-ns", name="demo", path=CG + "/demo"),
        ),
        (
            "PATCH",
            CG + "/demo",
            {"fieldManager": "gate-sidecar", "force": "true"},
            res("patch", "canarygates", group=G, version=V1A1, namespace="demo-ns", name="demo", path=CG + "/demo"),
        ),
        (
            "PATCH",
            CG + "/demo/status",
            {},
            res(
                "patch",
                "canarygates",
                group=G,
                version=V1A1,
                namespace="demo-ns",
                name="demo",
                subresource="status",
                path=CG + "/demo/status",
            ),
        ),
        (
            "GET",
            CG + "/demo/status",
            {},
            res(
                "get",
                "canarygates",
                group=G,
                version=V1A1,
                namespace="demo-ns",
                name="demo",
                subresource="status",
                path=CG + "/demo/status",
            ),
        ),
        (
            "PUT",
            CG + "/demo",
            {},
            res("update", "canarygates", group=G, version=V1A1, namespace="demo-ns", name="demo", path=CG + "/demo"),
        ),
        (
            "POST",
            CG,
            {"fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"},
            res("create", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG),
        ),
        (
            "DELETE",
            CG + "/demo",
            {},
            res("delete", "canarygates", group=G, version=V1A1, namespace="demo-ns", name="demo", path=CG + "/demo"),
        ),
        (
            "DELETE",
            CG,
            {"labelSelector": "tier=gold"},
            res("deletecollection", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG),
        ),
        # Watches: any value but 0/false means watch (Convert_Slice_string_To_bool).
        (
            "GET",
            CG,
            {"allowWatchBookmarks": "true", "resourceVersion": "111", "timeoutSeconds": "3", "watch": "true"},
            res("watch", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG),
        ),
        ("GET", CG, {"watch": "1"}, res("watch", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG)),
        (
            "GET",
            CG,
            {"watch": "True"},
            res("watch", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG),
        ),
        (
            "GET",
            CG,
            {"watch": "false"},
            res("list", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG),
        ),
        ("GET", CG, {"watch": "0"}, res("list", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG)),
        (
            "GET",
            CG,
            {"labelSelector": "tier=gold", "limit": "500"},
            res("list", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG),
        ),
        # kubectl get NAME -w / kubectl wait: the field selector names the object.
        (
            "GET",
            CG,
            {
                "allowWatchBookmarks": "true",
                "fieldSelector": "metadata.name=demo",
                "resourceVersionMatch": "NotOlderThan",
                "sendInitialEvents": "true",
                "timeoutSeconds": "529",
                "watch": "true",
            },
            res("watch", "canarygates", group=G, version=V1A1, namespace="demo-ns", name="demo", path=CG),
        ),
        (
            "GET",
            CG,
            {"fieldSelector": "metadata.name=demo", "limit": "500"},
            res("list", "canarygates", group=G, version=V1A1, namespace="demo-ns", name="demo", path=CG),
        ),
        (
            "GET",
            CG,
            {"fieldSelector": "metadata.name==demo,metadata.namespace=demo-ns"},
            res("list", "canarygates", group=G, version=V1A1, namespace="demo-ns", name="demo", path=CG),
        ),
        # Not an exact name: no name. A selector that does not parse: no name, watch kept.
        (
            "GET",
            CG,
            {"fieldSelector": "metadata.name!=demo"},
            res("list", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG),
        ),
        (
            "GET",
            CG,
            {"fieldSelector": "metadata.name", "watch": "true"},
            res("watch", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG),
        ),
        (
            "GET",
            CG,
            {"fieldSelector": "metadata.name=demo", "limit": "many"},
            res("list", "canarygates", group=G, version=V1A1, namespace="demo-ns", path=CG),
        ),
        (
            "GET",
            "/api/v1/namespaces/default/events",
            {
                "fieldSelector": "involvedObject.name=demo,involvedObject.namespace=default,involvedObject.kind=CanaryGate"
            },
            res("list", "events", namespace="default", path="/api/v1/namespaces/default/events"),
        ),
        (
            "GET",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            {"fieldSelector": "metadata.name=canarygates.piggysec.com", "watch": "true"},
            res(
                "watch",
                "customresourcedefinitions",
                group="apiextensions.k8s.io",
                name="canarygates.piggysec.com",
                path="/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            ),
        ),
        # Cluster-scoped resources, and the core group.
        (
            "GET",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/canarygates.piggysec.com",
            {},
            res(
                "get",
                "customresourcedefinitions",
                group="apiextensions.k8s.io",
                name="canarygates.piggysec.com",
                path="/apis/apiextensions.k8s.io/v1/customresourcedefinitions/canarygates.piggysec.com",
            ),
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/x",
            {},
            res(
                "get",
                "deployments",
                group="apps",
                namespace="default",
                name="x",
                path="/apis/apps/v1/namespaces/default/deployments/x",
            ),
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods/p/log",
            {},
            res(
                "get",
                "pods",
                namespace="default",
                name="p",
                subresource="log",
                path="/api/v1/namespaces/default/pods/p/log",
            ),
        ),
        # Namespaces: the collection, one namespace (its own namespace), its subresources.
        ("GET", "/api/v1/namespaces", {"limit": "500"}, res("list", "namespaces", path="/api/v1/namespaces")),
        (
            "POST",
            "/api/v1/namespaces",
            {"fieldManager": "kubectl-create"},
            res("create", "namespaces", path="/api/v1/namespaces"),
        ),
        (
            "GET",
            "/api/v1/namespaces/demo-ns",
            {},
            res("get", "namespaces", namespace="demo-ns", name="demo-ns", path="/api/v1/namespaces/demo-ns"),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/z",
            {},
            res("delete", "namespaces", namespace="z", name="z", path="/api/v1/namespaces/z"),
        ),
        (
            "PUT",
            "/api/v1/namespaces/z/finalize",
            {},
            res(
                "update",
                "namespaces",
                namespace="z",
                name="z",
                subresource="finalize",
                path="/api/v1/namespaces/z/finalize",
            ),
        ),
        (
            "GET",
            "/api/v1/namespaces/z/status",
            {},
            res("get", "namespaces", namespace="z", name="z", subresource="status", path="/api/v1/namespaces/z/status"),
        ),
        # Self reviews are creates on cluster-scoped resources.
        (
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {},
            res(
                "create",
                "selfsubjectreviews",
                group="authentication.k8s.io",
                path="/apis/authentication.k8s.io/v1/selfsubjectreviews",
            ),
        ),
        (
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {},
            res(
                "create",
                "selfsubjectaccessreviews",
                group="authorization.k8s.io",
                path="/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            ),
        ),
        (
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            {},
            res(
                "create",
                "selfsubjectrulesreviews",
                group="authorization.k8s.io",
                path="/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            ),
        ),
        # The deprecated verb-in-path watch.
        (
            "GET",
            "/api/v1/watch/namespaces/default/pods",
            {},
            res("watch", "pods", namespace="default", path="/api/v1/watch/namespaces/default/pods"),
        ),
        # HEAD reads; an unknown method on a resource has no verb.
        (
            "HEAD",
            CG + "/demo",
            {},
            res("get", "canarygates", group=G, version=V1A1, namespace="demo-ns", name="demo", path=CG + "/demo"),
        ),
        (
            "OPTIONS",
            CG + "/demo",
            {},
            res("", "canarygates", group=G, version=V1A1, namespace="demo-ns", name="demo", path=CG + "/demo"),
        ),
        # Non-resource requests: discovery, openapi, version, health; verb is the lower-cased method.
        ("GET", "/api", {"timeout": "32s"}, nonres("get", "/api")),
        ("GET", "/api/v1", {}, nonres("get", "/api/v1")),
        ("GET", "/apis", {}, nonres("get", "/apis")),
        ("GET", "/apis/piggysec.com", {}, nonres("get", "/apis/piggysec.com")),
        ("GET", "/apis/piggysec.com/v1alpha1", {"timeout": "32s"}, nonres("get", "/apis/piggysec.com/v1alpha1")),
        ("GET", "/apis/piggysec.com/v1alpha1/", {}, nonres("get", "/apis/piggysec.com/v1alpha1/")),
        ("GET", "/version", {"timeout": "32s"}, nonres("get", "/version")),
        ("GET", "/openapi/v3", {}, nonres("get", "/openapi/v3")),
        (
            "GET",
            "/openapi/v3/apis/piggysec.com/v1alpha1",
            {"hash": "H1"},
            nonres("get", "/openapi/v3/apis/piggysec.com/v1alpha1"),
        ),
        ("GET", "/openapi/v2", {}, nonres("get", "/openapi/v2")),
        ("GET", "/healthz", {}, nonres("get", "/healthz")),
        ("GET", "/", {}, nonres("get", "/")),
        ("POST", "/foo/bar/baz", {}, nonres("post", "/foo/bar/baz")),
    ],
)
def test_request_attributes(method, path, query, expected):
    assert request_attributes(method, path, query) == expected


def test_request_attributes_refuses_a_bare_special_verb():
    # kube-apiserver answers 500: "unable to determine kind and namespace from url".
    with pytest.raises(ValueError):
        request_attributes("GET", "/api/v1/watch", {})


# ------------------------------------------------------------------------------------------------
# authorize
# ------------------------------------------------------------------------------------------------

BOB = UserInfo("bob", ("system:authenticated",))
ALICE = UserInfo("alice", ("gate-approvers", "system:authenticated"))
ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))
ADMIN = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))
SIDECAR = service_account_user("gates", "gate-sidecar")
OTHER_SA = service_account_user("other", "gate-sidecar")


def role(name, namespace, *rules):
    return {"kind": "Role", "metadata": {"name": name, "namespace": namespace}, "rules": list(rules)}


def cluster_role(name, *rules):
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


def rule(verbs, resources=(), groups=(G,), names=()):
    r = {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
    if names:
        r["resourceNames"] = list(names)
    return r


def url_rule(verbs, urls):
    return {"nonResourceURLs": list(urls), "verbs": list(verbs)}


def user(name):
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def group(name):
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def sa(name, namespace=None):
    s = {"kind": "ServiceAccount", "name": name}
    if namespace:
        s["namespace"] = namespace
    return s


def binding(name, namespace, role_kind, role_name, *subjects):
    return {
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": list(subjects),
    }


def cluster_binding(name, role_name, *subjects):
    return {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": list(subjects),
    }


def store(roles=(), rolebindings=(), clusterroles=(), clusterrolebindings=()):
    kinds = {
        "roles": list(roles),
        "rolebindings": list(rolebindings),
        "clusterroles": list(clusterroles),
        "clusterrolebindings": list(clusterrolebindings),
    }
    return lambda kind: kinds[kind]


# The policy most rows use: what deploy/ grants, in small.
APPROVER = role("gate-approver", "demo-ns", rule(["get", "list", "watch", "patch"], ["canarygates"]))
ONLY_DEMO = role("demo-only", "demo-ns", rule(["get", "list", "watch", "patch"], ["canarygates"], names=["demo"]))
STATUS_WRITER = cluster_role("gate-status", rule(["get", "patch", "update"], ["canarygates/status"]))
GATE_READER = cluster_role("gate-reader", rule(["get", "list", "watch"], ["canarygates"]))


def gates(verb, name="", *, namespace="demo-ns", subresource=""):
    """A request for CanaryGates (group G), in demo-ns unless told (``namespace=""``: cluster-wide)."""
    return res(verb, "canarygates", group=G, namespace=namespace, name=name, subresource=subresource)


def on(objects, *rows):
    """Cases checked against one store: each row (id, user, attrs, allowed, reason) as a CASES row."""
    return [(case_id, who, attrs, objects, allowed, reason) for case_id, who, attrs, allowed, reason in rows]


CASES = [
    # (id, user, attrs, store, allowed, reason); on(store, *rows): rows of (id, user, attrs, allowed, reason)
    *on(
        store([APPROVER], [binding("approvers", "demo-ns", "Role", "gate-approver", user("bob"))]),
        (
            "role-binding-allows-patch",
            BOB,
            gates("patch", "demo"),
            True,
            'RBAC: allowed by RoleBinding "approvers/demo-ns" of Role "gate-approver" to User "bob"',
        ),
        ("role-binding-does-not-grant-delete", BOB, gates("delete", "demo"), False, ""),
        (
            "role-does-not-reach-another-group",
            BOB,
            res("patch", "canaries", group="flagger.app", namespace="demo-ns", name="demo"),
            False,
            "",
        ),
    ),
    (
        "group-subject",
        ALICE,
        gates("list"),
        store([APPROVER], [binding("approvers", "demo-ns", "Role", "gate-approver", group("gate-approvers"))]),
        True,
        'RBAC: allowed by RoleBinding "approvers/demo-ns" of Role "gate-approver" to Group "gate-approvers"',
    ),
    (
        "first-matching-subject-is-named",
        ALICE,
        gates("list"),
        store(
            [APPROVER],
            [
                binding(
                    "approvers",
                    "demo-ns",
                    "Role",
                    "gate-approver",
                    user("bob"),
                    group("system:authenticated"),
                    user("alice"),
                )
            ],
        ),
        True,
        'RBAC: allowed by RoleBinding "approvers/demo-ns" of Role "gate-approver" to Group "system:authenticated"',
    ),
    (
        "binding-in-another-namespace-does-not-apply",
        BOB,
        gates("patch", "demo", namespace="prod"),
        store(
            [APPROVER, role("gate-approver", "prod", rule(["*"], ["*"]))],
            [binding("approvers", "demo-ns", "Role", "gate-approver", user("bob"))],
        ),
        False,
        "",
    ),
    (
        "role-binding-does-not-grant-cluster-wide-list",
        BOB,
        gates("list", namespace=""),
        store([APPROVER], [binding("approvers", "demo-ns", "Role", "gate-approver", user("bob"))]),
        False,
        "",
    ),
    (
        "role-binding-uses-role-of-its-own-namespace",
        BOB,
        gates("get", "demo"),
        store(
            [role("gate-approver", "prod", rule(["*"], ["*"], groups=["*"]))],
            [binding("approvers", "demo-ns", "Role", "gate-approver", user("bob"))],
        ),
        False,
        'RBAC: role.rbac.authorization.k8s.io "gate-approver" not found',
    ),
    # A RoleBinding to a ClusterRole grants it in the binding's namespace only.
    *on(
        store([], [binding("readers", "demo-ns", "ClusterRole", "gate-reader", user("bob"))], [GATE_READER]),
        (
            "rolebinding-to-clusterrole-in-namespace",
            BOB,
            gates("watch"),
            True,
            'RBAC: allowed by RoleBinding "readers/demo-ns" of ClusterRole "gate-reader" to User "bob"',
        ),
        ("rolebinding-to-clusterrole-not-elsewhere", BOB, gates("watch", namespace="prod"), False, ""),
        ("rolebinding-to-clusterrole-not-cluster-wide", BOB, gates("watch", namespace=""), False, ""),
    ),
    *on(
        store([], [], [GATE_READER], [cluster_binding("readers", "gate-reader", user("bob"))]),
        (
            "clusterrolebinding-cluster-wide",
            BOB,
            gates("list", namespace=""),
            True,
            'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "gate-reader" to User "bob"',
        ),
        (
            "clusterrolebinding-in-any-namespace",
            BOB,
            gates("get", "x", namespace="prod"),
            True,
            'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "gate-reader" to User "bob"',
        ),
    ),
    # resourceNames: a named request matches; list/watch/create/deletecollection carry no name.
    *on(
        store([ONLY_DEMO], [binding("b", "demo-ns", "Role", "demo-only", user("bob"))]),
        (
            "resource-names-get-named",
            BOB,
            gates("get", "demo"),
            True,
            'RBAC: allowed by RoleBinding "b/demo-ns" of Role "demo-only" to User "bob"',
        ),
        ("resource-names-get-other", BOB, gates("get", "other"), False, ""),
        ("resource-names-list", BOB, gates("list"), False, ""),
        ("resource-names-watch", BOB, gates("watch"), False, ""),
        (
            "resource-names-watch-with-name-field-selector",
            BOB,
            gates("watch", "demo"),
            True,
            'RBAC: allowed by RoleBinding "b/demo-ns" of Role "demo-only" to User "bob"',
        ),
    ),
    (
        "resource-names-create",
        BOB,
        gates("create"),
        store(
            [role("r", "demo-ns", rule(["create"], ["canarygates"], names=["demo"]))],
            [binding("b", "demo-ns", "Role", "r", user("bob"))],
        ),
        False,
        "",
    ),
    (
        "resource-names-deletecollection",
        BOB,
        gates("deletecollection"),
        store(
            [role("r", "demo-ns", rule(["*"], ["canarygates"], names=["demo"]))],
            [binding("b", "demo-ns", "Role", "r", user("bob"))],
        ),
        False,
        "",
    ),
    # Subresources are their own resource: canarygates/status.
    *on(
        store([], [], [STATUS_WRITER], [cluster_binding("sidecar-status", "gate-status", sa("gate-sidecar", "gates"))]),
        (
            "status-grant-allows-status",
            SIDECAR,
            gates("patch", "demo", subresource="status"),
            True,
            'RBAC: allowed by ClusterRoleBinding "sidecar-status" of ClusterRole "gate-status" to ServiceAccount "gate-sidecar/gates"',
        ),
        ("status-grant-not-main-resource", SIDECAR, gates("patch", "demo"), False, ""),
    ),
    (
        "main-grant-not-status",
        BOB,
        gates("patch", "demo", subresource="status"),
        store([APPROVER], [binding("approvers", "demo-ns", "Role", "gate-approver", user("bob"))]),
        False,
        "",
    ),
    *on(
        store(
            [],
            [],
            [cluster_role("statuses", rule(["get"], ["*/status"], groups=["*"]))],
            [cluster_binding("statuses", "statuses", user("bob"))],
        ),
        (
            "star-slash-subresource",
            BOB,
            gates("get", "demo", subresource="status"),
            True,
            'RBAC: allowed by ClusterRoleBinding "statuses" of ClusterRole "statuses" to User "bob"',
        ),
        ("star-slash-subresource-not-main", BOB, gates("get", "demo"), False, ""),
    ),
    (
        "star-resource-covers-subresources",
        BOB,
        gates("update", "demo", subresource="status"),
        store([role("all", "demo-ns", rule(["update"], ["*"]))], [binding("b", "demo-ns", "Role", "all", user("bob"))]),
        True,
        'RBAC: allowed by RoleBinding "b/demo-ns" of Role "all" to User "bob"',
    ),
    # Wildcards.
    (
        "wildcard-verbs-groups-resources",
        BOB,
        res("deletecollection", "deployments", group="apps", namespace="demo-ns"),
        store(
            [role("all", "demo-ns", rule(["*"], ["*"], groups=["*"]))],
            [binding("b", "demo-ns", "Role", "all", user("bob"))],
        ),
        True,
        'RBAC: allowed by RoleBinding "b/demo-ns" of Role "all" to User "bob"',
    ),
    (
        "core-group-is-empty-string",
        BOB,
        res("get", "configmaps", namespace="demo-ns", name="c"),
        store(
            [role("cm", "demo-ns", rule(["get"], ["configmaps"], groups=[""]))],
            [binding("b", "demo-ns", "Role", "cm", user("bob"))],
        ),
        True,
        'RBAC: allowed by RoleBinding "b/demo-ns" of Role "cm" to User "bob"',
    ),
    (
        "core-group-rule-not-other-group",
        BOB,
        gates("get", "c"),
        store(
            [role("cm", "demo-ns", rule(["get"], ["canarygates"], groups=[""]))],
            [binding("b", "demo-ns", "Role", "cm", user("bob"))],
        ),
        False,
        "",
    ),
    # Namespace-scoped read of a namespace is read of that namespace (its namespace is itself).
    (
        "namespace-object-via-rolebinding",
        BOB,
        res("get", "namespaces", namespace="demo-ns", name="demo-ns"),
        store(
            [role("ns", "demo-ns", rule(["get"], ["namespaces"], groups=[""]))],
            [binding("b", "demo-ns", "Role", "ns", user("bob"))],
        ),
        True,
        'RBAC: allowed by RoleBinding "b/demo-ns" of Role "ns" to User "bob"',
    ),
    # Service accounts: qualified, unqualified (binding's namespace), and wrong namespace.
    (
        "sa-unqualified-in-rolebinding",
        SIDECAR,
        gates("list", namespace="gates"),
        store(
            [role("r", "gates", rule(["list"], ["canarygates"]))],
            [binding("b", "gates", "Role", "r", sa("gate-sidecar"))],
        ),
        True,
        'RBAC: allowed by RoleBinding "b/gates" of Role "r" to ServiceAccount "gate-sidecar/gates"',
    ),
    (
        "sa-unqualified-in-clusterrolebinding-never",
        SIDECAR,
        gates("list", namespace=""),
        store([], [], [GATE_READER], [cluster_binding("b", "gate-reader", sa("gate-sidecar"))]),
        False,
        "",
    ),
    (
        "sa-other-namespace",
        OTHER_SA,
        gates("list", namespace=""),
        store([], [], [GATE_READER], [cluster_binding("b", "gate-reader", sa("gate-sidecar", "gates"))]),
        False,
        "",
    ),
    (
        "sa-group-all-namespaces",
        SIDECAR,
        gates("list", namespace=""),
        store([], [], [GATE_READER], [cluster_binding("b", "gate-reader", group("system:serviceaccounts"))]),
        True,
        'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "gate-reader" to Group "system:serviceaccounts"',
    ),
    *on(
        store([], [], [GATE_READER], [cluster_binding("b", "gate-reader", group("system:serviceaccounts:gates"))]),
        (
            "sa-group-of-namespace",
            SIDECAR,
            gates("list", namespace=""),
            True,
            'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "gate-reader" to Group "system:serviceaccounts:gates"',
        ),
        ("sa-group-of-other-namespace", OTHER_SA, gates("list", namespace=""), False, ""),
    ),
    (
        "sa-name-as-user-subject",
        SIDECAR,
        gates("list", namespace=""),
        store(
            [],
            [],
            [GATE_READER],
            [cluster_binding("b", "gate-reader", user("system:serviceaccount:gates:gate-sidecar"))],
        ),
        True,
        'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "gate-reader" to User "system:serviceaccount:gates:gate-sidecar"',
    ),
    # Non-resource URLs: exact, "*" prefix, only via ClusterRoleBindings.
    (
        "non-resource-exact",
        BOB,
        nonres("get", "/metrics"),
        store([], [], [cluster_role("m", url_rule(["get"], ["/metrics"]))], [cluster_binding("m", "m", user("bob"))]),
        True,
        'RBAC: allowed by ClusterRoleBinding "m" of ClusterRole "m" to User "bob"',
    ),
    (
        "non-resource-prefix",
        BOB,
        nonres("get", "/logs/kube/a.log"),
        store([], [], [cluster_role("l", url_rule(["get"], ["/logs/*"]))], [cluster_binding("l", "l", user("bob"))]),
        True,
        'RBAC: allowed by ClusterRoleBinding "l" of ClusterRole "l" to User "bob"',
    ),
    (
        "non-resource-prefix-is-plain-prefix",
        BOB,
        nonres("get", "/logsX"),
        store([], [], [cluster_role("l", url_rule(["get"], ["/logs*"]))], [cluster_binding("l", "l", user("bob"))]),
        True,
        'RBAC: allowed by ClusterRoleBinding "l" of ClusterRole "l" to User "bob"',
    ),
    (
        "non-resource-wrong-verb",
        BOB,
        nonres("post", "/metrics"),
        store([], [], [cluster_role("m", url_rule(["get"], ["/metrics"]))], [cluster_binding("m", "m", user("bob"))]),
        False,
        "",
    ),
    (
        "non-resource-not-via-rolebinding",
        BOB,
        nonres("get", "/metrics"),
        store(
            [],
            [binding("m", "demo-ns", "ClusterRole", "m", user("bob"))],
            [cluster_role("m", url_rule(["get"], ["/metrics"]))],
        ),
        False,
        "",
    ),
    (
        "resource-rule-does-not-grant-url",
        UserInfo("bob"),
        nonres("get", "/apis/piggysec.com/v1alpha1"),
        store(
            [],
            [],
            [cluster_role("all", rule(["*"], ["*"], groups=["*"]))],
            [cluster_binding("all", "all", user("bob"))],
        ),
        False,
        "",
    ),
    (
        "url-rule-does-not-grant-resource",
        BOB,
        gates("get", "demo"),
        store([], [], [cluster_role("u", url_rule(["*"], ["*"]))], [cluster_binding("u", "u", user("bob"))]),
        False,
        "",
    ),
    # system:masters: the privileged-group authorizer answers first, with no reason.
    *on(
        store(),
        ("system-masters-anything", ADMIN, gates("deletecollection"), True, ""),
        ("system-masters-any-url", ADMIN, nonres("put", "/whatever"), True, ""),
    ),
    # The default policy: discovery, public info, self reviews for every authenticated user.
    *[
        (
            f"discovery-{p}",
            BOB,
            nonres("get", p),
            store(),
            True,
            'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated"',
        )
        for p in (
            "/api",
            "/api/v1",
            "/apis",
            "/apis/piggysec.com/v1alpha1",
            "/version",
            "/version/",
            "/openapi",
            "/openapi/v3",
            "/openapi/v3/apis/piggysec.com/v1alpha1",
            "/healthz",
            "/livez",
            "/readyz",
        )
    ],
    *on(
        store(),
        ("discovery-not-post", BOB, nonres("post", "/api"), False, ""),
        ("discovery-not-metrics", BOB, nonres("get", "/metrics"), False, ""),
        ("discovery-not-healthz-checks", BOB, nonres("get", "/healthz/etcd"), False, ""),
        (
            "anonymous-public-info",
            ANONYMOUS,
            nonres("get", "/version"),
            True,
            'RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer" '
            'to Group "system:unauthenticated"',
        ),
        ("anonymous-no-discovery", ANONYMOUS, nonres("get", "/apis"), False, ""),
        (
            "anonymous-no-self-review",
            ANONYMOUS,
            res("create", "selfsubjectreviews", group="authentication.k8s.io"),
            False,
            "",
        ),
        ("no-groups-no-discovery", UserInfo("bob"), nonres("get", "/api"), False, ""),
        (
            "whoami",
            BOB,
            res("create", "selfsubjectreviews", group="authentication.k8s.io"),
            True,
            'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" to Group "system:authenticated"',
        ),
        (
            "can-i",
            SIDECAR,
            res("create", "selfsubjectaccessreviews", group="authorization.k8s.io"),
            True,
            'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" to Group "system:authenticated"',
        ),
        (
            "can-i-list",
            BOB,
            res("create", "selfsubjectrulesreviews", group="authorization.k8s.io"),
            True,
            'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" to Group "system:authenticated"',
        ),
        (
            "no-subjectaccessreviews",
            BOB,
            res("create", "subjectaccessreviews", group="authorization.k8s.io"),
            False,
            "",
        ),
        ("default-denies-resources", BOB, gates("get", "demo"), False, ""),
    ),
    (
        "cluster-admin-is-bindable",
        BOB,
        res("delete", "namespaces", namespace="z", name="z"),
        store([], [], [], [cluster_binding("bob-admin", "cluster-admin", user("bob"))]),
        True,
        'RBAC: allowed by ClusterRoleBinding "bob-admin" of ClusterRole "cluster-admin" to User "bob"',
    ),
    (
        "stored-binding-replaces-builtin",
        BOB,
        nonres("get", "/apis"),
        store([], [], [], [cluster_binding("system:discovery", "system:discovery", group("nobody"))]),
        False,
        "",
    ),
    (
        "stored-role-replaces-builtin",
        BOB,
        nonres("get", "/apis"),
        store([], [], [cluster_role("system:discovery", url_rule(["get"], ["/version"]))]),
        False,
        "",
    ),
    # Bindings that cannot be resolved: denial reasons, and no effect on an allow.
    (
        "missing-clusterrole",
        BOB,
        gates("get", "demo"),
        store([], [], [], [cluster_binding("b", "gone", user("bob"))]),
        False,
        'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
    ),
    (
        "two-missing-roles",
        BOB,
        gates("get", "demo"),
        store(
            [], [binding("b", "demo-ns", "Role", "gone", user("bob"))], [], [cluster_binding("b", "gone", user("bob"))]
        ),
        False,
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, role.rbac.authorization.k8s.io "gone" not found]',
    ),
    (
        "same-missing-role-twice",
        BOB,
        gates("get", "demo"),
        store([], [], [], [cluster_binding("a", "gone", user("bob")), cluster_binding("b", "gone", user("bob"))]),
        False,
        'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
    ),
    (
        "missing-role-of-someone-else-ignored",
        BOB,
        gates("get", "demo"),
        store([], [], [], [cluster_binding("b", "gone", user("carol"))]),
        False,
        "",
    ),
    (
        "missing-role-then-allowed",
        BOB,
        gates("list"),
        store(
            [APPROVER],
            [binding("approvers", "demo-ns", "Role", "gate-approver", user("bob"))],
            [],
            [cluster_binding("b", "gone", user("bob"))],
        ),
        True,
        'RBAC: allowed by RoleBinding "approvers/demo-ns" of Role "gate-approver" to User "bob"',
    ),
]


@pytest.mark.parametrize("who, attrs, objects, allowed, reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_authorize(who, attrs, objects, allowed, reason):
    assert authorize(who, attrs, objects) == (allowed, reason)


# ------------------------------------------------------------------------------------------------
# forbidden_message
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, attrs, reason, message",
    [
        (
            BOB,
            res("patch", "canarygates", group=G, namespace="demo-ns", name="demo"),
            "",
            'canarygates.piggysec.com "demo" is forbidden: User "bob" cannot patch resource "canarygates" '
            'in API group "piggysec.com" in the namespace "demo-ns"',
        ),
        (
            BOB,
            res("list", "canarygates", group=G, namespace="demo-ns"),
            "",
            'canarygates.piggysec.com is forbidden: User "bob" cannot list resource "canarygates" '
            'in API group "piggysec.com" in the namespace "demo-ns"',
        ),
        (
            BOB,
            res("watch", "canarygates", group=G),
            "",
            'canarygates.piggysec.com is forbidden: User "bob" cannot watch resource "canarygates" '
            'in API group "piggysec.com" at the cluster scope',
        ),
        (
            SIDECAR,
            res("patch", "canarygates", group=G, namespace="demo-ns", name="demo", subresource="status"),
            "",
            'canarygates.piggysec.com "demo" is forbidden: User "system:serviceaccount:gates:gate-sidecar" cannot patch '
            'resource "canarygates/status" in API group "piggysec.com" in the namespace "demo-ns"',
        ),
        (
            BOB,
            res("get", "pods", namespace="default", name="p"),
            "",
            'pods "p" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default"',
        ),
        (
            BOB,
            res("create", "namespaces"),
            "",
            'namespaces is forbidden: User "bob" cannot create resource "namespaces" in API group "" at the cluster scope',
        ),
        (
            BOB,
            res("delete", "namespaces", namespace="z", name="z"),
            "",
            'namespaces "z" is forbidden: User "bob" cannot delete resource "namespaces" in API group "" in the namespace "z"',
        ),
        (
            BOB,
            res("get", "customresourcedefinitions", group="apiextensions.k8s.io", name="canarygates.piggysec.com"),
            "",
            'customresourcedefinitions.apiextensions.k8s.io "canarygates.piggysec.com" is forbidden: User "bob" cannot get '
            'resource "customresourcedefinitions" in API group "apiextensions.k8s.io" at the cluster scope',
        ),
        (BOB, nonres("get", "/foo"), "", 'forbidden: User "bob" cannot get path "/foo"'),
        (ANONYMOUS, nonres("get", "/"), "", 'forbidden: User "system:anonymous" cannot get path "/"'),
        (
            BOB,
            res("get", "canarygates", group=G, namespace="demo-ns", name="demo"),
            'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
            'canarygates.piggysec.com "demo" is forbidden: User "bob" cannot get resource "canarygates" in API group '
            '"piggysec.com" in the namespace "demo-ns": RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found',
        ),
        # Go %q escaping, and the HTML sanitizer on the user part.
        (
            UserInfo('a"b\\c'),
            nonres("get", "/x<y>&z"),
            "",
            'forbidden: User "a\\"b\\\\c" cannot get path "/x&lt;y&gt;&amp;z"',
        ),
        (
            UserInfo("bob\n"),
            res("get", "canarygates", group=G, namespace="demo-ns", name="dé\tmo"),
            "",
            'canarygates.piggysec.com "dé\\tmo" is forbidden: User "bob\\n" cannot get resource "canarygates" in API group '
            '"piggysec.com" in the namespace "demo-ns"',
        ),
    ],
)
def test_forbidden_message(who, attrs, reason, message):
    assert forbidden_message(who, attrs, reason=reason) == message


def test_forbidden_message_from_request_line():
    attrs = request_attributes("PATCH", CG + "/demo", {"fieldManager": "kubectl-annotate"})
    assert forbidden_message(BOB, attrs) == (
        'canarygates.piggysec.com "demo" is forbidden: User "bob" cannot patch resource "canarygates" '
        'in API group "piggysec.com" in the namespace "demo-ns"'
    )


@pytest.mark.parametrize(
    "attrs, details",
    [
        (
            res("patch", "canarygates", group=G, namespace="demo-ns", name="demo", subresource="status"),
            {"name": "demo", "group": G, "kind": "canarygates"},
        ),
        (res("list", "pods", namespace="default"), {"kind": "pods"}),
        (nonres("get", "/foo"), {}),
    ],
)
def test_forbidden_status(attrs, details):
    status = forbidden_status(BOB, attrs)
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": forbidden_message(BOB, attrs),
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


# ------------------------------------------------------------------------------------------------
# rules_review
# ------------------------------------------------------------------------------------------------

BASIC_RESOURCE_RULES = [
    {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    },
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
]
DISCOVERY_RULE = {
    "verbs": ["get"],
    "nonResourceURLs": [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ],
}
PUBLIC_INFO_RULE = {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]}
REVIEW_STORE = store(
    [ONLY_DEMO],
    [
        binding("b", "demo-ns", "Role", "demo-only", user("bob")),
        binding("sidecar", "gates", "ClusterRole", "gate-status", sa("gate-sidecar")),
    ],
    [STATUS_WRITER, cluster_role("m", url_rule(["get"], ["/metrics"]))],
    [cluster_binding("m", "m", user("bob"))],
)


@pytest.mark.parametrize(
    "who, namespace, objects, expected",
    [
        # Plain user, no namespace bindings: the default policy only.
        (
            UserInfo("carol", ("system:authenticated",)),
            "demo-ns",
            REVIEW_STORE,
            {
                "resourceRules": BASIC_RESOURCE_RULES,
                "nonResourceRules": [DISCOVERY_RULE, PUBLIC_INFO_RULE],
                "incomplete": False,
            },
        ),
        # Stored ClusterRoleBindings first, then built-ins, then the namespace's RoleBindings.
        (
            BOB,
            "demo-ns",
            REVIEW_STORE,
            {
                "resourceRules": [
                    *BASIC_RESOURCE_RULES,
                    {
                        "verbs": ["get", "list", "watch", "patch"],
                        "apiGroups": [G],
                        "resources": ["canarygates"],
                        "resourceNames": ["demo"],
                    },
                ],
                "nonResourceRules": [
                    {"verbs": ["get"], "nonResourceURLs": ["/metrics"]},
                    DISCOVERY_RULE,
                    PUBLIC_INFO_RULE,
                ],
                "incomplete": False,
            },
        ),
        # Another namespace: the RoleBinding in demo-ns does not show.
        (
            BOB,
            "prod",
            REVIEW_STORE,
            {
                "resourceRules": BASIC_RESOURCE_RULES,
                "nonResourceRules": [
                    {"verbs": ["get"], "nonResourceURLs": ["/metrics"]},
                    DISCOVERY_RULE,
                    PUBLIC_INFO_RULE,
                ],
                "incomplete": False,
            },
        ),
        # An unqualified service account in a RoleBinding of its own namespace.
        (
            SIDECAR,
            "gates",
            REVIEW_STORE,
            {
                "resourceRules": [
                    *BASIC_RESOURCE_RULES,
                    {"verbs": ["get", "patch", "update"], "apiGroups": [G], "resources": ["canarygates/status"]},
                ],
                "nonResourceRules": [DISCOVERY_RULE, PUBLIC_INFO_RULE],
                "incomplete": False,
            },
        ),
        # system:masters: cluster-admin through the built-in binding, as `kubectl auth can-i --list` shows.
        (
            ADMIN,
            "demo-ns",
            store(),
            {
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, *BASIC_RESOURCE_RULES],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}, DISCOVERY_RULE, PUBLIC_INFO_RULE],
                "incomplete": False,
            },
        ),
        # Anonymous: public info only.
        (ANONYMOUS, "", store(), {"resourceRules": [], "nonResourceRules": [PUBLIC_INFO_RULE], "incomplete": False}),
        # A binding to a missing role is reported, the rest still listed.
        (
            UserInfo("bob"),
            "demo-ns",
            store([], [binding("b", "demo-ns", "Role", "gone", user("bob"))]),
            {
                "resourceRules": [],
                "nonResourceRules": [],
                "incomplete": False,
                "evaluationError": 'role.rbac.authorization.k8s.io "gone" not found',
            },
        ),
    ],
    ids=[
        "default-policy",
        "user-with-bindings",
        "other-namespace",
        "service-account",
        "system-masters",
        "anonymous",
        "missing-role",
    ],
)
def test_rules_review(who, namespace, objects, expected):
    assert rules_review(who, namespace, objects) == expected


def test_service_account_user_groups():
    assert (
        UserInfo(
            "system:serviceaccount:gates:gate-sidecar",
            ("system:serviceaccounts", "system:serviceaccounts:gates", "system:authenticated"),
        )
        == SIDECAR
    )
