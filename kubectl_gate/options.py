"""Flags shared by the commands, declared once.

kubectl's connection flags are accepted before or after the command name (``kubectl gate -n x
list`` and ``kubectl gate list -n x``); their callbacks write into the :class:`GateContext`.

``-c`` is the Go canary-gate CLI's flag for the kubeconfig *context*, so here ``-c`` is an alias
of ``--context``; ``--cluster`` keeps kubectl's meaning (a cluster entry of the kubeconfig). When
a value only makes sense as the other one, the error says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from kubectl_gate.context import GateContext

OUTPUTS = ("json", "yaml", "wide", "name")


def _setter(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A click callback writing a given value into ``attr`` of the GateContext (unset values not)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value is False or value == ():
            return
        setattr(ctx.ensure_object(GateContext), attr, value)

    return callback


#: One connection flag: click's declarations (the last one naming the GateContext attribute it
#: fills, when the long name does not), and the rest of its click.option arguments.
Flag = tuple[tuple[str, ...], dict[str, Any]]

#: kubectl's kubeconfig selection (and -n, --request-timeout, --no-color), with kubectl's meaning.
SELECTION_FLAGS: tuple[Flag, ...] = (
    (
        ("--kubeconfig",),
        {
            "metavar": "PATH",
            "help": "Path to the kubeconfig file (default: KUBECONFIG, which may list several files, "
            "then ~/.kube/config).",
        },
    ),
    (
        ("--context", "-c", "context"),
        {"metavar": "NAME", "help": "The kubeconfig context to use (-c as in the Go canary-gate CLI)."},
    ),
    (
        ("--cluster",),
        {
            "metavar": "NAME",
            "help": "The kubeconfig cluster to use (kubectl's meaning; for a context use -c/--context).",
        },
    ),
    (("--user",), {"metavar": "NAME", "help": "The kubeconfig user to use."}),
    (
        ("--namespace", "-n", "--ns", "namespace"),
        {"metavar": "NS", "help": "Namespace (default: the context's namespace)."},
    ),
    (
        ("--request-timeout",),
        {"metavar": "DURATION", "help": "How long to wait for one API request (e.g. 5s, 1m; 0 = no limit)."},
    ),
    (
        ("--no-color",),
        {"is_flag": True, "help": "No colour (also off with NO_COLOR, TERM=dumb, or when not on a terminal)."},
    ),
)

#: kubectl's genericclioptions beyond the kubeconfig selection, with kubectl's meaning.
GLOBAL_FLAGS: tuple[Flag, ...] = (
    (("--server", "-s"), {"metavar": "URL", "help": "The address and port of the Kubernetes API server."}),
    (("--token",), {"metavar": "TOKEN", "help": "Bearer token for authentication to the API server."}),
    (
        ("--as", "impersonate"),
        {
            "metavar": "USER",
            "help": "Username to impersonate for the operation (the identity gate changes are recorded as).",
        },
    ),
    (
        ("--as-group", "impersonate_groups"),
        {
            "metavar": "GROUP",
            "multiple": True,
            "help": "Group to impersonate for the operation; repeat for several groups.",
        },
    ),
    (("--as-uid", "impersonate_uid"), {"metavar": "UID", "help": "UID to impersonate for the operation."}),
    (
        ("--insecure-skip-tls-verify",),
        {
            "is_flag": True,
            "help": "Do not check the server's certificate (insecure: anyone on the path can act as it).",
        },
    ),
    (
        ("--certificate-authority",),
        {"metavar": "PATH", "help": "Path to a cert file for the certificate authority."},
    ),
    (("--client-certificate",), {"metavar": "PATH", "help": "Path to a client certificate file for TLS."}),
    (("--client-key",), {"metavar": "PATH", "help": "Path to a client key file for TLS."}),
    (
        ("--tls-server-name",),
        {"metavar": "NAME", "help": "Server name to check the server certificate against (and send as SNI)."},
    ),
    (
        ("-v", "--v", "verbosity"),
        {
            "type": click.IntRange(0),
            "metavar": "LEVEL",
            "help": "Log level: 6 and above print each API request, its status and duration on stderr.",
        },
    ),
)

#: What an offline command says of the selection flags it shows (the others it accepts hidden).
_OFFLINE_HELP = "Accepted as kubectl does; this command reads no cluster."
_OFFLINE_SHOWN = ("--kubeconfig", "--context")
_OFFLINE_HIDDEN = ("--cluster", "--user", "--request-timeout")


def context_flag(decls: tuple[str, ...], attrs: dict[str, Any], **changes: Any) -> Callable[[Callable], Callable]:
    """The click.option of a connection flag: it fills the GateContext attribute of its own name
    and is not passed to the command."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        _setter(str(param.name))(ctx, param, value)

    return click.option(*decls, expose_value=False, callback=callback, **{**attrs, **changes})


