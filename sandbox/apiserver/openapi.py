"""A minimal ``/openapi/v3``: enough for ``kubectl apply`` to trust server-side validation.

kubectl looks up the PATCH operation whose ``x-kubernetes-group-version-kind``
matches the object and checks that it takes the ``fieldValidation`` query
parameter; then it sends ``fieldValidation=Strict`` and skips client-side
validation.  NB: strategic-merge-patch is deliberately *not* listed in
``requestBody.content``: with a schema-less document kubectl would try to build a
strategic patch from it and fail.  ``components.schemas`` carries each CRD
version's schema so that ``kubectl explain`` has something to show.
``/openapi/v2`` is served as JSON (``swagger: "2.0"``, the same operations and
schemas, under ``definitions``) when asked for JSON; asked for its protobuf form only
(what client-go's OpenAPISchema sends) it is 404, which kubectl takes as "no v2".
"""

from __future__ import annotations

import hashlib
from typing import Any

from sandbox.apiserver.resources import Registry, ResourceType


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _doc_hash(registry: Registry, group: str, version: str) -> str:
    text = repr([(r.plural, r.kind, r.namespaced, r.schema) for r in registry.in_group_version(group, version)])
    return hashlib.sha512(text.encode()).hexdigest()[:64].upper()


def index(registry: Registry) -> dict[str, Any]:
    paths = {}
    for group, versions in registry.group_versions().items():
        for v in versions:
            p = _gv_path(group, v)
            paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={_doc_hash(registry, group, v)}"}
    return {"paths": paths}


def _schema_name(r: ResourceType) -> str:
    rev = ".".join(reversed(r.group.split("."))) if r.group else "io.k8s.api.core"
    return f"{rev}.{r.version}.{r.kind}"


def group_version_doc(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    rs = registry.in_group_version(group, version)
    if not rs:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    base = "/" + _gv_path(group, version)
    for r in rs:
        if r.virtual:
            continue
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        item = f"{base}/namespaces/{{namespace}}/{r.plural}/{{name}}" if r.namespaced else f"{base}/{r.plural}/{{name}}"
        params = [
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}},
        ]
        ref = {"$ref": f"#/components/schemas/{_schema_name(r)}"}
        paths[item] = {
            "get": {
                "x-kubernetes-action": "get",
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
            },
            "patch": {
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "requestBody": {
                    "content": {
                        "application/json-patch+json": {"schema": {"type": "object"}},
                        "application/merge-patch+json": {"schema": {"type": "object"}},
                        "application/apply-patch+yaml": {"schema": {"type": "object"}},
                    }
                },
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
            },
        }
        schema = dict(r.schema) if r.schema else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        schema["x-kubernetes-group-version-kind"] = [gvk]
        schemas[_schema_name(r)] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def swagger_v2(registry: Registry) -> dict[str, Any]:
    """``/openapi/v2`` as JSON: every group-version's operations and schemas, swagger 2.0 shaped."""
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            doc = group_version_doc(registry, group, version)
            for path, ops in (doc or {}).get("paths", {}).items():
                paths[path] = {verb: _v2_operation(op) for verb, op in ops.items()}
            definitions.update((doc or {}).get("components", {}).get("schemas", {}))
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "1.37"},
        "paths": paths,
        "definitions": definitions,
    }


def _v2_operation(op: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in op.items() if k not in ("parameters", "requestBody", "responses")}
    params = [{"name": p["name"], "in": p["in"], **p.get("schema", {})} for p in op.get("parameters", [])]
    if "requestBody" in op:
        out["consumes"] = list(op["requestBody"]["content"])
        params.insert(0, {"name": "body", "in": "body", "required": True, "schema": {"type": "object"}})
    if params:
        out["parameters"] = params
    out["produces"] = ["application/json"]
    out["responses"] = {
        code: {"description": r.get("description", ""), "schema": _v2_ref(r["content"]["application/json"]["schema"])}
        for code, r in op.get("responses", {}).items()
    }
    return out


def _v2_ref(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return {"$ref": ref.replace("#/components/schemas/", "#/definitions/")} if ref else schema
