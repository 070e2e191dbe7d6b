"""Shell completion in Cobra's ``__complete`` protocol, which kubectl speaks to plugins.

``kubectl gate <TAB>`` makes kubectl run ``kubectl_complete-gate ARGS... WORD``; the scripts from
``kubectl gate completion`` run ``kubectl-gate __complete ARGS... WORD``. Either prints one
candidate per line, then ``:<directive>`` (4: no file completion; 0: files allowed).

What the command line accepts (commands, their flags, which flags take a value, static values) is
read from ``kubectl_gate/data/completion.json``, which :func:`build_table` derives from the click
commands themselves: importing every command module would double completion's start-up, so the
table is generated (``python -m kubectl_gate.completing``) and a test fails when it differs from
the commands. The API is asked only for names, with :mod:`canarygate.kube.kubeconfig` and the
light transport (:mod:`canarygate.kube.light`, standard library only; no ``kubernetes`` import).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import click

DEFAULT = 0
NO_SPACE = 2
NO_FILES = 4

TABLE = Path(__file__).with_name("data") / "completion.json"

#: Flags whose values are names read from the kubeconfig or the cluster (the rest come from the table).
KUBECONFIG_SECTIONS = {"--context": "contexts", "-c": "contexts", "--cluster": "clusters", "--user": "users"}
NAMESPACE_FLAGS = {"--namespace", "-n", "--ns", "--sidecar-namespace", "--flagger-namespace"}
GATE_NAME_FLAGS = {"--deployment", "-d"}
SELECTOR_FLAGS = {"--selector", "-l"}


@functools.lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    """The command line as :func:`build_table` wrote it to :data:`TABLE`."""
    return json.loads(TABLE.read_text(encoding="utf-8"))


def candidates(args: list[str]) -> tuple[list[str], int]:
    """(candidates, directive) for the command line ``args`` whose last item is the word being completed."""
    t = table()
    words, current = args[:-1], (args[-1] if args else "")
    command = None
    spec = t["root"]
    positionals: list[str] = []
    flags: dict[str, str] = {}
    value_of = None  # the flag whose value the current word is
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("-") and word != "-":
            name, eq, value = word.partition("=")
            if name in spec["takes_value"] and not eq:
                if i + 1 == len(words):
                    value_of = name
                flags[name] = words[i + 1] if i + 1 < len(words) else ""
                i += 2
                continue
            flags[name] = value
        elif command is None:
            command = t["aliases"].get(word, word)
            spec = t["commands"].get(command) or {"args": [], "flags": [], "takes_value": [], "choices": {}}
        else:
            positionals.append(word)
        i += 1
    if value_of:
        return _flag_values(value_of, current, flags, spec), NO_FILES
    if current.startswith("-") and "=" in current:
        name, _, value = current.partition("=")
        return [f"{name}={v}" for v in _flag_values(name, value, flags, spec)], NO_FILES
    if current.startswith("-"):
        return [f for f in (*spec["flags"], *t["help"]) if f.startswith(current)], NO_FILES
    if command is None:
        return [c for c in (*t["commands"], *t["aliases"]) if c.startswith(current)], NO_FILES
    kinds = spec["args"]
    index = len(positionals)
    if command == "show" and positionals and (positionals[0] == "all" or positionals[0] in t["gates"]):
        index -= 1  # the Go original's `show all -d NAME` and `show GATE NAME`
    if not kinds or (index >= len(kinds) and kinds[-1] != "names"):
        return [], NO_FILES
    kind = kinds[min(index, len(kinds) - 1)]
    if kind == "gate":
        return [g for g in t["gates"] if g.startswith(current)], NO_FILES
    if isinstance(kind, list):
        return [c for c in kind if c.startswith(current)], NO_FILES
    return name_candidates(current, _gate_names(flags), given=positionals), NO_FILES


def name_candidates(current: str, names: list[str], *, given: list[str] | tuple[str, ...] = ()) -> list[str]:
    """CanaryGate names, or ``TYPE/NAME`` once the word has a CanaryGate type and a slash (cg/<TAB>);
    names already on the command line are not offered again."""
    kind, slash, partial = current.partition("/")
    taken = {g.partition("/")[2] or g for g in given}
    if slash:
        if kind.lower() not in table()["types"]:
            return []
        return [f"{kind}/{n}" for n in names if n.startswith(partial) and n not in taken]
    return [n for n in names if n.startswith(current) and n not in taken]


def selector_candidates(current: str, labels: list[dict[str, str]]) -> list[str]:
    """``key=value`` pairs of the CanaryGates' labels; after a comma, the pairs not given yet."""
    head, comma, last = current.rpartition(",")
    given = set(head.split(",")) if comma else set()
    pairs = sorted({f"{k}={v}" for item in labels for k, v in item.items()} - given)
    return [head + comma + p for p in pairs if p.startswith(last)]


def _flag_values(flag: str, current: str, flags: dict[str, str], spec: dict[str, Any]) -> list[str]:
    if flag in spec["choices"]:
        pool: list[str] = spec["choices"][flag]
    elif flag in KUBECONFIG_SECTIONS:
        pool = _kubeconfig_names(flags, KUBECONFIG_SECTIONS[flag])
    elif flag in NAMESPACE_FLAGS:
        pool = _names(_list(flags, "/api/v1/namespaces"))
    elif flag in GATE_NAME_FLAGS:
        pool = _gate_names(flags)
    elif flag in SELECTOR_FLAGS:
        return selector_candidates(current, [(i.get("metadata") or {}).get("labels") or {} for i in _gates(flags)])
    else:
        pool = []
    return [p for p in pool if p.startswith(current)]


