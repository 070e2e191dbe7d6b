"""Shell completion in Cobra's ``__complete`` protocol, which kubectl speaks to plugins.

``kubectl gate <TAB>`` makes kubectl run ``kubectl_complete-gate ARGS... WORD``; the scripts from
``kubectl gate completion`` run ``kubectl-gate __complete ARGS... WORD``. Either prints one
candidate per line, then ``:<directive>`` (4: no file completion; 0: files allowed).

This module knows the command line statically (no command module, no ``kubernetes`` import) and
asks the API only for names, with :mod:`canarygate.kube.kubeconfig` and the light transport
(:mod:`canarygate.kube.light`, standard library only).
"""

from __future__ import annotations

import sys

import click

DEFAULT = 0
NO_SPACE = 2
NO_FILES = 4

GATES = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
)
GLOBAL_FLAGS = (
    "--server",
    "-s",
    "--token",
    "--as",
    "--as-group",
    "--as-uid",
    "--insecure-skip-tls-verify",
    "--certificate-authority",
    "--client-certificate",
    "--client-key",
    "--tls-server-name",
    "-v",
)
KUBE_FLAGS = (
    "--kubeconfig",
    "--context",
    "-c",
    "--cluster",
    "--user",
    "--namespace",
    "-n",
    "--request-timeout",
    "--no-color",
    *GLOBAL_FLAGS,
)
#: What kubectl accepts before NAME's slash (the CRD's names; see kubectl_gate.targets.TYPES).
TYPE_PREFIXES = ("canarygate", "canarygates", "cg", "cgate", "canarygate.piggysec.com", "canarygates.piggysec.com")
SELECT = ("--selector", "-l", "--all", "--all-namespaces", "-A")
VALUE_FLAGS = {
    "--server",
    "-s",
    "--token",
    "--as",
    "--as-group",
    "--as-uid",
    "--certificate-authority",
    "--client-certificate",
    "--client-key",
    "--tls-server-name",
    "-v",
    "--v",
    "--selector",
    "-l",
    "--kubeconfig",
    "--context",
    "-c",
    "--cluster",
    "--user",
    "--namespace",
    "-n",
    "--ns",
    "--request-timeout",
    "--output",
    "-o",
    "--deployment",
    "-d",
    "--reason",
    "-r",
    "--for",
    "--timeout",
    "--filename",
    "-f",
    "--endpoint",
    "--image",
    "--sidecar-namespace",
    "--sidecar-service",
    "--flagger-namespace",
    "--dry-run",
}
#: command -> (positional kinds, own flags, -o choices)
COMMANDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "list": (
        (),
        ("--all-namespaces", "-A", "--no-headers", "--selector", "-l", "--all", "--watch", "-w"),
        ("json", "yaml", "wide", "name"),
    ),
    "show": (("name",), ("--watch", "-w", "--exit-code", "--deployment", "-d"), ("json", "yaml", "name")),
    "open": (("gate", "names"), ("--reason", "--sticky", "--yes", "--deployment", "-d", *SELECT), ()),
    "close": (("gate", "names"), ("--reason", "--sticky", "--yes", "--deployment", "-d", *SELECT), ()),
    "pause": (("names",), ("--reason", "--sticky", "--deployment", "-d", *SELECT), ()),
    "resume": (("name",), ("--reason", "--deployment", "-d"), ()),
    "promote": (("names",), ("--full", "--reason", "--deployment", "-d", *SELECT), ()),
    "abort": (("names",), ("--reason", "--deployment", "-d", *SELECT), ()),
    "wait": (("name",), ("--for", "--timeout", "--fresh", "--quiet", "--deployment", "-d"), ()),
    "apply": ((), ("--filename", "-f", "--dry-run", "--endpoint"), ("json", "yaml", "name")),
    "render": ((), ("--filename", "-f", "--endpoint"), ("yaml", "json")),
    "explain": (("gate",), (), ()),
    "install": ((), ("--image", "--flagger-namespace", "--crd-only", "--no-crd"), ()),
    "version": ((), ("--client", "--sidecar-namespace", "--sidecar-service"), ("json", "yaml")),
    "completion": (("shell",), (), ()),
}
SHELLS = ("bash", "zsh", "fish", "powershell")
ALIASES = {"status": "show", "get": "show", "ls": "list"}
NO_KUBE_FLAGS = {"explain", "install", "completion", "render"}


