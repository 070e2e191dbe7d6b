"""Contract: object semantics through the official client.

Covers: uid/creationTimestamp/generation/resourceVersion on create; 409 AlreadyExists;
404 NotFound Status bodies; list with labelSelector and fieldSelector; PUT with a stale
resourceVersion (409 Conflict); merge patch (null deletes), JSON patch with ``test``;
no-op writes keep the resourceVersion; generation bumps on spec changes only; the
status subresource; CRD schema validation (422 with causes), pruning and strict field
validation; delete (a Success Status, or the object when deferred or for Services); namespaces
(404 in a missing namespace; deleting one: Terminating, contents deleted, then gone);
built-in kinds (strategic merge patch on a Deployment).  Runs against a real cluster
too (GATE_E2E_KUBECONFIG).
"""

from __future__ import annotations

import json
import time
import uuid

import kubernetes
import pytest
from kubernetes.client import ApiException

G, V, P = "piggysec.com", "v1alpha1", "canarygates"


def gate(name: str, **spec) -> dict:
    spec.setdefault("target", {"namespace": "demo-ns", "name": name})
    return {"apiVersion": f"{G}/{V}", "kind": "CanaryGate", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def co(api_client):
    return kubernetes.client.CustomObjectsApi(api_client)


def status_of(e: ApiException) -> dict:
    return json.loads(e.body)


def test_create_sets_server_metadata(co, crds, namespace):
    obj = co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    meta = obj["metadata"]
    assert meta["namespace"] == namespace
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    again = co.get_namespaced_custom_object(G, V, namespace, P, "a")
    assert again["metadata"] == meta


def test_create_twice_is_409_already_exists(co, crds, namespace):
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    with pytest.raises(ApiException) as e:
        co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    body = status_of(e.value)
    assert e.value.status == 409
    assert body["kind"] == "Status" and body["reason"] == "AlreadyExists" and body["code"] == 409
    assert body["message"] == 'canarygates.piggysec.com "a" already exists'
    assert body["details"] == {"name": "a", "group": G, "kind": P}


def test_get_missing_is_404_not_found(co, crds, namespace):
    with pytest.raises(ApiException) as e:
        co.get_namespaced_custom_object(G, V, namespace, P, "nope")
    body = status_of(e.value)
    assert (e.value.status, body["reason"], body["code"]) == (404, "NotFound", 404)
    assert body["message"] == 'canarygates.piggysec.com "nope" not found'


def test_create_in_missing_namespace_is_404(co, crds):
    with pytest.raises(ApiException) as e:
        co.create_namespaced_custom_object(G, V, "no-such-namespace-x1", P, gate("a"))
    assert e.value.status == 404
    assert status_of(e.value)["message"] == 'namespaces "no-such-namespace-x1" not found'


def test_list_with_label_and_field_selectors(co, crds, namespace):
    for name, tier in (("a", "gold"), ("b", "silver"), ("c", "gold")):
        body = gate(name)
        body["metadata"]["labels"] = {"tier": tier}
        co.create_namespaced_custom_object(G, V, namespace, P, body)
    names = lambda lst: sorted(i["metadata"]["name"] for i in lst["items"])  # noqa: E731
    lst = co.list_namespaced_custom_object(G, V, namespace, P)
    assert lst["kind"] == "CanaryGateList" and int(lst["metadata"]["resourceVersion"]) > 0
    assert names(lst) == ["a", "b", "c"]
    assert names(co.list_namespaced_custom_object(G, V, namespace, P, label_selector="tier=gold")) == ["a", "c"]
    assert names(co.list_namespaced_custom_object(G, V, namespace, P, label_selector="tier!=gold")) == ["b"]
    assert names(co.list_namespaced_custom_object(G, V, namespace, P, label_selector="tier in (silver,bronze)")) == [
        "b"
    ]
    assert names(co.list_namespaced_custom_object(G, V, namespace, P, field_selector="metadata.name=b")) == ["b"]
    every = co.list_cluster_custom_object(G, V, P, field_selector=f"metadata.namespace={namespace}")
    assert names(every) == ["a", "b", "c"]
    with pytest.raises(ApiException) as e:
        co.list_namespaced_custom_object(G, V, namespace, P, field_selector="spec.rollout=opened")
    assert e.value.status == 400


def test_list_in_missing_namespace_is_empty(co, crds):
    assert co.list_namespaced_custom_object(G, V, "no-such-namespace-x2", P)["items"] == []


def test_replace_with_stale_resource_version_is_409_conflict(co, crds, namespace):
    created = co.create_namespaced_custom_object(G, V, namespace, P, gate("a", rollout="opened"))
    current = co.patch_namespaced_custom_object(G, V, namespace, P, "a", {"spec": {"rollout": "closed"}})
    assert current["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    stale = dict(created, spec={**created["spec"], "rollout": "opened"})
    with pytest.raises(ApiException) as e:
        co.replace_namespaced_custom_object(G, V, namespace, P, "a", stale)
    body = status_of(e.value)
    assert (e.value.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on canarygates.piggysec.com "a": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    fresh = dict(current, spec={**current["spec"], "rollout": "opened"})
    replaced = co.replace_namespaced_custom_object(G, V, namespace, P, "a", fresh)
    assert replaced["spec"]["rollout"] == "opened"


def test_merge_patch_merges_and_null_deletes(co, crds, namespace):
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a", rollout="closed", rollback="closed"))
    out = co.patch_namespaced_custom_object(
        G,
        V,
        namespace,
        P,
        "a",
        {"metadata": {"annotations": {"k": "v"}}, "spec": {"rollout": "opened", "rollback": None}},
    )
    assert out["spec"]["rollout"] == "opened" and "rollback" not in out["spec"]
    assert out["spec"]["target"]["name"] == "a"
    assert out["metadata"]["annotations"] == {"k": "v"}


def test_json_patch_with_test_op(co, crds, namespace):
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a", rollout="closed"))
    ops = [
        {"op": "test", "path": "/spec/rollout", "value": "closed"},
        {"op": "replace", "path": "/spec/rollout", "value": "opened"},
    ]
    out = co.patch_namespaced_custom_object(G, V, namespace, P, "a", ops, _content_type="application/json-patch+json")
    assert out["spec"]["rollout"] == "opened"
    with pytest.raises(ApiException) as e:  # the test op now fails
        co.patch_namespaced_custom_object(G, V, namespace, P, "a", ops, _content_type="application/json-patch+json")
    assert e.value.status == 422
    assert co.get_namespaced_custom_object(G, V, namespace, P, "a")["spec"]["rollout"] == "opened"


def test_json_patch_list_sent_as_merge_patch_is_400(co, crds, namespace):
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    with pytest.raises(ApiException) as e:
        co.patch_namespaced_custom_object(G, V, namespace, P, "a", [{"op": "remove", "path": "/spec/target"}])
    assert e.value.status == 400


def test_noop_patch_keeps_resource_version(co, crds, namespace):
    created = co.create_namespaced_custom_object(G, V, namespace, P, gate("a", rollout="opened"))
    out = co.patch_namespaced_custom_object(G, V, namespace, P, "a", {"spec": {"rollout": "opened"}})
    assert out["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_generation_bumps_on_spec_changes_only(co, crds, namespace):
    co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    out = co.patch_namespaced_custom_object(G, V, namespace, P, "a", {"metadata": {"labels": {"x": "y"}}})
    assert out["metadata"]["generation"] == 1
    out = co.patch_namespaced_custom_object(G, V, namespace, P, "a", {"spec": {"rollout": "closed"}})
    assert out["metadata"]["generation"] == 2
    out = co.patch_namespaced_custom_object_status(G, V, namespace, P, "a", {"status": {"phase": "Progressing"}})
    assert out["metadata"]["generation"] == 2


def test_status_subresource_isolation(co, crds, namespace):
    body = gate("a")
    body["status"] = {"phase": "ignored-on-create"}
    created = co.create_namespaced_custom_object(G, V, namespace, P, body)
    assert "status" not in created
    out = co.patch_namespaced_custom_object_status(
        G, V, namespace, P, "a", {"status": {"phase": "Waiting", "canaryWeight": 0}, "spec": {"rollout": "closed"}}
    )
    assert out["status"] == {"phase": "Waiting", "canaryWeight": 0}
    assert "rollout" not in out["spec"]  # /status writes only status
    out = co.patch_namespaced_custom_object(
        G, V, namespace, P, "a", {"status": {"phase": "Hacked"}, "spec": {"rollout": "opened"}}
    )
    assert out["status"]["phase"] == "Waiting"  # the main resource ignores status
    assert out["spec"]["rollout"] == "opened"


def test_schema_violation_is_422_with_causes(co, crds, namespace):
    with pytest.raises(ApiException) as e:
        co.create_namespaced_custom_object(G, V, namespace, P, gate("a", rollout="maybe"))
    body = status_of(e.value)
    assert (e.value.status, body["reason"], body["code"]) == (422, "Invalid", 422)
    assert body["details"]["kind"] == "CanaryGate" and body["details"]["name"] == "a"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueNotSupported",
            "field": "spec.rollout",
            "message": 'Unsupported value: "maybe": supported values: "opened", "closed"',
        }
    ]
    assert body["message"] == (
        'CanaryGate.piggysec.com "a" is invalid: spec.rollout: Unsupported value: "maybe": '
        'supported values: "opened", "closed"'
    )


def test_schema_required_and_type_errors(co, crds, namespace):
    with pytest.raises(ApiException) as e:
        co.create_namespaced_custom_object(G, V, namespace, P, gate("a", target={"namespace": "x"}))
    causes = status_of(e.value)["details"]["causes"]
    assert {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.target.name"} in causes
    co.create_namespaced_custom_object(G, V, namespace, P, gate("b"))
    with pytest.raises(ApiException) as e:
        co.patch_namespaced_custom_object_status(G, V, namespace, P, "b", {"status": {"canaryWeight": "ten"}})
    cause = status_of(e.value)["details"]["causes"][0]
    assert e.value.status == 422
    assert (cause["reason"], cause["field"]) == ("FieldValueTypeInvalid", "status.canaryWeight")


def test_unknown_fields_are_pruned_or_refused_when_strict(co, crds, namespace):
    out = co.create_namespaced_custom_object(G, V, namespace, P, gate("a", surprise="x"))
    assert "surprise" not in out["spec"]
    with pytest.raises(ApiException) as e:
        co.create_namespaced_custom_object(G, V, namespace, P, gate("b", surprise="x"), field_validation="Strict")
    assert e.value.status == 400
    assert 'unknown field "spec.surprise"' in status_of(e.value)["message"]


def test_delete_answers_success_status_then_404(co, crds, namespace):
    created = co.create_namespaced_custom_object(G, V, namespace, P, gate("a"))
    out = co.delete_namespaced_custom_object(G, V, namespace, P, "a")
    assert (out["kind"], out["status"]) == ("Status", "Success")
    assert out["details"] == {"name": "a", "group": G, "kind": P, "uid": created["metadata"]["uid"]}
    with pytest.raises(ApiException) as e:
        co.get_namespaced_custom_object(G, V, namespace, P, "a")
    assert e.value.status == 404
    with pytest.raises(ApiException) as e:
        co.delete_namespaced_custom_object(G, V, namespace, P, "a")
    assert e.value.status == 404


def test_finalizers_hold_deletion(co, crds, namespace):
    body = gate("a")
    body["metadata"]["finalizers"] = ["sandbox.test/hold"]
    co.create_namespaced_custom_object(G, V, namespace, P, body)
    answer = co.delete_namespaced_custom_object(G, V, namespace, P, "a")
    held = co.get_namespaced_custom_object(G, V, namespace, P, "a")
    assert answer == held  # NB: a deferred deletion answers the object, not a Status
    assert held["metadata"]["deletionTimestamp"] and held["metadata"]["generation"] == 2
    co.patch_namespaced_custom_object(G, V, namespace, P, "a", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as e:
        co.get_namespaced_custom_object(G, V, namespace, P, "a")
    assert e.value.status == 404


def test_core_kinds_and_strategic_merge_patch(api_client, namespace):
    core = kubernetes.client.CoreV1Api(api_client)
    apps = kubernetes.client.AppsV1Api(api_client)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    assert cm.data == {"a": "1"}
    secret = core.create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert secret.data == {"k": "dg=="}
    dep = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "app", "image": "nginx:1.26"}, {"name": "side", "image": "busybox:1"}]
                },
            },
        },
    }
    created = apps.create_namespaced_deployment(namespace, dep)
    # a dict body goes out as a strategic merge patch: containers merge by name
    out = apps.patch_namespaced_deployment(
        "web", namespace, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}}
    )
    images = {c.name: c.image for c in out.spec.template.spec.containers}
    assert images == {"app": "nginx:1.27", "side": "busybox:1"}
    assert out.metadata.generation == created.metadata.generation + 1
    names = [d.metadata.name for d in apps.list_namespaced_deployment(namespace, label_selector="").items]
    assert names == ["web"]


