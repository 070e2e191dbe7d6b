"""Verbs that mean what Flagger does with them (issue 8), against the sandbox API. Covers: closing a
check gate during a rollout refuses without --yes, saying Flagger fails checks and rolls back and what
pauses instead, and writes nothing; idle it needs no --yes; show draws a closed check gate as
"failing N/threshold", never "holding"; pause closes both confirm gates for this rollout with
Events, resume removes them and leaves declared states alone.
"""

from __future__ import annotations

import json

from helpers.cli import SEED
from helpers.demo_app import create_deployment

from canarygate.kube.resources import CANARIES


def apply_seed(kube, tmp_path, *, closed: tuple[str, ...] = ()) -> None:
    """The seed CanaryGate in the test's namespace; ``closed``: gates declared closed besides its own."""
    path = tmp_path / "gate.yaml"
    text = SEED.replace("demo-ns", kube.namespace)
    for gate in closed:
        text = text.replace("spec:\n", f"spec:\n  {gate}: closed\n", 1)
    path.write_text(text)
    result = kube("apply", "-f", str(path))
    assert result.exit_code == 0, result.output


def set_status(api_client, namespace, status, name="demo"):
    from canarygate.kube.client import MERGE_PATCH, Kube

    Kube(api_client).request(
        "PATCH", CANARIES.path(namespace, name, "status"), body={"status": status}, content_type=MERGE_PATCH
    )


PROMOTED = [
    {"type": "Promoted", "status": "Unknown", "reason": "Progressing", "lastTransitionTime": "2026-11-22T09:00:00Z"}
]


def gate_entry(kube, gate):
    return next(g for g in json.loads(kube("show", "demo", "-o", "json").stdout)["gates"] if g["gate"] == gate)


def progressing(api_client, namespace, weight=10, failed=1):
    set_status(
        api_client,
        namespace,
        {"phase": "Progressing", "canaryWeight": weight, "failedChecks": failed, "conditions": PROMOTED},
    )


