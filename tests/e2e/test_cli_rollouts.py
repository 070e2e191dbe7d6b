"""End to end through ``kubectl gate`` only: the sidecar process, the Flagger simulator, the sandbox.

Covers: the seed README's two scenarios (held at confirm-rollout, then promoted; held for
promotion at 20 %, then opened); promote one step at a time through a closed
confirm-traffic-increase; promote --full; abort (rolled back, wait exits 3) and that live change
ending with its rollout; abort while Waiting (Failed, no traffic, the next release not rolled back); two users
changing gates concurrently (no lost update, every change
audited); a user without RBAC rights refused; real kubectl running the plugin (``kubectl gate``,
``kubectl plugin list``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.demo_app import HELD_AT_20_PERCENT, create_deployment
from helpers.rbac import wait_allowed
from helpers.tiers import SLOWDOWN

from kubectl_gate.cli import cli

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def stretch_timeouts(args: tuple) -> list:
    """``--timeout 30s`` is the sandbox's; real Flagger ticks SLOWDOWN times slower."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg == "--timeout" and out[i + 1].endswith("s"):
            out[i + 1] = f"{int(float(out[i + 1][:-1]) * SLOWDOWN)}s"
    return out


@pytest.fixture
def gate(kubeconfig, namespace, rollouts, sidecar, tmp_path):
    """Run ``kubectl gate ARGS -n NS`` in-process; ``gate.apply(**declared)`` creates the app and the gate."""

    def run(*args, check=True):
        args = stretch_timeouts(args)
        result = CliRunner().invoke(cli, [*args, "--kubeconfig", kubeconfig, "-n", namespace])
        if check is True:
            assert result.exit_code == 0, result.output
        return result

    def apply(analysis=None, **declared):
        ns = namespace
        create_deployment(rollouts.kube, ns)
        analysis = analysis or {
            "interval": "10s",
            "threshold": 2,
            "maxWeight": 40,
            "stepWeight": 10,
            "stepWeightPromotion": 100,
        }
        gates = "".join(f"  {k.replace('_', '-')}: {v}\n" for k, v in declared.items())
        manifest = (
            f"apiVersion: piggysec.com/v1alpha1\nkind: CanaryGate\nmetadata:\n  name: demo\nspec:\n{gates}"
            f"  target: {{namespace: {ns}, name: demo}}\n  flagger:\n"
            "    targetRef: {apiVersion: apps/v1, kind: Deployment, name: demo}\n"
            "    service: {port: 8080}\n    skipAnalysis: false\n"
            f"    analysis: {json.dumps(analysis)}\n"
        )
        path = tmp_path / "demo.yaml"
        path.write_text(manifest)
        run("apply", "-f", str(path), "--endpoint", sidecar.url)
        rollouts.wait_phase("demo", "Initialized")

    run.apply = apply
    return run


def test_seed_scenario_held_at_confirm_rollout_then_promoted(gate, rollouts):
    gate.apply(confirm_rollout="closed")
    rollouts.new_revision()
    held = gate("wait", "demo", "--for", "gate=confirm-rollout", "--timeout", "30s")
    assert "waiting at gate confirm-rollout" in held.stdout
    assert gate("show", "demo", "--exit-code", check=False).exit_code == 4
    assert "confirm-rollout opened for one step" in gate("promote", "demo").stdout
    done = gate("wait", "demo", "--for", "promoted", "--timeout", "60s")
    assert "promoted" in done.stdout


def test_seed_scenario_promotion_held_at_20_percent_then_opened(gate, rollouts):
    gate.apply(**HELD_AT_20_PERCENT)
    rollouts.new_revision()
    gate("wait", "demo", "--for", "gate=confirm-promotion", "--timeout", "30s")
    shown = json.loads(gate("show", "demo", "-o", "json").stdout)
    assert shown["canary"]["weight"] == 20 and shown["holding"] == "confirm-promotion"
    gate("open", "confirm-promotion", "demo", "--reason", "CAB-7")
    gate("wait", "demo", "--for", "promoted", "--timeout", "60s")


