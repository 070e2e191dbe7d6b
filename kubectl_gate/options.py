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
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value is False or value == ():
            return
        setattr(ctx.ensure_object(GateContext), attr, value)

    return callback


def _global_options() -> list[Callable]:
    """kubectl's genericclioptions beyond the kubeconfig selection, with kubectl's meaning."""
    return [
        click.option(
            "--server",
            "-s",
            metavar="URL",
            expose_value=False,
            callback=_setter("server"),
            help="The address and port of the Kubernetes API server.",
        ),
        click.option(
            "--token",
            metavar="TOKEN",
            expose_value=False,
            callback=_setter("token"),
            help="Bearer token for authentication to the API server.",
        ),
        click.option(
            "--as",
            "impersonate",
            metavar="USER",
            expose_value=False,
            callback=_setter("impersonate"),
            help="Username to impersonate for the operation (the identity gate changes are recorded as).",
        ),
        click.option(
            "--as-group",
            "impersonate_groups",
            metavar="GROUP",
            multiple=True,
            expose_value=False,
            callback=_setter("impersonate_groups"),
            help="Group to impersonate for the operation; repeat for several groups.",
        ),
        click.option(
            "--as-uid",
            "impersonate_uid",
            metavar="UID",
            expose_value=False,
            callback=_setter("impersonate_uid"),
            help="UID to impersonate for the operation.",
        ),
        click.option(
            "--insecure-skip-tls-verify",
            is_flag=True,
            expose_value=False,
            callback=_setter("insecure_skip_tls_verify"),
            help="Do not check the server's certificate (insecure: anyone on the path can act as it).",
        ),
        click.option(
            "--certificate-authority",
            metavar="PATH",
            expose_value=False,
            callback=_setter("certificate_authority"),
            help="Path to a cert file for the certificate authority.",
        ),
        click.option(
            "--client-certificate",
            metavar="PATH",
            expose_value=False,
            callback=_setter("client_certificate"),
            help="Path to a client certificate file for TLS.",
        ),
        click.option(
            "--client-key",
            metavar="PATH",
            expose_value=False,
            callback=_setter("client_key"),
            help="Path to a client key file for TLS.",
        ),
        click.option(
            "--tls-server-name",
            metavar="NAME",
            expose_value=False,
            callback=_setter("tls_server_name"),
            help="Server name to check the server certificate against (and send as SNI).",
        ),
        click.option(
            "-v",
            "--v",
            "verbosity",
            type=click.IntRange(0),
            metavar="LEVEL",
            expose_value=False,
            callback=_setter("verbosity"),
            help="Log level: 6 and above print each API request, its status and duration on stderr.",
        ),
    ]


def offline_options(f: Callable) -> Callable:
    """What a command that reads no cluster accepts of kubectl's flags, so that a shell alias or a
    plugin runner adding them (``--kubeconfig``, ``--context``...) does not break it; they are ignored."""
    opts = [
        click.option(
            "--kubeconfig",
            metavar="PATH",
            expose_value=False,
            callback=_setter("kubeconfig"),
            help="Accepted as kubectl does; this command reads no cluster.",
        ),
        click.option(
            "--context",
            "-c",
            "context",
            metavar="NAME",
            expose_value=False,
            callback=_setter("context"),
            help="Accepted as kubectl does; this command reads no cluster.",
        ),
        click.option("--cluster", metavar="NAME", expose_value=False, callback=_setter("cluster"), hidden=True),
        click.option("--user", metavar="NAME", expose_value=False, callback=_setter("user"), hidden=True),
        click.option(
            "--request-timeout",
            metavar="DURATION",
            expose_value=False,
            hidden=True,
            callback=_setter("request_timeout"),
        ),
        *[_hidden(o) for o in _global_options()],
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _hidden(decorator: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        f = decorator(f)
        f.__click_params__[-1].hidden = True  # type: ignore[attr-defined]  # NB: where click.option keeps it
        return f

    return apply


def kube_options(f: Callable) -> Callable:
    """kubectl's connection flags; they fill the GateContext and are not passed to the command."""
    opts = [
        click.option(
            "--kubeconfig",
            metavar="PATH",
            expose_value=False,
            callback=_setter("kubeconfig"),
            help="Path to the kubeconfig file (default: KUBECONFIG, which may list several files, "
            "then ~/.kube/config).",
        ),
        click.option(
            "--context",
            "-c",
            "context",
            metavar="NAME",
            expose_value=False,
            callback=_setter("context"),
            help="The kubeconfig context to use (-c as in the Go canary-gate CLI).",
        ),
        click.option(
            "--cluster",
            metavar="NAME",
            expose_value=False,
            callback=_setter("cluster"),
            help="The kubeconfig cluster to use (kubectl's meaning; for a context use -c/--context).",
        ),
        click.option(
            "--user", metavar="NAME", expose_value=False, callback=_setter("user"), help="The kubeconfig user to use."
        ),
        click.option(
            "--namespace",
            "-n",
            "--ns",
            "namespace",
            metavar="NS",
            expose_value=False,
            callback=_setter("namespace"),
            help="Namespace (default: the context's namespace).",
        ),
        click.option(
            "--request-timeout",
            metavar="DURATION",
            expose_value=False,
            callback=_setter("request_timeout"),
            help="How long to wait for one API request (e.g. 5s, 1m; 0 = no limit).",
        ),
        click.option(
            "--no-color",
            is_flag=True,
            expose_value=False,
            callback=_setter("no_color"),
            help="No colour (also off with NO_COLOR, TERM=dumb, or when not on a terminal).",
        ),
        *_global_options(),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def all_namespaces_option(f: Callable) -> Callable:
    return click.option(
        "--all-namespaces",
        "-A",
        is_flag=True,
        expose_value=False,
        callback=_setter("all_namespaces"),
        help="Across all namespaces.",
    )(f)


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
