"""``kubectl gate list``: every CanaryGate with its Canary's phase and weight and its closed gates."""

from __future__ import annotations

import click

from canarygate.kube import canaries, gates
from kubectl_gate import printing
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import all_namespaces_option, kube_options, output_option
from kubectl_gate.views import GateView, build_view, view_to_dict


def list_views(gctx: GateContext, selector: str | None = None) -> list[GateView]:
    """One view per CanaryGate in the namespace (all with -A), only those matching the label
    ``selector`` if given: two LIST requests, no per-item GET."""
    namespace = gctx.list_namespace
    if selector:
        from canarygate.model import parse_canarygate

        raw = gctx.kube.request("GET", gates.CANARYGATES.path(namespace), query=[("labelSelector", selector)],
                                resource=gates.CANARYGATES)
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
@click.option("--selector", "-l", metavar="SELECTOR", default=None,
              help="Only the CanaryGates whose labels match (kubectl's label selector, e.g. team=pay).")
@click.option("--all", "all_in_namespace", is_flag=True, help="Every CanaryGate in the namespace (the default).")
@all_namespaces_option
@kube_options
@pass_gate_ctx
def list_command(gctx: GateContext, output: str | None, no_headers: bool, selector: str | None,
                 all_in_namespace: bool) -> None:
    """List CanaryGates: the Canary each one drives, its phase and weight, the gate holding the
    rollout (if any) and the gates that are closed (rollback when armed).

    \b
    Examples:
      kubectl gate list
      kubectl gate list -A -o wide
      kubectl gate list -l team=pay
    """
    views = list_views(gctx, selector)
    from kubectl_gate import templates

    if templates.is_template(output):
        gctx.out(templates.render(output, {"items": [view_to_dict(v) for v in views]}))
        return
    if output in ("json", "yaml"):
        gctx.out(printing.dump({"items": [view_to_dict(v) for v in views]}, output))
        return
    if not views:
        where = "any namespace" if gctx.all_namespaces else f"namespace {gctx.ns}"
        gctx.err(f"No CanaryGates found in {where}.")
        return
    if output == "name":
        gctx.out(printing.names(views))
        return
    style = printing.Style(color=gctx.color, unicode=gctx.unicode)
    for view in views:
        for gate in view.unknown:
            gctx.err(f"warning: canarygate/{view.gate.name} in {view.gate.namespace}: gate {gate} has an unknown state "
                     f"(its annotation cannot be read); see kubectl gate show {view.gate.name} -n {view.gate.namespace}")
    gctx.out(printing.list_table(views, now=gctx.now(), wide=output == "wide", all_namespaces=gctx.all_namespaces,
                                 no_headers=no_headers, style=style))
