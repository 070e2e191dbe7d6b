"""Contract: discovery, openapi, tables, protobuf bodies.

Covers: /version; aggregated discovery (its media type, scope and responseKind)
and legacy discovery, with a new CRD's group served at once; /openapi/v3 index and
group-version documents declaring ``fieldValidation``; /openapi/v2 in JSON; Tables
with a CRD's printer columns and server-rendered ages; kube protobuf request bodies
(what kubectl's typed clients send; answers asked for in JSON, as the emulator answers no protobuf).
"""

from __future__ import annotations

import json

import kubernetes
import pytest

from sandbox.apiserver import protobuf

G, V, P = "piggysec.com", "v1alpha1", "canarygates"
AGG = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def call(api_client, method: str, path: str, *, accept="application/json", body=None, content_type=None):
    """(status, content type, parsed JSON, else the bytes) of a raw request with the client's credentials.

    NB: parsed whatever the Content-Type says: kube-apiserver answers the openapi v3 index as text/plain."""
    headers = {"Accept": accept}
    if content_type:
        headers["Content-Type"] = content_type
    token = api_client.configuration.api_key.get("BearerToken") or api_client.configuration.api_key.get("authorization")
    if token:
        headers["Authorization"] = token
    resp = api_client.rest_client.pool_manager.request(
        method, api_client.configuration.host + path, headers=headers, body=body, preload_content=True
    )
    ctype = resp.headers.get("Content-Type", "")
    try:
        return resp.status, ctype, json.loads(resp.data)
    except ValueError:
        return resp.status, ctype, resp.data


def test_version(api_client):
    code, _, body = call(api_client, "GET", "/version")
    assert code == 200 and body["major"] == "1" and body["gitVersion"].startswith("v1.")


def test_aggregated_discovery_serves_crd_group(api_client, crds):
    code, ctype, body = call(api_client, "GET", "/apis", accept=AGG)
    assert code == 200
    assert ctype.replace(" ", "") == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    group = next(i for i in body["items"] if i["metadata"]["name"] == G)
    res = next(r for r in group["versions"][0]["resources"] if r["resource"] == P)
    assert res["scope"] == "Namespaced"
    assert res["responseKind"] == {"group": G, "version": V, "kind": "CanaryGate"}
    assert "cg" in res["shortNames"]
    assert [s["subresource"] for s in res["subresources"]] == ["status"]
    assert res["verbs"] == ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
    code, ctype, core = call(api_client, "GET", "/api", accept=AGG)
    assert [i["metadata"] for i in core["items"]] == [{}]  # NB: the core group has no name at all
    services = next(r for r in core["items"][0]["versions"][0]["resources"] if r["resource"] == "services")
    assert services["responseKind"] == {"group": "", "version": "", "kind": "Service"}
    assert {
        "subresource": "proxy",
        "responseKind": {"group": "", "version": "", "kind": "ServiceProxyOptions"},
        "verbs": ["create", "delete", "get", "patch", "update"],
    } in services["subresources"]


def test_legacy_discovery(api_client, crds):
    _, ctype, groups = call(api_client, "GET", "/apis")
    assert ctype.startswith("application/json") and "as=APIGroupDiscoveryList" not in ctype
    assert {"groupVersion": f"{G}/{V}", "version": V} in next(g for g in groups["groups"] if g["name"] == G)["versions"]
    _, _, resources = call(api_client, "GET", f"/apis/{G}/{V}")
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name[P]["namespaced"] is True and by_name[P]["kind"] == "CanaryGate"
    assert f"{P}/status" in by_name
    _, _, core = call(api_client, "GET", "/api/v1")
    assert {"namespaces", "pods", "configmaps", "secrets", "services", "events"} <= {
        r["name"] for r in core["resources"]
    }


