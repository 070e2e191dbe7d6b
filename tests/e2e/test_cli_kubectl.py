"""``kubectl gate`` through real kubectl (the installed plugin found on PATH).

* apply: a file is applied whole or not at all when the CRD schema rejects any document, and a
  write the API server refuses part-way is reported with what was applied and what was not.
* kubectl's global flags: ``--server``, ``--token`` and ``--certificate-authority`` with no
  kubeconfig at all, ``-v 6``, ``--kubeconfig`` on the offline commands, and impersonation (``--as``,
  ``--as-group``): refused without the ``impersonate`` verb, recorded as the impersonated user with
  it (SelfSubjectReview answers for the impersonated identity). The emulator implements no
  impersonation: that test runs on the real tier.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from helpers.cli import SEED
from helpers.rbac import wait_granted
from helpers.tiers import real_tier

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def kubectl_gate(kubeconfig: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``kubectl gate ARGS`` run by the real kubectl, which finds the plugin on PATH."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": kubeconfig,
        "KUBECACHEDIR": os.environ.get("KUBECACHEDIR", "/tmp/kubectl-gate-test-cache"),
        **(env or {}),
    }
    return subprocess.run([str(BIN / "kubectl"), "gate", *args], capture_output=True, text=True, env=env, timeout=60)


def gate_doc(namespace: str, name: str, target_ns: str | None = None, **spec: str) -> str:
    text = SEED.replace("demo-ns", namespace).replace("name: demo\n  namespace", f"name: {name}\n  namespace")
    text = text.replace(
        f"target: {{namespace: {namespace}, name: demo}}",
        f"target: {{namespace: {target_ns or namespace}, name: {name}}}",
    )
    for key, value in spec.items():
        text = text.replace("spec:\n", f"spec:\n  {key}: {value}\n", 1)
    return text


def names(kubectl, namespace: str, kind: str) -> list[str]:
    out = kubectl("get", kind, "-n", namespace, "-o", "json").stdout
    return sorted(item["metadata"]["name"] for item in json.loads(out)["items"])


def test_a_value_the_crd_rejects_in_the_second_document_applies_nothing(kubeconfig, crds, namespace, kubectl, tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text(
        gate_doc(namespace, "first") + "---\n" + gate_doc(namespace, "second", **{"confirm-rollout": "close"})
    )
    proc = kubectl_gate(kubeconfig, "apply", "-f", str(path), "-n", namespace)
    assert proc.returncode == 1, proc
    assert "nothing was applied (none of the CanaryGates first, second)" in proc.stderr, proc.stderr
    assert (
        f"{path} (document 2): CanaryGate second: spec.confirm-rollout: 'close' is not one of ['opened', 'closed']"
    ) in proc.stderr, proc.stderr
    assert proc.stdout == ""
    assert names(kubectl, namespace, "canarygates.piggysec.com") == []
    assert names(kubectl, namespace, "canaries.flagger.app") == []
    # NB: the same value the API server itself refuses, so the schema read is the one it enforces
    refused = kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        check=False,
        input=gate_doc(namespace, "second", **{"confirm-rollout": "close"}),
    )
    assert refused.returncode != 0 and "confirm-rollout" in refused.stderr, refused


def test_a_write_refused_part_way_says_what_was_applied_and_what_was_not(
    kubeconfig, crds, namespace, kubectl, tmp_path
):
    """The second CanaryGate's Canary lives in a namespace that does not exist: only the server knows."""
    path = tmp_path / "gates.yaml"
    missing = f"{namespace}-missing"
    path.write_text(
        gate_doc(namespace, "first")
        + "---\n"
        + gate_doc(namespace, "second", target_ns=missing)
        + "---\n"
        + gate_doc(namespace, "third")
    )
    proc = kubectl_gate(kubeconfig, "apply", "-f", str(path), "-n", namespace)
    assert proc.returncode == 1, proc
    err = proc.stderr
    assert "the file was applied in part" in err, err
    assert "canary.flagger.app/second failed:" in err and missing in err, err
    assert (
        "applied: canarygate.piggysec.com/first (created), canary.flagger.app/first (created), "
        "canarygate.piggysec.com/second (created)"
    ) in err, err
    assert "not applied: canary.flagger.app/second, canarygate.piggysec.com/third, canary.flagger.app/third" in err
    assert names(kubectl, namespace, "canarygates.piggysec.com") == ["first", "second"]
    assert names(kubectl, namespace, "canaries.flagger.app") == ["first"]


