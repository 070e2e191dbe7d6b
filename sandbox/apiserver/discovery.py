"""Discovery documents: aggregated (apidiscovery.k8s.io/v2) and legacy.

kubectl 1.37 asks ``/api`` and ``/apis`` for the aggregated form first and reads
the answer as aggregated *only* when its Content-Type carries the v2 parameters;
``kubectl auth can-i`` also reads the legacy per-group-version list.
"""

from __future__ import annotations

from typing import Any

from sandbox.apiserver.resources import Registry, ResourceType

AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    return "as=APIGroupDiscoveryList" in accept and "v=v2" in accept and "g=apidiscovery.k8s.io" in accept


# NB: the apiextensions handler lists a CRD's verbs in this order; built-ins sorted.
CRD_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
# What a connect subresource answers and accepts, as the built-in registries declare it.
CONNECT = {"proxy": ("ServiceProxyOptions", ["create", "delete", "get", "patch", "update"])}


def _aggregated_resource(r: ResourceType) -> dict[str, Any]:
    # NB: a built-in's responseKind leaves group and version empty (those of the list they are in);
    # a CRD's names them.
    gv = {"group": "", "version": ""} if r.is_builtin else {"group": r.group, "version": r.version}
    kind = {**gv, "kind": r.kind}
    verbs = sorted(r.verbs) if r.is_builtin else [v for v in CRD_VERBS if v in r.verbs]
    out: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": kind,
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": verbs,
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    subs = [{"subresource": s, "responseKind": kind, "verbs": ["get", "patch", "update"]} for s in r.subresources]
    subs += [
        {"subresource": s, "responseKind": {**gv, "kind": CONNECT[s][0]}, "verbs": CONNECT[s][1]}
        for s in r.connect_subresources
    ]
    if subs:
        out["subresources"] = sorted(subs, key=lambda s: s["subresource"])
    return out


def aggregated(registry: Registry, *, core: bool) -> dict[str, Any]:
    items = []
    for group, versions in registry.group_versions().items():
        if (group == "") != core:
            continue
        items.append(
            {
                "metadata": {"name": group} if group else {},
                "versions": [
                    {
                        "version": v,
                        "resources": [_aggregated_resource(r) for r in registry.in_group_version(group, v)],
                        "freshness": "Current",
                    }
                    for v in versions
                ],
            }
        )
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(group: str, versions: list[str]) -> dict[str, Any]:
    """One API group's entry (``versions`` not empty, the preferred first)."""
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(group)
    if not versions or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group(g, versions) for g, versions in registry.group_versions().items() if g and versions]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    rs = registry.in_group_version(group, version)
    if not rs:
        return None
    resources = []
    for r in rs:
        verbs = sorted(r.verbs) if r.is_builtin else [v for v in CRD_VERBS if v in r.verbs]
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs,
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        subs = [(sub, r.kind, ["get", "patch", "update"]) for sub in r.subresources]
        subs += [(sub, *CONNECT[sub]) for sub in r.connect_subresources]
        for sub, kind, sub_verbs in sorted(subs):
            resources.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": kind,
                    "verbs": sub_verbs,
                }
            )
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
