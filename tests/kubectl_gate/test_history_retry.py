"""``kubectl gate history``, ``retry`` and the ``-o json|yaml`` objects, on the sandbox API.

Covers: show, list and history print kubectl-style objects (apiVersion, kind, metadata; a v1 List for
list) that validate against docs/output-schema.v1alpha1.json, which refuses the old shape; jsonpath
and custom-columns on them; the sidecar's recorder writes status.history on the API server, two
recorders with different views of it lose no entry (conditional writes), and ``history`` shows who
promoted, why, that the step was used and how the rollout ended, as a table and as a GateHistory;
``retry`` refuses a rollout that is not Failed, asks before writing, and with --yes writes the
new pod template annotation and a Retried Event; a user who may not patch the Deployment is told so.
"""

from __future__ import annotations

import json
import pathlib

import jsonschema
import pytest
import yaml
from helpers.cli import SEED

from canarygate.kube.client import MERGE_PATCH, Kube
from canarygate.kube.resources import CANARIES, CANARYGATES

SCHEMA = json.loads((pathlib.Path(__file__).resolve().parents[2] / "docs" / "output-schema.v1alpha1.json").read_text())
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def valid(data):
    jsonschema.validate(data, SCHEMA)
    return data


@pytest.fixture
def seeded(kube, tmp_path, api_client):
    path = tmp_path / "gate.yaml"
    path.write_text(SEED.replace("demo-ns", kube.namespace))
    assert kube("apply", "-f", str(path)).exit_code == 0
    client = Kube(api_client)
    client.request(
        "POST",
        f"/apis/apps/v1/namespaces/{kube.namespace}/deployments",
        body={
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "demo", "namespace": kube.namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "demo"}},
                "template": {
                    "metadata": {"labels": {"app": "demo"}},
                    "spec": {"containers": [{"name": "app", "image": "podinfo:2"}]},
                },
            },
        },
    )
    return client


def canary_status(client, namespace, phase, *, promoted="Unknown", since="2026-11-22T09:00:00Z"):
    client.request(
        "PATCH",
        CANARIES.path(namespace, "demo", "status"),
        body={
            "status": {
                "phase": phase,
                "lastTransitionTime": "2026-11-22T09:30:00Z",
                "conditions": [{"type": "Promoted", "status": promoted, "reason": phase, "lastTransitionTime": since}],
            }
        },
        content_type=MERGE_PATCH,
    )


def test_show_list_and_history_print_objects_of_the_documented_schema(kube, seeded):
    shown = valid(json.loads(kube("show", "demo", "-o", "json").stdout))
    assert (shown["apiVersion"], shown["kind"], shown["metadata"]["name"]) == (
        "gate.canary-gate.io/v1alpha1",
        "GateStatus",
        "demo",
    )
    assert valid(yaml.safe_load(kube("show", "demo", "-o", "yaml").stdout)) == shown
    listed = valid(json.loads(kube("list", "-o", "json").stdout))
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List") and listed["items"] == [shown]
    valid(yaml.safe_load(kube("list", "-o", "yaml").stdout))
    valid(json.loads(kube("history", "demo", "-o", "json").stdout))
    # kubectl's paths work on them as on any object
    assert kube("list", "-o", "jsonpath={.items[*].metadata.name}").stdout == "demo\n"
    columns = kube("list", "-o", "custom-columns=NAME:.metadata.name,PROMOTION:.gates[4].state").stdout
    assert columns.split() == ["NAME", "PROMOTION", "demo", "closed"]
    # The schema is no formality: the shape printed before v1alpha1 is refused.
    old = {k: v for k, v in shown.items() if k not in ("apiVersion", "kind", "metadata")}
    old.update(name="demo", namespace=kube.namespace)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(old, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**shown, "gates": [{**shown["gates"][0], "state": "ajar"}]}, SCHEMA)


def recorder_for(client, namespace):
    """A sidecar recorder whose cache holds the CanaryGate and Canary as the API server has them now."""
    from gate_sidecar.cache import GateCache, StaticHealth
    from gate_sidecar.history import Recorder

    cache = GateCache(health=[StaticHealth()]).fill(
        gates=[client.request("GET", CANARYGATES.path(namespace, "demo"))],
        canaries=[client.request("GET", CANARIES.path(namespace, "demo"))],
    )
    recorder = Recorder(client, cache, wallclock=lambda: 1795000000.0)
    recorder.note("gate", ((namespace, "demo"),))
    return recorder


