"""Completion's table against the click commands it is derived from. Covers: the shipped
kubectl_gate/data/completion.json is what build_table() derives now (regenerate with
``python -m kubectl_gate.completing``); every command, every visible flag of each (abort -r,
wait -q) and every -o format is offered by ``__complete``, read from the click objects
independently of the table; label selector values; the table is package data of the wheel.
"""

from __future__ import annotations

import json

import click
import pytest

from kubectl_gate import cli, completing


def _command(name: str) -> click.Command:
    return cli.cli.get_command(click.Context(cli.cli), name)


def _complete(invoke, *args: str) -> list[str]:
    result = invoke(["__complete", *args])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == ":4"
    return lines[:-1]


def test_shipped_table_is_derived_from_the_commands():
    shipped = json.loads(completing.TABLE.read_text())
    assert shipped == completing.build_table(), (
        "kubectl_gate/data/completion.json differs from the click commands: "
        "regenerate it with `.venv/bin/python -m kubectl_gate.completing`"
    )


def test_every_command_is_offered(invoke):
    offered = _complete(invoke, "")
    assert set(cli.COMMANDS) | set(cli.ALIASES) <= set(offered)


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_visible_flag_of_every_command_is_offered(invoke, name):
    command = _command(name)
    declared = {o for p in command.params if isinstance(p, click.Option) and not p.hidden for o in p.opts}
    offered = set(_complete(invoke, name, "-"))
    assert declared <= offered, f"{name}: not offered: {sorted(declared - offered)}"
    assert "--help" in offered


@pytest.mark.parametrize(
    "args, expected",
    [
        (["abort", "demo", "-"], "-r"),  # the drift that made this table derived
        (["wait", "demo", "-"], "-q"),
        (["open", "rollout", "demo", "-"], "-y"),
    ],
)
def test_short_flags_the_old_table_lacked(invoke, args, expected):
    assert expected in _complete(invoke, *args)


@pytest.mark.parametrize("name", [n for n in cli.COMMANDS if any(p.name == "output" for p in _command(n).params)])
def test_output_formats_are_the_commands_own(invoke, name):
    (output,) = [p for p in _command(name).params if p.name == "output"]
    assert _complete(invoke, name, "-o", "") == list(output.type.choices)


def test_a_value_flag_swallows_its_value(invoke):
    # --reason's value is not a positional: the next word is still the first NAME's place...
    assert _complete(invoke, "abort", "-r", "why", "--sel") == ["--selector"]
    # ...and a flag's value is not completed as a name or a flag
    assert _complete(invoke, "promote", "--reason", "") == []


@pytest.mark.parametrize(
    "current, expected",
    [
        ("", ["team=core", "team=pay", "tier=db"]),
        ("team=p", ["team=pay"]),
        ("team=pay,t", ["team=pay,team=core", "team=pay,tier=db"]),
    ],
)
def test_selector_candidates(current, expected):
    labels = [{"team": "pay"}, {"team": "pay", "tier": "db"}, {"team": "core"}, {}]
    assert completing.selector_candidates(current, labels) == expected
