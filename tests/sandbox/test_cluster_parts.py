"""The real tier's own parts that need no cluster: signed test tokens, the audit log as request records,
the weights Flagger's Istio router writes."""

from __future__ import annotations

import json

from sandbox.cluster import pki
from sandbox.cluster.flagger import Routes, istio_routes
from sandbox.cluster.handle import parse_audit_line


def test_a_signed_token_carries_its_identity_and_a_changed_one_is_refused():
    token = pki.sign_token("s3cret", "alice", ("team-a", "system:authenticated"))
    assert pki.verify_token("s3cret", token) == {"u": "alice", "g": ["team-a", "system:authenticated"], "i": "alice"}
    prefix, _, mac = token.split(".")
    forged = pki.sign_token("s3cret", "admin", ("system:masters",)).split(".")[1]
    assert pki.verify_token("s3cret", f"{prefix}.{forged}.{mac}") is None  # identity swapped, signature kept
    assert pki.verify_token("another", token) is None  # another run's secret
    assert pki.verify_token("s3cret", "admin-token") is None  # not one of ours


def event(**fields) -> str:
    base = {
        "kind": "Event",
        "verb": "patch",
        "stage": "ResponseComplete",
        "user": {"username": "bob"},
        "requestURI": "/apis/piggysec.com/v1alpha1/namespaces/ns/canarygates/web/status?fieldManager=x",
        "objectRef": {"resource": "canarygates", "subresource": "status", "namespace": "ns", "name": "web"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2026-12-01T10:00:00.000000Z",
        "stageTimestamp": "2026-12-01T10:00:00.250000Z",
    }
    return json.dumps({**base, **fields})


def test_audit_events_read_as_the_emulators_request_records():
    record = parse_audit_line(event())
    assert (record.method, record.path, record.query, record.user) == (
        "PATCH",
        "/apis/piggysec.com/v1alpha1/namespaces/ns/canarygates/web/status",
        {"fieldManager": "x"},
        "bob",
    )
    assert (record.resource, record.subresource, record.namespace, record.name, record.status) == (
        "canarygates",
        "status",
        "ns",
        "web",
        200,
    )
    assert abs(record.duration - 0.25) < 1e-6
    assert parse_audit_line(event(stage="ResponseStarted")) is None  # counted once, when complete
    assert parse_audit_line(event(stage="ResponseStarted", verb="watch")).method == "GET"  # a watch never completes
    assert parse_audit_line("not json") is None and parse_audit_line('{"kind": "EventList"}') is None


def test_weights_are_read_from_the_virtual_service_flagger_writes():
    vs = {
        "spec": {
            "http": [
                {
                    "route": [
                        {"destination": {"host": "web-primary"}, "weight": 70},
                        {"destination": {"host": "web-canary"}, "weight": 30},
                    ]
                }
            ]
        }
    }
    assert istio_routes(vs) == Routes(70, 30, False)
    assert istio_routes(None) == Routes(100, 0, False)


def test_a_crd_just_created_without_status_is_not_yet_established():
    from kubernetes.client import (
        V1CustomResourceDefinition,
        V1CustomResourceDefinitionCondition,
        V1CustomResourceDefinitionNames,
        V1CustomResourceDefinitionSpec,
        V1CustomResourceDefinitionStatus,
    )

    from sandbox.cluster.runner import _established

    names = V1CustomResourceDefinitionNames(kind="Canary", plural="canaries")
    spec = V1CustomResourceDefinitionSpec(group="flagger.app", names=names, scope="Namespaced", versions=[])

    def crd(status):
        return V1CustomResourceDefinition(spec=spec, status=status)

    def conditions(*pairs):
        items = [V1CustomResourceDefinitionCondition(type=t, status=s) for t, s in pairs]
        return V1CustomResourceDefinitionStatus(accepted_names=names, stored_versions=[], conditions=items)

    assert not _established(crd(None))  # what the API answers right after the create
    assert not _established(crd(V1CustomResourceDefinitionStatus(accepted_names=names, stored_versions=[])))
    assert not _established(crd(conditions(("NamesAccepted", "True"), ("Established", "False"))))
    assert _established(crd(conditions(("NamesAccepted", "True"), ("Established", "True"))))
