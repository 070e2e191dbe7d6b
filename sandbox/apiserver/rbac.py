"""Authorization for the sandbox API emulator, as kube-apiserver does it with RBAC.

Pure functions over plain data: no I/O, and nothing imported from the rest of the emulator or
from the product. The emulator authenticates a request into a `UserInfo`, turns the request line
into `Attributes` with `request_attributes`, asks `authorize`, and on a denial answers 403 with
`forbidden_status` (or builds its own Status around `forbidden_message`).

What is mirrored, and from where in kubernetes/kubernetes:

- `request_attributes`: apiserver's `RequestInfoFactory.NewRequestInfo`
  (staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go).
- `authorize`: the union kube-apiserver runs, reduced to what matters here: the privileged-group
  authorizer first (group `system:masters` may do anything, with an empty reason), then the RBAC
  authorizer (plugin/pkg/auth/authorizer/rbac/rbac.go, pkg/registry/rbac/validation/rule.go,
  pkg/apis/rbac/v1/evaluation_helpers.go), with its reason texts.
- The bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy): the ClusterRoles
  `cluster-admin`, `system:discovery`, `system:basic-user`, `system:public-info-viewer` and their
  ClusterRoleBindings behave as if they were stored. A stored ClusterRole or ClusterRoleBinding
  with the same name replaces the built-in one, as editing it would in a cluster.
- `forbidden_message`: responsewriters.Forbidden + forbiddenMessage (errors.go) wrapped by
  apimachinery's `errors.NewForbidden`: the Status message text a client shows.
- `rules_review`: the status of a SelfSubjectRulesReview (RBAC `RulesFor`).

Not done: aggregated ClusterRoles (`aggregationRule` is ignored and only a role's own `rules`
count, so the aggregated `admin`/`edit`/`view` roles are not built in, nor are the controller and
node roles), the Node and Webhook authorizers, impersonation, label/field-selector authorization
(`AuthorizeWithSelectors`), and the escalation checks on writing roles and bindings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sandbox.apiserver.status import go_quote as _go_quote
from sandbox.apiserver.status import not_found_message

__all__ = [
    "Attributes",
    "UserInfo",
    "authorize",
    "forbidden_message",
    "forbidden_status",
    "request_attributes",
    "rule_allows",
    "rules_review",
    "service_account_user",
]

PRIVILEGED_GROUP = "system:masters"
AUTHENTICATED_GROUP = "system:authenticated"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"

Objects = Callable[[str], Iterable[dict]]


@dataclass(frozen=True)
class UserInfo:
    """Who is asking, as the authenticator decided.

    Groups are taken as given: like kube-apiserver's authorizers, this module adds none. The
    authenticator is the one to add `system:authenticated` (every authenticated user has it, and
    the default discovery and self-review grants hang on it); `service_account_user` builds the
    identity a service account token yields.
    """

    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attributes:
    """kube-apiserver's authorizer.Attributes, without the user.

    `verb` is the Kubernetes verb for resource requests (get list watch create update patch
    delete deletecollection) and the lower-cased HTTP method for non-resource requests.
    """

    verb: str
    resource_request: bool
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


def service_account_user(namespace: str, name: str) -> UserInfo:
    """The identity kube-apiserver gives a service account's token: its username, its two
    service-account groups, and `system:authenticated`."""
    return UserInfo(
        username=f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
        groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED_GROUP),
    )


# ---------------------------------------------------------------------------------------------
# Request attributes
# ---------------------------------------------------------------------------------------------

_API_PREFIXES = frozenset({"api", "apis"})
_GROUPLESS_API_PREFIXES = frozenset({"api"})
# Verbs given as a path segment (/api/v1/watch/...): deprecated, but still parsed upstream.
_SPECIAL_VERBS = frozenset({"proxy", "watch"})
_SPECIAL_VERBS_NO_SUBRESOURCES = frozenset({"proxy"})
# /api/v1/namespaces/{name}/{status|finalize} is a subresource of the namespace, not a resource.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_INT64 = re.compile(r"[+-]?[0-9]+\Z")


def request_attributes(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """What kube-apiserver's RequestInfoFactory makes of a request line.

    `path` is the URL path (already percent-decoded), `query` the decoded query parameters, first
    value of each. Resource requests are `/api/{v}/...` and `/apis/{g}/{v}/...` with at least one
    segment after the version; everything else (`/api`, `/api/v1`, `/apis/{g}/{v}`, `/version`,
    `/openapi/v3`, `/healthz`...) is a non-resource request whose verb is the lower-cased method.

    For a resource request: GET/HEAD without a name is `list`, or `watch` when `watch` is present
    with any value but `0`/`false`; DELETE without a name is `deletecollection`;
    `/api/v1/namespaces/{ns}` is the namespace resource itself (name and namespace both `{ns}`).
    A list or watch whose `fieldSelector` pins `metadata.name` (what `kubectl get NAME --watch` and
    `kubectl wait` send) carries that name, so `resourceNames` rules can allow it.

    Raises ValueError for `/api/v1/watch` or `/api/v1/proxy` with nothing after them, where
    kube-apiserver answers 500.
    """
    verb = method.lower()
    parts = _split_path(path)
    if len(parts) < 3 or parts[0] not in _API_PREFIXES:
        return Attributes(verb=verb, resource_request=False, path=path)
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix not in _GROUPLESS_API_PREFIXES:
        if len(parts) < 3:
            return Attributes(verb=verb, resource_request=False, path=path)
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]

    verb_via_path = parts[0] in _SPECIAL_VERBS
    if verb_via_path:
        if len(parts) < 2:
            raise ValueError(f"unable to determine kind and namespace from url {path!r}")
        verb, parts = parts[0], parts[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")

    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]

    resource = parts[0]
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and verb not in _SPECIAL_VERBS_NO_SUBRESOURCES else ""

    if not name and verb == "get":
        decoded, watch, selector_name = _decode_list_options(query)
        if not decoded:
            # Upstream: a query that does not decode as ListOptions still honours `watch`,
            # and drops the field selector.
            raw = query.get("watch")
            watch = raw is not None and raw.lower() not in ("false", "0")
            selector_name = ""
        verb = "watch" if watch else "list"
        if selector_name and _valid_path_segment_name(selector_name):
            name = selector_name
    if not name and verb == "delete":
        verb = "deletecollection"

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


def _split_path(path: str) -> list[str]:
    path = path.strip("/")
    return path.split("/") if path else []


def _decode_list_options(query: Mapping[str, str]) -> tuple[bool, bool, str]:
    """(decoded, watch, metadata.name the field selector requires) for a list/watch query.

    `decoded` is False where kube-apiserver's ListOptions decoding fails on the parameters
    checked here: a malformed field selector, or a non-integer `limit` / `timeoutSeconds`.
    (A malformed `labelSelector` fails it upstream too; it is not parsed here.)
    """
    for key in ("limit", "timeoutSeconds"):
        value = query.get(key)
        if value is not None and not (_INT64.match(value) and -(2**63) <= int(value) < 2**63):
            return False, False, ""
    raw_watch = query.get("watch")
    watch = raw_watch is not None and not (raw_watch == "0" or raw_watch.lower() == "false")
    selector = query.get("fieldSelector")
    if selector is None:
        return True, watch, ""
    terms = _parse_field_selector(selector)
    if terms is None:
        return False, False, ""
    for field, op, value in terms:
        if field == "metadata.name" and op != "!=":
            return True, watch, value
    return True, watch, ""


def _parse_field_selector(selector: str) -> list[tuple[str, str, str]] | None:
    """apimachinery fields.ParseSelector: comma-separated `field(=|==|!=)value` terms, sorted,
    values unescaped (`\\\\`, `\\,`, `\\=`). None when it does not parse."""
    terms = []
    for part in sorted(_split_terms(selector)):
        if not part:
            continue
        term = _split_term(part)
        if term is None:
            return None
        field, op, raw = term
        value = _unescape_field_value(raw)
        if value is None:
            return None
        terms.append((field, op, value))
    return terms


def _split_terms(selector: str) -> list[str]:
    if not selector:
        return []
    terms, start, escaped = [], 0, False
    for i, c in enumerate(selector):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _unescape_field_value(raw: str) -> str | None:
    out, escaped = [], False
    for c in raw:
        if escaped:
            if c not in "\\,=":
                return None
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",=":
            return None
        else:
            out.append(c)
    return None if escaped else "".join(out)


def _valid_path_segment_name(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "%" not in name


# ---------------------------------------------------------------------------------------------
# Built-in policy (bootstrap roles that matter to discovery and self-reviews)
# ---------------------------------------------------------------------------------------------


def _builtin_cluster_role(name: str, rules: list[dict]) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "rules": rules,
    }


def _builtin_binding(name: str, groups: list[str]) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups],
    }


# Rules as bootstrappolicy renders them (testdata/cluster-roles.yaml): sorted within a rule.
BUILTIN_CLUSTER_ROLES: tuple[dict, ...] = (
    _builtin_cluster_role(
        "cluster-admin",
        [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ],
    ),
    _builtin_cluster_role(
        "system:basic-user",
        [
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            },
            {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
        ],
    ),
    _builtin_cluster_role(
        "system:discovery",
        [
            {
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
                "verbs": ["get"],
            }
        ],
    ),
    _builtin_cluster_role(
        "system:public-info-viewer",
        [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}],
    ),
)

# Since Kubernetes 1.14 only system:public-info-viewer is also bound to system:unauthenticated.
BUILTIN_CLUSTER_ROLE_BINDINGS: tuple[dict, ...] = (
    _builtin_binding("cluster-admin", [PRIVILEGED_GROUP]),
    _builtin_binding("system:basic-user", [AUTHENTICATED_GROUP]),
    _builtin_binding("system:discovery", [AUTHENTICATED_GROUP]),
    _builtin_binding("system:public-info-viewer", [AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP]),
)


def _with_builtins(stored: Iterable[dict], builtins: tuple[dict, ...]) -> list[dict]:
    """Stored objects in their order, then the built-ins no stored object of that name replaces."""
    stored = [o for o in stored if o]
    names = {_meta(o).get("name") for o in stored}
    return stored + [b for b in builtins if b["metadata"]["name"] not in names]


# ---------------------------------------------------------------------------------------------
# Rule resolution (DefaultRuleResolver.VisitRulesFor)
# ---------------------------------------------------------------------------------------------


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


class _Policy:
    """The four RBAC kinds as the resolver needs them, built-ins included."""

    def __init__(self, objects: Objects) -> None:
        self.roles = {(_meta(r).get("namespace", ""), _meta(r).get("name")): r for r in objects("roles") or ()}
        self.role_bindings = [b for b in objects("rolebindings") or () if b]
        cluster_roles = _with_builtins(objects("clusterroles") or (), BUILTIN_CLUSTER_ROLES)
        self.cluster_roles = {_meta(r).get("name"): r for r in cluster_roles}
        self.cluster_role_bindings = _with_builtins(objects("clusterrolebindings") or (), BUILTIN_CLUSTER_ROLE_BINDINGS)

    def role_ref_rules(self, role_ref: dict, binding_namespace: str) -> tuple[list[dict], str | None]:
        """(rules, error message) for a binding's roleRef, as GetRoleReferenceRules."""
        kind, name = role_ref.get("kind", ""), role_ref.get("name", "")
        if kind == "Role":
            role = self.roles.get((binding_namespace, name)) if binding_namespace else None
            if role is None:
                return [], not_found_message("role.rbac.authorization.k8s.io", name)
            return list(role.get("rules") or ()), None
        if kind == "ClusterRole":
            role = self.cluster_roles.get(name)
            if role is None:
                return [], not_found_message("clusterrole.rbac.authorization.k8s.io", name)
            return list(role.get("rules") or ()), None
        return [], f"unsupported role reference kind: {_go_quote(kind)}"