def test_core_delete_answers(api_client, namespace):
    core = kubernetes.client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}})
    out = core.delete_namespaced_config_map("cm", namespace, _preload_content=False)
    out = json.loads(out.data)
    assert (out["kind"], out["status"]) == ("Status", "Success")
    assert set(out["details"]) == {"name", "kind", "uid"} and out["details"]["kind"] == "configmaps"
    core.create_namespaced_service(namespace, {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}})
    svc = json.loads(core.delete_namespaced_service("svc", namespace, _preload_content=False).data)
    assert (svc["kind"], svc["metadata"]["name"]) == ("Service", "svc")  # NB: its registry answers the object


SAFETY_NET = 60  # seconds: the real namespace controller takes a few; never an assertion on speed


def wait_for(condition, what: str):
    deadline = time.monotonic() + SAFETY_NET
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (gave up after {SAFETY_NET} s)")
        time.sleep(0.2)
    return result


def test_deleting_a_namespace_terminates_it_then_its_objects_and_it_go(api_client, crds):
    core = kubernetes.client.CoreV1Api(api_client)
    co = kubernetes.client.CustomObjectsApi(api_client)
    ns = f"t-ns-deletion-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    co.create_namespaced_custom_object(G, V, ns, P, gate("a"))
    held = gate("held")
    held["metadata"]["finalizers"] = ["sandbox.test/hold"]
    co.create_namespaced_custom_object(G, V, ns, P, held)
    answer = json.loads(core.delete_namespace(ns, _preload_content=False).data)
    assert (answer["kind"], answer["status"]["phase"]) == ("Namespace", "Terminating")
    assert answer["metadata"]["deletionTimestamp"] and answer["spec"]["finalizers"] == ["kubernetes"]

    def only_held_left():
        items = co.list_namespaced_custom_object(G, V, ns, P)["items"]
        return [i["metadata"]["name"] for i in items] == ["held"] and items[0]["metadata"].get("deletionTimestamp")

    wait_for(only_held_left, "the namespace controller did not delete the contents")
    assert core.read_namespace(ns).status.phase == "Terminating"  # a finalizer holds it
    with pytest.raises(ApiException) as e:
        co.create_namespaced_custom_object(G, V, ns, P, gate("late"))
    body = status_of(e.value)
    assert (e.value.status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        f'canarygates.piggysec.com "late" is forbidden: unable to create new content in '
        f"namespace {ns} because it is being terminated"
    )
    assert body["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    co.patch_namespaced_custom_object(G, V, ns, P, "held", {"metadata": {"finalizers": None}})

    def namespace_gone():
        try:
            core.read_namespace(ns)
        except ApiException as e:
            return e.status == 404
        return False

    wait_for(namespace_gone, "the namespace was not removed once empty")
    assert co.list_namespaced_custom_object(G, V, ns, P)["items"] == []