ANNOTATION = "gate.piggysec.com/confirm-promotion"


@pytest.fixture
def demo(kubeconfig, crds, namespace, tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text(gate_doc(namespace, "demo"))
    applied = kubectl_gate(kubeconfig, "apply", "-f", str(path), "-n", namespace)
    assert applied.returncode == 0, applied
    return namespace


def user(apiserver, name: str, groups: tuple[str, ...] = ()) -> tuple[str, str]:
    """(username, token) of a fresh user the API server authenticates."""
    username = f"{name}-{uuid.uuid4().hex[:6]}"
    if real_tier(apiserver):
        return username, apiserver.token(username, groups)  # NB: signed for the cluster's token webhook
    token = f"{username}-{uuid.uuid4().hex}"
    apiserver.add_token(token, username, groups)
    return username, token


def grant(apiserver, namespace: str, username: str, *, kind: str = "User") -> None:
    """``username`` (or a group) may read and change CanaryGates, Canaries and Events in the namespace."""
    role = f"gates-{uuid.uuid4().hex[:6]}"
    apiserver.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": role, "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["piggysec.com", "flagger.app", "", "events.k8s.io", "apps"],
                    "resources": ["*"],
                    "verbs": ["*"],
                }
            ],
        }
    )
    apiserver.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": role, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": kind, "name": username, "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )


def no_kubeconfig_flags(apiserver, tmp_path, token: str) -> list[str]:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(apiserver.ca_pem)
    return ["-s", apiserver.url, "--token", token, "--certificate-authority", str(ca)]


def recorded_by(kubectl, namespace: str) -> str:
    gate = json.loads(kubectl("get", "canarygates.piggysec.com", "demo", "-n", namespace, "-o", "json").stdout)
    return json.loads(gate["metadata"]["annotations"][ANNOTATION])["by"]


def open_gate(flags: list[str], namespace: str, config: str = "/nonexistent/kubeconfig"):
    return kubectl_gate(config, "open", "confirm-promotion", "demo", "-n", namespace, "-r", "flags test", *flags)


def wait_allowed(kubectl, namespace: str, token_flags: list[str], *extra: str) -> None:
    """RBAC bindings take a moment to reach the real authorizer."""

    def allowed() -> bool:
        proc = kubectl(
            "auth", "can-i", "patch", "canarygates.piggysec.com", "-n", namespace, *token_flags, *extra, check=False
        )
        return proc.stdout.strip() == "yes"

    wait_granted(allowed, f"patch canarygates.piggysec.com in {namespace} {' '.join(extra)}")


def test_server_token_and_ca_flags_need_no_kubeconfig(apiserver, demo, kubectl, tmp_path):
    username, token = user(apiserver, "ci")
    grant(apiserver, demo, username)
    flags = no_kubeconfig_flags(apiserver, tmp_path, token)
    wait_allowed(kubectl, demo, ["--token", token])
    proc = open_gate(flags, demo)
    assert proc.returncode == 0, proc
    assert recorded_by(kubectl, demo) == username
    listed = kubectl_gate(
        "/nonexistent",
        "list",
        "-n",
        demo,
        "-s",
        apiserver.url,
        "--token",
        token,
        "--insecure-skip-tls-verify",
        "-o",
        "name",
    )
    assert (listed.returncode, listed.stdout) == (0, "canarygate.piggysec.com/demo\n"), listed
    refused = kubectl_gate("/nonexistent", "list", "-n", demo, *flags, "--token", "not-a-token")
    assert refused.returncode == 1 and "unauthorized" in refused.stderr.lower(), refused