def _apply(f: Callable, options: list[Callable[[Callable], Callable]]) -> Callable:
    """``f`` with ``options`` in their order in --help (click applies decorators bottom-up)."""
    for option in reversed(options):
        f = option(f)
    return f


def kube_options(f: Callable) -> Callable:
    """kubectl's connection flags; they fill the GateContext and are not passed to the command."""
    return _apply(f, [context_flag(*flag) for flag in (*SELECTION_FLAGS, *GLOBAL_FLAGS)])


def offline_options(f: Callable) -> Callable:
    """What a command that reads no cluster accepts of kubectl's flags, so that a shell alias or a
    plugin runner adding them (``--kubeconfig``, ``--context``...) does not break it; they are ignored."""
    selection = {decls[0]: (decls, attrs) for decls, attrs in SELECTION_FLAGS}
    shown = [context_flag(*selection[name], help=_OFFLINE_HELP) for name in _OFFLINE_SHOWN]
    hidden = [context_flag(*selection[name], help=None, hidden=True) for name in _OFFLINE_HIDDEN]
    return _apply(f, [*shown, *hidden, *(context_flag(*flag, hidden=True) for flag in GLOBAL_FLAGS)])


ALL_NAMESPACES: Flag = (("--all-namespaces", "-A"), {"is_flag": True, "help": "Across all namespaces."})


def all_namespaces_option(f: Callable) -> Callable:
    return context_flag(*ALL_NAMESPACES)(f)


def selector_option(example: str = "") -> Callable[[Callable], Callable]:
    """``-l/--selector SELECTOR``, kubectl's label selector over the CanaryGates (``example`` in its help)."""
    return click.option(
        "--selector",
        "-l",
        metavar="SELECTOR",
        default=None,
        help="Only the CanaryGates whose labels match (kubectl's label selector"
        + (f", e.g. {example})." if example else ")."),
    )


class OutputFormat(click.ParamType):
    """One of the command's formats, or (``templates=True``) kubectl's ``jsonpath=...`` and ``custom-columns=...``."""

    name = "FORMAT"

    def __init__(self, choices: tuple[str, ...], templates: bool):
        self.choices, self.templates = choices, templates

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text in self.choices:
            return text
        if self.templates and text.startswith(("jsonpath=", "custom-columns=")):
            return text
        shown = [*self.choices, *(("jsonpath=TEMPLATE", "custom-columns=SPEC") if self.templates else ())]
        self.fail(f"{text!r} is not one of {', '.join(shown)}", param, ctx)


def output_option(
    *choices: str,
    help: str = "Output format.",  # noqa: A002 - click's own keyword
    templates: bool = False,
) -> Callable[[Callable], Callable]:
    """``-o FORMAT``; with ``templates``, also kubectl's jsonpath= and custom-columns= (on the -o json data)."""
    text = help
    if templates:
        text += " jsonpath=TEMPLATE and custom-columns=HEADER:PATH,... apply to the -o json data, as in kubectl."
    return click.option("--output", "-o", type=OutputFormat(choices or OUTPUTS, templates), default=None, help=text)


def name_options(f: Callable) -> Callable:
    """``-d/--deployment NAME``: the Go canary-gate CLI's way to name the CanaryGate."""
    return click.option(
        "--deployment",
        "-d",
        "deployment",
        metavar="NAME",
        default=None,
        help="The CanaryGate name (alias kept from the Go canary-gate CLI).",
    )(f)


def pick_name(name: str | None, deployment: str | None) -> str:
    """The CanaryGate name from the argument or ``-d``; a usage error when neither or both differ."""
    if name and deployment and name != deployment:
        raise click.UsageError(f"two names given: {name!r} and -d {deployment!r}; give one")
    chosen = name or deployment
    if not chosen:
        raise click.UsageError("missing the CanaryGate NAME (or -d NAME)")
    from kubectl_gate.targets import parse_ref

    return parse_ref(chosen)


class GateName(click.ParamType):
    """One of the seven gates; an unknown name is a usage error listing them."""

    name = "GATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from canarygate import gates

        try:
            return gates.check_gate(str(value).strip().lower())
        except ValueError as e:
            self.fail(str(e), param, ctx)


GATE = GateName()


class Duration(click.ParamType):
    """A duration as kubectl writes them: 90, 90s, 5m, 1h30m, 500ms; 0 means no limit."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from canarygate import durations

        if isinstance(value, (int, float)):
            return float(value)
        try:
            return durations.parse_flag(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a duration: use e.g. 30s, 10m or 1h30m", param, ctx)


DURATION = Duration()