def _visit_rules(user: UserInfo, namespace: str, policy: _Policy):
    """Yield (source description, rule, error message) in the upstream resolver's order:
    ClusterRoleBindings, then, for a namespaced request, the RoleBindings of that namespace."""
    for binding in policy.cluster_role_bindings:
        subject = _applies_to(user, binding.get("subjects") or (), "")
        if subject is None:
            continue
        role_ref = binding.get("roleRef") or {}
        rules, error = policy.role_ref_rules(role_ref, "")
        if error:
            yield None, None, error
            continue
        source = (
            f"ClusterRoleBinding {_go_quote(_meta(binding).get('name', ''))} of "
            f"{role_ref.get('kind', '')} {_go_quote(role_ref.get('name', ''))} to {_describe_subject(subject, '')}"
        )
        for rule in rules:
            yield source, rule, None
    if not namespace:
        return
    for binding in policy.role_bindings:
        if _meta(binding).get("namespace", "") != namespace:
            continue
        subject = _applies_to(user, binding.get("subjects") or (), namespace)
        if subject is None:
            continue
        role_ref = binding.get("roleRef") or {}
        rules, error = policy.role_ref_rules(role_ref, namespace)
        if error:
            yield None, None, error
            continue
        source = (
            f"RoleBinding {_go_quote(_meta(binding).get('name', '') + '/' + namespace)} of "
            f"{role_ref.get('kind', '')} {_go_quote(role_ref.get('name', ''))} "
            f"to {_describe_subject(subject, namespace)}"
        )
        for rule in rules:
            yield source, rule, None


