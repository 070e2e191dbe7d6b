"""Which CanaryGates a command acts on: ``NAME``, ``TYPE/NAME``, several names, ``-l SELECTOR``,
``--all`` and ``-A``, as kubectl reads them; and running a one-gate action over all of them with a
summary of what changed and what failed (exit 1 if anything failed).

One name keeps the one-gate behaviour unchanged (its error and exit code as they are).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from kubectl_gate.context import GateContext
from kubectl_gate.options import ALL_NAMESPACES, context_flag, selector_option

#: What kubectl accepts before the slash for this resource: the CRD's plural, singular and short
#: names (deploy/crd/canarygate.yaml), alone, with the group, or with version and group.
GROUP, VERSION = "piggysec.com", "v1alpha1"
_NAMES = ("canarygates", "canarygate", "cgate", "cg")
TYPES = frozenset([*_NAMES, *(f"{n}.{GROUP}" for n in _NAMES), *(f"{n}.{VERSION}.{GROUP}" for n in _NAMES)])


def parse_ref(text: str) -> str:
    """The CanaryGate name in ``NAME`` or ``TYPE/NAME``; a usage error for another type."""
    kind, slash, name = text.partition("/")
    if not slash:
        return text
    if kind.lower() not in TYPES:
        raise click.UsageError(
            f'"{text}": {kind} is not a CanaryGate type (use NAME, canarygate/NAME, cg/NAME or canarygate.{GROUP}/NAME)'
        )
    if not name or "/" in name:
        raise click.UsageError(f'"{text}" is not TYPE/NAME')
    return name


def selection_options(f: Callable) -> Callable:
    """``NAME...``, ``-l/--selector``, ``--all`` and ``-A/--all-namespaces`` (``-d NAME`` stays)."""
    f = click.option(
        "--all",
        "all_in_namespace",
        is_flag=True,
        help="Every CanaryGate in the namespace (with -A: in every namespace).",
    )(f)
    f = selector_option("team=pay,tier!=db")(f)
    f = context_flag(*ALL_NAMESPACES, help="With -l or --all: across all namespaces.")(f)
    return click.argument("names", nargs=-1, metavar="NAME...")(f)


def select(
    gctx: GateContext,
    names: tuple[str, ...],
    *,
    deployment: str | None = None,
    selector: str | None = None,
    everything: bool = False,
) -> list[tuple[str, str]]:
    """(namespace, name) of every CanaryGate chosen, in order; a usage error for a contradictory choice."""
    chosen = [parse_ref(n) for n in names] + ([deployment] if deployment and deployment not in names else [])
    if chosen and (selector or everything):
        raise click.UsageError("give names, or -l SELECTOR / --all, not both")
    if chosen:
        if gctx.all_namespaces:
            raise click.UsageError("a CanaryGate cannot be named across all namespaces: drop -A, or use -n NS")
        return [(gctx.ns, name) for name in dict.fromkeys(chosen)]
    if not (selector or everything):
        raise click.UsageError("missing the CanaryGate NAME (or -d NAME, -l SELECTOR, --all)")
    from canarygate.kube.resources import CANARYGATES
    from canarygate.model import parse_canarygate

    query = [("labelSelector", selector)] if selector else []
    raw = gctx.kube.request("GET", CANARYGATES.path(gctx.list_namespace), query=query, resource=CANARYGATES)
    found = sorted((parse_canarygate(i) for i in raw.get("items") or ()), key=lambda g: (g.namespace, g.name))
    return [(g.namespace, g.name) for g in found]


def run_each(gctx: GateContext, targets: list[tuple[str, str]], action: Callable[[str], Any], *, verb: str) -> None:
    """``action(name)`` for every target, in its namespace. One target: as it is. Several: every
    one is tried; each failure is printed as it happens, then a summary; exit 1 if any failed."""
    from canarygate import errors

    if not targets:
        where = "any namespace" if gctx.all_namespaces else f"namespace {gctx.ns}"
        gctx.err(f"No CanaryGates found in {where}: nothing {verb}.")
        return
    if len(targets) == 1:
        with gctx.in_namespace(targets[0][0]):
            action(targets[0][1])
        return
    done, failed = [], []
    for namespace, name in targets:
        ref = f"{namespace}/{name}"
        try:
            with gctx.in_namespace(namespace):
                action(name)
            done.append(ref)
        except errors.GateError as e:
            failed.append(ref)
            gctx.err(f"error: canarygate {ref}: {e}")
    summary = f"{verb}: {len(done)} of {len(targets)} CanaryGates"
    if failed:
        summary += f"; failed: {', '.join(failed)}"
    gctx.err(summary)
    if failed:
        raise click.exceptions.Exit(1)
