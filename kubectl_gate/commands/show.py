"""``kubectl gate show NAME`` (alias ``status``): every gate, the Canary, the webhooks; ``--watch``."""

from __future__ import annotations

import click

from canarygate import gates
from kubectl_gate import exitcodes, lookup, printing
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, name_options, output_option, pick_name
from kubectl_gate.views import GateView

CLEAR = "\x1b[H\x1b[2J"


def parse_show_args(args: tuple[str, ...], deployment: str | None) -> tuple[str, str | None]:
    """NAME, or the Go CLI's ``status all|GATE -d NAME`` (also ``status GATE NAME``)."""
    gate_filter = None
    words = list(args)
    if words and (words[0] == "all" or words[0] in gates.GATES) and (deployment or len(words) == 2):
        first = words.pop(0)
        gate_filter = None if first == "all" else first
    if len(words) > 1:
        raise click.UsageError(f"too many arguments: {' '.join(words)}")
    return pick_name(words[0] if words else None, deployment), gate_filter


def render(gctx: GateContext, view: GateView, output: str | None, gate_filter: str | None) -> str:
    from kubectl_gate import templates

    if output in ("json", "yaml") or templates.is_template(output):
        data = printing.status_object(view)
        if gate_filter:
            data["gates"] = [g for g in data["gates"] if g["gate"] == gate_filter]
        if templates.is_template(output):
            return templates.render(output, data)
        return printing.dump(data, output)
    if output == "name":
        return printing.names([view])
    style = printing.Style(color=gctx.color, unicode=gctx.unicode, icons=gctx.tty)
    text = printing.show_text(view, now=gctx.now(), style=style)
    if gate_filter:
        keep = [
            line
            for line in text.splitlines()
            if not line.split() or line.split()[0] in ("GATE", gate_filter) or line.split()[0] not in gates.GATES
        ]
        text = "\n".join(keep)
    return text


def status_code(view: GateView) -> int:
    """3 when the rollout failed, 4 when it waits at a closed gate, else 0 (``--exit-code``)."""
    if view.canary is not None and view.canary.phase == "Failed":
        return exitcodes.FAILED
    if view.holding:
        return exitcodes.WAITING
    return exitcodes.OK


@click.command("show")
@click.argument("args", nargs=-1, metavar="NAME")
@name_options
@output_option("json", "yaml", "name", templates=True)
@click.option("--watch", "-w", is_flag=True, help="Redraw on every change (with -o json: one object per line).")
@click.option("--exit-code", is_flag=True, help="Exit 3 if the rollout failed, 4 if it waits at a closed gate.")
@kube_options
@pass_gate_ctx
def show_command(
    gctx: GateContext, args: tuple[str, ...], deployment: str | None, output: str | None, watch: bool, exit_code: bool
) -> None:
    """Show every gate of CanaryGate NAME: its effective state, where it comes from (live,
    declared, default), who set it, when, its scope and reason; the Canary's phase, weight and
    failed checks, its last Flagger event, and whether its webhooks call the sidecar for every gate.

    \b
    Examples:
      kubectl gate show demo -n demo-ns
      kubectl gate show demo --watch
      kubectl gate status all -d demo      (the Go canary-gate CLI's form)
    """
    name, gate_filter = parse_show_args(args, deployment)
    if not watch:
        view = lookup.load_view(gctx, name, with_events=output not in ("name",))
        gctx.out(render(gctx, view, output, gate_filter))
        if exit_code:
            raise click.exceptions.Exit(status_code(view))
        return
    watch_view(gctx, name, output, gate_filter)


def watch_view(gctx: GateContext, name: str, output: str | None, gate_filter: str | None) -> None:
    """On a terminal, the live view (kubectl_gate.live_loop: a 1 s tick, keys that act); else a
    frame per change until Ctrl-C, and one JSON object per line with ``-o json``."""
    from kubectl_gate.following import Follower

    lookup.get_gate(gctx, name)  # a clear "not found" before any watch starts
    if output is None and gctx.tty:
        from kubectl_gate import live_loop

        live_loop.run(gctx, name, gate_filter)
        return
    follower = Follower(gctx, name)
    try:
        for _ in follower.changes():
            gate = follower.gate
            if gate is None:
                gctx.err(f'CanaryGate "{name}" was deleted')
                continue
            view = lookup.load_view(gctx, name, gate=gate)
            if output == "json":
                gctx.out(printing.dump_line(printing.status_object(view)))
            elif output == "yaml":
                gctx.out("---\n" + render(gctx, view, output, gate_filter))
            else:
                text = render(gctx, view, output, gate_filter)
                gctx.out((CLEAR if gctx.tty else "") + text + ("" if gctx.tty else "\n"))
    except KeyboardInterrupt:
        return
