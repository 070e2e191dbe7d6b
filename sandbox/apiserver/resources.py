"""The resource table: built-in kinds as data, plus the kinds CRDs start serving.

A :class:`ResourceType` is what discovery, routing, tables and validation need to
know about one group/version/resource.  Storage is keyed by ``(group, plural)``
only: every served version of a CRD shares one set of objects and a read just
rewrites ``apiVersion`` (the CRD ``None`` conversion strategy).
"""

from __future__ import annotations

import dataclasses
import threading

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)


@dataclasses.dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    status_subresource: bool = False
    extra_subresources: tuple[str, ...] = ()  # served as plain object reads/writes (e.g. "scale" is not)
    printer_columns: tuple[dict, ...] | None = None  # CRD additionalPrinterColumns; None for built-ins
    schema: dict | None = None  # CRD openAPIV3Schema; None = no validation
    crd_name: str = ""  # set for CRD-served kinds
    unconditional_update: bool = True  # NB: CRs refuse PUT without resourceVersion
    virtual: bool = False  # create-only reviews, nothing stored
    connect_subresources: tuple[str, ...] = ()  # answered by a handler, not stored (services/proxy)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: all versions of one group/resource share objects."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def subresources(self) -> tuple[str, ...]:
        return (("status",) if self.status_subresource else ()) + self.extra_subresources

    @property
    def is_builtin(self) -> bool:
        return not self.crd_name


def _r(group, version, plural, kind, namespaced, **kw) -> ResourceType:
    kw.setdefault("singular", kind.lower())
    return ResourceType(group, version, plural, kind, namespaced, **kw)


BUILTINS: tuple[ResourceType, ...] = (
    _r(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        short_names=("ns",),
        status_subresource=True,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _r("", "v1", "events", "Event", True, short_names=("ev",)),
    _r(
        "",
        "v1",
        "services",
        "Service",
        True,
        short_names=("svc",),
        categories=("all",),
        status_subresource=True,
        connect_subresources=("proxy",),
    ),
    _r("", "v1", "pods", "Pod", True, short_names=("po",), categories=("all",), status_subresource=True),
    _r("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
    _r("", "v1", "secrets", "Secret", True),
    _r("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
    _r(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        short_names=("deploy",),
        categories=("all",),
        status_subresource=True,
    ),
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _r(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        status_subresource=True,
    ),
    _r("coordination.k8s.io", "v1", "leases", "Lease", True),
    _r("events.k8s.io", "v1", "events", "Event", True, short_names=("ev",)),
    _r(
        "authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False, verbs=CREATE_ONLY, virtual=True
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        verbs=CREATE_ONLY,
        virtual=True,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        False,
        verbs=CREATE_ONLY,
        virtual=True,
    ),
)

# NB: kube-apiserver lists the built-in groups in this order; CRD groups follow, sorted.
GROUP_ORDER = (
    "",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "rbac.authorization.k8s.io",
    "apiextensions.k8s.io",
    "coordination.k8s.io",
)


def resources_from_crd(crd: dict) -> list[ResourceType]:
    """The ResourceTypes a CRD serves: one per ``served`` version."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    out = []
    for ver in spec.get("versions", []):
        if not ver.get("served", True):
            continue
        subs = ver.get("subresources") or {}
        schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        out.append(
            ResourceType(
                group=spec["group"],
                version=ver["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in subs,
                printer_columns=tuple(ver.get("additionalPrinterColumns") or ()),
                schema=schema,
                crd_name=crd["metadata"]["name"],
                unconditional_update=False,
            )
        )
    return out


class Registry:
    """Built-in kinds plus the kinds served for the stored CRDs; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._crd: dict[str, list[ResourceType]] = {}
        self.revision = 0  # bumped when the served set changes (openapi hash, discovery)

    def set_crd(self, crd: dict) -> None:
        with self._lock:
            self._crd[crd["metadata"]["name"]] = resources_from_crd(crd)
            self.revision += 1

    def remove_crd(self, name: str) -> None:
        with self._lock:
            if self._crd.pop(name, None) is not None:
                self.revision += 1

    def by_crd(self, name: str) -> ResourceType | None:
        with self._lock:
            rs = self._crd.get(name) or []
        return rs[0] if rs else None

    def all(self) -> list[ResourceType]:
        with self._lock:
            crds = [r for rs in self._crd.values() for r in rs]
        return list(BUILTINS) + crds

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        for r in self.all():
            if r.group == group and r.version == version and r.plural == plural:
                return r
        return None

    def by_key(self, key: tuple[str, str]) -> ResourceType | None:
        """The storage (first served) version of a group/resource."""
        for r in self.all():
            if r.key == key:
                return r
        return None

    def group_versions(self) -> dict[str, list[str]]:
        """``{group: [versions...]}`` in kube's order (built-ins first, preferred version first)."""
        out: dict[str, list[str]] = {}
        for r in sorted(self.all(), key=_group_rank):
            versions = out.setdefault(r.group, [])
            if r.version not in versions:
                versions.append(r.version)
        for vs in out.values():
            vs.sort(key=version_priority)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [r for r in self.all() if r.group == group and r.version == version]


def _group_rank(r: ResourceType) -> tuple[int, str]:
    try:
        return (GROUP_ORDER.index(r.group), "")
    except ValueError:
        return (len(GROUP_ORDER), r.group)


def version_priority(v: str) -> tuple[int, int, int, str]:
    """kube's version ordering: GA > beta > alpha, higher numbers first, then others alphabetically."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (3, 0, 0, v)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, v)
