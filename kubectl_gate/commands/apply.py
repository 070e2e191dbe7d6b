"""``kubectl gate apply -f`` and ``kubectl gate render -f``: CanaryGates and the Canaries they render.

Every document is read, rendered and checked against Flagger's Canary CRD before anything is sent,
so a bad file changes nothing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import click

from canarygate import errors, rendering
from canarygate.model import API_VERSION, KIND, parse_canarygate
from kubectl_gate import printing
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, output_option

ENDPOINT_HELP = (
    f"Where Flagger reaches the gate sidecar (default: $KUBECTL_GATE_ENDPOINT, else {rendering.DEFAULT_ENDPOINT})."
)


@dataclass(frozen=True)
class Rendered:
    source: str
    gate: dict[str, Any]
    canary: dict[str, Any]


def read_documents(paths: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """(source, document) for every YAML/JSON document in the files, folders (recursive) and ``-``."""
    import yaml

    sources: list[tuple[str, str]] = []
    for path in paths:
        if path == "-":
            sources.append(("<stdin>", sys.stdin.read()))
        elif os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for file in sorted(files):
                    if file.endswith((".yaml", ".yml", ".json")):
                        sources.append((os.path.join(root, file), _read(os.path.join(root, file))))
        else:
            sources.append((path, _read(path)))
    documents = []
    for source, text in sources:
        try:
            for doc in yaml.safe_load_all(text):
                if isinstance(doc, dict) and doc.get("kind") == "List":
                    documents.extend((source, item) for item in doc.get("items") or ())
                elif doc:
                    documents.append((source, doc))
        except yaml.YAMLError as e:
            raise errors.InvalidGate(f"{source}: not valid YAML: {e}") from None
    return documents


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise errors.InvalidGate(f"cannot read {path}: {e.strerror}") from None


def render_documents(
    gctx: GateContext, paths: tuple[str, ...], *, namespace: str, endpoint: str
) -> list[Rendered]:
    """Render every CanaryGate found; InvalidGate listing every problem when any document is bad."""
    documents = read_documents(paths)
    rendered, problems = [], []
    for source, doc in documents:
        if doc.get("kind") != KIND or not str(doc.get("apiVersion", "")).startswith("piggysec.com/"):
            gctx.err(f"skipped {source}: {doc.get('kind', 'a document without kind')} is not a CanaryGate")
            continue
        if doc.get("apiVersion") != API_VERSION:
            problems.append(f"{source}: apiVersion {doc.get('apiVersion')} is not {API_VERSION}")
            continue
        doc = dict(doc)
        doc["metadata"] = dict(doc.get("metadata") or {})
        doc["metadata"].setdefault("namespace", namespace)
        name = doc["metadata"].get("name")
        if not name:
            problems.append(f"{source}: a CanaryGate without metadata.name")
            continue
        try:
            gate = parse_canarygate(doc)
            canary = rendering.render_canary(gate, endpoint=endpoint)
        except errors.InvalidGate as e:
            problems.append(f"{source}: {e}")
            continue
        for problem in rendering.check_canary(canary):
            problems.append(f"{source}: CanaryGate {gate.ref}: the rendered Canary is invalid for Flagger: {problem}")
        rendered.append(Rendered(source, doc, canary))
    if problems:
        raise errors.InvalidGate("nothing was applied:\n  " + "\n  ".join(problems))
    if not rendered:
        raise errors.InvalidGate(f"no CanaryGate found in {', '.join(paths)}")
    return rendered


def apply_documents(gctx: GateContext, items: list[Rendered], *, dry_run: str | None) -> list[tuple[str, str, dict]]:
    """Create or update each CanaryGate and its Canary; (qualified name, outcome, object) per write."""
    from canarygate.kube import canaries, gates

    results = []
    for item in items:
        name = item.gate["metadata"]["name"]
        canary_name = item.canary["metadata"]["name"]
        if dry_run == "client":
            results.append((f"canarygate.piggysec.com/{name}", "configured (dry run)", item.gate))
            results.append((f"canary.flagger.app/{canary_name}", "configured (dry run)", item.canary))
            continue
        server_dry = dry_run == "server"
        suffix = " (server dry run)" if server_dry else ""
        outcome, obj = gates.apply_gate(gctx.kube, item.gate, dry_run=server_dry)
        results.append((f"canarygate.piggysec.com/{name}", outcome + suffix, obj))
        outcome, obj = canaries.apply_canary(gctx.kube, item.canary, dry_run=server_dry)
        results.append((f"canary.flagger.app/{canary_name}", outcome + suffix, obj))
    return results


def _endpoint(endpoint: str | None) -> str:
    return endpoint or os.environ.get("KUBECTL_GATE_ENDPOINT") or rendering.DEFAULT_ENDPOINT


@click.command("apply")
@click.option("--filename", "-f", "paths", multiple=True, required=True, metavar="PATH",
              help="A file, a folder (read recursively) or - for stdin; repeatable.")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none",
              help="client: check and render only; server: the API server checks without saving.")
@click.option("--endpoint", metavar="URL", help=ENDPOINT_HELP)
@output_option("json", "yaml", "name")
@kube_options
@pass_gate_ctx
def apply_command(gctx: GateContext, paths: tuple[str, ...], dry_run: str, endpoint: str | None,
                  output: str | None) -> None:
    """Create or update the CanaryGates in the files, and the Flagger Canary each one renders:
    spec.flagger plus one webhook per gate and an event webhook, pointing at the sidecar. Your own
    webhooks are kept in their order; gate webhooks of an earlier render are replaced. Everything
    is checked against Flagger's CRD before anything is sent. Live gate changes are kept.

    \b
    Examples:
      kubectl gate apply -f canarygate.yaml
      kubectl gate apply -f gates/ --dry-run=server
    """
    namespace = _safe_ns(gctx) if dry_run == "client" else gctx.ns
    items = render_documents(gctx, paths, namespace=namespace, endpoint=_endpoint(endpoint))
    results = apply_documents(gctx, items, dry_run=None if dry_run == "none" else dry_run)
    if output in ("json", "yaml"):
        data = {"apiVersion": "v1", "kind": "List", "items": [obj for _, _, obj in results]}
        gctx.out(printing.dump(data, output))
    elif output == "name":
        gctx.out("\n".join(ref for ref, _, _ in results))
    else:
        gctx.out("\n".join(f"{ref} {outcome}" for ref, outcome, _ in results))


def _safe_ns(gctx: GateContext) -> str:
    try:
        return gctx.ns
    except errors.ConfigError:
        return "default"


@click.command("render")
@click.option("--filename", "-f", "paths", multiple=True, required=True, metavar="PATH",
              help="A file, a folder (read recursively) or - for stdin; repeatable.")
@click.option("--endpoint", metavar="URL", help=ENDPOINT_HELP)
@click.option("--namespace", "-n", "namespace", metavar="NS", default=None,
              help="Namespace of CanaryGates that do not name one (default: default).")
@output_option("yaml", "json")
@pass_gate_ctx
def render_command(gctx: GateContext, paths: tuple[str, ...], endpoint: str | None, namespace: str | None,
                   output: str | None) -> None:
    """Print the Flagger Canary each CanaryGate in the files renders, checked against Flagger's CRD,
    for GitOps repositories. Reads no cluster.

    \b
    Example:
      kubectl gate render -f canarygate.yaml > canary.yaml
    """
    items = render_documents(gctx, paths, namespace=namespace or "default", endpoint=_endpoint(endpoint))
    canaries = [item.canary for item in items]
    if output == "json":
        data = canaries[0] if len(canaries) == 1 else {"apiVersion": "v1", "kind": "List", "items": canaries}
        gctx.out(printing.dump(data, "json"))
    else:
        import yaml

        gctx.out(yaml.safe_dump_all(canaries, sort_keys=False, explicit_start=True).rstrip("\n"))