def test_v6_logs_each_request_on_stderr(kubeconfig, demo):
    proc = kubectl_gate(kubeconfig, "list", "-n", demo, "-v", "6", "-o", "name")
    assert proc.returncode == 0 and proc.stdout == "canarygate.piggysec.com/demo\n", proc
    lines = [line for line in proc.stderr.splitlines() if "/apis/piggysec.com/v1alpha1/" in line]
    assert lines and lines[0].startswith("GET https://") and " 200 in " in lines[0], proc.stderr
    quiet = kubectl_gate(kubeconfig, "list", "-n", demo, "-o", "name")
    assert quiet.stderr == "", quiet.stderr


@pytest.mark.parametrize(
    "args", [["render", "-f", "{gate}"], ["explain"], ["completion", "bash"], ["install", "--crd-only"]]
)
def test_offline_commands_accept_the_kubeconfig_flags(args, tmp_path):
    gate = tmp_path / "gate.yaml"
    gate.write_text(gate_doc("ns", "demo"))
    argv = [a.format(gate=gate) for a in args]
    proc = kubectl_gate("/nonexistent", *argv, "--kubeconfig", "/nonexistent/config", "--context", "nowhere")
    assert proc.returncode == 0 and proc.stdout, proc


def test_impersonation_is_refused_without_the_impersonate_verb_and_recorded_as_the_impersonated_user(
    apiserver, demo, kubectl, tmp_path
):
    if not real_tier(apiserver):
        pytest.skip("the emulator implements no impersonation (sandbox/apiserver: 'no impersonation')")
    approver, approver_token = user(apiserver, "approver")
    breakglass, token = user(apiserver, "breakglass")
    grant(apiserver, demo, approver)
    flags = no_kubeconfig_flags(apiserver, tmp_path, token)
    refused = open_gate([*flags, "--as", approver], demo)
    assert refused.returncode == 1, refused
    assert "forbidden" in refused.stderr and "impersonate" in refused.stderr, refused.stderr
    assert ANNOTATION not in (
        json.loads(kubectl("get", "canarygates.piggysec.com", "demo", "-n", demo, "-o", "json").stdout)["metadata"].get(
            "annotations"
        )
        or {}
    )
    role = f"impersonate-{uuid.uuid4().hex[:6]}"
    apiserver.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": [
                {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": [approver]},
                {
                    "apiGroups": [""],
                    "resources": ["groups"],
                    "verbs": ["impersonate"],
                    "resourceNames": ["release-managers"],
                },
            ],
        }
    )
    apiserver.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "name": breakglass, "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )
    try:
        wait_allowed(kubectl, demo, ["--token", approver_token])
        wait_allowed(kubectl, demo, ["--token", token], "--as", approver)
        proc = open_gate([*flags, "--as", approver], demo)
        assert proc.returncode == 0, proc
        assert recorded_by(kubectl, demo) == approver
        # --as-group: the group's rights, the impersonated user's name
        grant(apiserver, demo, "release-managers", kind="Group")
        outsider = f"outsider-{uuid.uuid4().hex[:6]}"
        apiserver.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": role},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["users"],
                        "verbs": ["impersonate"],
                        "resourceNames": [approver, outsider],
                    },
                    {
                        "apiGroups": [""],
                        "resources": ["groups"],
                        "verbs": ["impersonate"],
                        "resourceNames": ["release-managers"],
                    },
                ],
            }
        )
        wait_allowed(kubectl, demo, ["--token", token], "--as", outsider, "--as-group", "release-managers")
        closed = kubectl_gate(
            "/nonexistent",
            "close",
            "confirm-promotion",
            "demo",
            "-n",
            demo,
            "-r",
            "freeze",
            *flags,
            "--as",
            outsider,
            "--as-group",
            "release-managers",
        )
        assert closed.returncode == 0, closed
        assert recorded_by(kubectl, demo) == outsider
    finally:
        kubectl("delete", "clusterrolebinding", role, "--ignore-not-found", "--wait=false")
        kubectl("delete", "clusterrole", role, "--ignore-not-found", "--wait=false")


# -- names and selectors -------------------------------------------------------------------------