def test_close_rollout_during_a_rollout_refuses_without_yes(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    progressing(api_client, kube.namespace)
    refused = kube("close", "rollout", "demo")
    assert refused.exit_code == 1
    assert "not a pause" in refused.stderr and "failed checks now 1/2" in refused.stderr
    assert "rolls the release back" in refused.stderr and "kubectl gate pause demo" in refused.stderr
    assert gate_entry(kube, "rollout")["source"] == "default"
    closed = kube("close", "rollout", "demo", "--yes")
    assert closed.exit_code == 0, closed.output
    assert gate_entry(kube, "rollout")["state"] == "closed"


def test_close_pre_rollout_between_rollouts_needs_no_yes(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    set_status(api_client, kube.namespace, {"phase": "Succeeded"})
    result = kube("close", "pre-rollout", "demo")
    assert result.exit_code == 0, result.output


def test_show_draws_a_closed_check_gate_as_failing(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    progressing(api_client, kube.namespace)
    assert kube("close", "rollout", "demo", "--yes").exit_code == 0
    page = kube("show", "demo").stdout
    assert "closed, failing 1/2" in page and "holding" not in page
    assert "Failing:" in page and "rolls back at 2 (1 more)" in page
    assert json.loads(kube("show", "demo", "-o", "json").stdout)["failing"] == "rollout"


def test_pause_and_resume(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    progressing(api_client, kube.namespace, failed=0)
    paused = kube("pause", "demo", "--reason", "latency")
    assert paused.exit_code == 0, paused.output
    assert "nothing rolls back" in paused.stdout
    for gate in ("confirm-traffic-increase", "confirm-promotion"):
        entry = gate_entry(kube, gate)
        assert (entry["state"], entry["source"], entry["scope"], entry["reason"]) == (
            "closed",
            "live",
            "rollout",
            "latency",
        )
    assert gate_entry(kube, "rollout")["state"] == "opened"
    page = kube("show", "demo").stdout
    assert "Paused" in page and "confirm-traffic-increase (live)" in page
    resumed = kube("resume", "demo")
    assert resumed.exit_code == 0, resumed.output
    assert gate_entry(kube, "confirm-traffic-increase")["source"] == "default"
    assert gate_entry(kube, "confirm-promotion")["source"] == "declared"  # the seed declares it closed
    assert "confirm-promotion still closed as declared" in resumed.stderr
    assert "Resumed" in kube("show", "demo").stdout
    assert "not paused" in kube("resume", "demo").stdout


def make_deployment(api_client, namespace, name, *, available, since="2026-11-22T09:59:00Z"):
    from canarygate.kube.client import MERGE_PATCH, Kube

    kube = Kube(api_client)
    create_deployment(kube, namespace, name)
    generation = kube.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")["metadata"].get(
        "generation", 1
    )
    conditions = [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "lastUpdateTime": since}]
    conditions.append(
        {
            "type": "Available",
            "status": "True" if available else "False",
            "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "lastUpdateTime": since,
        }
    )
    kube.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status",
        body={
            "status": {
                "observedGeneration": generation,
                "replicas": 1,
                "updatedReplicas": 1,
                "availableReplicas": 1 if available else 0,
                "conditions": conditions,
            }
        },
        content_type=MERGE_PATCH,
    )


def test_show_and_abort_tell_a_not_ready_canary(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    make_deployment(api_client, kube.namespace, "demo", available=False)
    make_deployment(api_client, kube.namespace, "demo-primary", available=True)
    progressing(api_client, kube.namespace, failed=0)
    assert kube("close", "confirm-traffic-increase", "demo").exit_code == 0
    page = kube("show", "demo").stdout
    assert "canary Deployment demo is not ready (waiting for rollout to finish: 0 of 1" in page
    assert "Flagger calls no gate, rollback included, until it is" in page
    assert "progress deadline, in 540s" in page  # the clock is 10:00:00, unavailable since 09:59:00
    assert "closed, holding" not in page and "not by a gate" in page
    aborted = kube("abort", "demo")
    assert aborted.exit_code == 0, aborted.output
    assert "rolls back once the Deployments are ready" in aborted.stdout
    assert "nothing Canary Gate writes reaches Flagger before then" in aborted.stderr


def set_gate_status(api_client, namespace, status, name="demo"):
    from canarygate.kube.client import MERGE_PATCH, Kube
    from canarygate.kube.resources import CANARYGATES

    Kube(api_client).request(
        "PATCH", CANARYGATES.path(namespace, name, "status"), body={"status": status}, content_type=MERGE_PATCH
    )


def test_show_and_list_say_when_flagger_does_not_call_the_sidecar(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    progressing(api_client, kube.namespace, failed=0)  # the rollout started at 09:00, an hour ago
    page = kube("show", "demo").stdout
    assert (
        "Flagger has not called the sidecar for this Canary since this rollout started 3600s ago: "
        "check the webhook URL (kubectl gate version shows the sidecar)"
    ) in page
    assert "not called" in kube("list").stdout
    set_gate_status(api_client, kube.namespace, {"calls": {"rollout": {"at": "2026-11-22T09:55:00Z", "answer": 200}}})
    assert "for 30 intervals (300s)" in kube("show", "demo").stdout
    set_gate_status(api_client, kube.namespace, {"calls": {"rollout": {"at": "2026-11-22T09:59:55Z", "answer": 200}}})
    page = kube("show", "demo").stdout
    assert "not called the sidecar" not in page and "Sidecar calls: rollout 200 5s ago" in page


def test_after_an_approval_show_says_flagger_picks_it_up_at_its_next_check(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    set_status(api_client, kube.namespace, {"phase": "WaitingPromotion", "canaryWeight": 0, "conditions": PROMOTED})
    set_gate_status(
        api_client, kube.namespace, {"calls": {"confirm-promotion": {"at": "2026-11-22T09:59:55Z", "answer": 403}}}
    )
    page = kube("show", "demo").stdout
    assert "Weight:        40/40 (traffic held at max weight" in page
    assert "to go on: kubectl gate promote demo -n" in page
    assert kube("promote", "demo").exit_code == 0
    page = kube("show", "demo").stdout
    assert (
        "confirm-promotion approved by" in page and "0s ago; Flagger picks it up at its next check (within 10s)" in page
    )
    assert "closed, holding" not in page
    assert "confirm-promotion(approved)" in kube("list").stdout
    again = kube("promote", "demo")
    assert again.exit_code == 0 and "Flagger picks it up at its next check" in again.stderr


def test_another_webhook_of_the_same_type_holding_the_rollout_is_named_and_promote_refuses(kube, tmp_path, api_client):
    text = SEED.replace("demo-ns", kube.namespace).replace("  confirm-promotion: closed\n", "")
    text = text.replace(
        '        - {name: smoke, type: pre-rollout, url: "http://smoke/"}\n',
        '        - {name: smoke, type: pre-rollout, url: "http://smoke/"}\n'
        '        - {name: change-freeze, type: confirm-promotion, url: "http://freeze/"}\n',
    )
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    assert kube("apply", "-f", str(path)).exit_code == 0
    set_status(api_client, kube.namespace, {"phase": "WaitingPromotion", "conditions": PROMOTED})
    set_gate_status(
        api_client, kube.namespace, {"calls": {"confirm-promotion": {"at": "2026-11-22T09:59:57Z", "answer": 200}}}
    )
    page = kube("show", "demo").stdout
    assert "another confirm-promotion webhook holds it (change-freeze)" in page
    refused = kube("promote", "demo")
    assert refused.exit_code == 1 and "promote cannot help" in refused.stderr


def test_an_approval_while_waiting_names_the_template_the_approver_saw(kube, tmp_path, api_client):
    from canarygate import rollouts
    from canarygate.kube.client import Kube
    from canarygate.model import parse_canarygate

    apply_seed(kube, tmp_path, closed=("confirm-rollout",))  # the gate holding a Waiting rollout
    make_deployment(api_client, kube.namespace, "demo", available=True)
    set_status(api_client, kube.namespace, {"phase": "Waiting", "conditions": PROMOTED})
    assert kube("promote", "demo").exit_code == 0  # confirm-rollout for one step
    client = Kube(api_client)
    gate = parse_canarygate(
        client.request("GET", f"/apis/piggysec.com/v1alpha1/namespaces/{kube.namespace}/canarygates/demo")
    )
    deployment = client.request("GET", f"/apis/apps/v1/namespaces/{kube.namespace}/deployments/demo")
    assert gate.live["confirm-rollout"].rollout.template == rollouts.template_hash(deployment) != ""
    # A newer template lands before Flagger's next check: show says the approval no longer passes.
    from canarygate.kube.client import MERGE_PATCH

    client.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{kube.namespace}/deployments/demo",
        content_type=MERGE_PATCH,
        body={"spec": {"template": {"metadata": {"annotations": {"version": "3"}}}}},
    )
    set_gate_status(
        api_client, kube.namespace, {"calls": {"confirm-rollout": {"at": "2026-11-22T09:59:58Z", "answer": 403}}}
    )
    page = kube("show", "demo").stdout
    assert "was approved by" in page and "for another revision of the target" in page and "approve again" in page


def test_render_warns_about_a_user_webhook_of_a_gate_type(invoke, tmp_path):
    source = tmp_path / "gate.yaml"
    source.write_text(
        SEED.replace(
            '        - {name: smoke, type: pre-rollout, url: "http://smoke/"}\n',
            '        - {name: freeze, type: confirm-promotion, url: "http://freeze/"}\n',
        )
    )
    result = invoke(["render", "-f", str(source)])
    assert result.exit_code == 0, result.output
    assert "your webhook 'freeze' is of type confirm-promotion" in result.stderr
    assert "kubectl gate promote cannot open it" in result.stderr
    plain = tmp_path / "plain.yaml"
    plain.write_text(SEED)
    assert "warning" not in invoke(["render", "-f", str(plain)]).stderr  # rollout and pre-rollout checks add up


def test_show_prefers_the_event_webhook_stream_to_throttled_kubernetes_events(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    progressing(api_client, kube.namespace, failed=0)
    set_gate_status(
        api_client,
        kube.namespace,
        {
            "calls": {"rollout": {"at": "2026-11-22T09:59:58Z", "answer": 200}},
            "lastEvent": {"message": "Advance demo canary weight 10", "type": "Normal", "time": "2026-11-22T09:59:50Z"},
        },
    )
    page = kube("show", "demo").stdout
    assert "Last event:    Advance demo canary weight 10 (Normal, via the event webhook, 10s ago)" in page
