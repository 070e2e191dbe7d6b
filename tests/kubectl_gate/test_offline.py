"""Commands that need no cluster. Covers: help lists every command and the exit codes; explain
(golden); render (gate webhooks first, user webhooks kept in order, re-render does not duplicate,
CRD validation refuses before output, namespace flag); completion scripts and the __complete
protocol (commands, gates, flags, -o and --for values, kubectl_complete-gate entry point);
version --client; usage errors exit 2 listing the gates; golden list/show pages from dicts with
an injected clock; colour rules (NO_COLOR, TERM=dumb, --no-color, not a tty).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import yaml
from helpers.cli import GOLDEN, NOW, SEED, golden  # noqa: F401

from canarygate.model import parse_canary, parse_canarygate
from kubectl_gate import printing
from kubectl_gate.views import build_view

BIN = pathlib.Path(sys.executable).parent


def test_help_lists_commands_and_exit_codes(invoke):
    result = invoke(["--help"])
    assert result.exit_code == 0
    for command in (
        "list",
        "show",
        "open",
        "close",
        "promote",
        "abort",
        "wait",
        "apply",
        "render",
        "explain",
        "install",
        "version",
        "completion",
    ):
        assert f"  {command} " in result.stdout
    for code in ("124", "3    the rollout failed", "4    the rollout is waiting"):
        assert code in result.stdout


def test_explain_golden(invoke):
    result = invoke(["explain"])
    assert result.exit_code == 0
    golden("explain.txt", result.stdout)
    one = invoke(["explain", "rollback"])
    assert "opened means roll back now" in one.stdout and "confirm-rollout" not in one.stdout


def test_unknown_gate_is_a_usage_error_listing_the_gates(invoke):
    result = invoke(["open", "confirm-rolout", "demo"])
    assert result.exit_code == 2
    assert "confirm-rollout, pre-rollout, rollout" in result.stderr


def test_render_keeps_user_webhooks_and_does_not_duplicate(invoke, tmp_path):
    source = tmp_path / "gate.yaml"
    source.write_text(SEED)
    result = invoke(["render", "-f", str(source), "--endpoint", "http://sidecar.gates:80"])
    assert result.exit_code == 0, result.output
    canary = yaml.safe_load(result.stdout)
    hooks = canary["spec"]["analysis"]["webhooks"]
    names = [h["name"] for h in hooks]
    assert names == [
        "confirm-rollout",
        "pre-rollout",
        "rollout",
        "confirm-traffic-increase",
        "confirm-promotion",
        "post-rollout",
        "rollback",
        "event",
        "load-test",
        "smoke",
    ]
    assert hooks[0]["url"] == "http://sidecar.gates:80/confirm-rollout"
    assert hooks[0]["metadata"] == {"gate_name": "demo", "gate_namespace": "demo-ns"}
    # Rendering a spec that already carries our webhooks gives the same Canary.
    again = yaml.safe_load(SEED)
    again["spec"]["flagger"] = canary["spec"]
    source.write_text(yaml.safe_dump(again))
    second = invoke(["render", "-f", str(source), "--endpoint", "http://sidecar.gates:80"])
    assert yaml.safe_load(second.stdout)["spec"] == canary["spec"]


def test_render_refuses_an_invalid_canary_and_reads_folders_and_stdin(invoke, tmp_path):
    bad = yaml.safe_load(SEED)
    bad["spec"]["flagger"]["analysis"]["threshold"] = "two"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.yaml").write_text(yaml.safe_dump(bad))
    (tmp_path / "a" / "kustomization.yaml").write_text("kind: Kustomization\n")
    result = invoke(["render", "-f", str(tmp_path / "a")])
    assert result.exit_code == 1
    assert "threshold" in result.stderr and "nothing was applied" in result.stderr
    assert result.stdout == ""
    stdin = invoke(["render", "-f", "-", "-o", "json"], input=SEED)
    assert stdin.exit_code == 0 and '"kind": "Canary"' in stdin.stdout


def test_render_without_namespace_uses_the_flag(invoke):
    text = SEED.replace("  namespace: demo-ns\n", "", 1)
    result = invoke(["render", "-f", "-", "-n", "team"], input=text)
    canary = yaml.safe_load(result.stdout)
    assert canary["spec"]["analysis"]["webhooks"][0]["metadata"]["gate_namespace"] == "team"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell"])
def test_completion_scripts(invoke, shell):
    result = invoke(["completion", shell])
    assert result.exit_code == 0 and "__complete" in result.stdout


@pytest.mark.parametrize(
    "args, expected",
    [
        (["pro"], ["promote"]),
        (["open", "confirm-"], ["confirm-rollout", "confirm-traffic-increase", "confirm-promotion"]),
        (["show", "demo", "--wa"], ["--watch"]),
        (["list", "-o", ""], ["json", "yaml", "wide", "name"]),
        (["wait", "demo", "--for", "gate=confirm-p"], ["gate=confirm-promotion"]),
        (["wait", "demo", "--for=gate=roll"], ["--for=gate=rollout", "--for=gate=rollback"]),
        (["completion", ""], ["bash", "fish", "powershell", "zsh"]),
        (["promote", "--sel"], ["--selector"]),
        (["list", "--wa"], ["--watch"]),
        (["open", "rollout", "--as-"], ["--as-group", "--as-uid"]),
        (["promote", "deployment/"], []),
    ],
)
def test_complete_protocol(invoke, args, expected):
    result = invoke(["__complete", *args])
    lines = result.stdout.splitlines()
    assert lines[-1] == ":4"
    assert lines[:-1] == expected


def test_complete_helper_and_fast_paths_do_not_import_kubernetes():
    env = {**os.environ, "KUBECONFIG": "/nonexistent"}
    helper = subprocess.run(
        [str(BIN / "kubectl_complete-gate"), "open", "roll"], capture_output=True, text=True, env=env, timeout=30
    )
    assert helper.stdout.splitlines() == ["rollout", "rollback", ":4"]
    probe = (
        "import sys; from kubectl_gate.cli import main\n"
        "try: main(sys.argv[1:])\nexcept SystemExit: pass\n"
        "assert 'kubernetes' not in sys.modules, 'kubernetes imported'"
    )
    for args in (
        ["--help"],
        ["version", "--client"],
        ["completion", "bash"],
        ["__complete", "show", ""],
        ["explain"],
        ["open", "--help"],
    ):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env, timeout=30)
        assert proc.returncode == 0, (args, proc.stderr)


def test_version_client(invoke):
    result = invoke(["version", "--client", "-o", "json"])
    assert result.exit_code == 0 and '"client"' in result.stdout


def _views():
    gate = parse_canarygate(
        {
            "metadata": {
                "name": "demo",
                "namespace": "demo-ns",
                "resourceVersion": "7",
                "creationTimestamp": "2026-11-20T10:00:00Z",
                "annotations": {
                    "gate.piggysec.com/confirm-traffic-increase": '{"state":"closed","scope":"rollout","by":"alice",'
                    '"at":"2026-11-22T09:55:00Z","reason":"CAB-42 freeze",'
                    '"rollout":{"active":true,"since":"2026-11-22T09:50:00Z"}}'
                },
            },
            "spec": {
                "confirm-promotion": "closed",
                "target": {"namespace": "demo-ns", "name": "demo"},
                "flagger": {"analysis": {}},
            },
        }
    )
    canary = parse_canary(
        {
            "metadata": {"name": "demo", "namespace": "demo-ns"},
            "spec": {
                "analysis": {
                    "maxWeight": 40,
                    "stepWeight": 10,
                    "threshold": 2,
                    "webhooks": [
                        {
                            "name": "confirm-rollout",
                            "type": "confirm-rollout",
                            "url": "http://s/confirm-rollout",
                            "metadata": {"gate_name": "demo", "gate_namespace": "demo-ns"},
                        }
                    ],
                }
            },
            "status": {
                "phase": "Progressing",
                "canaryWeight": 20,
                "failedChecks": 1,
                "iterations": 2,
                "conditions": [
                    {
                        "type": "Promoted",
                        "status": "Unknown",
                        "reason": "Progressing",
                        "lastTransitionTime": "2026-11-22T09:50:00Z",
                    }
                ],
            },
        }
    )
    events = [
        {
            "reason": "GateClosed",
            "lastTimestamp": "2026-11-22T09:55:00Z",
            "message": "alice closed confirm-traffic-increase for this rollout: CAB-42 freeze",
        }
    ]
    canary_events = [
        {
            "reason": "Synced",
            "type": "Normal",
            "lastTimestamp": "2026-11-22T09:58:00Z",
            "message": "Advance demo.demo-ns canary weight 20",
        }
    ]
    held = build_view(gate, canary, gate_events=events, canary_events=canary_events)
    other = parse_canarygate(
        {"metadata": {"name": "api", "namespace": "shop"}, "spec": {"rollback": "opened", "target": {"name": "api-v2"}}}
    )
    return held, build_view(other, None)


def test_show_page_golden():
    held, _ = _views()
    golden("show.txt", printing.show_text(held, now=NOW))
    golden("show-ascii.txt", printing.show_text(held, now=NOW, style=printing.Style(unicode=False)))


def test_list_table_golden():
    views = list(_views())
    golden("list.txt", printing.list_table(views, now=NOW))
    golden("list-wide-all.txt", printing.list_table(views, now=NOW, wide=True, all_namespaces=True))


def test_colour_only_on_a_terminal_and_never_when_disabled(monkeypatch):
    from kubectl_gate.context import GateContext

    class Tty:
        encoding = "utf-8"

        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert GateContext(stdout=Tty()).color
    assert not GateContext().color  # CliRunner / pipes are not terminals
    assert not GateContext(stdout=Tty(), no_color=True).color
    monkeypatch.setenv("NO_COLOR", "1")
    assert not GateContext(stdout=Tty()).color
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not GateContext(stdout=Tty()).color
    held, _ = _views()
    coloured = printing.show_text(held, now=NOW, style=printing.Style(color=True))
    assert "\x1b[" in coloured


def test_wait_help_and_root_help_agree_on_exit_code_4(invoke):
    """4 belongs to show --exit-code; wait never ends with it (it keeps waiting at a closed gate)."""
    root = invoke(["--help"]).stdout
    assert "4    the rollout is waiting at a closed gate (show --exit-code only;" in root
    wait = " ".join(invoke(["wait", "--help"]).stdout.split())
    assert "wait never exits 4" in wait and "kubectl gate show NAME --exit-code" in wait
    assert "124 timed out" in wait and "3 the rollout failed" in wait


def test_explain_gate_prints_what_flagger_does_with_each_answer(invoke):
    result = invoke(["explain", "rollout"])
    assert result.exit_code == 0
    assert "rollout  go on      failed check  failed check  failed check" in result.stdout
    assert "at the threshold Flagger rolls back" in result.stdout and "kubectl gate pause" in result.stdout
    promotion = invoke(["explain", "confirm-promotion"]).stdout
    assert "go on      wait   wait   wait" in promotion and "two consecutive ticks" in promotion