@pytest.fixture
def three(kubeconfig, crds, namespace, tmp_path):
    """CanaryGates web and api (team=pay, run=<unique>) and db (team=core) in the namespace."""
    run = uuid.uuid4().hex[:8]
    docs = []
    for name, team in (("web", "pay"), ("api", "pay"), ("db", "core")):
        docs.append(
            gate_doc(namespace, name).replace(
                f"name: {name}\n  namespace: {namespace}\n",
                f"name: {name}\n  namespace: {namespace}\n  labels: {{team: {team}, run: r{run}}}\n",
            )
        )
    path = tmp_path / "three.yaml"
    path.write_text("---\n".join(docs))
    applied = kubectl_gate(kubeconfig, "apply", "-f", str(path), "-n", namespace)
    assert applied.returncode == 0, applied
    return namespace, f"r{run}"


def gate_states(kubectl, namespace: str) -> dict[str, str | None]:
    """name -> the live state of confirm-promotion (None when no live change)."""
    items = json.loads(kubectl("get", "canarygates.piggysec.com", "-n", namespace, "-o", "json").stdout)["items"]
    states = {}
    for item in items:
        raw = (item["metadata"].get("annotations") or {}).get(ANNOTATION)
        states[item["metadata"]["name"]] = json.loads(raw)["state"] if raw else None
    return states


@pytest.mark.parametrize(
    "ref",
    [
        "web",
        "canarygate/web",
        "canarygates/web",
        "canarygate.piggysec.com/web",
        "cg/web",
        "cgate/web",
        "canarygates.v1alpha1.piggysec.com/web",
    ],
)
def test_type_slash_name_as_kubectl_prints_it(kubeconfig, three, ref):
    namespace, _ = three
    proc = kubectl_gate(kubeconfig, "show", ref, "-n", namespace, "-o", "name")
    assert (proc.returncode, proc.stdout) == (0, "canarygate.piggysec.com/web\n"), proc


def test_another_type_is_a_usage_error(kubeconfig, three):
    proc = kubectl_gate(kubeconfig, "promote", "deployment/web", "-n", three[0])
    assert proc.returncode == 2 and "deployment is not a CanaryGate type" in proc.stderr, proc


def test_a_selector_closes_the_matching_gates_and_lists_them(kubeconfig, three, kubectl):
    namespace, _ = three
    proc = kubectl_gate(kubeconfig, "close", "confirm-promotion", "-l", "team=pay", "-n", namespace, "-r", "freeze")
    assert proc.returncode == 0, proc
    assert sorted(proc.stdout.splitlines()) == [
        "gate confirm-promotion of canarygate/api closed for the next rollout",
        "gate confirm-promotion of canarygate/web closed for the next rollout",
    ], proc
    assert "closed: 2 of 2 CanaryGates" in proc.stderr, proc.stderr
    assert gate_states(kubectl, namespace) == {"api": "closed", "db": None, "web": "closed"}
    listed = kubectl_gate(kubeconfig, "list", "-l", "team=pay", "-n", namespace, "-o", "name")
    assert listed.stdout.splitlines() == ["canarygate.piggysec.com/api", "canarygate.piggysec.com/web"], listed


def test_several_names_go_on_past_a_failure_and_exit_1_naming_it(kubeconfig, three, kubectl):
    namespace, _ = three
    proc = kubectl_gate(kubeconfig, "open", "confirm-promotion", "web", "nope", "cg/db", "-n", namespace)
    assert proc.returncode == 1, proc
    assert f'error: canarygate {namespace}/nope: CanaryGate "nope" not found' in proc.stderr, proc.stderr
    assert f"opened: 2 of 3 CanaryGates; failed: {namespace}/nope" in proc.stderr, proc.stderr
    assert gate_states(kubectl, namespace) == {"api": None, "db": "opened", "web": "opened"}