def test_openapi_v3_declares_field_validation(api_client, crds):
    code, ctype, index = call(api_client, "GET", "/openapi/v3")
    assert (code, ctype) == (200, "text/plain; charset=utf-8")
    url = index["paths"][f"apis/{G}/{V}"]["serverRelativeURL"]
    _, _, doc = call(api_client, "GET", url)
    patch = doc["paths"][f"/apis/{G}/{V}/namespaces/{{namespace}}/{P}/{{name}}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": G, "version": V, "kind": "CanaryGate"}
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


def test_openapi_v2_in_json_has_the_crd(api_client, crds):
    code, ctype, doc = call(api_client, "GET", "/openapi/v2")
    assert (code, ctype, doc["swagger"]) == (200, "application/json", "2.0")
    assert doc["definitions"][f"com.piggysec.{V}.CanaryGate"]["x-kubernetes-group-version-kind"] == [
        {"group": G, "kind": "CanaryGate", "version": V}
    ]
    patch = doc["paths"][f"/apis/{G}/{V}/namespaces/{{namespace}}/{P}/{{name}}"]["patch"]
    assert "application/merge-patch+json" in patch["consumes"]
    assert "fieldValidation" in [p.get("name") for p in patch["parameters"]]


def test_table_has_printer_columns_and_ages(api_client, crds, namespace):
    kubernetes.client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        G,
        V,
        namespace,
        P,
        {
            "apiVersion": f"{G}/{V}",
            "kind": "CanaryGate",
            "metadata": {"name": "a", "labels": {"t": "1"}},
            "spec": {"target": {"namespace": "x", "name": "a"}},
        },
    )
    kubernetes.client.CustomObjectsApi(api_client).patch_namespaced_custom_object_status(
        G, V, namespace, P, "a", {"status": {"target": "x/a", "canaryWeight": 10}}
    )
    code, _, table = call(api_client, "GET", f"/apis/{G}/{V}/namespaces/{namespace}/{P}", accept=TABLE)
    assert code == 200 and table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == ["Name", "Target", "Phase", "Weight", "Holding", "Closed", "Age"]
    row = table["rows"][0]
    assert row["cells"][:4] == ["a", "x/a", None, 10]
    assert row["cells"][-1].endswith("s")
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["namespace"] == namespace
    assert row["object"]["metadata"]["labels"] == {"t": "1"}


def test_protobuf_bodies_are_decoded(api_client, crds, namespace):
    ns = f"{namespace}-pb"
    body = protobuf.encode({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    code, _, created = call(
        api_client,
        "POST",
        "/api/v1/namespaces?fieldManager=kubectl-create",
        body=body,
        content_type="application/vnd.kubernetes.protobuf",
    )
    assert code == 201 and created["metadata"]["name"] == ns
    kubernetes.client.CoreV1Api(api_client).delete_namespace(ns)
    review = protobuf.encode(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": {"namespace": namespace, "verb": "patch", "group": G, "resource": P}},
        }
    )
    code, _, out = call(
        api_client,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body=review,
        content_type="application/vnd.kubernetes.protobuf",
    )
    assert code == 201 and out["status"]["allowed"] is True
    assert out["spec"]["resourceAttributes"]["resource"] == P


@pytest.mark.parametrize(
    "body",
    [
        protobuf.MAGIC + b"\x08\x05",  # the type meta (field 1) as the number 5, not a message
        protobuf.MAGIC + b"\x0a\x02\x08\x05",  # apiVersion (field 1 of the type meta) as a number
        protobuf.MAGIC + b"\x0a\x0f\x0a\x02v1\x12\x09Namespace" + b"\x10\x05",  # a Namespace, the object a number
    ],
    ids=["type-meta-a-number", "api-version-a-number", "object-a-number"],
)
def test_malformed_protobuf_bodies_are_a_400(api_client, body):
    # NB: a 400 creates nothing (and other tests create namespaces meanwhile, in the real tier)
    code, _, out = call(
        api_client, "POST", "/api/v1/namespaces", body=body, content_type="application/vnd.kubernetes.protobuf"
    )
    assert code == 400 and out["kind"] == "Status" and out["reason"] == "BadRequest", out