def test_the_recorded_history_shows_who_promoted_why_and_what_the_rollout_did(kube, seeded):
    ns, client = kube.namespace, seeded
    canary_status(client, ns, "WaitingPromotion")
    assert kube("promote", "demo", "--reason", "CAB-7").exit_code == 0
    stale = recorder_for(client, ns)  # sees the approval; flushes later, from an older copy
    recorder_for(client, ns).flush()
    # Flagger promotes; the sidecar ends the step of that promotion; the rollout ends.
    canary_status(client, ns, "Promoting")
    client.request(
        "PATCH",
        CANARYGATES.path(ns, "demo"),
        body={"metadata": {"annotations": {"gate.piggysec.com/confirm-promotion": None}}},
        content_type=MERGE_PATCH,
    )
    recorder_for(client, ns).flush()
    canary_status(client, ns, "Succeeded", promoted="True", since="2026-11-22T09:40:00Z")
    recorder_for(client, ns).flush()
    stale.flush()  # its test of the record fails; it folds its view into what is stored now
    record = client.request("GET", CANARYGATES.path(ns, "demo"))["status"]["history"]
    got = valid(json.loads(kube("history", "demo", "-o", "json").stdout))
    assert got["kind"] == "GateHistory" and got["dropped"] == 0 == record["dropped"]
    (rollout,) = got["rollouts"]
    assert rollout["result"] == "Succeeded" and rollout["entries"] == record["entries"]
    summary = [(e["kind"], e.get("phase") or e.get("state") or e.get("how")) for e in rollout["entries"]]
    assert summary == [
        ("phase", "WaitingPromotion"),
        ("gate", "opened"),
        ("phase", "Promoting"),
        ("gate", "used"),
        ("phase", "Succeeded"),
    ]
    opened = rollout["entries"][1]
    assert opened["by"] and (opened["gate"], opened["scope"], opened["reason"]) == (
        "confirm-promotion",
        "step",
        "CAB-7",
    )
    table = kube("history", "demo").stdout.splitlines()
    assert table[0].split() == ["ROLLOUT", "TIME", "WHAT", "GATE", "BY", "DETAIL"]
    assert table[2].split()[2:5] == ["opened", "confirm-promotion", opened["by"]] and table[2].endswith(
        "scope step: CAB-7"
    )
    assert "used (a one-step approval, answered)" in table[4]
    assert kube("history", "demo", "-o", "jsonpath={.rollouts[0].entries[1].by}").stdout.strip() == opened["by"]


def test_history_says_when_nothing_is_recorded(kube, seeded):
    result = kube("history", "demo")
    assert result.exit_code == 0 and result.stdout == ""
    assert "No history recorded for canarygate/demo yet" in result.stderr


def template_annotations(client, ns):
    deployment = client.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/demo")
    return (deployment["spec"]["template"]["metadata"] or {}).get("annotations") or {}


def test_retry_refuses_unless_failed_asks_then_writes_a_new_revision(kube, seeded):
    ns, client = kube.namespace, seeded
    canary_status(client, ns, "Progressing")
    refused = kube("retry", "demo", "--yes")
    assert refused.exit_code == 1 and "is Progressing, not Failed" in refused.stderr
    canary_status(client, ns, "Failed", promoted="False", since="2026-11-22T09:40:00Z")
    declined = kube("retry", "demo", input="n\n")
    assert declined.exit_code == 1 and RESTARTED_AT not in template_annotations(client, ns)
    assert "This writes a new revision of deployment/demo" in declined.stderr
    assert "GitOps" in declined.stderr and "spec.template.metadata.annotations" in declined.stderr
    done = kube("retry", "demo", "--yes", "--reason", "flaky load test")
    assert done.exit_code == 0, done.output
    assert "deployment/demo has a new revision" in done.stdout
    assert template_annotations(client, ns)[RESTARTED_AT] == "2026-11-22T10:00:00Z"
    events = client.request("GET", f"/api/v1/namespaces/{ns}/events")["items"]
    retried = [e for e in events if e.get("reason") == "Retried"]
    assert len(retried) == 1 and retried[0]["message"].endswith(": flaky load test")


def test_retry_warns_when_the_rollback_gate_would_end_the_new_analysis(kube, seeded):
    ns, client = kube.namespace, seeded
    canary_status(client, ns, "Failed", promoted="False")
    assert kube("open", "rollback", "demo", "--sticky").exit_code == 0
    result = kube("retry", "demo", "--yes")
    assert result.exit_code == 0
    assert "warning: the rollback gate is opened (live, sticky)" in result.stderr