def _kubeconfig_names(flags: dict[str, str], section: str) -> list[str]:
    from canarygate.kube import kubeconfig

    try:
        return kubeconfig.names(flags.get("--kubeconfig") or None, section)
    except Exception:  # noqa: BLE001 - completion never fails loudly
        return []


def _api(flags: dict[str, str]):
    """(light transport, namespace) for the flags given so far; raises when the light transport cannot serve."""
    from canarygate.kube import kubeconfig, light

    resolved = kubeconfig.resolve(
        kubeconfig=flags.get("--kubeconfig") or None,
        context=flags.get("--context") or flags.get("-c") or None,
        cluster=flags.get("--cluster") or None,
        user=flags.get("--user") or None,
        namespace=flags.get("--namespace") or flags.get("-n") or flags.get("--ns") or None,
    )
    return light.LightTransport(light.endpoint(resolved)), resolved.namespace


def _list(flags: dict[str, str], path: str, *, namespaced: bool = False) -> list[dict[str, Any]]:
    try:
        api, namespace = _api(flags)
        if namespaced and "--all-namespaces" not in flags and "-A" not in flags:
            head, _, tail = path.rpartition("/")
            path = f"{head}/namespaces/{namespace}/{tail}"
        data = api.get(path, timeout=3.0)
    except Exception:  # noqa: BLE001 - completion never fails loudly
        return []
    return list(data.get("items") or ())


def _names(items: list[dict[str, Any]]) -> list[str]:
    return sorted((i.get("metadata") or {}).get("name", "") for i in items)


def _gates(flags: dict[str, str]) -> list[dict[str, Any]]:
    return _list(flags, "/apis/piggysec.com/v1alpha1/canarygates", namespaced=True)


def _gate_names(flags: dict[str, str]) -> list[str]:
    return _names(_gates(flags))


def run(args: list[str]) -> int:
    values, directive = candidates(list(args) if args else [""])
    out = sys.stdout
    for value in values:
        out.write(value + "\n")
    out.write(f":{directive}\n")
    out.flush()
    return 0


@click.command(
    "__complete",
    hidden=True,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def complete_command(args: tuple[str, ...]) -> None:
    """Cobra's completion protocol (used by the completion scripts and kubectl_complete-gate)."""
    run(list(args))


# -- the table, derived from the click commands ---------------------------------------------------


def build_table() -> dict[str, Any]:
    """The command line as the click commands declare it (imports every command module: slow, so
    run at build and test time, not at completion time)."""
    from canarygate.gates import GATES
    from kubectl_gate import cli, targets

    root_ctx = click.Context(cli.cli, info_name="kubectl-gate")
    commands = {}
    for name in cli.COMMANDS:
        command = cli.cli.get_command(root_ctx, name)
        assert command is not None, name  # NB: every COMMANDS entry names a command that loads
        commands[name] = _command_spec(command, GATES)
    return {
        "gates": list(GATES),
        "types": sorted(targets.TYPES),
        "help": list(cli.cli.context_settings["help_option_names"]),
        "aliases": dict(cli.ALIASES),
        "root": _command_spec(cli.cli, GATES),
        "commands": commands,
    }


def _command_spec(command: click.Command, gates: tuple[str, ...]) -> dict[str, Any]:
    from kubectl_gate.options import GateName, OutputFormat

    spec: dict[str, Any] = {"args": [], "flags": [], "takes_value": [], "choices": {}}
    for param in command.params:
        if isinstance(param, click.Argument):
            if isinstance(param.type, GateName):
                spec["args"].append("gate")
            elif isinstance(param.type, click.Choice):
                spec["args"].append(list(param.type.choices))
            elif param.nargs == -1 and (param.metavar or "").endswith("..."):
                spec["args"].append("names")
            else:
                spec["args"].append("name")
            continue
        if not isinstance(param, click.Option):
            continue
        names = [*param.opts, *param.secondary_opts]
        if not param.hidden:
            spec["flags"].extend(sorted(names, key=lambda n: (not n.startswith("--"), names.index(n))))
        if param.is_flag or param.count:
            continue
        spec["takes_value"].extend(param.opts)
        values = _static_values(param, gates, GateName, OutputFormat)
        if values:
            spec["choices"].update({n: values for n in param.opts})
    return spec


def _static_values(param: click.Option, gates: tuple[str, ...], gate_type: type, output_type: type) -> list[str]:
    """A value list the option declares: its choices, its -o formats, the gates, or a metavar's
    ``a|b|gate=GATE`` alternatives (GATE standing for each gate)."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return [str(c) for c in kind.choices]
    if isinstance(kind, output_type):
        return list(kind.choices)  # type: ignore[attr-defined]  # NB: output_type is OutputFormat
    if isinstance(kind, gate_type):
        return list(gates)
    if param.metavar and "|" in param.metavar:
        values: list[str] = []
        for alternative in param.metavar.split("|"):
            values.extend([alternative.replace("GATE", g) for g in gates] if "GATE" in alternative else [alternative])
        return values
    return []


def write_table(path: Path = TABLE) -> None:
    path.write_text(json.dumps(build_table(), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_table()
    print(f"wrote {TABLE}")