def _applies_to(user: UserInfo, subjects: Iterable[dict], namespace: str) -> dict | None:
    """The first subject that names this user, or None."""
    for subject in subjects:
        kind, name = subject.get("kind"), subject.get("name", "")
        if kind == "User" and user.username == name:
            return subject
        if kind == "Group" and name in user.groups:
            return subject
        if kind == "ServiceAccount":
            # An unqualified service account in a RoleBinding is one of the binding's namespace.
            sa_namespace = subject.get("namespace") or namespace
            if sa_namespace and user.username == f"{SERVICE_ACCOUNT_PREFIX}{sa_namespace}:{name}":
                return subject
    return None


def _describe_subject(subject: dict, binding_namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        # Upstream writes name/namespace, in that order.
        return f"{kind} {_go_quote(name + '/' + (subject.get('namespace') or binding_namespace))}"
    return f"{kind} {_go_quote(name)}"


# ---------------------------------------------------------------------------------------------
# Rule matching (evaluation_helpers.go, RuleAllows)
# ---------------------------------------------------------------------------------------------


def rule_allows(attrs: Attributes, rule: dict) -> bool:
    """Whether one PolicyRule (a dict as stored) allows the request."""
    if not _verb_matches(rule, attrs.verb):
        return False
    if not attrs.resource_request:
        return _non_resource_url_matches(rule, attrs.path)
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return (
        _api_group_matches(rule, attrs.api_group)
        and _resource_matches(rule, combined, attrs.subresource)
        and _resource_name_matches(rule, attrs.name)
    )


def _verb_matches(rule: dict, verb: str) -> bool:
    return any(v == "*" or v == verb for v in rule.get("verbs") or ())


def _api_group_matches(rule: dict, group: str) -> bool:
    return any(g == "*" or g == group for g in rule.get("apiGroups") or ())


def _resource_matches(rule: dict, combined: str, subresource: str) -> bool:
    for r in rule.get("resources") or ():
        if r == "*" or r == combined:
            return True
        if subresource and r == "*/" + subresource:
            return True
    return False


def _resource_name_matches(rule: dict, name: str) -> bool:
    # No resourceNames: any name, or none. With resourceNames, a request without a name
    # (list, watch, create, deletecollection) never matches.
    names = rule.get("resourceNames") or ()
    return not names or name in names


def _non_resource_url_matches(rule: dict, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or ():
        if url == "*" or url == path:
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------------------------


def authorize(user: UserInfo, attrs: Attributes, objects: Objects) -> tuple[bool, str]:
    """(allowed, reason) as kube-apiserver decides for this user and request.

    `objects(kind)` gives the stored rbac.authorization.k8s.io/v1 objects of "roles",
    "rolebindings", "clusterroles" or "clusterrolebindings" as dicts (Roles and RoleBindings of
    all namespaces). Group `system:masters` is allowed everything with an empty reason (the
    privileged-group authorizer answers before RBAC). Otherwise the first rule that allows wins,
    with reason `RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to User "u"` (or
    `RoleBinding "b/ns" of Role "r" to ...`). A denial's reason is empty unless a binding could
    not be resolved (missing role, unknown roleRef kind): then `RBAC: <the errors>`, which
    kube-apiserver appends to the Forbidden message.
    """
    if PRIVILEGED_GROUP in user.groups:
        return True, ""
    errors: list[str] = []
    for source, rule, error in _visit_rules(user, attrs.namespace, _Policy(objects)):
        if rule is not None and rule_allows(attrs, rule):
            return True, f"RBAC: allowed by {source}"
        if error:
            errors.append(error)
    return False, f"RBAC: {_aggregate(errors)}" if errors else ""


def _aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message as is, several de-duplicated in [a, b]."""
    if len(messages) == 1:
        return messages[0]
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# ---------------------------------------------------------------------------------------------
# Forbidden answers
# ---------------------------------------------------------------------------------------------


def forbidden_message(user: UserInfo, attrs: Attributes, *, reason: str = "") -> str:
    """The `message` of kube-apiserver's 403 Status for this request.

    e.g. `canarygates.piggysec.com "demo" is forbidden: User "bob" cannot patch resource
    "canarygates" in API group "piggysec.com" in the namespace "demo-ns"`; without a name
    `canarygates.piggysec.com is forbidden: ...`; cluster-scoped `... at the cluster scope`;
    a subresource shows as `resource "canarygates/status"` (the qualified resource before
    "is forbidden" leaves it out); the core group as `in API group ""`; a non-resource request
    `forbidden: User "bob" cannot get path "/foo"`. A non-empty `reason` (the authorizer's, see
    `authorize`) is appended after `: `. `&`, `<`, `>` in the user part are HTML-escaped as
    upstream does. (Upstream also passes the text through Go's Errorf as a format string, which
    garbles a `%` in it; that is not mimicked.)
    """
    if not attrs.resource_request:
        text = f"User {_go_quote(user.username)} cannot {attrs.verb} path {_go_quote(attrs.path)}"
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        text = (
            f"User {_go_quote(user.username)} cannot {attrs.verb} resource {_go_quote(resource)}"
            f" in API group {_go_quote(attrs.api_group)}"
        )
        text += f" in the namespace {_go_quote(attrs.namespace)}" if attrs.namespace else " at the cluster scope"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if reason:
        text = f"{text}: {reason}"
    # apierrors.NewForbidden(GroupResource{group, resource}, name, err)
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    if not attrs.api_group and not attrs.resource:
        return f"forbidden: {text}"
    if not attrs.name:
        return f"{qualified} is forbidden: {text}"
    return f"{qualified} {_go_quote(attrs.name)} is forbidden: {text}"


def forbidden_status(user: UserInfo, attrs: Attributes, *, reason: str = "") -> dict:
    """The whole 403 Status body kube-apiserver sends (JSON-ready); `details` is `{}` for a
    non-resource request, as upstream's is."""
    details = {k: v for k, v in (("name", attrs.name), ("group", attrs.api_group), ("kind", attrs.resource)) if v}
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": forbidden_message(user, attrs, reason=reason),
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


# ---------------------------------------------------------------------------------------------
# SelfSubjectRulesReview
# ---------------------------------------------------------------------------------------------


def rules_review(user: UserInfo, namespace: str, objects: Objects) -> dict:
    """The `status` of a SelfSubjectRulesReview for `namespace`, as the RBAC rule resolver lists it.

    Every rule of every binding that applies (ClusterRoleBindings, then the namespace's
    RoleBindings), in that order and not merged: a rule with resources becomes a resourceRule,
    one with nonResourceURLs a nonResourceRule. Bindings that could not be resolved are reported
    in `evaluationError`. `incomplete` is always False (RBAC enumerates everything). Empty
    `apiGroups`, `resources`, `resourceNames` and `nonResourceURLs` are left out, as the v1
    JSON does. `system:masters` gets its rules from the built-in cluster-admin binding.
    """
    resource_rules: list[dict] = []
    non_resource_rules: list[dict] = []
    errors: list[str] = []
    for _source, rule, error in _visit_rules(user, namespace, _Policy(objects)):
        if error:
            errors.append(error)
            continue
        if rule.get("resources"):
            entry = {"verbs": list(rule.get("verbs") or ())}
            for key in ("apiGroups", "resources", "resourceNames"):
                if rule.get(key):
                    entry[key] = list(rule[key])
            resource_rules.append(entry)
        if rule.get("nonResourceURLs"):
            non_resource_rules.append(
                {"verbs": list(rule.get("verbs") or ()), "nonResourceURLs": list(rule["nonResourceURLs"])}
            )
    status: dict = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": False}
    if errors:
        status["evaluationError"] = _aggregate(errors)
    return status