def test_all_and_all_namespaces_with_a_selector(kubeconfig, three, kubectl):
    namespace, run = three
    paused = kubectl_gate(kubeconfig, "pause", "--all", "-n", namespace, "-r", "change freeze")
    assert paused.returncode == 0 and "paused: 3 of 3 CanaryGates" in paused.stderr, paused
    assert set(gate_states(kubectl, namespace).values()) == {"closed"}
    # -A with a selector unique to this test: only these gates, wherever they are
    aborted = kubectl_gate(kubeconfig, "abort", "-A", "-l", f"run={run},team=core")
    assert aborted.returncode == 1 and "nothing to abort" in aborted.stderr, aborted  # db: no rollout under way
    assert "kubectl gate open rollback db" in aborted.stderr and "web" not in aborted.stderr, aborted
    none = kubectl_gate(kubeconfig, "promote", "-l", "team=nobody", "-n", namespace)
    assert none.returncode == 0 and f"No CanaryGates found in namespace {namespace}: nothing promoted." in none.stderr
    both = kubectl_gate(kubeconfig, "promote", "web", "--all", "-n", namespace)
    assert both.returncode == 2 and "not both" in both.stderr, both


# -- output --------------------------------------------------------------------------------------

JSONPATHS = [
    "{.metadata.name}",
    "{.spec.target.namespace}/{.spec.target.name}",
    "{.spec.flagger.analysis.webhooks[*].name}",
    '{range .spec.flagger.analysis.webhooks[*]}{.name}{"\\t"}{.url}{"\\n"}{end}',
    '{.spec.flagger.analysis.webhooks[?(@.type=="pre-rollout")].name}',
    "{.spec.flagger.analysis.webhooks[0].metadata}",
    "{.spec.flagger.analysis.maxWeight} {.spec.flagger.analysis.stepWeight}",
    "name={.metadata.name} missing=[{.metadata.nothere}]",
    "{.spec.flagger.analysis.webhooks[-1:].name}",
    "{.spec.flagger.service}",
]
COLUMNS = [
    "NAME:.metadata.name,TARGET:.spec.target.name,HOOKS:.spec.flagger.analysis.webhooks[*].name",
    "N:{.metadata.name},NONE:.metadata.nothere,WEIGHT:.spec.flagger.analysis.maxWeight",
]


@pytest.mark.parametrize("template", JSONPATHS)
def test_jsonpath_prints_what_kubectl_prints_for_the_same_object(demo, kubectl, template):
    """Our template engine on the CanaryGate kubectl reads, next to kubectl's own -o jsonpath."""
    from kubectl_gate import templates

    obj = json.loads(kubectl("get", "canarygates.piggysec.com", "demo", "-n", demo, "-o", "json").stdout)
    expected = kubectl("get", "canarygates.piggysec.com", "demo", "-n", demo, "-o", f"jsonpath={template}").stdout
    assert templates.render(f"jsonpath={template}", obj) == expected


@pytest.mark.parametrize("spec", COLUMNS)
def test_custom_columns_print_what_kubectl_prints_for_the_same_list(three, kubectl, spec):
    from kubectl_gate import templates

    namespace, _ = three
    listed = json.loads(kubectl("get", "canarygates.piggysec.com", "-n", namespace, "-o", "json").stdout)
    expected = kubectl("get", "canarygates.piggysec.com", "-n", namespace, "-o", f"custom-columns={spec}").stdout
    assert templates.render(f"custom-columns={spec}", listed) + "\n" == expected


def test_list_and_show_take_jsonpath_and_custom_columns(kubeconfig, three):
    namespace, _ = three
    names = kubectl_gate(kubeconfig, "list", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}")
    assert (names.returncode, names.stdout) == (0, "api db web\n"), names
    columns = "custom-columns=NAME:.metadata.name,NS:.metadata.namespace"
    table = kubectl_gate(kubeconfig, "list", "-n", namespace, "-o", columns)
    assert table.stdout.splitlines() == [
        "NAME   NS",
        f"api    {namespace}",
        f"db     {namespace}",
        f"web    {namespace}",
    ], table
    shown = kubectl_gate(
        kubeconfig,
        "show",
        "cg/web",
        "-n",
        namespace,
        "-o",
        """jsonpath={range .gates[*]}{.gate}={.state}{"\\n"}{end}""",
    )
    assert shown.returncode == 0 and "confirm-promotion=closed\n" in shown.stdout, shown
    bad = kubectl_gate(kubeconfig, "list", "-n", namespace, "-o", "yaml2")
    assert bad.returncode == 2 and "jsonpath=TEMPLATE" in bad.stderr, bad


