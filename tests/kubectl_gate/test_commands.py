"""Commands against the sandbox API with the real ``kubernetes`` client (CliRunner). Covers:
apply (created/unchanged/configured, live changes kept, server and client dry runs, invalid file
changes nothing); list and show (golden, namespace replaced), -o json/yaml/name, -A; open/close
(annotation with user and reason, Event recorded, --sticky, -d and status all aliases); not
found with close names; CRD not installed; forbidden with who and what; unreachable API; -c vs
--cluster hints; promote refuses without a rollout; wait exit codes (promoted, failed, waiting,
timeout 124) on Canaries whose status the test sets; KUBECONFIG with several files.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest
import yaml
from helpers.cli import SEED, golden

from canarygate.kube.resources import CANARIES, CANARYGATES

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, params=["kubernetes", "fast"])
def api_client_kind(request, monkeypatch):
    """Every test runs with the official ``kubernetes`` client and with the standard-library one."""
    monkeypatch.setenv("KUBECTL_GATE_CLIENT", request.param)
    return request.param


def squeeze(text: str) -> str:
    """Column padding depends on the (random) namespace's length: compare with runs of spaces as two."""
    return re.sub(r" {2,}", "  ", text)


def seed(namespace: str) -> str:
    return SEED.replace("demo-ns", namespace)


