"""``kubectl gate retry`` and ``kubectl gate history`` through real kubectl (the plugin on PATH), with the
gate sidecar process recording the history and Flagger (the simulator, or real Flagger on the real tier)
driving the rollouts.

Covers: retry refused while a rollout runs; a rollout aborted (Failed), retry declined at the prompt
writes nothing, retry --yes writes a new revision and Flagger analyses it again, through the closed
confirm-promotion; then history shows both rollouts: who aborted and who promoted (the kubectl user, as
the API server knows them), why, that the promotion's step was used, the rollback and the end of each,
as a table and as a GateHistory object valid against docs/output-schema.v1alpha1.json.
skip-analysis: declined at the prompt changes nothing; confirmed, Flagger promotes the rollout held at
the closed confirm-promotion without asking it, the switch is set back, and the next revision is
analysed (and held) again; refused when no rollout runs.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from helpers.tiers import SLOWDOWN

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
SCHEMA = json.loads((pathlib.Path(__file__).resolve().parents[2] / "docs" / "output-schema.v1alpha1.json").read_text())
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
#: One traffic step, so that the real tier's 10 s ticks fit two rollouts in the test's time.
SHORT = {"interval": "10s", "threshold": 2, "maxWeight": 20, "stepWeight": 20, "stepWeightPromotion": 100}


def kubectl_gate(kubeconfig: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:  # noqa: A002 - subprocess.run's keyword
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": kubeconfig,
        "KUBECACHEDIR": os.environ.get("KUBECACHEDIR", "/tmp/kubectl-gate-test-cache"),
    }
    return subprocess.run(
        [str(BIN / "kubectl"), "gate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60 * SLOWDOWN,
        input=input,
    )


@pytest.mark.timeout(420)
def test_retry_after_a_failed_rollout_and_the_history_of_both(kubeconfig, namespace, rollouts, kubectl, wait_until):
    ns = namespace
    rollouts.create(analysis=SHORT, confirm_promotion="closed")
    me = kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout.strip()
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")
    running = kubectl_gate(kubeconfig, "retry", "demo", "-n", ns, "--yes")
    assert running.returncode == 1 and "is WaitingPromotion, not Failed" in running.stderr, running
    aborted = kubectl_gate(kubeconfig, "abort", "demo", "-n", ns, "--reason", "error rate")
    assert aborted.returncode == 0, aborted
    rollouts.wait_phase("demo", "Failed")

    declined = kubectl_gate(kubeconfig, "retry", "demo", "-n", ns, input="n\n")
    assert declined.returncode == 1 and "GitOps" in declined.stderr, declined
    deployment = json.loads(kubectl("get", "deployment", "demo", "-n", ns, "-o", "json").stdout)
    assert RESTARTED_AT not in deployment["spec"]["template"]["metadata"].get("annotations", {})
    retried = kubectl_gate(kubeconfig, "retry", "demo", "-n", ns, "--yes", "--reason", "flaky load test")
    assert retried.returncode == 0 and "deployment/demo has a new revision" in retried.stdout, retried
    # Flagger starts a new analysis of it, held again at the closed confirm-promotion.
    rollouts.wait_phase("demo", "WaitingPromotion", timeout=60)
    promoted = kubectl_gate(kubeconfig, "promote", "demo", "-n", ns, "--reason", "CAB-9")
    assert promoted.returncode == 0, promoted
    rollouts.wait_phase("demo", "Succeeded", timeout=60)

    def recorded():
        out = kubectl_gate(kubeconfig, "history", "demo", "-n", ns, "-o", "json")
        data = json.loads(out.stdout) if out.returncode == 0 else None
        ended = data and len(data["rollouts"]) == 2 and data["rollouts"][-1]["result"] == "Succeeded"
        return data if ended and any(e.get("how") == "used" for e in data["rollouts"][-1]["entries"]) else None

    data = wait_until(recorded, timeout=30, what="the sidecar to record both rollouts")
    jsonschema.validate(data, SCHEMA)
    first, second = data["rollouts"]
    assert first["result"] == "Failed" and second["result"] == "Succeeded"
    changes = [(e["gate"], e["state"], e["by"], e["reason"]) for e in first["entries"] if e.get("action") == "set"]
    assert ("rollback", "opened", me, "error rate") in changes
    phases = [e["phase"] for e in first["entries"] if e["kind"] == "phase"]
    assert phases[0] in ("Waiting", "Progressing") and "WaitingPromotion" in phases and phases[-1] == "Failed"
    approval = next(e for e in second["entries"] if e.get("action") == "set" and e["gate"] == "confirm-promotion")
    assert (approval["state"], approval["scope"], approval["by"], approval["reason"]) == ("opened", "step", me, "CAB-9")
    assert {e["id"]: e["how"] for e in second["entries"] if e.get("action") == "ended"}[approval["id"]] == "used"
    assert [e["phase"] for e in second["entries"] if e["kind"] == "phase"][-1] == "Succeeded"

    table = kubectl_gate(kubeconfig, "history", "demo", "-n", ns)
    assert table.returncode == 0, table
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows[0] == ["ROLLOUT", "TIME", "WHAT", "GATE", "BY", "DETAIL"]
    assert ["1", "opened", "rollback", me] in [[r[0], r[2], r[3], r[4]] for r in rows[1:]]
    assert ["2", "opened", "confirm-promotion", me] in [[r[0], r[2], r[3], r[4]] for r in rows[1:]]
    last = kubectl_gate(kubeconfig, "history", "demo", "-n", ns, "--rollouts", "1", "-o", "json")
    assert [r["rollout"] for r in json.loads(last.stdout)["rollouts"]] == [2]


@pytest.mark.timeout(420)
def test_skip_analysis_promotes_now_then_the_next_revision_is_analysed_again(kubeconfig, namespace, rollouts):
    ns = namespace
    rollouts.create(analysis=SHORT, confirm_promotion="closed")
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")
    declined = kubectl_gate(kubeconfig, "skip-analysis", "demo", "-n", ns, input="n\n")
    assert declined.returncode == 1 and "GitOps" in declined.stderr and "rollback gate" in declined.stderr
    assert rollouts.canary()["spec"]["skipAnalysis"] is False
    skipped = kubectl_gate(kubeconfig, "skip-analysis", "demo", "-n", ns, "--yes", "--reason", "INC-42")
    assert skipped.returncode == 0, skipped
    assert "the rollout ended Succeeded; spec.skipAnalysis is set back" in skipped.stdout
    assert rollouts.canary()["spec"]["skipAnalysis"] is False
    gate = rollouts.gate()
    assert not any(k.startswith("gate.piggysec.com/") for k in gate["metadata"].get("annotations", {}))
    (event,) = rollouts.events(reason="AnalysisSkipped")
    assert event["message"].endswith(": INC-42")
    idle = kubectl_gate(kubeconfig, "skip-analysis", "demo", "-n", ns, "--yes")
    assert idle.returncode == 1 and "no rollout in progress" in idle.stderr
    rollouts.new_revision(version="3")
    rollouts.wait_phase("demo", "WaitingPromotion")  # analysed, and held by confirm-promotion, again