def test_table_cells_carry_no_icons_off_a_terminal(kubeconfig, three):
    """Piped, every row has one word per column: awk '{print $3}' is the phase."""
    namespace, _ = three
    proc = kubectl_gate(kubeconfig, "list", "-n", namespace)
    rows = proc.stdout.splitlines()
    assert rows[0].split() == ["NAME", "TARGET", "PHASE", "WEIGHT", "HELD-AT", "CLOSED"], proc
    assert [len(r.split()) for r in rows[1:]] == [6, 6, 6], proc.stdout
    assert not any(mark in proc.stdout for mark in "✔✖◷◌•⚠"), proc.stdout
    shown = kubectl_gate(kubeconfig, "show", "web", "-n", namespace)
    assert "confirm-promotion  " in shown.stdout and not any(mark in shown.stdout for mark in "✔✖◷◌•⚠"), shown


def test_wait_quiet_never_prints_none(kubeconfig, demo):
    proc = kubectl_gate(kubeconfig, "wait", "demo", "-n", demo, "--for", "promoted", "--timeout", "1s", "-q")
    assert proc.returncode == 124, proc
    assert proc.stderr.startswith("timed out after 1s waiting for promoted") and "None" not in proc.stderr, proc


def test_version_flag(kubeconfig):
    from importlib import metadata

    proc = kubectl_gate(kubeconfig, "--version")
    assert (proc.returncode, proc.stdout) == (0, f"kubectl-gate: {metadata.version('canary-gate')}\n"), proc


def test_list_watch_prints_a_row_again_when_it_changes(kubeconfig, three):
    namespace, _ = three
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": kubeconfig,
        "PYTHONUNBUFFERED": "1",
    }
    watcher = subprocess.Popen(
        [str(BIN / "kubectl"), "gate", "list", "--watch", "-n", namespace],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    import threading

    watchdog = threading.Timer(60, watcher.kill)  # NB: a row that never comes ends the read, not the run
    watchdog.start()
    try:
        lines = [watcher.stdout.readline() for _ in range(4)]  # header and three rows
        assert lines[0].split()[0] == "NAME" and [line.split()[0] for line in lines[1:]] == ["api", "db", "web"]
        closed = kubectl_gate(kubeconfig, "close", "confirm-rollout", "db", "-n", namespace)
        assert closed.returncode == 0, closed
        changed = watcher.stdout.readline()
        assert changed.split()[0] == "db" and "confirm-rollout" in changed, changed
    finally:
        watchdog.cancel()
        watcher.terminate()
        watcher.wait(timeout=10)
        watcher.stdout.close()
        watcher.stderr.close()


# -- completion ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "words, expected",
    [
        (["promote", ""], ["api", "db", "web"]),
        (["promote", "web", ""], ["api", "db"]),
        (["promote", "cg/w"], ["cg/web"]),
        (
            ["show", "canarygate.piggysec.com/"],
            ["canarygate.piggysec.com/api", "canarygate.piggysec.com/db", "canarygate.piggysec.com/web"],
        ),
        (["open", "confirm-p"], ["confirm-promotion"]),
        (["close", "rollout", "a"], ["api"]),
        (["abort", "web", "-"], None),  # every flag abort declares, -r included
        (["promote", "-l", "team=p"], ["team=pay"]),
        (["pause", "--selector=team=pay,team=c"], ["--selector=team=pay,team=core"]),
        (["wait", "-d", "w"], ["web"]),
    ],
)
def test_kubectl_completes_type_slash_name_and_gate_names(kubeconfig, three, words, expected):
    """kubectl's own completion (``kubectl __complete gate ...``) runs kubectl_complete-gate."""
    namespace, _ = three
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "KUBECONFIG": kubeconfig}
    proc = subprocess.run(
        [str(BIN / "kubectl"), "__complete", "gate", "-n", namespace, *words],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    lines = proc.stdout.splitlines()
    if expected is None:
        assert {"-r", "--reason", "-l", "--all", "-A"} <= set(lines[:-1]) and lines[-1] == ":4", proc
        return
    assert lines[:-1] == expected and lines[-1] == ":4", proc
