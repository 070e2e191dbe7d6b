"""``kubectl gate list``: every CanaryGate with its Canary's phase and weight and its closed gates."""

from __future__ import annotations

import click

from canarygate.kube import canaries, gates
from kubectl_gate import printing
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import all_namespaces_option, kube_options, output_option
from kubectl_gate.views import GateView, build_view


def list_views(gctx: GateContext, selector: str | None = None) -> list[GateView]:
    """One view per CanaryGate in the namespace (all with -A), only those matching the label
    ``selector`` if given: two LIST requests, no per-item GET."""
    namespace = gctx.list_namespace
    if selector:
        from canarygate.model import parse_canarygate

        raw = gctx.kube.request(
            "GET", gates.CANARYGATES.path(namespace), query=[("labelSelector", selector)], resource=gates.CANARYGATES
        )
        found = sorted((parse_canarygate(i) for i in raw.get("items") or ()), key=lambda g: (g.namespace, g.name))
    else:
        found = gates.list_gates(gctx.kube, namespace)
    targets = {(g.target.namespace, g.target.name) for g in found}
    target_namespaces = {ns for ns, _ in targets}
    by_ref = {}
    if namespace is not None and target_namespaces <= {namespace}:
        listed = canaries.list_canaries(gctx.kube, namespace)
    elif namespace is not None and len(target_namespaces) <= 3:
        listed = [c for ns in sorted(target_namespaces) for c in canaries.list_canaries(gctx.kube, ns)]
    else:
        listed = canaries.list_canaries(gctx.kube, None)
    for canary in listed:
        by_ref[(canary.namespace, canary.name)] = canary
    now = gctx.now()
    return [build_view(g, by_ref.get((g.target.namespace, g.target.name)), now=now) for g in found]


@click.command("list")
@output_option("json", "yaml", "wide", "name", templates=True)
@click.option("--no-headers", is_flag=True, help="Print the table without its header line.")
@click.option(
    "--selector",
    "-l",
    metavar="SELECTOR",
    default=None,
    help="Only the CanaryGates whose labels match (kubectl's label selector, e.g. team=pay).",
)
@click.option("--all", "all_in_namespace", is_flag=True, help="Every CanaryGate in the namespace (the default).")
@click.option(
    "--watch",
    "-w",
    is_flag=True,
    help="After the table, print a CanaryGate's row again each time it changes, until Ctrl-C.",
)
@all_namespaces_option
@kube_options
@pass_gate_ctx
def list_command(
    gctx: GateContext, output: str | None, no_headers: bool, selector: str | None, all_in_namespace: bool, watch: bool
) -> None:
    """List CanaryGates: the Canary each one drives, its phase and weight, the gate holding the
    rollout (if any) and the gates that are closed (rollback when armed).

    \b
    Examples:
      kubectl gate list
      kubectl gate list -A -o wide
      kubectl gate list -l team=pay
      kubectl gate list -A --watch
    """
    views = list_views(gctx, selector)
    from kubectl_gate import templates

    if templates.is_template(output):
        gctx.out(templates.render(output, printing.list_object([printing.status_object(v) for v in views])))
        return
    if output in ("json", "yaml"):
        gctx.out(printing.dump(printing.list_object([printing.status_object(v) for v in views]), output))
        return
    if not views:
        where = "any namespace" if gctx.all_namespaces else f"namespace {gctx.ns}"
        gctx.err(f"No CanaryGates found in {where}.")
        if not watch:
            return
    if output == "name" and not watch:
        gctx.out(printing.names(views))
        return
    style = printing.Style(color=gctx.color, unicode=gctx.unicode, icons=gctx.tty)
    if watch:
        watch_rows(gctx, selector, output, no_headers, style)
        return
    for view in views:
        for gate in view.unknown:
            gctx.err(
                f"warning: canarygate/{view.gate.name} in {view.gate.namespace}: gate {gate} has an unknown state "
                f"(its annotation cannot be read); see kubectl gate show {view.gate.name} -n {view.gate.namespace}"
            )
    gctx.out(
        printing.list_table(
            views,
            now=gctx.now(),
            wide=output == "wide",
            all_namespaces=gctx.all_namespaces,
            no_headers=no_headers,
            style=style,
        )
    )


#: Seconds between two LISTs of ``list --watch`` (two requests each, whatever the number of gates).
WATCH_INTERVAL = 2.0


def watch_rows(
    gctx: GateContext, selector: str | None, output: str | None, no_headers: bool, style: printing.Style
) -> None:
    """The table, then each CanaryGate's row again when it changes (kubectl get -w's form), until Ctrl-C.

    Polls with two LIST requests every WATCH_INTERVAL: the row also depends on the Canary's status
    and on Deployments, so one watch would not see every change; an outage prints one note and goes on.
    """
    import time

    from canarygate import errors

    def row(view: GateView, headers: bool) -> str:
        if output == "name":
            return printing.names([view])
        return printing.list_table(
            [view],
            now=gctx.now(),
            wide=output == "wide",
            no_headers=not headers,
            all_namespaces=gctx.all_namespaces,
            style=style,
        )

    shown: dict[tuple[str, str], str] = {}
    first, down = True, False
    try:
        while True:
            try:
                views = list_views(gctx, selector)
                down = False
            except errors.Unreachable as e:
                if not down:
                    gctx.err(f"reconnecting… ({e})")
                down = True
                time.sleep(WATCH_INTERVAL)
                continue
            if first and views and output != "name":
                gctx.out(
                    printing.list_table(
                        views,
                        now=gctx.now(),
                        wide=output == "wide",
                        no_headers=no_headers,
                        all_namespaces=gctx.all_namespaces,
                        style=style,
                    )
                )
                shown = {(v.gate.namespace, v.gate.name): row(v, False) for v in views}
            else:
                for view in views:
                    key, text = (view.gate.namespace, view.gate.name), row(view, False)
                    if shown.get(key) != text:
                        gctx.out(text)
                        shown[key] = text
            first = False
            time.sleep(WATCH_INTERVAL)
    except KeyboardInterrupt:
        return