def candidates(args: list[str]) -> tuple[list[str], int]:
    """(candidates, directive) for the command line ``args`` whose last item is the word being completed."""
    words, current = args[:-1], (args[-1] if args else "")
    command = None
    positionals: list[str] = []
    flags: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("-") and word != "-":
            name, eq, value = word.partition("=")
            if name in VALUE_FLAGS and not eq:
                flags[name] = words[i + 1] if i + 1 < len(words) else ""
                i += 2
                continue
            flags[name] = value
        elif command is None:
            command = ALIASES.get(word, word)
        else:
            positionals.append(word)
        i += 1
    spec = COMMANDS.get(command or "", ((), (), ()))
    previous = words[-1] if words else ""
    if previous in VALUE_FLAGS and not (len(words) >= 2 and words[-2] in VALUE_FLAGS and "=" not in previous):
        return _flag_values(previous, current, flags, spec, command), NO_FILES
    if current.startswith("-") and "=" in current:
        name, _, value = current.partition("=")
        values, directive = _flag_values(name, value, flags, spec, command), NO_FILES
        return [f"{name}={v}" for v in values], directive
    if current.startswith("-"):
        own = spec[1] + (("--output", "-o") if spec[2] else ())
        pool = own + (KUBE_FLAGS if command not in NO_KUBE_FLAGS else ()) + ("--help",)
        if command is None:
            pool = KUBE_FLAGS + ("--all-namespaces", "-A", "--help")
        return [f for f in pool if f.startswith(current)], NO_FILES
    if command is None:
        return [c for c in (*COMMANDS, "status") if c.startswith(current)], NO_FILES
    kinds = spec[0]
    index = len(positionals)
    if command == "show" and positionals and (positionals[0] == "all" or positionals[0] in GATES):
        index -= 1
    if index >= len(kinds) and not (kinds and kinds[-1] == "names"):
        return [], NO_FILES
    kind = kinds[min(index, len(kinds) - 1)]
    if kind == "gate":
        return [g for g in GATES if g.startswith(current)], NO_FILES
    if kind == "shell":
        return [s for s in SHELLS if s.startswith(current)], NO_FILES
    return name_candidates(current, _gate_names(flags), given=positionals), NO_FILES


def name_candidates(current: str, names: list[str], *, given: list[str] = ()) -> list[str]:
    """CanaryGate names, or ``TYPE/NAME`` once the word has a CanaryGate type and a slash (cg/<TAB>);
    names already on the command line are not offered again."""
    kind, slash, partial = current.partition("/")
    taken = {g.partition("/")[2] or g for g in given}
    if slash:
        if kind.lower() not in TYPE_PREFIXES and kind.lower() not in {
            f"{t}.v1alpha1.piggysec.com" for t in ("canarygate", "canarygates", "cg", "cgate")
        }:
            return []
        return [f"{kind}/{n}" for n in names if n.startswith(partial) and n not in taken]
    return [n for n in names if n.startswith(current) and n not in taken]


def _flag_values(flag: str, current: str, flags: dict[str, str], spec, command) -> list[str]:
    if flag in ("--output", "-o"):
        pool: tuple[str, ...] | list[str] = spec[2]
    elif flag == "--for":
        pool = ("promoted", "failed", "waiting", *(f"gate={g}" for g in GATES))
    elif flag == "--dry-run":
        pool = ("none", "client", "server")
    elif flag in ("--context", "-c"):
        pool = _kubeconfig_names(flags, "contexts")
    elif flag == "--cluster":
        pool = _kubeconfig_names(flags, "clusters")
    elif flag == "--user":
        pool = _kubeconfig_names(flags, "users")
    elif flag in ("--namespace", "-n", "--ns", "--sidecar-namespace", "--flagger-namespace"):
        pool = _list_names(flags, "/api/v1/namespaces")
    elif flag in ("--deployment", "-d"):
        pool = _gate_names(flags)
    else:
        pool = ()
    return [p for p in pool if p.startswith(current)]


def _kubeconfig_names(flags: dict[str, str], section: str) -> list[str]:
    from canarygate.kube import kubeconfig

    try:
        return kubeconfig.names(flags.get("--kubeconfig") or None, section)
    except Exception:  # completion never fails loudly
        return []


def _target(flags: dict[str, str]):
    """(light API client, namespace) for the flags given so far; raises when the light transport cannot serve."""
    from canarygate.kube import kubeconfig, light

    resolved = kubeconfig.resolve(
        kubeconfig=flags.get("--kubeconfig") or None,
        context=flags.get("--context") or flags.get("-c") or None,
        cluster=flags.get("--cluster") or None,
        user=flags.get("--user") or None,
        namespace=flags.get("--namespace") or flags.get("-n") or flags.get("--ns") or None,
    )
    return light.LightApiClient(light.target(resolved)), resolved.namespace


def _list_names(flags: dict[str, str], path: str) -> list[str]:
    try:
        api, _ = _target(flags)
        data = api.get(path, timeout=3.0)
    except Exception:
        return []
    return sorted((i.get("metadata") or {}).get("name", "") for i in data.get("items") or ())


def _gate_names(flags: dict[str, str]) -> list[str]:
    try:
        api, namespace = _target(flags)
        path = "/apis/piggysec.com/v1alpha1"
        if "--all-namespaces" not in flags and "-A" not in flags:
            path += f"/namespaces/{namespace}"
        data = api.get(path + "/canarygates", timeout=3.0)
    except Exception:
        return []
    return sorted((i.get("metadata") or {}).get("name", "") for i in data.get("items") or ())


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
