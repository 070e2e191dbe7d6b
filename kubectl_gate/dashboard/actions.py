"""A dashboard button as the ``kubectl gate`` command it runs, and running that very command.

The request names a verb, a CanaryGate, a reason and the verb's flags; :func:`argv` turns it into
the command's arguments, and :func:`run` invokes the CLI's own root command on them in-process
(the same option parsing, safety refusals and messages as in a terminal: closing ``rollout`` during a
rollout is refused until ``--yes`` is ticked, exactly as the CLI refuses it), with a GateContext
that shares the dashboard's connection (credentials, transport) and captures stdout and stderr.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
import shlex
from collections.abc import Mapping
from typing import Any

import click

from canarygate import gates as gate_names
from kubectl_gate.context import GateContext

#: verb -> the boolean flags its button may add.
VERBS: dict[str, tuple[str, ...]] = {
    "open": ("sticky",),
    "close": ("sticky", "yes"),
    "promote": ("full",),
    "pause": ("sticky",),
    "resume": (),
    "abort": (),
}
NEEDS_GATE = frozenset({"open", "close"})
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
MAX_REASON = 1024


class BadAction(ValueError):
    """The request is not one of the dashboard's buttons (HTTP 400)."""


def argv(request: Mapping[str, Any], *, require_reason: bool = True) -> list[str]:
    """The arguments after ``kubectl gate`` for a button's request; BadAction if it is not one.

    A reason is required to run (every button asks for one), not to show the command."""
    verb = request.get("verb")
    if verb not in VERBS:
        raise BadAction(f"unknown action {verb!r}: one of {', '.join(VERBS)}")
    name, namespace = request.get("name"), request.get("namespace")
    for what, value in (("name", name), ("namespace", namespace)):
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            raise BadAction(f"invalid CanaryGate {what} {value!r}")
    reason = request.get("reason", "")
    if not isinstance(reason, str) or (require_reason and not reason.strip()):
        raise BadAction("say why: a reason is required (it is recorded in the annotation and the Event)")
    if len(reason) > MAX_REASON or any(ord(c) < 32 and c not in "\t" for c in reason):
        raise BadAction(f"the reason must be one line of at most {MAX_REASON} characters")
    args = [verb]
    if verb in NEEDS_GATE:
        gate = request.get("gate")
        if gate not in gate_names.GATES:
            raise BadAction(f"invalid gate {gate!r}: one of {', '.join(gate_names.GATES)}")
        args.append(gate)
    args += [name, "-n", namespace] + ([f"--reason={reason.strip()}"] if reason.strip() else [])
    for flag in VERBS[verb]:
        value = request.get(flag, False)
        if not isinstance(value, bool):
            raise BadAction(f"{flag} must be true or false")
        if value:
            args.append(f"--{flag}")
    unknown = set(request) - {"verb", "name", "namespace", "reason", "gate", *VERBS[verb]}
    if unknown:
        raise BadAction(f"unknown field(s) for {verb}: {', '.join(sorted(unknown))}")
    return args


@functools.cache
def describe() -> dict[str, dict[str, Any]]:
    """Each verb's one-line help and its flags' help, read from the commands themselves."""
    from kubectl_gate import cli

    described = {}
    for verb, flags in VERBS.items():
        command = cli.cli.get_command(click.Context(cli.cli), verb)
        assert command is not None, verb
        helps = {p.name: p.help or "" for p in command.params if isinstance(p, click.Option)}
        described[verb] = {"help": cli.COMMANDS[verb][2], "flags": {f: helps[f] for f in flags}}
    return described


#: GateContext field -> the kubectl flag that sets it (the connection the dashboard was started with).
CONNECTION_FLAGS = (
    ("kubeconfig", "--kubeconfig"),
    ("context", "--context"),
    ("cluster", "--cluster"),
    ("user", "--user"),
    ("server", "--server"),
    ("impersonate", "--as"),
    ("impersonate_uid", "--as-uid"),
    ("certificate_authority", "--certificate-authority"),
    ("client_certificate", "--client-certificate"),
    ("client_key", "--client-key"),
    ("tls_server_name", "--tls-server-name"),
    ("request_timeout", "--request-timeout"),
)


def connection_args(gctx: GateContext) -> list[str]:
    """The dashboard's own connection flags, as they would be typed (a --token is not shown)."""
    args = []
    for attr, flag in CONNECTION_FLAGS:
        value = getattr(gctx, attr)
        if value:
            args += [flag, str(value)]
    for group in gctx.impersonate_groups:
        args += ["--as-group", group]
    if gctx.insecure_skip_tls_verify:
        args.append("--insecure-skip-tls-verify")
    if gctx.token:
        args.append("--token=…")
    return args


def command_line(gctx: GateContext, args: list[str]) -> str:
    """What to type in a terminal for the same effect."""
    return shlex.join(["kubectl", "gate", *args, *connection_args(gctx)])


def session(base: GateContext) -> GateContext:
    """A GateContext for one command: the dashboard's settings and connection (its namespace set by
    the command's ``-n``), its own output buffers, no ``-A``."""
    shared = base.connection

    def connector(settings: Any) -> Any:
        return dataclasses.replace(shared, namespace=settings.namespace or shared.namespace)

    return dataclasses.replace(
        base,
        all_namespaces=False,
        namespace=None,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        connector=connector,
        _connection=None,
        _username=base._username,
        _target_namespace=None,
    )


def run(base: GateContext, args: list[str]) -> dict[str, Any]:
    """Run ``kubectl gate ARGS`` in-process on a session of ``base``; its exit code and output, as
    the terminal shows them (errors as ``error: ...``)."""
    from kubectl_gate import cli

    gctx = session(base)
    out, err = io.StringIO(), io.StringIO()
    gctx.stdout, gctx.stderr = out, err
    code = 0
    try:
        result = cli.cli.main(args=list(args), prog_name="kubectl gate", standalone_mode=False, obj=gctx)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.ClickException as e:
        gctx.err(f"error: {e.format_message()}")
        code = e.exit_code
    except click.Abort:
        gctx.err("Aborted.")
        code = 1
    return {"exitCode": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