def test_promote_one_step_at_a_time_through_closed_traffic_increase(gate, rollouts, wait_until):
    gate.apply(confirm_traffic_increase="closed")
    rollouts.new_revision()
    weights = []
    for _ in range(8):
        gate("wait", "demo", "--for", "gate=confirm-traffic-increase", "--timeout", "30s")
        status = rollouts.canary()["status"]
        weights.append(status.get("canaryWeight", 0))
        gate("promote", "demo")
        wait_until(
            lambda: (
                rollouts.canary()["status"].get("canaryWeight", 0) != weights[-1]
                or rollouts.phase() in ("Promoting", "Finalising", "Succeeded")
            ),
            timeout=30,
            what="one traffic step",
        )
        if rollouts.phase() in ("Promoting", "Finalising", "Succeeded"):
            break
    assert weights == [0, 10, 20, 30, 40][: len(weights)] and len(weights) >= 4
    gate("wait", "demo", "--for", "promoted", "--timeout", "60s")


def test_promote_full_opens_every_gate_for_this_rollout(gate, rollouts):
    gate.apply(confirm_traffic_increase="closed", confirm_promotion="closed")
    rollouts.new_revision()
    gate("wait", "demo", "--for", "gate=confirm-traffic-increase", "--timeout", "30s")
    full = gate("promote", "demo", "--full")
    assert "confirm-traffic-increase, confirm-promotion" in full.stdout
    gate("wait", "demo", "--for", "promoted", "--timeout", "60s")
    # The live changes ended with the rollout: the declared states are back.
    after = json.loads(gate("show", "demo", "-o", "json").stdout)
    assert set(after["closed"]) == {"confirm-traffic-increase", "confirm-promotion"}


def test_abort_rolls_back_and_its_change_ends_with_the_rollout(gate, rollouts):
    gate.apply(confirm_promotion="closed")
    rollouts.new_revision()
    gate("wait", "demo", "--for", "gate=confirm-promotion", "--timeout", "30s")
    aborted = gate("abort", "demo", "--reason", "error rate")
    assert "rollback gate opened" in aborted.stdout
    result = gate("wait", "demo", "--for", "promoted", "--timeout", "60s", check=False)
    assert result.exit_code == 3, result.output
    rollback = next(
        g for g in json.loads(gate("show", "demo", "-o", "json").stdout)["gates"] if g["gate"] == "rollback"
    )
    assert rollback["state"] == "closed"  # the next release is not rolled back
    rollouts.new_revision(version="3")
    # --fresh: the Failed found at start is the last rollout's; wait for the new one.
    gate("wait", "demo", "--for", "gate=confirm-promotion", "--fresh", "--timeout", "30s")


def test_abort_while_waiting_ends_the_rollout_without_traffic_and_the_next_release_runs(gate, rollouts, wait_until):
    """Waiting re-polls only confirm-rollout (docs/flagger-contract.md#one-tick step 5,
    #waiting-and-waitingpromotion): abort opens rollback for this rollout
    and confirm-rollout for one step, so Flagger starts the rollout (weight 0) and polls the rollback gate on
    the next tick (step 9) before any traffic step (12-13): Failed, the canary weight 0 throughout."""
    gate.apply(confirm_rollout="closed")
    rollouts.new_revision()
    gate("wait", "demo", "--for", "gate=confirm-rollout", "--timeout", "30s")
    assert rollouts.phase() == "Waiting"
    start = len(rollouts.ticks())
    aborted = gate("abort", "demo", "--reason", "bad build")
    assert "rollback opened for this rollout and confirm-rollout opened for one step" in aborted.stdout
    assert "rolls it back on its next check; the new revision receives no traffic" in aborted.stdout
    failed = gate("wait", "demo", "--for", "failed", "--timeout", "60s", check=False)
    assert failed.exit_code == 0, failed.output

    def written():
        return [w.get("phase") for t in rollouts.ticks()[start:] for w in t.status_writes if w.get("phase")]

    wait_until(lambda: "Failed" in written(), timeout=10, what="the rollback tick in the simulator's history")
    ticks = rollouts.ticks()[start:]
    phases = written()
    assert phases.index("Progressing") < phases.index("Failed"), phases  # it did start, then rolled back
    assert all(t.routes.canary == 0 for t in ticks), [t.routes for t in ticks]
    assert all(int(w.get("canaryWeight") or 0) == 0 for t in ticks for w in [t.status, *t.status_writes])
    assert not any("Starting canary analysis" in m or "Advance" in m for t in ticks for m in t.messages())
    # Both live changes ended with that rollout: the declared gates are back.
    gates = {g["gate"]: g for g in json.loads(gate("show", "demo", "-o", "json").stdout)["gates"]}
    assert gates["rollback"]["state"] == "closed" and gates["confirm-rollout"]["state"] == "closed", gates
    # The next release is held as declared, then goes through: not rolled back by the abort's change.
    rollouts.new_revision(version="3")
    gate("wait", "demo", "--for", "gate=confirm-rollout", "--fresh", "--timeout", "30s")
    gate("promote", "demo", "--full")
    done = gate("wait", "demo", "--for", "promoted", "--timeout", "90s", check=False)
    assert done.exit_code == 0, done.output