def apply_seed(kube, tmp_path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(seed(kube.namespace))
    result = kube("apply", "-f", str(path))
    assert result.exit_code == 0, result.output


#: A Canary's status held at confirm-promotion at weight 40 (Promoted Unknown, Progressing).
HELD_AT_PROMOTION = {
    "phase": "WaitingPromotion",
    "canaryWeight": 40,
    "conditions": [
        {"type": "Promoted", "status": "Unknown", "reason": "Progressing", "lastTransitionTime": "2026-11-22T09:00:00Z"}
    ],
}

#: A Canary's status held before the rollout starts (Waiting: confirm-rollout closed).
HELD_AT_CONFIRM_ROLLOUT = {
    "phase": "Waiting",
    "conditions": [
        {"type": "Promoted", "status": "Unknown", "reason": "Waiting", "lastTransitionTime": "2026-11-22T09:00:00Z"}
    ],
}


def set_status(api_client, namespace, status, name="demo"):
    from canarygate.kube.client import MERGE_PATCH, Kube

    Kube(api_client).request(
        "PATCH", CANARIES.path(namespace, name, "status"), body={"status": status}, content_type=MERGE_PATCH
    )


def test_apply_then_list_and_show(kube, tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text(seed(kube.namespace))
    first = kube("apply", "-f", str(path))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == ["canarygate.piggysec.com/demo created", "canary.flagger.app/demo created"]
    again = kube("apply", "-f", str(path))
    assert again.stdout.splitlines() == ["canarygate.piggysec.com/demo unchanged", "canary.flagger.app/demo unchanged"]
    listed = kube("list")
    golden("list-sandbox.txt", squeeze(listed.stdout.replace(kube.namespace, "NS")))
    shown = kube("show", "demo")
    assert shown.exit_code == 0
    golden("show-sandbox.txt", squeeze(shown.stdout.replace(kube.namespace, "NS")))
    data = json.loads(kube("show", "demo", "-o", "json").stdout)
    assert data["closed"] == ["confirm-promotion"] and data["webhooks"] == {"missing": []}
    assert kube("list", "-o", "name").stdout.strip() == "canarygate.piggysec.com/demo"
    everywhere = kube("list", "-A", ns=False)
    assert kube.namespace in everywhere.stdout and everywhere.stdout.startswith("NAMESPACE")
    listed = yaml.safe_load(kube("list", "-o", "yaml").stdout)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    assert listed["items"][0]["metadata"] == {"name": "demo", "namespace": kube.namespace}
    assert (data["apiVersion"], data["kind"]) == ("gate.canary-gate.io/v1alpha1", "GateStatus")


def test_apply_invalid_changes_nothing_and_dry_runs_send_nothing(kube, tmp_path, api_client):
    bad = yaml.safe_load(seed(kube.namespace))
    bad["spec"]["flagger"]["analysis"]["threshold"] = "two"
    good = yaml.safe_load(seed(kube.namespace))
    good["metadata"]["name"] = "other"
    path = tmp_path / "gates.yaml"
    path.write_text(yaml.safe_dump_all([good, bad]))
    result = kube("apply", "-f", str(path))
    assert result.exit_code == 1 and "nothing was applied" in result.stderr
    assert "No CanaryGates found" in kube("list").stderr
    path.write_text(seed(kube.namespace))
    for mode in ("server", "client"):
        dry = kube("apply", "-f", str(path), f"--dry-run={mode}")
        assert dry.exit_code == 0 and "dry run" in dry.stdout, dry.output
    assert "No CanaryGates found" in kube("list").stderr


def test_open_close_record_who_why_and_an_event(kube, tmp_path):
    apply_seed(kube, tmp_path)
    closed = kube("close", "confirm-rollout", "demo", "--reason", "CAB-1 freeze")
    assert closed.exit_code == 0, closed.output
    assert "closed for the next rollout" in closed.stdout
    gate = json.loads(kube("show", "demo", "-o", "json").stdout)
    entry = next(g for g in gate["gates"] if g["gate"] == "confirm-rollout")
    assert entry == {
        "gate": "confirm-rollout",
        "state": "closed",
        "source": "live",
        "setBy": "admin",
        "setAt": "2026-11-22T10:00:00Z",
        "scope": "rollout",
        "reason": "CAB-1 freeze",
    }
    shown = kube("show", "demo")
    assert "admin closed confirm-rollout for the next rollout: CAB-1 freeze" in shown.stdout
    sticky = kube("open", "confirm-promotion", "-d", "demo", "--sticky")
    assert "until changed (sticky)" in sticky.stdout
    go = kube("status", "all", "-d", "demo", "-o", "json")
    entry = next(g for g in json.loads(go.stdout)["gates"] if g["gate"] == "confirm-promotion")
    assert entry["state"] == "opened" and entry["scope"] == "sticky"
    only = kube("status", "confirm-promotion", "-d", "demo")
    assert "confirm-promotion" in only.stdout and "\nconfirm-rollout " not in only.stdout


def test_not_found_suggests_close_names(kube, tmp_path):
    apply_seed(kube, tmp_path)
    result = kube("show", "dmeo")
    assert result.exit_code == 1
    assert 'CanaryGate "dmeo" not found' in result.stderr and 'did you mean "demo"' in result.stderr
    assert "Traceback" not in result.output
    assert kube("open", "rollout", "nope").exit_code == 1


def test_crd_not_installed_says_how_to_install(invoke, tmp_path):
    from sandbox.apiserver import ApiServer

    with ApiServer() as bare:
        config = bare.write_kubeconfig(tmp_path / "config")
        result = invoke(["list", "--kubeconfig", str(config)])
    assert result.exit_code == 1
    assert "CanaryGate CRD" in result.stderr and "kubectl gate install | kubectl apply -f -" in result.stderr


def test_forbidden_names_the_user_and_the_verb(kube, tmp_path, apiserver):
    apply_seed(kube, tmp_path)
    apiserver.add_token("bob-token", "bob")
    config = apiserver.write_kubeconfig(tmp_path / "bob", token="bob-token", namespace=kube.namespace)
    from click.testing import CliRunner

    from kubectl_gate.cli import cli

    out = CliRunner().invoke(cli, ["open", "confirm-promotion", "demo", "--kubeconfig", str(config)])
    assert out.exit_code == 1
    assert 'User "bob" cannot get' in out.stderr and "Traceback" not in out.output
    # A reader (get, list) may look but not change: the message says who and which verb is missing.
    apiserver.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "gate-reader", "namespace": kube.namespace},
            "rules": [
                {
                    "apiGroups": ["piggysec.com", "flagger.app"],
                    "resources": ["canarygates", "canaries"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        }
    )
    apiserver.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "gate-reader", "namespace": kube.namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gate-reader"},
            "subjects": [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )
    assert CliRunner().invoke(cli, ["show", "demo", "--kubeconfig", str(config)]).exit_code == 0
    out = CliRunner().invoke(cli, ["open", "confirm-promotion", "demo", "--kubeconfig", str(config)])
    assert out.exit_code == 1, out.output
    assert "bob may not change gates" in out.stderr and "'patch'" in out.stderr


def test_unreachable_api_and_flag_hints(invoke, tmp_path, kubeconfig):
    config = yaml.safe_load(pathlib.Path(kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
    down = tmp_path / "down"
    down.write_text(yaml.safe_dump(config))
    result = invoke(["list", "--kubeconfig", str(down), "--request-timeout", "2s"])
    assert result.exit_code == 1 and "cannot reach the API server" in result.stderr
    context = config["contexts"][0]["name"]
    cluster = config["clusters"][0]["name"]
    wrong = invoke(["list", "--kubeconfig", str(kubeconfig), "--cluster", context + "-ctx-only"])
    assert wrong.exit_code == 1 and "not found in the kubeconfig" in wrong.stderr
    if context != cluster:
        hint = invoke(["list", "--kubeconfig", str(kubeconfig), "-c", cluster])
        assert "use --cluster" in hint.stderr


def test_kubeconfig_list_first_file_wins(invoke, tmp_path, kubeconfig, namespace, crds):
    config = yaml.safe_load(pathlib.Path(kubeconfig).read_text())
    first = dict(config)
    first["contexts"] = [{"name": "a", "context": {**config["contexts"][0]["context"], "namespace": namespace}}]
    first["current-context"] = "a"
    second = dict(config)
    second["current-context"] = config["contexts"][0]["name"]
    (tmp_path / "1").write_text(yaml.safe_dump(first))
    (tmp_path / "2").write_text(yaml.safe_dump(second))
    result = invoke(["list"], env={"KUBECONFIG": f"{tmp_path / '1'}:{tmp_path / '2'}"})
    assert result.exit_code == 0, result.output
    assert f"namespace {namespace}" in result.stderr  # the first file's context and namespace


def test_promote_and_abort_refuse_without_a_rollout(kube, tmp_path):
    apply_seed(kube, tmp_path)
    result = kube("promote", "demo")
    assert result.exit_code == 1 and "no rollout in progress" in result.stderr
    assert kube("abort", "demo").exit_code == 1


def test_promote_opens_the_holding_gate_for_one_step(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    set_status(api_client, kube.namespace, HELD_AT_PROMOTION)
    assert kube("show", "demo", "--exit-code").exit_code == 4
    result = kube("promote", "demo", "--reason", "looks good")
    assert result.exit_code == 0, result.output
    assert "confirm-promotion opened for this promotion" in result.stdout
    entry = next(
        g for g in json.loads(kube("show", "demo", "-o", "json").stdout)["gates"] if g["gate"] == "confirm-promotion"
    )
    assert entry["scope"] == "step" and entry["state"] == "opened"
    aborted = kube("abort", "demo")
    assert aborted.exit_code == 0 and "rollback gate opened" in aborted.stdout


def test_wait_exit_codes(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    set_status(api_client, kube.namespace, {"phase": "Succeeded"})
    assert kube("wait", "demo", "--for", "promoted", "--timeout", "30s").exit_code == 0
    set_status(api_client, kube.namespace, {"phase": "Failed"})
    failed = kube("wait", "demo", "--for", "promoted", "--timeout", "30s")
    assert failed.exit_code == 3 and "rolled back" in failed.stderr
    assert kube("wait", "demo", "--for", "failed", "--timeout", "30s").exit_code == 0
    set_status(api_client, kube.namespace, {"phase": "WaitingPromotion", "canaryWeight": 40})
    held = kube("wait", "demo", "--for", "gate=confirm-promotion", "--timeout", "30s")
    assert held.exit_code == 0 and "waiting at gate confirm-promotion" in held.stdout
    timed_out = kube("wait", "demo", "--for", "promoted", "--timeout", "1s")
    assert timed_out.exit_code == 124 and "waiting at closed gate confirm-promotion" in timed_out.stderr
    assert kube("wait", "nope", "--for", "promoted").exit_code == 1
    assert kube("wait", "demo", "--for", "gate=nope").exit_code == 2


def test_wait_is_bounded_unless_told_otherwise(kube):
    """A CI job waiting on a person ends by default (exit 124 after 30m); --timeout 0 is for ever."""
    help_text = " ".join(kube("wait", "--help").stdout.split())
    assert "Give up after this long, exit 124 (0: never). [default: 30m]" in help_text


def test_wait_for_a_gate_this_rollout_is_past_ends_at_once(kube, tmp_path, api_client):
    """Waiting for a gate Flagger asks no more in this rollout would last until the rollout ends."""
    apply_seed(kube, tmp_path)
    set_status(api_client, kube.namespace, {"phase": "Progressing", "canaryWeight": 20})
    past = kube("wait", "demo", "--for", "gate=confirm-rollout", "--timeout", "30s")
    assert past.exit_code == 1, past.output
    assert "is past gate confirm-rollout in this rollout (Progressing)" in past.stderr
    ahead = kube("wait", "demo", "--for", "gate=confirm-promotion", "--timeout", "1s")
    assert ahead.exit_code == 124, ahead.output  # confirm-promotion is still ahead: it waits
    set_status(api_client, kube.namespace, {"phase": "Promoting", "canaryWeight": 50})
    promoted = kube("wait", "demo", "--for", "gate=confirm-promotion", "--timeout", "30s")
    assert promoted.exit_code == 1 and "is past gate confirm-promotion" in promoted.stderr


def _without_ca(kubeconfig, tmp_path, name, **cluster_fields):
    config = yaml.safe_load(pathlib.Path(kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    cluster.pop("certificate-authority-data", None)
    cluster.pop("certificate-authority", None)
    cluster.update(cluster_fields)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path), config["clusters"][0]["name"]


@pytest.mark.parametrize("value", ["false", "true", "no", 1])
def test_insecure_skip_tls_verify_must_be_a_real_boolean(invoke, tmp_path, kubeconfig, value):
    """A quoted "false" used to turn verification off by truthiness; now the file is refused, as kubectl does."""
    path, cluster = _without_ca(kubeconfig, tmp_path, "strfalse", **{"insecure-skip-tls-verify": value})
    result = invoke(["list", "--kubeconfig", path, "-n", "default"])
    assert result.exit_code == 1, result.output
    assert path in result.stderr and f'cluster "{cluster}"' in result.stderr
    assert "insecure-skip-tls-verify must be a boolean" in result.stderr and "internal error" not in result.stderr


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")  # the kubeconfig asks for it: the test is about that
def test_a_real_true_skips_verification_and_false_verifies(invoke, tmp_path, kubeconfig, crds):
    skip, _ = _without_ca(kubeconfig, tmp_path, "skip", **{"insecure-skip-tls-verify": True})
    assert invoke(["list", "--kubeconfig", skip, "-n", "default"]).exit_code == 0
    verify, _ = _without_ca(kubeconfig, tmp_path, "verify", **{"insecure-skip-tls-verify": False})
    result = invoke(["list", "--kubeconfig", verify, "-n", "default"])
    assert result.exit_code == 1 and "not trusted" in result.stderr


def test_an_untrusted_server_certificate_is_not_reported_as_an_outage(invoke, tmp_path, kubeconfig):
    path, _ = _without_ca(kubeconfig, tmp_path, "noca")
    result = invoke(["list", "--kubeconfig", path, "-n", "default"])
    assert result.exit_code == 1, result.output
    err = result.stderr
    assert "TLS certificate is not trusted" in err and "certificate verify failed" in err, err
    assert "certificate-authority:" in err and "certificate-authority-data:" in err
    assert "cannot reach" not in err and "cluster is up" not in err and "internal error" not in err


def test_abort_while_waiting_opens_rollback_then_confirm_rollout_for_one_step(kube, tmp_path, api_client):
    """Waiting re-polls only confirm-rollout (docs/flagger-contract.md#one-tick step 5,
    #waiting-and-waitingpromotion): an open rollback gate alone never ends it.

    Abort opens rollback for this rollout and confirm-rollout for one step: Flagger starts the rollout
    (weight 0) and polls rollback on the next tick (step 9) before any traffic step (12-13).
    """
    import kubernetes

    apply_seed(kube, tmp_path)  # declares confirm-rollout closed
    set_status(api_client, kube.namespace, HELD_AT_CONFIRM_ROLLOUT)
    result = kube("abort", "demo", "--reason", "bad build")
    assert result.exit_code == 0, result.output
    assert (
        "aborted while Waiting: rollback opened for this rollout and confirm-rollout opened for one step"
        in result.stdout
    )
    assert (
        "Flagger starts the rollout and rolls it back on its next check; the new revision receives no traffic"
        in result.stdout
    )
    assert "revert" not in result.output
    gates = {g["gate"]: g for g in json.loads(kube("show", "demo", "-o", "json").stdout)["gates"]}
    assert (
        gates["confirm-rollout"]["state"],
        gates["confirm-rollout"]["source"],
        gates["confirm-rollout"]["scope"],
    ) == ("opened", "live", "step")
    assert (gates["rollback"]["state"], gates["rollback"]["source"], gates["rollback"]["scope"]) == (
        "opened",
        "live",
        "rollout",
    )
    assert gates["rollback"]["reason"] == gates["confirm-rollout"]["reason"] == "bad build"
    # The annotations as written: both bound to this rollout (the Promoted condition's time).
    annotations = _gate_annotations(api_client, kube.namespace)
    rollback = json.loads(annotations["gate.piggysec.com/rollback"])
    confirm = json.loads(annotations["gate.piggysec.com/confirm-rollout"])
    assert (rollback["state"], rollback["scope"], rollback["reason"]) == ("opened", "rollout", "bad build")
    assert (confirm["state"], confirm["scope"], confirm["reason"]) == ("opened", "step", "bad build")
    for body in (rollback, confirm):
        assert body["rollout"] == {"active": True, "since": "2026-11-22T09:00:00Z"}, body
    # Rollback is written before confirm-rollout: the rollout never starts without the rollback in place.
    assert rollback["at"] <= confirm["at"]
    events = kubernetes.client.CoreV1Api(api_client).list_namespaced_event(kube.namespace).items
    messages = sorted(e.message for e in events if e.reason == "Aborted" and e.involved_object.kind == "CanaryGate")
    assert len(messages) == 2, messages
    assert "opened confirm-rollout for one step: bad build" in messages[0]
    assert "opened rollback for this rollout: bad build" in messages[1]


def test_abort_while_waiting_says_so_when_confirm_rollout_cannot_be_opened(kube, tmp_path, api_client, monkeypatch):
    """Rollback first: a failed second write leaves the rollout Waiting at zero traffic, and the user is told."""
    from canarygate import errors
    from kubectl_gate.commands import abort as abort_module

    apply_seed(kube, tmp_path)
    set_status(api_client, kube.namespace, HELD_AT_CONFIRM_ROLLOUT)
    real = abort_module.change_gate

    def change_gate(gctx, name, gate, state, **kw):
        if gate == "confirm-rollout":
            raise errors.GateError("injected: the API server refused the write")
        return real(gctx, name, gate, state, **kw)

    monkeypatch.setattr(abort_module, "change_gate", change_gate)
    result = kube("abort", "demo")
    assert result.exit_code == 1, result.output
    assert "injected" in result.stderr and "stays Waiting at zero traffic" in result.stderr
    annotations = _gate_annotations(api_client, kube.namespace)
    assert json.loads(annotations["gate.piggysec.com/rollback"])["state"] == "opened"
    assert "gate.piggysec.com/confirm-rollout" not in annotations


def _gate_annotations(api_client, namespace):
    from canarygate.kube.client import Kube

    return Kube(api_client).request("GET", CANARYGATES.path(namespace, "demo"))["metadata"].get("annotations") or {}


def test_abort_while_progressing_keeps_its_message(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    set_status(
        api_client,
        kube.namespace,
        {
            "phase": "Progressing",
            "canaryWeight": 10,
            "conditions": [
                {
                    "type": "Promoted",
                    "status": "Unknown",
                    "reason": "Progressing",
                    "lastTransitionTime": "2026-11-22T09:00:00Z",
                }
            ],
        },
    )
    result = kube("abort", "demo")
    assert result.exit_code == 0 and "Flagger rolls back on its next check" in result.stdout
    gates = {g["gate"]: g for g in json.loads(kube("show", "demo", "-o", "json").stdout)["gates"]}
    assert gates["rollback"]["state"] == "opened" and gates["confirm-rollout"]["source"] != "live"


def _gate_names(api_client, namespace):
    from canarygate.kube.client import Kube

    return [i["metadata"]["name"] for i in Kube(api_client).request("GET", CANARYGATES.path(namespace))["items"]]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"- 1\n- 2\n", "bad.yaml (document 2): the document is a list, not a Kubernetes object"),
        (
            b"apiVersion: piggysec.com/v1alpha1\nkind: CanaryGate\nmetadata: {name: x}\nspec: {target: 5}\n",
            "bad.yaml (document 2): CanaryGate x: spec.target: 5 is not of type 'object'",
        ),
        ("apiVersion: v1\n".encode("utf-16"), "bad.yaml: not UTF-8 text (byte 0xff at offset 0)"),
    ],
)
def test_apply_bad_input_names_the_file_and_changes_nothing(kube, tmp_path, api_client, content, expected):
    """Every document is checked before any write: the good CanaryGate in front is not created either."""
    good = seed(kube.namespace)
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if content.startswith(b"\xff") else (good + "---\n").encode() + content)
    result = kube("apply", "-f", str(path))
    assert result.exit_code == 1, result.output
    assert expected in result.stderr and "internal error" not in result.stderr, result.stderr
    assert _gate_names(api_client, kube.namespace) == []


def test_apply_a_folder_reads_only_manifests_and_checks_them_all_first(kube, tmp_path, api_client):
    folder = tmp_path / "gates"
    (folder / "sub").mkdir(parents=True)
    (folder / "gate.yaml").write_text(seed(kube.namespace))
    (folder / "README").write_text("not a manifest: [\n")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    (folder / "notes.txt").write_bytes(b"\xff\xfe")
    result = kube("apply", "-f", str(folder))
    assert result.exit_code == 0, result.output
    assert "canarygate.piggysec.com/demo created" in result.stdout
    (folder / "sub" / "broken.yml").write_bytes(b"\xff\xfe")
    other = seed(kube.namespace).replace("name: demo\n  namespace", "name: other\n  namespace")
    (folder / "a-other.yaml").write_text(other)
    failed = kube("apply", "-f", str(folder))
    assert failed.exit_code == 1 and "broken.yml: not UTF-8 text" in failed.stderr, failed.output
    assert _gate_names(api_client, kube.namespace) == ["demo"]  # a-other.yaml, read before, was not created


BAD_ANNOTATION = '{"state":"close","scope":"Sticky","by":"bob"}'


def _break_annotation(api_client, namespace, gate="confirm-promotion"):
    from canarygate.kube.client import MERGE_PATCH, Kube

    Kube(api_client).request(
        "PATCH",
        CANARYGATES.path(namespace, "demo"),
        content_type=MERGE_PATCH,
        body={"metadata": {"annotations": {f"gate.piggysec.com/{gate}": BAD_ANNOTATION}}},
    )


def test_a_gate_whose_annotation_cannot_be_read_shows_as_unknown_with_the_fix(kube, tmp_path, api_client):
    apply_seed(kube, tmp_path)
    _break_annotation(api_client, kube.namespace)
    _break_annotation(api_client, kube.namespace, "rollback")
    ns = kube.namespace
    shown = kube("show", "demo")
    assert shown.exit_code == 0, shown.output
    rows = {
        line.split()[0]: line
        for line in shown.stdout.splitlines()
        if line.split()[:1] and line.split()[0] in ("confirm-promotion", "rollback")
    }
    assert "unknown" in rows["confirm-promotion"] and "invalid" in rows["confirm-promotion"], shown.stdout
    assert "unknown" in rows["rollback"] and "armed" not in rows["rollback"]
    assert (
        "gate confirm-promotion: state unknown: annotation gate.piggysec.com/confirm-promotion cannot be read"
        in shown.stdout
    )
    assert f"kubectl gate open|close confirm-promotion demo -n {ns}" in shown.stdout
    for output, load in (("json", json.loads), ("yaml", yaml.safe_load)):
        data = load(kube("show", "demo", "-o", output).stdout)
        entry = next(g for g in data["gates"] if g["gate"] == "confirm-promotion")
        assert (entry["state"], entry["source"]) == ("unknown", "invalid")
        assert "cannot be read" in entry["problem"] and entry["fix"].startswith("kubectl gate open|close")
        assert data["unknown"] == ["confirm-promotion", "rollback"]
        assert "problem" not in next(g for g in data["gates"] if g["gate"] == "confirm-rollout")
    listed = kube("list")
    assert listed.exit_code == 0
    assert "confirm-promotion(unknown),rollback(unknown)" in listed.stdout, listed.stdout
    assert "gate confirm-promotion has an unknown state" in listed.stderr
    listed_json = json.loads(kube("list", "-o", "json").stdout)["items"][0]
    assert listed_json["unknown"] == ["confirm-promotion", "rollback"]

    # open / close / promote replace the unreadable annotation with a valid one
    assert kube("close", "rollback", "demo").exit_code == 0
    set_status(api_client, ns, HELD_AT_PROMOTION)
    assert kube("show", "demo", "--exit-code").exit_code == 4
    promoted = kube("promote", "demo")
    assert promoted.exit_code == 0 and "confirm-promotion opened for this promotion" in promoted.stdout, promoted.output
    data = json.loads(kube("show", "demo", "-o", "json").stdout)
    assert data["unknown"] == []
    gates = {g["gate"]: g for g in data["gates"]}
    assert (gates["confirm-promotion"]["state"], gates["confirm-promotion"]["source"]) == ("opened", "live")
    assert (gates["rollback"]["state"], gates["rollback"]["source"]) == ("closed", "live")
    _break_annotation(api_client, ns)
    assert kube("open", "confirm-promotion", "demo").exit_code == 0
    assert json.loads(kube("show", "demo", "-o", "json").stdout)["unknown"] == []
