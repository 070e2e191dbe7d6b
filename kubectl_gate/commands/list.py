"""``kubectl gate list``: every CanaryGate with its Canary's phase and weight and its closed gates."""

from __future__ import annotations

from collections.abc import Sequence

import click

from canarygate.kube.resources import CANARYGATES
from canarygate.model import Canary, CanaryGate
from kubectl_gate import exitcodes, printing
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import all_namespaces_option, kube_options, output_option, selector_option
from kubectl_gate.views import GateView, build_view


def list_views(gctx: GateContext, selector: str | None = None) -> list[GateView]:
    """One view per CanaryGate in the namespace (all with -A), only those matching the label
    ``selector`` if given: two LIST requests, no per-item GET. See :func:`list_views_checked`."""
    return list_views_checked(gctx, selector)[0]


def list_views_checked(gctx: GateContext, selector: str | None = None) -> tuple[list[GateView], list[str]]:
    """The views, and a message for each object that could not be read.

    Every exception of reading one object is caught at that object: a CanaryGate that cannot be
    read (a stored object its CRD's schema no longer allows, a type our model does not expect) is
    listed with every gate unknown and the reason; a Canary that cannot be read counts as absent.
    The others list as usual."""
    namespace = gctx.list_namespace
    query = [("labelSelector", selector)] if selector else []
    raw = gctx.kube.request("GET", CANARYGATES.path(namespace), query=query, resource=CANARYGATES)
    problems: list[str] = []
    found = sorted((_read_gate(i, problems) for i in _items(raw)), key=lambda g: (g.namespace, g.name))
    targets = {(g.target.namespace, g.target.name) for g in found}
    target_namespaces = {ns for ns, _ in targets}
    if namespace is not None and target_namespaces <= {namespace}:
        listed = _canaries(gctx, [namespace], problems)
    elif namespace is not None and len(target_namespaces) <= 3:
        listed = _canaries(gctx, sorted(target_namespaces), problems)
    else:
        listed = _canaries(gctx, [None], problems)
    by_ref = {(c.namespace, c.name): c for c in listed}
    now = gctx.now()
    views = []
    for g in found:
        try:
            views.append(build_view(g, by_ref.get((g.target.namespace, g.target.name)), now=now))
        except Exception as e:  # noqa: BLE001 - one object's data must not stop the list
            reason = f"CanaryGate {g.namespace}/{g.name} is malformed ({type(e).__name__})"
            problems.append(reason)
            views.append(build_view(_unreadable(g.raw, reason), None, now=now))
    return views, problems


def _items(raw: object) -> list:
    items = raw.get("items") if isinstance(raw, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _read_gate(raw: dict, problems: list[str]) -> CanaryGate:
    """The CanaryGate, or a stand-in with every gate unknown and the reason (added to ``problems``)."""
    from canarygate import errors
    from canarygate.model import parse_canarygate

    try:
        gate = parse_canarygate(raw)
        target = (raw.get("spec") or {}).get("target")
        if not all(
            isinstance(v, str) for v in (gate.name, gate.namespace, gate.target.namespace, gate.target.name)
        ) or (target is not None and not isinstance(target, dict)):
            raise errors.InvalidGate(
                f"CanaryGate {_ref(raw)}: metadata.name, metadata.namespace and spec.target.namespace/name "
                "must be strings"
            )
        return gate
    except errors.InvalidGate as e:
        reason = str(e)
    except Exception as e:  # noqa: BLE001 - RecursionError, AttributeError...: malformed beyond the model's checks
        reason = f"CanaryGate {_ref(raw)} is malformed ({type(e).__name__})"
    problems.append(reason[:1024])
    return _unreadable(raw, reason[:1024])


def _ref(raw: object) -> str:
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    namespace, name = meta.get("namespace"), meta.get("name")
    return f"{namespace if isinstance(namespace, str) else '?'}/{name if isinstance(name, str) else '?'}"


def _unreadable(raw: object, reason: str) -> CanaryGate:
    """What can safely be read of an object that cannot be parsed: its name, and every gate unknown."""
    from canarygate import gates as gate_names
    from canarygate.model import Target

    namespace, _, name = _ref(raw).partition("/")
    spec = raw.get("spec") if isinstance(raw, dict) else None
    target = spec.get("target") if isinstance(spec, dict) else None
    target = target if isinstance(target, dict) else {}
    t_ns, t_name = target.get("namespace"), target.get("name")
    return CanaryGate(
        name=name,
        namespace=namespace,
        target=Target(
            t_ns if isinstance(t_ns, str) and t_ns else namespace,
            t_name if isinstance(t_name, str) and t_name else name,
        ),
        declared={},
        live={},
        flagger={},
        invalid={gate: reason for gate in gate_names.GATES},
        problems=(reason,),
    )


def _canaries(gctx: GateContext, namespaces: Sequence[str | None], problems: list[str]) -> list[Canary]:
    """The Canaries of ``namespaces`` (None: all); one that cannot be read is left out, with a message."""
    from canarygate import errors
    from canarygate.kube.resources import CANARIES
    from canarygate.model import parse_canary

    out = []
    for namespace in namespaces:
        try:
            raw = gctx.kube.request("GET", CANARIES.path(namespace), resource=CANARIES)
        except errors.CrdMissing:
            return []
        for item in _items(raw):
            try:
                out.append(parse_canary(item))
            except Exception as e:  # noqa: BLE001 - one Canary's data must not stop the list
                problems.append(f"Canary {_ref(item)} is malformed ({type(e).__name__}): shown as absent")
    return out


@click.command("list")
@output_option("json", "yaml", "wide", "name", templates=True)
@click.option("--no-headers", is_flag=True, help="Print the table without its header line.")
@selector_option("team=pay")
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
    views, problems = list_views_checked(gctx, selector)
    if watch:  # said before the rows, which follow until Ctrl-C
        for problem in problems:
            gctx.err(f"error: {problem}")
    _print(gctx, views, output, no_headers, selector, watch)
    if watch:
        return
    for problem in problems:
        gctx.err(f"error: {problem}")
    if problems:
        raise click.exceptions.Exit(exitcodes.ERROR)


def _print(
    gctx: GateContext,
    views: list[GateView],
    output: str | None,
    no_headers: bool,
    selector: str | None,
    watch: bool,
) -> None:
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
        if len(view.gate.problems) == 1 and set(view.gate.invalid) == set(view.decisions):
            continue  # unreadable as a whole: said once, after the table
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