def _operator(apiserver, namespace, user):
    token = f"{user}-{namespace}"
    apiserver.add_token(token, user)
    rules = [
        {"apiGroups": ["piggysec.com"], "resources": ["canarygates"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["flagger.app"], "resources": ["canaries"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "list"]},
    ]
    apiserver.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "gate-operator", "namespace": namespace},
            "rules": rules,
        }
    )
    apiserver.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"gate-operator-{user}", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gate-operator"},
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )
    config = apiserver.write_kubeconfig(Path(f"/tmp/kc-{token}"), token=token, namespace=namespace)
    wait_allowed(str(config), namespace=namespace, verb="patch", group="piggysec.com", resource="canarygates")
    return config


def test_two_users_change_gates_concurrently_nothing_lost_everything_audited(gate, rollouts, apiserver, namespace):
    gate.apply()
    configs = {user: _operator(apiserver, namespace, user) for user in ("alice", "carol")}
    plans = {
        "alice": [
            ("close", "confirm-promotion"),
            ("open", "rollout"),
            ("close", "confirm-promotion"),
            ("close", "pre-rollout"),
        ],
        "carol": [
            ("open", "confirm-promotion"),
            ("close", "confirm-traffic-increase"),
            ("open", "confirm-promotion"),
            ("close", "post-rollout"),
        ],
    }

    def run(user):
        codes = []
        for i, (verb, which) in enumerate(plans[user]):
            proc = subprocess.run(
                [
                    str(BIN / "kubectl-gate"),
                    verb,
                    which,
                    "demo",
                    "--reason",
                    f"{user}-{i}",
                    "--kubeconfig",
                    str(configs[user]),
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            codes.append((proc.returncode, proc.stderr))
        return codes

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, plans))
    assert all(code == 0 for codes in results for code, _ in codes), results
    annotations = rollouts.gate()["metadata"]["annotations"]
    final = {k.split("/", 1)[1]: json.loads(v) for k, v in annotations.items() if k.startswith("gate.piggysec.com/")}
    assert final["pre-rollout"]["by"] == "alice" and final["pre-rollout"]["reason"] == "alice-3"
    assert final["post-rollout"]["by"] == "carol" and final["confirm-traffic-increase"]["by"] == "carol"
    assert final["rollout"]["by"] == "alice"
    assert final["confirm-promotion"]["reason"] in ("alice-2", "carol-2")
    events = [e for e in rollouts.events() if e.get("reason") in ("GateOpened", "GateClosed")]
    assert len(events) == 8
    assert sorted(e["message"].split(": ")[-1] for e in events) == sorted(f"{u}-{i}" for u in plans for i in range(4))


def test_user_without_rights_is_refused_through_real_kubectl(gate, apiserver, namespace, tmp_path):
    gate.apply()
    apiserver.add_token("nobody-token", "nobody")
    config = apiserver.write_kubeconfig(tmp_path / "nobody", token="nobody-token", namespace=namespace)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "KUBECONFIG": str(config)}
    proc = subprocess.run(
        [str(BIN / "kubectl"), "gate", "open", "confirm-promotion", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1
    assert 'User "nobody"' in proc.stderr and "Traceback" not in proc.stderr
    listed = subprocess.run(
        [str(BIN / "kubectl"), "plugin", "list"], capture_output=True, text=True, env=env, timeout=60
    )
    assert "kubectl-gate" in listed.stdout
    version = subprocess.run(
        [str(BIN / "kubectl"), "gate", "version", "--client"], capture_output=True, text=True, env=env, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("kubectl-gate: ")
